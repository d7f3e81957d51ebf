"""Atomic file output: write to a temporary file beside the target, then rename.

A killed job therefore never leaves a half-written file that a later rule would trust. A write
that the file system refuses (read-only, permission, no space, quota) becomes one
:class:`~pegan.errors.FileSystemError` naming the path and the cause; the target is untouched.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

from pegan.errors import FileSystemError

# errno -> (cause, what to do)
_FS_CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device", "free some space, then run again"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or raise the quota, then run again"),
    errno.EROFS: ("read-only file system", "choose a writable location"),
    errno.EACCES: ("permission denied", "choose a location you may write to"),
    errno.EPERM: ("operation not permitted", "choose a location you may write to"),
}


def file_system_error(exc: OSError, path: str | os.PathLike | None = None
                      ) -> FileSystemError | None:
    """The one-line error of a refused write (None for other OS errors). `path` names the
    target when the error itself names none or only a temporary file."""
    if exc.errno not in _FS_CAUSES:
        return None
    cause, advice = _FS_CAUSES[exc.errno]
    where = path if path is not None else (exc.filename or "a file")
    return FileSystemError(f"{where}: cannot write: {cause} ({errno.errorcode[exc.errno]}); "
                           f"{advice} (finished files are intact)")


def check_writable(path: str | os.PathLike, *, directory: bool = False) -> None:
    """Fail early, before expensive work, if `path` (a file, or with `directory` a folder)
    could not be written: create its folder and a small probe file there, then remove it."""
    path = Path(path)
    folder = path if directory or path.is_dir() else path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".pegan-probe.", suffix=".tmp", dir=folder)
        try:
            os.write(fd, b"pegan write probe\n")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        error = file_system_error(exc, folder)
        if error is None:
            raise
        raise error from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `path` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        error = file_system_error(exc, path)
        if error is None:
            raise
        raise error from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600; give the file the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        os.replace(tmp_path, path)
    except OSError as exc:
        error = file_system_error(exc, path)
        if error is None:
            raise
        raise error from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def torch_save(obj: Any, path: str | os.PathLike) -> None:
    import torch

    # through a Python file, so that a full disk raises OSError(ENOSPC) and not torch's
    # errno-less RuntimeError ('basic_ios::clear: iostream error')
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())

"""One writer per run folder: an advisory lock that the operating system releases when the
holder dies (``fcntl.flock`` on ``<checkpoint dir>/train.lock``).

The live trainer (rank 0 of a data-parallel run: one lock per run) holds the lock from its start
to its exit. A second trainer on the same folder (e.g. a rerun after the Snakemake driver was
killed while its training job lived on) stops at once and names the holder. The lock file holds
the holder's host, PID and start time; it stays behind when the holder dies, but the lock itself
is gone with the process, so a stale file never blocks anyone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import TextIO

from pegan.errors import PeganError

log = logging.getLogger(__name__)
LOCK_NAME = "train.lock"
# atomic_path's temporary files: ".<target name>.<random>.tmp"
_TEMP_GLOB = ".*.tmp"


class RunLocked(PeganError):
    """Another live trainer writes to this run folder."""

    exit_code = 73                     # EX_CANTCREAT: not a resumable stop, not a divergence


class RunLock:
    """The exclusive lock of one run folder; use as a context manager."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        self.path = self.dir / LOCK_NAME
        self._fh: TextIO | None = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLocked` naming the holder."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            _lock(fh, self.path, fcntl.LOCK_EX)
        except BaseException:
            fh.close()
            raise
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                             "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()                  # closing the file drops the flock
            self._fh = None

    def remove_stale_temp_files(self) -> list[Path]:
        """Delete the temporary files of writes killed half-way (only ever call this while
        holding the lock: then no live writer owns any of them)."""
        if self._fh is None:
            raise RuntimeError("remove_stale_temp_files() needs the lock")
        removed = []
        for path in sorted(self.dir.glob(_TEMP_GLOB)):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            log.info("removed %d temporary file(s) of interrupted writes in %s: %s",
                     len(removed), self.dir, ", ".join(p.name for p in removed))
        return removed


def check_free(directory: str | Path) -> None:
    """Raise :class:`RunLocked` if a live trainer holds `directory`'s lock (a probe that keeps
    nothing: the torchrun launcher checks before it starts its processes)."""
    path = Path(directory) / LOCK_NAME
    if not path.exists():
        return
    with path.open("r") as fh:
        _lock(fh, path, fcntl.LOCK_SH)


def _lock(fh: TextIO, path: Path, mode: int) -> None:
    try:
        fcntl.flock(fh, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        raise RunLocked(f"{path.parent} is in use by another trainer ({_describe(fh.read())}); "
                        "wait for it to finish or end it, then run again") from None
    except OSError as exc:
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
        # e.g. Lustre mounted without 'flock': train unguarded rather than not at all
        log.warning("%s: the file system does not support locks (%s); nothing stops a second "
                    "trainer on this folder", path, exc.strerror)


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"host {info['host']}, PID {info['pid']}, since {info['since']}: "
                f"'kill {info['pid']}' on {info['host']} ends it")
    except (json.JSONDecodeError, KeyError, TypeError):
        return "holder unknown: it is starting up"

"""Released MMGeneration file names -> Table 5 rows (torch-free: the Snakefile imports it)."""

from __future__ import annotations

import re
from pathlib import Path

from pegan.errors import PeganError

# Table 5 row id -> pegan experiment.
TABLE5_EXPERIMENTS: dict[str, str] = {
    "a": "t2a", "b": "t5b", "c": "t5c", "d": "t5d", "e": "t5e", "f": "t5f", "g": "t5g",
    "h": "t5h", "i": "t5i", "j": "t5j", "k": "t5k", "896": "t5f-896", "1024": "t5f-1024"}


def hint_rows(hint: str) -> set[str]:
    """Table 5 rows named in a file name / experiment name (``config-f``, ``256-896``)."""
    rows = set(re.findall(r"config-([a-k])(?![a-z])", hint.lower()))
    hires = set(re.findall(r"256-(896|1024)", hint))
    return hires or rows


def released_checkpoints(folder: str | Path) -> dict[str, Path]:
    """Table 5 row id -> the released ``.pth`` in ``folder`` named for it (released names
    carry ``config-<row>`` and, for the high-resolution rows, ``256-896`` / ``256-1024``).
    Raises :class:`PeganError` when two files name the same row."""
    found: dict[str, Path] = {}
    for path in sorted(Path(folder).glob("*.pth")) if Path(folder).is_dir() else []:
        rows = hint_rows(path.name)
        if len(rows) != 1:
            continue  # SinGAN or unrelated files
        (row,) = rows
        if row in found:
            raise PeganError(f"{folder}: both {found[row].name} and {path.name} are Table 5 "
                             f"row {row}; keep one")
        found[row] = path
    return found

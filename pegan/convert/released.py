"""Which evaluations the workflow's ``released`` target runs (``workflow/rules/released.smk``).

The released checkpoints are the end of training, so each fills only the cells of its table's
latest snapshot column (Table 5: the 25M columns; the high-resolution rows: ``final``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pegan import plan
from pegan.convert.names import TABLE5_EXPERIMENTS, released_checkpoints
from pegan.errors import PeganError

TABLES = ("table5", "table5-hires")


def experiments(folder: str | Path) -> dict[str, str]:
    """pegan experiment -> released checkpoint path, for the Table 5 rows found in ``folder``."""
    return {TABLE5_EXPERIMENTS[row]: str(path) for row, path in released_checkpoints(folder).items()}


def checkpoint(folder: str | Path, experiment: str) -> str:
    """The released checkpoint of ``experiment`` in ``folder``."""
    found = experiments(folder)
    if experiment not in found:
        raise PeganError(f"no released checkpoint for {experiment} in {folder}/")
    return found[experiment]


def last_snapshot(table: Mapping) -> str:
    """The latest snapshot column of a table: 'final' or the largest '<N>M'."""
    snaps = {col["snapshot"] for col in table["columns"]}
    return "final" if "final" in snaps else max(snaps, key=lambda s: float(s.rstrip("M")))


def metrics_files(config: Mapping, preset: str, folder: str | Path, root: str,
                  table: str, seed: int) -> list[str]:
    """Metrics files (under ``root``) that fill ``table`` from the checkpoints in ``folder``."""
    if preset != "paper":
        raise PeganError("the released checkpoints are paper-size models: run the `released` "
                         "target with --config preset=paper")
    last = last_snapshot(config["tables"][table])
    present = experiments(folder)
    return sorted({plan.metrics_path(root, c.evaluation.experiment, seed, c.evaluation)
                   for c in plan.cells(config, preset)
                   if c.table == table and c.evaluation.snapshot == last
                   and c.evaluation.experiment in present})

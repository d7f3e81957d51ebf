"""`pegan select-snapshot`: the paper's "best snapshot before 10M / 20M images".

Among the snapshots of a run's metric log with at most the budget's paper-equivalent images
(``mimg``), pick the one with the lowest ``fid@<scale>``; ``final`` picks the last snapshot.
The chosen file is copied atomically to OUT and a JSON beside it (OUT with suffix ``.json``)
says which snapshot was chosen and why.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
from pathlib import Path

from pegan.errors import PeganError
from pegan.io import atomic_path, write_json
from pegan.train.logs import read_jsonl

_BUDGET = re.compile(r"^(\d+(?:\.\d+)?)M$")
_EPS = 1e-9


def _usable(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def choose(records: list[dict], budget: str, scale: int) -> tuple[dict, str]:
    """(chosen record, reason) for a budget '<N>M' or 'final' and a metric scale."""
    if not records:
        raise PeganError("the snapshot log is empty: the run wrote no snapshot")
    # a resumed run may have logged a snapshot twice: the later line wins
    by_iter = {r.get("iterations", r["kimg"]): r for r in records}
    records = sorted(by_iter.values(), key=lambda r: r["kimg"])
    if budget == "final":
        return records[-1], f"the final snapshot ({records[-1]['kimg']:g} kimg)"
    match = _BUDGET.match(budget)
    if not match:
        raise PeganError(f"--budget {budget!r}: use '<N>M' (paper millions of images) or 'final'")
    limit = float(match.group(1))
    eligible = [r for r in records if r["mimg"] <= limit + _EPS]
    if not eligible:
        raise PeganError(f"no snapshot at or before {budget} paper images "
                         f"(the first is at {records[0]['mimg']:g}M)")
    key = f"fid@{scale}"
    scored = [r for r in eligible if _usable(r.get(key))]
    if not scored:
        raise PeganError(f"no snapshot before {budget} has {key} in the log; train with "
                         f"--selection-scales including {scale}")
    best = min(scored, key=lambda r: (r[key], r["kimg"]))
    return best, (f"lowest {key} = {best[key]:.4g} among {len(scored)} snapshot(s) with "
                  f"<= {limit:g}M paper images")


def select(log_path: str | Path, checkpoint_dir: str | Path, budget: str, scale: int,
           out: str | Path) -> dict:
    """Copy the chosen snapshot to `out`; returns the JSON written beside it."""
    log_path, out = Path(log_path), Path(out)
    if not log_path.exists():
        raise PeganError(f"snapshot log {log_path} not found")
    record, reason = choose(read_jsonl(log_path), budget, scale)
    source = Path(checkpoint_dir) / record["snapshot"]
    if not source.exists():
        raise PeganError(f"snapshot {source} (chosen from {log_path}) is missing; rerun training")
    with atomic_path(out) as tmp:
        shutil.copyfile(source, tmp)
    info = {"budget": budget, "scale": scale, "snapshot": record["snapshot"],
            "source": str(source), "kimg": record["kimg"], "mimg": record["mimg"],
            "metric": record.get(f"fid@{scale}"), "reason": reason}
    write_json(out.with_suffix(".json"), info)
    return info


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("snapshot_log", help="snapshots.jsonl written by `pegan train`")
    p.add_argument("--checkpoint-dir", required=True, help="where the snapshot files are")
    p.add_argument("--budget", required=True, help="10M, 20M, ... (paper images) or final")
    p.add_argument("--scale", type=int, required=True, help="metric scale (px)")
    p.add_argument("--out", required=True, help="selected snapshot file")


def run(args: argparse.Namespace) -> int:
    info = select(args.snapshot_log, args.checkpoint_dir, args.budget, args.scale, args.out)
    print(f"{args.out}: {info['snapshot']} ({info['reason']})")
    return 0

"""Where and how long a claims run ran: the pegan commit, the machine, and job times from
Snakemake's benchmark files."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
from collections import defaultdict
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)


def git_commit(root: str | Path | None = None) -> str:
    """`<sha>` (with `-dirty` when tracked files changed), or 'unknown' outside a checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:                                        # noqa: BLE001 - informative only
        gpu = "GPU unknown"
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, {gpu}"


def job_seconds(benchmarks: str | Path, experiments: set[str]) -> dict[str, float]:
    """Wall seconds of the train/select/evaluate jobs of each experiment (Snakemake's
    benchmark files ``<bench>/<stage>/<experiment>-seed<N>[...].tsv``)."""
    root = Path(benchmarks)
    totals: dict[str, float] = defaultdict(float)
    for stage in ("train", "select", "evaluate"):
        for path in sorted((root / stage).glob("*.tsv")):
            name = path.stem.split("-seed")[0]
            if name in experiments:
                try:
                    totals[name] += float(pd.read_csv(path, sep="\t")["s"].sum())
                except (OSError, KeyError, ValueError, pd.errors.ParserError):
                    log.warning("cannot read benchmark %s", path)
    return dict(totals)


def run_span(benchmarks: str | Path) -> tuple[float, float] | None:
    """(wall seconds from the first job's start to the last job's end, summed job seconds)
    of every job with a benchmark file (a benchmark is written when its job ends: start =
    mtime - duration). None without benchmark files."""
    starts, ends, total = [], [], 0.0
    for path in Path(benchmarks).rglob("*.tsv"):
        try:
            seconds = float(pd.read_csv(path, sep="\t")["s"].sum())
        except (OSError, KeyError, ValueError, pd.errors.ParserError):
            continue
        end = path.stat().st_mtime
        starts.append(end - seconds)
        ends.append(end)
        total += seconds
    if not ends:
        return None
    return max(ends) - min(starts), total

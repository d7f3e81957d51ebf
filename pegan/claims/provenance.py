"""Where and how long a claims run ran: the pegan commit, the commits that trained its runs,
the machine, and job times from Snakemake's benchmark files."""

from __future__ import annotations

import logging
import os
import platform
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import pandas as pd

from pegan.provenance import UNRECORDED, git_commit, short  # noqa: F401 - git_commit re-exported

log = logging.getLogger(__name__)


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


def training_commits(metrics: Iterable[str | Path]) -> str:
    """The commits that trained the evaluated snapshots (each run's attempts, in order, as its
    snapshot records them), with how many runs each sequence trained: "<sha> (12 runs); ..."."""
    import json

    runs: dict[tuple[str, str], tuple[str, ...]] = {}
    for path in metrics:
        try:
            protocol = json.loads(Path(path).read_text()).get("protocol", {})
        except (OSError, ValueError):
            continue
        key = (str(protocol.get("experiment")), str(protocol.get("snapshot")))
        runs[key] = tuple(protocol.get("trained_by") or (UNRECORDED,))
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for commits in runs.values():
        counts[commits] += 1
    return "; ".join(f"{' then '.join(map(short, commits))} ({n} run{'s' * (n != 1)})"
                     for commits, n in sorted(counts.items(), key=lambda kv: -kv[1]))

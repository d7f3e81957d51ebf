"""Where and how long a claims run ran: the pegan commit, the commits and machines that trained
its runs, the machine, and job times from Snakemake's benchmark files."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from pegan.provenance import RUN_CODE, UNRECORDED, changed_between, short
from pegan.provenance import cpu_model, git_commit, machine  # noqa: F401 - re-exported

log = logging.getLogger(__name__)


# a Snakemake benchmark file of one run's job: `<experiment>-seed<N>[-<evaluation>].tsv`
_RUN_BENCHMARK = re.compile(r"^(?P<experiment>[a-z0-9][a-z0-9-]*?)-seed(?P<seed>\d+)(?:-|$)")

Runs = tuple[str, tuple[int, ...]]      # an experiment and some of its seeds


def run_job_seconds(benchmarks: str | Path) -> dict[Runs, float]:
    """Wall seconds of the train/select/evaluate jobs of each run, keyed (experiment, (seed,))
    (Snakemake's benchmark files ``<bench>/<stage>/<experiment>-seed<N>[...].tsv``)."""
    root = Path(benchmarks)
    totals: dict[Runs, float] = defaultdict(float)
    for stage in ("train", "select", "evaluate"):
        for path in sorted((root / stage).glob("*.tsv")):
            match = _RUN_BENCHMARK.match(path.stem)
            if not match:
                continue
            try:
                seconds = float(pd.read_csv(path, sep="\t")["s"].sum())
            except (OSError, KeyError, ValueError, pd.errors.ParserError):
                log.warning("cannot read benchmark %s", path)
                continue
            totals[(match["experiment"], (int(match["seed"]),))] += seconds
    return dict(totals)


def per_experiment(blocks: Mapping[Runs, float]) -> dict[str, float]:
    """Job seconds per experiment from blocks of runs that may repeat or contain each other
    (a finding's parts bundled in several sessions, seed by seed or all seeds at once): the
    same block counts once, and of blocks sharing a seed the one of most seeds counts."""
    kept: dict[str, set[int]] = defaultdict(set)
    totals: dict[str, float] = defaultdict(float)
    for (experiment, seeds), seconds in sorted(blocks.items(), key=lambda kv: -len(kv[0][1])):
        if kept[experiment].isdisjoint(seeds):
            kept[experiment].update(seeds)
            totals[experiment] += seconds
    return dict(totals)


def job_seconds(benchmarks: str | Path, experiments: set[str]) -> dict[str, float]:
    """Wall seconds of the train/select/evaluate jobs of each experiment, all its seeds."""
    return {e: v for e, v in per_experiment(run_job_seconds(benchmarks)).items()
            if e in experiments}


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


def _run_records(metrics: Iterable[str | Path], key: str) -> dict[tuple[str, ...], int]:
    """How many runs each sequence of a snapshot's `key` record (`trained_by`: the commits,
    `trained_on`: the machines of a run's attempts, in order) holds; a run evaluated several
    times counts once, a run from before the record as `unrecorded`."""
    import json

    runs: dict[tuple[str, str], tuple[str, ...]] = {}
    for path in metrics:
        try:
            protocol = json.loads(Path(path).read_text()).get("protocol", {})
        except (OSError, ValueError):
            continue
        run = (str(protocol.get("experiment")), str(protocol.get("snapshot")))
        runs[run] = tuple(protocol.get(key) or (UNRECORDED,))
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for records in runs.values():
        counts[records] += 1
    return dict(counts)


def _runs_line(counts: Mapping[tuple[str, ...], int], name=str) -> str:
    """`counts` (:func:`_run_records`) as a header line, most runs first:
    "<a> (12 runs); <a> then <b> (1 run)", each record shown by `name`."""
    return "; ".join(f"{' then '.join(map(name, records))} ({n} run{'s' * (n != 1)})"
                     for records, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def training_machines(metrics: Iterable[str | Path]) -> str | None:
    """The machines that trained the evaluated snapshots, with how many runs each sequence
    trained: "<machine> (3 runs); unrecorded (6 runs)" (runs of before the record); None when
    no run has the record."""
    counts = _run_records(metrics, "trained_on")
    return None if set(counts) <= {(UNRECORDED,)} else _runs_line(counts)


def training_commits(metrics: Iterable[str | Path]) -> str:
    """The commits that trained the evaluated snapshots, with how many runs each sequence
    trained: "<sha> (12 runs); <sha> then <sha> (1 run)"."""
    return _runs_line(_run_records(metrics, "trained_by"), short)


def _run_code() -> str:
    kept = [p for p in RUN_CODE if not p.startswith(":")]
    left = [p.split(")", 1)[1] for p in RUN_CODE if p.startswith(":(exclude)")]
    return f"{', '.join(kept)}, leaving out {' and '.join(left)}"


def training_code(metrics: Iterable[str | Path], root: str | Path | None = None,
                  most: int = 8) -> str | None:
    """Whether the code the runs depend on (`pegan.provenance.RUN_CODE`) differs between the
    commits that trained them; None when one commit trained them all."""
    commits = list(dict.fromkeys(c for seq in _run_records(metrics, "trained_by")
                                 for c in seq))
    if len(commits) < 2:
        return None
    span = f"{len(commits)} commits ({', '.join(map(short, commits))})"
    try:
        changed = changed_between(commits, root)
    except ValueError as exc:
        return f"{span}: cannot tell whether their training code differs: {exc}"
    if not changed:
        return (f"{span}, with the same training and evaluation code (git diff over "
                f"{_run_code()}: no file changed)")
    shown = ", ".join(changed[:most]) + (f" and {len(changed) - most} more"
                                         if len(changed) > most else "")
    return (f"{span}; files of the training and evaluation code that differ between them: "
            f"{shown} (git diff over {_run_code()})")

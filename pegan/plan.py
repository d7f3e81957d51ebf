"""What the workflow has to compute for a config and a preset.

The Snakefile's input functions call these, so the DAG's shape is plain, testable Python:
one training job per (experiment, seed), one snapshot selection per (run, budget, scale),
one evaluation job per (run, snapshot, scale, metric set), one table per paper table.
All sizes here are preset pixels.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from pegan.config import ExperimentSpec, resolve

# Metrics that share one Inception feature pass, and the name of their set.
FEATURE_METRICS = {"fid": "fid", "kid": "kid", "precision": "pr", "recall": "pr"}


@dataclass(frozen=True, order=True)
class Evaluation:
    experiment: str
    snapshot: str          # '10M', '20M', ..., or 'final'
    scale: int             # evaluation size, preset pixels
    metricset: str         # 'fid-kid-pr', 'fid-kid', 'swd', ...

    @property
    def metrics(self) -> list[str]:
        return self.metricset.split("-")


_METRICS_NAME = re.compile(
    r"(?P<experiment>[a-z0-9][a-z0-9-]*)/seed(?P<seed>\d+)/"
    r"(?P<snapshot>final|\d+(?:\.\d+)?M)-(?P<scale>\d+)px-(?P<metricset>[a-z]+(?:-[a-z]+)*)\.json$")


def metrics_path(root: str, experiment: str, seed: int | str, ev: Evaluation) -> str:
    """Where the workflow keeps the result of one evaluation of one run."""
    return f"{root}/{experiment}/seed{seed}/{ev.snapshot}-{ev.scale}px-{ev.metricset}.json"


def parse_metrics_path(path: str | Path) -> tuple[Evaluation, int]:
    """Inverse of :func:`metrics_path`: (evaluation, seed)."""
    match = _METRICS_NAME.search(Path(path).as_posix())
    if not match:
        raise ValueError(f"{path} is not named like a pegan metrics file "
                         "(<experiment>/seed<N>/<snapshot>-<scale>px-<metrics>.json)")
    g = match.groupdict()
    return Evaluation(g["experiment"], g["snapshot"], int(g["scale"]), g["metricset"]), int(g["seed"])


@dataclass(frozen=True)
class Cell:
    """One reproduced cell of a paper table: where its number comes from."""

    table: str
    row: str
    column: str
    evaluation: Evaluation
    metric: str            # fid | kid | precision | recall | swd
    level: str | None      # SWD level in preset pixels, or 'avg'


def specs(config: Mapping, preset: str | None = None) -> dict[str, ExperimentSpec]:
    return {name: resolve(config, name, preset) for name in config["experiments"]}


def column_scale(spec: ExperimentSpec, column: Mapping) -> int:
    if column["scale"] == "max":
        return max(spec.scales)
    return spec.to_preset_px(column["scale"])


def swd_level(spec: ExperimentSpec, column: Mapping) -> str:
    level = column.get("level", "avg")
    return "avg" if level == "avg" else str(spec.to_preset_px(level))


def cells(config: Mapping, preset: str | None = None) -> list[Cell]:
    """Every non-empty cell of every table, with the evaluation that fills it."""
    all_specs = specs(config, preset)
    needed: dict[tuple, set] = defaultdict(set)
    raw = []
    for tname, table in config["tables"].items():
        for row in table["rows"]:
            spec = all_specs[row["experiment"]]
            for col in table["columns"]:
                if col["key"] in row.get("skip", []):
                    continue
                key = (spec.name, col["snapshot"], column_scale(spec, col))
                family = "swd" if col["metric"] == "swd" else "features"
                needed[key + (family,)].add(col["metric"])
                raw.append((tname, str(row["id"]), col, spec, key, family))
    out = []
    for tname, row_id, col, spec, key, family in raw:
        if family == "swd":
            metricset = "swd"
        else:
            # FID and KID always travel together: the feature pass is shared.
            names = {FEATURE_METRICS[m] for m in needed[key + (family,)]} | {"fid", "kid"}
            metricset = "-".join(n for n in ("fid", "kid", "pr") if n in names)
        level = swd_level(spec, col) if col["metric"] == "swd" else None
        out.append(Cell(tname, row_id, col["key"], Evaluation(*key, metricset), col["metric"], level))
    return out


def evaluations(config: Mapping, preset: str | None = None) -> list[Evaluation]:
    return sorted({c.evaluation for c in cells(config, preset)})


def selection_scales(config: Mapping, experiment: str, preset: str | None = None) -> list[int]:
    """Scales at which a run logs its snapshot metric (for best-snapshot selection)."""
    return sorted({e.scale for e in evaluations(config, preset)
                   if e.experiment == experiment and e.snapshot != "final"})


def runs(config: Mapping, preset: str | None = None) -> list[tuple[str, int]]:
    """Every (experiment, seed) the preset trains: all experiments of the registry."""
    preset = preset or config["preset"]
    seeds = config["presets"][preset]["seeds"]
    return [(name, seed) for name in config["experiments"] for seed in seeds]


def data_needs(config: Mapping, preset: str | None = None) -> list[tuple[str, int]]:
    """(dataset, size) pairs to prepare: each run's largest training scale and every
    evaluation scale (real images for the metrics)."""
    all_specs = specs(config, preset)
    needs = set()
    for spec in all_specs.values():
        if spec.arch == "singan":
            needs.add((spec.dataset, spec.singan["max_size"]))   # the one training image
        else:
            needs.add((spec.dataset, max(spec.scales)))
    for ev in evaluations(config, preset):
        needs.add((all_specs[ev.experiment].dataset, ev.scale))
    return sorted(needs)


def singan_experiments(config: Mapping) -> list[str]:
    return [n for n, e in config["experiments"].items() if e["arch"] == "singan"]


def mspie_experiments(config: Mapping) -> list[str]:
    return [n for n, e in config["experiments"].items() if len(e.get("scales", [])) > 1]

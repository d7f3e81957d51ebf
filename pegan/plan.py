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
# Metrics of one pixel-space pass of pegan.metrics.structure.
STRUCTURE_METRICS = ("structure", "diversity", "patch_swd")


def metric_family(metric: str) -> str:
    """Which evaluation pass fills a table metric: features (Inception/VGG), swd, structure."""
    if metric == "swd":
        return "swd"
    return "structure" if metric in STRUCTURE_METRICS else "features"


@dataclass(frozen=True, order=True)
class Evaluation:
    experiment: str
    snapshot: str          # '10M', '20M', ..., or 'final'
    scale: int             # evaluation size, preset pixels
    metricset: str         # 'fid-kid-pr', 'fid-kid', 'swd', 'structure', ...
    generate_at: int = 0   # >0: rendered at this size and resized to `scale` (0: at `scale`)

    @property
    def metrics(self) -> list[str]:
        return self.metricset.split("-")


_METRICS_NAME = re.compile(
    r"(?P<experiment>[a-z0-9][a-z0-9-]*)/seed(?P<seed>\d+)/"
    r"(?P<snapshot>final|\d+(?:\.\d+)?M)-(?P<scale>\d+)px-(?:from(?P<generate_at>\d+)px-)?"
    r"(?P<metricset>[a-z]+(?:-[a-z]+)*)\.json$")


def metrics_path(root: str, experiment: str, seed: int | str, ev: Evaluation) -> str:
    """Where the workflow keeps the result of one evaluation of one run
    (``<snapshot>-<scale>px[-from<N>px]-<metrics>.json``)."""
    source = f"from{ev.generate_at}px-" if ev.generate_at else ""
    return f"{root}/{experiment}/seed{seed}/{ev.snapshot}-{ev.scale}px-{source}{ev.metricset}.json"


def parse_metrics_path(path: str | Path) -> tuple[Evaluation, int]:
    """Inverse of :func:`metrics_path`: (evaluation, seed)."""
    match = _METRICS_NAME.search(Path(path).as_posix())
    if not match:
        raise ValueError(f"{path} is not named like a pegan metrics file "
                         "(<experiment>/seed<N>/<snapshot>-<scale>px-<metrics>.json)")
    g = match.groupdict()
    return Evaluation(g["experiment"], g["snapshot"], int(g["scale"]), g["metricset"],
                      int(g["generate_at"] or 0)), int(g["seed"])


@dataclass(frozen=True)
class Cell:
    """One reproduced cell of a paper table: where its number comes from."""

    table: str
    row: str
    column: str
    evaluation: Evaluation
    metric: str            # fid | kid | precision | recall | swd | structure | diversity | patch_swd
    level: str | None      # SWD level in preset pixels, or 'avg'


def specs(config: Mapping, preset: str | None = None) -> dict[str, ExperimentSpec]:
    return {name: resolve(config, name, preset) for name in config["experiments"]}


def column_scale(spec: ExperimentSpec, column: Mapping) -> int:
    if column["scale"] == "max":
        # SinGAN: the training image's longer side
        return max(spec.scales) if spec.scales else int(spec.singan["max_size"])
    return spec.to_preset_px(column["scale"])


def uses_snapshot_selection(config: Mapping, preset: str | None = None) -> bool:
    """False when the preset evaluates every column on the final snapshot (no best-snapshot
    search during training: the `mini` preset compares runs at equal iterations)."""
    preset = preset or config["preset"]
    return bool(config["presets"][preset].get("snapshot_selection", True))


def swd_level(spec: ExperimentSpec, column: Mapping) -> str:
    level = column.get("level", "avg")
    return "avg" if level == "avg" else str(spec.to_preset_px(level))


def cells(config: Mapping, preset: str | None = None) -> list[Cell]:
    """Every non-empty cell of every table, with the evaluation that fills it."""
    all_specs = specs(config, preset)
    selection = uses_snapshot_selection(config, preset)
    needed: dict[tuple, set] = defaultdict(set)
    raw = []
    for tname, table in config["tables"].items():
        for row in table["rows"]:
            spec = all_specs[row["experiment"]]
            generate_at = spec.to_preset_px(row["upsample_from"]) if "upsample_from" in row else 0
            for col in table["columns"]:
                if col["key"] in row.get("skip", []):
                    continue
                snapshot = col["snapshot"] if selection else "final"
                key = (spec.name, snapshot, column_scale(spec, col))
                family = metric_family(col["metric"])
                needed[key + (generate_at, family)].add(col["metric"])
                raw.append((tname, str(row["id"]), col, spec, key, generate_at, family))
    out = []
    for tname, row_id, col, spec, key, generate_at, family in raw:
        if family in ("swd", "structure"):
            metricset = family
        else:
            # FID and KID always travel together: the feature pass is shared.
            names = {FEATURE_METRICS[m] for m in needed[key + (generate_at, family)]} | {"fid", "kid"}
            metricset = "-".join(n for n in ("fid", "kid", "pr") if n in names)
        level = swd_level(spec, col) if col["metric"] == "swd" else None
        out.append(Cell(tname, row_id, col["key"], Evaluation(*key, metricset, generate_at),
                        col["metric"], level))
    return out


def tested_claims(config: Mapping, preset: str | None = None) -> list[dict]:
    """The claims a preset tests with statistics (preset `claims`, default: all)."""
    preset = preset or config["preset"]
    wanted = config["presets"][preset].get("claims")
    claims = config.get("claims", [])
    return [c for c in claims if wanted is None or c["id"] in wanted]


def claim_rows(claim: Mapping) -> list[str]:
    """Row ids a claim compares, the claimed winner first."""
    if "best" in claim:
        first = str(claim["best"])
        return [first, *(str(r) for r in claim["among"] if str(r) != first)]
    if "close" in claim:
        return [str(claim["close"]), str(claim["to"])]
    return [str(claim["better"]), str(claim["worse"])]


def claim_cells(config: Mapping, preset: str | None = None) -> list[Cell]:
    """The table cells the preset's tested claims compare (what `claims` has to evaluate)."""
    wanted = {(c["table"], row, c["column"])
              for c in tested_claims(config, preset) for row in claim_rows(c)}
    return [c for c in cells(config, preset) if (c.table, c.row, c.column) in wanted]


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

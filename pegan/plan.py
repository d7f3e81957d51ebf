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

from pegan.config import SNAPSHOT_PATTERN, ExperimentSpec, resolve
from pegan.errors import ConfigError
from pegan.metrics import registry

@dataclass(frozen=True, order=True)
class Evaluation:
    experiment: str
    snapshot: str          # '10M', '20M', ..., or 'final'
    scale: int             # evaluation size, preset pixels
    metricset: str         # registered metrics joined by '-': 'fid-kid-pr', 'swd', ...
    generate_at: int = 0   # >0: rendered at this size and resized to `scale` (0: at `scale`)

    @property
    def metrics(self) -> list[str]:
        return self.metricset.split("-")


_METRICS_NAME = re.compile(
    r"(?P<experiment>[a-z0-9][a-z0-9-]*)/seed(?P<seed>\d+)/"
    rf"(?P<snapshot>{SNAPSHOT_PATTERN})-(?P<scale>\d+)px-(?:from(?P<generate_at>\d+)px-)?"
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
    metric: str            # an output key of a registered metric (fid, precision, swd, ...)
    level: str | None      # SWD level in preset pixels, or 'avg'


def specs(config: Mapping, preset: str | None = None) -> dict[str, ExperimentSpec]:
    return {name: resolve(config, name, preset) for name in config["experiments"]}


def column_scale(spec: ExperimentSpec, column: Mapping) -> int:
    if column["scale"] == "max":
        return spec.data_resolution          # SinGAN: the training image's longer side
    return spec.to_preset_px(column["scale"])


def uses_snapshot_selection(config: Mapping, preset: str | None = None) -> bool:
    """False when the preset evaluates every column on the final snapshot (no best-snapshot
    search during training: the `mini` preset compares runs at equal iterations)."""
    preset = preset or config["preset"]
    return bool(config["presets"][preset].get("snapshot_selection", True))


def pyramid_level(spec: ExperimentSpec, column: Mapping) -> str:
    """A per-level metric's column level (SWD) in preset pixels, or 'avg'."""
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
                # metrics of one registry group share one evaluation job
                metric = registry.owner(col["metric"])
                needed[key + (generate_at, metric.group)].add(metric.name)
                raw.append((tname, str(row["id"]), col, spec, key, generate_at, metric.group))
    out = []
    for tname, row_id, col, spec, key, generate_at, group in raw:
        metricset = registry.metric_set(needed[key + (generate_at, group)])
        level = pyramid_level(spec, col) if registry.outputs()[col["metric"]].levels else None
        out.append(Cell(tname, row_id, col["key"], Evaluation(*key, metricset, generate_at),
                        col["metric"], level))
    return out


def tested_claims(config: Mapping, preset: str | None = None,
                  finding: str | None = None, part: str | None = None) -> list[dict]:
    """The claims a preset tests with statistics (preset `claims`, default: all); `finding`:
    only those of that finding (a per-finding target, `snakemake claims_<finding>`); `part`:
    only its claims on runs of that architecture family (:func:`finding_parts`)."""
    preset = preset or config["preset"]
    wanted = config["presets"][preset].get("claims")
    claims = [c for c in config.get("claims", []) if wanted is None or c["id"] in wanted]
    if finding is None:
        if part is not None:
            raise ConfigError(f"part {part!r}: name the finding it is a part of (--finding)")
        return claims
    known = findings(config, preset)
    if finding not in known:
        raise ConfigError(f"finding {finding!r} is not tested by preset {preset!r} "
                          f"(choose {', '.join(known) or 'none: it tests no claim'})")
    claims = [c for c in claims if c["finding"] == finding]
    if part is None:
        return claims
    parts = finding_parts(config, preset, finding)
    if part not in parts:
        raise ConfigError(f"finding {finding!r} has no part {part!r} at preset {preset!r} "
                          f"(choose {', '.join(parts) or 'none: its claims use one family'})")
    return [c for c in claims if claim_family(config, c) == part]


def findings(config: Mapping, preset: str | None = None) -> list[str]:
    """The findings of the claims a preset tests, in registry order."""
    return list(dict.fromkeys(c["finding"] for c in tested_claims(config, preset)))


def row_experiments(config: Mapping, table: str, rows: list[str]) -> list[str]:
    """The experiments of rows (ids) of a table, in the given order."""
    experiment = {str(r["id"]): r["experiment"] for r in config["tables"][table]["rows"]}
    return [experiment[str(r)] for r in rows]


def claim_family(config: Mapping, claim: Mapping) -> str:
    """The architecture family (an experiment's `arch`) of the runs a claim compares: the
    family of its table's row of the claimed winner (a claim compares rows of one family)."""
    winner = row_experiments(config, claim["table"], claim_rows(claim)[:1])[0]
    return config["experiments"][winner]["arch"]


def finding_parts(config: Mapping, preset: str | None, finding: str) -> list[str]:
    """The parts of a finding whose claims compare runs of several architecture families:
    one per family, in registry order, each a target of its own
    (`snakemake claims_<finding>_<family>`), so that a finding too long for one working session
    runs part by part and its report is rebuilt from the parts' evidence (`pegan claims
    --evidence`). A finding of one family has no parts ([])."""
    families = list(dict.fromkeys(claim_family(config, c)
                                  for c in tested_claims(config, preset, finding)))
    return families if len(families) > 1 else []


def finding_target(finding: str, part: str | None = None) -> str:
    """The Snakemake target of one finding (claims.smk), or of one of its parts:
    `claims_<finding>[_<part>]`, dashes as underscores (a rule name)."""
    name = finding if part is None else f"{finding}_{part}"
    return f"claims_{name.replace('-', '_')}"


def claim_rows(claim: Mapping) -> list[str]:
    """Row ids a claim compares, the claimed winner first."""
    if "best" in claim:
        first = str(claim["best"])
        return [first, *(str(r) for r in claim["among"] if str(r) != first)]
    if "close" in claim:
        return [str(claim["close"]), str(claim["to"])]
    return [str(claim["better"]), str(claim["worse"])]


def claim_cells(config: Mapping, preset: str | None = None,
                finding: str | None = None, part: str | None = None) -> list[Cell]:
    """The table cells the preset's tested claims (of `finding`, of its `part`) compare (what
    `claims` has to evaluate)."""
    wanted = {(c["table"], row, c["column"])
              for c in tested_claims(config, preset, finding, part) for row in claim_rows(c)}
    return [c for c in cells(config, preset) if (c.table, c.row, c.column) in wanted]


def evaluations(config: Mapping, preset: str | None = None) -> list[Evaluation]:
    return sorted({c.evaluation for c in cells(config, preset)})


def selection_scales(config: Mapping, experiment: str, preset: str | None = None) -> list[int]:
    """Scales at which a run logs FID at its snapshots: those of its best-snapshot columns,
    or, with the preset's `snapshot_fid` (a learning curve without selection), every scale
    at which an FID of the run is evaluated."""
    preset = preset or config["preset"]
    curve = bool(config["presets"][preset].get("snapshot_fid", False))
    return sorted({e.scale for e in evaluations(config, preset)
                   if e.experiment == experiment and (
                       e.snapshot != "final"
                       or (curve and not e.generate_at
                           and "fid" in registry.parse_metric_set(e.metricset)))})


def runs(config: Mapping, preset: str | None = None) -> list[tuple[str, int]]:
    """Every (experiment, seed) the preset trains: all experiments of the registry."""
    preset = preset or config["preset"]
    seeds = config["presets"][preset]["seeds"]
    return [(name, seed) for name in config["experiments"] for seed in seeds]


def singan_experiments(config: Mapping) -> list[str]:
    return [n for n, e in config["experiments"].items() if e["arch"] == "singan"]


def mspie_experiments(config: Mapping) -> list[str]:
    return [n for n, e in config["experiments"].items() if len(e.get("scales", [])) > 1]

"""Regenerate a paper table from evaluation results.

Input: the metrics JSON files of the workflow (``<experiment>/seed<N>/<snapshot>-<scale>px-
<metrics>.json``, written by ``pegan evaluate``). Output: a CSV with the paper's rows and
columns in the paper's units (FID, SWD x10^3, precision/recall in %), the number of seeds and,
with several seeds, the standard deviation (``<column>_std``); and a provenance JSON beside it
(``<table>.provenance.json``) with the per-seed values and the protocol of every cell, which
``pegan compare`` uses to flag protocol differences.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from pegan import io, plan
from pegan.errors import PeganError
from pegan.metrics import registry

log = logging.getLogger(__name__)



def lower_is_better(metric: str) -> bool:
    """Direction of a table metric (an output key of a registered metric)."""
    return registry.outputs()[metric].lower_is_better


def provenance_path(csv_path: str | Path) -> Path:
    csv_path = Path(csv_path)
    return csv_path.with_name(csv_path.stem + ".provenance.json")


def _read_metrics(files: Sequence[str | Path]) -> dict[tuple[plan.Evaluation, int], dict]:
    results = {}
    for path in files:
        ev, seed = plan.parse_metrics_path(path)
        try:
            results[(ev, seed)] = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PeganError(f"cannot read metrics file {path} ({exc}); rerun its evaluation") from None
    return results


def cell_value(result: Mapping, metric: str, level: str | None, shown_levels: Sequence[str]) -> float:
    """One number of a metrics JSON in the paper's unit; NaN if absent."""
    values = result.get("values", {})
    output = registry.outputs()[metric]
    if output.levels:
        per_level = values.get(metric, {})
        if level == "avg":
            # The paper's "Avg." is the mean of the levels it prints.
            got = [per_level[lv] for lv in shown_levels if lv in per_level]
            return float(np.mean(got)) if got else math.nan
        return float(per_level.get(level, math.nan))
    value = values.get(metric)
    if value is None:
        return math.nan
    value = float(value)
    return 100.0 * value if output.percent else value


def build_table(config: Mapping, table: str, files: Sequence[str | Path],
                preset: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reproduced table (paper rows x columns) and its provenance."""
    preset = preset or config["preset"]
    if table not in config["tables"]:
        raise PeganError(f"table {table!r} is not in the config (known: {', '.join(config['tables'])})")
    spec = config["tables"][table]
    results = _read_metrics(files)
    by_eval: dict[plan.Evaluation, dict[int, dict]] = defaultdict(dict)
    for (ev, seed), result in results.items():
        by_eval[ev][seed] = result
    cells = [c for c in plan.cells(config, preset) if c.table == table]
    shown_levels = defaultdict(list)     # (row, metric) -> levels printed for that row
    for c in cells:
        if c.level is not None and c.level != "avg":
            shown_levels[(c.row, c.metric)].append(c.level)

    records, prov_cells = [], {}
    for row in spec["rows"]:
        row_id = str(row["id"])
        record: dict[str, Any] = {"row": row_id, "label": row["label"], "experiment": row["experiment"]}
        seeds_seen: set[int] = set()
        for col in spec["columns"]:
            cell = next((c for c in cells if c.row == row_id and c.column == col["key"]), None)
            per_seed = {}
            protocol = None
            if cell is not None:
                for seed, result in sorted(by_eval.get(cell.evaluation, {}).items()):
                    value = cell_value(result, cell.metric, cell.level,
                                       shown_levels[(row_id, cell.metric)])
                    if not math.isnan(value):
                        per_seed[seed] = value
                        protocol = protocol or result.get("protocol", {})
                if not per_seed:
                    log.warning("%s row %s column %s: no result (%s)", table, row_id, col["key"],
                                cell.evaluation)
            values = list(per_seed.values())
            seeds_seen |= set(per_seed)
            record[col["key"]] = float(np.mean(values)) if values else math.nan
            record[f"{col['key']}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            prov_cells.setdefault(row_id, {})[col["key"]] = {
                "evaluation": None if cell is None else {
                    "experiment": cell.evaluation.experiment, "snapshot": cell.evaluation.snapshot,
                    "scale": cell.evaluation.scale, "metrics": cell.evaluation.metricset,
                    "level": cell.level, "generate_at": cell.evaluation.generate_at or None},
                "metric": col["metric"],
                "per_seed": {str(s): v for s, v in per_seed.items()},
                "protocol": protocol,
            }
        record["seeds"] = len(seeds_seen)
        records.append(record)

    keys = [c["key"] for c in spec["columns"]]
    ordered = ["row", "label", "experiment", "seeds"]
    for key in keys:
        ordered += [key, f"{key}_std"]
    frame = pd.DataFrame.from_records(records)[ordered]
    provenance = {"table": table, "preset": preset, "title": spec["title"],
                  "columns": {c["key"]: dict(c) for c in spec["columns"]}, "cells": prov_cells}
    return frame, provenance


def write_table(frame: pd.DataFrame, provenance: Mapping, out: str | Path) -> None:
    io.write_text(out, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    io.write_json(provenance_path(out), provenance)


def read_table(path: str | Path) -> tuple[pd.DataFrame, dict]:
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"reproduced table {path} not found: run `snakemake {path}` first")
    frame = pd.read_csv(path, dtype={"row": str})
    prov_file = provenance_path(path)
    provenance = json.loads(prov_file.read_text()) if prov_file.is_file() else {}
    return frame, provenance


# ------------------------------------------------------------------------------ CLI


def add_args(p) -> None:
    p.add_argument("table", help="table name (a key of `tables` in the config)")
    p.add_argument("metrics", nargs="*", help="metrics JSON files written by `pegan evaluate`")
    p.add_argument("--out", required=True, help="output CSV (a .provenance.json is written beside it)")
    p.add_argument("--config", default=None)
    p.add_argument("--preset", default=None)


def run(args) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    frame, provenance = build_table(cfg, args.table, args.metrics, args.preset)
    write_table(frame, provenance, args.out)
    missing = int(frame[[c["key"] for c in cfg["tables"][args.table]["columns"]]].isna().sum().sum())
    log.info("wrote %s (%d rows, %d empty cells)", args.out, len(frame), missing)
    return 0

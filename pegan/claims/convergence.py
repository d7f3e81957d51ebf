"""Did the claim runs converge? The convergence table at the top of ``claims.md``.

One row per (claim row experiment, seed, evaluation scale): the final metrics the claim rows
were evaluated with (:data:`METRICS`, whichever the row has) beside the **held-out-real floor**,
the same metrics of real images of the same dataset that are not in the training set (the
images ``num_images``, ``num_images + 1``, ... of ``pegan prepare-data --first-index``), the
same number of them as fakes, against the same real features; and whether the run's
**learning curve has flattened** (:func:`flattened`, the one definition).

The planning half (:func:`heldout_evaluations`, :func:`heldout_images`, the paths) is what
the workflow's held-out rules and ``claims`` inputs call; the reading half
(:func:`convergence_rows`) what ``pegan claims`` calls. A dataset that cannot give held-out
images (one SinGAN image, a folder or the LFW subset with too few images left) gets no floor.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from pegan import plan
from pegan.errors import PeganError
from pegan.metrics import registry

# the metric outputs the table shows (each beside its held-out floor), in its column order
METRICS = ("fid", "precision", "recall", "structure", "diversity")
# the curve metrics, in order of preference: FID when the snapshots log it, else structure;
# their tolerances are config.yaml's `convergence` (defaults: the schema's)
CURVE_METRICS = ("fid", "structure")
HELDOUT_DIR = "heldout"

_HELDOUT_NAME = re.compile(rf"{HELDOUT_DIR}/(?P<dataset>[A-Za-z0-9_.-]+)/seed(?P<seed>\d+)/"
                           r"real-(?P<scale>\d+)px-(?P<metricset>[a-z]+(?:-[a-z]+)*)\.json$")
_CURVE_NAME = re.compile(r"(?P<experiment>[a-z0-9][a-z0-9-]*)/seed(?P<seed>\d+)/snapshots\.jsonl$")


# ------------------------------------------------------------------------ planning


@dataclass(frozen=True, order=True)
class HeldOut:
    """One evaluation of held-out reals: `metricset` at `scale` on `dataset`, against the real
    features of `experiment` (a claim experiment evaluated on that dataset at that scale)."""

    dataset: str
    scale: int
    metricset: str
    experiment: str


def _shown_metrics(metricset: str) -> set[str]:
    """The metrics of a set that compute a shown output (pr for precision, ...)."""
    owners = {registry.owner(key).name for key in METRICS}
    return {m for m in metricset.split("-") if m in owners}


def _sample_count(config: Mapping, preset: str, metricset: str) -> int:
    from pegan.evaluate import sample_count

    samples = config["presets"][preset]["samples"]
    return max(sample_count(samples, registry.get(m)) for m in metricset.split("-"))


def _can_hold_out(config: Mapping, preset: str, dataset: str, needed: int) -> bool:
    from pegan.data.prepare import images_after

    try:
        left = images_after(dataset, config["datasets"][dataset],
                            config["presets"][preset]["num_images"])
    except PeganError:              # a user dataset that is not there: no floor planned
        return False
    return left is None or left >= needed


def heldout_evaluations(config: Mapping, preset: str, finding: str | None = None,
                        part: str | None = None) -> list[HeldOut]:
    """The held-out evaluations the preset's claim rows need: one per (dataset, scale,
    metric set) of the claim cells (rendered at their scale) that show a :data:`METRICS`
    output, on datasets that can give that many held-out images."""
    specs = plan.specs(config, preset)
    chosen: dict[tuple[str, int, str], str] = {}
    for cell in plan.claim_cells(config, preset, finding, part):
        ev = cell.evaluation
        shown = _shown_metrics(ev.metricset)
        if ev.generate_at or not shown:
            continue
        key = (specs[ev.experiment].dataset, ev.scale, registry.metric_set(shown))
        chosen.setdefault(key, ev.experiment)
    needed: dict[tuple[str, int], int] = defaultdict(int)
    for dataset, scale, metricset in chosen:
        needed[(dataset, scale)] = max(needed[(dataset, scale)],
                                       _sample_count(config, preset, metricset))
    usable = {k for k, n in needed.items() if _can_hold_out(config, preset, k[0], n)}
    return sorted(HeldOut(*key, experiment) for key, experiment in chosen.items()
                  if key[:2] in usable)


def heldout_images(config: Mapping, preset: str, dataset: str, scale: int) -> int:
    """How many held-out images the (dataset, scale) zip holds: the largest sample count of
    its evaluations, so every metric reads as many held-out reals as fakes."""
    counts = [_sample_count(config, preset, h.metricset)
              for h in heldout_evaluations(config, preset)
              if (h.dataset, h.scale) == (dataset, int(scale))]
    if not counts:
        raise PeganError(f"no claim row of preset {preset!r} is evaluated on dataset "
                         f"{dataset!r} at {scale} px with held-out images")
    return max(counts)


def heldout_metrics_path(root: str, seed: int | str, h: HeldOut) -> str:
    return f"{root}/{HELDOUT_DIR}/{h.dataset}/seed{seed}/real-{h.scale}px-{h.metricset}.json"


def parse_heldout_path(path: str | Path) -> tuple[str, int, str]:
    """(dataset, scale, metric set) of a held-out metrics file."""
    match = _HELDOUT_NAME.search(Path(path).as_posix())
    if not match:
        raise PeganError(f"{path} is not named like a held-out metrics file "
                         f"({HELDOUT_DIR}/<dataset>/seed<N>/real-<scale>px-<metrics>.json)")
    return match["dataset"], int(match["scale"]), match["metricset"]


def claim_runs(config: Mapping, preset: str, finding: str | None = None,
               part: str | None = None) -> list[tuple[str, int]]:
    """(experiment, seed) of every claim row's run (of `finding`, of its `part`), in claim
    order."""
    experiments = dict.fromkeys(c.evaluation.experiment
                                for c in plan.claim_cells(config, preset, finding, part))
    return [(e, s) for e in experiments for s in config["presets"][preset]["seeds"]]


# ---------------------------------------------------------------- learning curves


def curve_run(path: str | Path) -> tuple[str, int] | None:
    """(experiment, seed) of a run's `<experiment>/seed<N>/snapshots.jsonl`, else None."""
    match = _CURVE_NAME.search(Path(path).as_posix())
    return (match["experiment"], int(match["seed"])) if match else None


def read_curve(path: str | Path) -> list[dict]:
    """The records of a snapshots.jsonl ([] for a missing or empty file)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                raise PeganError(f"{path}:{number}: not a JSON line; rerun the training job "
                                 "that wrote it") from None
    return records


def curve(records: Sequence[Mapping], scale: int | None = None
          ) -> tuple[str | None, list[float]]:
    """(key, finite values in snapshot order) of the curve metric: the first of
    :data:`CURVE_METRICS` with a logged value, at `scale` when logged there, else at the
    largest logged size; (None, []) without one."""
    records = sorted(records, key=lambda r: r.get("iterations", 0))

    def finite(key):
        return [float(r[key]) for r in records if isinstance(r.get(key), (int, float))
                and math.isfinite(r[key])]

    for metric in CURVE_METRICS:
        keys = sorted({k for r in records for k in r if k.startswith(f"{metric}@")},
                      key=lambda k: int(k.partition("@")[2] or 0))
        if not keys:
            continue
        key = f"{metric}@{scale}" if f"{metric}@{scale}" in keys else keys[-1]
        if finite(key):
            return key, finite(key)
    return None, []


def flattened(values: Sequence[float], tolerance: Mapping[str, float]) -> bool | None:
    """THE definition: a curve has flattened when its last two values differ by at most
    ``max(abs, rel * |previous|)``; None (undecided) with fewer than two values."""
    if len(values) < 2:
        return None
    previous, last = float(values[-2]), float(values[-1])
    return abs(last - previous) <= max(float(tolerance["abs"]),
                                       float(tolerance["rel"]) * abs(previous))


def definition(tolerances: Mapping[str, Mapping[str, float]]) -> str:
    """The flattened definition in one sentence, with the tolerances in force."""
    tols = "; ".join(f"{m}: abs {tolerances[m]['abs']:g}, rel {tolerances[m]['rel']:g}"
                     for m in CURVE_METRICS)
    return ("A learning curve has **flattened** when the last two snapshots' values of its "
            "curve metric (FID when the snapshots log it, else the layout agreement "
            "`structure`) differ by at most max(abs, rel × |previous value|) "
            f"(config `convergence`: {tols}); — with fewer than two snapshots.")


# ------------------------------------------------------------------- the table


@dataclass
class ConvergenceRow:
    experiment: str
    seed: int
    scale: int                                  # evaluation size, preset pixels
    dataset: str
    rows: list[str]                             # the claim rows it is, as table:row
    values: dict[str, float] = field(default_factory=dict)     # METRICS, paper units
    floor: dict[str, float] = field(default_factory=dict)      # held-out reals, same units
    curve_key: str | None = None
    curve: list[float] = field(default_factory=list)
    flattened: bool | None = None


CSV_FIELDS = (["experiment", "seed", "px", "dataset", "rows"]
              + [f"{m}{suffix}" for m in METRICS for suffix in ("", "_heldout")]
              + ["curve_metric", "snapshots", "curve_previous", "curve_last", "flattened"])


def _snapshot_rank(snapshot: str) -> float:
    return math.inf if snapshot == "final" else float(snapshot.rstrip("M"))


def _read_json(path: str | Path, what: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PeganError(f"cannot read {what} {path} ({exc}); rerun the job that wrote it"
                         ) from None


def _values(result: Mapping) -> dict[str, float]:
    from pegan.tables import cell_value

    return {m: cell_value(result, m, None, ()) for m in METRICS
            if result.get("values", {}).get(m) is not None}


def convergence_rows(config: Mapping, preset: str, metrics: Iterable[str | Path],
                     heldout: Iterable[str | Path] = (), curves: Iterable[str | Path] = (),
                     tolerances: Mapping | None = None,
                     finding: str | None = None, part: str | None = None
                     ) -> list[ConvergenceRow]:
    """The convergence table of the preset's claim rows (of `finding`, of its `part`) from
    their metrics files, the held-out floors' metrics files and the runs' snapshots.jsonl
    (missing files: empty)."""
    tolerances = tolerances or config["convergence"]
    specs = plan.specs(config, preset)
    claim_evals = set()
    labels: dict[tuple[str, int], list[str]] = defaultdict(list)
    for cell in plan.claim_cells(config, preset, finding, part):
        ev = cell.evaluation
        if ev.generate_at:
            continue
        claim_evals.add(ev)
        label = f"{cell.table}:{cell.row}"
        if label not in labels[(ev.experiment, ev.scale)]:
            labels[(ev.experiment, ev.scale)].append(label)
    found: dict[tuple[str, int, int], dict[str, tuple[float, float]]] = defaultdict(dict)
    for path in metrics:
        ev, seed = plan.parse_metrics_path(path)
        if ev not in claim_evals:
            continue
        rank = _snapshot_rank(ev.snapshot)
        slot = found[(ev.experiment, seed, ev.scale)]
        for metric, value in _values(_read_json(path, "metrics file")).items():
            if metric not in slot or rank >= slot[metric][0]:   # the latest snapshot wins
                slot[metric] = (rank, value)
    floors: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    for path in heldout:
        dataset, scale, _ = parse_heldout_path(path)
        floors[(dataset, scale)].update(_values(_read_json(path, "held-out metrics file")))
    logs = {}
    for path in curves:
        run = curve_run(path)
        if run:
            logs[run] = read_curve(path)
    out = []
    for (experiment, scale), rows in labels.items():
        dataset = specs[experiment].dataset
        for seed in config["presets"][preset]["seeds"]:
            key, values = curve(logs.get((experiment, int(seed)), []), scale)
            metric = key.partition("@")[0] if key else None
            out.append(ConvergenceRow(
                experiment, int(seed), scale, dataset, list(rows),
                {m: v for m, (_, v) in found.get((experiment, int(seed), scale), {}).items()},
                dict(floors.get((dataset, scale), {})), key, values,
                flattened(values, tolerances[metric]) if metric else None))
    return out


def _fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.3g}" if abs(x) < 0.01 and x != 0 else f"{x:.3f}" if abs(x) < 10 else f"{x:.2f}"


def _yes_no(value: bool | None) -> str:
    return "—" if value is None else "yes" if value else "**no**"


def markdown(rows: Sequence[ConvergenceRow], tolerances: Mapping, num_images: int) -> list[str]:
    """The report's convergence section (Markdown lines)."""
    shown = [m for m in METRICS if any(m in r.values for r in rows)]
    lines = ["## Convergence", "",
             "Before the verdicts: did the compared runs converge? Each claim row's final "
             "metrics beside the **held-out-real floor** (in parentheses): the same metrics of "
             f"real images of the same dataset that are not in the training set (images "
             f"{num_images}, {num_images + 1}, … ; the same number of them as fakes, against "
             "the same real features; — where the dataset has none, e.g. SinGAN's single "
             "image). A run near its floor has learnt the data; a run far above it is "
             "under-trained and its comparisons are weak.", "", definition(tolerances), ""]
    if not rows:
        return lines + ["No claim row is evaluated at this preset.", ""]
    header = ["run", "seed", "px", "claim rows", *(_label(m) for m in shown), "curve",
              "flattened"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        trail = " → ".join(_fmt(v) for v in r.curve[-2:])
        cells = [r.experiment, str(r.seed), str(r.scale), ", ".join(r.rows),
                 *(f"{_fmt(r.values.get(m))} ({_fmt(r.floor.get(m))})" for m in shown),
                 f"{r.curve_key}: {trail} ({len(r.curve)} snapshot{'s' * (len(r.curve) != 1)})"
                 if r.curve_key else "—",
                 _yes_no(r.flattened)]
        lines.append("| " + " | ".join(cells) + " |")
    flat = [r.flattened for r in rows if r.flattened is not None]
    lines += ["", f"Flattened: {sum(flat)}/{len(flat)} runs with at least two snapshots "
                  f"({len(rows) - len(flat)} with fewer).", ""]
    return lines


def _label(metric: str) -> str:
    out = registry.outputs()[metric]
    arrow = "↓" if out.lower_is_better else "↑"
    return f"{metric}{' (%)' if out.percent else ''} {arrow} (held-out)"


def frame(rows: Sequence[ConvergenceRow]):
    """The convergence table as a DataFrame (the CSV beside claims.csv): fixed columns."""
    import pandas as pd

    records = []
    for r in rows:
        rec = {"experiment": r.experiment, "seed": r.seed, "px": r.scale, "dataset": r.dataset,
               "rows": ";".join(r.rows), "curve_metric": r.curve_key or "",
               "snapshots": len(r.curve),
               "curve_previous": r.curve[-2] if len(r.curve) > 1 else math.nan,
               "curve_last": r.curve[-1] if r.curve else math.nan,
               "flattened": "" if r.flattened is None else r.flattened}
        for m in METRICS:
            rec[m] = r.values.get(m, math.nan)
            rec[f"{m}_heldout"] = r.floor.get(m, math.nan)
        records.append(rec)
    return pd.DataFrame.from_records(records, columns=CSV_FIELDS)

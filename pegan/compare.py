"""Reported versus reproduced: every table cell and every qualitative claim of the paper.

Per cell: reported value, reproduced mean (± std over seeds, n), delta, relative delta, the
tolerance ``max(abs, rel * |reported|)`` of the metric (config ``tolerances``) and a verdict:

* ``within`` / ``outside`` the tolerance,
* ``missing`` (no reproduced value), ``no reference`` (the paper prints none).

Independently, ``comparable`` says whether both sides used the same protocol
(``results/reported/protocols.yaml``); the notes name every difference (preset not
``paper``, Inception vs VGG16 features for P&R, clean vs legacy FID, sample counts, k). The
``paper`` preset measures each reported column with the reported protocol, so its cells are
comparable; a column pegan adds to a paper table (``fid_clean``) has ``no reference``. A
``regression`` is a comparable cell outside its tolerance in the worse direction.

Claims (config ``claims``): the reproduction's verdict is the one of ``pegan claims`` (its
claims CSV, ``--claims-csv``: Welch tests across seeds, Holm-corrected over the tested claims),
so "held" means the same thing in claims.md and here; a claim the CSV does not list is
``not tested``, and without a CSV every claim is (the report says so). Beside it, the mean
margin of the reproduced table (descriptive) and, as a check of how the claim is encoded, the
direction on the reported numbers: ``consistent`` / ``inconsistent`` / ``not comparable`` (a
value missing).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
import yaml

from pegan import io
from pegan.config import repo_file
from pegan.errors import PeganError
from pegan.tables import lower_is_better, read_table

log = logging.getLogger(__name__)

FAIL_MODES = ("never", "regression", "outside", "claims")


@dataclass
class CellResult:
    table: str
    row: str
    column: str
    metric: str
    reported: float
    reproduced: float
    std: float
    n: int
    delta: float
    rel_delta: float
    tolerance: float
    verdict: str
    comparable: bool
    regression: bool
    notes: list[str] = field(default_factory=list)


NOT_TESTED = "not tested"


@dataclass
class ClaimResult:
    id: str
    text: str
    table: str
    column: str
    reproduced: str          # `pegan claims` verdict (Holm-corrected) | not tested
    reported: str            # paper's numbers: consistent | inconsistent | not comparable
    margin: float            # mean margin, worse - better in "lower is better" orientation
    detail: str
    reproduced_raw: str = NOT_TESTED     # `pegan claims` verdict before the correction
    p: float = math.nan                  # the claim's p (claimed direction), raw
    p_holm: float = math.nan             # ... Holm-adjusted


# ------------------------------------------------------------------------- protocols


def load_reported_protocols(path: str | Path | None = None) -> dict:
    path = Path(path) if path else repo_file("results/reported/protocols.yaml")
    return yaml.safe_load(path.read_text()) if path.is_file() else {}


def protocol_notes(metric: str, reported: Mapping | None, reproduced: Mapping | None,
                   preset: str) -> list[str]:
    """Human-readable differences between the reported and the reproduced protocol."""
    notes = []
    if preset != "paper":
        notes.append(f"preset {preset} (paper protocol needs preset paper)")
    if not reported:
        notes.append("reported protocol unknown")
        return notes
    if not reproduced:
        return notes
    rep_net, our_net = reported.get("network"), reproduced.get("network")
    if rep_net and our_net and not _same_network(rep_net, our_net):
        notes.append(f"features {our_net} vs reported {rep_net}")
    if metric in ("fid", "kid") and reported.get("mode") and reproduced.get("mode") \
            and reported["mode"] != reproduced["mode"]:
        notes.append(f"FID mode {reproduced['mode']} vs reported {reported['mode']}")
    if metric in ("fid", "kid") and reported.get("real_protocol") \
            and reproduced.get("real_protocol") \
            and reported["real_protocol"] != reproduced["real_protocol"]:
        notes.append(f"real statistics {reproduced['real_protocol']} vs reported "
                     f"{reported['real_protocol']}")
    for key in ("num_fake", "num_real", "k"):
        if reported.get(key) and reproduced.get(key) and int(reported[key]) != int(reproduced[key]):
            notes.append(f"{key} {reproduced[key]} vs reported {reported[key]}")
    return notes


PEGAN_ONLY = "pegan-only column (the paper reports no number)"


def _same_network(a: str, b: str) -> bool:
    a, b = a.lower(), b.lower()
    return ("vgg" in a) == ("vgg" in b) and ("pytorch-fid" in a) == ("pytorch-fid" in b)


# ----------------------------------------------------------------------------- cells


def _tolerance(tolerances: Mapping, metric: str, reported: float) -> float:
    tol = tolerances.get(metric)
    if tol is None or math.isnan(reported):
        return math.nan
    return max(float(tol["abs"]), float(tol["rel"]) * abs(reported))


def compare_table(config: Mapping, table: str, reproduced: pd.DataFrame, provenance: Mapping,
                  reported: pd.DataFrame, reported_protocol: Mapping | None,
                  preset: str) -> list[CellResult]:
    spec = config["tables"][table]
    reproduced = reproduced.set_index("row")
    reported = reported.set_index("row")
    out = []
    for row in spec["rows"]:
        row_id = str(row["id"])
        for col in spec["columns"]:
            key, metric = col["key"], col["metric"]
            if key in row.get("skip", []):
                continue
            rep = _get(reported, row_id, key)
            ours = _get(reproduced, row_id, key)
            std = _get(reproduced, row_id, f"{key}_std")
            cell_prov = provenance.get("cells", {}).get(row_id, {}).get(key, {})
            n = len(cell_prov.get("per_seed", {})) if cell_prov else (0 if math.isnan(ours) else 1)
            ours_protocol = _metric_protocol(cell_prov.get("protocol") if cell_prov else None, metric)
            rep_protocol = (reported_protocol or {}).get(metric)
            if len(reported.columns) and key not in reported.columns:
                # a column pegan adds to a paper table (the clean FID beside the legacy one):
                # nothing to compare, so no protocol to flag
                notes = [PEGAN_ONLY]
            else:
                notes = protocol_notes(metric, rep_protocol, ours_protocol, preset)
            delta = ours - rep
            rel = delta / abs(rep) if rep and not math.isnan(rep) else math.nan
            tol = _tolerance(config.get("tolerances", {}), metric, rep)
            if math.isnan(rep):
                verdict = "no reference"
            elif math.isnan(ours):
                verdict = "missing"
            elif math.isnan(tol):
                verdict = "no tolerance"
            else:
                verdict = "within" if abs(delta) <= tol else "outside"
            worse = delta > 0 if lower_is_better(metric) else delta < 0
            comparable = not notes and verdict in ("within", "outside")
            out.append(CellResult(table, row_id, key, metric, rep, ours, std, n, delta, rel, tol,
                                  verdict, comparable, comparable and verdict == "outside" and worse,
                                  notes))
    return out


def _metric_protocol(protocol: Mapping | None, metric: str) -> Mapping | None:
    """The protocol of one metric of an evaluation: `per_metric[metric]` over the flat fields."""
    if not protocol:
        return None
    return {**protocol, **protocol.get("per_metric", {}).get(metric, {})}


def _get(frame: pd.DataFrame, row: str, key: str) -> float:
    if key not in frame.columns or row not in frame.index:
        return math.nan
    value = frame.loc[row, key]
    return float(value) if pd.notna(value) else math.nan


# ---------------------------------------------------------------------------- claims


def _oriented(metric: str, x: float) -> float:
    """Value in 'lower is better' orientation."""
    return x if lower_is_better(metric) else -x


def _pair_margin(metric: str, better: float, worse: float) -> float:
    return _oriented(metric, worse) - _oriented(metric, better)


def _direction(metric: str, pairs: list[tuple[float, float]],
               margin_rel: float = 0.0) -> tuple[str, float]:
    """Direction of single values (the paper's numbers), pairs of (better, worse):
    consistent with the claim if every pair has a positive margin. With `margin_rel`
    (non-inferiority), `better` may be worse than `worse` by up to margin_rel * |worse|.
    A description of numbers, not a test: the verdict on the reproduction is `pegan claims`'."""
    if any(math.isnan(b) or math.isnan(w) for b, w in pairs):
        return "not comparable", math.nan
    margin = min(_pair_margin(metric, b, w) + margin_rel * abs(w) for b, w in pairs)
    return ("consistent" if margin > 0 else "inconsistent"), margin


def read_claim_stats(path: str | Path | None) -> pd.DataFrame | None:
    """The claims CSV of `pegan claims` (None: no file given; an empty file: no claim)."""
    if not path:
        return None
    if not Path(path).is_file():
        raise PeganError(f"--claims-csv {path} not found: run `pegan claims` first")
    try:
        return pd.read_csv(path, dtype={"winner": str, "other": str})
    except pd.errors.EmptyDataError:      # an empty file: no claim was tested
        return pd.DataFrame({"claim": pd.Series(dtype=str)})


def claim_verdicts(claim_stats: pd.DataFrame | None) -> dict[str, dict]:
    """{claim id: {verdict, raw, p, p_holm}} from a claims CSV (one row per pair)."""
    if claim_stats is None or not len(claim_stats):
        return {}
    out = {}
    for claim, group in claim_stats.groupby("claim", sort=False):
        first = group.iloc[0]
        get = lambda key, default=math.nan: first[key] if key in group.columns else default  # noqa: E731
        out[str(claim)] = {"verdict": str(first["claim_verdict"]),
                           # a CSV of an older pegan has no correction: its verdict is raw
                           "raw": str(get("claim_verdict_raw", first["claim_verdict"])),
                           "p": float(get("claim_p")), "p_holm": float(get("claim_p_holm"))}
    return out


def check_claims(config: Mapping, reproduced: Mapping[str, tuple[pd.DataFrame, dict]],
                 reported: Mapping[str, pd.DataFrame],
                 claim_stats: pd.DataFrame | None = None) -> list[ClaimResult]:
    """Every claim of the config: the `pegan claims` verdict (`claim_stats`, its CSV), the
    reproduced mean margin and the direction on the reported numbers."""
    tested = claim_verdicts(claim_stats)
    out = []
    for claim in config.get("claims", []):
        table, key = claim["table"], claim["column"]
        metric = next(c["metric"] for c in config["tables"][table]["columns"] if c["key"] == key)
        if "best" in claim:
            best = str(claim["best"])
            others = [str(r) for r in claim["among"] if str(r) != best]
            pairs_ids = [(best, o) for o in others]
        elif "close" in claim:
            pairs_ids = [(str(claim["close"]), str(claim["to"]))]
        else:
            pairs_ids = [(str(claim["better"]), str(claim["worse"]))]
        repro_frame, prov = reproduced.get(table, (None, {}))
        rep_frame = reported.get(table)

        def values(frame, ids):
            if frame is None:
                return [(math.nan, math.nan)] * len(ids)
            indexed = frame.set_index("row")
            return [(_get(indexed, b, key), _get(indexed, w, key)) for b, w in ids]

        margin_rel = float(claim.get("margin", 0.0))
        _, margin = _direction(metric, values(repro_frame, pairs_ids), margin_rel)
        theirs, _ = _direction(metric, values(rep_frame, pairs_ids), margin_rel)
        detail = ", ".join(f"{b} vs {w}" for b, w in pairs_ids)
        test = tested.get(claim["id"], {})
        out.append(ClaimResult(claim["id"], claim["text"], table, key,
                               test.get("verdict", NOT_TESTED), theirs, margin, detail,
                               test.get("raw", NOT_TESTED), test.get("p", math.nan),
                               test.get("p_holm", math.nan)))
    return out


# --------------------------------------------------------------------------- report


def _fmt(x: float, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def render_markdown(preset: str, cells: list[CellResult], claims: list[ClaimResult],
                    titles: Mapping[str, str], claim_stats: pd.DataFrame | None = None) -> str:
    counts = pd.Series([c.verdict for c in cells]).value_counts().to_dict() if cells else {}
    comparable = sum(c.comparable for c in cells)
    regressions = sum(c.regression for c in cells)
    tested = [c for c in claims if c.reproduced != NOT_TESTED]
    consistent = (f"{sum(c.reported == 'consistent' for c in claims)}/{len(claims)} are "
                  "consistent with the reported numbers.")
    if claim_stats is None:
        claims_line = ("**Claims:** not judged here: no claims CSV of `pegan claims` was given "
                       "(`--claims-csv`), so every claim is 'not tested'; the margins are mean "
                       f"differences only. {consistent}")
    else:
        claims_line = (
            f"**Claims** (verdicts of `pegan claims`, Holm-corrected over the {len(tested)} "
            f"tested): {sum(c.reproduced == 'held' for c in tested)}/{len(tested)} held "
            f"(uncorrected {sum(c.reproduced_raw == 'held' for c in tested)}), "
            f"{sum(c.reproduced == 'not held' for c in tested)} not held, "
            f"{sum(c.reproduced == 'inconclusive' for c in tested)} inconclusive; "
            f"{len(claims) - len(tested)} not tested at this preset. {consistent}")
    lines = [
        f"# pegan: reported vs reproduced ({preset} preset)",
        "",
        f"**Cells:** {len(cells)} — " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + f"; {comparable} with the paper's protocol; {regressions} regressions.",
        claims_line,
        "",
    ]
    if preset != "paper":
        lines += [f"> The **{preset}** preset runs the paper's code paths at a small scale: its "
                  "numbers are not comparable with the paper's; deltas are shown for completeness.",
                  ""]
    lines += ["## Claims", "",
              "| claim | table | column | reproduced (pegan claims) | uncorrected | p | p (Holm) "
              "| mean margin | reported numbers |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        lines.append(f"| {c.text} | {c.table} | {c.column} | {c.reproduced} | {c.reproduced_raw} "
                     f"| {_fmt(c.p)} | {_fmt(c.p_holm)} | {_fmt(c.margin)} | {c.reported} |")
    if claim_stats is not None and len(claim_stats):
        lines += ["", "## Claims across seeds (`pegan claims`, see claims.md)", "",
                  "| finding | claim | verdict | pairs (winner vs other: p, Hedges' g) |",
                  "|---|---|---|---|"]
        for (finding, claim), group in claim_stats.groupby(["finding", "claim"], sort=False):
            pairs = "; ".join(
                f"{r.winner} vs {r.other}: p={_fmt(float(r.p))}, g={_fmt(float(r.hedges_g), 2)}"
                for r in group.itertuples() if isinstance(r.winner, str) or not pd.isna(r.winner))
            lines.append(f"| {finding} | {claim} | {group['claim_verdict'].iloc[0]} | {pairs} |")
    for table in dict.fromkeys(c.table for c in cells):
        table_cells = [c for c in cells if c.table == table]
        # protocol differences are listed once under the table and referenced by number
        notes = list(dict.fromkeys(n for c in table_cells for n in c.notes))
        lines += ["", f"## {titles.get(table, table)}", "",
                  "| row | column | reported | reproduced | n | Δ | Δ % | tol. | verdict | protocol |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for c in table_cells:
            ours = _fmt(c.reproduced) + ("" if math.isnan(c.std) else f" ± {_fmt(c.std)}")
            rel = "—" if math.isnan(c.rel_delta) else f"{100 * c.rel_delta:+.1f}"
            protocol = ("differs " + ",".join(f"[{notes.index(n) + 1}]" for n in c.notes)
                        if c.notes else "same")
            lines.append(f"| {c.row} | {c.column} | {_fmt(c.reported)} | {ours} | {c.n} | "
                         f"{_fmt(c.delta)} | {rel} | {_fmt(c.tolerance)} | {c.verdict} | {protocol} |")
        if notes:
            lines += ["", "Protocol differences (reproduced vs reported):", ""]
            lines += [f"{i}. {note}" for i, note in enumerate(notes, 1)]
    return "\n".join(lines) + "\n"


def compare(config: Mapping, table_files: Sequence[str | Path], preset: str,
            reported_protocols: Mapping | None = None,
            claim_stats: pd.DataFrame | None = None) -> tuple[list[CellResult], list[ClaimResult]]:
    reproduced = {}
    for path in table_files:
        name = Path(path).stem
        if name not in config["tables"]:
            raise PeganError(f"{path}: {name!r} is not a table of the config")
        reproduced[name] = read_table(path)
    protocols = load_reported_protocols() if reported_protocols is None else reported_protocols
    reported, cells = {}, []
    for name, (frame, prov) in reproduced.items():
        if config["tables"][name].get("reported") is None:      # pegan-only table
            reported[name] = pd.DataFrame({"row": pd.Series(dtype=str)})
            cells += compare_table(config, name, frame, prov, reported[name], None, preset)
            continue
        rep_path = repo_file(config["tables"][name]["reported"])
        if not rep_path.is_file():
            raise PeganError(f"reported numbers {rep_path} not found (tables.{name}.reported)")
        reported[name] = pd.read_csv(rep_path, dtype={"row": str})
        cells += compare_table(config, name, frame, prov, reported[name], protocols.get(name), preset)
    return cells, check_claims(config, reproduced, reported, claim_stats)


def write_outputs(cells: list[CellResult], claims: list[ClaimResult], preset: str,
                  titles: Mapping[str, str], md_path: str | Path, csv_path: str | Path | None,
                  claim_stats: pd.DataFrame | None = None) -> None:
    io.write_text(md_path, render_markdown(preset, cells, claims, titles, claim_stats))
    if csv_path:
        frame = pd.DataFrame([{**asdict(c), "notes": "; ".join(c.notes)} for c in cells])
        io.write_text(csv_path, frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))
        claims_frame = pd.DataFrame([asdict(c) for c in claims])
        io.write_text(Path(csv_path).with_name(Path(csv_path).stem + "-claims.csv"),
                      claims_frame.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def exit_status(cells: list[CellResult], claims: list[ClaimResult], fail_on: str) -> int:
    if fail_on == "regression" and any(c.regression for c in cells):
        return 1
    if fail_on == "outside" and any(c.comparable and c.verdict == "outside" for c in cells):
        return 1
    if fail_on == "claims" and any(c.reproduced == "not held" for c in claims):
        return 1
    return 0


# ------------------------------------------------------------------------------ CLI


def add_args(p) -> None:
    p.add_argument("tables", nargs="+", help="reproduced table CSVs written by `pegan table`")
    p.add_argument("--out", required=True, help="comparison Markdown file")
    p.add_argument("--csv", default=None, help="per-cell CSV (claims go to <stem>-claims.csv)")
    p.add_argument("--config", default=None)
    p.add_argument("--preset", default=None)
    p.add_argument("--protocols", default=None,
                   help="protocols of the reported numbers (default: results/reported/protocols.yaml)")
    p.add_argument("--claims-csv", default=None,
                   help="claims.csv written by `pegan claims`: the claims' verdicts (Holm-"
                        "corrected tests across seeds); without it no claim is judged")
    p.add_argument("--fail-on", choices=FAIL_MODES, default="never",
                   help="exit 1 on: a regression (comparable cell outside tolerance, worse), any "
                        "comparable cell outside tolerance, or a claim not held")


def run(args) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    preset = args.preset or cfg["preset"]
    protocols = load_reported_protocols(args.protocols) if args.protocols else None
    claim_stats = read_claim_stats(args.claims_csv)
    cells, claims = compare(cfg, args.tables, preset, protocols, claim_stats)
    titles = {name: t["title"].split(":")[0] for name, t in cfg["tables"].items()}
    write_outputs(cells, claims, preset, titles, args.out, args.csv, claim_stats)
    status = exit_status(cells, claims, args.fail_on)
    tested = [c for c in claims if c.reproduced != NOT_TESTED]
    verdicts = (f"claims held {sum(c.reproduced == 'held' for c in tested)}/{len(tested)} tested "
                "(pegan claims, Holm-corrected)" if claim_stats is not None else
                "claims not judged (no --claims-csv)")
    print(f"comparison: {len(cells)} cells, {sum(c.comparable for c in cells)} comparable, "
          f"{sum(c.regression for c in cells)} regressions; {verdicts} -> {args.out}")
    return status

"""The claims outputs: the Markdown report (its convergence section from
:mod:`pegan.claims.convergence`), the per-pair CSV, the convergence CSV (and the figure, via
:mod:`pegan.claims.plot`)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pegan import io, plan
from pegan.claims.check import ClaimTest
from pegan.claims.convergence import ConvergenceRow
from pegan.claims.convergence import frame as convergence_frame
from pegan.claims.convergence import markdown as convergence_markdown
from pegan.claims.plot import figure
from pegan.claims.stats import ALPHA, VERDICTS, PairTest, combine
from pegan.tables import lower_is_better

# claim_verdict: after Holm's correction over the tested claims (what `pegan compare` and
# the headline count read); claim_verdict_raw: at alpha, uncorrected; claim_p*: the claim's
# p-values (claimed direction = largest pair p, reverse = smallest pair reverse p), raw and
# Holm-adjusted. The pair columns (PAIR_FIELDS: p, verdict, ...) are each pair's raw test.
CLAIM_FIELDS = ["finding", "claim", "claim_verdict", "table", "column", "metric", "kind",
                "claim_verdict_raw", "claim_p", "claim_p_holm", "claim_p_reverse",
                "claim_p_reverse_holm"]
PAIR_FIELDS = [f.name for f in fields(PairTest)] + ["winner_per_seed", "other_per_seed"]


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"


def frame(claims: Sequence[ClaimTest]) -> pd.DataFrame:
    """One CSV row per (claim, pair); the columns are fixed, so that a run that tests no
    claim (a workflow slice) still writes a CSV with its header."""
    records = []
    for c in claims:
        for p in c.pairs or [None]:
            rec = dict(zip(CLAIM_FIELDS, (c.finding, c.id, c.verdict, c.table, c.column,
                                          c.metric, c.kind, c.raw_verdict, c.p, c.p_adjusted,
                                          c.p_reverse, c.p_reverse_adjusted)))
            if p is not None:
                rec.update(asdict(p))
                rec["winner_per_seed"] = ";".join(f"{s}:{v:.6g}" for s, v in sorted(c.per_seed[p.winner].items()))
                rec["other_per_seed"] = ";".join(f"{s}:{v:.6g}" for s, v in sorted(c.per_seed[p.other].items()))
            rec["source"] = c.source
            records.append(rec)
    return pd.DataFrame.from_records(records, columns=CLAIM_FIELDS + PAIR_FIELDS + ["source"])


def _seed_gaps(claims: Sequence[ClaimTest], seeds: Sequence[int]) -> str:
    """The preset's seeds that no compared row has a result for (a report bundled before its
    runs were all trained), then the rows (``table:row``) with results for fewer seeds than
    the others, as clauses of the header's seeds line."""
    rows: dict[str, set[str]] = {}
    for c in claims:
        for row, values in c.per_seed.items():
            rows.setdefault(f"{c.table}:{row}", set()).update(map(str, values))
    found = set().union(*rows.values())
    missing = [str(s) for s in seeds if str(s) not in found]
    clauses = [f"; no result yet for seed {', '.join(missing)}"] if missing else []
    full = len(found & {str(s) for s in seeds})
    short = [f"{row} {len(got)} ({', '.join(sorted(got, key=int))})"
             for row, got in sorted(rows.items()) if 0 < len(got) < full]
    if short:
        clauses.append(f"; fewer in {'; '.join(short)}")
    return "".join(clauses)


def _tested(claims: Sequence[ClaimTest]) -> int:
    """How many of `claims` have a test (a claimed-direction p): Holm's family size."""
    return sum(not math.isnan(c.p) for c in claims)


def _family(claims: Sequence[ClaimTest]) -> str:
    """The header's Holm family: the claims with a test, and why the others are left out."""
    tested, reverse = _tested(claims), sum(not math.isnan(c.p_reverse) for c in claims)
    if tested == len(claims):
        return {0: "no claim", 1: "the one claim"}.get(tested, f"all {tested} claims")
    untested = len(claims) - tested
    return (f"{tested} of the {len(claims)} claims"
            f"{f' ({reverse} in the reverse direction)' if reverse != tested else ''}; "
            + ("the other has no test (a row without results, or one seed per row), so no "
               "p, and is not counted" if untested == 1 else
               f"the other {untested} have no test (a row without results, or one seed per "
               "row), so no p, and are not counted"))


def render_markdown(config: Mapping, claims: Sequence[ClaimTest], preset: str, *,
                    alpha: float = ALPHA, seconds: Mapping[str, float] | None = None,
                    header: Mapping[str, str] | None = None,
                    convergence: Sequence[ConvergenceRow] | None = None) -> str:
    """The report; `convergence` (rows of :func:`pegan.claims.convergence.convergence_rows`)
    adds the convergence section before the verdicts."""
    findings: dict[str, list[ClaimTest]] = defaultdict(list)
    for c in claims:
        findings[c.finding].append(c)
    verdicts = {f: combine([c.verdict for c in cs]) for f, cs in findings.items()}
    raw_findings = {f: combine([c.raw_verdict for c in cs]) for f, cs in findings.items()}
    seeds = config["presets"][preset]["seeds"]
    lines = [f"# pegan: the paper's claims at the `{preset}` preset", ""]
    for key, value in (header or {}).items():
        lines.append(f"- **{key}:** {value}")
    lines += [
        f"- **Seeds per row:** {len(seeds)} ({', '.join(map(str, seeds))})"
        f"{_seed_gaps(claims, seeds)}",
        f"- **Test:** Welch's one-sided t-test per pair of rows, α = {alpha}; effect size "
        "Hedges' g (positive: in the claimed direction). Verdicts: held (claimed direction "
        "significant), not held (opposite direction significant), inconclusive (neither).",
        "- **Multiple testing:** Holm's step-down correction over the tested claims "
        "(family-wise error rate ≤ α under any dependence between them), for each "
        f"direction: {_family(claims)}. A claim's p is the largest of its pairs' (every pair "
        "must hold). The verdicts and counts below are the corrected ones; the uncorrected "
        "ones are given beside them.",
        "",
    ]
    if convergence is not None:
        lines += convergence_markdown(convergence, config["convergence"],
                                      config["presets"][preset]["num_images"])
        lines += ["## Verdicts", ""]
    lines += [
        f"**Findings:** {sum(v == 'held' for v in verdicts.values())}/{len(verdicts)} held, "
        f"{sum(v == 'not held' for v in verdicts.values())} not held, "
        f"{sum(v == 'inconclusive' for v in verdicts.values())} inconclusive; "
        f"**claims:** {sum(c.verdict == 'held' for c in claims)}/{len(claims)} held "
        f"(uncorrected: {sum(v == 'held' for v in raw_findings.values())}/{len(verdicts)} "
        f"findings, {sum(c.raw_verdict == 'held' for c in claims)}/{len(claims)} claims).",
        "",
        "| finding | verdict | claims (held / not held / inconclusive) | with a test | "
        "uncorrected |",
        "|---|---|---|---|---|",
    ]
    for f, cs in findings.items():
        counts = [sum(c.verdict == v for c in cs) for v in VERDICTS]
        raw = [sum(c.raw_verdict == v for c in cs) for v in VERDICTS]
        lines.append(f"| {f} | **{verdicts[f]}** | {' / '.join(map(str, counts))} | "
                     f"{_tested(cs)} of {len(cs)} | "
                     f"{raw_findings[f]} ({' / '.join(map(str, raw))}) |")
    for f, cs in findings.items():
        lines += ["", f"## {f}: {verdicts[f]}", ""]
        for c in cs:
            direction = "lower is better" if lower_is_better(c.metric) else "higher is better"
            lines += [f"### {c.text} — **{c.verdict}**", "",
                      f"`{c.id}`; source: {c.source or '—'}; table `{c.table}`, column "
                      f"`{c.column}` ({c.metric}, {direction}).", "",
                      f"Claim p = {_fmt(c.p)} (Holm {_fmt(c.p_adjusted)}), reverse p = "
                      f"{_fmt(c.p_reverse)} (Holm {_fmt(c.p_reverse_adjusted)}); verdict "
                      f"{c.verdict} (uncorrected: {c.raw_verdict}).", ""]
            if seconds is not None:
                exps = plan.row_experiments(config, c.table, c.rows)
                total = sum(seconds.get(e, 0.0) for e in dict.fromkeys(exps))
                lines += [f"Compute of its rows ({', '.join(dict.fromkeys(exps))}; train + "
                          f"select + evaluate jobs, all seeds): {total / 60:.1f} min.", ""]
            lines += ["| row | per-seed values | mean ± std |", "|---|---|---|"]
            for row in c.rows:
                vals = c.per_seed.get(row, {})
                arr = np.array(list(vals.values()), dtype=float)
                spread = f" ± {_fmt(float(np.std(arr, ddof=1)))}" if len(arr) > 1 else ""
                lines.append(f"| {row} | {', '.join(_fmt(v) for _, v in sorted(vals.items())) or '—'} "
                             f"| {_fmt(float(arr.mean())) if len(arr) else '—'}{spread} |")
            lines += ["", "| pair | difference | margin | Hedges' g | t | df | p (claimed) | "
                          "p (reverse) | verdict |", "|---|---|---|---|---|---|---|---|---|"]
            for p in c.pairs:
                lines.append(f"| {p.winner} vs {p.other} | {_fmt(p.difference)} | "
                             f"{_fmt(p.allowance) if p.allowance else '—'} | {_fmt(p.hedges_g)} | "
                             f"{_fmt(p.t)} | {_fmt(p.df)} | {_fmt(p.p)} | {_fmt(p.p_reverse)} | "
                             f"{p.verdict} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _write_csv(path: str | Path, table: pd.DataFrame) -> None:
    io.write_text(path, table.to_csv(index=False, float_format="%.6g", lineterminator="\n"))


def write_outputs(config: Mapping, claims: Sequence[ClaimTest], preset: str, md: str | Path,
                  csv: str | Path | None = None, fig: str | Path | None = None, *,
                  alpha: float = ALPHA, seconds: Mapping[str, float] | None = None,
                  header: Mapping[str, str] | None = None,
                  convergence: Sequence[ConvergenceRow] | None = None,
                  convergence_csv: str | Path | None = None) -> None:
    """Write the Markdown report, and the CSVs and the figure where paths are given."""
    io.write_text(md, render_markdown(config, claims, preset, alpha=alpha, seconds=seconds,
                                      header=header, convergence=convergence))
    if csv:
        _write_csv(csv, frame(claims))
    if convergence_csv:
        _write_csv(convergence_csv, convergence_frame(convergence or []))
    if fig:
        figure(claims, fig)

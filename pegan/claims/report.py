"""The claims outputs: the Markdown report, the per-pair CSV (and the figure, via
:mod:`pegan.claims.plot`)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pegan import io
from pegan.claims.check import ClaimTest
from pegan.claims.plot import figure
from pegan.claims.stats import ALPHA, VERDICTS, PairTest, combine
from pegan.tables import lower_is_better

CLAIM_FIELDS = ["finding", "claim", "claim_verdict", "table", "column", "metric", "kind"]
PAIR_FIELDS = [f.name for f in fields(PairTest)] + ["winner_per_seed", "other_per_seed"]


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"


def _row_experiments(config: Mapping, claim: ClaimTest) -> list[str]:
    rows = {str(r["id"]): r["experiment"] for r in config["tables"][claim.table]["rows"]}
    return [rows[r] for r in claim.rows]


def frame(claims: Sequence[ClaimTest]) -> pd.DataFrame:
    """One CSV row per (claim, pair); the columns are fixed, so that a run that tests no
    claim (a workflow slice) still writes a CSV with its header."""
    records = []
    for c in claims:
        for p in c.pairs or [None]:
            rec = dict(zip(CLAIM_FIELDS, (c.finding, c.id, c.verdict, c.table, c.column,
                                          c.metric, c.kind)))
            if p is not None:
                rec.update(asdict(p))
                rec["winner_per_seed"] = ";".join(f"{s}:{v:.6g}" for s, v in sorted(c.per_seed[p.winner].items()))
                rec["other_per_seed"] = ";".join(f"{s}:{v:.6g}" for s, v in sorted(c.per_seed[p.other].items()))
            rec["source"] = c.source
            records.append(rec)
    return pd.DataFrame.from_records(records, columns=CLAIM_FIELDS + PAIR_FIELDS + ["source"])


def render_markdown(config: Mapping, claims: Sequence[ClaimTest], preset: str, *,
                    alpha: float = ALPHA, seconds: Mapping[str, float] | None = None,
                    header: Mapping[str, str] | None = None) -> str:
    findings: dict[str, list[ClaimTest]] = defaultdict(list)
    for c in claims:
        findings[c.finding].append(c)
    verdicts = {f: combine([c.verdict for c in cs]) for f, cs in findings.items()}
    seeds = config["presets"][preset]["seeds"]
    lines = [f"# pegan: the paper's claims at the `{preset}` preset", ""]
    for key, value in (header or {}).items():
        lines.append(f"- **{key}:** {value}")
    lines += [
        f"- **Seeds per row:** {len(seeds)} ({', '.join(map(str, seeds))})",
        f"- **Test:** Welch's one-sided t-test per pair of rows, α = {alpha}; effect size "
        "Hedges' g (positive: in the claimed direction). Verdicts: held (claimed direction "
        "significant), not held (opposite direction significant), inconclusive (neither).",
        "",
        f"**Findings:** {sum(v == 'held' for v in verdicts.values())}/{len(verdicts)} held, "
        f"{sum(v == 'not held' for v in verdicts.values())} not held, "
        f"{sum(v == 'inconclusive' for v in verdicts.values())} inconclusive; "
        f"**claims:** {sum(c.verdict == 'held' for c in claims)}/{len(claims)} held.",
        "",
        "| finding | verdict | claims (held / not held / inconclusive) |",
        "|---|---|---|",
    ]
    for f, cs in findings.items():
        counts = [sum(c.verdict == v for c in cs) for v in VERDICTS]
        lines.append(f"| {f} | **{verdicts[f]}** | {' / '.join(map(str, counts))} |")
    for f, cs in findings.items():
        lines += ["", f"## {f}: {verdicts[f]}", ""]
        for c in cs:
            direction = "lower is better" if lower_is_better(c.metric) else "higher is better"
            lines += [f"### {c.text} — **{c.verdict}**", "",
                      f"`{c.id}`; source: {c.source or '—'}; table `{c.table}`, column "
                      f"`{c.column}` ({c.metric}, {direction}).", ""]
            if seconds is not None:
                exps = _row_experiments(config, c)
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


def write_outputs(config: Mapping, claims: Sequence[ClaimTest], preset: str, md: str | Path,
                  csv: str | Path | None = None, fig: str | Path | None = None, *,
                  alpha: float = ALPHA, seconds: Mapping[str, float] | None = None,
                  header: Mapping[str, str] | None = None) -> None:
    """Write the Markdown report, and the CSV and the figure where paths are given."""
    io.write_text(md, render_markdown(config, claims, preset, alpha=alpha, seconds=seconds,
                                      header=header))
    if csv:
        io.write_text(csv, frame(claims).to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    if fig:
        figure(claims, fig)

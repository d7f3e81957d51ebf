"""The registry's claims (config ``claims``), tested on per-seed values from metrics files.

Every claim compares rows of a table on one column: a ``better`` row beats a ``worse`` one, a
``best`` row beats every row of ``among``, or a ``close`` row is no worse than ``to`` by more
than a relative ``margin`` (non-inferiority). Claims are grouped by the paper ``finding`` they
support; a finding is held when all its claims are held. The per-seed values come from the
same metrics files and cell definitions as the tables (:func:`pegan.tables.build_table`).

A claim's verdict is corrected for the number of claims tested together (Holm, see
:mod:`pegan.claims.stats`): :func:`check_claims` adjusts over the preset's tested claims; a
claim checked alone (:func:`check_claim`) is a family of one (adjusted = raw).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pegan import plan
from pegan.claims.stats import ALPHA, PairTest, claim_pvalues, holm, one_sided_test, verdict
from pegan.tables import build_table, lower_is_better


@dataclass
class ClaimTest:
    id: str
    finding: str
    text: str
    source: str
    table: str
    column: str
    metric: str
    kind: str                                   # better | best | close
    rows: list[str]                             # claimed winner first
    per_seed: dict[str, dict[str, float]]       # row -> seed -> value
    pairs: list[PairTest] = field(default_factory=list)
    verdict: str = "inconclusive"               # after the multiple-testing correction
    raw_verdict: str = "inconclusive"           # at alpha, uncorrected
    p: float = float("nan")                     # claimed direction (largest pair p)
    p_reverse: float = float("nan")             # opposite direction (smallest pair p)
    p_adjusted: float = float("nan")            # Holm-adjusted over the tested claims
    p_reverse_adjusted: float = float("nan")


def claim_kind(claim: Mapping) -> str:
    return "best" if "best" in claim else "close" if "close" in claim else "better"


def column_metric(config: Mapping, table: str, column: str) -> str:
    return next(c["metric"] for c in config["tables"][table]["columns"] if c["key"] == column)


def check_claim(claim: Mapping, metric: str, per_seed: Mapping[str, Mapping[str, float]],
               alpha: float = ALPHA) -> ClaimTest:
    """Test one registry claim on per-seed values {row: {seed: value}}."""
    rows = plan.claim_rows(claim)
    kind = claim_kind(claim)
    lower = lower_is_better(metric)
    winner = rows[0]
    pairs = []
    for other in rows[1:]:
        allowance = 0.0
        if kind == "close":
            ref = list(per_seed.get(other, {}).values())
            allowance = float(claim["margin"]) * abs(float(np.mean(ref))) if ref else 0.0
        pairs.append(one_sided_test(list(per_seed.get(winner, {}).values()),
                                    list(per_seed.get(other, {}).values()),
                                    lower_is_better=lower, allowance=allowance, alpha=alpha,
                                    names=(winner, other)))
    p, p_rev = claim_pvalues(pairs)
    raw = verdict(p, p_rev, alpha)
    return ClaimTest(claim["id"], claim.get("finding", claim["id"]), claim["text"],
                     claim.get("source", ""), claim["table"], claim["column"], metric, kind, rows,
                     {r: dict(per_seed.get(r, {})) for r in rows}, pairs, raw, raw, p, p_rev,
                     p, p_rev)


def correct(claims: Sequence[ClaimTest], alpha: float = ALPHA) -> list[ClaimTest]:
    """Holm-adjust the claims' p-values over `claims` (claimed and reverse directions, each a
    family) and set every verdict from the adjusted values (in place; returns `claims`)."""
    adjusted = holm([c.p for c in claims])
    adjusted_reverse = holm([c.p_reverse for c in claims])
    for c, p, p_rev in zip(claims, adjusted, adjusted_reverse):
        c.p_adjusted, c.p_reverse_adjusted = p, p_rev
        c.verdict = verdict(p, p_rev, alpha)
    return list(claims)


def per_seed_values(config: Mapping, files: Sequence[str | Path], preset: str,
                    tables: Sequence[str] | None = None
                    ) -> dict[tuple[str, str, str], dict[str, float]]:
    """{(table, row, column): {seed: value}} of `tables` (default all), in paper units."""
    tables = sorted(tables if tables is not None else {c.table for c in plan.cells(config, preset)})
    out = {}
    for table in tables:
        _, provenance = build_table(config, table, files, preset)
        for row, columns in provenance["cells"].items():
            for column, cell in columns.items():
                out[(table, row, column)] = {str(s): float(v) for s, v in cell["per_seed"].items()}
    return out


def check_claims(config: Mapping, files: Sequence[str | Path], preset: str,
                alpha: float = ALPHA, finding: str | None = None,
                part: str | None = None) -> list[ClaimTest]:
    """Every claim the preset tests (of `finding`, of its `part`), on the metrics `files`,
    Holm-corrected over them."""
    tested = plan.tested_claims(config, preset, finding, part)
    values = per_seed_values(config, files, preset, {c["table"] for c in tested})
    out = []
    for claim in tested:
        metric = column_metric(config, claim["table"], claim["column"])
        per_seed = {row: values.get((claim["table"], row, claim["column"]), {})
                    for row in plan.claim_rows(claim)}
        out.append(check_claim(claim, metric, per_seed, alpha))
    return correct(out, alpha)

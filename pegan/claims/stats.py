"""The statistics of a claim: Welch's one-sided t-test per pair of rows, Hedges' g, verdicts.

The test, for each (claimed winner, other row) pair, is **Welch's one-sided t-test** on the
per-seed values (``scipy.stats.ttest_ind(equal_var=False, alternative=...)``), oriented so that
"lower is better" for every metric:

* seeds are independent training runs of *different* architectures, so there is no pairing;
* the variance differs between variants (runs without padding vary more), hence Welch rather
  than Student;
* with 3 seeds per row a rank test cannot decide: the smallest one-sided p-value of the
  Mann-Whitney U test with 3 vs 3 samples is 1/20 = 0.05, never below it. The t-test assumes
  roughly normal seed-to-seed noise, which is the usual assumption for GAN metric spreads.

Verdict of a pair at level ``alpha`` (0.05): **held** when the claimed direction is significant;
**not held** when the opposite direction is significant; otherwise **inconclusive** (including
fewer than 2 seeds on a side). A claim with several pairs (``best``/``among``) is held when
every pair is held (an intersection-union test, valid without a multiplicity correction), not
held when any pair is not held (:func:`combine`). The effect size is Hedges' g (bias-corrected
standardised mean difference; positive: in the claimed direction).

**Testing many claims at once: Holm's step-down correction** (:func:`holm`). A preset tests
about twenty claims; at α = 0.05 one of them would come out "held" by chance alone. Each
claim has one p-value for its claimed direction (the largest of its pairs' p: the
intersection-union test's) and one for the opposite direction (the smallest of its pairs'
reverse p). Each of the two families, over every tested claim, is Holm-adjusted, and the
verdict uses the adjusted values: held when the adjusted claimed-direction p < α, not held
when the adjusted reverse p < α, else inconclusive. Holm rather than Benjamini-Hochberg:

* a reader quotes a held claim on its own ("removing padding worsens FID"), so the error to
  control is a false held claim anywhere in the report (the family-wise error rate), not the
  expected fraction of false ones (BH's false discovery rate);
* Holm holds under any dependence between the tests; the claims share rows (Table 2 (c) is
  compared in five claims, SinGAN's no-pad row in four), and BH's guarantee needs positive
  dependence (PRDS), which one-sided tests sharing a row in opposite roles do not ensure;
* it is uniformly more powerful than Bonferroni and needs nothing but the p-values.

A claim without a p-value (fewer than 2 seeds on a side) is not a test and is not counted in
``m``. The raw p and verdict are kept beside the adjusted ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALPHA = 0.05
VERDICTS = ("held", "not held", "inconclusive")


@dataclass
class PairTest:
    """One one-sided comparison: `winner` is claimed to beat `other` (after `allowance`)."""

    winner: str
    other: str
    n_winner: int
    n_other: int
    mean_winner: float
    std_winner: float
    mean_other: float
    std_other: float
    allowance: float      # non-inferiority margin in the metric's units (0: strict)
    difference: float     # mean advantage of the winner in the claimed direction (+ allowance)
    hedges_g: float       # standardised difference, positive in the claimed direction
    t: float
    df: float
    p: float              # one-sided p-value of the claimed direction
    p_reverse: float      # one-sided p-value of the opposite direction
    verdict: str


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Bias-corrected standardised mean difference mean(b) - mean(a) (pooled SD)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return math.nan
    pooled = math.sqrt(((na - 1) * np.var(a, ddof=1) + (nb - 1) * np.var(b, ddof=1)) / (na + nb - 2))
    diff = float(np.mean(b) - np.mean(a))
    if pooled == 0:
        return math.copysign(math.inf, diff) if diff else 0.0
    correction = 1.0 - 3.0 / (4.0 * (na + nb) - 9.0)
    return correction * diff / pooled


def one_sided_test(winner: Sequence[float], other: Sequence[float], *, lower_is_better: bool,
                   allowance: float = 0.0, alpha: float = ALPHA,
                   names: tuple[str, str] = ("winner", "other")) -> PairTest:
    """Welch's one-sided test that `winner` beats `other` by more than `-allowance`.

    Values are per-seed metric values. Oriented so lower is better: the claim is
    ``mean(o(winner)) < mean(o(other)) + allowance`` with ``o(x) = x`` (FID, SWD) or ``-x``
    (precision, structure).
    """
    sign = 1.0 if lower_is_better else -1.0
    a = sign * np.asarray(list(winner), dtype=float)
    b = sign * np.asarray(list(other), dtype=float) + float(allowance)
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    stats = dict(winner=names[0], other=names[1], n_winner=len(a), n_other=len(b),
                 mean_winner=float(sign * a.mean()) + 0.0 if len(a) else math.nan,
                 std_winner=float(np.std(a, ddof=1)) if len(a) > 1 else math.nan,
                 mean_other=float(sign * (b.mean() - allowance)) + 0.0 if len(b) else math.nan,
                 std_other=float(np.std(b, ddof=1)) if len(b) > 1 else math.nan,
                 allowance=float(allowance),
                 difference=float(b.mean() - a.mean()) if len(a) and len(b) else math.nan)
    if len(a) < 2 or len(b) < 2:
        return PairTest(**stats, hedges_g=math.nan, t=math.nan, df=math.nan, p=math.nan,
                        p_reverse=math.nan, verdict="inconclusive")
    g = hedges_g(a, b)
    if np.var(a) == 0 and np.var(b) == 0:          # no seed noise at all: the means decide
        diff = stats["difference"]
        p = 0.0 if diff > 0 else 1.0
        p_rev = 0.0 if diff < 0 else 1.0
        t_stat, df = math.copysign(math.inf, -diff) if diff else 0.0, float(len(a) + len(b) - 2)
    else:
        from scipy import stats as sstats

        less = sstats.ttest_ind(a, b, equal_var=False, alternative="less")
        greater = sstats.ttest_ind(a, b, equal_var=False, alternative="greater")
        p, p_rev, t_stat = float(less.pvalue), float(greater.pvalue), float(less.statistic)
        df = float(getattr(less, "df", math.nan))
    verdict = "held" if p < alpha else "not held" if p_rev < alpha else "inconclusive"
    return PairTest(**stats, hedges_g=g, t=t_stat, df=df, p=p, p_reverse=p_rev, verdict=verdict)


def combine(verdicts: Sequence[str]) -> str:
    """All held -> held; any not held -> not held; else inconclusive (empty: inconclusive)."""
    if verdicts and all(v == "held" for v in verdicts):
        return "held"
    return "not held" if "not held" in verdicts else "inconclusive"


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN, not counted).

    With the m finite p-values sorted ascending, p_(1) <= ... <= p_(m), the adjusted value of
    the i-th is ``max_{j <= i} min(1, (m - j + 1) p_(j))``; rejecting where it is below α is
    Holm's procedure (family-wise error rate <= α under any dependence).
    """
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = len(finite)
    if not m:
        return out.tolist()
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def claim_pvalues(pairs: Sequence[PairTest]) -> tuple[float, float]:
    """(claimed-direction p, reverse p) of a claim from its pairs: the largest claimed p
    (every pair must hold) and the smallest reverse p (one reversed pair suffices). NaN when a
    pair has no test."""
    if not pairs or any(math.isnan(t.p) for t in pairs):
        return math.nan, (min((t.p_reverse for t in pairs if not math.isnan(t.p_reverse)),
                              default=math.nan))
    return max(t.p for t in pairs), min(t.p_reverse for t in pairs)


def verdict(p: float, p_reverse: float, alpha: float = ALPHA) -> str:
    """held (p < α), not held (reverse p < α), else inconclusive (NaN counts as no test)."""
    if not math.isnan(p) and p < alpha:
        return "held"
    if not math.isnan(p_reverse) and p_reverse < alpha:
        return "not held"
    return "inconclusive"

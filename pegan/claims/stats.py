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

"""The paper's claims, tested with statistics across seeds (`pegan claims`).

Every claim of the registry (config ``claims``) compares rows of a table on one column: a
``better`` row beats a ``worse`` one, a ``best`` row beats every row of ``among``, or a ``close``
row is no worse than ``to`` by more than a relative ``margin`` (non-inferiority). Claims are
grouped by the paper ``finding`` they support. The per-seed values come from the same metrics
files and cell definitions as the tables (:func:`pegan.tables.build_table`).

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
held when any pair is not held. A finding is held when all its claims are held. The effect
size is Hedges' g (bias-corrected standardised mean difference; positive: in the claimed
direction).
"""

from __future__ import annotations

import logging
import math
import os
import platform
import subprocess
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pegan import io, plan
from pegan.errors import PeganError
from pegan.tables import LOWER_IS_BETTER, build_table

log = logging.getLogger(__name__)

ALPHA = 0.05
VERDICTS = ("held", "not held", "inconclusive")


# ------------------------------------------------------------------------ statistics


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


# ---------------------------------------------------------------------------- claims


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
    verdict: str = "inconclusive"


def claim_kind(claim: Mapping) -> str:
    return "best" if "best" in claim else "close" if "close" in claim else "better"


def column_metric(config: Mapping, table: str, column: str) -> str:
    return next(c["metric"] for c in config["tables"][table]["columns"] if c["key"] == column)


def check_claim(claim: Mapping, metric: str, per_seed: Mapping[str, Mapping[str, float]],
               alpha: float = ALPHA) -> ClaimTest:
    """Test one registry claim on per-seed values {row: {seed: value}}."""
    rows = plan.claim_rows(claim)
    kind = claim_kind(claim)
    lower = LOWER_IS_BETTER[metric]
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
    return ClaimTest(claim["id"], claim.get("finding", claim["id"]), claim["text"],
                     claim.get("source", ""), claim["table"], claim["column"], metric, kind, rows,
                     {r: dict(per_seed.get(r, {})) for r in rows}, pairs,
                     combine([p.verdict for p in pairs]))


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
                alpha: float = ALPHA) -> list[ClaimTest]:
    tested = plan.tested_claims(config, preset)
    values = per_seed_values(config, files, preset, {c["table"] for c in tested})
    out = []
    for claim in tested:
        metric = column_metric(config, claim["table"], claim["column"])
        per_seed = {row: values.get((claim["table"], row, claim["column"]), {})
                    for row in plan.claim_rows(claim)}
        out.append(check_claim(claim, metric, per_seed, alpha))
    return out


# ------------------------------------------------------------------------- provenance


def git_commit(root: str | Path | None = None) -> str:
    """`<sha>` (with `-dirty` when tracked files changed), or 'unknown' outside a checkout."""
    root = Path(root) if root else Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "-uno"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    except Exception:                                        # noqa: BLE001 - informative only
        gpu = "GPU unknown"
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPU cores, {gpu}"


def job_seconds(benchmarks: str | Path, experiments: set[str]) -> dict[str, float]:
    """Wall seconds of the train/select/evaluate jobs of each experiment (Snakemake's
    benchmark files ``<bench>/<stage>/<experiment>-seed<N>[...].tsv``)."""
    root = Path(benchmarks)
    totals: dict[str, float] = defaultdict(float)
    for stage in ("train", "select", "evaluate"):
        for path in sorted((root / stage).glob("*.tsv")):
            name = path.stem.split("-seed")[0]
            if name in experiments:
                try:
                    totals[name] += float(pd.read_csv(path, sep="\t")["s"].sum())
                except (OSError, KeyError, ValueError, pd.errors.ParserError):
                    log.warning("cannot read benchmark %s", path)
    return dict(totals)


def run_span(benchmarks: str | Path) -> tuple[float, float] | None:
    """(wall seconds from the first job's start to the last job's end, summed job seconds)
    of every job with a benchmark file (a benchmark is written when its job ends: start =
    mtime - duration). None without benchmark files."""
    starts, ends, total = [], [], 0.0
    for path in Path(benchmarks).rglob("*.tsv"):
        try:
            seconds = float(pd.read_csv(path, sep="\t")["s"].sum())
        except (OSError, KeyError, ValueError, pd.errors.ParserError):
            continue
        end = path.stat().st_mtime
        starts.append(end - seconds)
        ends.append(end)
        total += seconds
    if not ends:
        return None
    return max(ends) - min(starts), total


# ---------------------------------------------------------------------------- outputs


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return f"{x:.{digits}g}" if abs(x) < 1e-3 and x != 0 else f"{x:.{digits}f}"


def _row_experiments(config: Mapping, claim: ClaimTest) -> list[str]:
    rows = {str(r["id"]): r["experiment"] for r in config["tables"][claim.table]["rows"]}
    return [rows[r] for r in claim.rows]


CLAIM_FIELDS = ["finding", "claim", "claim_verdict", "table", "column", "metric", "kind"]
PAIR_FIELDS = [f.name for f in fields(PairTest)] + ["winner_per_seed", "other_per_seed"]


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
            direction = "lower is better" if LOWER_IS_BETTER[c.metric] else "higher is better"
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


def figure(claims: Sequence[ClaimTest], out: str | Path) -> None:
    """One panel per claim: per-seed values of each compared row, their mean, the verdict."""
    from pegan.figures import _pyplot, save

    plt = _pyplot()
    n = max(len(claims), 1)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows), squeeze=False)
    colours = {"held": "tab:green", "not held": "tab:red", "inconclusive": "tab:gray"}
    for ax, c in zip(axes.flat, claims):
        for i, row in enumerate(c.rows):
            vals = np.array([v for _, v in sorted(c.per_seed.get(row, {}).items())], dtype=float)
            if len(vals):
                jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
                ax.scatter(i + jitter, vals, s=18, color="tab:blue" if i == 0 else "tab:orange",
                           zorder=3)
                ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black", lw=1.5)
        ax.set_xticks(range(len(c.rows)))
        ax.set_xticklabels(c.rows)
        ax.set_xlim(-0.6, len(c.rows) - 0.4)
        arrow = "↓" if LOWER_IS_BETTER[c.metric] else "↑"
        ax.set_ylabel(f"{c.column} {arrow}", fontsize=7)
        ax.set_title(f"{c.id}\n{c.verdict}", fontsize=7, color=colours[c.verdict])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(claims):]:
        ax.axis("off")
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)


def write_outputs(config: Mapping, claims: Sequence[ClaimTest], preset: str, md: str | Path,
                  csv: str | Path | None = None, fig: str | Path | None = None, *,
                  alpha: float = ALPHA, seconds: Mapping[str, float] | None = None,
                  header: Mapping[str, str] | None = None) -> None:
    io.write_text(md, render_markdown(config, claims, preset, alpha=alpha, seconds=seconds,
                                      header=header))
    if csv:
        io.write_text(csv, frame(claims).to_csv(index=False, float_format="%.6g", lineterminator="\n"))
    if fig:
        figure(claims, fig)


# ------------------------------------------------------------------------------ CLI


def add_args(p) -> None:
    p.add_argument("metrics", nargs="*", help="metrics JSON files written by `pegan evaluate`")
    p.add_argument("--out", required=True, help="claims Markdown report")
    p.add_argument("--csv", default=None, help="one row per compared pair")
    p.add_argument("--figure", default=None, help="PNG: one panel per claim, per-seed points")
    p.add_argument("--config", default=None)
    p.add_argument("--preset", default=None)
    p.add_argument("--alpha", type=float, default=ALPHA, help="significance level (default 0.05)")
    p.add_argument("--benchmarks", default=None,
                   help="Snakemake benchmark folder: report each claim's compute time")
    p.add_argument("--wall-time", default=None, help="wall time of the whole run, for the header")
    p.add_argument("--fail-on-not-held", action="store_true",
                   help="exit 1 when a claim is not held")


def run(args) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    preset = args.preset or cfg["preset"]
    if not 0 < args.alpha < 1:
        raise PeganError(f"--alpha {args.alpha}: choose a level in (0, 1), e.g. 0.05")
    claims = check_claims(cfg, args.metrics, preset, args.alpha)
    seconds = None
    header = {"pegan commit": git_commit(), "machine": machine()}
    if args.benchmarks:
        seconds = job_seconds(args.benchmarks, {r["experiment"] for t in cfg["tables"].values()
                                                for r in t["rows"]})
        span = run_span(args.benchmarks)
        if span:
            header["jobs"] = (f"{span[0] / 60:.1f} min wall time from the first job's start to "
                              f"the last job's end; {span[1] / 60:.1f} min summed over jobs "
                              "(Snakemake benchmark files)")
    if args.wall_time:
        header["wall time"] = args.wall_time
    write_outputs(cfg, claims, preset, args.out, args.csv, args.figure, alpha=args.alpha,
                  seconds=seconds, header=header)
    held = sum(c.verdict == "held" for c in claims)
    print(f"claims: {held}/{len(claims)} held, "
          f"{sum(c.verdict == 'not held' for c in claims)} not held -> {args.out}")
    return 1 if args.fail_on_not_held and any(c.verdict == "not held" for c in claims) else 0

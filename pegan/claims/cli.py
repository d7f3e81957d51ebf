"""`pegan claims`: test the preset's claims on metrics files and write the report."""

from __future__ import annotations

import argparse

from pegan.claims.check import check_claims
from pegan.claims.provenance import git_commit, job_seconds, machine, run_span
from pegan.claims.report import write_outputs
from pegan.claims.stats import ALPHA
from pegan.errors import PeganError


def add_args(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
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
    print(f"claims: {held}/{len(claims)} held after Holm's correction "
          f"({sum(c.raw_verdict == 'held' for c in claims)} uncorrected), "
          f"{sum(c.verdict == 'not held' for c in claims)} not held -> {args.out}")
    return 1 if args.fail_on_not_held and any(c.verdict == "not held" for c in claims) else 0

"""`pegan claims`: test the preset's claims on metrics files and write the report."""

from __future__ import annotations

import argparse
import tempfile

import pegan.claims.evidence as evidence
from pegan.claims.check import check_claims
from pegan.claims.convergence import claim_runs, convergence_rows, curve_run
from pegan.claims.provenance import (Runs, git_commit, machine, per_experiment,
                                    run_job_seconds, run_span, short, training_code,
                                    training_commits, training_machines)
from pegan.claims.report import write_outputs
from pegan.claims.stats import ALPHA
from pegan.errors import PeganError
from pegan.plan import finding_target, parse_metrics_path


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
    p.add_argument("--finding", default=None,
                   help="test only this finding's claims (Holm over them): a per-finding report")
    p.add_argument("--part", default=None,
                   help="with --finding: only its claims on one architecture family (a part "
                        "of a finding that spans several, `snakemake claims_<finding>_<part>`)")
    p.add_argument("--evidence-out", default=None,
                   help="also write the files this report read (metrics, held-out floors, "
                        "curves) and where they were made into one JSON (pegan.claims.evidence)")
    p.add_argument("--evidence", nargs="*", default=[],
                   help="evidence JSONs of earlier reports (--evidence-out), read as the files "
                        "they hold: e.g. a finding's report from its parts' evidence")
    p.add_argument("--heldout", nargs="*", default=[],
                   help="metrics JSONs of held-out real images (the floor of the convergence "
                        "table), written by `pegan evaluate <held-out zip>`")
    p.add_argument("--curves", nargs="*", default=[],
                   help="the claim runs' snapshots.jsonl (learning curves; missing: none)")
    p.add_argument("--convergence-csv", default=None,
                   help="the convergence table as CSV (one row per claim run)")
    p.add_argument("--models", nargs="*", default=[],
                   help="the claim runs' final.pt, drawn in --samples-figure")
    p.add_argument("--samples-figure", default=None,
                   help="PNG: a row of samples per claim run (of --models)")


def run(args: argparse.Namespace) -> int:
    if not args.evidence:
        return _report(args, sources=[], names={})
    with tempfile.TemporaryDirectory(prefix="pegan-evidence-") as root:
        bundled = evidence.read(args.evidence)
        files, names = evidence.materialize(bundled, root)
        args.metrics = [*args.metrics, *files["metrics"]]
        args.heldout = [*args.heldout, *files["heldout"]]
        args.curves = [*args.curves, *files["curves"]]
        return _report(args, sources=bundled.sources, names=names)


def _scope(finding: str | None, part: str | None) -> str:
    return f"{finding} ({part} part)" if part else str(finding)


def _job_time(args: argparse.Namespace, sources: list[dict], ours: set[str]
              ) -> tuple[dict[str, float] | None, dict[Runs, float], str | None]:
    """(job seconds per experiment, per block of runs, the header's `jobs` line) of the runs
    of the report's metrics files: from the Snakemake benchmark files and the evidence
    bundles, each run's jobs once, whichever of them hold it."""
    runs = {(ev.experiment, seed) for ev, seed in map(parse_metrics_path, args.metrics)}
    blocks: dict[Runs, float] = {}
    if args.benchmarks:
        blocks = {k: v for k, v in run_job_seconds(args.benchmarks).items()
                  if (k[0], k[1][0]) in runs}
    for source in sources:
        for key, value in evidence.run_seconds(source).items():
            blocks[key] = max(blocks.get(key, 0.0), value)
    if not args.benchmarks and not blocks:          # no job time on record
        return None, {}, None
    seconds = per_experiment(blocks)
    if args.benchmarks and not args.finding and not sources:
        span = run_span(args.benchmarks)
        return seconds, blocks, span and (
            f"{span[0] / 60:.1f} min wall time from the first job's start to the last job's "
            f"end; {span[1] / 60:.1f} min summed over jobs (Snakemake benchmark files)")
    where = " and ".join(w for w, used in (("Snakemake benchmark files", args.benchmarks),
                                           ("the evidence", sources)) if used)
    total = sum(v for k, v in seconds.items() if k in ours)
    whose = ("this part's" if args.part else "this finding's" if args.finding
             else "the report's")
    return seconds, blocks, (f"{total / 60:.1f} min summed over {whose} train and evaluate "
                             f"jobs ({where})")


def _report(args: argparse.Namespace, sources: list[dict], names: dict[str, str]) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    preset = args.preset or cfg["preset"]
    if not 0 < args.alpha < 1:
        raise PeganError(f"--alpha {args.alpha}: choose a level in (0, 1), e.g. 0.05")
    claims = check_claims(cfg, args.metrics, preset, args.alpha, finding=args.finding,
                          part=args.part)
    rows = convergence_rows(cfg, preset, args.metrics, args.heldout, args.curves,
                            finding=args.finding, part=args.part)
    ours = {e for e, _ in claim_runs(cfg, preset, args.finding, args.part)}
    # from here on only the report's own runs: the header's commits, its job time and its
    # evidence leave out the runs of other findings that an --evidence bundle brought along
    # (every metrics name parses: check_claims has read them all)
    args.metrics = [m for m in args.metrics if parse_metrics_path(m)[0].experiment in ours]
    args.curves = [c for c in args.curves if (curve_run(c) or ("",))[0] in ours]
    seconds, blocks, jobs = _job_time(args, sources, ours)
    header = {"pegan commit": git_commit(), "machine": machine(),
              "trained by": training_commits(args.metrics)}
    for key, line in (("trained on", training_machines(args.metrics)),
                      ("training code", training_code(args.metrics))):
        if line:
            header[key] = line
    if args.finding:
        made = (f"from the evidence of {len(sources)} report{'s' * (len(sources) != 1)}, "
                "`pegan claims --evidence`"
                if sources else f"`snakemake {finding_target(args.finding, args.part)}`")
        header["finding"] = (f"{_scope(args.finding, args.part)} only ({made}); Holm's "
                             "correction over its claims")
    elif sources:
        header["findings"] = (f"every finding the preset tests, from the evidence of "
                              f"{len(sources)} report{'s' * (len(sources) != 1)} (`pegan "
                              "claims --evidence`); Holm's correction over all their claims")
    if jobs:
        header["jobs"] = jobs
    if sources:
        header["evidence"] = "; ".join(
            f"`{s['path']}`: {_scope(s.get('finding'), s.get('part'))}, pegan "
            f"{short(s.get('pegan commit', ''))} on {s.get('machine', '?')}, "
            f"{sum(s.get('job_seconds', {}).values()) / 60:.1f} min of jobs" for s in sources)
    if args.wall_time:
        header["wall time"] = args.wall_time
    write_outputs(cfg, claims, preset, args.out, args.csv, args.figure, alpha=args.alpha,
                  seconds=seconds, header=header, convergence=rows,
                  convergence_csv=args.convergence_csv)
    if args.evidence_out:
        evidence.write(args.evidence_out,
                       {"metrics": args.metrics, "heldout": args.heldout, "curves": args.curves},
                       {"preset": preset, "finding": args.finding, "part": args.part,
                        "pegan commit": header["pegan commit"], "machine": header["machine"],
                        "job_seconds": {k: v for k, v in (seconds or {}).items() if k in ours},
                        "run_seconds": {evidence.runs_key(e, seeds): v
                                        for (e, seeds), v in sorted(blocks.items())
                                        if e in ours}},
                       names=names)
    if args.samples_figure:
        from pegan.figures import figure_run_samples

        figure_run_samples(args.samples_figure, args.models)
    held = sum(c.verdict == "held" for c in claims)
    print(f"claims: {held}/{len(claims)} held after Holm's correction "
          f"({sum(c.raw_verdict == 'held' for c in claims)} uncorrected), "
          f"{sum(c.verdict == 'not held' for c in claims)} not held -> {args.out}")
    return 1 if args.fail_on_not_held and any(c.verdict == "not held" for c in claims) else 0

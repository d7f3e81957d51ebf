"""The paper's claims, tested with statistics across seeds (`pegan claims`).

One concern a module:

* :mod:`pegan.claims.stats`: Welch's one-sided t-test per pair of rows, Hedges' g, Holm's
  correction over the tested claims, verdicts;
* :mod:`pegan.claims.check`: the registry's claims (``better`` / ``best`` / ``close``) on the
  per-seed values of the table cells;
* :mod:`pegan.claims.convergence`: did the compared runs converge? final metrics beside the
  held-out-real floor, and whether each learning curve has flattened (one definition);
* :mod:`pegan.claims.provenance`: commit, machine and job times for the report's header;
* :mod:`pegan.claims.report`: the Markdown report and the per-pair CSV;
* :mod:`pegan.claims.plot`: the figure, one panel per claim;
* :mod:`pegan.claims.cli`: the ``pegan claims`` command (``add_args`` / ``run``, re-exported
  here for :mod:`pegan.cli`).
"""

from pegan.claims.check import (ClaimTest, check_claim, check_claims, claim_kind,
                                column_metric, correct, per_seed_values)
from pegan.claims.cli import add_args, run
from pegan.claims.convergence import (ConvergenceRow, HeldOut, convergence_rows, flattened,
                                      heldout_evaluations)
from pegan.claims.plot import figure
from pegan.claims.provenance import git_commit, job_seconds, machine, run_span
from pegan.claims.report import (CLAIM_FIELDS, PAIR_FIELDS, frame, render_markdown,
                                 write_outputs)
from pegan.claims.stats import (ALPHA, VERDICTS, PairTest, claim_pvalues, combine, hedges_g, holm,
                                one_sided_test, verdict)

__all__ = [
    "ALPHA", "CLAIM_FIELDS", "PAIR_FIELDS", "VERDICTS", "ClaimTest", "ConvergenceRow", "HeldOut",
    "PairTest", "add_args", "check_claim", "check_claims", "claim_kind", "claim_pvalues",
    "column_metric", "combine", "convergence_rows", "correct", "figure", "flattened", "frame",
    "git_commit", "hedges_g", "heldout_evaluations", "holm", "job_seconds", "machine",
    "one_sided_test", "per_seed_values", "render_markdown", "run", "run_span", "verdict",
    "write_outputs",
]

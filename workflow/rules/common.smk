# Shared helpers: validation, the preset, and the input functions of every stage.
# The DAG's shape comes from pegan.plan, so it is the same Python that the tests check.

import json
import os
import shlex
import sys
from types import SimpleNamespace

from pegan import config as pegan_config
from pegan import evaluate as pegan_evaluate
from pegan import plan
from pegan import train as pegan_train
from pegan.claims import convergence as pegan_convergence
from pegan.errors import ConfigError
from pegan.metrics import real_features as pegan_real_features
from pegan.metrics.fid import inception_path_for
from pegan.provenance import CPU_KERNELS_ENV


def pegan_validated(config):
    """The schema (workflow/schemas/config.schema.yaml, with its lists of allowed values
    filled from the code by pegan.config.load_schema) and the cross-references (rows ->
    experiments, scales, preset name) and the presets' training settings: the same check as
    `pegan validate`, which also fills in the schema's defaults. Snakemake's own validate() is
    not used: it would read the schema file without those lists and dump the whole schema on
    an error. A mistake ends the parsing with its one line and exit status 1: Snakemake prints
    a SystemExit's message as it is."""
    try:
        validated = pegan_config.validate(config)
        pegan_train.check_settings(validated)
        return validated
    except ConfigError as exc:
        sys.exit(f"pegan: error: {exc}")


config.update(pegan_validated(config))

PRESET = config["preset"]
# A weight file the preset's metric protocol needs (the paper's: NVIDIA's vgg16.pt for P&R)
# and that is not here: a dry run (and --lint) warns in one line and still lists the DAG, so
# CI and the cluster's planning work offline; a real run stops in `onstart`, before its first
# job, with the same line and exit status 1.
MISSING_WEIGHTS = pegan_config.missing_weights(config, PRESET)
if MISSING_WEIGHTS:
    print(f"pegan: warning: {'; '.join(MISSING_WEIGHTS)} (a real run stops here)",
          file=sys.stderr)


onstart:
    if MISSING_WEIGHTS:
        try:
            pegan_config.check_weights(config, PRESET)
        except ConfigError as exc:
            sys.exit(f"pegan: error: {exc}")

# The CPU kernels every pegan job pins (`cpu_kernels`: other kernels train another GAN), as
# the default of `pegan --cpu-kernels`: the jobs, and SLURM's (which parse this file again),
# inherit it, and the commands, hence what Snakemake decides to rerun, stay as they are
os.environ[CPU_KERNELS_ENV] = config["cpu_kernels"]

OUT = f"results/{PRESET}"
FIG = f"figures/{PRESET}"
LOGS = f"{OUT}/logs"
BENCH = f"{OUT}/benchmarks"
SPECS = plan.specs(config, PRESET)
RUNS = plan.runs(config, PRESET)
EVALUATIONS = plan.evaluations(config, PRESET)
# the findings the preset tests: one `claims_<finding>` target each (claims.smk)
FINDINGS = plan.findings(config, PRESET)
# ... and the parts of a finding whose claims span several families: `claims_<finding>_<part>`
FINDING_PARTS = {f: plan.finding_parts(config, PRESET, f) for f in FINDINGS}
PRESET_CFG = config["presets"][PRESET]
# the preset's effective metric settings (global `metrics:` under the preset's `metrics:`),
# passed to every evaluation and real-features job
METRICS_CFG = pegan_config.metric_settings(config, PRESET)
# The `{mode}` token of the primary Inception pass's real-features files: the FID mode, or
# mmgen for MMGeneration's real statistics (fid_real_protocol: mmgen; data.smk's
# real_features rule turns the token into `pegan real-features` options)
PRIMARY_STATS = pegan_real_features.stats_token(METRICS_CFG)


wildcard_constraints:
    experiment="[a-z0-9][a-z0-9-]*",
    seed=r"\d+",
    snapshot=pegan_config.SNAPSHOT_PATTERN,
    res=r"\d+",
    metricset="[a-z]+(-[a-z]+)*",
    dataset="[A-Za-z0-9_.-]+?",
    table="[a-z0-9][a-z0-9-]*",
    figure="[a-z0-9-]+",
    gen=r"\d+",
    finding="|".join(FINDINGS) or "(?!)",
    part="|".join(pegan_config.FAMILIES),


def spec_json(experiment):
    """The fully resolved settings of an experiment: a param, so changes trigger reruns."""
    return json.dumps(SPECS[experiment].to_dict(), sort_keys=True, separators=(",", ":"))


def inception_option(mode):
    """`--inception PATH` when the metric settings name one for the FID mode; otherwise pegan
    resolves it."""
    path = inception_path_for(METRICS_CFG, mode)
    return f"--inception {shlex.quote(path)}" if path else ""


def real_features_option(wildcards, input):
    return f"--real-features {input.real_features}" if input.real_features else ""


def data_zip(dataset, res):
    return f"{OUT}/data/{dataset}-{res}px.zip"


def real_features(dataset, res, token=None):
    """Cached real features of `token` (an FID mode, or mmgen); default: the primary pass's
    (PRIMARY_STATS: the preset's fid_mode, or mmgen with fid_real_protocol mmgen)."""
    n = max(PRESET_CFG["samples"]["fid"], PRESET_CFG["samples"]["pr"])
    return f"{OUT}/stats/{dataset}-{res}px-{token or PRIMARY_STATS}-n{n}.npz"


def train_data(wildcards):
    spec = SPECS[wildcards.experiment]
    return data_zip(spec.dataset, spec.data_resolution)


def selection_features(wildcards):
    """Real features at every scale the run logs its snapshot metric at."""
    spec = SPECS[wildcards.experiment]
    return [
        real_features(spec.dataset, res)
        for res in plan.selection_scales(config, wildcards.experiment, PRESET)
    ]


def selection_scales_arg(wildcards):
    scales = plan.selection_scales(config, wildcards.experiment, PRESET)
    return ",".join(map(str, scales)) or "none"


def run_dir(experiment, seed):
    return f"{OUT}/runs/{experiment}/seed{seed}"


def checkpoint_dir(wildcards):
    """Outside every declared output: Snakemake never deletes it, retries resume from it."""
    return f"{OUT}/checkpoints/{wildcards.experiment}/seed{wildcards.seed}"


def snapshot_for(wildcards):
    run = run_dir(wildcards.experiment, wildcards.seed)
    if wildcards.snapshot == "final":
        return f"{run}/final.pt"
    return f"{run}/selected/{wildcards.snapshot}-{wildcards.res}px.pt"


def eval_real_features(wildcards):
    """One real-features file per FID mode the metric set reads (none for pixel metrics;
    the legacy FID's and the clean column's in the paper preset). The primary pass's file
    is PRIMARY_STATS's at the resolution fid_real_resolution asks for (`base`: the
    experiment's base resolution, the official MS-PIE configs' 256-px statistics at every
    scale); another mode's (the clean column) is that mode's at the evaluation scale."""
    spec = SPECS[wildcards.experiment]
    files = []
    for mode in pegan_evaluate.feature_modes(wildcards.metricset, METRICS_CFG):
        if mode == METRICS_CFG["fid_mode"]:
            res = pegan_real_features.real_resolution(
                METRICS_CFG.get("fid_real_resolution"), int(wildcards.res), spec.resolution
            )
            files.append(real_features(spec.dataset, res or wildcards.res))
        else:
            files.append(real_features(spec.dataset, wildcards.res, mode))
    return files


def eval_real_data(wildcards):
    return data_zip(SPECS[wildcards.experiment].dataset, wildcards.res)


def metrics_file(experiment, seed, ev):
    return plan.metrics_path(f"{OUT}/metrics", experiment, seed, ev)


def table_inputs(wildcards):
    names = {row["experiment"] for row in config["tables"][wildcards.table]["rows"]}
    return [
        metrics_file(ev.experiment, seed, ev)
        for ev in EVALUATIONS
        if ev.experiment in names
        for seed in PRESET_CFG["seeds"]
    ]


def claim_finding(wildcards):
    """The finding of a per-finding claims job (claims_finding, claims_part), else None: all."""
    return wildcards.finding if "finding" in wildcards.keys() else None


def claim_part(wildcards):
    """The part (architecture family) of a finding's claims job (claims_part), else None."""
    return wildcards.part if "part" in wildcards.keys() else None


def claim_inputs(wildcards):
    """Metrics files of the cells the preset's claims (of the job's finding and part) compare,
    every seed."""
    return sorted(
        {
            metrics_file(cell.evaluation.experiment, seed, cell.evaluation)
            for cell in plan.claim_cells(
                config, PRESET, claim_finding(wildcards), claim_part(wildcards)
            )
            for seed in PRESET_CFG["seeds"]
        }
    )


# The claims' convergence table: held-out-real floors (evaluated with the preset's first
# seed), the learning curves and the final models of every claim run.
HELDOUT = pegan_convergence.heldout_evaluations(config, PRESET)


def heldout_zip(dataset, res):
    return f"{OUT}/data/{dataset}-{res}px-heldout.zip"


def claim_heldout(wildcards):
    seed = PRESET_CFG["seeds"][0]
    return [
        pegan_convergence.heldout_metrics_path(f"{OUT}/metrics", seed, h)
        for h in pegan_convergence.heldout_evaluations(
            config, PRESET, claim_finding(wildcards), claim_part(wildcards)
        )
    ]


def heldout_real_features(wildcards):
    """The real features of the claim evaluation the floor stands beside (same files)."""
    wanted = (wildcards.dataset, int(wildcards.res), wildcards.metricset)
    h = next((h for h in HELDOUT if (h.dataset, h.scale, h.metricset) == wanted), None)
    if h is None:
        raise ValueError(f"no claim row is evaluated with {wanted[2]} on {wanted[0]} at "
                         f"{wanted[1]} px: no held-out floor to compute")
    return eval_real_features(SimpleNamespace(experiment=h.experiment, res=wildcards.res,
                                              metricset=wildcards.metricset))


def claim_curves(wildcards):
    return [
        f"{run_dir(e, s)}/snapshots.jsonl"
        for e, s in pegan_convergence.claim_runs(
            config, PRESET, claim_finding(wildcards), claim_part(wildcards)
        )
    ]


def claim_models(wildcards):
    return [
        f"{run_dir(e, s)}/final.pt"
        for e, s in pegan_convergence.claim_runs(
            config, PRESET, claim_finding(wildcards), claim_part(wildcards)
        )
    ]


def final_models(experiments):
    """Final models of the first seed (figures show one run per experiment)."""
    return [f"{run_dir(e, PRESET_CFG['seeds'][0])}/final.pt" for e in experiments]


def table_experiments(table):
    return list(dict.fromkeys(row["experiment"] for row in config["tables"][table]["rows"]))


def sample_grid_experiments(table):
    """The table's experiments a latent-code sample grid can draw (all but SinGAN runs)."""
    singan = set(plan.singan_experiments(config))
    return [e for e in table_experiments(table) if e not in singan]


def figure_inputs(wildcards):
    name = wildcards.figure
    if name == "mspie-scales":
        return final_models(plan.mspie_experiments(config))
    if name == "singan-samples":
        return final_models(plan.singan_experiments(config))
    kind, _, table = name.partition("-")
    if kind == "samples":
        return final_models(sample_grid_experiments(table))
    if kind == "curves":
        seed = PRESET_CFG["seeds"][0]
        return [f"{run_dir(e, seed)}/snapshots.jsonl" for e in table_experiments(table)]
    if kind == "bars":
        return f"{OUT}/tables/{table}.csv"
    return []


FIGURES = [
    "encodings",
    "padding-statistics",
    "mspie-scales",
    "singan-samples",
    # sample grids of latent-code generators; SinGAN runs are drawn by singan-samples
    *(f"samples-{table}" for table in config["tables"] if sample_grid_experiments(table)),
    *(f"bars-{table}" for table in config["tables"]),
    # training curves of the snapshot-selection metric, for tables that select snapshots
    *(
        f"curves-{table}"
        for table, spec in config["tables"].items()
        if any(col["snapshot"] != "final" for col in spec["columns"])
    ),
]


def get_final_output():
    return [
        *(f"{OUT}/tables/{table}.csv" for table in config["tables"]),
        f"{OUT}/comparison.md",
        f"{OUT}/claims.md",
        *(f"{FIG}/{figure}.png" for figure in FIGURES),
        # every run, including those no table reads (e.g. SinGAN)
        *(f"{run_dir(e, s)}/final.pt" for e, s in RUNS),
    ]

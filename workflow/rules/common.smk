# Shared helpers: validation, the preset, and the input functions of every stage.
# The DAG's shape comes from pegan.plan, so it is the same Python that the tests check.

import json
import shlex
import sys

from pegan import config as pegan_config
from pegan import plan
from pegan.errors import ConfigError


def pegan_validated(config):
    """The schema (workflow/schemas/config.schema.yaml, with its lists of allowed values
    filled from the code by pegan.config.load_schema) and the cross-references (rows ->
    experiments, scales, preset name): the same check as `pegan validate`, which also fills in
    the schema's defaults. Snakemake's own validate() is not used: it would read the schema
    file without those lists and dump the whole schema on an error. A mistake ends the parsing
    with its one line and exit status 1: Snakemake prints a SystemExit's message as it is."""
    try:
        return pegan_config.validate(config)
    except ConfigError as exc:
        sys.exit(f"pegan: error: {exc}")


config.update(pegan_validated(config))

PRESET = config["preset"]
OUT = f"results/{PRESET}"
FIG = f"figures/{PRESET}"
LOGS = f"{OUT}/logs"
BENCH = f"{OUT}/benchmarks"
SPECS = plan.specs(config, PRESET)
RUNS = plan.runs(config, PRESET)
EVALUATIONS = plan.evaluations(config, PRESET)
PRESET_CFG = config["presets"][PRESET]
METRICS_CFG = config["metrics"]


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


def spec_json(experiment):
    """The fully resolved settings of an experiment: a param, so changes trigger reruns."""
    return json.dumps(SPECS[experiment].to_dict(), sort_keys=True, separators=(",", ":"))


def inception_option():
    """`--inception PATH` when the config names one; otherwise pegan resolves it."""
    path = METRICS_CFG["inception_path"]
    return f"--inception {shlex.quote(path)}" if path else ""


def real_features_option(wildcards, input):
    return f"--real-features {input.real_features}" if input.real_features else ""


def data_zip(dataset, res):
    return f"{OUT}/data/{dataset}-{res}px.zip"


def real_features(dataset, res):
    n = max(PRESET_CFG["samples"]["fid"], PRESET_CFG["samples"]["pr"])
    return f"{OUT}/stats/{dataset}-{res}px-{METRICS_CFG['fid_mode']}-n{n}.npz"


def train_data(wildcards):
    spec = SPECS[wildcards.experiment]
    res = spec.singan["max_size"] if spec.arch == "singan" else max(spec.scales)
    return data_zip(spec.dataset, res)


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
    if wildcards.metricset in ("swd", "structure"):    # pixel-space metrics: no Inception
        return []
    return real_features(SPECS[wildcards.experiment].dataset, wildcards.res)


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


def claim_inputs(wildcards):
    """Metrics files of the cells the preset's claims compare, every seed."""
    return sorted(
        {
            metrics_file(cell.evaluation.experiment, seed, cell.evaluation)
            for cell in plan.claim_cells(config, PRESET)
            for seed in PRESET_CFG["seeds"]
        }
    )


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

# Released MMGeneration checkpoints (issue 8): every Table 5 model whose .pth is in
# `released/` is imported, evaluated like the final model of its row (FID and P&R at the
# row's scales), tabulated and compared with the reported numbers:
#   snakemake --profile profiles/slurm --config preset=paper -- released
# Downloading the checkpoints is a user step (README, "Evaluating the released checkpoints").

from pegan.convert import released as pegan_released

RELEASED_DIR = "released"
RELEASED_OUT = f"{OUT}/released"


rule import_released:
    input:
        lambda wc: pegan_released.checkpoint(RELEASED_DIR, wc.experiment),
    output:
        f"{RELEASED_OUT}/models/{{experiment}}.pt",
    log:
        f"{LOGS}/released/import-{{experiment}}.log",
    benchmark:
        f"{BENCH}/released/import-{{experiment}}.tsv"
    resources:
        runtime=30,
        mem_mb=16000,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan import-mmgen {input} --experiment {wildcards.experiment} --out {output} "
        "> {log} 2>&1"


# The released models are evaluated like the final model of their row (evaluate.smk).
use rule evaluate as evaluate_released with:
    input:
        snapshot=rules.import_released.output[0],
        real_data=eval_real_data,
        real_features=eval_real_features,
    output:
        f"{RELEASED_OUT}/metrics/{{experiment}}/seed{{seed}}/{{snapshot}}-{{res}}px-{{metricset}}.json",
    log:
        f"{LOGS}/released/evaluate-{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-{{metricset}}.log",
    benchmark:
        f"{BENCH}/released/evaluate-{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-{{metricset}}.tsv"


# clean-fid's stored FFHQ statistics (mu, sigma) as the real statistics of a clean column,
# so a released checkpoint can be scored without preparing FFHQ for that column. Reads
# clean-fid's cache (<cleanfid package>/stats/ffhq_clean_trainval70k_256.npz etc.); never
# downloads: a missing file fails in one line naming it and clean-fid's URL. The file name
# is pegan.metrics.real_features.cleanfid_features_name(dataset, split, res, mode).
rule cleanfid_real_features:
    output:
        f"{OUT}/stats/cleanfid-{{cfdataset}}-{{split}}-{{res}}px-{{mode}}.npz",
    log:
        f"{LOGS}/stats/cleanfid-{{cfdataset}}-{{split}}-{{res}}px-{{mode}}.log",
    wildcard_constraints:
        cfdataset="[a-z0-9_]+",
        split="[a-z0-9]+",
        mode="clean|legacy_pytorch",
    localrule: True
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan real-features --from-cleanfid {wildcards.cfdataset} --res {wildcards.res} "
        "--split {wildcards.split} --mode {wildcards.mode} --out {output} > {log} 2>&1"


rule released_table:
    input:
        metrics=lambda wc: pegan_released.metrics_files(
            config, PRESET, RELEASED_DIR, f"{RELEASED_OUT}/metrics", wc.table, PRESET_CFG["seeds"][0]
        ),
        config=f"{OUT}/config.json",
    output:
        csv=f"{RELEASED_OUT}/{{table}}.csv",
        provenance=f"{RELEASED_OUT}/{{table}}.provenance.json",
    log:
        f"{LOGS}/released/{{table}}.log",
    benchmark:
        f"{BENCH}/released/{{table}}.tsv"
    params:
        preset=PRESET,
    wildcard_constraints:
        table="|".join(pegan_released.TABLES),
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan table {wildcards.table} {input.metrics} --config {input.config} "
        "--preset {params.preset} --out {output.csv} > {log} 2>&1"


rule released_compare:
    input:
        tables=expand(f"{RELEASED_OUT}/{{table}}.csv", table=pegan_released.TABLES),
        provenance=expand(f"{RELEASED_OUT}/{{table}}.provenance.json", table=pegan_released.TABLES),
        protocols="results/reported/protocols.yaml",
        config=f"{OUT}/config.json",
    output:
        md=f"{RELEASED_OUT}/comparison.md",
        csv=f"{RELEASED_OUT}/comparison.csv",
        claims=f"{RELEASED_OUT}/comparison-claims.csv",
    log:
        f"{LOGS}/released/compare.log",
    benchmark:
        f"{BENCH}/released/compare.tsv"
    params:
        preset=PRESET,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan compare {input.tables} --config {input.config} --preset {params.preset} "
        "--protocols {input.protocols} --out {output.md} --csv {output.csv} > {log} 2>&1"


rule released:
    """Table 5 from the released checkpoints in released/ (preset=paper)."""
    input:
        f"{RELEASED_OUT}/comparison.md",

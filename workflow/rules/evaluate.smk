# Evaluation: one job per (run, snapshot, scale, metric set). FID, KID and P&R share one
# Inception feature pass; the real features are computed once per dataset and scale.
# `evaluate` is the one evaluation rule: its variants (`evaluate_upsampled` below,
# `evaluate_released` in released.smk) are `use rule evaluate as ... with:` and change only
# what they read and write, so every evaluation job has the same command and resources.


rule evaluate:
    input:
        snapshot=snapshot_for,
        real_data=eval_real_data,
        real_features=eval_real_features,
    output:
        f"{OUT}/metrics/{{experiment}}/seed{{seed}}/{{snapshot}}-{{res}}px-{{metricset}}.json",
    log:
        f"{LOGS}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-{{metricset}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-{{metricset}}.tsv"
    params:
        samples=lambda wc: json.dumps(PRESET_CFG["samples"]),
        metrics=lambda wc: json.dumps(METRICS_CFG, sort_keys=True),
        real_features=real_features_option,
        # render at `gen` px and up-sample: evaluate_upsampled's jobs (wildcard `gen`)
        generate_at=lambda wc: f"--generate-at {wc.gen}" if "gen" in wc.keys() else "",
    resources:
        gpu=PRESET_CFG["gpus"]["evaluate"],
        runtime=4 * 60,
        mem_mb=16000,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan --threads {threads} evaluate {input.snapshot} --scale {wildcards.res} "
        "{params.generate_at} "
        "--metrics {wildcards.metricset} --real {input.real_data} "
        "{params.real_features} --samples {params.samples:q} "
        "--metric-settings {params.metrics:q} --seed {wildcards.seed} --out {output} > {log} 2>&1"


# The MS-PIE baseline: the generator renders at a smaller size and the samples are up-sampled.
use rule evaluate as evaluate_upsampled with:
    output:
        f"{OUT}/metrics/{{experiment}}/seed{{seed}}/{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.json",
    log:
        f"{LOGS}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.tsv"

# Evaluation: one job per (run, snapshot, scale, metric set). FID, KID and P&R share one
# Inception feature pass; the real features are computed once per dataset and scale. A
# second rule renders the generator at a smaller size and up-samples (the MS-PIE baseline).

EVALUATE_SHELL = (
    "pegan evaluate {input.snapshot} --scale {wildcards.res} {params.generate_at} "
    "--metrics {wildcards.metricset} --real {input.real_data} "
    "{params.real_features} --samples {params.samples:q} "
    "--metric-settings {params.metrics:q} --seed {wildcards.seed} --out {output} > {log} 2>&1"
)


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
        generate_at="",
    resources:
        gpu=PRESET_CFG["gpus"]["evaluate"],
        runtime=4 * 60,
        mem_mb=16000,
    conda:
        "../envs/pegan.yaml"
    shell:
        EVALUATE_SHELL


rule evaluate_upsampled:
    input:
        snapshot=snapshot_for,
        real_data=eval_real_data,
        real_features=eval_real_features,
    output:
        f"{OUT}/metrics/{{experiment}}/seed{{seed}}/{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.json",
    log:
        f"{LOGS}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.log",
    benchmark:
        f"{BENCH}/evaluate/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px-from{{gen}}px-{{metricset}}.tsv"
    params:
        samples=lambda wc: json.dumps(PRESET_CFG["samples"]),
        metrics=lambda wc: json.dumps(METRICS_CFG, sort_keys=True),
        real_features=real_features_option,
        generate_at=lambda wc: f"--generate-at {wc.gen}",
    resources:
        gpu=PRESET_CFG["gpus"]["evaluate"],
        runtime=4 * 60,
        mem_mb=16000,
    conda:
        "../envs/pegan.yaml"
    shell:
        EVALUATE_SHELL

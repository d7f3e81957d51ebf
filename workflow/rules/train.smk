# Training: one job per (experiment, seed). Checkpoints live outside the declared outputs
# (Snakemake deletes declared outputs before a retry); the trainer stops itself before the
# wall time with a resume status, and the retry continues from the last checkpoint.
# The margin it keeps before the wall time is the optional resource `safety_seconds`
# (profile `set-resources: train: {safety_seconds: 600}`); unset: min(10 min, 10 % of it).


rule train:
    input:
        data=train_data,
        selection=selection_features,
    output:
        model=f"{OUT}/runs/{{experiment}}/seed{{seed}}/final.pt",
        snapshots=f"{OUT}/runs/{{experiment}}/seed{{seed}}/snapshots.jsonl",
    log:
        f"{LOGS}/train/{{experiment}}-seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train/{{experiment}}-seed{{seed}}.tsv"
    params:
        spec=lambda wc: spec_json(wc.experiment),
        ckpt=checkpoint_dir,
        selection_scales=selection_scales_arg,
        safety=lambda wc, resources: (
            f"--safety-minutes {int(resources.safety_seconds) / 60:g}"
            if resources.get("safety_seconds") is not None
            else ""
        ),
    # one thread per job: two 1-thread trainings side by side beat one 2-thread training on 2
    # cores by 20-100 % (benchmarks/bench_train.py --only loop); clusters set their own
    # (profiles/slurm: set-threads)
    threads: 1
    resources:
        gpu=lambda wc: SPECS[wc.experiment].gpus,
        runtime=24 * 60,
        mem_mb=16000,
    # No rule-level `retries:` here: it would override the `--retries 0` that the SLURM
    # executor gives the job inside its allocation, which would then rerun the stopped trainer
    # there, past the wall time. The profiles set `retries` (one per wall-time chunk).
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan --threads {threads} train {wildcards.experiment} --spec {params.spec:q} "
        "--seed {wildcards.seed} "
        "--data {input.data} --checkpoint-dir {params.ckpt} "
        "--selection-scales {params.selection_scales} --selection-features {input.selection} "
        "--gpus {resources.gpu} --max-minutes {resources.runtime} {params.safety} "
        "--out {output.model} --snapshot-log {output.snapshots} > {log} 2>&1"


rule select_snapshot:
    input:
        f"{OUT}/runs/{{experiment}}/seed{{seed}}/snapshots.jsonl",
    output:
        f"{OUT}/runs/{{experiment}}/seed{{seed}}/selected/{{snapshot}}-{{res}}px.pt",
    log:
        f"{LOGS}/select/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px.log",
    benchmark:
        f"{BENCH}/select/{{experiment}}-seed{{seed}}-{{snapshot}}-{{res}}px.tsv"
    params:
        ckpt=checkpoint_dir,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan select-snapshot {input} --checkpoint-dir {params.ckpt} "
        "--budget {wildcards.snapshot} --scale {wildcards.res} --out {output} > {log} 2>&1"

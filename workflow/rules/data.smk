# Data: datasets prepared once per (dataset, size), and real-image Inception features
# computed once per (dataset, size, protocol, sample count), shared by every evaluation.


rule prepare_data:
    output:
        f"{OUT}/data/{{dataset}}-{{res}}px.zip",
    log:
        f"{LOGS}/data/{{dataset}}-{{res}}px.log",
    benchmark:
        f"{BENCH}/data/{{dataset}}-{{res}}px.tsv"
    params:
        spec=lambda wc: json.dumps(config["datasets"][wc.dataset], sort_keys=True),
        num=PRESET_CFG["num_images"],
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan prepare-data --dataset {wildcards.dataset} --spec {params.spec:q} "
        "--resolution {wildcards.res} --num {params.num} --out {output} > {log} 2>&1"


# Held-out reals (the floor of the claims' convergence table): the images after the training
# set, as many as the claim evaluations at that size read (pegan.claims.convergence). Its own
# rule, not a `use rule prepare_data`: the extra --first-index would change prepare_data's
# command, and Snakemake would rerun every prepared dataset and every run trained on it.
rule prepare_heldout:
    output:
        heldout_zip("{dataset}", "{res}"),
    log:
        f"{LOGS}/data/{{dataset}}-{{res}}px-heldout.log",
    benchmark:
        f"{BENCH}/data/{{dataset}}-{{res}}px-heldout.tsv"
    params:
        spec=lambda wc: json.dumps(config["datasets"][wc.dataset], sort_keys=True),
        num=lambda wc: pegan_convergence.heldout_images(config, PRESET, wc.dataset, wc.res),
        first=PRESET_CFG["num_images"],
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan prepare-data --dataset {wildcards.dataset} --spec {params.spec:q} "
        "--resolution {wildcards.res} --num {params.num} --first-index {params.first} "
        "--out {output} > {log} 2>&1"


rule real_features:
    input:
        f"{OUT}/data/{{dataset}}-{{res}}px.zip",
    output:
        f"{OUT}/stats/{{dataset}}-{{res}}px-{{mode}}-n{{num}}.npz",
    log:
        f"{LOGS}/stats/{{dataset}}-{{res}}px-{{mode}}-n{{num}}.log",
    benchmark:
        f"{BENCH}/stats/{{dataset}}-{{res}}px-{{mode}}-n{{num}}.tsv"
    wildcard_constraints:
        # an FID mode, or mmgen: MMGeneration's real statistics (legacy_pytorch network, the
        # reals cv2-bilinear-resized to 299 outside it; pegan/metrics/mmgen_stats.py)
        mode="clean|legacy_pytorch|mmgen",
        num=r"\d+",
    params:
        mode=lambda wc: pegan_real_features.real_features_args(wc.mode),
        inception=lambda wc: inception_option(pegan_real_features.token_mode(wc.mode)),
    resources:
        gpu=PRESET_CFG["gpus"]["evaluate"],
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan --threads {threads} real-features {input} {params.mode} --num {wildcards.num} "
        "{params.inception} --out {output} > {log} 2>&1"

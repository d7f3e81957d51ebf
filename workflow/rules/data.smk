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
        mode="clean|legacy_pytorch",
        num=r"\d+",
    params:
        inception=inception_option(),
    resources:
        gpu=PRESET_CFG["gpus"]["evaluate"],
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan real-features {input} --mode {wildcards.mode} --num {wildcards.num} "
        "{params.inception} --out {output} > {log} 2>&1"

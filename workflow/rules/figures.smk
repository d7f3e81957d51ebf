# Figures regenerated from code and runs (paper Figure 4, the padding statistics,
# MS-PIE samples at every scale, SinGAN samples at other sizes).


rule figure:
    input:
        data=figure_inputs,
        config=f"{OUT}/config.json",
    output:
        report(
            f"{FIG}/{{figure}}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        f"{LOGS}/figures/{{figure}}.log",
    benchmark:
        f"{BENCH}/figures/{{figure}}.tsv"
    params:
        preset=PRESET,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan figure {wildcards.figure} {input.data} --config {input.config} "
        "--preset {params.preset} --out {output} > {log} 2>&1"

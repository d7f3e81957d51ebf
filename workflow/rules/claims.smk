# The paper's claims tested across seeds: per-seed values of the claim cells, Welch one-sided
# t-tests, verdicts (held / not held / inconclusive). `snakemake --config preset=mini claims`
# trains and evaluates only the rows the preset's claims compare.


rule claims:
    input:
        metrics=claim_inputs,
        config=f"{OUT}/config.json",
    output:
        md=report(f"{OUT}/claims.md", caption="../report/claims-md.rst", category="Claims"),
        csv=report(f"{OUT}/claims.csv", caption="../report/claims-csv.rst", category="Claims"),
        figure=report(
            f"{FIG}/claims.png", caption="../report/claims-figure.rst", category="Claims"
        ),
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCH}/claims.tsv"
    params:
        preset=PRESET,
        benchmarks=BENCH,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan claims {input.metrics} --config {input.config} --preset {params.preset} "
        "--benchmarks {params.benchmarks} --out {output.md} --csv {output.csv} "
        "--figure {output.figure} > {log} 2>&1"

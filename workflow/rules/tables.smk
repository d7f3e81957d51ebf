# Aggregation: paper tables as CSV, then the reported-vs-reproduced comparison.


rule table:
    input:
        table_inputs,
    output:
        csv=report(
            f"{OUT}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
        provenance=f"{OUT}/tables/{{table}}.provenance.json",
    log:
        f"{LOGS}/tables/{{table}}.log",
    benchmark:
        f"{BENCH}/tables/{{table}}.tsv"
    params:
        preset=PRESET,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan table {wildcards.table} {input} --preset {params.preset} --out {output.csv} > {log} 2>&1"


rule compare:
    input:
        tables=expand(f"{OUT}/tables/{{table}}.csv", table=list(config["tables"])),
        provenance=expand(
            f"{OUT}/tables/{{table}}.provenance.json", table=list(config["tables"])
        ),
        reported=[table["reported"] for table in config["tables"].values()],
        protocols="results/reported/protocols.yaml",
    output:
        md=report(f"{OUT}/comparison.md", caption="../report/comparison.rst", category="Comparison"),
        csv=report(
            f"{OUT}/comparison.csv", caption="../report/comparison.rst", category="Comparison"
        ),
        claims=f"{OUT}/comparison-claims.csv",
    log:
        f"{LOGS}/compare.log",
    benchmark:
        f"{BENCH}/compare.tsv"
    params:
        preset=PRESET,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan compare --preset {params.preset} --out {output.md} --csv {output.csv} "
        "{input.tables} > {log} 2>&1"

# Aggregation: paper tables as CSV, then the reported-vs-reproduced comparison.


rule table:
    input:
        table_inputs,
    output:
        report(
            f"{OUT}/tables/{{table}}.csv",
            caption="../report/table.rst",
            category="Tables",
            labels={"table": "{table}"},
        ),
    log:
        f"{LOGS}/tables/{{table}}.log",
    benchmark:
        f"{BENCH}/tables/{{table}}.tsv"
    params:
        preset=PRESET,
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan table {wildcards.table} --preset {params.preset} --out {output} {input} > {log} 2>&1"


rule compare:
    input:
        tables=expand(f"{OUT}/tables/{{table}}.csv", table=list(config["tables"])),
        reported=[table["reported"] for table in config["tables"].values()],
    output:
        md=report(f"{OUT}/comparison.md", caption="../report/comparison.rst", category="Comparison"),
        csv=f"{OUT}/comparison.csv",
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

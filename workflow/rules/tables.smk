# Aggregation: paper tables as CSV, then the reported-vs-reproduced comparison.


rule effective_config:
    """The validated config of this run (after --config/--configfile overrides), for the
    aggregation commands; rewritten, and its consumers rerun, whenever the config changes."""
    output:
        f"{OUT}/config.json",
    log:
        f"{LOGS}/config.log",
    benchmark:
        f"{BENCH}/config.tsv"
    params:
        config=lambda wc: json.dumps(config, sort_keys=True, indent=1),
    localrule: True
    run:
        from pegan import io

        io.write_text(output[0], f"{params.config}\n")


rule table:
    input:
        metrics=table_inputs,
        config=f"{OUT}/config.json",
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
        "pegan table {wildcards.table} {input.metrics} --config {input.config} "
        "--preset {params.preset} --out {output.csv} > {log} 2>&1"


rule compare:
    input:
        tables=expand(f"{OUT}/tables/{{table}}.csv", table=list(config["tables"])),
        provenance=expand(
            f"{OUT}/tables/{{table}}.provenance.json", table=list(config["tables"])
        ),
        reported=[t["reported"] for t in config["tables"].values() if t.get("reported")],
        protocols="results/reported/protocols.yaml",
        claims=f"{OUT}/claims.csv",
        config=f"{OUT}/config.json",
    output:
        md=report(
            f"{OUT}/comparison.md", caption="../report/comparison-md.rst", category="Comparison"
        ),
        csv=report(
            f"{OUT}/comparison.csv", caption="../report/comparison-csv.rst", category="Comparison"
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
        "pegan compare {input.tables} --config {input.config} --preset {params.preset} "
        "--protocols {input.protocols} --claims-csv {input.claims} --out {output.md} "
        "--csv {output.csv} > {log} 2>&1"

# The paper's claims tested across seeds: per-seed values of the claim cells, Welch one-sided
# t-tests, verdicts (held / not held / inconclusive), and before them the convergence of the
# compared runs (final metrics beside the held-out-real floor, flattened learning curves).
# `snakemake --config preset=mini claims` trains and evaluates only the rows the preset's
# claims compare.


# The held-out-real floor: `pegan evaluate` of the held-out zip (data.smk's prepare_heldout)
# with the claim evaluation's metric set, at its scale, against its real features.
use rule evaluate as evaluate_heldout with:
    input:
        snapshot=lambda wc: heldout_zip(wc.dataset, wc.res),   # an image zip: the "fakes"
        real_data=lambda wc: data_zip(wc.dataset, wc.res),
        real_features=heldout_real_features,
    output:
        f"{OUT}/metrics/heldout/{{dataset}}/seed{{seed}}/real-{{res}}px-{{metricset}}.json",
    log:
        f"{LOGS}/evaluate-heldout/{{dataset}}-seed{{seed}}-{{res}}px-{{metricset}}.log",
    benchmark:
        f"{BENCH}/evaluate-heldout/{{dataset}}-seed{{seed}}-{{res}}px-{{metricset}}.tsv"


rule claims:
    input:
        metrics=claim_inputs,
        heldout=claim_heldout,
        curves=claim_curves,
        models=claim_models,
        config=f"{OUT}/config.json",
    output:
        md=report(f"{OUT}/claims.md", caption="../report/claims-md.rst", category="Claims"),
        csv=report(f"{OUT}/claims.csv", caption="../report/claims-csv.rst", category="Claims"),
        convergence=report(
            f"{OUT}/claims-convergence.csv",
            caption="../report/claims-convergence-csv.rst",
            category="Claims",
        ),
        figure=report(
            f"{FIG}/claims.png", caption="../report/claims-figure.rst", category="Claims"
        ),
        samples=report(
            f"{FIG}/claims-samples.png",
            caption="../report/claims-samples.rst",
            category="Claims",
        ),
        evidence=f"{OUT}/claims-evidence.json",
    log:
        f"{LOGS}/claims.log",
    benchmark:
        f"{BENCH}/claims.tsv"
    params:
        preset=PRESET,
        benchmarks=BENCH,
        finding=lambda wc: f"--finding {wc.finding}" if "finding" in wc.keys() else "",
        part=lambda wc: f"--part {wc.part}" if "part" in wc.keys() else "",
    conda:
        "../envs/pegan.yaml"
    shell:
        "pegan claims {input.metrics} --heldout {input.heldout} --curves {input.curves} "
        "--models {input.models} --config {input.config} --preset {params.preset} "
        "{params.finding} {params.part} --benchmarks {params.benchmarks} --out {output.md} "
        "--csv {output.csv} --convergence-csv {output.convergence} --figure {output.figure} "
        "--samples-figure {output.samples} --evidence-out {output.evidence} > {log} 2>&1"


# One finding on its own (its runs, evaluations and report; Holm over its claims), so that a
# finding fits a working session and can be regenerated alone: `snakemake claims_<finding>`
# (dashes as underscores, e.g. claims_singan_global_structure), one target per finding below.
use rule claims as claims_finding with:
    # plain outputs: the HTML report (`snakemake --report`) shows the combined claims report
    output:
        md=f"{OUT}/claims/{{finding}}/claims.md",
        csv=f"{OUT}/claims/{{finding}}/claims.csv",
        convergence=f"{OUT}/claims/{{finding}}/claims-convergence.csv",
        figure=f"{FIG}/claims/{{finding}}/claims.png",
        samples=f"{FIG}/claims/{{finding}}/claims-samples.png",
        evidence=f"{OUT}/claims/{{finding}}/evidence.json",
    log:
        f"{LOGS}/claims-{{finding}}.log",
    benchmark:
        f"{BENCH}/claims-{{finding}}.tsv"


# One part of a finding whose claims compare runs of several families (plan.finding_parts):
# its claims on one family's runs, `snakemake claims_<finding>_<part>` (e.g.
# claims_padding_is_positional_encoding_pggan). A finding too long for one session runs part
# by part; its report is rebuilt from the parts' committed evidence.json files with
# `pegan claims --finding <finding> --evidence .../*/evidence.json` (README).
use rule claims as claims_part with:
    output:
        md=f"{OUT}/claims/{{finding}}/{{part}}/claims.md",
        csv=f"{OUT}/claims/{{finding}}/{{part}}/claims.csv",
        convergence=f"{OUT}/claims/{{finding}}/{{part}}/claims-convergence.csv",
        figure=f"{FIG}/claims/{{finding}}/{{part}}/claims.png",
        samples=f"{FIG}/claims/{{finding}}/{{part}}/claims-samples.png",
        evidence=f"{OUT}/claims/{{finding}}/{{part}}/evidence.json",
    log:
        f"{LOGS}/claims-{{finding}}-{{part}}.log",
    benchmark:
        f"{BENCH}/claims-{{finding}}-{{part}}.tsv"


for _finding in FINDINGS:

    rule:
        name:
            plan.finding_target(_finding)
        input:
            expand(rules.claims_finding.output, finding=_finding),

    for _part in FINDING_PARTS[_finding]:

        rule:
            name:
                plan.finding_target(_finding, _part)
            input:
                expand(rules.claims_part.output, finding=_finding, part=_part),


# pegan: regenerate the tables and figures of "Positional Encoding as Spatial Inductive
# Bias in GANs" (Xu et al., CVPR 2021). The rules hold wiring; the `pegan` package and its
# command line hold the logic. Presets: smoke (default), mini, paper (--config preset=paper).

from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/released.smk"


rule all:
    input:
        get_final_output(),
    default_target: True

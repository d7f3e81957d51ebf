"""End to end through the Snakemake API: a slice of the smoke DAG (one StyleGAN2 table, one
SWD table, one MS-PIE model, one SinGAN variant) from data to tables, comparison, figures and
the HTML report, run twice to check that figures are byte-identical."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pegan import config as pconfig

ROOT = pconfig.REPO_ROOT
KEEP_TABLES = {"swd-dcgan", "table5-hires"}
KEEP_EXTRA = {"singan-no-pad"}


def _slice_config(raw: dict) -> dict:
    cfg = dict(raw)
    cfg["tables"] = {k: v for k, v in raw["tables"].items() if k in KEEP_TABLES}
    cfg["tables"]["table5-hires"] = dict(cfg["tables"]["table5-hires"])
    cfg["tables"]["table5-hires"]["rows"] = cfg["tables"]["table5-hires"]["rows"][:1]
    used = {r["experiment"] for t in cfg["tables"].values() for r in t["rows"]} | KEEP_EXTRA
    cfg["experiments"] = {k: v for k, v in raw["experiments"].items() if k in used}
    cfg["claims"] = [c for c in raw["claims"] if c["table"] in KEEP_TABLES]
    for preset in cfg["presets"].values():
        preset["overrides"] = {k: v for k, v in preset.get("overrides", {}).items() if k in used}
    return cfg


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    # the rules call `pegan`: make the interpreter's scripts folder visible to the jobs
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ["PATH"]
    work = tmp_path_factory.mktemp("smoke-slice")
    for item in ("Snakefile", "workflow", "profiles"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    (work / "results").mkdir()
    shutil.copytree(ROOT / "results" / "reported", work / "results" / "reported")
    raw = yaml.safe_load((ROOT / "config.yaml").read_text())
    (work / "config.yaml").write_text(yaml.safe_dump(_slice_config(raw), sort_keys=False))
    return work


def _run(work: Path, targets=("all",)) -> None:
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import (ConfigSettings, DAGSettings, OutputSettings,
                                          ResourceSettings)

    with SnakemakeApi(OutputSettings(printshellcmds=True)) as api:
        workflow = api.workflow(
            snakefile=work / "Snakefile", workdir=work,
            config_settings=ConfigSettings(configfiles=[work / "config.yaml"]),
            resource_settings=ResourceSettings(cores=2),
        )
        workflow.dag(DAGSettings(targets=set(targets))).execute_workflow(executor="local")


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.png"))}


@pytest.mark.slow
def test_smoke_slice_end_to_end(workdir):
    _run(workdir)
    out = workdir / "results" / "smoke"
    cfg = pconfig.load(workdir / "config.yaml")

    for name, spec in cfg["tables"].items():
        frame = pd.read_csv(out / "tables" / f"{name}.csv", dtype={"row": str})
        assert list(frame["row"]) == [str(r["id"]) for r in spec["rows"]]
        assert (frame["seeds"] == 1).all()
        for col in spec["columns"]:
            assert col["key"] in frame.columns and f"{col['key']}_std" in frame.columns

    dcgan = pd.read_csv(out / "tables" / "swd-dcgan.csv").set_index("row")
    # smoke images are 32 px: the paper's 128/64 levels exist (32/16 px), its 32 level does not
    assert dcgan[["swd128", "swd64", "swd_avg"]].notna().all().all()
    assert dcgan["swd32"].isna().all()
    hires = pd.read_csv(out / "tables" / "table5-hires.csv").set_index("row")
    assert hires[["fid_max", "precision_max", "recall_max"]].notna().all().all()

    md = (out / "comparison.md").read_text()
    assert md.startswith("# pegan: reported vs reproduced (smoke preset)")
    comparison = pd.read_csv(out / "comparison.csv")
    assert set(comparison["table"]) == set(cfg["tables"])
    assert not comparison["comparable"].any()          # smoke is never the paper's protocol

    figures = workdir / "figures" / "smoke"
    expected = {"encodings.png", "padding-statistics.png", "mspie-scales.png",
                "singan-samples.png", "samples-swd-dcgan.png", "bars-swd-dcgan.png",
                "samples-table5-hires.png", "bars-table5-hires.png"}
    assert expected <= set(_digests(figures))
    assert (workdir / "results" / "smoke" / "runs" / "singan-no-pad" / "seed0" / "final.pt").is_file()

    # figures are deterministic: regenerate them from the same runs, same bytes
    before = _digests(figures)
    for png in figures.glob("*.png"):
        png.unlink()
    _run(workdir, targets=[str(p.relative_to(workdir)) for p in
                           (figures / name for name in sorted(before))])
    assert _digests(figures) == before

    # the HTML report bundles tables, comparison and figures (snakemake --report)
    snakemake = Path(sys.executable).parent / "snakemake"
    result = subprocess.run([str(snakemake), "--report", "report.html"], cwd=workdir,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    html = (workdir / "report.html").read_text(errors="replace")
    assert "comparison.md" in html and "encodings.png" in html and "swd-dcgan.csv" in html

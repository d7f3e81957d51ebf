"""The Snakemake DAG: complete for smoke and paper, lint-clean, same validation as pegan."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pegan import config as pconfig

ROOT = pconfig.REPO_ROOT
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def _snakemake(*args, cwd=ROOT):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def _job_counts(output: str) -> dict[str, int]:
    stats = output.split("Job stats:")[1]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, flags=re.M)}


@pytest.mark.parametrize("preset", ["smoke", "paper"])
def test_dry_run_lists_the_complete_dag(cfg, preset):
    # --forceall: list every job even where a previous run left outputs in results/
    result = _snakemake("-n", "--forceall", "--config", f"preset={preset}")
    assert result.returncode == 0, result.stderr[-2000:]
    counts = _job_counts(result.stdout)
    seeds = len(cfg["presets"][preset]["seeds"])
    assert counts["train"] == len(cfg["experiments"]) * seeds
    assert counts["table"] == len(cfg["tables"])
    assert counts["compare"] == 1
    assert counts["evaluate"] > 0 and counts["prepare_data"] > 0
    trained = {m for m in re.findall(r"experiment=([a-z0-9-]+), seed=", result.stdout)}
    assert set(cfg["experiments"]) <= trained
    # sample grids draw latent codes: no SinGAN run among their inputs (singan-samples has them)
    singan = {n for n, e in cfg["experiments"].items() if e["arch"] == "singan"}
    grids = [b for b in result.stdout.split("\n\n")
             if "rule figure:" in b and re.search(r"output: figures/\w+/samples-", b)]
    assert grids
    for block in grids:
        inputs = set(re.findall(r"runs/([a-z0-9-]+)/seed", block.split("output:")[0]))
        assert inputs and not inputs & singan, block


def test_slurm_profile_resources(cfg):
    result = _snakemake("-n", "--forceall", "--profile", "profiles/slurm", "--config",
                        "preset=paper")
    assert result.returncode == 0, result.stderr[-2000:]
    blocks = result.stdout.split("\n\n")
    train = [b for b in blocks if "rule train:" in b]
    assert len(train) == len(cfg["experiments"])
    for block in train:
        exp = re.search(r"experiment=([a-z0-9-]+)", block).group(1)
        gpus = {"stylegan2": 8, "pggan": 8, "dcgan": 1, "singan": 1}[cfg["experiments"][exp]["arch"]]
        assert f"gpu={gpus}," in block and "tasks_per_gpu=0" in block, block
        assert "slurm_partition=gpu" in block and "runtime=2880" in block


def test_cpu_kernels_reach_the_jobs_and_leave_the_commands_as_they_were(tmp_path):
    # `cpu_kernels` pins the kernels of the jobs' pegan (their logs say so) without touching
    # the shell commands, so that finished jobs are not rerun for a changed command
    import torch

    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        pytest.skip("x86 kernels (AVX2) needed")
    dry = [_snakemake("-n", "-p", "--forceall", "--config", "preset=smoke", f"cpu_kernels={k}")
           for k in ("default", "avx2")]
    assert all(r.returncode == 0 for r in dry), dry[1].stderr[-2000:]
    assert dry[0].stdout.count("Shell command: pegan ") > 20
    commands = [re.findall(r"^Shell command: .*$", r.stdout, flags=re.M) for r in dry]
    assert sorted(commands[0]) == sorted(commands[1])
    work = tmp_path / "wf"
    work.mkdir()
    for item in ("Snakefile", "workflow", "profiles", "config.yaml"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / item)
    target = "results/smoke/data/skimage-astronaut-40px.zip"
    result = _snakemake(target, "--cores", "1", "--config", "preset=smoke", "cpu_kernels=avx2",
                        cwd=work)
    assert result.returncode == 0, result.stderr[-2000:]
    log = (work / "results/smoke/logs/data/skimage-astronaut-40px.log").read_text()
    assert "CPU kernels pinned to avx2: torch AVX2, oneDNN at most AVX2" in log, log


def test_snakefile_rejects_an_unknown_preset_naming_the_key():
    result = _snakemake("-n", "--config", "preset=huge")
    assert result.returncode != 0
    assert "preset: 'huge' is not a preset" in result.stdout + result.stderr


def test_lint_is_clean():
    result = _snakemake("--lint")
    assert result.returncode == 0, result.stdout[-3000:]


def test_cli_validate_and_errors(tmp_path):
    from pegan.cli import main

    assert main(["validate"]) == 0
    # (the paper preset also needs its weight files: tests/test_paper_protocol.py)
    assert main(["validate", "--preset", "mini"]) == 0
    assert main(["show", "t5f", "--preset", "smoke"]) == 0
    assert main(["validate", "--preset", "huge"]) == 2
    assert main(["show", "t9"]) == 2

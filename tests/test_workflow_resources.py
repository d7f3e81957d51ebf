"""SLURM dry runs: every job that asks for a GPU is sent to the GPU partition, every other job
to the CPU partition (profiles/slurm, trained and released models), and the single-node test
cluster of profiles/slurm-local is asked for no GPU at all."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workflow_slice import ROOT, job_env, snakemake_exe

# Every rule that asks for a GPU at the paper / mini presets: the tests fail if one is missing
# from the dry run (they would pass vacuously) or if a new GPU rule is not covered.
GPU_RULES = {"train", "real_features", "evaluate", "evaluate_upsampled"}
RELEASED_GPU_RULES = {"real_features", "evaluate_released"}


def _dry_run(*args: str, cwd: Path = ROOT) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job of `snakemake -n --forceall ARGS`."""
    result = subprocess.run([snakemake_exe(), "-n", "--forceall", *args], cwd=cwd,
                            capture_output=True, text=True, env=job_env(), timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    return _jobs(result.stdout)


def _jobs(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job of a dry run's output."""
    jobs = []
    for block in output.split("\n\n"):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.M)
        if rule:
            pairs = resources.group(1).split(", ") if resources else []
            jobs.append((rule.group(1), dict(p.split("=", 1) for p in pairs)))
    return jobs


def _profile(name: str) -> dict:
    return yaml.safe_load((ROOT / "profiles" / name / "config.v8+.yaml").read_text())


def _check_partitions(jobs: list[tuple[str, dict[str, str]]], gpu_rules: set[str]) -> None:
    profile = _profile("slurm")
    cpu = profile["default-resources"]["slurm_partition"]
    gpu = profile["set-resources"]["train"]["slurm_partition"]
    asking = set()
    for rule, resources in jobs:
        if int(resources.get("gpu", 0)) > 0:
            asking.add(rule)
            assert resources.get("slurm_partition") == gpu, (rule, resources)
        else:
            assert resources.get("slurm_partition", cpu) == cpu, (rule, resources)
    assert asking == gpu_rules


def test_every_variant_of_evaluate_has_the_gpu_resources_of_evaluate():
    """`use rule evaluate as X` jobs ask for the GPU of `evaluate`, also those the dry runs
    above do not plan (evaluate_heldout: the paper preset's held-out floor needs CelebA)."""
    variants = set()
    for path in (ROOT / "workflow" / "rules").glob("*.smk"):
        variants |= set(re.findall(r"^use rule evaluate as (\w+) with:", path.read_text(),
                                   flags=re.M))
    assert {"evaluate_upsampled", "evaluate_heldout"} <= variants
    for name in ("slurm", "slurm-local"):
        resources = _profile(name)["set-resources"]
        for rule in variants:
            assert resources.get(rule) == resources["evaluate"], (name, rule)


def test_slurm_sends_every_gpu_job_to_the_gpu_partition():
    _check_partitions(_dry_run("--profile", "profiles/slurm", "--config", "preset=paper"),
                      GPU_RULES)


@pytest.fixture
def released_workdir(tmp_path: Path) -> Path:
    """A copy of the workflow with (empty) released checkpoints of every Table 5 row."""
    for item in ("Snakefile", "workflow", "profiles", "config.yaml"):
        src = ROOT / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    shutil.copytree(ROOT / "results" / "reported", tmp_path / "results" / "reported")
    released = tmp_path / "released"
    released.mkdir()
    for name in [f"config-{row}" for row in "abcdefghijk"] + ["256-896", "256-1024"]:
        (released / f"mspie_{name}.pth").touch()
    return tmp_path


def test_slurm_sends_the_released_evaluations_to_the_gpu_partition(released_workdir):
    jobs = _dry_run("--profile", "profiles/slurm", "--config", "preset=paper", "--",
                    "released", cwd=released_workdir)
    assert sum(rule == "evaluate_released" for rule, _ in jobs) > 0
    _check_partitions(jobs, RELEASED_GPU_RULES)


def test_slurm_local_asks_for_no_gpu():
    # the paper preset asks for GPUs in every GPU rule; the test cluster has none
    jobs = _dry_run("--profile", "profiles/slurm-local", "--config", "preset=paper")
    assert {rule for rule, _ in jobs} >= GPU_RULES
    for rule, resources in jobs:
        assert int(resources.get("gpu", 0)) == 0, (rule, resources)

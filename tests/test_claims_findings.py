"""Per-finding claims: `snakemake claims_<finding>` trains, evaluates and reports one finding
alone, with Holm's correction over its own claims."""

from __future__ import annotations

import re
import subprocess

import pytest

from pegan import plan
from pegan.claims.check import check_claims
from pegan.claims.convergence import claim_runs
from pegan.errors import ConfigError
from workflow_slice import ROOT, job_env, snakemake_exe


def test_the_findings_partition_the_tested_claims(cfg):
    found = plan.findings(cfg, "mini")
    assert len(found) >= 4 and len(set(found)) == len(found)
    per_finding = [c["id"] for f in found for c in plan.tested_claims(cfg, "mini", f)]
    assert sorted(per_finding) == sorted(c["id"] for c in plan.tested_claims(cfg, "mini"))
    for f in found:
        assert {c["finding"] for c in plan.tested_claims(cfg, "mini", f)} == {f}


def test_an_unknown_finding_is_one_line(cfg):
    with pytest.raises(ConfigError) as err:
        plan.tested_claims(cfg, "mini", "padding-is-everything")
    assert "padding-is-everything" in str(err.value) and "choose" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_finding_is_corrected_over_its_own_claims(cfg):
    tests = check_claims(cfg, [], "mini", finding="singan-global-structure")
    assert tests and {t.finding for t in tests} == {"singan-global-structure"}


def test_a_finding_target_plans_only_its_runs(cfg):
    target = plan.finding_target("singan-global-structure")
    assert target == "claims_singan_global_structure"
    result = subprocess.run([snakemake_exe(), "-n", "--forceall", target,
                             "--config", "preset=mini"], cwd=ROOT, capture_output=True, text=True,
                            env=job_env(), timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    trained = set(re.findall(r"runs/([a-z0-9-]+)/seed\d+/final\.pt", result.stdout))
    ours = {e for e, _ in claim_runs(cfg, "mini", "singan-global-structure")}
    assert trained == ours and "singan-csg" in ours
    assert all(cfg["experiments"][e]["arch"] == "singan" for e in trained)
    assert "results/mini/claims/singan-global-structure/claims.md" in result.stdout

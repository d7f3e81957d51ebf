"""Per-finding claims: `snakemake claims_<finding>` trains, evaluates and reports one finding
alone, with Holm's correction over its own claims; a finding over several families also runs
part by part (`claims_<finding>_<family>`), and its report is rebuilt from the parts'
evidence."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from pegan import plan
from pegan.claims import add_args, evidence, run
from pegan.claims.check import check_claims
from pegan.claims.convergence import claim_runs, heldout_evaluations, heldout_metrics_path
from pegan.errors import ConfigError, PeganError
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


# ------------------------------------------------ parts of a finding and their evidence


def test_a_finding_over_several_families_has_a_part_per_family(cfg):
    finding = "padding-is-positional-encoding"
    parts = plan.finding_parts(cfg, "mini", finding)
    assert parts == ["stylegan2", "pggan", "dcgan"]
    per_part = [c["id"] for p in parts for c in plan.tested_claims(cfg, "mini", finding, p)]
    assert sorted(per_part) == sorted(c["id"] for c in plan.tested_claims(cfg, "mini", finding))
    for part in parts:
        runs = {e for e, _ in claim_runs(cfg, "mini", finding, part)}
        assert runs and {cfg["experiments"][e]["arch"] for e in runs} == {part}
    assert plan.finding_parts(cfg, "mini", "singan-global-structure") == []
    assert (plan.finding_target(finding, "pggan")
            == "claims_padding_is_positional_encoding_pggan")
    with pytest.raises(ConfigError) as err:
        plan.tested_claims(cfg, "mini", finding, "singan")
    assert "stylegan2, pggan, dcgan" in str(err.value) and "\n" not in str(err.value)


def _fixture_finding(root, config, finding):
    """Metrics files of every claim cell of `finding` (values by experiment and seed: each
    claimed winner clearly better on some claims, not on others), held-out floors, curves."""
    seeds = config["presets"]["mini"]["seeds"]
    offsets = {"t2b": 0.0, "t2c": 0.4, "t2d": 0.1, "t2e": 0.2, "swd-pggan-a": 0.1,
               "swd-pggan-b": 0.12, "swd-pggan-c": 0.05, "swd-dcgan-a": 0.0, "swd-dcgan-b": 0.3,
               "swd-dcgan-c": 0.1}
    metrics = set()
    for cell in plan.claim_cells(config, "mini", finding):
        ev = cell.evaluation
        for seed in seeds:
            path = root / plan.metrics_path("results/mini/metrics", ev.experiment, seed, ev)
            v = 1.0 + offsets[ev.experiment] + 0.01 * seed * (1 + offsets[ev.experiment])
            values = {"fid": 100 * v, "kid": 0.1 * v, "precision": 1 / (1 + v),
                      "recall": 0.5, "swd": {"8": 10 * v, "16": 10 * v, "32": 10 * v,
                                             "avg": 10 * v},
                      "structure": 1 - v / 2, "diversity": 0.1, "patch_swd": 5.0, "eqt": 20.0}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"values": values, "protocol": {
                "experiment": ev.experiment, "snapshot": f"{ev.experiment}/seed{seed}",
                "trained_by": ["a" * 40]}}))
            metrics.add(str(path))
    heldout = []
    for h in heldout_evaluations(config, "mini", finding):
        path = root / heldout_metrics_path("results/mini/metrics", seeds[0], h)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"values": {"fid": 17.0, "precision": 0.87, "recall": 0.89,
                                               "structure": 0.83, "diversity": 0.2},
                                    "protocol": {}}))
        heldout.append(str(path))
    curves = []
    for experiment, seed in claim_runs(config, "mini", finding):
        path = root / "results/mini/runs" / experiment / f"seed{seed}" / "snapshots.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"iterations": i, "structure@32": 0.5 + 0.1 * i})
                                + "\n" for i in range(3)))
        curves.append(str(path))
    return sorted(metrics), heldout, curves


def _claims(*argv):
    parser = argparse.ArgumentParser()
    add_args(parser)
    return run(parser.parse_args([str(a) for a in argv]))


def test_a_finding_report_from_its_parts_evidence_is_the_report_of_the_files(cfg, tmp_path,
                                                                             monkeypatch):
    finding = "padding-is-positional-encoding"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path)
    metrics, heldout, curves = _fixture_finding(tmp_path, cfg, finding)
    common = ["--config", config_file, "--preset", "mini", "--finding", finding]

    def outputs(name):
        out = tmp_path / name
        return ["--out", out / "claims.md", "--csv", out / "claims.csv",
                "--convergence-csv", out / "claims-convergence.csv"]

    # the finding at once, from its files
    _claims(*metrics, "--heldout", *heldout, "--curves", *curves, *common, *outputs("direct"))
    # each part from its own files only, with its evidence; then the finding from those alone
    bundles = []
    for part in plan.finding_parts(cfg, "mini", finding):
        runs = {e for e, _ in claim_runs(cfg, "mini", finding, part)}
        ours = [m for m in metrics if plan.parse_metrics_path(m)[0].experiment in runs]
        own_curves = [c for c in curves if c.split("/runs/")[1].split("/")[0] in runs]
        bundles.append(tmp_path / f"{part}.json")
        _claims(*ours, "--heldout", *heldout, "--curves", *own_curves, *common, "--part", part,
                *outputs(part), "--evidence-out", bundles[-1])
    _claims(*common, "--evidence", *bundles, *outputs("merged"), "--evidence-out",
            tmp_path / "merged.json")

    direct = pd.read_csv(tmp_path / "direct/claims.csv")
    merged = pd.read_csv(tmp_path / "merged/claims.csv")
    pd.testing.assert_frame_equal(direct, merged)
    assert len(set(direct["claim"])) == 7                      # the finding's seven claims
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "direct/claims-convergence.csv"),
                                  pd.read_csv(tmp_path / "merged/claims-convergence.csv"))
    # Holm over the finding's seven claims, not over a part's
    part_csv = pd.read_csv(tmp_path / "dcgan/claims.csv").set_index("claim")
    merged_by_claim = merged.set_index("claim")
    assert (merged_by_claim.loc["padding-dcgan", "claim_p_holm"]
            > part_csv.loc["padding-dcgan", "claim_p_holm"])
    text = (tmp_path / "merged/claims.md").read_text()
    assert "evidence" in text and "dcgan.json" in text and "(pggan part)" in text
    assert "**trained by:** aaaaaaaaaa (18 runs)" in text
    assert "from the evidence of 3 reports" in text
    # every finding at once from the same bundles: the preset's report so far, Holm over the
    # claims that have a test (the other findings' have no results), the same raw tests
    _claims("--config", config_file, "--preset", "mini", "--evidence", *bundles,
            *outputs("overall"))
    overall = pd.read_csv(tmp_path / "overall/claims.csv").set_index("claim")
    assert (overall.loc[direct["claim"], "claim_p"].to_numpy()
            == direct["claim_p"].to_numpy()).all()
    text = (tmp_path / "overall/claims.md").read_text()
    total = len(plan.tested_claims(cfg, "mini"))
    assert f"each direction: 7 of the {total} claims; the other {total - 7} have no test" in text
    assert "**findings:** every finding the preset tests, from the evidence of 3 reports" in text
    assert "**jobs:**" not in text                        # no job time in these bundles
    # the merged report's evidence is its parts' files under their own names
    merged_files = evidence.read([tmp_path / "merged.json"]).files
    parts_files = evidence.read(bundles).files
    assert merged_files == parts_files and "results/mini/metrics/t2b/seed0/" in "".join(
        merged_files["metrics"])


def test_job_time_counts_each_run_once_across_bundles_split_by_seed(cfg, tmp_path,
                                                                   monkeypatch):
    finding, part = "padding-is-positional-encoding", "dcgan"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path)
    metrics, heldout, curves = _fixture_finding(tmp_path, cfg, finding)
    runs = {e for e, _ in claim_runs(cfg, "mini", finding, part)}
    bench = tmp_path / "bench"
    for experiment in runs:                        # 600 s of training + 90 s of evaluation
        for seed in (0, 1, 2):
            for stage, name, seconds in (("train", "", 600), ("evaluate", "-final-32px-swd", 60),
                                         ("evaluate", "-final-32px-structure", 30)):
                path = bench / stage / f"{experiment}-seed{seed}{name}.tsv"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"s\th:m:s\n{seconds}\t0:00:00\n")

    def seeds_of(seeds):
        return [m for m in metrics if plan.parse_metrics_path(m)[0].experiment in runs
                and plan.parse_metrics_path(m)[1] in seeds]

    def report(name, *argv):
        out = tmp_path / name
        _claims(*argv, "--config", config_file, "--preset", "mini", "--finding", finding,
                "--part", part, "--out", out / "claims.md", "--evidence-out", out / "e.json")
        return (json.loads((out / "e.json").read_text()),
                (out / "claims.md").read_text().split("**jobs:** ")[1].split(" min")[0])

    # seeds 0-1 in one session, seed 2 in another: the benchmark folder holds all three, the
    # report counts the runs of its own metrics files
    first, minutes = report("s01", *seeds_of({0, 1}), "--heldout", *heldout,
                            "--benchmarks", bench)
    assert "**Seeds per row:** 3 (0, 1, 2); no result yet for seed 2\n" in (
        tmp_path / "s01/claims.md").read_text()
    assert minutes == "46.0" and first["run_seconds"] == {
        "swd-dcgan-a/seed0": 690.0, "swd-dcgan-a/seed1": 690.0,
        "swd-dcgan-b/seed0": 690.0, "swd-dcgan-b/seed1": 690.0}
    second, minutes = report("s2", *seeds_of({2}), "--heldout", *heldout,
                             "--benchmarks", bench)
    assert minutes == "23.0"
    # the part from both bundles, from seed 2's files beside seeds 0-1's bundle, and from the
    # part's bundle beside the bundles it was made of: each run once
    full, minutes = report("all", "--evidence", tmp_path / "s01/e.json", tmp_path / "s2/e.json")
    assert "**Seeds per row:** 3 (0, 1, 2)\n" in (tmp_path / "all/claims.md").read_text()
    assert minutes == "69.0" and full["job_seconds"] == {"swd-dcgan-a": 2070.0,
                                                         "swd-dcgan-b": 2070.0}
    _, minutes = report("mixed", *seeds_of({2}), "--heldout", *heldout, "--benchmarks", bench,
                        "--evidence", tmp_path / "s01/e.json")
    assert minutes == "69.0"
    _, minutes = report("again", "--evidence", tmp_path / "all/e.json", tmp_path / "s01/e.json",
                        tmp_path / "s2/e.json")
    assert minutes == "69.0"
    # a bundle written before job time was kept per run counts for the seeds it holds
    del first["run_seconds"]
    (tmp_path / "old.json").write_text(json.dumps(first))
    _, minutes = report("old", "--evidence", tmp_path / "old.json", tmp_path / "s2/e.json")
    assert minutes == "69.0"


def test_a_part_that_reuses_another_findings_runs_keeps_only_its_own(cfg, tmp_path,
                                                                    monkeypatch):
    """Explicit encodings compare DCGAN (c) with the padding finding's (b): the part is made
    from the new (c) runs beside the padding part's evidence, so both findings rest on the
    same (b) runs, and its evidence holds (b) and (c) only."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path)
    common = ["--config", config_file, "--preset", "mini"]
    padding, explicit = "padding-is-positional-encoding", "explicit-encoding-recovers"
    metrics, heldout, curves = _fixture_finding(tmp_path / "p", cfg, padding)
    dcgan = [m for m in metrics if "/swd-dcgan-" in m]
    _claims(*dcgan, "--heldout", *heldout, "--curves", *curves, *common, "--finding", padding,
            "--part", "dcgan", "--out", tmp_path / "p.md", "--evidence-out", tmp_path / "p.json")
    metrics, heldout, curves = _fixture_finding(tmp_path / "e", cfg, explicit)
    new, new_curves = ([p for p in paths if "/swd-dcgan-c/" in p] for paths in (metrics, curves))
    _claims(*new, "--heldout", *heldout, "--curves", *new_curves, *common, "--finding", explicit,
            "--part", "dcgan", "--evidence", tmp_path / "p.json", "--out", tmp_path / "e.md",
            "--csv", tmp_path / "e.csv", "--evidence-out", tmp_path / "e.json")
    bundled = evidence.read([tmp_path / "e.json"]).files
    assert {plan.parse_metrics_path(m)[0].experiment for m in bundled["metrics"]} == {
        "swd-dcgan-b", "swd-dcgan-c"}
    assert {Path(c).parts[-3] for c in bundled["curves"]} == {"swd-dcgan-b", "swd-dcgan-c"}
    assert "**trained by:** aaaaaaaaaa (6 runs)" in (tmp_path / "e.md").read_text()
    assert set(pd.read_csv(tmp_path / "e.csv")["claim"]) == {"spe-recovers-dcgan",
                                                              "spe-recovers-dcgan-layout"}
    # both parts in one report: their (b) files are the same files
    _claims(*common, "--evidence", tmp_path / "p.json", tmp_path / "e.json",
            "--out", tmp_path / "all.md")
    assert "**trained by:** aaaaaaaaaa (9 runs)" in (tmp_path / "all.md").read_text()


def test_evidence_of_one_file_twice_must_agree(cfg, tmp_path):
    metrics, heldout, curves = _fixture_finding(tmp_path, cfg, "padding-is-positional-encoding")
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    evidence.write(first, {"metrics": metrics[:1]}, {"finding": "x"})
    Path(metrics[0]).write_text(json.dumps({"values": {"fid": 1.0}, "protocol": {}}))
    evidence.write(second, {"metrics": metrics[:1]}, {"finding": "x"})
    evidence.read([first, first])                               # the same file twice: fine
    with pytest.raises(PeganError) as err:
        evidence.read([first, second])
    assert "differs" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(PeganError, match="not a pegan claims evidence file"):
        evidence.read([tmp_path / "c.json"])


def test_a_part_target_plans_only_its_family(cfg):
    finding = "padding-is-positional-encoding"
    target = plan.finding_target(finding, "dcgan")
    result = subprocess.run([snakemake_exe(), "-n", "--forceall", target,
                             "--config", "preset=mini"], cwd=ROOT, capture_output=True, text=True,
                            env=job_env(), timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    trained = set(re.findall(r"runs/([a-z0-9-]+)/seed\d+/final\.pt", result.stdout))
    assert trained == {"swd-dcgan-a", "swd-dcgan-b"}
    assert f"results/mini/claims/{finding}/dcgan/evidence.json" in result.stdout


def test_the_committed_mini_results_are_not_ignored_by_git(cfg):
    """What the README says is committed (every mini claims report, its evidence, figures)
    must be committable: a .gitignore rule once kept the finding reports out of git."""
    if subprocess.run(["git", "rev-parse"], cwd=ROOT, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    names = ["claims.md", "claims.csv", "claims-convergence.csv"]
    figures = ["claims.png", "claims-samples.png"]
    folders = [""]
    for finding in plan.findings(cfg, "mini"):
        folders.append(f"claims/{finding}/")
        folders += [f"claims/{finding}/{part}/" for part in plan.finding_parts(cfg, "mini",
                                                                                finding)]
    paths = ["results/mini/claims-evidence.json"]
    for folder in folders:
        paths += [f"results/mini/{folder}{n}" for n in names]
        paths += [f"figures/mini/{folder}{n}" for n in figures]
        if folder:
            paths.append(f"results/mini/{folder}evidence.json")
    result = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 1 and not result.stdout, f"ignored by git:\n{result.stdout}"
    assert len(paths) > 50

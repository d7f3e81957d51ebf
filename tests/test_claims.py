"""Claim tests across seeds (pegan.claims): verdicts of the one-sided Welch test on fixture
values, the claim kinds, and `pegan claims` on fixture metrics files."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from pegan import claims as pc
from pegan import plan


def test_clear_effect_is_held():
    # FID: lower is better; the claimed winner is clearly lower
    t = pc.one_sided_test([10.1, 10.4, 9.8], [14.0, 13.5, 14.6], lower_is_better=True)
    assert t.verdict == "held" and t.p < 0.01 and t.hedges_g > 2
    assert math.isclose(t.p + t.p_reverse, 1.0, rel_tol=1e-9)
    assert math.isclose(t.difference, np.mean([14.0, 13.5, 14.6]) - np.mean([10.1, 10.4, 9.8]))


def test_no_effect_is_inconclusive():
    t = pc.one_sided_test([10.0, 12.0, 11.0], [11.5, 10.5, 11.2], lower_is_better=True)
    assert t.verdict == "inconclusive" and t.p > 0.05 and t.p_reverse > 0.05


def test_reversed_effect_is_not_held():
    t = pc.one_sided_test([14.0, 13.5, 14.6], [10.1, 10.4, 9.8], lower_is_better=True)
    assert t.verdict == "not held" and t.p_reverse < 0.01 and t.hedges_g < -2


def test_orientation_follows_the_metric():
    # structure / precision: higher is better
    up = pc.one_sided_test([0.8, 0.82, 0.79], [0.1, 0.15, 0.05], lower_is_better=False)
    down = pc.one_sided_test([0.8, 0.82, 0.79], [0.1, 0.15, 0.05], lower_is_better=True)
    assert up.verdict == "held" and down.verdict == "not held"


def test_welch_matches_scipy_and_a_hand_computation():
    from scipy import stats

    a, b = [1.0, 2.0, 4.0], [3.0, 5.0, 6.0, 9.0]
    t = pc.one_sided_test(a, b, lower_is_better=True)
    ref = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    assert math.isclose(t.p, ref.pvalue) and math.isclose(t.t, ref.statistic)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 4
    assert math.isclose(t.t, (np.mean(a) - np.mean(b)) / math.sqrt(va + vb))
    assert math.isclose(t.df, (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3))


def test_one_seed_is_inconclusive_whatever_the_gap():
    t = pc.one_sided_test([1.0], [100.0], lower_is_better=True)
    assert t.verdict == "inconclusive" and math.isnan(t.p)


def test_non_inferiority_margin():
    # f is 5 % worse than b: within a 10 % margin -> held; a 1 % margin -> not held
    b = [20.0, 20.4, 19.6]
    f = [21.0, 21.3, 20.7]
    claim = {"id": "x", "text": "x", "table": "t", "column": "c", "close": "f", "to": "b"}
    held = pc.check_claim({**claim, "margin": 0.1}, "fid", {"f": dict(enumerate(f)), "b": dict(enumerate(b))})
    strict = pc.check_claim({**claim, "margin": 0.01}, "fid", {"f": dict(enumerate(f)), "b": dict(enumerate(b))})
    assert held.verdict == "held" and math.isclose(held.pairs[0].allowance, 2.0)
    assert strict.verdict == "not held"


def test_best_among_needs_every_pair():
    per_seed = {"f": {0: 5.0, 1: 5.2, 2: 4.9}, "c": {0: 8.0, 1: 8.3, 2: 7.9},
                "k": {0: 5.1, 1: 4.8, 2: 5.3}}
    claim = {"id": "x", "text": "x", "table": "t", "column": "c", "best": "f", "among": ["c", "f", "k"]}
    result = pc.check_claim(claim, "fid", per_seed)
    assert [p.other for p in result.pairs] == ["c", "k"]
    assert [p.verdict for p in result.pairs] == ["held", "inconclusive"]
    assert result.verdict == "inconclusive"
    assert pc.combine(["held", "not held"]) == "not held" and pc.combine([]) == "inconclusive"


# ------------------------------------------------------------------ from metrics files


def _write_metrics(root, config, preset, values):
    """values: {(experiment, metric): [per-seed values]} -> metrics files of every claim cell."""
    files = []
    for cell in plan.claim_cells(config, preset):
        ev = cell.evaluation
        for seed in config["presets"][preset]["seeds"]:
            key = (ev.experiment + (f"@{ev.generate_at}" if ev.generate_at else ""), cell.metric)
            if key not in values:
                continue
            path = root / plan.metrics_path("metrics", ev.experiment, seed, ev)
            existing = json.loads(path.read_text()) if path.is_file() else {"values": {}, "protocol": {}}
            v = values[key][seed]
            if cell.metric == "swd":
                existing["values"]["swd"] = {"16": v, "32": v, "64": v, "avg": v}
            elif cell.metric in ("precision", "recall"):
                existing["values"][cell.metric] = v / 100
            else:
                existing["values"][cell.metric] = v
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(existing))
            files.append(str(path))
    return sorted(set(files))


def test_pegan_claims_on_fixture_metrics(cfg, tmp_path):
    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["claims"] = ["padding-dcgan", "singan-no-pad-loses-structure",
                                           "mspie-beats-upsampling", "spe-recovers-dcgan"]
    preset = "mini"
    values = {
        ("swd-dcgan-a", "swd"): [10.0, 11.0, 10.5],        # clear: a better than b
        ("swd-dcgan-b", "swd"): [30.0, 28.0, 31.0],
        ("swd-dcgan-c", "swd"): [29.0, 31.5, 28.5],        # no effect: c vs b
        ("singan-zero-pad-fish", "structure"): [0.2, 0.25, 0.22],   # reversed
        ("singan-no-pad-fish", "structure"): [0.6, 0.62, 0.58],
        ("t5f", "fid"): [40.0, 41.0, 39.0],                # f beats its up-sampled output
        ("t5f@32", "fid"): [60.0, 62.0, 61.0],
    }
    files = _write_metrics(tmp_path, config, preset, values)
    results = {c.id: c for c in pc.check_claims(config, files, preset)}
    assert results["padding-dcgan"].verdict == "held"
    assert results["spe-recovers-dcgan"].verdict == "inconclusive"
    assert results["singan-no-pad-loses-structure"].verdict == "not held"
    assert results["mspie-beats-upsampling"].verdict == "held"
    assert results["padding-dcgan"].per_seed["a"] == {"0": 10.0, "1": 11.0, "2": 10.5}

    md, csv, png = tmp_path / "claims.md", tmp_path / "claims.csv", tmp_path / "claims.png"
    pc.write_outputs(config, list(results.values()), preset, md, csv, png)
    text = md.read_text()
    assert "padding-is-positional-encoding: held" in text
    assert "singan-global-structure: not held" in text
    frame = pd.read_csv(csv, dtype={"winner": str, "other": str})
    assert set(frame["claim"]) == set(results) and len(frame) == 4
    row = frame.set_index("claim").loc["padding-dcgan"]
    assert row["verdict"] == "held" and row["winner"] == "a" and row["p"] < 0.05
    assert png.stat().st_size > 1000



def test_run_span_from_benchmark_files(tmp_path):
    import os

    for name, seconds, end in (("a", 10.0, 1000.0), ("b", 30.0, 1100.0)):
        path = tmp_path / "train" / f"{name}-seed0.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"s\th:m:s\n{seconds}\t0:00:10\n")
        os.utime(path, (end, end))
    span, total = pc.run_span(tmp_path)
    assert span == pytest.approx(1100.0 - 990.0) and total == pytest.approx(40.0)
    assert pc.job_seconds(tmp_path, {"a"}) == {"a": 10.0}


def test_the_machine_names_the_processor_and_torch_kernels(tmp_path):
    """The same seed trains another GAN on another processor: the header must say which."""
    import torch

    from pegan.provenance import cpu_model, machine

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9B14\n"
                    "\nprocessor\t: 1\nmodel name\t: AMD EPYC 9B14\n")
    assert cpu_model(info) == "AMD EPYC 9B14"
    # a virtual machine's vague name: the family and model numbers tell the generation
    info.write_text("processor\t: 0\ncpu family\t: 6\nmodel\t\t: 167\n"
                    "model name\t: Intel(R) Xeon(R) Processor\n\nprocessor\t: 1\n"
                    "cpu family\t: 15\nmodel\t\t: 1\n")
    assert cpu_model(info) == "Intel(R) Xeon(R) Processor, family 6 model 167"
    assert isinstance(cpu_model(tmp_path / "absent"), str)       # no /proc: platform's guess
    assert machine().endswith(f"torch {torch.__version__} "
                              f"({torch.backends.cpu.get_cpu_capability()})")


def test_training_commits_count_runs_not_evaluations(tmp_path):
    from pegan.claims.provenance import training_commits, training_machines

    a, b = "a" * 40, "b" * 40 + "-dirty"
    evaluations = [("x", "runs/x/seed0/final.pt", [a]), ("x", "runs/x/seed0/final.pt", [a]),
                   ("x", "runs/x/seed1/final.pt", [a]), ("y", "runs/y/seed0/final.pt", [a, b]),
                   ("z", "runs/z/seed0/final.pt", None)]     # trained before it was recorded
    paths = []
    for i, (experiment, snapshot, commits) in enumerate(evaluations):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps({"protocol": {"experiment": experiment,
                                                      "snapshot": snapshot,
                                                      "trained_by": commits}}))
    assert training_commits(paths) == ("aaaaaaaaaa (2 runs); aaaaaaaaaa then bbbbbbbbbb-dirty "
                                       "(1 run); unrecorded (1 run)")
    # the machines the same way: runs of before the record are `unrecorded`, and no line
    # when no run has the record
    assert training_machines(paths) is None
    machines = {"x": ["m1"], "y": ["m1", "m2"], "z": None}
    for path in paths:
        record = json.loads(path.read_text())
        record["protocol"]["trained_on"] = machines[record["protocol"]["experiment"]]
        path.write_text(json.dumps(record))
    assert training_machines(paths) == "m1 (2 runs); m1 then m2 (1 run); unrecorded (1 run)"


def test_training_code_tells_whether_the_runs_code_changed_between_their_commits(tmp_path):
    import subprocess

    from pegan.claims.provenance import training_code

    repo = tmp_path / "repo"
    (repo / "pegan" / "claims").mkdir(parents=True)

    def commit(path, text):
        (repo / path).write_text(text)
        subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                        "commit", "-qm", path], check=True)
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()

    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    commit("pegan/train.py", "a = 1\n")
    a = commit("pegan/claims/report.py", "r = 1\n")
    b = commit("pegan/claims/report.py", "r = 2\n")        # the report only: same runs
    c = commit("pegan/train.py", "a = 2\n")                 # the training code

    def metrics(*runs):
        paths = []
        for i, commits in enumerate(runs):
            paths.append(tmp_path / f"m{len(runs)}-{i}.json")
            paths[-1].write_text(json.dumps({"protocol": {
                "experiment": "x", "snapshot": f"runs/x/seed{i}/final.pt",
                "trained_by": commits}}))
        return paths

    assert training_code(metrics([a], [a]), repo) is None
    same = training_code(metrics([a], [b]), repo)
    assert "same training and evaluation code" in same and "no file changed" in same
    assert "leaving out pegan/claims and workflow/rules/claims.smk" in same
    changed = training_code(metrics([a], [b, c]), repo)
    assert "differ between them: pegan/train.py (git diff" in changed and "3 commits" in changed
    assert "cannot tell" in training_code(metrics([a], [c + "-dirty"]), repo)
    assert "not in this checkout" in training_code(metrics([a], ["f" * 40]), repo)


def test_compare_handles_pegan_only_tables_and_claim_stats(cfg, tmp_path):
    from pegan import compare, tables

    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["claims"] = ["mspie-beats-upsampling", "mspie-close-to-512-training"]
    values = {("t5f", "fid"): [40.0, 41.0, 39.0], ("t5f@32", "fid"): [60.0, 62.0, 61.0],
              ("t5b", "fid"): [41.0, 42.0, 40.5]}
    files = _write_metrics(tmp_path, config, "mini", values)
    frame, prov = tables.build_table(config, "mspie-upsampling", files, "mini")
    out = tmp_path / "tables" / "mspie-upsampling.csv"
    tables.write_table(frame, prov, out)
    cells, claims = compare.compare(config, [out], "mini", {})
    assert {c.verdict for c in cells} == {"no reference"}
    # without the claims CSV compare judges no claim, and says so
    assert {c.reproduced for c in claims} == {"not tested"}
    assert "not judged here" in compare.render_markdown("mini", cells, claims, {})
    stats = pc.frame(pc.check_claims(config, files, "mini"))
    cells, claims = compare.compare(config, [out], "mini", {}, stats)
    by_id = {c.id: c for c in claims}
    assert by_id["mspie-beats-upsampling"].reproduced == "held"
    assert by_id["mspie-beats-upsampling"].reported == "not comparable"
    assert by_id["mspie-close-to-512-training"].reproduced == "held"   # 40 vs 41.2 (+10 %)
    md = compare.render_markdown("mini", cells, claims, {}, stats)
    assert "Claims across seeds" in md and "mspie-beats-upsampling | held" in md


def test_no_tested_claim_still_writes_a_csv_compare_reads(cfg, tmp_path):
    """A workflow slice whose rows no claim compares: `claims` writes a header-only CSV, and
    `pegan compare --claims-csv` reads it (the SLURM slice test failed on an empty file)."""
    from argparse import Namespace

    from pegan import compare

    csv = tmp_path / "claims.csv"
    pc.write_outputs(cfg, [], "smoke", tmp_path / "claims.md", csv)
    frame = pd.read_csv(csv)
    assert len(frame) == 0 and {"claim", "verdict", "p", "hedges_g"} <= set(frame.columns)
    args = Namespace(config=None, preset="smoke", protocols=None, tables=[],
                     claims_csv=str(csv), out=str(tmp_path / "comparison.md"),
                     csv=str(tmp_path / "comparison.csv"), fail_on="never")
    assert compare.run(args) == 0
    assert (tmp_path / "comparison.md").is_file()


# ------------------------------------------------------------ multiple testing (Holm)


def test_holm_against_a_hand_computed_case():
    # m = 4 finite p-values, sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1):
    #   0.02, max(0.02, 0.03) = 0.03, max(0.03, 0.06) = 0.06, max(0.06, 0.04) = 0.06
    adjusted = pc.holm([0.01, 0.04, 0.03, 0.005, math.nan])
    assert adjusted[:4] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert math.isnan(adjusted[4])                    # no test: not counted in m
    assert pc.holm([0.5, 0.6]) == [1.0, 1.0]          # capped at 1
    assert pc.holm([0.02]) == [0.02]                  # a family of one is unchanged
    # raw, all four are below 0.05; after Holm only the 0.005 and 0.01 claims are
    assert [p < 0.05 for p in adjusted[:4]] == [True, False, False, True]


def test_correction_sets_the_verdicts_and_the_report_shows_both(cfg, tmp_path):
    def claim(i):
        return {"id": f"c{i}", "finding": "f", "text": f"claim {i}", "table": "t", "column": "c",
                "better": "a", "worse": "b"}
    # the same weak effect in each claim (raw p about 0.03): held alone, not after Holm over 3
    weak = {"a": {0: 10.0, 1: 11.0, 2: 10.4}, "b": {0: 11.2, 1: 12.1, 2: 11.5}}
    tests = [pc.check_claim(claim(i), "fid", weak) for i in range(3)]
    assert all(t.verdict == "held" == t.raw_verdict for t in tests)   # each alone: m = 1
    assert 0.01 < tests[0].p < 0.05
    pc.correct(tests)
    assert all(t.raw_verdict == "held" and t.verdict == "inconclusive" for t in tests)
    assert tests[0].p_adjusted == pytest.approx(min(1.0, 3 * tests[0].p))
    config = copy.deepcopy(cfg)
    config["tables"]["t"] = {"rows": [{"id": "a", "experiment": "t2a"},
                                      {"id": "b", "experiment": "t2b"}]}
    md = pc.render_markdown(config, tests, "mini")
    assert "0/3 held (uncorrected: 1/1 findings, 3/3 claims)" in md
    frame = pc.frame(tests)
    assert list(frame["claim_verdict"]) == ["inconclusive"] * 3
    assert list(frame["claim_verdict_raw"]) == ["held"] * 3
    assert frame["claim_p_holm"].iloc[0] == pytest.approx(3 * tests[0].p)


def test_a_claim_without_a_test_is_left_out_of_holm_and_the_report_says_so(cfg):
    def claim(i):
        return {"id": f"c{i}", "finding": "f", "text": f"claim {i}", "table": "t", "column": "c",
                "better": "a", "worse": "b"}
    weak = {"a": {0: 10.0, 1: 11.0, 2: 10.4}, "b": {0: 11.2, 1: 12.1, 2: 11.5}}
    one_seed = {"a": {0: 10.0}, "b": {0: 11.2}}                   # no test with n = 1
    tests = pc.correct([pc.check_claim(claim(0), "fid", weak),
                        pc.check_claim(claim(1), "fid", weak),
                        pc.check_claim(claim(2), "fid", one_seed)])
    assert math.isnan(tests[2].p) and math.isnan(tests[2].p_adjusted)
    assert tests[0].p_adjusted == pytest.approx(2 * tests[0].p)   # m = 2, not 3
    config = copy.deepcopy(cfg)
    config["tables"]["t"] = {"rows": [{"id": "a", "experiment": "t2a"},
                                      {"id": "b", "experiment": "t2b"}]}
    md = pc.render_markdown(config, tests, "mini")
    assert "each direction: 2 of the 3 claims; the other has no test" in md
    assert "| f | **held** | 2 / 0 / 1 | 2 of 3 |" not in md      # a claim without a test
    assert "| f | **inconclusive** | 2 / 0 / 1 | 2 of 3 |" in md
    full = pc.render_markdown(config, tests[:2], "mini")
    assert "each direction: all 2 claims." in full and "| 2 of 2 |" in full


def test_the_seeds_line_names_rows_with_fewer_seeds(cfg):
    def claim(i, better, worse):
        return {"id": f"c{i}", "finding": "f", "text": f"claim {i}", "table": "t", "column": "c",
                "better": better, "worse": worse}
    three = {0: 10.0, 1: 11.0, 2: 10.4}
    tests = pc.correct([pc.check_claim(claim(0, "a", "b"), "fid",
                                       {"a": three, "b": {0: 11.2, 1: 12.1}}),
                        pc.check_claim(claim(1, "a", "c"), "fid", {"a": three, "c": three})])
    config = copy.deepcopy(cfg)
    config["tables"]["t"] = {"rows": [{"id": r, "experiment": e}
                                      for r, e in (("a", "t2a"), ("b", "t2b"), ("c", "t2c"))]}
    md = pc.render_markdown(config, tests, "mini")
    assert "- **Seeds per row:** 3 (0, 1, 2); fewer in t:b 2 (0, 1)\n" in md
    # a seed no row has is named as before, and no row is "fewer" than the seeds found
    tests = pc.correct([pc.check_claim(claim(0, "a", "b"), "fid",
                                       {"a": {0: 1.0, 1: 2.0}, "b": {0: 3.0, 1: 4.0}})])
    assert "- **Seeds per row:** 3 (0, 1, 2); no result yet for seed 2\n" in (
        pc.render_markdown(config, tests, "mini"))


def test_compare_and_claims_agree_on_every_verdict(cfg, tmp_path):
    """`pegan compare --claims-csv` reports exactly the (corrected) verdicts of `pegan claims`
    for every tested claim, and 'not tested' for the others."""
    from argparse import Namespace

    from pegan import compare, tables

    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["claims"] = ["padding-dcgan", "spe-recovers-dcgan",
                                           "singan-no-pad-loses-structure",
                                           "mspie-beats-upsampling", "mspie-close-to-512-training"]
    values = {
        ("swd-dcgan-a", "swd"): [10.0, 11.0, 10.5], ("swd-dcgan-b", "swd"): [30.0, 28.0, 31.0],
        ("swd-dcgan-c", "swd"): [29.0, 31.5, 28.5],
        ("singan-zero-pad-fish", "structure"): [0.2, 0.25, 0.22],
        ("singan-no-pad-fish", "structure"): [0.6, 0.62, 0.58],
        ("t5f", "fid"): [40.0, 41.0, 39.0], ("t5f@32", "fid"): [60.0, 62.0, 61.0],
        ("t5b", "fid"): [41.0, 42.0, 40.5],
    }
    files = _write_metrics(tmp_path, config, "mini", values)
    tested = pc.check_claims(config, files, "mini")
    csv = tmp_path / "claims.csv"
    pc.write_outputs(config, tested, "mini", tmp_path / "claims.md", csv)
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    table_files = []
    for name in {c["table"] for c in plan.tested_claims(config, "mini")}:
        frame, prov = tables.build_table(config, name, files, "mini")
        out = tmp_path / "tables" / f"{name}.csv"
        tables.write_table(frame, prov, out)
        table_files.append(str(out))
    args = Namespace(config=str(config_file), preset="mini", protocols=None, tables=table_files,
                     claims_csv=str(csv), out=str(tmp_path / "comparison.md"),
                     csv=str(tmp_path / "comparison.csv"), fail_on="never")
    assert compare.run(args) == 0
    compared = pd.read_csv(tmp_path / "comparison-claims.csv").set_index("id")
    verdicts = {t.id: t.verdict for t in tested}
    assert set(verdicts.values()) >= {"held", "not held", "inconclusive"}
    for claim in config["claims"]:
        expected = verdicts.get(claim["id"], "not tested")
        assert compared.loc[claim["id"], "reproduced"] == expected, claim["id"]
    for t in tested:
        assert compared.loc[t.id, "reproduced_raw"] == t.raw_verdict
        if not math.isnan(t.p_adjusted):
            assert compared.loc[t.id, "p_holm"] == pytest.approx(t.p_adjusted, rel=1e-5)
    md = (tmp_path / "comparison.md").read_text()
    held = sum(v == "held" for v in verdicts.values())
    assert f"Holm-corrected over the {len(tested)} tested): {held}/{len(tested)} held" in md

"""The paper preset measures with the reported protocol (issue 15, items 1 and 5).

* metric settings per preset: a preset's `metrics:` over the global section, resolved in one
  place (pegan.config.metric_settings) and passed to every evaluation job;
* the paper's FID jobs use MMGeneration's legacy FID plus a clean-FID column of the same
  generated images (metric `fidclean`, a second Inception pass keyed by its mode), its P&R
  jobs NVIDIA's VGG16;
* a missing weight file of that protocol stops `pegan validate` and a real workflow run in
  one line, before any job; a dry run only warns (CI and cluster planning work offline);
* cells measured with the reported protocol are comparable, so `--fail-on regression` fires.

Nothing here downloads: the VGG16 is a stand-in TorchScript with NVIDIA's call signature.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from pegan import cli, compare, plan, tables
from pegan import config as pconfig
from pegan.errors import ConfigError
from pegan.evaluate import evaluate, feature_modes
from pegan.metrics.fid import inception_path_for

from image_sets import blocky_images, png_zip, save_stand_in_vgg16

ROOT = pconfig.REPO_ROOT
SNAKEMAKE = shutil.which("snakemake") or str(Path(sys.executable).parent / "snakemake")


def _raw_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def _write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


# ------------------------------------------------------------ settings per preset


def test_preset_metrics_override_the_global_section():
    paper = pconfig.load(None, {"preset": "paper"})
    settings = pconfig.metric_settings(paper)
    assert settings["fid_mode"] == "legacy_pytorch" and settings["pr_network"] == "vgg16"
    assert settings["vgg16_path"].endswith("vgg16.pt")
    assert settings["pr_k"] == 3                                  # global / registered default
    for preset in ("smoke", "mini"):                              # what runs offline
        s = pconfig.metric_settings(paper, preset)
        assert (s["fid_mode"], s["pr_network"]) == ("clean", "inception")
    # a global value reaches a preset that does not set it; the preset's own value wins
    raw = _raw_config()
    raw["metrics"]["pr_k"] = 5
    raw["presets"]["mini"]["metrics"] = {"pr_k": 7}
    cfg = pconfig.validate({**raw, "preset": "mini"})
    assert pconfig.metric_settings(cfg, "smoke")["pr_k"] == 5
    assert pconfig.metric_settings(cfg, "mini")["pr_k"] == 7
    # no defaults are filled into a preset's section (they would hide the global values)
    assert "fid_mode" not in cfg["presets"]["mini"]["metrics"]


def test_a_bad_preset_metric_key_names_the_key():
    raw = _raw_config()
    raw["presets"]["paper"]["metrics"]["fid_mod"] = "clean"
    with pytest.raises(ConfigError, match=r"presets\.paper\.metrics\.fid_mod: unknown key"):
        pconfig.validate(raw)
    raw = _raw_config()
    raw["presets"]["paper"]["metrics"]["fid_mode"] = "tensorflow"
    with pytest.raises(ConfigError, match=r"presets\.paper\.metrics\.fid_mode"):
        pconfig.validate(raw)


def test_clean_columns_only_in_the_paper_tables():
    paper = pconfig.load(None, {"preset": "paper"})
    smoke = pconfig.load()
    for name in ("table2", "table5", "table5-hires"):
        keys = [c["key"] for c in paper["tables"][name]["columns"]]
        fid = [c["key"] for c in paper["tables"][name]["columns"] if c["metric"] == "fid"]
        assert fid and all(f"{k}_clean" in keys for k in fid)
        assert not any(c["metric"] == "fid_clean" for c in smoke["tables"][name]["columns"])
    # table 5 row a skips the 512 columns, clean ones too; re-validating a selected config
    # (the workflow's config.json) keeps working
    assert "fid512_25M_clean" in paper["tables"]["table5"]["rows"][0]["skip"]
    pconfig.validate(json.loads(json.dumps(smoke)))
    pconfig.validate(json.loads(json.dumps(paper)))
    raw = _raw_config()
    raw["tables"]["table2"]["columns"][0]["presets"] = ["huge"]
    with pytest.raises(ConfigError, match=r"tables\.table2\.columns\[0\]\.presets: 'huge'"):
        pconfig.validate(raw)


def test_plan_puts_the_clean_column_in_the_legacy_fid_job():
    paper = pconfig.load(None, {"preset": "paper"})
    settings = pconfig.metric_settings(paper)
    sets = {c.evaluation.metricset for c in plan.cells(paper, "paper")
            if c.table in ("table2", "table5", "table5-hires") and c.metric.startswith("fid")}
    assert sets == {"fid-kid-fidclean", "fid-kid-fidclean-pr"}
    # one real-features file per FID mode, the configured one first
    assert feature_modes("fid-kid-fidclean-pr", settings) == ["legacy_pytorch", "clean"]
    assert feature_modes("fid-kid-pr", pconfig.metric_settings(paper, "smoke")) == ["clean"]
    assert feature_modes("swd", settings) == []


def test_the_inception_path_follows_the_mode(tmp_path):
    pth, ts = tmp_path / "pt_inception.pth", tmp_path / "inception.pt"
    for f in (pth, ts):
        f.write_bytes(b"x")
    legacy = {"fid_mode": "legacy_pytorch", "inception_path": str(pth)}
    assert inception_path_for(legacy, "legacy_pytorch") == str(pth)
    assert inception_path_for(legacy, "clean") is None      # default order
    assert inception_path_for({**legacy, "inception_path": str(tmp_path)}, "clean") \
        == str(tmp_path)                                    # a folder serves both
    clean = {"fid_mode": "clean", "inception_path": str(ts)}
    assert inception_path_for(clean, "legacy_pytorch") is None


# ------------------------------------------------------- missing weights, one line


def _paper_config(tmp_path, vgg16: Path) -> Path:
    raw = _raw_config()
    raw["presets"]["paper"]["metrics"]["vgg16_path"] = str(vgg16)
    return _write_config(tmp_path / "config.yaml", raw)


def test_validate_names_the_missing_vgg16_in_one_line(tmp_path, capsys):
    missing = tmp_path / "weights" / "vgg16.pt"
    config = _paper_config(tmp_path, missing)
    rc = cli.main(["validate", "--config", str(config), "--preset", "paper"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1, err
    assert "presets.paper.metrics.vgg16_path" in err and str(missing) in err
    assert pconfig.VGG16_URL in err and "vgg16.pt" in err
    # a stand-in file at that path: the paper preset validates (the file is not loaded)
    missing.parent.mkdir()
    missing.write_bytes(b"stand-in")
    assert cli.main(["validate", "--config", str(config), "--preset", "paper"]) == 0
    assert "FID legacy_pytorch, P&R vgg16" in capsys.readouterr().out
    # the offline presets need no extra file
    assert cli.main(["validate", "--config", str(config), "--preset", "smoke"]) == 0


def test_validate_subprocess_exit_status(tmp_path):
    config = _paper_config(tmp_path, tmp_path / "absent" / "vgg16.pt")
    result = subprocess.run([sys.executable, "-m", "pegan.cli", "validate", "--config",
                             str(config), "--preset", "paper"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("pegan validate: error: preset paper: missing metric weights")


def test_a_missing_inception_is_named_too(tmp_path, monkeypatch):
    from pegan.metrics import inception

    raw = _raw_config()
    raw["presets"]["paper"]["metrics"]["vgg16_path"] = str(tmp_path / "vgg16.pt")
    (tmp_path / "vgg16.pt").write_bytes(b"stand-in")
    cfg = pconfig.validate({**raw, "preset": "paper"})
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(inception, "cleanfid_cache", lambda: tmp_path / "absent.pt")
    monkeypatch.setattr(inception, "fid_helper_file", lambda: None)
    monkeypatch.setattr(inception, "torch_hub_file", lambda: tmp_path / "absent.pth")
    problems = pconfig.missing_weights(cfg)
    # legacy FID and the clean column each need a network
    assert len(problems) == 2
    assert "legacy_pytorch" in problems[0] and "'clean'" in problems[1]


def _snakemake(*args):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=300)


def test_the_workflow_stops_before_its_first_job_and_a_dry_run_warns(tmp_path):
    missing = tmp_path / "vgg16.pt"
    extra = _write_config(tmp_path / "weights.yaml",
                          {"presets": {"paper": {"metrics": {"vgg16_path": str(missing)}}}})
    target = "results/paper/config.json"
    existed = (ROOT / target).exists()
    dry = _snakemake("-n", "--quiet", "rules", "--configfile", str(extra),
                     "--config", "preset=paper")
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert "pegan: warning: presets.paper.metrics.vgg16_path" in dry.stderr
    real = _snakemake("-j1", "--nolock", "--configfile", str(extra), "--config", "preset=paper",
                      "--", target)
    assert real.returncode == 1
    last = (real.stdout + real.stderr).strip().splitlines()[-1]
    assert last.startswith("pegan: error: preset paper: missing metric weights"), last
    assert str(missing) in last and pconfig.VGG16_URL in last
    assert existed or not (ROOT / target).exists()               # no job ran


def test_paper_dry_run_shows_the_reported_protocol():
    """Every Table 2/5 FID job: legacy FID against MMGeneration's real statistics (at the
    experiment's base resolution, as the official configs score every MS-PIE row against
    the 256-px pkl and config-b against the 512-px one) + the clean column (pegan's clean
    reals at the evaluation scale), one real-features file per mode; every P&R job: VGG16
    with MMGeneration's fp16-rounded radii (issue 15's acceptance, from the dry run's shell
    commands)."""
    result = _snakemake("-n", "-p", "--forceall", "--config", "preset=paper")
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = pconfig.load(None, {"preset": "paper"})
    specs = plan.specs(cfg, "paper")
    paper_rows = {r["experiment"] for t in ("table2", "table5", "table5-hires")
                  for r in cfg["tables"][t]["rows"]}
    mspie = set(plan.mspie_experiments(cfg))
    assert {"t5c", "t5f", "t5f-896", "t5f-1024"} <= mspie and "t5b" not in mspie
    fid_jobs = pr_jobs = above_base = 0
    primary_stats = set()
    for line in result.stdout.splitlines():
        if not re.search(r"pegan (--threads \d+ )?evaluate ", line):
            continue
        metrics = re.search(r"--metrics (\S+)", line).group(1).split("-")
        settings = json.loads(re.search(r"--metric-settings '([^']+)'", line).group(1))
        assert settings == pconfig.metric_settings(cfg, "paper")
        experiment = re.search(r"runs/([a-z0-9-]+)/seed", line).group(1)
        scale = int(re.search(r"--scale (\d+)", line).group(1))
        upsampled = "--generate-at" in line
        if "fid" in metrics:
            assert (settings["fid_mode"], settings["fid_real_protocol"],
                    settings["fid_real_resolution"]) == ("legacy_pytorch", "mmgen", "base")
            stats = re.search(r"--real-features (.*?) --samples", line).group(1).split()
            spec = specs[experiment]
            # the legacy FID's reals: MMGeneration's, at the base resolution, whatever the scale
            base = 512 if experiment == "t5b" else 256
            assert spec.resolution == base, experiment
            assert stats[0] == f"results/paper/stats/{spec.dataset}-{base}px-mmgen-n50000.npz", \
                line
            primary_stats.add(stats[0])
            above_base += scale > base
            if experiment in paper_rows and not upsampled:
                fid_jobs += 1
                assert "fidclean" in metrics, line
                # the clean column: pegan's clean reals at the evaluation scale
                assert stats[1:] == [
                    f"results/paper/stats/{spec.dataset}-{scale}px-clean-n50000.npz"], line
            else:
                assert stats[1:] == [], line
        if "pr" in metrics:
            pr_jobs += 1
            assert settings["pr_network"] == "vgg16" and settings["vgg16_path"]
            assert settings["pr_dtype"] == "fp16-radius"
    assert fid_jobs >= 50 and pr_jobs >= 20
    assert above_base >= 20           # the MS-PIE rows' 512, 896 and 1024 px evaluations
    assert primary_stats == {"results/paper/stats/ffhq-256px-mmgen-n50000.npz",
                             "results/paper/stats/ffhq-512px-mmgen-n50000.npz"}
    # each real-statistics file is computed by its own job: MMGeneration's with
    # `--protocol mmgen` (pytorch-fid's network), the clean column's in clean mode; no FID
    # job reads legacy_pytorch reals resized like the fakes
    jobs = re.findall(r"pegan (?:--threads \d+ )?real-features (\S+) (.*?) --num \d+ "
                      r".*?--out (\S+)", result.stdout)
    by_out = {out: (data, opts.strip()) for data, opts, out in jobs}
    for path in primary_stats:
        data, opts = by_out[path]
        assert opts == "--mode legacy_pytorch --protocol mmgen", opts
        assert data == path.replace("/stats/", "/data/").replace("-mmgen-n50000.npz", ".zip")
    assert all(opts in ("--mode legacy_pytorch --protocol mmgen", "--mode clean")
               for _, opts in by_out.values()), sorted(by_out.values())
    assert any(opts == "--mode clean" for _, opts in by_out.values())
    assert "-legacy_pytorch-n" not in result.stdout


# ------------------------------------------ one evaluation, two Inception passes


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper-protocol")
    real = png_zip(root / "real-32px.zip", blocky_images(8, 32, 0))
    fakes = root / "fakes"
    fakes.mkdir()
    for i, im in enumerate(blocky_images(6, 32, 1)):
        Image.fromarray(im).save(fakes / f"{i:03d}.png")
    vgg = save_stand_in_vgg16(root / "vgg16.pt", 32)
    return {"real": real, "fakes": fakes, "vgg": vgg, "root": root}


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_one_evaluation_gives_legacy_fid_clean_fid_and_vgg16_pr(images, no_downloads,
                                                                 one_thread):
    settings = {"fid_mode": "legacy_pytorch", "inception_path": None, "pr_network": "vgg16",
                "vgg16_path": str(images["vgg"]), "pr_k": 3}
    result = evaluate(images["fakes"], scale=32, metrics="fid-kid-fidclean-pr",
                      real=images["real"], samples={"fid": 6, "pr": 6}, settings=settings,
                      seed=0, device="cpu")
    values, per_metric = result["values"], result["protocol"]["per_metric"]
    assert set(values) == {"fid", "kid", "fid_clean", "precision", "recall"}
    assert per_metric["fid"]["mode"] == "legacy_pytorch"
    assert per_metric["fid"]["network"] == "inception-pytorch-fid"
    assert per_metric["fid_clean"]["mode"] == "clean"
    assert per_metric["fid_clean"]["network"] == "inception-torchscript"
    assert per_metric["precision"]["network"] == "vgg16"
    assert values["fid"] != pytest.approx(values["fid_clean"], rel=1e-6)   # two passes
    assert result["protocol"]["mode"] == "legacy_pytorch"
    # against the reported protocol only the sample counts differ (6 here, 50000 there),
    # and the reals: pegan's own statistics here, MMGeneration's in the paper
    assert per_metric["fid"]["real_protocol"] == "pegan"
    reported = compare.load_reported_protocols()["table2"]
    for metric in ("fid", "precision", "recall"):
        notes = compare.protocol_notes(metric, reported[metric], per_metric[metric], "paper")
        assert notes and all(n.startswith(("num_fake", "num_real")) for n in notes
                             if not n.startswith("real statistics")), notes
        assert ("real statistics pegan vs reported mmgen" in notes) == (metric == "fid")
    mmgen = {**per_metric["fid"], "real_protocol": "mmgen"}
    assert not any(n.startswith("real statistics")
                   for n in compare.protocol_notes("fid", reported["fid"], mmgen, "paper"))

    # with fid_mode clean, fid and the clean column read one pass: the same number
    clean = evaluate(images["fakes"], scale=32, metrics="fid-kid-fidclean", real=images["real"],
                     samples={"fid": 6}, settings={**settings, "fid_mode": "clean"}, seed=0,
                     device="cpu")
    assert clean["values"]["fid_clean"] == clean["values"]["fid"]
    assert clean["values"]["fid_clean"] == pytest.approx(values["fid_clean"], rel=1e-5)

    # cached real features, one file per mode (any order): each pass reads its own mode
    files = []
    for mode in ("clean", "legacy_pytorch"):
        out = images["root"] / f"real-{mode}.npz"
        assert cli.main(["real-features", str(images["real"]), "--mode", mode, "--num", "8",
                         "--device", "cpu", "--out", str(out)]) == 0
        files.append(str(out))
    cached = evaluate(images["fakes"], scale=32, metrics="fid-kid-fidclean",
                      real=images["real"], real_features=files, samples={"fid": 6},
                      settings=settings, seed=0, device="cpu")
    assert cached["values"]["fid"] == pytest.approx(values["fid"], rel=1e-5)
    assert cached["values"]["fid_clean"] == pytest.approx(values["fid_clean"], rel=1e-5)
    assert cached["protocol"]["per_metric"]["fid_clean"]["real_features"] == files[0]
    assert cached["protocol"]["per_metric"]["fid"]["real_features"] == files[1]


# ------------------------------------------------------------- cells that compare


def _paper_protocol(ev: plan.Evaluation) -> dict:
    """What `pegan evaluate` records at the paper protocol (per_metric as it writes it)."""
    fid = {"network": "inception-pytorch-fid", "mode": "legacy_pytorch", "num_fake": 50000,
           "num_real": 50000, "version": "fid-1"}
    per_metric = {"fid": {**fid, "real_protocol": "mmgen"},
                  "kid": {**fid, "real_protocol": "mmgen", "version": "kid-1"},
                  "fid_clean": {**fid, "network": "inception-torchscript", "mode": "clean",
                                "real_protocol": "pegan", "version": "fidclean-1"}}
    if "pr" in ev.metrics:
        pr = {"network": "vgg16", "features": "fc2", "k": 3, "num_fake": 10000,
              "num_real": 10000, "version": "pr-1"}
        per_metric.update(precision=pr, recall=pr)
    return {**fid, "metrics": ev.metrics, "resolution": ev.scale, "per_metric": per_metric}


def _paper_table2(tmp_path, cfg, regress: bool) -> Path:
    reported = pd.read_csv(ROOT / cfg["tables"]["table2"]["reported"], dtype={"row": str})
    reported = reported.set_index("row")
    cells = [c for c in plan.cells(cfg, "paper") if c.table == "table2"]
    files = []
    for ev in sorted({c.evaluation for c in cells}):
        values = {"kid": 0.001}
        for c in (c for c in cells if c.evaluation == ev):
            if c.metric == "fid_clean":
                values["fid_clean"] = 4.0               # pegan-only: no reported number
                continue
            rep = float(reported.loc[c.row, c.column])
            values[c.metric] = rep / 100 if c.metric in ("precision", "recall") else rep
        if ev.experiment == "t2d" and ev.snapshot == "20M":
            values["fid"] -= 0.2                        # within the tolerance (abs 0.3)
        if regress and ev.experiment == "t2c" and ev.snapshot == "20M":
            values["fid"] += 1.0                        # outside, worse: a regression
        path = tmp_path / plan.metrics_path("metrics", ev.experiment, 0, ev)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"values": values, "protocol": _paper_protocol(ev)}))
        files.append(path)
    frame, prov = tables.build_table(cfg, "table2", files, "paper")
    out = tmp_path / "tables" / "table2.csv"
    tables.write_table(frame, prov, out)
    return out


@pytest.mark.parametrize("regress", [False, True])
def test_cells_at_the_paper_protocol_compare(tmp_path, capsys, regress):
    cfg = pconfig.load(None, {"preset": "paper"})
    csv = _paper_table2(tmp_path, cfg, regress)
    cells, _ = compare.compare(cfg, [csv], "paper")          # protocols.yaml as shipped
    by_key = {(c.row, c.column): c for c in cells}
    for (row, column), c in by_key.items():
        if column.endswith("_clean"):
            assert (c.verdict, c.comparable, c.regression) == ("no reference", False, False)
            assert c.notes == [compare.PEGAN_ONLY]
        else:
            assert c.comparable and not c.notes, (row, column, c.notes)
    d = by_key[("d", "fid256_20M")]
    assert (d.verdict, d.regression) == ("within", False) and d.delta == pytest.approx(-0.2)
    c = by_key[("c", "fid256_20M")]
    assert (c.verdict, c.regression) == (("outside", True) if regress else ("within", False))
    rc = cli.main(["compare", str(csv), "--preset", "paper", "--out",
                   str(tmp_path / "comparison.md"), "--fail-on", "regression"])
    assert rc == (1 if regress else 0)
    out = capsys.readouterr().out
    assert f"{1 if regress else 0} regressions" in out
    md = (tmp_path / "comparison.md").read_text()
    assert "pegan-only column" in md


def test_a_protocol_difference_still_blocks_the_comparison(tmp_path):
    cfg = pconfig.load(None, {"preset": "paper"})
    csv = _paper_table2(tmp_path, cfg, regress=True)
    protocols = copy.deepcopy(compare.load_reported_protocols())
    protocols["table2"]["precision"]["k"] = 5
    protocols["table2"]["fid"]["mode"] = "clean"
    protocols["table2"]["fid"]["real_protocol"] = "pegan"
    cells, claims = compare.compare(cfg, [csv], "paper", protocols)
    c = next(x for x in cells if (x.row, x.column) == ("c", "fid256_20M"))
    assert not c.comparable and not c.regression
    assert "FID mode legacy_pytorch vs reported clean" in c.notes
    assert "real statistics mmgen vs reported pegan" in c.notes
    p = next(x for x in cells if x.column == "precision")
    assert "k 3 vs reported 5" in p.notes
    assert compare.exit_status(cells, claims, "regression") == 0

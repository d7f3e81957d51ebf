"""Convergence you can see (pegan.claims.convergence): the flattened definition, the held-out
reals of the datasets, the convergence table from fixture files and the run sample grid."""

from __future__ import annotations

import copy
import json
import zipfile
from argparse import Namespace

import numpy as np
import pandas as pd
import pytest
from image_sets import png_zip
from PIL import Image

from pegan import claims as pc
from pegan import plan
from pegan.claims import convergence as cv
from pegan.data import prepare as prep
from pegan.data.synthetic import aligned_object
from pegan.errors import PeganError

FID_TOL = {"abs": 0.0, "rel": 0.05}
STRUCTURE_TOL = {"abs": 0.02, "rel": 0.0}


# ------------------------------------------------------------- the one definition


def test_flat_curve_has_flattened():
    assert cv.flattened([80.0, 41.0, 40.0], FID_TOL) is True         # 1 / 41 < 5 %
    assert cv.flattened([0.5, 0.71, 0.70], STRUCTURE_TOL) is True     # 0.01 <= 0.02


def test_falling_curve_has_not_flattened():
    assert cv.flattened([80.0, 60.0, 50.0], FID_TOL) is False        # 10 / 60 > 5 %
    assert cv.flattened([0.3, 0.5, 0.6], STRUCTURE_TOL) is False     # 0.1 > 0.02
    # the bound is max(abs, rel * |previous|): equality counts as flattened
    assert cv.flattened([100.0, 105.0], FID_TOL) is True
    assert cv.flattened([100.0, 105.1], FID_TOL) is False


def test_too_short_curve_is_undecided():
    assert cv.flattened([], FID_TOL) is None
    assert cv.flattened([40.0], FID_TOL) is None


def test_curve_metric_is_fid_when_logged_else_structure():
    both = [{"iterations": 2, "fid@32": 40.0, "structure@32": 0.7},
            {"iterations": 1, "fid@32": 50.0, "structure@32": 0.6}]
    assert cv.curve(both, 32) == ("fid@32", [50.0, 40.0])             # snapshot order
    no_fid = [{"iterations": 1, "structure@32": 0.6, "diversity@32": 0.2},
              {"iterations": 2, "structure@32": 0.61, "fid@32": None}]
    assert cv.curve(no_fid, 32) == ("structure@32", [0.6, 0.61])
    mspie = [{"iterations": 1, "fid@32": 9.0, "fid@64": 20.0}]
    assert cv.curve(mspie, 64) == ("fid@64", [20.0])
    assert cv.curve(mspie, 48) == ("fid@64", [20.0])                  # largest logged size
    assert cv.curve([{"iterations": 1, "kimg": 0.1}], 32) == (None, [])


def test_tolerances_are_the_schemas_and_name_the_curve_metrics(cfg):
    from pegan import config as pconfig

    schema = pconfig.load_schema()["properties"]["convergence"]["properties"]
    assert tuple(schema) == cv.CURVE_METRICS
    assert cfg["convergence"] == {m: schema[m]["default"] for m in cv.CURVE_METRICS}
    text = cv.definition(cfg["convergence"])
    assert "last two snapshots" in text and "rel 0.05" in text and "abs 0.02" in text


# ------------------------------------------------------------------ held-out reals


def _zip_arrays(path):
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        return [np.array(Image.open(zf.open(n)).convert("RGB")) for n in names]


def test_synthetic_heldout_images_follow_the_training_set(tmp_path):
    spec = {"kind": "synthetic"}
    train, held = tmp_path / "train.zip", tmp_path / "held.zip"
    assert prep.prepare("syn", spec, resolution=16, num=6, out=train, seed=3) == 6
    assert prep.prepare("syn", spec, resolution=16, num=4, out=held, seed=3, first=6) == 4
    train_images, held_images = _zip_arrays(train), _zip_arrays(held)
    for i, image in enumerate(held_images):
        np.testing.assert_array_equal(image, aligned_object(6 + i, 16, 3))
    train_bytes = {im.tobytes() for im in train_images}
    assert not train_bytes & {im.tobytes() for im in held_images}
    assert prep.images_after("syn", spec, 10 ** 6) is None             # unbounded


def test_datasets_without_heldout_images_are_one_line_errors(tmp_path):
    photo = {"kind": "skimage", "image": "chelsea"}
    with pytest.raises(PeganError, match="single image: it has no held-out images") as err:
        prep.prepare("skimage-chelsea", photo, resolution=16, num=4, out=tmp_path / "x.zip",
                     first=1)
    assert "\n" not in str(err.value)
    lfw = {"kind": "lfw_subset"}
    assert prep.images_after("lfw", lfw, 150) == 50
    with pytest.raises(PeganError, match="0 images after the first 200, 4 held-out") as err:
        prep.prepare("lfw", lfw, resolution=16, num=4, out=tmp_path / "y.zip", first=200)
    assert "\n" not in str(err.value) and not (tmp_path / "y.zip").exists()
    folder = png_zip(tmp_path / "faces.zip", [np.zeros((8, 8, 3), np.uint8)] * 5)
    spec = {"kind": "folder", "path": str(folder)}
    assert prep.prepare("faces", spec, resolution=8, num=2, out=tmp_path / "f.zip", first=3) == 2
    with pytest.raises(PeganError, match="2 images after the first 3, 3 held-out"):
        prep.prepare("faces", spec, resolution=8, num=3, out=tmp_path / "g.zip", first=3)


def test_cli_refuses_heldout_images_of_a_single_photo(tmp_path, capsys):
    from pegan.cli import main

    code = main(["prepare-data", "--dataset", "skimage-coffee", "--spec",
                 json.dumps({"kind": "skimage", "image": "coffee"}), "--resolution", "16",
                 "--num", "8", "--first-index", "64", "--out", str(tmp_path / "h.zip")])
    err = capsys.readouterr().err.strip()
    assert code != 0 and "no held-out images" in err and len(err.splitlines()) == 1


def test_heldout_plan_of_the_mini_preset(cfg):
    planned = cv.heldout_evaluations(cfg, "mini")
    assert {(h.dataset, h.scale, h.metricset) for h in planned} == {
        ("synthetic-aligned", 32, "fid-kid-pr"), ("synthetic-aligned", 32, "structure"),
        ("synthetic-aligned", 64, "fid-kid-pr")}
    singan = set(plan.singan_experiments(cfg))
    assert not {h.experiment for h in planned} & singan                # SinGAN: no floor
    samples = cfg["presets"]["mini"]["samples"]
    assert cv.heldout_images(cfg, "mini", "synthetic-aligned", 32) == max(
        samples["fid"], samples["pr"], samples["structure"])
    with pytest.raises(PeganError, match="no claim row"):
        cv.heldout_images(cfg, "mini", "skimage-chelsea", 64)
    # a dataset with too few images after the training set gets no floor
    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["data"]["ffhq"] = "lfw-faces"
    config["presets"]["mini"]["num_images"] = 190
    assert all(h.dataset != "lfw-faces" for h in cv.heldout_evaluations(config, "mini"))


def test_heldout_reals_evaluate_as_images(tmp_path, one_thread):
    from pegan.evaluate import evaluate

    spec = {"kind": "synthetic"}
    train, held = tmp_path / "train.zip", tmp_path / "held.zip"
    prep.prepare("syn", spec, resolution=32, num=16, out=train)
    prep.prepare("syn", spec, resolution=32, num=8, out=held, first=16)
    result = evaluate(held, scale=32, metrics="structure", real=train, samples={"structure": 8},
                      seed=0, device="cpu", batch_size=8)
    assert result["protocol"]["source"] == "images"
    assert result["values"]["structure"] > 0.5                        # reals match the layout


# ------------------------------------------------------------ the convergence table


def _fixture_runs(root, config, preset):
    """Metrics files of the chosen claim rows, held-out files and curves."""
    seeds = config["presets"][preset]["seeds"]
    metrics = []
    for cell in plan.claim_cells(config, preset):
        ev = cell.evaluation
        if ev.experiment not in ("t2b", "singan-no-pad-fish") or ev.generate_at:
            continue
        for seed in seeds:
            path = root / plan.metrics_path("metrics", ev.experiment, seed, ev)
            values = ({"fid": 30.0 + seed, "kid": 0.01, "precision": 0.5, "recall": 0.25}
                      if "fid" in ev.metrics else {"structure": 0.6, "diversity": 0.1,
                                                   "patch_swd": 5.0, "eqt": 20.0})
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"values": values, "protocol": {}}))
            metrics.append(str(path))
    heldout = []
    for h in cv.heldout_evaluations(config, preset):
        if h.scale != 32:
            continue
        path = root / cv.heldout_metrics_path("metrics", seeds[0], h)
        values = ({"fid": 2.0, "kid": 0.0, "precision": 0.8, "recall": 0.78}
                  if h.metricset != "structure" else {"structure": 0.95, "diversity": 0.2})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"values": values, "protocol": {}}))
        heldout.append(str(path))
    curves = []
    runs = {("t2b", 0): [0.40, 0.60, 0.61], ("t2b", 1): [0.40, 0.50, 0.60], ("t2b", 2): [0.6]}
    for (experiment, seed), values in runs.items():
        path = root / "runs" / experiment / f"seed{seed}" / "snapshots.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"iterations": 10 * (i + 1), "kimg": i, "mimg": i,
                                            "snapshot": f"s{i}", "structure@32": v,
                                            "diversity@32": 0.1}) + "\n"
                                for i, v in enumerate(values)))
        curves.append(str(path))
    empty = root / "runs" / "singan-no-pad-fish" / "seed0" / "snapshots.jsonl"
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_text("")
    return metrics, heldout, curves + [str(empty)]


def test_convergence_table_from_fixture_files(cfg, tmp_path):
    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["claims"] = ["padding-stylegan2-fid", "padding-stylegan2-layout",
                                           "singan-no-pad-loses-structure"]
    metrics, heldout, curves = _fixture_runs(tmp_path, config, "mini")
    rows = cv.convergence_rows(config, "mini", metrics, heldout, curves)
    by_run = {(r.experiment, r.seed): r for r in rows}
    assert len(rows) == len(by_run) == 4 * 3      # t2b, t2c, singan zero-pad/no-pad x 3 seeds
    t2b = by_run[("t2b", 1)]
    assert t2b.rows == ["table2:b", "layout:t2b"] and t2b.scale == 32
    assert t2b.values == {"fid": 31.0, "precision": 50.0, "recall": 25.0, "structure": 0.6,
                          "diversity": 0.1}
    assert t2b.floor == {"fid": 2.0, "precision": 80.0, "recall": 78.0, "structure": 0.95,
                         "diversity": 0.2}
    assert t2b.curve_key == "structure@32" and t2b.flattened is False           # 0.5 -> 0.6
    assert by_run[("t2b", 0)].flattened is True                                 # 0.60 -> 0.61
    assert by_run[("t2b", 2)].flattened is None                                 # one snapshot
    singan = by_run[("singan-no-pad-fish", 0)]
    assert singan.floor == {} and singan.curve_key is None and singan.flattened is None
    assert singan.values["structure"] == 0.6 and "fid" not in singan.values
    assert by_run[("t2c", 0)].values == {} and by_run[("t2c", 0)].floor["fid"] == 2.0

    lines = cv.markdown(rows, config["convergence"], config["presets"]["mini"]["num_images"])
    text = "\n".join(lines)
    assert "| t2b | 1 | 32 | table2:b, layout:t2b | 31.00 (2.000) |" in text
    assert "| singan-no-pad-fish | 0 | 64 |" in text and "0.600 (—)" in text
    assert "Flattened: 1/2 runs with at least two snapshots (10 with fewer)." in text

    frame = cv.frame(rows)
    assert list(frame.columns) == cv.CSV_FIELDS and len(frame) == 12
    row = frame.set_index(["experiment", "seed"]).loc[("t2b", 1)]
    assert row["fid_heldout"] == 2.0 and row["curve_last"] == 0.6 and row["flattened"] is False


def test_claims_command_writes_the_convergence_section_first(cfg, tmp_path):
    config = copy.deepcopy(cfg)
    config["presets"]["mini"]["claims"] = ["padding-stylegan2-layout"]
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config))
    metrics, heldout, curves = _fixture_runs(tmp_path, config, "mini")
    out, conv = tmp_path / "claims.md", tmp_path / "claims-convergence.csv"
    args = Namespace(metrics=metrics, heldout=heldout, curves=curves, models=[],
                     samples_figure=str(tmp_path / "samples.png"), config=str(config_file),
                     preset="mini", alpha=0.05, benchmarks=None, wall_time=None,
                     fail_on_not_held=False, out=str(out), csv=str(tmp_path / "claims.csv"),
                     convergence_csv=str(conv), figure=None, finding=None, part=None,
                     evidence=[], evidence_out=None)
    assert pc.run(args) == 0
    text = out.read_text()
    assert text.index("## Convergence") < text.index("## Verdicts") < text.index("**Findings:**")
    assert "has **flattened** when the last two snapshots" in text
    frame = pd.read_csv(conv)
    assert set(frame["experiment"]) == {"t2b", "t2c"} and len(frame) == 6
    assert (tmp_path / "samples.png").stat().st_size > 0              # "no claim run" figure


# ---------------------------------------------------------------- the sample grid


def test_run_sample_grid_has_a_row_per_run(tmp_path, one_thread):
    import torch

    from pegan.figures import figure_run_samples
    from pegan.models import dcgan, singan
    from pegan.snapshot import save_snapshot

    models = []
    kwargs = dict(resolution=16, z_dim=8, channels=16, upsample="bilinear-conv", padding=True,
                  head="const")
    for seed in (0, 1):
        torch.manual_seed(seed)
        path = tmp_path / "runs" / "swd-dcgan-a" / f"seed{seed}" / "final.pt"
        path.parent.mkdir(parents=True)
        save_snapshot(path, arch="dcgan", experiment="swd-dcgan-a", G_kwargs=kwargs,
                      G_ema=dcgan.Generator(**kwargs), kimg=0)
        models.append(path)
    sizes = singan.pyramid_sizes(16, 20, max_size=20, min_size=12)
    skw = {"stage_sizes": [list(s) for s in sizes], "padding": "interp", "head": "noise",
           "base_channels": 8, "max_channels": 8, "noise_channels": 1}
    path = tmp_path / "runs" / "singan-no-pad" / "seed0" / "final.pt"
    path.parent.mkdir(parents=True)
    save_snapshot(path, arch="singan", experiment="singan-no-pad", G_kwargs=skw,
                  G_ema=singan.Generator(sizes, padding="interp", head="noise", base_channels=8,
                                         max_channels=8, noise_channels=1), kimg=0)
    models.append(path)
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    figure_run_samples(first, models, per_row=3)
    figure_run_samples(second, models, per_row=3)
    assert first.read_bytes() == second.read_bytes()                   # deterministic
    single = tmp_path / "one.png"
    figure_run_samples(single, models[:1], per_row=3)
    assert Image.open(first).size[1] > 2 * Image.open(single).size[1]   # one row per run

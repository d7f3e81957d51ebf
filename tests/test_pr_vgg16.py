"""VGG16 precision/recall as its authors call it: NVIDIA's TorchScript gets uint8 NCHW RGB at
native resolution with ``return_features=True`` (a stand-in TorchScript with that signature
asserts it), and the distance precision of MMGeneration (fp16 radii) and StyleGAN2-ADA (fp16
features) as options recorded in the protocol."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from pegan.errors import PeganError
from pegan.evaluate import evaluate
from pegan.metrics.pr import DTYPES, precision_recall, vgg16_features

from image_sets import blocky_images, png_zip, save_stand_in_vgg16

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::FutureWarning")]

RES = 32


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory):
    return save_stand_in_vgg16(tmp_path_factory.mktemp("vgg") / "vgg16.pt", RES)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("prsets")
    return (png_zip(root / "real.zip", blocky_images(12, RES, 0, cells=4)),
            png_zip(root / "fake.zip", blocky_images(12, RES, 1, cells=4)))


def test_registered_pr_calls_the_torchscript_like_sg2ada(stand_in, sets):
    real, fake = sets
    settings = {"pr_network": "vgg16", "vgg16_path": str(stand_in)}
    result = evaluate(fake, scale=RES, metrics="pr", real=real, samples={"pr": 12},
                      settings=settings, seed=0, device="cpu", fakes=True, batch_size=5)
    record = result["protocol"]["per_metric"]["precision"]
    assert record["network"] == "vgg16" and record["network_file"] == str(stand_in)
    assert record["input"].startswith("detector(uint8 NCHW RGB at native resolution")
    assert record["dtype"] == "fp32" and record["k"] == 3 and record["num_real"] == 12
    assert 0 <= result["values"]["precision"] <= 1 and 0 <= result["values"]["recall"] <= 1

    # the same features, by hand: the stand-in on the uint8 sets, P&R on them
    net = torch.jit.load(str(stand_in))
    feats = []
    for z in (real, fake):
        with zipfile.ZipFile(z) as zf:
            arr = np.stack([np.array(Image.open(zf.open(n)).convert("RGB"))
                            for n in sorted(zf.namelist())])
        feats.append(net(torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous(),
                         return_features=True).numpy())
    assert result["values"] == precision_recall(*feats, k=3)


@pytest.mark.parametrize("dtype", ["fp16-radius", "fp16"])
def test_reference_dtypes_are_options_recorded_in_the_protocol(stand_in, sets, dtype):
    real, fake = sets
    settings = {"pr_network": "vgg16", "vgg16_path": str(stand_in), "pr_dtype": dtype}
    result = evaluate(fake, scale=RES, metrics="pr", real=real, samples={"pr": 12},
                      settings=settings, seed=0, device="cpu", fakes=True)
    assert result["protocol"]["per_metric"]["recall"]["dtype"] == dtype
    assert result["protocol"]["settings"]["pr_dtype"] == dtype


def test_pr_dtype_outside_the_enum_is_refused(stand_in, sets):
    real, fake = sets
    with pytest.raises(PeganError, match="pr_dtype"):
        evaluate(fake, scale=RES, metrics="pr", real=real, samples={"pr": 12}, device="cpu",
                 settings={"pr_network": "vgg16", "vgg16_path": str(stand_in),
                           "pr_dtype": "bf16"}, fakes=True)


def test_vgg16_features_refuse_float_images(stand_in):
    net = torch.jit.load(str(stand_in))
    with pytest.raises(PeganError, match="uint8"):
        vgg16_features(net, torch.rand(2, 3, RES, RES) * 2 - 1)
    with pytest.raises(PeganError, match="uint8"):
        vgg16_features(net, torch.zeros(2, RES, RES, 3, dtype=torch.uint8))
    assert vgg16_features(net, torch.zeros(2, 3, RES, RES, dtype=torch.uint8)).dtype == np.float32


def _on_line(xs):
    return np.array([[x, 0.0] for x in xs], dtype=np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_computed_case_is_the_same_in_every_dtype(dtype):
    # test_pr.py's case (k=1): values exactly representable in fp16 -> 3/4 and 4/5 everywhere
    real, fake = _on_line([-10, 0, 1, 3, 7]), _on_line([0.5, 2, 5.5, 12])
    assert precision_recall(real, fake, k=1, dtype=dtype) == {"precision": 0.75, "recall": 0.8}


def test_fp16_radius_rounding_decides_a_near_tie():
    # k=1. reals 0 and 1000.3: radius of 0 = 1000.3, which fp16 rounds to 1000.5 (spacing 0.5).
    # fake -1000.4 is 1000.4 from 0: outside in fp32, inside with MMGeneration's fp16 radius.
    # fake 5000 is outside everywhere; recall is 1 (fake radii 6000.4).
    real, fake = _on_line([0.0, 1000.3]), _on_line([-1000.4, 5000.0])
    assert precision_recall(real, fake, k=1) == {"precision": 0.0, "recall": 1.0}
    assert precision_recall(real, fake, k=1, dtype="fp16-radius") == {"precision": 0.5,
                                                                      "recall": 1.0}
    # StyleGAN2-ADA's fp16 features: |x|^2 = 2.5e7 overflows fp16 inside cdist -> refused
    with pytest.raises(PeganError, match="overflows fp16"):
        precision_recall(real, fake, k=1, dtype="fp16")


def test_reference_paths_chunk_like_the_references():
    rng = np.random.default_rng(4)
    real = np.maximum(rng.standard_normal((90, 64)), 0).astype(np.float32) * 20
    fake = np.maximum(rng.standard_normal((70, 64)) + 0.1, 0).astype(np.float32) * 20
    for dtype in ("fp16-radius", "fp16"):
        whole = precision_recall(real, fake, dtype=dtype)
        assert precision_recall(real, fake, dtype=dtype, row_chunk=16, col_chunk=7) == whole

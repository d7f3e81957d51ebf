"""DCGAN: up-sampling and padding switches, the SPE head, smoke training of the three SWD
rows, SWD evaluation of a snapshot, and bit-exact resume."""

import dataclasses
import json

import pytest
import torch

from pegan import config as pconfig
from pegan import encodings
from pegan.cli import main as pegan_main
from pegan.data.prepare import prepare
from pegan.errors import PeganError
from pegan.models import dcgan
from pegan.snapshot import load_generator
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, train


pytestmark = pytest.mark.usefixtures("one_thread")

ITERATIONS = 6


@pytest.fixture(scope="module")
def faces(cfg, tmp_path_factory):
    path = tmp_path_factory.mktemp("dcgan-data") / "lfw-32.zip"
    prepare("lfw-faces", cfg["datasets"]["lfw-faces"], resolution=32, num=24, out=path)
    return path


def _spec(cfg, name, iterations=ITERATIONS):
    spec = pconfig.resolve(cfg, name, "smoke")
    kimg = iterations * spec.batch / 1000
    return dataclasses.replace(spec, total_kimg=kimg, snapshot_every_kimg=kimg)


def _opts(ckpt, data, **kw):
    return RunOptions(checkpoint_dir=ckpt, data=data, seed=2, progress=False, **kw)


@pytest.fixture(scope="module")
def trained(cfg, faces, tmp_path_factory):
    """name -> final snapshot of a short smoke run (trained once per module)."""
    cache = {}

    def get(name):
        if name not in cache:
            root = tmp_path_factory.mktemp(name)
            out = root / "final.pt"
            assert train(_spec(cfg, name), _opts(root / "ckpt", faces, out=out)) == 0
            cache[name] = out
        return cache[name]

    return get


# ------------------------------------------------------------------------- model


@pytest.mark.parametrize("upsample,padding", [("deconv", True), ("bilinear-conv", True),
                                              ("bilinear-conv", False)])
def test_switches_keep_the_output_size(upsample, padding):
    G = dcgan.Generator(32, 100, 64, upsample=upsample, padding=padding)
    convs = [m for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert all(isinstance(m, torch.nn.ConvTranspose2d) == (upsample == "deconv") for m in convs)
    assert {m.padding for m in convs} == {(1, 1) if padding else (0, 0)}
    x = G(torch.randn(3, 100))
    assert x.shape == (3, 3, 32, 32) and x.abs().max() <= 1.0
    D = dcgan.Discriminator(32, 64)
    assert D(x).shape == (3, 1)


def test_no_padding_needs_upsample_conv():
    with pytest.raises(PeganError, match="bilinear-conv"):
        dcgan.Generator(32, upsample="deconv", padding=False)


def test_spe_head_is_concatenated_with_the_latent_map():
    G = dcgan.Generator(32, 100, 64, upsample="bilinear-conv", padding=False, head="spe",
                        spe_dim=8).eval()
    torch.testing.assert_close(G.grid, encodings.sinusoidal_grid(4, 4, 8))
    assert G.blocks[0].conv.weight.shape[1] == 64 + 16
    z = torch.randn(2, 100)
    before = G(z)
    G.grid.zero_()
    assert not torch.allclose(before, G(z))
    with pytest.raises(PeganError, match="32 px"):
        G(z, scale=64)


# ---------------------------------------------------------------------- training


@pytest.mark.parametrize("name", ["swd-dcgan-a", "swd-dcgan-b", "swd-dcgan-c"])
def test_swd_rows_train_in_the_smoke_preset(cfg, trained, name):
    G, meta = load_generator(trained(name))
    assert meta["G_kwargs"]["upsample"] == "bilinear-conv"
    assert meta["G_kwargs"]["padding"] == cfg["experiments"][name]["padding"]
    x = G(torch.randn(4, G.z_dim))
    assert x.shape == (4, 3, 32, 32) and torch.isfinite(x).all()


def test_swd_evaluation_writes_levels_and_average(cfg, trained, faces, tmp_path):
    snapshot = trained("swd-dcgan-c")
    out = tmp_path / "swd.json"
    code = pegan_main(["evaluate", str(snapshot), "--scale", "32", "--metrics", "swd",
                       "--real", str(faces), "--samples", json.dumps({"swd": 16}),
                       "--seed", "0", "--device", "cpu", "--out", str(out)])
    assert code == 0
    swd = json.loads(out.read_text())["values"]["swd"]
    assert set(swd) == {"32", "16", "avg"}                     # levels of a 32-px image
    assert all(v > 0 for v in swd.values())
    assert swd["avg"] == pytest.approx((swd["32"] + swd["16"]) / 2)


def test_kill_and_resume_is_bit_exact(cfg, faces, tmp_path):
    spec = _spec(cfg, "swd-dcgan-b", iterations=20)
    assert train(spec, _opts(tmp_path / "a", faces, stop_after=8)) == RESUME_EXIT_STATUS
    assert train(spec, _opts(tmp_path / "b", faces, stop_after=4)) == RESUME_EXIT_STATUS
    torch.manual_seed(11)
    assert train(spec, _opts(tmp_path / "b", faces, stop_after=8)) == RESUME_EXIT_STATUS
    load = lambda d, i: torch.load(CheckpointStore(d).path_for(i), weights_only=True)
    a, b = load(tmp_path / "a", 8), load(tmp_path / "b", 8)
    assert state_digest(a["recipe"]) == state_digest(b["recipe"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])
    assert a["data"] == b["data"]
    first = load(tmp_path / "b", 4)
    assert state_digest(first["recipe"]["modules"]["G"]) != state_digest(b["recipe"]["modules"]["G"])
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("sec")} for r in rs]
    assert strip(read_jsonl(tmp_path / "a" / "train.jsonl")) == strip(
        read_jsonl(tmp_path / "b" / "train.jsonl"))

"""PGGAN: growth schedule and fade-in identities, padding removal, the SPE head, smoke
training of the three SWD rows, and bit-exact resume."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from pegan import config as pconfig
from pegan import encodings
from pegan.cli import main as pegan_main
from pegan.data.prepare import prepare
from pegan.models import pggan
from pegan.nn import EqualConv2d
from pegan.snapshot import load_generator
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, train
from pegan.train.pggan import PGGANSettings, growth, reals_at


pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(resolution=32, z_dim=16, fmap_base=256, fmap_max=16)


@pytest.fixture(scope="module")
def faces(cfg, tmp_path_factory):
    path = tmp_path_factory.mktemp("pggan-data") / "lfw-32.zip"
    prepare("lfw-faces", cfg["datasets"]["lfw-faces"], resolution=32, num=16, out=path)
    return path


def test_growth_follows_the_official_kimg_per_scale():
    s, k = PGGANSettings(), 1000.0              # paper preset: 1 paper Mimg = 1000 kimg
    assert growth(0, 6, s, k) == (0, 1.0)
    assert growth(599, 6, s, k) == (0, 1.0)
    assert growth(600, 6, s, k) == (1, 0.0)     # 8x8 starts fading in after 600k images
    assert growth(900, 6, s, k) == pytest.approx((1, 0.5))
    assert growth(1500, 6, s, k) == (1, 1.0)    # stabilised after 600k of fade-in
    assert growth(1800, 6, s, k) == (2, 0.0)
    assert growth(5400, 6, s, k) == (5, 0.0)    # 128 px from 5.4M images ...
    assert growth(12000, 6, s, k) == (5, 1.0)   # ... to the end of the 12M run
    # smoke: 8 images per paper Mimg, 4 levels to 32 px
    assert growth(0.096, 4, s, 0.008) == (3, 1.0)


@pytest.mark.parametrize("padding", [True, False])
def test_fade_in_blends_the_previous_level(padding):
    torch.manual_seed(0)
    G = pggan.Generator(**SMALL, padding=padding)
    D = pggan.Discriminator(32, fmap_base=256, fmap_max=16)
    z = torch.randn(4, 16)
    for level in (1, 2, 3):
        low = G.synthesize(z, level - 1, 1.0)
        up = F.interpolate(low, scale_factor=2, mode="nearest")
        torch.testing.assert_close(G.synthesize(z, level, 0.0), up)
        new, mid = G.synthesize(z, level, 1.0), G.synthesize(z, level, 0.25)
        torch.testing.assert_close(mid, torch.lerp(up, new, 0.25))
        assert new.shape[-1] == 4 * 2 ** level and not torch.allclose(new, up)
        # D at alpha 0 is the previous level's D on the pooled image
        x = torch.randn(4, 3, 4 * 2 ** level, 4 * 2 ** level)
        torch.testing.assert_close(D(x, level, 0.0), D(F.avg_pool2d(x, 2), level - 1, 1.0))
    G.set_progress(1, 0.5)           # the protocol output is always the final resolution
    assert G(z).shape == (4, 3, 32, 32)


def test_padding_removal_uses_valid_convs_and_keeps_sizes():
    G = pggan.Generator(**SMALL, padding=False)
    assert G.head_size == 6 and G.project.weight.shape[0] == 16 * 36
    assert {m.padding for m in G.modules() if isinstance(m, EqualConv2d)} == {0}
    assert {m.padding for m in pggan.Generator(**SMALL).modules()
            if isinstance(m, EqualConv2d) and m.weight.shape[-1] == 3} == {1}
    for level in range(4):
        assert G.synthesize(torch.randn(2, 16), level, 1.0).shape[-1] == 4 * 2 ** level


def test_spe_head_is_the_grid_concatenated_with_the_latent_map():
    G = pggan.Generator(**SMALL, padding=False, head="spe", spe_dim=8)
    torch.testing.assert_close(G.grid, encodings.sinusoidal_grid(6, 6, 8))
    assert G.head_conv.weight.shape[1] == 16 + 16       # latent map + 2 x spe_dim channels
    assert "grid" not in G.state_dict()                  # fixed, rebuilt from the kwargs
    z = torch.randn(2, 16)
    before = G.synthesize(z, 3, 1.0)
    G.grid.mul_(-1)
    assert not torch.allclose(before, G.synthesize(z, 3, 1.0))


def test_reals_are_pooled_and_faded_like_the_generator():
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(reals_at(x, 3, 1.0), x)
    pooled = F.avg_pool2d(x, 2)
    torch.testing.assert_close(reals_at(x, 2, 1.0), pooled)
    low = F.interpolate(F.avg_pool2d(pooled, 2), scale_factor=2, mode="nearest")
    torch.testing.assert_close(reals_at(x, 2, 0.0), low)


def _opts(ckpt, data, **kw):
    return RunOptions(checkpoint_dir=ckpt, data=data, seed=1, progress=False, **kw)


@pytest.fixture(scope="module")
def trained(cfg, faces, tmp_path_factory):
    """name -> checkpoint dir of the full smoke run (trained once per module)."""
    cache = {}

    def get(name):
        if name not in cache:
            root = tmp_path_factory.mktemp(name)
            spec = pconfig.resolve(cfg, name, "smoke")
            assert train(spec, _opts(root, faces, out=root / "final.pt")) == 0
            cache[name] = root
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["swd-pggan-a", "swd-pggan-b", "swd-pggan-c"])
def test_swd_rows_train_in_the_smoke_preset(cfg, trained, name):
    root = trained(name)
    G, meta = load_generator(root / "final.pt")
    assert int(G.level) == 3 and float(G.alpha) == 1.0          # grew to 32 px
    x = G(torch.randn(3, G.z_dim))
    assert x.shape == (3, 3, 32, 32) and torch.isfinite(x).all()
    assert meta["G_kwargs"]["padding"] == cfg["experiments"][name]["padding"]
    assert meta["G_kwargs"]["head"] == cfg["experiments"][name]["head"]
    levels = [r["level"] for r in read_jsonl(root / "train.jsonl")]
    assert levels[-1] == 3.0


def test_swd_evaluation_writes_levels_and_average(trained, faces, tmp_path):
    snapshot = trained("swd-pggan-b") / "final.pt"
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
    spec = pconfig.resolve(cfg, "swd-pggan-c", "smoke")
    spec = dataclasses.replace(spec, snapshot_every_kimg=spec.total_kimg)
    # slower growth (8 images/iteration, 8 images per paper Mimg): level 0 for iterations
    # 0-1, level 1 for 2-5 (fading in over 2-3), level 2 for 6-9, so the resume point (5)
    # and the replayed stretch straddle a new level (and its optimiser reset)
    grow = {"first_level_mimg": 2.0, "level_mimg": 4.0, "transition_mimg": 2.0}
    assert train(spec, _opts(tmp_path / "a", faces, stop_after=9, settings=grow)) == RESUME_EXIT_STATUS
    assert train(spec, _opts(tmp_path / "b", faces, stop_after=5, settings=grow)) == RESUME_EXIT_STATUS
    torch.manual_seed(7)
    assert train(spec, _opts(tmp_path / "b", faces, stop_after=9, settings=grow)) == RESUME_EXIT_STATUS
    load = lambda d, i: torch.load(CheckpointStore(d).path_for(i), weights_only=True)
    a, b = load(tmp_path / "a", 9), load(tmp_path / "b", 9)
    assert state_digest(a["recipe"]) == state_digest(b["recipe"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])
    first = load(tmp_path / "b", 5)
    assert (first["recipe"]["extra"]["level"], a["recipe"]["extra"]["level"]) == (1, 2)
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("sec")} for r in rs]
    assert strip(read_jsonl(tmp_path / "a" / "train.jsonl")) == strip(
        read_jsonl(tmp_path / "b" / "train.jsonl"))

"""SinGAN: pyramid, padding/head variants, noise amplitudes, sampling at other sizes and
aspect ratios, smoke training of every registry variant, and bit-exact resume."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from pegan import config as pconfig
from pegan import encodings
from pegan.data.prepare import prepare
from pegan.errors import PeganError
from pegan.models import singan
from pegan.train.budget import RESUME_EXIT_STATUS
from pegan.train.checkpoint import CheckpointStore, state_digest
from pegan.train.logs import read_jsonl
from pegan.train.loop import RunOptions, train


pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = [(16, 24), (19, 28), (23, 34), (27, 40)]
ITERS = 2                                        # iterations per scale in these tests


def _spec(cfg, name, iters=ITERS):
    spec = pconfig.resolve(cfg, name, "smoke")
    return dataclasses.replace(spec, singan={**spec.singan, "iters_per_scale": iters})


@pytest.fixture(scope="module")
def data(cfg, tmp_path_factory):
    """The prepared single image of every SinGAN dataset (what the workflow passes as --data)."""
    root = tmp_path_factory.mktemp("singan-data")
    out = {}
    for name in ("skimage-coffee", "skimage-chelsea", "skimage-astronaut"):
        out[name] = root / f"{name}.zip"
        prepare(name, cfg["datasets"][name], resolution=40, num=1, out=out[name])
    return out


# ------------------------------------------------------------------------- pyramid


@pytest.mark.parametrize("hw", [(400, 600), (600, 400), (512, 512), (248, 330)])
def test_pyramid_spans_min_to_max_size_with_about_the_official_factor(hw):
    sizes = singan.pyramid_sizes(*hw, max_size=40, min_size=16)
    assert max(sizes[-1]) == 40 and min(sizes[0]) == 16
    aspect = hw[1] / hw[0]
    for (h0, w0), (h1, w1) in zip(sizes, sizes[1:]):
        assert h1 > h0 and w1 > w0
        assert 0.7 < h0 / h1 < 0.9                 # ~0.75, adjusted to land on min_size
        assert abs(w1 / h1 - aspect) < 0.1
    # the paper preset: balloons-like image, 0.75 factor, min 25, max 250
    big = singan.pyramid_sizes(1002, 1500, max_size=250, min_size=25)
    assert big[-1] == (167, 250) and min(big[0]) == 25
    n = math.ceil(math.log(25 / 1002) / math.log(0.75)) + 1 - math.ceil(math.log(250 / 1500) / math.log(0.75))
    assert len(big) == n + 1


# --------------------------------------------------------------------- generator


@pytest.mark.parametrize("padding,conv_pad", [("zero", 0), ("interp", 0), ("conv", 1)])
def test_padding_switch_sets_conv_padding_and_noise_size(padding, conv_pad):
    G = singan.Generator(SIZES, padding=padding)
    pads = {m.padding for m in G.modules() if isinstance(m, torch.nn.Conv2d)}
    assert pads == {(conv_pad, conv_pad)}
    h, w = SIZES[0]
    extra = 10 if padding == "interp" else 0   # interpolation padding: noise drawn at h+10
    assert G.fixed_noise_0.shape[-2:] == (h + extra, w + extra)
    for size in (SIZES, G.sizes_for(size=(20, 61))):
        out = G(2, sizes=size)
        assert out.shape == (2, 3, *size[-1]) and out.abs().max() <= 2.0


def test_interp_padding_never_sees_a_zero_border():
    """Interpolation padding: a constant previous image stays constant at the block input."""
    G = singan.Generator(SIZES, padding="interp", noise_channels=1)
    G.noise_amps.zero_()
    seen = {}
    G.blocks[1].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    G.blocks[0].register_forward_hook(lambda m, args, out: torch.full_like(out, 0.5))
    G(1, stage=1)
    h, w = SIZES[1]
    assert seen["x"].shape[-2:] == (h + 10, w + 10)
    assert torch.allclose(seen["x"], torch.full_like(seen["x"], 0.5), atol=1e-5)


@pytest.mark.parametrize("head,padding", [("csg", "conv"), ("spe", "interp"), ("spe", "zero")])
def test_grid_is_added_to_the_stage0_noise(head, padding):
    G = singan.Generator(SIZES, padding=padding, head=head, spe_dim=4)
    G.fixed_noise_0.zero_()
    G.noise_amps[0] = 0.5
    seen = {}
    G.blocks[0].register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    G(1, mode="recon", stage=0)
    nh, nw = G.noise_size(*SIZES[0])
    grid = (encodings.cartesian_grid(nh, nw) if head == "csg"
            else encodings.sinusoidal_grid(nh, nw, 4))[None] * 0.5
    if padding == "zero":
        grid = F.pad(grid, (5, 5, 5, 5))
    assert seen["x"].shape[1] == (2 if head == "csg" else 8)
    torch.testing.assert_close(seen["x"], grid)


def test_noise_channels_follow_the_official_models():
    assert singan.Generator(SIZES).fixed_noise_0.shape[1] == 1
    assert singan.Generator(SIZES, noise_channels=3).fixed_noise_1.shape[1] == 3
    assert singan.Generator(SIZES, head="spe", spe_dim=8).fixed_noise_0.shape[1] == 16


def test_sampling_is_seeded_and_recon_needs_the_training_size():
    G = singan.Generator(SIZES).eval()
    g = lambda: torch.Generator().manual_seed(3)
    torch.testing.assert_close(G(2, generator=g()), G(2, generator=g()))
    assert not torch.equal(G(1, generator=g()), G(1, generator=torch.Generator().manual_seed(4)))
    torch.testing.assert_close(G(1, mode="recon"), G(1, mode="recon"))
    with pytest.raises(PeganError, match="training size"):
        G(1, mode="recon", sizes=G.sizes_for(scale=(1.0, 2.0)))


# ---------------------------------------------------------------------- training


def _opts(ckpt, data, **kw):
    return RunOptions(checkpoint_dir=ckpt, data=data, seed=3, progress=False, **kw)


@pytest.mark.parametrize("name", ["singan-zero-pad", "singan-no-pad", "singan-no-pad-disc-nobn",
                                  "singan-csg", "singan-spe4", "singan-spe8"])
def test_every_registry_variant_trains_and_samples_other_aspect_ratios(cfg, data, tmp_path, name):
    spec = _spec(cfg, name)
    out = tmp_path / "final.pt"
    assert train(spec, _opts(tmp_path / "ckpt", data[spec.dataset], out=out)) == 0
    snap = torch.load(out, weights_only=False)
    H, W = snap["G_kwargs"]["stage_sizes"][-1]
    assert max(H, W) == 40 and snap["extra"]["real"].shape == (3, H, W)
    x = singan.sample(out, n=2, seed=1)
    assert x.shape == (2, 3, H, W) and torch.isfinite(x).all()
    wide = singan.sample(out, scale=(1.0, 2.0), n=1, seed=1)
    assert wide.shape == (1, 3, H, 2 * W)                         # another aspect ratio
    tall = singan.sample(out, size=(2 * H, W - 3), n=1, seed=1)
    assert tall.shape == (1, 3, 2 * H, W - 3)
    torch.testing.assert_close(singan.sample(out, n=2, seed=1), x)
    # every stage trained ITERS iterations, and the grid/padding switches reached the model
    log = read_jsonl(tmp_path / "ckpt" / "train.jsonl")
    assert log[-1]["iterations"] == ITERS * len(snap["G_kwargs"]["stage_sizes"])
    assert snap["G_kwargs"]["padding"] == spec.switches["padding"]
    assert snap["G_kwargs"]["head"] == spec.switches["head"]
    panels = singan.figure_panels(out, seed=0)
    assert len(panels) == 5 and panels[-1][1].shape[-1] == 2 * W


def test_noise_amplitudes_are_the_official_rmse_rule(cfg, data, tmp_path):
    from pegan.train.singan import SinGANRecipe, SinGANSettings
    from pegan.train.recipe import TrainContext

    spec = _spec(cfg, "singan-no-pad")
    recipe = SinGANRecipe(spec, TrainContext(torch.device("cpu"), 0), SinGANSettings())
    for it in range(recipe.schedule().total_iterations):
        recipe.step(None, it)
    G = recipe.G.eval()
    assert float(G.noise_amps[0]) == 1.0
    with torch.no_grad():
        for s in range(1, G.num_stages):
            up = F.interpolate(G(1, mode="recon", stage=s - 1), size=recipe.reals[s].shape[-2:],
                               mode="bicubic", align_corners=True)
            expected = 0.1 * F.mse_loss(up, recipe.reals[s]).sqrt()
            torch.testing.assert_close(G.noise_amps[s], expected)
    # finished stages are frozen
    assert all(not p.requires_grad for p in G.blocks[0].parameters())


def test_kill_and_resume_is_bit_exact_across_a_stage_boundary(cfg, data, tmp_path):
    spec = _spec(cfg, "singan-spe4", iters=3)
    zip_ = data[spec.dataset]
    assert train(spec, _opts(tmp_path / "a", zip_, stop_after=8)) == RESUME_EXIT_STATUS
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=4)) == RESUME_EXIT_STATUS
    torch.manual_seed(99)                        # the resumed run must not depend on this
    assert train(spec, _opts(tmp_path / "b", zip_, stop_after=8)) == RESUME_EXIT_STATUS
    load = lambda d, i: torch.load(CheckpointStore(d).path_for(i), weights_only=True)
    a, b = load(tmp_path / "a", 8), load(tmp_path / "b", 8)
    assert a["recipe"]["extra"]["stage"] == 2
    assert state_digest(a["recipe"]) == state_digest(b["recipe"])
    assert state_digest(a["rng"]) == state_digest(b["rng"])
    first = load(tmp_path / "b", 4)
    assert state_digest(first["recipe"]["modules"]["G"]) != state_digest(b["recipe"]["modules"]["G"])
    strip = lambda rs: [{k: v for k, v in r.items() if not k.startswith("sec")} for r in rs]
    assert strip(read_jsonl(tmp_path / "a" / "train.jsonl")) == strip(
        read_jsonl(tmp_path / "b" / "train.jsonl"))


def test_data_of_another_image_is_refused(cfg, data, tmp_path):
    spec = _spec(cfg, "singan-zero-pad")                 # trains on coffee
    with pytest.raises(PeganError, match="does not hold the image"):
        train(spec, _opts(tmp_path / "ckpt", data["skimage-chelsea"]))

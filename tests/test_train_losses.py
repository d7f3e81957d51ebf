"""Losses, regularisers, EMA and the official hyper-parameters of the StyleGAN2 recipe."""

import math

import pytest
import torch
from torch import nn

from pegan import config as pconfig
from pegan.train import losses
from pegan.train.ema import ema_momentum, update_ema
from pegan.train.recipe import TrainContext, parse_settings, schedule_from_spec
from pegan.train.stylegan2 import StyleGAN2Recipe, StyleGAN2Settings
from pegan.errors import PeganError

torch.set_num_threads(1)


def test_logistic_losses_match_their_formulas():
    real, fake = torch.tensor([[2.0], [-1.0]]), torch.tensor([[0.5], [-3.0]])
    sp = lambda x: math.log1p(math.exp(x))
    d = (sp(0.5) + sp(-3.0)) / 2 + (sp(-2.0) + sp(1.0)) / 2
    assert losses.d_logistic_loss(real, fake).item() == pytest.approx(d, rel=1e-6)
    assert losses.g_nonsaturating_loss(fake).item() == pytest.approx((sp(-0.5) + sp(3.0)) / 2, rel=1e-6)


def test_r1_of_a_linear_discriminator_is_its_squared_weight_norm():
    w = torch.randn(3 * 4 * 4)
    x = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (x.flatten(1) * w).sum(1, keepdim=True)
    assert losses.r1_penalty(logits, x).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)


def test_path_length_of_a_linear_generator():
    # img = A w for every layer: |J^T y| with y ~ N(0, I)/sqrt(HW) has E|.|^2 = |A|_F^2 / HW
    torch.manual_seed(0)
    A = torch.randn(1 * 8 * 8, 6)
    w = torch.randn(4000, 1, 6, requires_grad=True)
    img = (w[:, 0] @ A.T).reshape(-1, 1, 8, 8)
    lengths = losses.path_lengths(img, w)
    expected = math.sqrt(A.pow(2).sum().item() / 64)
    assert lengths.pow(2).mean().sqrt().item() == pytest.approx(expected, rel=0.05)
    mean = losses.update_path_mean(torch.tensor(0.0), lengths, 0.01)
    assert mean.item() == pytest.approx(0.01 * lengths.mean().item(), rel=1e-5)


def test_ema_update_follows_the_official_formula():
    g, ema = nn.Linear(2, 2), nn.Linear(2, 2)
    g.register_buffer("b", torch.ones(1))
    ema.register_buffer("b", torch.zeros(1))
    expect = g.weight.detach() + (ema.weight.detach() - g.weight.detach()) * 0.9
    update_ema(ema, g, 0.9)
    torch.testing.assert_close(ema.weight, expect)
    assert ema.b.item() == 1.0                           # buffers are copied
    assert ema_momentum(10.0, 32) == pytest.approx(0.997784, abs=1e-6)   # official value


def test_official_defaults():
    s = StyleGAN2Settings()
    assert s.g_lr == pytest.approx(0.0016) and s.d_lr == pytest.approx(0.00188235, abs=1e-8)
    assert s.g_beta2 == pytest.approx(0.991992, abs=1e-6) and s.d_beta2 == pytest.approx(0.990585, abs=1e-6)
    assert (s.r1_gamma / 2 * s.r1_interval, s.pl_weight * s.pl_interval) == (80, 8)
    assert (s.mix_prob, s.pl_scale, s.scale_sampling) == (0.9, "base", "intended")


def test_paper_preset_ema_momentum_is_official():
    spec = pconfig.resolve(pconfig.load(), "t2a", "paper")
    s = StyleGAN2Settings()
    assert ema_momentum(s.ema_kimg_paper / 1000 * spec.kimg_per_mimg,
                        s.ema_nimg_per_step) == pytest.approx(0.997784, abs=1e-6)
    sched = schedule_from_spec(spec)
    assert sched.total_iterations == 1_100_000 and sched.snapshot_iterations[0] == 10_000


def test_settings_parse_cli_strings_and_reject_unknown_keys():
    s = parse_settings(StyleGAN2Settings, {"r1_interval": "8", "pl_scale": "drawn",
                                           "scale_probabilities": "[0.2, 0.4, 0.4]"})
    assert s.r1_interval == 8 and s.pl_scale == "drawn" and s.scale_probabilities == [0.2, 0.4, 0.4]
    with pytest.raises(PeganError, match="unknown training setting"):
        parse_settings(StyleGAN2Settings, {"lr": "1"})
    with pytest.raises(PeganError, match="pl_scale"):
        parse_settings(StyleGAN2Settings, {"pl_scale": "biggest"})


def test_path_length_scale_option(monkeypatch):
    """pl_scale='base' regularises at the base size whatever was drawn; 'drawn' follows it."""
    spec = pconfig.resolve(pconfig.load(), "t5f", "smoke")
    seen = {}
    orig = losses.path_lengths
    for mode in ("base", "drawn"):
        torch.manual_seed(0)
        recipe = StyleGAN2Recipe(spec, TrainContext(torch.device("cpu"), 0),
                                 StyleGAN2Settings(pl_scale=mode, r1_interval=0))
        monkeypatch.setattr(recipe, "draw_scale", lambda: 64)
        sizes = []
        monkeypatch.setattr(losses, "path_lengths",
                            lambda img, lat: sizes.append(img.shape[-1]) or orig(img, lat))
        recipe.step(torch.rand(spec.batch, 3, 64, 64) * 2 - 1, 0)
        seen[mode] = sizes
    assert seen == {"base": [32], "drawn": [64]}

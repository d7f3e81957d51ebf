"""The shift-equivariance metric (pegan.metrics.equivariance) on cases with a known answer:
an exactly equivariant padding-free conv stack scores the cap, the same stack with zero
padding scores far lower; SinGAN's padding-free stage 0 is exact, zero padding and a grid
break it; real family generators run through `pegan evaluate`; image sets are refused."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from pegan.data.prepare import prepare
from pegan.errors import PeganError
from pegan.evaluate import evaluate
from pegan.metrics import equivariance as eq
from pegan.metrics import registry
from pegan.models import dcgan, singan, stylegan2
from pegan.snapshot import save_snapshot


class ConvStack(nn.Module):
    """Four 3x3 convs + tanh on a spatially i.i.d. input map: valid convs (exactly
    shift-equivariant) or zero-padded ones."""

    def __init__(self, padding: bool, channels: int = 8) -> None:
        super().__init__()
        layers, cin = [], 4
        for i in range(4):
            cout = 3 if i == 3 else channels
            layers += [nn.Conv2d(cin, cout, 3, padding=1 if padding else 0), nn.Tanh()]
            cin = cout
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class StackProbe(eq.Probe):
    """The probe of a toy generator whose whole input is an i.i.d. map (1 px per cell)."""

    family, moved = "toy", "the input map"

    @torch.no_grad()
    def render(self, generators, shifts):
        x = torch.stack([torch.randn(4, 24, 24, generator=g) for g in generators])
        return self.G(x), self.G(eq._rolled(x, shifts)), 1


def _score(G, num=8, cells=2):
    torch.manual_seed(0)
    probe = StackProbe(G.eval(), 24, torch.device("cpu"))
    error, anchored = eq.SquaredError(), eq.SquaredError()
    generators = [torch.Generator().manual_seed(i) for i in range(num)]
    shifts = [eq.random_shift(g, cells) for g in generators]
    first, second, pixels = probe.render(generators, shifts)
    for i, s in enumerate(shifts):
        eq.compare_pair(error, anchored, first[i:i + 1], second[i:i + 1], s, pixels * cells)
    return error.psnr(), anchored.psnr()


def test_valid_conv_stack_is_exactly_equivariant_zero_padding_is_not():
    torch.manual_seed(0)
    valid, padded = ConvStack(padding=False), ConvStack(padding=True)
    padded.load_state_dict(valid.state_dict())          # the same weights, only the padding differs
    exact, exact_anchored = _score(valid)
    pad, pad_anchored = _score(padded)
    # measured: 120.0 dB (the cap: equal to float rounding) vs 38.9 dB with zero padding
    assert exact > 100 and exact == pytest.approx(eq.MAX_PSNR, abs=25)
    assert pad < 45 and exact - pad > 50
    # both beat "anchored" (an output that stays put, ~25 dB here): each follows its input
    assert exact_anchored < 30 and pad > pad_anchored


def test_overlap_and_psnr_definition():
    x = torch.arange(2 * 3 * 6 * 5, dtype=torch.float32).reshape(2, 3, 6, 5)
    moved = torch.roll(x, 2, dims=2)
    a, b = eq.overlap(moved, x, eq.Shift(2, 1), 2)
    assert torch.equal(a, b) and a.shape == (2, 3, 4, 5)
    a, b = eq.overlap(torch.roll(x, -3, dims=3), x, eq.Shift(3, -1), 3)
    assert torch.equal(a, b) and a.shape == (2, 3, 6, 2)
    err = eq.SquaredError()
    err.add(torch.zeros(10), torch.full((10,), 0.2))       # MSE 0.04 -> 10 log10(100) = 20 dB
    assert err.psnr() == pytest.approx(20.0)
    with pytest.raises(PeganError, match="no overlap"):
        eq.overlap(x, x, eq.Shift(2, 1), 6)


def _singan(padding, head, sizes):
    torch.manual_seed(0)
    G = singan.Generator(sizes, padding=padding, head=head, base_channels=16, max_channels=16,
                         noise_channels=1)
    for p in G.parameters():                     # weights large enough for a non-trivial image
        p.data.mul_(10)
    return G.eval()


def _singan_eval(G, kwargs, tmp_path, real, name):
    path = tmp_path / f"{name}.pt"
    save_snapshot(path, arch="singan", experiment=name, G_kwargs=kwargs, G_ema=G, kimg=0)
    return evaluate(path, scale=40, metrics="structure-equivariance", real=real,
                    samples={"structure": 8}, seed=0, device="cpu", batch_size=4)


def test_singan_stage0_known_answers_through_evaluate(tmp_path):
    real = tmp_path / "chelsea.zip"
    prepare("chelsea", {"kind": "skimage", "image": "chelsea"}, resolution=40, num=1, out=real)
    sizes = singan.pyramid_sizes(40, 40, max_size=40, min_size=16)
    results = {}
    for padding, head in (("interp", "noise"), ("zero", "noise"), ("interp", "csg")):
        G = _singan(padding, head, sizes)
        kwargs = {"stage_sizes": [list(s) for s in sizes], "padding": padding, "head": head,
                  "base_channels": 16, "max_channels": 16, "noise_channels": 1}
        start = time.perf_counter()
        results[(padding, head)] = _singan_eval(G, kwargs, tmp_path, real, f"{padding}-{head}")
        assert time.perf_counter() - start < 20          # cheap at smoke sample counts
    nopad = results[("interp", "noise")]
    assert nopad["values"]["eqt"] == pytest.approx(eq.MAX_PSNR, abs=15)   # exact (float rounding)
    assert results[("zero", "noise")]["values"]["eqt"] < nopad["values"]["eqt"] - 20
    assert results[("interp", "csg")]["values"]["eqt"] < nopad["values"]["eqt"] - 20
    prot = nopad["protocol"]["per_metric"]["eqt"]
    assert prot["family"] == "singan" and prot["shift_px"] == 2 and prot["version"] == "equivariance-1"
    assert prot["rendered_size"] == list(sizes[0]) and prot["num_real"] == 1
    assert prot["eqt_anchored"] < nopad["values"]["eqt"] and prot["eqt_anchored_real"] > 0
    assert set(nopad["values"]) == {"structure", "diversity", "patch_swd", "eqt"}


@pytest.mark.parametrize("arch,kwargs", [
    ("stylegan2", dict(resolution=32, style_dim=16, mapping_layers=2, channel_scale=1 / 16,
                       channel_ref_resolution=256, upsample="bilinear-conv", padding=False,
                       head="const")),
    ("dcgan", dict(resolution=32, z_dim=16, channels=32, upsample="bilinear-conv",
                   padding=True, head="spe", spe_dim=4)),
])
def test_latent_family_generators_run_through_evaluate(arch, kwargs, tmp_path):
    data = tmp_path / "data.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=32, num=8, out=data)
    torch.manual_seed(0)
    G = (stylegan2 if arch == "stylegan2" else dcgan).Generator(**kwargs)
    path = tmp_path / "G.pt"
    save_snapshot(path, arch=arch, experiment="toy", G_kwargs=kwargs, G_ema=G, kimg=0)
    start = time.perf_counter()
    result = evaluate(path, scale=32, metrics="equivariance", real=data,
                      samples={"structure": 8}, seed=0, device="cpu", batch_size=4)
    assert time.perf_counter() - start < 20
    prot = result["protocol"]["per_metric"]["eqt"]
    assert prot["shift_px"] == 8 and prot["family"] == arch and prot["rendered_size"] == [32, 32]
    assert 0 < result["values"]["eqt"] <= eq.MAX_PSNR
    again = evaluate(path, scale=32, metrics="equivariance", real=data, samples={"structure": 8},
                     seed=0, device="cpu", batch_size=8)        # batch size does not matter
    assert again["values"]["eqt"] == pytest.approx(result["values"]["eqt"], rel=1e-6)


def test_image_sets_are_refused(tmp_path):
    data = tmp_path / "data.zip"
    prepare("syn", {"kind": "synthetic"}, resolution=32, num=4, out=data)
    with pytest.raises(PeganError, match="evaluate a snapshot, not a set of images"):
        evaluate(data, scale=32, metrics="equivariance", real=data, samples={"swd": 4},
                 device="cpu")


def test_registration_shares_the_structure_job():
    metric = registry.get("equivariance")
    assert metric.group == "structure" and metric.singan
    assert registry.metric_set({"structure", "equivariance"}) == "structure-equivariance"
    names = list(registry.metrics())                # after the paper's metrics, whatever
    assert names.index("equivariance") > max(names.index(m) for m in ("fid", "pr", "swd"))
    assert not registry.outputs()["eqt"].lower_is_better

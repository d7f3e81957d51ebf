"""StyleGAN2 / MS-PIE generator and discriminator: official parameter counts, every Table 2 and
Table 5 experiment at its scales, the switches' semantics, translation equivariance without
padding, gradients and one optimisation step."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from pegan import config as pconfig
from pegan.errors import PeganError
from pegan.models import build_models
from pegan.models.stylegan2 import Discriminator, Generator
from pegan.nn import MinibatchStddev, ModulatedConv2d, UpsampleFIR, upfirdn2d
from pegan.nn.upfirdn import make_kernel

SMALL = dict(style_dim=16, mapping_layers=2, channel_scale=1 / 32, channel_ref_resolution=256)


@pytest.fixture(autouse=True)
def _threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def table_experiments(cfg) -> list[str]:
    names = []
    for table in ("table2", "table5", "table5-hires"):
        names += [r["experiment"] for r in cfg["tables"][table]["rows"]]
    return sorted(set(names))


# ------------------------------------------------ parameter counts (reference section 10)
#
# Sums of the products of the key shapes listed in official-implementation.md 10.3-10.5
# (parameters only: blur/upsample kernels, injected noises and _float_tensor are buffers).

D_STYLE = 512


def n_mapping(layers=8, d=D_STYLE):
    return layers * (d * d + d)  # style_mapping.{1..8}.linear.weight_orig [512,512] + .bias [512]


def n_style_conv(cin, cout, k=3, d=D_STYLE):
    return (cout * cin * k * k  # conv.weight_orig [1, Cout, Cin, k, k]
            + cin * d + cin     # conv.style_modulation.linear.weight_orig [Cin, 512] + .bias [Cin]
            + 1                 # noise_injector.weight [1]
            + cout)             # activate.bias [Cout]


def n_to_rgb(cin, d=D_STYLE):
    return 3 * cin + cin * d + cin + 3  # conv.weight_orig [1,3,Cin,1,1], modulation, bias [1,3,1,1]


BLOCKS_C2 = [(512, 512), (512, 512), (512, 512), (512, 512), (512, 256), (256, 128)]
BLOCKS_C1 = [(512, 512), (512, 512), (512, 512), (512, 256), (256, 128), (128, 64)]
BLOCKS_C2_512 = BLOCKS_C2 + [(128, 64)]  # config-b: one more block, channels[512] = 32 x 2


def n_generator(head_params, conv1_in, blocks):
    return (n_mapping() + head_params
            + n_style_conv(conv1_in, 512) + n_to_rgb(512)       # conv1, to_rgb1
            + sum(n_style_conv(ci, co) + n_style_conv(co, co)   # convs.2b (up), convs.2b+1
                  + n_to_rgb(co) for ci, co in blocks))         # to_rgbs.b


def n_conv_layer(cin, cout, k):
    return cout * cin * k * k + cout  # X.conv.weight_orig + activation bias


def n_discriminator(first, blocks, linear_in):
    return (n_conv_layer(3, first, 1)                           # convs.0
            + sum(n_conv_layer(ci, ci, 3) + n_conv_layer(ci, co, 3) + co * ci  # conv1, conv2, skip
                  for ci, co in blocks)
            + n_conv_layer(513, 512, 3)                         # final_conv (mbstd adds 1)
            + linear_in * 512 + 512 + 512 * 1 + 1)              # final_linear.0, final_linear.1


D_C2 = [(128, 256), (256, 512)] + [(512, 512)] * 4
D_C1 = [(64, 128), (128, 256), (256, 512)] + [(512, 512)] * 3
D_C2_512 = [(64, 128), (128, 256), (256, 512)] + [(512, 512)] * 4

CONST4, CONST6 = 512 * 4 * 4, 512 * 6 * 6
EXPECTED_G = {
    "t2a": n_generator(CONST4, 512, BLOCKS_C2),   # config-a, StyleGANv2Generator(256)
    "t2b": n_generator(CONST4, 512, BLOCKS_C2),   # deconv -> conv: same shapes, no blur
    "t2c": n_generator(CONST6, 512, BLOCKS_C2),   # no padding: 6x6 constant
    "t2d": n_generator(0, 2, BLOCKS_C2),          # CSG: conv1 takes 2 channels
    "t2e": n_generator(0, 512, BLOCKS_C2),        # SPE: 2 x 256 channels, no parameters
    "t5b": n_generator(CONST4, 512, BLOCKS_C2_512),
    "t5c": n_generator(CONST4, 512, BLOCKS_C2),
    "t5d": n_generator(0, 2, BLOCKS_C2),
    "t5e": n_generator(0, 512, BLOCKS_C2),
    "t5f": n_generator(0, 512, BLOCKS_C2),
    "t5g": n_generator(0, 512, BLOCKS_C1),        # C1
    "t5h": n_generator(CONST6, 512, BLOCKS_C2),
    "t5i": n_generator(0, 2, BLOCKS_C2),
    "t5j": n_generator(0, 512, BLOCKS_C2),
    "t5k": n_generator(0, 512, BLOCKS_C2),
    "t5f-896": n_generator(0, 512, BLOCKS_C2),
    "t5f-1024": n_generator(0, 512, BLOCKS_C1),   # G is C1
}
EXPECTED_D = {
    "t2a": n_discriminator(128, D_C2, 512 * 4 * 4),  # StyleGAN2Discriminator: [512, 8192]
    "t5b": n_discriminator(64, D_C2_512, 512 * 4 * 4),
    "t5f": n_discriminator(128, D_C2, 512 * 2 * 2),  # MSStyleGAN2Discriminator: [512, 2048]
    "t5g": n_discriminator(64, D_C1, 512 * 2 * 2),   # C1 D
    "t5f-1024": n_discriminator(128, D_C2, 512 * 2 * 2),  # its D keeps C2
}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_expected_counts_match_known_totals():
    # the well-known StyleGAN2-256 C2 totals (e.g. rosinality/stylegan2-pytorch)
    assert EXPECTED_G["t2a"] == 30_034_338
    assert EXPECTED_D["t2a"] == 28_864_129


@pytest.mark.parametrize("name", sorted(EXPECTED_G))
def test_official_parameter_counts(cfg, name):
    spec = pconfig.resolve(cfg, name, "paper")
    with torch.device("meta"):
        G, D, _, _ = build_models(spec)
    assert n_params(G) == EXPECTED_G[name]
    if name in EXPECTED_D:
        assert n_params(D) == EXPECTED_D[name]


def test_official_key_shapes(cfg):
    def shapes(name):
        with torch.device("meta"):
            G, D, _, _ = build_models(pconfig.resolve(cfg, name, "paper"))
        return ({k: tuple(v.shape) for k, v in G.state_dict().items()},
                {k: tuple(v.shape) for k, v in D.state_dict().items()})

    g, d = shapes("t2a")
    assert g["constant_input.input"] == (1, 512, 4, 4)
    assert g["conv1.conv.weight"] == (1, 512, 512, 3, 3)
    assert g["convs.10.conv.weight"] == (1, 128, 256, 3, 3)
    assert g["convs.0.conv.blur.kernel"] == (4, 4)
    assert g["to_rgbs.5.upsample.kernel"] == (4, 4)
    assert [g[f"injected_noise_{i}"][-1] for i in range(13)] == [4, 8, 8, 16, 16, 32, 32, 64, 64,
                                                                  128, 128, 256, 256]
    assert d["final_linear.0.weight"] == (512, 8192)
    assert d["convs.1.skip.1.weight"] == (256, 128, 1, 1)
    g, d = shapes("t5i")  # no padding + CSG
    assert g["conv1.conv.weight"] == (1, 512, 2, 3, 3)
    assert "constant_input.input" not in g and "convs.0.conv.blur.kernel" not in g
    assert [g[f"injected_noise_{i}"][-1] for i in range(13)] == [4, 10, 8, 18, 16, 34, 32, 66, 64,
                                                                  130, 128, 258, 256]
    assert d["final_linear.0.weight"] == (512, 2048)
    g, _ = shapes("t5h")
    assert g["constant_input.input"] == (1, 512, 6, 6)


def test_full_size_generator_and_discriminator_run(cfg):
    torch.manual_seed(0)
    G, D, _, _ = build_models(pconfig.resolve(cfg, "t2a", "paper"))
    with torch.no_grad():
        img = G(torch.randn(1, 512))
        assert img.shape == (1, 3, 256, 256) and torch.isfinite(img).all()
        assert D(img).shape == (1, 1)


# ------------------------------------------------------- every experiment, smoke-sized


def test_every_table_experiment_renders_each_scale(cfg):
    torch.manual_seed(0)
    names = table_experiments(cfg)
    assert {"t2a", "t2e", "t5b", "t5k", "t5f-1024"} <= set(names)
    for name in names:
        spec = pconfig.resolve(cfg, name, "smoke")
        G, D, g_kwargs, d_kwargs = build_models(spec)
        json.dumps([g_kwargs, d_kwargs])  # stored in snapshots
        for px in spec.scales:
            with torch.no_grad():
                img = G(torch.randn(1, G.z_dim), px)
                assert img.shape == (1, 3, px, px), (name, px)
                assert torch.isfinite(img).all()
                assert D(img).shape == (1, 1)
        assert g_kwargs["resolution"] == spec.resolution


def test_smoke_widths_keep_the_channel_multiplier(cfg):
    c2 = build_models(pconfig.resolve(cfg, "t5f", "smoke"))[0]
    c1 = build_models(pconfig.resolve(cfg, "t5g", "smoke"))[0]
    assert c2.to_rgbs[-1].conv.in_channels == 2 * c1.to_rgbs[-1].conv.in_channels


def test_invalid_scales_name_the_valid_sizes():
    G = Generator(32, **SMALL)
    with pytest.raises(PeganError, match="32, 40, 48"):
        G(torch.randn(1, 16), 36)
    with pytest.raises(PeganError):
        G(torch.randn(1, 16), 24)  # below the base resolution
    assert G(torch.randn(1, 16), (40, 56)).shape == (1, 3, 40, 56)  # non-square


def test_discriminator_sizes():
    D = Discriminator(32, channel_scale=1 / 32, channel_ref_resolution=256)
    with pytest.raises(PeganError, match="multiscale"):
        D(torch.randn(2, 3, 48, 48))
    Dm = Discriminator(32, channel_scale=1 / 32, channel_ref_resolution=256, multiscale=True)
    for size in [(32, 32), (48, 48), (64, 64), (40, 56), (37, 45)]:
        assert Dm(torch.randn(2, 3, *size)).shape == (2, 1)
    with pytest.raises(PeganError):
        Dm(torch.randn(2, 3, 24, 24))


# ----------------------------------------------------------------- building blocks


def _official_modconv(conv: ModulatedConv2d, x, style):
    """MMGeneration's fused formulation: per-sample weights, grouped convolution."""
    n, c, h, w = x.shape
    s = conv.style_modulation(style).view(n, 1, c, 1, 1)
    weight = conv.weight * conv.scale * s  # [N, out, in, k, k]
    if conv.demodulate:
        weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(n, -1, 1, 1, 1)
    k, out = conv.kernel_size, conv.out_channels
    if conv.upsample == "deconv":
        weight = weight.transpose(1, 2).reshape(n * c, out, k, k)
        y = F.conv_transpose2d(x.reshape(1, n * c, h, w), weight, stride=2, groups=n)
        return conv.blur(y.reshape(n, out, *y.shape[-2:]))
    pad = k // 2 if conv.padding else 0
    if conv.upsample == "bilinear-conv":
        size = (2 * h, 2 * w) if conv.padding else (2 * h + 4, 2 * w + 4)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
    y = F.conv2d(x.reshape(1, -1, *x.shape[-2:]), weight.reshape(n * out, c, k, k),
                 padding=pad, groups=n)
    y = y.reshape(n, out, *y.shape[-2:])
    if conv.upsample == "conv-bilinear":
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
    return y


@pytest.mark.parametrize("upsample,padding", [(None, True), (None, False), ("deconv", True),
                                              ("conv-bilinear", True), ("bilinear-conv", True),
                                              ("bilinear-conv", False)])
def test_modulated_conv_matches_the_fused_official_form(upsample, padding):
    torch.manual_seed(0)
    conv = ModulatedConv2d(5, 7, 3, 6, upsample=upsample, padding=padding)
    x, style = torch.randn(3, 5, 6, 6), torch.randn(3, 6)
    ours = conv(x, style)
    assert torch.allclose(ours, _official_modconv(conv, x, style), atol=1e-5)
    expected = {None: 6 if padding else 4, "deconv": 12, "conv-bilinear": 12,
                "bilinear-conv": 12 if padding else 14}[upsample]
    assert ours.shape == (3, 7, expected, expected)
    if conv.demodulate:  # demodulation: unit-norm effective weights, whatever the style
        w = conv.weight[0] * conv.scale * conv.style_modulation(style)[:, None, :, None, None]
        d = torch.rsqrt(w.pow(2).sum([2, 3, 4]) + 1e-8)
        assert torch.allclose((w * d[:, :, None, None, None]).pow(2).sum([2, 3, 4]),
                              torch.ones(3, 7), atol=1e-5)


def test_upfirdn_blur_and_fir_upsampling():
    k = make_kernel([1, 3, 3, 1])
    assert k.sum().item() == pytest.approx(1.0) and k[1, 1] == pytest.approx(9 / 64)
    delta = torch.zeros(1, 1, 7, 7)
    delta[0, 0, 3, 3] = 1
    out = upfirdn2d(delta, k, pad=(1, 2))  # 7 + 3 - 4 + 1 = 7
    assert out.shape == (1, 1, 7, 7)
    assert torch.allclose(out[0, 0, 1:5, 1:5], k)  # the impulse response is the kernel
    up = UpsampleFIR([1, 3, 3, 1])
    const = torch.full((1, 2, 5, 5), 0.7)
    y = up(const)
    assert y.shape == (1, 2, 10, 10)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 0.7))  # DC gain 1
    assert y[0, 0, 0, 0] < 0.7  # the zero padding shows at the border


def test_minibatch_stddev_groups():
    x = torch.randn(6, 4, 3, 3)
    y = MinibatchStddev(group_size=4)(x)  # 4 does not divide 6: groups of 3
    assert y.shape == (6, 5, 3, 3)
    groups = x.reshape(3, 2, 4, 3, 3)  # strided groups: samples m, m + 2, m + 4
    sd = torch.sqrt(groups.var(0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))
    assert torch.allclose(y[:, 4, 0, 0], sd.repeat(3))


# --------------------------------------------------------------- latents and noise


def test_latents_mixing_truncation_and_input_is_latent():
    torch.manual_seed(0)
    G = Generator(32, randomize_noise=False, **SMALL)
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    img, lat = G(z1, return_latents=True)
    assert lat.shape == (2, G.num_latents, 16) == (2, 8, 16)
    assert torch.allclose(lat, G.mapping(z1)[:, None].expand(-1, 8, -1))
    # style mixing: the first k codes from z1, the rest from z2
    _, mixed = G([z1, z2], return_latents=True)
    from_1 = torch.isclose(mixed, G.mapping(z1)[:, None]).all(-1).all(0)
    from_2 = torch.isclose(mixed, G.mapping(z2)[:, None]).all(-1).all(0)
    k = int(from_1.sum())
    assert 1 <= k <= 7 and from_1[:k].all() and from_2[k:].all()
    # mix_prob=1 with one z draws the second code itself
    _, self_mixed = G(z1, return_latents=True, mix_prob=1.0)
    assert not torch.allclose(self_mixed[:, 0], self_mixed[:, -1])
    # input_is_latent reproduces the z path; truncation 0 collapses every z to the mean
    assert torch.allclose(G(G.mapping(z1), input_is_latent=True), img, atol=1e-6)
    mean = G.mean_latent(256)
    t0 = G(torch.randn(2, 16), truncation=0.0, truncation_latent=mean)
    assert torch.allclose(t0[0], t0[1], atol=1e-6)
    assert torch.allclose(G(z1, truncation=0.5, truncation_latent=mean, return_latents=True)[1],
                          (mean + 0.5 * (G.mapping(z1) - mean))[:, None].expand(-1, 8, -1))


def test_fixed_and_explicit_noise():
    torch.manual_seed(0)
    G = Generator(32, randomize_noise=False, **SMALL)
    for conv in G.convs:
        conv.noise_injector.weight.data.fill_(0.5)
    z = torch.randn(2, 16)
    for px in (32, 48):
        assert torch.equal(G(z, px), G(z, px))  # stored / seeded noise
        G2 = Generator(32, randomize_noise=False, **SMALL)
        G2.load_state_dict(G.state_dict())
        assert torch.equal(G(z, px), G2(z, px))  # the same in every copy (snapshots, EMA)
        noise = [torch.randn(1, 1, h, w) for h, w in G.noise_sizes(G.cells(px))]
        a, b = G(z, px, noise=noise), G(z, px, noise=[n.clone() for n in noise])
        assert torch.equal(a, b) and not torch.equal(a, G(z, px))
    G.randomize_noise = True
    assert not torch.equal(G(z), G(z))


# ------------------------------------------- translation equivariance without padding


def _shift_pair(G, shift_cells=1, cells=10, margin=24):
    """Outputs for a head input and the same input shifted by ``shift_cells`` rows (with the
    injected noises shifted accordingly); returns (out_a, out_b) aligned for comparison."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in G.modules():
            if hasattr(m, "noise_injector"):
                m.noise_injector.weight.fill_(0.3)
    head = cells + G.border
    x = torch.randn(1, G.head.out_channels, head + shift_cells, head)  # spatially i.i.d.
    w = torch.randn(1, G.style_dim)
    noise_a = [torch.randn(1, 1, h, w_) for h, w_ in G.noise_sizes((cells, cells))]
    shifts = [shift_cells] + [shift_cells * 2 ** (b + 1) for b in range(G.num_blocks)
                              for _ in range(2)]
    noise_b = [torch.roll(n, -s, dims=2) for n, s in zip(noise_a, shifts)]
    with torch.no_grad():
        a = G(w, head_input=x[:, :, :head], noise=noise_a)
        b = G(w, head_input=x[:, :, shift_cells:], noise=noise_b)
    s = shift_cells * G.step
    size = a.shape[-1]
    return (a[..., s + margin:size - margin, margin:-margin],
            b[..., margin:size - s - margin, margin:-margin])


def test_padding_free_generator_is_translation_equivariant():
    G = Generator(32, padding=False, upsample="bilinear-conv", nopad_resize="shift-equivariant",
                  **SMALL)
    a, b = _shift_pair(G)
    assert a.numel() > 100 and a.std() > 0.1  # a non-trivial interior
    assert torch.allclose(a, b, atol=1e-4)  # shifting the input shifts the output
    # the official align_corners resize changes its sampling phase across the map, so the
    # official padding-free generator is only approximately equivariant
    official = Generator(32, padding=False, upsample="bilinear-conv", **SMALL)
    official.load_state_dict(G.state_dict())
    a, b = _shift_pair(official)
    assert (a - b).abs().max() > 1e-2


# --------------------------------------------------------- gradients and training step


def _all_grads_nonzero(module):
    missing = [n for n, p in module.named_parameters() if p.grad is None or not p.grad.abs().sum()]
    assert not missing, missing


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(upsample="conv-bilinear", head="spe", head_mode="expand"),
    dict(upsample="bilinear-conv", padding=False, head="csg"),
    dict(upsample="bilinear-conv", padding=False, head="const"),
])
def test_gradients_reach_every_parameter(kwargs):
    torch.manual_seed(0)
    G = Generator(32, **SMALL, **kwargs)
    D = Discriminator(32, channel_scale=1 / 32, channel_ref_resolution=256, multiscale=True)
    img = G(torch.randn(4, 16), 48)
    D(img).sum().backward()
    _all_grads_nonzero(G)
    _all_grads_nonzero(D)


@pytest.mark.parametrize("name", ["t5f", "t5k"])
def test_one_optimisation_step_at_each_scale(cfg, name):
    torch.manual_seed(0)
    spec = pconfig.resolve(cfg, name, "smoke")
    G, D, _, _ = build_models(spec)
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.99))
    d_opt = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.99))
    for px in spec.scales:
        real = torch.rand(4, 3, px, px) * 2 - 1
        g_before = copy.deepcopy(G.state_dict())
        d_before = copy.deepcopy(D.state_dict())
        fake = G(torch.randn(4, G.z_dim), px, mix_prob=0.9)
        d_loss = F.softplus(D(fake.detach())).mean() + F.softplus(-D(real)).mean()
        d_opt.zero_grad()
        d_loss.backward()
        d_opt.step()
        g_loss = F.softplus(-D(G(torch.randn(4, G.z_dim), px))).mean()
        g_opt.zero_grad()
        g_loss.backward()
        g_opt.step()
        assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
        assert any(not torch.equal(v, D.state_dict()[k]) for k, v in d_before.items())
        assert any(not torch.equal(v, G.state_dict()[k]) for k, v in g_before.items())

"""Importing the released MMGeneration SinGAN checkpoints + .pkl fixed noises (issue 8).

The oracle is written from ``official-implementation.md`` sections 7, 8 and 10.6 alone:
:func:`official_state` builds an official-format state dict from the key/shape tables (random
values), :func:`fake_pkl` the ``.pkl`` payload (``fixed_noises`` / ``noise_weights`` /
``curr_stage``), and :func:`official_forward` is the official multi-scale forward pass (BGR,
eval-mode BatchNorm) operating directly on those tensors. None of them uses pegan's modules.
"""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pegan import config as pconfig
from pegan.convert import mmgen, singan
from pegan.errors import PeganError
from pegan.models.singan import Discriminator, Generator, sample
from pegan.snapshot import load_generator

torch.set_num_threads(1)

PAD = 5
# case -> official config facts (section 7): experiment, block-0 input channels, grid, stage-0
# noise channels, later noise channels, padding (zero | interp | conv), D without BN, file stem
CASES = {
    "original": ("singan-zero-pad", 3, None, 1, 3, "zero", False, "singan_balloons_20210406_191047-8fcd94cf"),
    "interp": ("singan-no-pad", 3, None, 1, 1, "interp", False,
               "singan_interp-pad_balloons_20210406_180014-96f51555"),
    "interp-nobn": ("singan-no-pad-disc-nobn", 3, None, 1, 1, "interp", True,
                    "singan_interp-pad_disc-nobn_fis_20210406_175720-9428517a"),
    "csg": ("singan-csg", 2, "csg", 2, 1, "conv", False, "singan_csg_fis_20210406_175532-f0ec7b61"),
    "spe4-fish": ("singan-spe4", 8, "spe4", 1, 1, "conv", False,
                  "singan_spe-dim4_fish_20210406_175933-f483a7e3"),
    "spe4-bohemian": ("singan-spe4", 8, "spe4", 8, 1, "conv", False,
                      "singan_spe-dim4_bohemian_20210406_175820-6e484a35"),
    "spe8": ("singan-spe8", 16, "spe8", 16, 1, "conv", False, "singan_spe-dim8_bohemian_mmagic"),
    "spe8-master": ("singan-spe8", 8, "spe4", 8, 1, "conv", False,
                    "singan_spe-dim8_bohemian_20210406_175858-7faa50f3"),
}
SMALL = [(12, 14), (15, 18), (19, 23), (24, 29), (30, 36)]   # 5 stages: stage 4 has 64 channels


def width(s: int) -> int:
    return min(32 * 2 ** (s // 4), 128)


@pytest.fixture(scope="module")
def cfg():
    return pconfig.load()


# ------------------------------------------------------------------ oracle: key tables


def official_state(case: str, num_blocks: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Official ``state_dict`` (section 10.6): ``generator.blocks.{s}.{head,body.block{1,2,3},
    tail}.{conv,bn}.*`` and the same under ``discriminator.``."""
    _, in0, grid, _, _, _, nobn, _ = CASES[case]
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}

    def conv(key, cout, cin, bias):
        sd[f"{key}.conv.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) / math.sqrt(9 * cin)
        if bias:
            sd[f"{key}.conv.bias"] = torch.randn(cout, generator=gen) * 0.1

    def bn(key, c):
        sd[f"{key}.bn.weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
        sd[f"{key}.bn.bias"] = 0.1 * torch.randn(c, generator=gen)
        sd[f"{key}.bn.running_mean"] = 0.1 * torch.randn(c, generator=gen)
        sd[f"{key}.bn.running_var"] = 0.5 + torch.rand(c, generator=gen)
        sd[f"{key}.bn.num_batches_tracked"] = torch.tensor(2000)

    for s in range(num_blocks):
        ch = width(s)
        for part, cin, cout, norm in (("generator", in0 if s == 0 else 3, 3, True),
                                      ("discriminator", 3, 1, not nobn)):
            p = f"{part}.blocks.{s}"
            conv(f"{p}.head", ch, cin, bias=not norm)
            if norm:
                bn(f"{p}.head", ch)
            for i in (1, 2, 3):
                conv(f"{p}.body.block{i}", ch, ch, bias=not norm)
                if norm:
                    bn(f"{p}.body.block{i}", ch)
            conv(f"{p}.tail", cout, ch, bias=True)
    if grid and grid.startswith("spe"):
        sd["generator.head_position_encode._float_tensor"] = torch.zeros(1)
    return sd


def fake_pkl(case: str, sizes, seed: int = 1) -> dict:
    """The ``.pkl`` payload as ``PickleDataHook`` writes it: numpy arrays, python numbers."""
    _, _, _, ch0, ch, padding, _, _ = CASES[case]
    rng = np.random.default_rng(seed)
    pad = 2 * PAD if padding == "interp" else 0
    noises = [rng.standard_normal((1, ch0, sizes[0][0] + pad, sizes[0][1] + pad)).astype(np.float32)]
    noises += [np.zeros((1, ch, h + pad, w + pad), np.float32) for h, w in sizes[1:]]
    weights = [1] + [float(w) for w in 0.1 * rng.uniform(0.2, 1.0, len(sizes) - 1)]
    return {"fixed_noises": noises, "noise_weights": weights, "curr_stage": len(sizes) - 1}


# ------------------------------------------------------------------ oracle: forward pass


def official_grid(kind: str, h: int, w: int) -> torch.Tensor:
    """Section 8: CSG [1, 2, h, w]; SPE [1, 2d, h, w] from the float32 fairseq table,
    positions 1..w (channels [0, d)) and 1..h (channels [d, 2d))."""
    if kind == "csg":
        gy, gx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        return torch.stack((2 * gx / max(w - 1.0, 1.0) - 1, 2 * gy / max(h - 1.0, 1.0) - 1))[None]
    d = int(kind[3:])
    half = d // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(np.log(10000) / (half - 1)))
    table = torch.arange(512, dtype=torch.float)[:, None] * freq[None]
    table = torch.cat([torch.sin(table), torch.cos(table)], 1)
    table[0] = 0
    x = table[1: w + 1].t()[:, None, :].expand(d, h, w)
    y = table[1: h + 1].t()[:, :, None].expand(d, h, w)
    return torch.cat([x, y])[None]


def official_block(sd, prefix: str, x: torch.Tensor, conv_pad: int, out_act) -> torch.Tensor:
    for name in ("head", "body.block1", "body.block2", "body.block3"):
        k = f"{prefix}.{name}"
        x = F.conv2d(x, sd[f"{k}.conv.weight"], sd.get(f"{k}.conv.bias"), padding=conv_pad)
        if f"{k}.bn.weight" in sd:
            x = F.batch_norm(x, sd[f"{k}.bn.running_mean"], sd[f"{k}.bn.running_var"],
                             sd[f"{k}.bn.weight"], sd[f"{k}.bn.bias"], training=False, eps=1e-5)
        x = F.leaky_relu(x, 0.2)
    x = F.conv2d(x, sd[f"{prefix}.tail.conv.weight"], sd[f"{prefix}.tail.conv.bias"], padding=conv_pad)
    return out_act(x)


def official_forward(sd, case: str, pkl: dict, noises) -> torch.Tensor:
    """Section 7: the official multi-scale forward pass (BGR) given per-stage noises."""
    _, _, grid, _, _, padding, _, _ = CASES[case]
    fixed = [torch.from_numpy(z) for z in pkl["fixed_noises"]]
    cut = 2 * PAD if padding == "interp" else 0
    n = noises[0].shape[0]
    g_res = torch.zeros(n, 3, fixed[0].shape[-2] - cut, fixed[0].shape[-1] - cut)
    up = dict(mode="bicubic", align_corners=True)
    for s, noise_ in enumerate(noises):
        if grid and s == 0:
            noise_ = noise_ + official_grid(grid, *fixed[0].shape[-2:])
        if padding == "zero":
            noise_, g_pad = F.pad(noise_, (PAD,) * 4), F.pad(g_res, (PAD,) * 4)
        elif padding == "interp":
            g_pad = F.interpolate(g_res, size=noise_.shape[-2:], **up)
        else:
            g_pad = g_res
        w = pkl["noise_weights"][s]
        inp = noise_ * w if (grid and s == 0) else noise_ * w + g_pad
        g_res = official_block(sd, f"generator.blocks.{s}", inp, int(padding == "conv"), torch.tanh) + g_res
        if s + 1 < len(noises):
            h, w_ = fixed[s + 1].shape[-2:]
            g_res = F.interpolate(g_res, size=(h - cut, w_ - cut), **up)
    return g_res


def official_disc(sd, x: torch.Tensor, stage: int) -> torch.Tensor:
    return official_block(sd, f"discriminator.blocks.{stage}", x, 0, lambda t: t)


def save_release(tmp_path, case, sd, pkl):
    """A released pair: ``<stem>.pth`` (meta + state_dict) and ``<stem>.pkl`` (plain pickle)."""
    stem = CASES[case][-1]
    torch.save({"meta": {"iter": 22000, "exp_name": stem}, "state_dict": sd}, tmp_path / f"{stem}.pth")
    with open(tmp_path / f"{stem}.pkl", "wb") as f:
        pickle.dump(pkl, f)
    return tmp_path / f"{stem}.pth"


def convert(case, sd, pkl, **kw):
    variant = singan.choose_variant(sd, singan.check_pkl(pkl), CASES[case][-1], None)
    g_kw, g_state, d_kw, d_state = singan.convert_singan(sd, singan.check_pkl(pkl), variant, **kw)
    G = Generator(**g_kw).eval()
    G.load_state_dict(g_state)
    D = Discriminator(**d_kw).eval()
    D.load_state_dict(d_state)
    return variant, G, D


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("case", list(CASES))
def test_official_keys_load_and_variant_is_detected(cfg, case):
    blocks = 9 if case == "original" or case == "interp" else 11   # balloons 8, fish/bohemian 10
    sizes = [(10 + 2 * s, 12 + 2 * s) for s in range(blocks)]
    sd, pkl = official_state(case, blocks), singan.check_pkl(fake_pkl(case, sizes))
    variant = singan.choose_variant(sd, pkl, CASES[case][-1], None)
    assert variant.experiment == CASES[case][0]
    assert variant.experiment in pconfig.load()["experiments"]
    g_kw, g_state, d_kw, d_state = singan.convert_singan(sd, pkl, variant)
    with torch.device("meta"):
        G, D = Generator(**g_kw), Discriminator(**d_kw)
    G.load_state_dict(g_state, strict=True, assign=True)   # no missing / unexpected keys
    D.load_state_dict(d_state, strict=True, assign=True)
    n_g = sum(k.startswith("generator.") for k in sd) - ("generator." + singan.SPE_BUFFER in sd)
    assert len(g_state) == n_g + blocks + 1   # + one fixed noise per stage + the amplitudes
    assert len(d_state) == sum(k.startswith("discriminator.") for k in sd)
    assert G.stage_sizes == sizes and G.blocks[8].head[0].out_channels == 128
    assert mmgen.official_to_pegan_key  # StyleGAN2 renaming untouched
    if case == "spe8-master":   # the dim8 copy bug: 8 input channels = an SPE of dim 4
        assert variant.spe_dim == 4
        assert singan.choose_variant(sd, pkl, "x.pth", None).experiment == "singan-spe4"
    if case == "spe4-fish":
        assert variant.first_noise_channels == 1 and G.fixed_noise_0.shape[1] == 1


@pytest.mark.parametrize("case", list(CASES))
def test_matches_official_forward_and_is_rgb(case):
    sd, pkl = official_state(case, len(SMALL)), fake_pkl(case, SMALL)
    _, G, D = convert(case, sd, pkl)
    _, G_bgr, _ = convert(case, sd, pkl, bgr_to_rgb=False)    # official channel order
    with torch.no_grad():
        fixed = [torch.from_numpy(z) for z in pkl["fixed_noises"]]
        ref = official_forward(sd, case, pkl, fixed)
        recon = G(1, mode="recon")
        assert (ref[:, 0] - ref[:, 2]).abs().max() > 1e-2     # channel order is observable
        torch.testing.assert_close(recon, ref.flip(1), atol=2e-5, rtol=0)
        torch.testing.assert_close(G_bgr(1, mode="recon"), ref, atol=2e-5, rtol=0)
        # random mode: the same noise draws (3-channel noise is colour: reversed for BGR)
        gen = torch.Generator().manual_seed(7)
        noises = [torch.randn(2, G.stage_noise_channels(s), *G.noise_size(*G.stage_sizes[s]),
                              generator=gen) for s in range(G.num_stages)]
        ref = official_forward(sd, case, pkl, [z.flip(1) if z.shape[1] == 3 and s else z
                                               for s, z in enumerate(noises)])
        out = G(2, generator=torch.Generator().manual_seed(7))
        torch.testing.assert_close(out, ref.flip(1), atol=2e-5, rtol=0)
        # the discriminator takes RGB
        x = torch.randn(1, 3, 20, 22)
        torch.testing.assert_close(D(x, 4), official_disc(sd, x.flip(1), 4), atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_export_then_reimport_is_identical(case):
    sd, pkl = official_state(case, 6), fake_pkl(case, SMALL + [(36, 43)])
    variant, G, D = convert(case, sd, pkl)
    ckpt, pkl2 = singan.export_singan(G, D)
    assert set(ckpt["state_dict"]) == set(sd)
    for k, v in sd.items():
        if k != "generator." + singan.SPE_BUFFER:
            assert torch.equal(ckpt["state_dict"][k], v), k
    for a, b in zip(pkl2["fixed_noises"], pkl["fixed_noises"], strict=True):
        assert np.array_equal(a, b)
    np.testing.assert_allclose(pkl2["noise_weights"], pkl["noise_weights"], rtol=1e-7)
    assert pkl2["curr_stage"] == pkl["curr_stage"]
    _, G2, D2 = convert(case, ckpt["state_dict"], pkl2)
    for a, b in ((G, G2), (D, D2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("case", ["interp", "spe4-fish"])
def test_imported_snapshot_samples_with_the_released_fixed_noises(cfg, tmp_path, case):
    sd, pkl = official_state(case, len(SMALL)), fake_pkl(case, SMALL)
    path = save_release(tmp_path, case, sd, pkl)
    out = tmp_path / "model.pt"
    # the .pkl is found beside the .pth; SinGAN vs StyleGAN2 and the variant are detected
    assert mmgen.import_mmgen(path, out, config=cfg) == CASES[case][0]
    G, meta = load_generator(out)
    assert meta["arch"] == "singan" and meta["extra"]["imported_from"]["pkl"].endswith(".pkl")
    recon = sample(out, mode="recon", seed=0)
    assert torch.equal(recon, sample(out, mode="recon", seed=1))           # deterministic
    fixed = [torch.from_numpy(z) for z in pkl["fixed_noises"]]
    torch.testing.assert_close(recon, official_forward(sd, case, pkl, fixed).flip(1),
                               atol=2e-5, rtol=0)
    assert not torch.equal(sample(out, seed=0), sample(out, seed=1))       # random mode is random
    for s, size in enumerate(SMALL):                                       # every stage generates
        assert G(1, stage=s).shape == (1, 3, *size)
    # the fixed noises drive the reconstruction: another .pkl, another reconstruction
    pkl2 = fake_pkl(case, SMALL, seed=5)
    with open(tmp_path / "other.pkl", "wb") as f:
        pickle.dump(pkl2, f)
    mmgen.import_mmgen(path, tmp_path / "m2.pt", pkl=tmp_path / "other.pkl", config=cfg)
    recon2 = sample(tmp_path / "m2.pt", mode="recon")
    assert (recon2 - recon).abs().max() > 1e-3
    torch.testing.assert_close(recon2, official_forward(
        sd, case, pkl2, [torch.from_numpy(z) for z in pkl2["fixed_noises"]]).flip(1), atol=2e-5, rtol=0)


def _error(fn) -> str:
    with pytest.raises(PeganError) as info:
        fn()
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_errors_name_the_offending_key_or_file(cfg, tmp_path):
    case = "csg"
    sd, pkl = official_state(case, len(SMALL)), fake_pkl(case, SMALL)
    variant = singan.choose_variant(sd, singan.check_pkl(pkl), "", None)
    run = lambda state, p=pkl: singan.convert_singan(state, singan.check_pkl(p), variant)  # noqa: E731
    missing = {k: v for k, v in sd.items() if k != "generator.blocks.2.tail.conv.bias"}
    assert "1 missing: blocks.2.tail.conv.bias" in _error(lambda: run(missing))
    bad = dict(sd, **{"generator.blocks.1.head.conv.weight": torch.zeros(32, 4, 3, 3)})
    assert "shape mismatches: blocks.1.head.conv.weight [32, 4, 3, 3] != [32, 3, 3, 3]" in \
        _error(lambda: run(bad))
    extra = dict(sd, **{"generator.blocks.1.extra.weight": torch.zeros(1)})
    assert "unexpected: blocks.1.extra.weight" in _error(lambda: run(extra))
    more = dict(sd, **{k.replace("blocks.4.", "blocks.5."): v for k, v in sd.items()
                       if ".blocks.4." in k})                     # 6 blocks, 5 fixed noises
    assert "unexpected" in _error(lambda: run(more))
    noises = list(pkl["fixed_noises"])
    noises[1] = np.zeros((1, 3, 15, 18), np.float32)            # 3-ch noise: not PE-SinGAN's
    assert "fixed_noises[1] is [1, 3, 15, 18], singan-csg expects [1, 1, 15, 18]" in \
        _error(lambda: run(sd, dict(pkl, fixed_noises=noises)))
    assert "expected keys" in _error(lambda: singan.check_pkl({"fixed_noises": []}))
    assert "curr_stage" in _error(lambda: singan.check_pkl(dict(pkl, curr_stage=2)))
    path = save_release(tmp_path, case, sd, pkl)
    assert "--pkl" in _error(lambda: mmgen.import_mmgen(path, tmp_path / "x.pt", pkl=tmp_path / "no.pkl",
                                                        config=cfg))
    assert "does not fit" in _error(lambda: mmgen.import_mmgen(path, tmp_path / "x.pt", "singan-spe4",
                                                               config=cfg))
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"fixed_noises": [print]}))
    assert "not allowed" in _error(lambda: singan.load_pkl(evil))


def test_default_generator_is_unchanged_by_the_new_switch():
    kw = dict(stage_sizes=SMALL[:2], padding="interp", head="spe", spe_dim=4)
    assert Generator(**kw).fixed_noise_0.shape[1] == 8
    assert Generator(**kw, first_noise_channels=1).fixed_noise_0.shape[1] == 1
    with pytest.raises(ValueError):
        Generator(**kw, first_noise_channels=3)

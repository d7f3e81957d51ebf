"""Importing released MMGeneration checkpoints (issue 8).

The oracle is written from ``official-implementation.md`` alone: :func:`official_state`
builds an official-format state dict from the key/shape tables of section 10 (random values),
and :func:`official_forward` is the official forward pass of section 2 / 8 operating directly
on those tensors. Neither uses pegan's modules.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pegan import config as pconfig
from pegan.convert import mmgen
from pegan.errors import PeganError
from pegan.models.stylegan2 import Discriminator, Generator, discriminator_kwargs, generator_kwargs
from pegan.snapshot import load_generator

torch.set_num_threads(1)

# row -> (head, no_pad, deconv, G channel multiplier, D channel multiplier, multiscale D, 512 G)
ROWS = {
    "a": ("const", False, True, 2, 2, False, False),
    "b": ("const", False, True, 2, 2, False, True),
    "c": ("const", False, False, 2, 2, True, False),
    "d": ("csg", False, False, 2, 2, True, False),
    "e": ("spe", False, False, 2, 2, True, False),
    "f": ("spe", False, False, 2, 2, True, False),
    "g": ("spe", False, False, 1, 1, True, False),
    "h": ("const", True, False, 2, 2, True, False),
    "i": ("csg", True, False, 2, 2, True, False),
    "j": ("spe", True, False, 2, 2, True, False),
    "k": ("spe", True, False, 2, 2, True, False),
    "896": ("spe", False, False, 2, 2, True, False),
    "1024": ("spe", False, False, 1, 2, True, False),
}
FIR = torch.outer(torch.tensor([1., 3., 3., 1.]), torch.tensor([1., 3., 3., 1.])) / 64 * 4


def spec_of(cfg, row):
    return pconfig.resolve(cfg, mmgen.TABLE5_EXPERIMENTS[row], "paper")


# --------------------------------------------------------------- oracle: the key tables


def _blocks(cm: int, big: bool) -> list[tuple[int, int]]:
    """(Cin, Cout) per up-block, section 10.3."""
    if cm == 2:
        blocks = [(512, 512)] * 4 + [(512, 256), (256, 128)]
    else:
        blocks = [(512, 512)] * 3 + [(512, 256), (256, 128), (128, 64)]
    return blocks + [(128, 64)] if big else blocks


def _d_blocks(cm: int, big: bool) -> tuple[int, list[tuple[int, int]]]:
    """(convs.0 width, ResBlock (in, out) list), section 10.5."""
    if big:
        return 64, [(64, 128), (128, 256), (256, 512)] + [(512, 512)] * 4
    if cm == 2:
        return 128, [(128, 256), (256, 512)] + [(512, 512)] * 4
    return 64, [(64, 128), (128, 256), (256, 512)] + [(512, 512)] * 3


def official_state(row: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """An official-format checkpoint state dict (prefixed keys) for a Table 5 row."""
    head, no_pad, deconv, cm, dcm, ms, big = ROWS[row]
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape, scale=1.0, offset=0.0):
        return torch.randn(*shape, generator=gen) * scale + offset

    def modconv(prefix, cout, cin, k):
        g[f"{prefix}.weight_orig"] = rnd(1, cout, cin, k, k)
        g[f"{prefix}.style_modulation.linear.weight_orig"] = rnd(cin, 512)
        g[f"{prefix}.style_modulation.bias"] = rnd(cin, scale=0.1, offset=1.0)

    def styleconv(prefix, cout, cin):
        modconv(f"{prefix}.conv", cout, cin, 3)
        g[f"{prefix}.noise_injector.weight"] = rnd(1, scale=0.3)
        g[f"{prefix}.activate.bias"] = rnd(cout, scale=0.1)

    def torgb(prefix, cin, up):
        modconv(f"{prefix}.conv", 3, cin, 1)
        g[f"{prefix}.bias"] = rnd(1, 3, 1, 1, scale=0.1)
        if up:
            g[f"{prefix}.upsample.kernel"] = FIR.clone()

    g: dict[str, torch.Tensor] = {}
    for i in range(1, 9):
        g[f"style_mapping.{i}.linear.weight_orig"] = rnd(512, 512)
        g[f"style_mapping.{i}.bias"] = rnd(512, scale=0.1)
    hs = 6 if no_pad else 4
    if head == "const":
        g["constant_input.input"] = rnd(1, 512, hs, hs)
    elif head == "spe":
        g["head_pos_enc._float_tensor"] = torch.empty(1)
    styleconv("conv1", 512, 2 if head == "csg" else 512)
    torgb("to_rgb1", 512, up=False)
    noises = [4]
    for b, (cin, cout) in enumerate(_blocks(cm, big)):
        styleconv(f"convs.{2 * b}", cout, cin)
        if deconv:
            g[f"convs.{2 * b}.conv.blur.kernel"] = FIR.clone()
        styleconv(f"convs.{2 * b + 1}", cout, cout)
        torgb(f"to_rgbs.{b}", cout, up=True)
        res = 2 ** (b + 3)
        noises += [res + 2 if no_pad else res, res]
    for i, n in enumerate(noises):
        g[f"injected_noise_{i}"] = rnd(1, 1, n, n)

    d: dict[str, torch.Tensor] = {}
    c0, blocks = _d_blocks(dcm, big)
    d["convs.0.0.conv.weight_orig"] = rnd(c0, 3, 1, 1)
    d["convs.0.1.bias"] = rnd(c0, scale=0.1)
    for k, (cin, cout) in enumerate(blocks, start=1):
        d[f"convs.{k}.conv1.0.conv.weight_orig"] = rnd(cin, cin, 3, 3)
        d[f"convs.{k}.conv1.1.bias"] = rnd(cin, scale=0.1)
        d[f"convs.{k}.conv2.0.kernel"] = FIR.clone() / 4
        d[f"convs.{k}.conv2.1.conv.weight_orig"] = rnd(cout, cin, 3, 3)
        d[f"convs.{k}.conv2.2.bias"] = rnd(cout, scale=0.1)
        d[f"convs.{k}.skip.0.kernel"] = FIR.clone() / 4
        d[f"convs.{k}.skip.1.conv.weight_orig"] = rnd(cout, cin, 1, 1)
    d["final_conv.0.conv.weight_orig"] = rnd(512, 513, 3, 3)
    d["final_conv.1.bias"] = rnd(512, scale=0.1)
    d["final_linear.0.linear.weight_orig"] = rnd(512, 2048 if ms else 8192)
    d["final_linear.0.bias"] = rnd(512, scale=0.1)
    d["final_linear.1.linear.weight_orig"] = rnd(1, 512)
    d["final_linear.1.bias"] = rnd(1, scale=0.1)

    ema = {k: (v + 0.01 * torch.randn(v.shape, generator=gen) if v.is_floating_point()
               and "kernel" not in k and "_float_tensor" not in k else v.clone())
           for k, v in g.items()}
    out = {f"generator.{k}": v for k, v in g.items()}
    out.update({f"generator_ema.{k}": v for k, v in ema.items()})
    out.update({f"discriminator.{k}": v for k, v in d.items()})
    out["gen_auxiliary_losses.0.mean_path_length"] = torch.tensor(0.0)
    return out


def save_ckpt(tmp_path, row, name=None, sd=None):
    path = tmp_path / (name or f"mspie-stylegan2_config-{row}_ffhq_256-512_test.pth")
    torch.save({"meta": {"iter": 1000, "exp_name": "test"},
                "state_dict": sd if sd is not None else official_state(row)}, path)
    return path


# ------------------------------------------------------- oracle: the official forward pass


def _modconv(x, w, sd, pre, *, demod=True, padding=1):
    weight = sd[f"{pre}.weight_orig"][0]
    cout, cin, k, _ = weight.shape
    style = F.linear(w, sd[f"{pre}.style_modulation.linear.weight_orig"] / math.sqrt(w.shape[1]))
    style = style + sd[f"{pre}.style_modulation.bias"]
    wb = weight[None] / math.sqrt(cin * k * k) * style[:, None, :, None, None]
    if demod:
        wb = wb * torch.rsqrt(wb.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8)
    n, _, h, wd = x.shape
    y = F.conv2d(x.reshape(1, n * cin, h, wd), wb.reshape(n * cout, cin, k, k),
                 padding=padding, groups=n)
    return y.reshape(n, cout, y.shape[2], y.shape[3])


def _deconv(x, w, sd, pre):
    """StyleGAN2 up-sampling modulated conv: transposed conv (stride 2), then the FIR blur
    (upfirdn2d, pad (1, 1))."""
    weight = sd[f"{pre}.weight_orig"][0]
    cout, cin, k, _ = weight.shape
    style = F.linear(w, sd[f"{pre}.style_modulation.linear.weight_orig"] / math.sqrt(w.shape[1]))
    style = style + sd[f"{pre}.style_modulation.bias"]
    wb = weight[None] / math.sqrt(cin * k * k) * style[:, None, :, None, None]
    wb = wb * torch.rsqrt(wb.pow(2).sum([2, 3, 4], keepdim=True) + 1e-8)
    n, _, h, wd = x.shape
    wt = wb.transpose(1, 2).reshape(n * cin, cout, k, k)
    y = F.conv_transpose2d(x.reshape(1, n * cin, h, wd), wt, stride=2, groups=n)
    y = y.reshape(n, cout, y.shape[2], y.shape[3])
    kernel = torch.flip(sd[f"{pre}.blur.kernel"], [0, 1])[None, None].repeat(cout, 1, 1, 1)
    return F.conv2d(F.pad(y, (1, 1, 1, 1)), kernel, groups=cout)


def _styleconv(x, w, noise, sd, pre, *, up, no_pad, deconv=False):
    pad = 0 if no_pad else 1
    if up and deconv:
        x = _deconv(x, w, sd, f"{pre}.conv")
        x = x + sd[f"{pre}.noise_injector.weight"] * noise
        return F.leaky_relu(x + sd[f"{pre}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)
    if up and no_pad:  # interpolate to 2h + 4, then a valid conv
        h, wd = x.shape[2:]
        x = F.interpolate(x, size=(2 * h + 4, 2 * wd + 4), mode="bilinear", align_corners=True)
    x = _modconv(x, w, sd, f"{pre}.conv", padding=pad)
    if up and not no_pad:  # conv, then bilinear x2
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    x = x + sd[f"{pre}.noise_injector.weight"] * noise
    return F.leaky_relu(x + sd[f"{pre}.activate.bias"].view(1, -1, 1, 1), 0.2) * math.sqrt(2)


def _upfirdn_up2(x, kernel):
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    up = F.pad(up, (2, 1, 2, 1))
    k = torch.flip(kernel, [0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(up, k, groups=c)


def _spe_table(n, dim=256):
    half = dim // 2
    freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
    pos = torch.arange(1, n + 1, dtype=torch.float)[:, None] * freq[None]
    return torch.cat([torch.sin(pos), torch.cos(pos)], dim=1)  # [n, dim], positions 1..n


def _head(sd, row, n, size):
    head, no_pad = ROWS[row][:2]
    base = 6 if no_pad else 4
    if head == "const":
        x = sd["constant_input.input"].repeat(n, 1, 1, 1)
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=True)
    if head == "csg":
        ramp = 2 * torch.arange(size, dtype=torch.float) / max(size - 1, 1) - 1
        grid = torch.stack([ramp[None, :].expand(size, size), ramp[:, None].expand(size, size)])
        return grid[None].repeat(n, 1, 1, 1)
    interp = row in ("e", "j")
    m = base if interp else size
    emb = _spe_table(m).t()  # [256, m]
    grid = torch.cat([emb[:, None, :].expand(-1, m, m), emb[:, :, None].expand(-1, m, m)])[None]
    if interp:
        grid = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=True)
    return grid.repeat(n, 1, 1, 1)


def official_forward(sd, row, z, s, noises):
    """MSStyleGANv2Generator forward (deconv2conv) at chosen_scale s, or the plain
    StyleGANv2Generator (deconv rows a, b; s = 0); BGR output."""
    no_pad, deconv = ROWS[row][1], ROWS[row][2]
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    for i in range(1, 9):
        x = F.linear(x, sd[f"style_mapping.{i}.linear.weight_orig"] * 0.01 / math.sqrt(512))
        x = F.leaky_relu(x + 0.01 * sd[f"style_mapping.{i}.bias"], 0.2) * math.sqrt(2)
    w = x
    h = _head(sd, row, z.shape[0], (6 if no_pad else 4) + s)
    h = _styleconv(h, w, noises[0], sd, "conv1", up=False, no_pad=no_pad)
    skip = _modconv(h, w, sd, "to_rgb1.conv", demod=False, padding=0) + sd["to_rgb1.bias"]
    for b in range(6):
        h = _styleconv(h, w, noises[2 * b + 1], sd, f"convs.{2 * b}", up=True, no_pad=no_pad,
                       deconv=deconv)
        h = _styleconv(h, w, noises[2 * b + 2], sd, f"convs.{2 * b + 1}", up=False, no_pad=no_pad)
        rgb = _modconv(h, w, sd, f"to_rgbs.{b}.conv", demod=False, padding=0)
        skip = rgb + sd[f"to_rgbs.{b}.bias"] + _upfirdn_up2(skip, sd[f"to_rgbs.{b}.upsample.kernel"])
    return skip


# ------------------------------------------------------------------------------ tests


def _ema(sd):
    return {k[len("generator_ema."):]: v for k, v in sd.items() if k.startswith("generator_ema.")}


@pytest.mark.parametrize("row", list(ROWS))
def test_every_row_converts_and_is_detected(cfg, row):
    sd = official_state(row)
    spec = spec_of(cfg, row)
    G, D = mmgen.convert_stylegan2(sd, spec)
    ema = _ema(sd)
    # every official generator key is consumed (only the SPE dtype carrier is dropped)
    assert len(G) == len(ema) - ("head_pos_enc._float_tensor" in ema)
    assert D is not None and len(D) == len([k for k in sd if k.startswith("discriminator.")])
    with torch.device("meta"):
        g_model = Generator(**generator_kwargs(spec))
        d_model = Discriminator(**discriminator_kwargs(spec))
    g_model.load_state_dict(G, strict=True, assign=True)
    d_model.load_state_dict(D, strict=True, assign=True)
    # detection: from the shapes, plus the file name where interp/expand are ambiguous
    rows = mmgen.candidate_rows(sd)
    assert row in rows
    hint = {"896": "config-f_ffhq_256-896", "1024": "c1_config-f_ffhq_256-1024"}.get(
        row, f"config-{row}_ffhq_256-512")
    assert mmgen.detect_config(sd, hint) == mmgen.TABLE5_EXPERIMENTS[row]
    if len(rows) > 1:
        with pytest.raises(PeganError, match="pass --experiment"):
            mmgen.detect_config(sd, "released.pth")
    else:
        assert mmgen.detect_config(sd) == mmgen.TABLE5_EXPERIMENTS[row]


def test_ambiguity_sets_are_exactly_the_identical_architectures():
    assert mmgen.candidate_rows(official_state("e")) == ["e", "f", "896"]
    assert mmgen.candidate_rows(official_state("k")) == ["j", "k"]
    sd = {k: v for k, v in official_state("g").items() if not k.startswith("discriminator.")}
    assert mmgen.candidate_rows(sd) == ["g", "1024"]


@pytest.mark.parametrize("row", ["a", "g", "i"])  # f, e, h: at 320 px in the equality test
def test_imported_snapshot_generates_at_every_scale(cfg, tmp_path, row):
    path = save_ckpt(tmp_path, row)
    out = tmp_path / "snap.pt"
    assert mmgen.import_mmgen(path, out, config=cfg) == mmgen.TABLE5_EXPERIMENTS[row]
    G, meta = load_generator(out)
    assert meta["experiment"] == mmgen.TABLE5_EXPERIMENTS[row]
    z = torch.randn(1, 512, generator=torch.Generator().manual_seed(1))
    for px in meta["spec"]["scales"]:
        with torch.no_grad():
            img = G(z, px)
        assert img.shape == (1, 3, px, px) and torch.isfinite(img).all()


@pytest.mark.parametrize("row,s", [("f", 1), ("e", 1), ("h", 1), ("a", 0), ("d", 0)])
def test_matches_official_forward_and_is_rgb(cfg, row, s):
    sd = official_state(row)
    spec = spec_of(cfg, row)
    G_state, _ = mmgen.convert_stylegan2(sd, spec)
    G_bgr, _ = mmgen.convert_stylegan2(sd, spec, bgr_to_rgb=False)
    G = Generator(**generator_kwargs(spec)).eval()
    G.load_state_dict(G_state)
    gen = torch.Generator().manual_seed(3)
    z = torch.randn(1, 512, generator=gen)
    cells = 4 + s
    noises = [torch.randn(1, 1, h, w, generator=gen) for h, w in G.noise_sizes((cells, cells))]
    ema = _ema(sd)
    with torch.no_grad():
        ours = G(z, cells * 64, noise=noises)
        ref = official_forward(ema, row, z, s, noises)
        G.load_state_dict(G_bgr)
        ours_bgr = G(z, cells * 64, noise=noises)
    assert ours.shape == ref.shape == (1, 3, cells * 64, cells * 64)
    assert ref.abs().max() > 0.1  # not a degenerate all-zero comparison
    torch.testing.assert_close(ours_bgr, ref, rtol=1e-4, atol=1e-4)  # same weights: same BGR
    torch.testing.assert_close(ours, ref.flip(1), rtol=1e-4, atol=1e-4)  # converted: RGB


def test_discriminator_takes_rgb(cfg):
    sd = official_state("g")
    spec = spec_of(cfg, "g")
    _, D_rgb = mmgen.convert_stylegan2(sd, spec)
    _, D_bgr = mmgen.convert_stylegan2(sd, spec, bgr_to_rgb=False)
    D = Discriminator(**discriminator_kwargs(spec)).eval()
    img = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        D.load_state_dict(D_rgb)
        a = D(img)
        D.load_state_dict(D_bgr)
        b = D(img.flip(1))
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_errors_list_missing_unexpected_and_misshaped_keys(cfg, tmp_path):
    sd = official_state("c")
    spec = spec_of(cfg, "c")
    bad = dict(sd)
    del bad["generator_ema.conv1.activate.bias"]
    bad["generator_ema.extra_layer.weight_orig"] = torch.zeros(3)
    bad["generator_ema.to_rgbs.0.bias"] = torch.zeros(1, 4, 1, 1)
    with pytest.raises(PeganError) as err:
        mmgen.convert_stylegan2(bad, spec)
    msg = str(err.value)
    assert "1 missing: conv1.activate.bias" in msg
    assert "1 unexpected: extra_layer.weight_orig" in msg
    assert "1 shape mismatches: to_rgbs.0.bias [1, 4, 1, 1] != [1, 3, 1, 1]" in msg
    assert "\n" not in msg
    # a checkpoint converted under the wrong experiment (C2 weights, C1 model)
    with pytest.raises(PeganError, match="shape mismatches"):
        mmgen.convert_stylegan2(sd, spec_of(cfg, "g"))
    with pytest.raises(PeganError, match="does not fit"):
        mmgen.import_mmgen(save_ckpt(tmp_path, "c"), tmp_path / "x.pt", "t5h", config=cfg)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(PeganError, match="cannot be read"):
        mmgen.import_mmgen(junk, tmp_path / "x.pt", config=cfg)
    with pytest.raises(PeganError, match="not found"):
        mmgen.import_mmgen(tmp_path / "absent.pth", tmp_path / "x.pt", config=cfg)


def test_released_folder_maps_files_to_rows_and_evaluations(cfg, tmp_path):
    from pegan.convert import released

    names = {
        "a": "stylegan2_c2_config-a_ffhq_256x256_b3x8_1100k_20210406_145127-71d9634b.pth",
        "f": "mspie-stylegan2_c2_config-f_ffhq_256-512_b3x8_1100k_20210406_144927-4f4d5391.pth",
        "896": "mspie-stylegan2_c2_config-f_ffhq_256-896_b3x8_1100k_20210406_144943-6c18ad5d.pth",
        "1024": "mspie-stylegan2_c1_config-f_ffhq_256-1024_b2x8_1600k_20210406_144716-81cbdc96.pth",
    }
    for name in [*names.values(), "singan_csg_fis_20210406_175532-f0ec7b61.pth"]:
        (tmp_path / name).touch()
    assert {r: p.name for r, p in mmgen.released_checkpoints(tmp_path).items()} == names
    assert released.checkpoint(tmp_path, "t5f-896").endswith(names["896"])
    files = released.metrics_files(cfg, "paper", tmp_path, "root", "table5", 0)
    # the final model fills the 25M columns only, at 256 (a: 256 only) and 512 px
    assert [f.split("/")[1] for f in files] == ["t2a", "t5f", "t5f"]
    assert all("/seed0/25M-" in f for f in files)
    assert {f.split("-")[1] for f in files if "/t5f/" in f} == {"256px", "512px"}
    hires = released.metrics_files(cfg, "paper", tmp_path, "root", "table5-hires", 0)
    assert [h.split("/")[1] for h in hires] == ["t5f-1024", "t5f-896"]
    assert "/seed0/final-1024px-" in hires[0] and "/seed0/final-896px-" in hires[1]
    with pytest.raises(PeganError, match="preset=paper"):
        released.metrics_files(cfg, "smoke", tmp_path, "root", "table5", 0)
    (tmp_path / "copy_config-a_ffhq_256x256.pth").touch()
    with pytest.raises(PeganError, match="keep one"):
        mmgen.released_checkpoints(tmp_path)

"""SinGAN (Shaham et al., ICCV 2019) with the positional-encoding variants of Xu et al. (2021).

A pyramid of fully convolutional generator/discriminator blocks, one per scale, trained coarse
to fine on ONE image (training: :mod:`pegan.train.singan`). Stage ``s`` turns noise (times the
stage's noise amplitude) plus the up-sampled output of stage ``s-1`` into a residual image::

    x_0 = G_0(z_0 * amp_0)                          # (+ grid in the CSG/SPE variants)
    x_s = G_s(z_s * amp_s + up(x_{s-1})) + up(x_{s-1})

The paper's variants are constructor switches (official settings: reference §7):

* ``padding='zero'``: the original SinGAN. Every block uses valid 3x3 convolutions; the noise
  and the previous image are zero-padded by 5 px (5 layers x 1 px) at the block input.
* ``padding='interp'``: "interpolation padding", the paper's *no padding*
  (``singan_interp-pad_*``): noise is drawn directly at (h+10, w+10) and the previous image
  is bicubic-resized to (h+10, w+10); valid convolutions bring it back to h x w, so no zero
  is ever seen. pegan's registry uses it for the CSG/SPE rows too, following the paper text.
* ``padding='conv'``: ``padding=1`` in every generator convolution and no head padding, which
  is what the official CSG/SPE configs actually do (mmgen issue #187); supported, not default.
* ``head='noise'`` (original) | ``'csg'`` | ``'spe'``: the Cartesian grid (2 channels) or the
  sinusoidal encoding (2 x ``spe_dim`` channels) is ADDED to the stage-0 noise, which then has
  as many channels as the grid (official ``first_fixed_noises_ch``). ``first_noise_channels=1``
  reproduces the released fish SPE-dim4 model, whose config does not set it, so 1-channel
  noise is broadcast onto the 8-channel grid; the dim8 config's ``embedding_dim=4`` copy bug
  is reproduced by importing that checkpoint with ``spe_dim=4`` (:mod:`pegan.convert.singan`).
  The experiments train with ``spe_dim`` as the registry says. The grid is built at the stage-0 input size
  (the padded size with interpolation padding), so sampling at another size or aspect ratio
  expands the SPE (positions 1..H, 1..W, top-left anchored) and re-spans the CSG over [-1, 1].

Noise channels: stage 0 draws 1 channel (broadcast over RGB) with the noise head, as both
official models; later stages draw ``noise_channels`` channels: 3 in the original SinGAN
(``padding='zero'``, ``head='noise'``), 1 in the official PE-SinGAN (every other variant).

Widths: the official 32 channels per block (x2 every 4 stages, at most 128) times the
preset's ``capacity.channel_scale``, at least 16 (:func:`widths`; the paper preset is official).

The fixed reconstruction noises (random at stage 0, zeros after) and the noise amplitudes are
buffers of :class:`Generator`, so a snapshot holds everything :func:`sample` needs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from pegan import encodings
from pegan.errors import PeganError
from pegan.nn.padding import SINGAN_PADDINGS, conv_padding, zero_pad

KERNEL = 3
MIN_WIDTH = 16          # narrowest block a preset may scale SinGAN down to


def stage_channels(stage: int, base_channels: int = 32, max_channels: int = 128) -> int:
    """Official width of stage `stage`: 32 * 2^floor(s/4), capped at 128."""
    return min(base_channels * 2 ** (stage // 4), max_channels)


def pyramid_sizes(height: int, width: int, *, max_size: int, min_size: int,
                  scale_factor: float = 0.75) -> list[tuple[int, int]]:
    """(h, w) of every stage, coarsest first, as the official SinGAN pyramid.

    The image is first shrunk so that its longer side is at most `max_size`; the number of
    stages comes from `scale_factor` (0.75), and the actual factor is then adjusted so that
    the coarsest shorter side is `min_size`.
    """
    if min(height, width) < 1:
        raise PeganError(f"SinGAN image of size {height}x{width} is empty")
    num_scales = math.ceil(math.log(min_size / min(height, width)) / math.log(scale_factor)) + 1
    scale_to_stop = math.ceil(math.log(min(max_size, max(height, width)) / max(height, width))
                              / math.log(scale_factor))
    stop = num_scales - scale_to_stop
    top = min(max_size / max(height, width), 1.0)
    top_h, top_w = int(height * top + 0.5), int(width * top + 0.5)
    if stop <= 0 or min(top_h, top_w) <= min_size:
        return [(top_h, top_w)]
    factor = (min_size / min(top_h, top_w)) ** (1.0 / stop)
    return [(int(top_h * factor ** (stop - i) + 0.5), int(top_w * factor ** (stop - i) + 0.5))
            for i in range(stop + 1)]


def grid_channels(head: str, spe_dim: int) -> int:
    """Channels of the stage-0 input grid: 1 (noise) or the registered encoding's."""
    return 1 if head == "noise" else encodings.channels(head, spe_dim)


class ConvBlock(nn.Sequential):
    """conv 3x3 (no bias before a norm) + optional BatchNorm + LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, padding: int, norm: bool) -> None:
        super().__init__(nn.Conv2d(cin, cout, KERNEL, padding=padding, bias=not norm))
        if norm:
            self.append(nn.BatchNorm2d(cout))
        self.append(nn.LeakyReLU(0.2))


def _init_weights(module: nn.Module) -> None:
    """Official init: conv weights N(0, 0.02), BatchNorm weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class GeneratorBlock(nn.Module):
    """One stage: head conv, `num_layers - 2` body convs (BN + LReLU), tail conv + tanh."""

    def __init__(self, in_channels: int, channels: int, num_layers: int, conv_pad: int) -> None:
        super().__init__()
        self.head = ConvBlock(in_channels, channels, conv_pad, norm=True)
        self.body = nn.Sequential(*[ConvBlock(channels, channels, conv_pad, norm=True)
                                    for _ in range(num_layers - 2)])
        self.tail = nn.Sequential(nn.Conv2d(channels, 3, KERNEL, padding=conv_pad), nn.Tanh())
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


class DiscriminatorBlock(nn.Module):
    """One stage's patch critic: 5 valid 3x3 convs (norm + LReLU), a 1-channel score map."""

    def __init__(self, channels: int, num_layers: int, norm: bool) -> None:
        super().__init__()
        self.head = ConvBlock(3, channels, 0, norm)
        self.body = nn.Sequential(*[ConvBlock(channels, channels, 0, norm)
                                    for _ in range(num_layers - 2)])
        self.tail = nn.Conv2d(channels, 1, KERNEL)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Official inter-scale resize: bicubic, align_corners=True (a no-op at the same size)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=True)


def _randn(shape: Sequence[int], generator: torch.Generator | None,
           device: torch.device) -> torch.Tensor:
    """N(0, 1) noise drawn from `generator` (on its own device), then moved to `device`."""
    if generator is None:
        return torch.randn(*shape, device=device)
    return torch.randn(*shape, generator=generator, device=generator.device).to(device)


class Generator(nn.Module):
    """The multi-scale SinGAN generator with its fixed noises and noise amplitudes."""

    def __init__(
        self,
        stage_sizes: Sequence[Sequence[int]],   # (h, w) per stage, coarsest first
        padding: str = "zero",        # zero (original) | interp (paper: no padding) | conv (official PE configs)
        head: str = "noise",          # noise (original) | csg | spe: grid added to the stage-0 noise
        spe_dim: int = 4,             # SPE embedding dim (grid has 2 x spe_dim channels); paper: 4 and 8
        spe_centered: bool = False,   # False: official top-left-anchored SPE; True: centred grid
        noise_channels: int = 3,      # noise channels after stage 0: 3 original SinGAN, 1 PE-SinGAN
        base_channels: int = 32,      # official width of stages 0-3 (doubles every 4 stages)
        max_channels: int = 128,      # official width cap
        num_layers: int = 5,          # convs per block (official 5)
        first_noise_channels: int | None = None,  # stage-0 noise channels; None: as the block-0 input
                                      # (official first_fixed_noises_ch); 1: the released fish
                                      # SPE-dim4 model (1-ch noise broadcast onto the grid)
    ) -> None:
        if padding not in SINGAN_PADDINGS:
            raise ValueError(f"padding must be one of {SINGAN_PADDINGS}, got {padding!r}")
        encodings.check_head(head, "noise", "SinGAN")
        super().__init__()
        self.stage_sizes = [tuple(int(v) for v in s) for s in stage_sizes]
        self.padding, self.head = padding, head
        self.spe_dim, self.spe_centered = spe_dim, spe_centered
        self.noise_channels = noise_channels
        self.pad = (KERNEL - 1) // 2 * num_layers      # 5 px for 5 layers
        conv_pad = conv_padding(KERNEL, padding == "conv")
        first_in = 3 if head == "noise" else grid_channels(head, spe_dim)
        if first_noise_channels not in (None, 1, grid_channels(head, spe_dim)):
            raise ValueError(f"first_noise_channels must be 1 or {grid_channels(head, spe_dim)} "
                             f"(broadcast onto the stage-0 input), got {first_noise_channels}")
        self.first_noise_channels = first_noise_channels
        self.blocks = nn.ModuleList(
            GeneratorBlock(first_in if s == 0 else 3, stage_channels(s, base_channels, max_channels),
                           num_layers, conv_pad)
            for s in range(self.num_stages))
        for s, (h, w) in enumerate(self.stage_sizes):
            nh, nw = self.noise_size(h, w)
            self.register_buffer(f"fixed_noise_{s}", torch.zeros(1, self.stage_noise_channels(s), nh, nw))
        self.register_buffer("noise_amps", torch.ones(self.num_stages))

    @property
    def num_stages(self) -> int:
        return len(self.stage_sizes)

    def stage_noise_channels(self, stage: int) -> int:
        if stage > 0:
            return self.noise_channels
        return self.first_noise_channels or grid_channels(self.head, self.spe_dim)

    def noise_size(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size of a stage's noise: drawn at the padded size with interp padding."""
        return (h + 2 * self.pad, w + 2 * self.pad) if self.padding == "interp" else (h, w)

    def fixed_noises(self) -> list[torch.Tensor]:
        return [getattr(self, f"fixed_noise_{s}") for s in range(self.num_stages)]

    def sizes_for(self, size: Sequence[int] | None = None,
                  scale: Sequence[float] | float | None = None) -> list[tuple[int, int]]:
        """Per-stage sizes for an output of `size` (h, w) px or `scale` x the training size."""
        if size is None and scale is None:
            return list(self.stage_sizes)
        H, W = self.stage_sizes[-1]
        if size is None:
            sh, sw = (scale, scale) if isinstance(scale, (int, float)) else scale
            size = (round(H * sh), round(W * sw))
        th, tw = int(size[0]), int(size[1])
        sizes = [(max(1, round(h * th / H)), max(1, round(w * tw / W))) for h, w in self.stage_sizes]
        sizes[-1] = (th, tw)
        if min(sizes[0]) < 1 or min(th, tw) < 1:
            raise PeganError(f"SinGAN output size {th}x{tw} is too small")
        return sizes

    def forward(self, n: int = 1, *, mode: str = "rand", stage: int | None = None,
                sizes: Sequence[Sequence[int]] | None = None,
                generator: torch.Generator | None = None,
                return_previous: bool = False):
        """Images [n, 3, h, w] in [-1, 1] at stage `stage` (default: the last).

        mode='rand' draws fresh noise (from `generator`) at every stage; mode='recon' uses the
        fixed noises, i.e. reconstructs the training image (training sizes only). `sizes`
        (see :meth:`sizes_for`) samples at another size or aspect ratio. With
        `return_previous`, also returns the up-sampled output of stage-1 (the input of the
        last block), which the training loop needs for the noise amplitude.
        """
        stage = self.num_stages - 1 if stage is None else stage
        sizes = [tuple(s) for s in (sizes or self.stage_sizes)]
        if mode not in ("rand", "recon"):
            raise ValueError(f"mode must be 'rand' or 'recon', got {mode!r}")
        if mode == "recon" and sizes[: stage + 1] != self.stage_sizes[: stage + 1]:
            raise PeganError("SinGAN reconstruction uses the fixed noises: training size only")
        device = self.noise_amps.device
        x = torch.zeros(n, 3, *sizes[0], device=device)
        for s in range(stage + 1):
            if s > 0:
                x = _resize(x, sizes[s])
            prev = x
            x = self.blocks[s](self._block_input(s, x, n, mode, sizes[s], generator)) + x
        return (x, prev) if return_previous else x

    def _block_input(self, s: int, x: torch.Tensor, n: int, mode: str, size: Sequence[int],
                     generator: torch.Generator | None) -> torch.Tensor:
        nh, nw = self.noise_size(*size)
        if mode == "recon":
            z = getattr(self, f"fixed_noise_{s}").expand(n, -1, -1, -1)
        else:
            z = _randn((n, self.stage_noise_channels(s), nh, nw), generator, x.device)
        if s == 0 and self.head != "noise":
            z = z + encodings.grid(self.head, nh, nw, dim=self.spe_dim,
                                   centered=self.spe_centered, device=x.device)[None]
            z = z * self.noise_amps[0]
            return zero_pad(z, self.pad) if self.padding == "zero" else z
        if self.padding == "zero":
            z, x = zero_pad(z, self.pad), zero_pad(x, self.pad)
        elif self.padding == "interp":
            x = _resize(x, (nh, nw))
        return z * self.noise_amps[s] + x


class Discriminator(nn.Module):
    """One patch critic per stage (valid convs, as the official SinGAN for every variant)."""

    def __init__(
        self,
        num_stages: int,
        disc_norm: str = "batch",     # batch (official) | none (released interp-pad disc-nobn model)
        base_channels: int = 32,
        max_channels: int = 128,
        num_layers: int = 5,
    ) -> None:
        if disc_norm not in ("batch", "none"):
            raise ValueError(f"disc_norm must be 'batch' or 'none', got {disc_norm!r}")
        super().__init__()
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(stage_channels(s, base_channels, max_channels), num_layers,
                               norm=disc_norm == "batch")
            for s in range(num_stages))

    def forward(self, x: torch.Tensor, stage: int) -> torch.Tensor:
        return self.blocks[stage](x)


# ------------------------------------------------------------------ factory + sampling


def generator_kwargs(spec, stage_sizes: Sequence[Sequence[int]] | None = None) -> dict:
    """Generator arguments of a resolved SinGAN experiment; `stage_sizes` come from the
    training image (see :func:`pyramid_sizes`) and default to a square max_size image."""
    sw = spec.switches
    if stage_sizes is None:
        s = spec.singan
        stage_sizes = pyramid_sizes(s["max_size"], s["max_size"], max_size=s["max_size"],
                                    min_size=s["min_size"], scale_factor=s.get("scale_factor", 0.75))
    original = sw["padding"] == "zero" and sw["head"] == "noise"
    return {"stage_sizes": [list(map(int, s)) for s in stage_sizes], "padding": sw["padding"],
            "head": sw["head"], "spe_dim": int(sw["spe_dim"]),
            "spe_centered": bool(sw["spe_centered"]), "noise_channels": 3 if original else 1,
            **widths(spec)}


def widths(spec) -> dict:
    """Preset capacity: the official 32 -> 128 channels x channel_scale, at least 16."""
    scale = float(spec.capacity.get("channel_scale", 1.0))
    base = max(MIN_WIDTH, round(32 * scale))
    return {"base_channels": base, "max_channels": max(base, round(128 * scale))}


def discriminator_kwargs(spec, num_stages: int | None = None) -> dict:
    if num_stages is None:
        num_stages = len(generator_kwargs(spec)["stage_sizes"])
    return {"num_stages": int(num_stages), "disc_norm": spec.switches["disc_norm"], **widths(spec)}


@torch.no_grad()
def sample(snapshot_path: str | Path, *, size: Sequence[int] | None = None,
           scale: Sequence[float] | float | None = None, n: int = 1, seed: int = 0,
           mode: str = "rand", device: str | torch.device = "cpu") -> torch.Tensor:
    """`n` images [n, 3, h, w] in [-1, 1] from a SinGAN snapshot.

    `size` = (h, w) px or `scale` = factor(s) of the training size picks another size or
    aspect ratio (default: the training size); mode='recon' reconstructs the training image
    from the saved fixed noises. Noise comes from a generator seeded with `seed`.
    """
    from pegan.snapshot import load_generator

    G, meta = load_generator(snapshot_path, device)
    if meta["arch"] != "singan":
        raise PeganError(f"{snapshot_path} is a {meta['arch']} snapshot, not a SinGAN one")
    gen = torch.Generator(device="cpu").manual_seed(int(seed))
    return G(n, mode=mode, sizes=G.sizes_for(size, scale), generator=gen)


@torch.no_grad()
def figure_panels(snapshot_path: str | Path, *, seed: int = 0,
                  wide: float = 2.0) -> list[tuple[str, torch.Tensor]]:
    """Five (title, [3, h, w] image in [-1, 1]) panels of a SinGAN snapshot: the training
    image, its reconstruction from the fixed noises, two random samples at the training size
    and one random sample `wide` x wider (another aspect ratio)."""
    from pegan.snapshot import load_generator

    G, meta = load_generator(snapshot_path, "cpu")
    gen = torch.Generator().manual_seed(int(seed))
    recon = G(1, mode="recon")[0]
    real = meta.get("extra", {}).get("real")
    samples = G(2, generator=gen)
    wide_sample = G(1, sizes=G.sizes_for(scale=(1.0, wide)), generator=gen)[0]
    h, w = G.stage_sizes[-1]
    return [("training image" if real is not None else "reconstruction",
             real if real is not None else recon),
            ("reconstruction", recon), ("sample", samples[0]), ("sample", samples[1]),
            (f"sample {h}x{wide_sample.shape[-1]}", wide_sample)]

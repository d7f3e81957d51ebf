"""Progressive growing of GANs (Karras et al., ICLR 2018) with the padding switch of Xu et al.
(2021), SWD table rows (a) "PGGAN", (b) "+ Remove padding" and (c) "+ SPE, w/o padding".

PGGAN: equalised learning rate everywhere, pixel norm after every generator conv, the
minibatch standard deviation in the last discriminator block, one level per octave from 4x4
to ``resolution`` with a fade-in of every new level (``alpha`` from 0 to 1). The networks'
progress (``level``, ``alpha``) is a pair of buffers that the training recipe sets
(:meth:`Generator.set_progress`), so a snapshot knows how far it had grown.

The official code of the paper's PGGAN rows is not public (reference §6); pegan builds them as:

* ``padding=True`` (row a): the original generator, nearest x2 up-sampling and 3x3 convs with
  zero padding 1, after a 4x4 latent projection (``z -> dense -> [C, 4, 4]``, then a 3x3 conv).
* ``padding=False`` (row b): every generator conv is valid, compensated as the official
  StyleGAN2 ``no_pad`` code: a 6x6 projection (its 3x3 conv gives 4x4) and a bilinear
  (``align_corners=True``) resize h -> 2h + 4 before each block's two valid convs, so every
  level still renders 4, 8, ..., resolution px without cropping. The fade-in skip
  (to-RGB of the previous level, nearest x2) and the discriminator keep their paddings.
* ``head='spe'|'csg'`` (row c): the grid (2 x ``spe_dim`` or 2 channels) at the head size is
  CONCATENATED with the latent projection's map before the head conv: the latent remains
  the only source of randomness and row (c) differs from row (b) by the encoding alone.
  ``head='const'`` is the plain latent projection (PGGAN has no learnable constant).

Generator protocol: ``forward(z, scale=None)`` returns ``resolution`` px images; while still
growing, the current level's output is nearest-up-sampled to it (as the official code does).
Training calls :meth:`Generator.synthesize` (native size of the current level).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pegan import encodings
from pegan.errors import PeganError
from pegan.models import num_octaves
from pegan.nn import EqualConv2d, EqualLinear, MinibatchStddev, PixelNorm
from pegan.nn.padding import conv_padding, nopad_resize, padded_head_size

LRELU_GAIN = math.sqrt(2.0)   # He gain of PGGAN's equalised layers, applied after the lrelu


def lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2) * LRELU_GAIN


def level_channels(fmap_base: int, fmap_max: int, level: int) -> int:
    """Official PGGAN width at level `level` (4 * 2^level px): min(fmap_base / res, fmap_max)."""
    return max(1, min(fmap_base // (4 * 2 ** level), fmap_max))


class _ProgressMixin:
    """Growth progress stored as buffers: `level` (0 = 4x4) and fade-in `alpha` in [0, 1]."""

    def _init_progress(self, num_levels: int) -> None:
        self.num_levels = num_levels
        self.register_buffer("level", torch.tensor(num_levels - 1, dtype=torch.long))
        self.register_buffer("alpha", torch.tensor(1.0))

    def set_progress(self, level: int, alpha: float) -> None:
        if not 0 <= level < self.num_levels:
            raise ValueError(f"level {level} outside 0..{self.num_levels - 1}")
        self.level.fill_(int(level))
        self.alpha.fill_(float(alpha))

    def _progress(self, level: int | None, alpha: float | None) -> tuple[int, float]:
        level = int(self.level) if level is None else level
        alpha = float(self.alpha) if alpha is None else alpha
        return level, (1.0 if level == 0 else alpha)


class GBlock(nn.Module):
    """One generator level: up-sample (nearest x2, or bilinear to 2h+4 without padding),
    two 3x3 convs, each + lrelu + pixel norm."""

    def __init__(self, cin: int, cout: int, padding: bool) -> None:
        super().__init__()
        self.padding = padding
        pad = conv_padding(3, padding)
        self.conv0 = EqualConv2d(cin, cout, 3, padding=pad)
        self.conv1 = EqualConv2d(cout, cout, 3, padding=pad)
        self.norm = PixelNorm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            x = nopad_resize(x, extra=4)
        x = self.norm(lrelu(self.conv0(x)))
        return self.norm(lrelu(self.conv1(x)))


class Generator(_ProgressMixin, nn.Module):
    """Progressive generator: ``forward(z, scale=None) -> [N, 3, resolution, resolution]``."""

    def __init__(
        self,
        resolution: int = 128,
        z_dim: int = 512,             # official latent size
        fmap_base: int = 16384,       # width at res r: min(fmap_base / r, fmap_max) (official 8192 x 2)
        fmap_max: int = 512,          # official width cap
        padding: bool = True,         # False: paper row (b), 6x6 head, resize to 2h+4 + valid convs
        head: str = "const",          # const: latent projection only | csg | spe: grid concatenated
        spe_dim: int = 256,           # SPE dim (grid has 2 x spe_dim channels)
        spe_centered: bool = False,   # False: official top-left-anchored SPE
    ) -> None:
        encodings.check_head(head, "const", "PGGAN")
        super().__init__()
        self.resolution, self.z_dim = resolution, z_dim
        self._init_progress(num_octaves(resolution) + 1)
        ch = [level_channels(fmap_base, fmap_max, lv) for lv in range(self.num_levels)]
        self.head_size = padded_head_size(4, padding)
        self.norm = PixelNorm()
        self.project = EqualLinear(z_dim, ch[0] * self.head_size ** 2)
        grid = encodings.projection_grid(head, self.head_size, spe_dim, spe_centered)
        self.register_buffer("grid", grid, persistent=False)
        extra = 0 if grid is None else grid.shape[0]
        self.head_conv = EqualConv2d(ch[0] + extra, ch[0], 3, padding=conv_padding(3, padding))
        self.blocks = nn.ModuleList(GBlock(ch[lv - 1], ch[lv], padding)
                                    for lv in range(1, self.num_levels))
        self.to_rgb = nn.ModuleList(EqualConv2d(c, 3, 1) for c in ch)
        self.channels = ch

    def synthesize(self, z: torch.Tensor, level: int | None = None,
                   alpha: float | None = None) -> torch.Tensor:
        """Images at the native size of `level` (default: the stored progress), faded in."""
        level, alpha = self._progress(level, alpha)
        x = self.project(self.norm(z)).view(-1, self.channels[0], self.head_size, self.head_size)
        x = self.norm(lrelu(x))
        if self.grid is not None:
            x = torch.cat([x, self.grid.expand(x.shape[0], -1, -1, -1)], dim=1)
        x = self.norm(lrelu(self.head_conv(x)))                      # [N, C, 4, 4]
        prev = x
        for lv in range(1, level + 1):
            prev, x = x, self.blocks[lv - 1](x)
        out = self.to_rgb[level](x)
        if alpha < 1.0:
            skip = F.interpolate(self.to_rgb[level - 1](prev), scale_factor=2, mode="nearest")
            out = torch.lerp(skip, out, alpha)
        return out

    def forward(self, z: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        if scale not in (None, self.resolution):
            raise PeganError(f"this PGGAN generates {self.resolution} px only, not {scale} px")
        out = self.synthesize(z)
        if out.shape[-1] != self.resolution:
            out = F.interpolate(out, size=(self.resolution,) * 2, mode="nearest")
        return out


class DBlock(nn.Module):
    """One discriminator level: two padded 3x3 convs + lrelu, then 2x2 average pooling."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, padding=1)
        self.conv1 = EqualConv2d(cin, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)


class Discriminator(_ProgressMixin, nn.Module):
    """Progressive critic at the native size of its current level (fade-in of from-RGB)."""

    def __init__(self, resolution: int = 128, fmap_base: int = 16384, fmap_max: int = 512,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        self.resolution = resolution
        self._init_progress(num_octaves(resolution) + 1)
        ch = [level_channels(fmap_base, fmap_max, lv) for lv in range(self.num_levels)]
        self.from_rgb = nn.ModuleList(EqualConv2d(3, c, 1) for c in ch)
        self.blocks = nn.ModuleList(DBlock(ch[lv], ch[lv - 1]) for lv in range(1, self.num_levels))
        self.mbstd = MinibatchStddev(group_size=mbstd_group)
        self.final_conv = EqualConv2d(ch[0] + 1, ch[0], 3, padding=1)
        self.final_dense = EqualConv2d(ch[0], ch[0], 4)               # 4x4 -> 1x1
        self.out = EqualLinear(ch[0], 1)

    def forward(self, x: torch.Tensor, level: int | None = None,
                alpha: float | None = None) -> torch.Tensor:
        level, alpha = self._progress(level, alpha)
        h = lrelu(self.from_rgb[level](x))
        if level > 0:
            h = self.blocks[level - 1](h)
            if alpha < 1.0:
                skip = lrelu(self.from_rgb[level - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(skip, h, alpha)
        for lv in range(level - 1, 0, -1):
            h = self.blocks[lv - 1](h)
        h = lrelu(self.final_conv(self.mbstd(h)))
        h = lrelu(self.final_dense(h))
        return self.out(h.flatten(1))                                # [N, 1]


def _widths(spec) -> dict:
    scale = spec.capacity.get("channel_scale", 1.0)
    return {"fmap_base": max(8, int(round(16384 * scale))),
            "fmap_max": max(8, int(round(512 * scale)))}


def generator_kwargs(spec) -> dict:
    sw = spec.switches
    return {"resolution": spec.resolution, "z_dim": int(spec.capacity.get("style_dim", 512)),
            **_widths(spec), "padding": bool(sw["padding"]), "head": sw["head"],
            "spe_dim": int(sw["spe_dim"]), "spe_centered": bool(sw["spe_centered"])}


def discriminator_kwargs(spec) -> dict:
    return {"resolution": spec.resolution, **_widths(spec)}

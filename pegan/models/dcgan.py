"""DCGAN (Radford et al., 2016) with the padding switch of Xu et al. (2021), SWD table rows
(a) "DCGAN w/ conv", (b) "+ No padding" and (c) "+ SPE, w/o padding".

Generator: ``z -> linear -> [C, 4, 4]`` (the DCGAN projection, = a 4x4 transposed conv on a
1x1 input), then one up-block per octave (BatchNorm + ReLU), the last one ending in 3
channels and tanh. The official code for the paper's DCGAN/PGGAN rows is not public
(reference §6); pegan builds them as follows.

* ``upsample='deconv'``: the original 4x4 stride-2 transposed convolutions.
  ``upsample='bilinear-conv'`` ("DCGAN w/ conv"): bilinear x2 (``align_corners=True``, as the
  official PE code) then a 3x3 convolution with zero padding 1.
* ``padding=False`` removes every zero padding of the generator, as the official StyleGAN2
  ``no_pad`` code: each block resizes h -> 2h + 2 (one valid 3x3 conv per block) so the
  output sizes stay 8, 16, ..., resolution, with no cropping. Transposed convolutions have
  implicit borders, so padding removal needs ``upsample='bilinear-conv'``.
* ``head='csg'|'spe'``: the grid (2 or 2 x ``spe_dim`` channels) is an extra spatial input
  CONCATENATED with the latent projection's 4x4 map: the latent stays the only source of
  randomness (DCGAN has no other input) and row (c) differs from row (b) by the encoding
  alone. ``head='const'`` is the plain latent projection (no extra input).

The discriminator is the standard DCGAN one (4x4 stride-2 convs with padding, BatchNorm after
the first layer, LeakyReLU 0.2) for every row: like the official no-padding StyleGAN2 code,
the ablation only touches the generator.
"""

from __future__ import annotations

import torch
from torch import nn

from pegan import encodings
from pegan.errors import PeganError
from pegan.models import num_octaves
from pegan.nn.padding import conv_padding, nopad_resize

UPSAMPLES = ("deconv", "bilinear-conv")


class UpBlock(nn.Module):
    """x2 up-sampling block: transposed conv, or bilinear resize + 3x3 conv (valid or padded)."""

    def __init__(self, cin: int, cout: int, upsample: str, padding: bool, last: bool) -> None:
        super().__init__()
        self.upsample, self.padding = upsample, padding
        if upsample == "deconv":
            self.conv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=last)
        else:
            self.conv = nn.Conv2d(cin, cout, 3, padding=conv_padding(3, padding), bias=last)
        self.post = nn.Tanh() if last else nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample == "bilinear-conv":
            # x2 (align_corners=True); without padding 2h + 2: one valid 3x3 conv eats 2 px
            x = nopad_resize(x, extra=0 if self.padding else 2)
        return self.post(self.conv(x))


class Generator(nn.Module):
    """DCGAN generator: ``forward(z, scale=None) -> [N, 3, resolution, resolution]`` in [-1, 1]."""

    def __init__(
        self,
        resolution: int = 128,
        z_dim: int = 100,                 # official DCGAN noise size
        channels: int = 1024,             # width of the 4x4 map (official base_channels), halved per octave
        upsample: str = "deconv",         # deconv (original DCGAN) | bilinear-conv (paper: "DCGAN w/ conv")
        padding: bool = True,             # False: paper row (b), resize to 2h+2 + valid convs
        head: str = "const",              # const: latent projection only | csg | spe: grid concatenated
        spe_dim: int = 256,               # SPE dim (grid has 2 x spe_dim channels)
        spe_centered: bool = False,       # False: official top-left-anchored SPE
    ) -> None:
        if upsample not in UPSAMPLES:
            raise PeganError(f"DCGAN upsample {upsample!r}: choose {', '.join(UPSAMPLES)}")
        encodings.check_head(head, "const", "DCGAN")
        if not padding and upsample == "deconv":
            raise PeganError("DCGAN without padding needs upsample: bilinear-conv "
                             "(transposed convolutions have implicit zero borders)")
        super().__init__()
        self.resolution, self.z_dim = resolution, z_dim
        octaves = num_octaves(resolution)
        self.project = nn.Linear(z_dim, channels * 16, bias=False)
        self.project_post = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU())
        grid = encodings.projection_grid(head, 4, spe_dim, spe_centered)
        self.register_buffer("grid", grid, persistent=False)
        cin = channels + (0 if grid is None else grid.shape[0])
        blocks = []
        for i in range(octaves):
            last = i == octaves - 1
            cout = 3 if last else max(channels >> (i + 1), 1)
            blocks.append(UpBlock(cin, cout, upsample, padding, last))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.channels = channels
        _init_dcgan(self)

    def forward(self, z: torch.Tensor, scale: int | None = None) -> torch.Tensor:
        if scale not in (None, self.resolution):
            raise PeganError(f"this DCGAN generates {self.resolution} px only, not {scale} px")
        x = self.project_post(self.project(z).view(-1, self.channels, 4, 4))   # [N, C, 4, 4]
        if self.grid is not None:
            x = torch.cat([x, self.grid.expand(x.shape[0], -1, -1, -1)], dim=1)
        return self.blocks(x)


class Discriminator(nn.Module):
    """DCGAN discriminator: 4x4 stride-2 convs down to 4x4, then a 4x4 conv to one logit."""

    def __init__(self, resolution: int = 128, channels: int = 1024) -> None:
        super().__init__()
        octaves = num_octaves(resolution)
        layers: list[nn.Module] = []
        cin = 3
        for i in range(octaves):
            cout = max(channels >> (octaves - 1 - i), 1)
            layers.append(nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 4))
        self.net = nn.Sequential(*layers)
        _init_dcgan(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)                       # [N, 1] logits


def _init_dcgan(module: nn.Module) -> None:
    """DCGAN init: weights N(0, 0.02), BatchNorm weights N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def _width(spec, paper_channels: int) -> int:
    return max(8, int(round(paper_channels * spec.capacity.get("channel_scale", 1.0))))


def generator_kwargs(spec) -> dict:
    sw = spec.switches
    return {"resolution": spec.resolution, "z_dim": 100, "channels": _width(spec, 1024),
            "upsample": sw["upsample"], "padding": bool(sw["padding"]), "head": sw["head"],
            "spe_dim": int(sw["spe_dim"]), "spe_centered": bool(sw["spe_centered"])}


def discriminator_kwargs(spec) -> dict:
    return {"resolution": spec.resolution, "channels": _width(spec, 1024)}

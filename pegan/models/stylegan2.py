"""StyleGAN2 generator and discriminator with every ablation switch of the paper, including
the MS-PIE generator (any output size from one set of weights) and the multi-scale
discriminator.

One class covers MMGeneration's ``StyleGANv2Generator`` (config-a/b) and
``MSStyleGANv2Generator`` (configs c-k, 896, 1024) and the Table 2 rows, selected by
constructor switches (``official-implementation.md`` sections 2, 3, 5):

=====================  ==========================================================
official               here
=====================  ==========================================================
deconv2conv=False      ``upsample="deconv"`` (transposed conv + [1,3,3,1] blur)
deconv2conv, up_after  ``upsample="conv-bilinear"`` (conv, then bilinear x2, a.c.=True)
deconv2conv, not up_a  ``upsample="bilinear-conv"`` (bilinear x2 / resize, then conv)
no_pad, interp_pad=4   ``padding=False`` (6x6 head, resize h -> 2h+4, valid convs)
head_pos_encoding      ``head="const" | "csg" | "spe"``, ``spe_dim``
interp_head            ``head_mode="interp" | "expand"``
chosen_scale s         ``forward(z, scale=(4 + s) * resolution / 4)`` (output pixels)
=====================  ==========================================================

Parameter / buffer names map to the official checkpoint keys by renaming only:

* ``style_mapping.{i}.linear.weight_orig`` -> ``style_mapping.{i}.weight``
  (any ``X.linear.weight_orig`` of an ``EqualLinearActModule`` -> ``X.weight``, including
  ``*.style_modulation`` and the discriminator's ``final_linear.{0,1}``);
* generator ``*.conv.weight_orig`` (modulated convs, [1, out, in, k, k]) -> ``*.conv.weight``;
* discriminator ``X.conv.weight_orig`` of a conv module ``X`` (``convs.0.0``,
  ``convs.k.conv1.0``, ``convs.k.conv2.1``, ``convs.k.skip.1``, ``final_conv.0``) -> ``X.weight``;
* everything else keeps its name: ``constant_input.input``, ``conv1.*``, ``to_rgb1.*``,
  ``convs.{2b, 2b+1}.*``, ``to_rgbs.{b}.*``, ``injected_noise_{i}``, ``*.noise_injector.weight``,
  ``*.activate.bias``, ``*.bias``, ``*.blur.kernel``, ``*.upsample.kernel``; the official
  SPE buffer ``head_pos_enc._float_tensor`` has no counterpart (drop it).

The official models learn BGR images (mmcv loading); this generator is trained on RGB, so a
converter must swap the output channels of ``to_rgb*`` (weights and biases).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from pegan.encodings import ConstantInput, as_size, build_head
from pegan.errors import PeganError
from pegan.nn import (ConvLayer, EqualLinear, MinibatchStddev, PixelNorm, ResBlock, StyleConv,
                      ToRGB)
from pegan.nn.padding import NOPAD_RESIZES, check_generator_switches, padded_head_size
from pegan.seeding import size_seed

# Official channel table (MMGeneration ``channels``); entries >= 64 px are x channel_multiplier.
OFFICIAL_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32,
                     1024: 16}


def _log2(n: int, what: str) -> int:
    k = int(round(math.log2(n))) if n > 0 else -1
    if n < 4 or 2 ** k != n:
        raise PeganError(f"{what}={n} is not a power of two >= 4")
    return k


class ChannelTable:
    """Width of the feature maps at each resolution.

    ``ref_resolution`` lets a shrunk model follow the channel table of a larger one: a 32-px
    smoke model with ``ref_resolution=256`` gets at 8/16/32 px the widths the 256 model has at
    64/128/256 px, so C1 and C2 keep their ratio. Widths are ``channel_scale`` x official
    (rounded, at least 1).
    """

    def __init__(self, resolution: int, channel_multiplier: int, channel_scale: float,
                 ref_resolution: int | None):
        ref = ref_resolution or resolution
        if ref < resolution or ref > 1024 or 2 ** _log2(ref, "channel_ref_resolution") != ref:
            raise PeganError(f"channel_ref_resolution={ref}: use a power of two between the "
                             f"resolution {resolution} and 1024")
        if channel_scale <= 0:
            raise PeganError(f"channel_scale={channel_scale} must be positive")
        self.factor = ref // resolution
        self.channel_multiplier = channel_multiplier
        self.channel_scale = channel_scale

    def __call__(self, res: int) -> int:
        ref = res * self.factor
        width = OFFICIAL_CHANNELS[ref] * (self.channel_multiplier if ref >= 64 else 1)
        return max(1, int(round(width * self.channel_scale)))


class Generator(nn.Module):
    """StyleGAN2 / MS-PIE generator. ``forward(z, scale)`` -> RGB images in about [-1, 1].

    Args:
        resolution: output size at the base scale (4 x 2^k); head 4x4 (6x6 without padding).
        style_dim: width of z and w (official 512).
        mapping_layers: depth of the mapping MLP (official 8).
        channel_multiplier: 2 = "C2" (default), 1 = "C1" (config-g, the 1024 row's G).
        channel_scale: multiplies every width (>= 1 channel); 1/16 in the smoke preset.
        upsample: "deconv" (StyleGAN2, Table 2 a), "conv-bilinear" (Table 2 b, padded MS-PIE)
            or "bilinear-conv" (no-padding configs h-k, Table 2 c-e).
        padding: zero padding in every 3x3 conv (default True); False is the paper's
            padding-free generator (6x6 head, resize h -> 2h+4, valid convs).
        head: "const" learnable constant (default), "csg" Cartesian grid, "spe" sinusoidal PE.
        head_mode: "interp" (resize the base head; default) or "expand" (SPE over more positions).
        spe_dim: SPE channels per axis (official 256 -> 512 input channels).
        spe_centered: centred SPE positions instead of the official top-left anchor.
        lr_mlp: learning-rate multiplier of the mapping network (official 0.01).
        blur_kernel: FIR taps of the deconv blur and of the to-RGB up-sampling.
        randomize_noise: fresh noise per forward (default, official); False uses the stored
            ``injected_noise_{i}`` buffers (and fixed seeded noise at other scales).
        channel_ref_resolution: follow the channel table of this larger resolution (None:
            ``resolution``, the official table); see :class:`ChannelTable`.
        nopad_resize: "align-corners" (official no-padding resize, default) or
            "shift-equivariant" (bilinear x2 + replicated border; exactly shift-equivariant
            away from the border, for the padding analysis).
    """

    def __init__(self, resolution: int, style_dim: int = 512, mapping_layers: int = 8,
                 channel_multiplier: int = 2, channel_scale: float = 1.0,
                 upsample: str = "deconv", padding: bool = True, head: str = "const",
                 head_mode: str = "interp", spe_dim: int = 256, spe_centered: bool = False,
                 lr_mlp: float = 0.01, blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 randomize_noise: bool = True, channel_ref_resolution: int | None = None,
                 nopad_resize: str = "align-corners"):
        super().__init__()
        log_res = _log2(resolution, "resolution")
        if log_res < 3:
            raise PeganError(f"resolution={resolution}: a StyleGAN2 generator needs >= 8 px")
        check_generator_switches(upsample, padding)
        if nopad_resize not in NOPAD_RESIZES:
            raise PeganError(f"nopad_resize {nopad_resize!r}: choose {', '.join(NOPAD_RESIZES)}")
        self.resolution = resolution
        self.style_dim = self.z_dim = style_dim
        self.upsample, self.padding, self.head_kind = upsample, padding, head
        self.randomize_noise = randomize_noise
        self.num_blocks = log_res - 2  # up-blocks 8 .. resolution
        self.num_latents = 2 * log_res - 2
        self.num_noises = self.num_latents - 1
        self.border = padded_head_size(4, padding) - 4  # head cells lost to valid convs
        width = ChannelTable(resolution, channel_multiplier, channel_scale, channel_ref_resolution)

        self.style_mapping = nn.Sequential(PixelNorm(), *[
            EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activate=True)
            for _ in range(mapping_layers)])

        head_size = 4 + self.border
        head_module = build_head(head, channels=width(4), base_size=head_size, mode=head_mode,
                                 spe_dim=spe_dim, spe_centered=spe_centered)
        if isinstance(head_module, ConstantInput):
            self.constant_input = head_module
        else:
            self.head_pos_enc = head_module
        self._head_name = "constant_input" if head == "const" else "head_pos_enc"

        conv_kw = dict(padding=padding, blur_kernel=blur_kernel, nopad_resize=nopad_resize)
        self.conv1 = StyleConv(head_module.out_channels, width(4), 3, style_dim, **conv_kw)
        self.to_rgb1 = ToRGB(width(4), style_dim, upsample=False, blur_kernel=blur_kernel)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = width(4)
        for b in range(self.num_blocks):
            out_ch = width(2 ** (b + 3))
            self.convs.append(StyleConv(in_ch, out_ch, 3, style_dim, upsample=upsample, **conv_kw))
            self.convs.append(StyleConv(out_ch, out_ch, 3, style_dim, **conv_kw))
            self.to_rgbs.append(ToRGB(out_ch, style_dim, upsample=True, blur_kernel=blur_kernel))
            in_ch = out_ch
        for i, (h, w) in enumerate(self.noise_sizes((4, 4))):
            self.register_buffer(f"injected_noise_{i}", torch.randn(1, 1, h, w))
        self._noise_cache: dict[tuple[int, int], list[Tensor]] = {}

    # ------------------------------------------------------------------ sizes

    @property
    def head(self) -> nn.Module:
        """The head module (``constant_input`` or ``head_pos_enc``)."""
        return getattr(self, self._head_name)

    @property
    def step(self) -> int:
        """Output pixels per head cell (2 ** num_blocks = resolution / 4)."""
        return 2 ** self.num_blocks

    def valid_sizes(self, up_to: int | None = None) -> list[int]:
        """Producible output sizes per side, up to ``up_to`` (default 4 x resolution)."""
        up_to = up_to or 4 * self.resolution
        return list(range(self.resolution, up_to + 1, self.step))

    def cells(self, scale: int | tuple[int, int] | None = None) -> tuple[int, int]:
        """conv1's map size (4 + s per side) for an output size ``scale`` in pixels."""
        h, w = as_size(scale if scale is not None else self.resolution)
        if h % self.step or w % self.step or h < self.resolution or w < self.resolution:
            sizes = ", ".join(map(str, self.valid_sizes(self.resolution + 4 * self.step)))
            raise PeganError(
                f"scale {scale}: this {self.resolution}-px generator renders (4+s)*{self.step} "
                f"px per side (s >= 0): {sizes}, ...")
        return h // self.step, w // self.step

    def noise_sizes(self, cells: tuple[int, int]) -> list[tuple[int, int]]:
        """Injected-noise sizes = the feature-map sizes of conv1 and of each block's 2 convs."""
        ch, cw = cells
        sizes = [(ch, cw)]
        for b in range(self.num_blocks):
            f = 2 ** (b + 1)
            sizes += [(ch * f + self.border, cw * f + self.border), (ch * f, cw * f)]
        return sizes

    # ---------------------------------------------------------------- latents

    def mapping(self, z: Tensor) -> Tensor:
        """z [N, style_dim] -> w [N, style_dim]."""
        return self.style_mapping(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> Tensor:
        """Mean w over ``n`` z drawn from a generator seeded with ``seed``: [1, style_dim]."""
        device = self.injected_noise_0.device
        z = torch.randn(n, self.style_dim, generator=torch.Generator().manual_seed(seed))
        return self.mapping(z.to(device)).mean(dim=0, keepdim=True)

    def latents(self, z: Tensor | Sequence[Tensor], *, truncation: float = 1.0,
                truncation_latent: Tensor | None = None, input_is_latent: bool = False,
                mix_prob: float = 0.0) -> Tensor:
        """The W+ codes [N, num_latents, style_dim] that ``forward`` feeds to the layers."""
        codes = list(z) if isinstance(z, (list, tuple)) else [z]
        if not 1 <= len(codes) <= 2:
            raise ValueError(f"z: one tensor or a list of two for style mixing, got {len(codes)}")
        ws = codes if input_is_latent else [self.mapping(c) for c in codes]
        if len(ws) == 1 and mix_prob > 0 and ws[0].ndim == 2 and float(torch.rand(())) < mix_prob:
            ws.append(self.mapping(torch.randn_like(ws[0])))
        if truncation < 1:
            mean = truncation_latent if truncation_latent is not None else self.mean_latent()
            ws = [mean + truncation * (w - mean) for w in ws]
        L = self.num_latents
        if len(ws) == 1:
            w = ws[0]
            return w if w.ndim == 3 else w[:, None, :].expand(-1, L, -1)
        if ws[0].ndim != 2 or ws[1].ndim != 2:
            raise ValueError("style mixing takes two [N, style_dim] codes")
        k = int(torch.randint(1, L, ()))  # inject index, official range [1, L - 1]
        return torch.cat([ws[0][:, None, :].expand(-1, k, -1),
                          ws[1][:, None, :].expand(-1, L - k, -1)], dim=1)

    # ------------------------------------------------------------------ noise

    def fixed_noise(self, cells: tuple[int, int]) -> list[Tensor]:
        """Stored noise: the ``injected_noise_{i}`` buffers at the base scale, and noise from a
        generator seeded by the size at other scales (the same in every copy of the model)."""
        if tuple(cells) == (4, 4):
            return [getattr(self, f"injected_noise_{i}") for i in range(self.num_noises)]
        key = tuple(cells)
        if key not in self._noise_cache:
            gen = torch.Generator().manual_seed(size_seed(*key))
            self._noise_cache[key] = [torch.randn(1, 1, h, w, generator=gen)
                                      for h, w in self.noise_sizes(key)]
        return [n.to(self.injected_noise_0.device) for n in self._noise_cache[key]]

    def _noise(self, noise: Sequence[Tensor | None] | None,
               cells: tuple[int, int]) -> list[Tensor | None]:
        if noise is not None:
            if len(noise) != self.num_noises:
                raise ValueError(f"noise: {self.num_noises} tensors expected, got {len(noise)}")
            return list(noise)
        return [None] * self.num_noises if self.randomize_noise else self.fixed_noise(cells)

    # ---------------------------------------------------------------- forward

    def forward(self, z: Tensor | Sequence[Tensor], scale: int | tuple[int, int] | None = None, *,
                truncation: float = 1.0, truncation_latent: Tensor | None = None,
                input_is_latent: bool = False, noise: Sequence[Tensor | None] | None = None,
                return_latents: bool = False, mix_prob: float = 0.0,
                head_input: Tensor | None = None) -> Tensor | tuple[Tensor, Tensor]:
        """Render images [N, 3, H, W] in about [-1, 1], RGB.

        Args:
            z: [N, style_dim], or a list of two for style mixing (random inject index from
                the global torch RNG); with ``input_is_latent`` these are w ([N, D] or W+
                [N, num_latents, D]).
            scale: output size in pixels, int or (h, w); None = ``resolution``. Valid sizes are
                ``(4 + s) * resolution / 4``; other sizes raise :class:`PeganError`.
            truncation, truncation_latent: truncation trick (default mean: ``mean_latent()``).
            noise: one tensor (or None) per noise layer, sized as ``noise_sizes(cells)``.
            return_latents: also return the W+ codes used, [N, num_latents, style_dim].
            mix_prob: probability of style mixing with a second, freshly drawn z.
            head_input: replaces the head (const / CSG / SPE) by this map [N, C_head, h, w];
                its size sets the output size. For analyses with a spatially i.i.d. input.
        """
        latents = self.latents(z, truncation=truncation, truncation_latent=truncation_latent,
                               input_is_latent=input_is_latent, mix_prob=mix_prob)
        n = latents.shape[0]
        if head_input is None:
            cells = self.cells(scale)
            x = self.head(n, (cells[0] + self.border, cells[1] + self.border)).to(latents)
        else:
            if scale is not None:
                raise ValueError("give either scale or head_input, not both")
            x = head_input
            cells = (x.shape[2] - self.border, x.shape[3] - self.border)
        noises = self._noise(noise, cells)

        x = self.conv1(x, latents[:, 0], noises[0])
        skip = self.to_rgb1(x, latents[:, 1])
        for b in range(self.num_blocks):
            x = self.convs[2 * b](x, latents[:, 2 * b + 1], noises[2 * b + 1])
            x = self.convs[2 * b + 1](x, latents[:, 2 * b + 2], noises[2 * b + 2])
            skip = self.to_rgbs[b](x, latents[:, 2 * b + 3], skip)
        return (skip, latents) if return_latents else skip


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator; ``multiscale=True`` is ``MSStyleGAN2Discriminator``.

    Args:
        resolution: input size it is built for (the base scale).
        channel_multiplier: 2 ("C2", default) or 1 ("C1", config-g).
        channel_scale: multiplies every width (>= 1 channel).
        multiscale: AdaptiveAvgPool2d((2, 2)) before the final linear layers, so any input
            >= resolution works (final linear [512, 2048] instead of [512, 8192]).
        mbstd_group: minibatch-stddev group size (official 4).
        blur_kernel: FIR taps of the down-sampling blur.
        channel_ref_resolution: as for :class:`Generator`.
    """

    def __init__(self, resolution: int, channel_multiplier: int = 2, channel_scale: float = 1.0,
                 multiscale: bool = False, mbstd_group: int = 4,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 channel_ref_resolution: int | None = None):
        super().__init__()
        log_res = _log2(resolution, "resolution")
        width = ChannelTable(resolution, channel_multiplier, channel_scale, channel_ref_resolution)
        self.resolution = resolution
        self.multiscale = multiscale
        convs: list[nn.Module] = [ConvLayer(3, width(resolution), 1)]
        in_ch = width(resolution)
        for i in range(log_res, 2, -1):
            out_ch = width(2 ** (i - 1))
            convs.append(ResBlock(in_ch, out_ch, blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.mbstd_layer = MinibatchStddev(mbstd_group, channel_groups=1)
        self.final_conv = ConvLayer(in_ch + 1, width(4), 3)
        if multiscale:
            self.adaptive_pool = nn.AdaptiveAvgPool2d((2, 2))
        cells = 2 * 2 if multiscale else 4 * 4
        self.final_linear = nn.Sequential(
            EqualLinear(width(4) * cells, width(4), activate=True),
            EqualLinear(width(4), 1))

    def forward(self, img: Tensor) -> Tensor:
        """Images [N, 3, H, W] -> logits [N, 1]."""
        h, w = img.shape[-2:]
        if self.multiscale and (h < self.resolution or w < self.resolution):
            raise PeganError(f"a multi-scale discriminator built for {self.resolution} px needs "
                             f"inputs of at least that size, got {h}x{w}")
        if not self.multiscale and (h, w) != (self.resolution, self.resolution):
            raise PeganError(f"this discriminator takes {self.resolution}x{self.resolution} "
                             f"images only, got {h}x{w} (use multiscale=True for MS-PIE)")
        x = self.final_conv(self.mbstd_layer(self.convs(img)))
        if self.multiscale:
            x = self.adaptive_pool(x)
        return self.final_linear(x.flatten(1))


# ----------------------------------------------------------------------------- factory


def generator_kwargs(spec) -> dict:
    """Generator constructor arguments (JSON-serialisable) for a resolved experiment."""
    sw, cap = spec.switches, spec.capacity
    return {
        "resolution": int(spec.resolution),
        "style_dim": int(cap["style_dim"]),
        "mapping_layers": int(cap["mapping_layers"]),
        "channel_multiplier": int(sw["channel_multiplier"]),
        "channel_scale": float(cap["channel_scale"]),
        "upsample": sw["upsample"],
        "padding": bool(sw["padding"]),
        "head": sw["head"],
        "head_mode": sw["head_mode"],
        "spe_dim": int(sw["spe_dim"]),
        "spe_centered": bool(sw["spe_centered"]),
        "channel_ref_resolution": int(sw["resolution"]),  # the paper's size: keeps C1/C2 ratios
    }


def discriminator_kwargs(spec) -> dict:
    """Discriminator constructor arguments (JSON-serialisable) for a resolved experiment."""
    sw, cap = spec.switches, spec.capacity
    return {
        "resolution": int(spec.resolution),
        "channel_multiplier": int(sw["d_channel_multiplier"]),
        "channel_scale": float(cap["channel_scale"]),
        "multiscale": sw["discriminator"] == "multiscale",
        "channel_ref_resolution": int(sw["resolution"]),
    }

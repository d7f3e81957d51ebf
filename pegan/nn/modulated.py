"""StyleGAN2's modulated convolution, the style conv (conv + noise + activation) and the
to-RGB layer, with the paper's up-sampling kinds and padding switch.

Names and shapes follow MMGeneration (``ModulatedPEConv2d``, ``ModulatedPEStyleConv``,
``ModulatedToRGB``) so a checkpoint maps by renaming only: official ``*.conv.weight_orig``
[1, out, in, k, k] -> ``*.conv.weight`` (same shape), ``*.conv.style_modulation.linear.weight_orig``
-> ``*.conv.style_modulation.weight``; ``style_modulation.bias``, ``noise_injector.weight``,
``activate.bias``, ``blur.kernel``, ``bias`` and ``upsample.kernel`` keep their names.

The modulation is computed unfused (scale the input by the style, convolve with the shared
weight, scale the output by the demodulation coefficients), which is algebraically the
official fused grouped convolution and runs faster at larger batches.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pegan.nn.activation import BiasLeakyReLU
from pegan.nn.equalized import EqualLinear
from pegan.nn.noise import NoiseInjection
from pegan.nn.padding import UPSAMPLE_KINDS, conv_padding, nopad_resize
from pegan.nn.upfirdn import Blur, UpsampleFIR
from pegan.nn.upsample import bilinear_double


class ModulatedConv2d(nn.Module):
    """Modulated (and by default demodulated) k x k convolution.

    Args:
        in_channels, out_channels, kernel_size: as nn.Conv2d (odd kernel).
        style_dim: width of the style vector w.
        demodulate: StyleGAN2 weight demodulation (default True; False for to-RGB).
        upsample: None (same size) or one of ``deconv`` (transposed conv + blur, StyleGAN2),
            ``conv-bilinear`` (conv then bilinear x2) or ``bilinear-conv`` (bilinear x2, or
            the no-padding resize h -> 2h + nopad_extra, then conv).
        padding: zero padding ``k // 2`` (True, default) or valid conv (False, the paper).
        blur_kernel: FIR taps of the deconv blur (default [1, 3, 3, 1]).
        nopad_extra: pixels added by the no-padding resize (official ``interp_pad=4``).
        nopad_resize: ``align-corners`` (official) or ``shift-equivariant``, see
            :func:`pegan.nn.padding.nopad_resize`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int, *,
                 demodulate: bool = True, upsample: str | None = None, padding: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), nopad_extra: int = 4,
                 nopad_resize: str = "align-corners", eps: float = 1e-8):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"ModulatedConv2d: kernel_size must be odd, got {kernel_size}")
        if upsample is not None and upsample not in UPSAMPLE_KINDS:
            raise ValueError(f"upsample {upsample!r}: choose None or {', '.join(UPSAMPLE_KINDS)}")
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate = demodulate
        self.upsample = upsample
        self.padding = padding
        self.nopad_extra = nopad_extra
        self.nopad_resize = nopad_resize
        self.eps = eps
        self.style_modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(1, out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        if upsample == "deconv":
            # transposed conv gives 2h + k - 2; the blur's pad brings it back to 2h
            p = (len(blur_kernel) - 2) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, ((p + 1) // 2 + 1, p // 2 + 1), upsample_factor=2)

    def forward(self, x: Tensor, style: Tensor) -> Tensor:
        s = self.style_modulation(style)  # [N, in]
        w = self.weight[0] * self.scale  # [out, in, k, k]
        x = x * s[:, :, None, None]
        pad = conv_padding(self.kernel_size, self.padding)
        if self.upsample == "deconv":
            x = F.conv_transpose2d(x, w.transpose(0, 1), stride=2)
        elif self.upsample == "conv-bilinear":
            x = F.conv2d(x, w, padding=pad)
        elif self.upsample == "bilinear-conv":
            x = bilinear_double(x) if self.padding else nopad_resize(x, self.nopad_extra,
                                                                    self.nopad_resize)
            x = F.conv2d(x, w, padding=pad)
        else:
            x = F.conv2d(x, w, padding=pad)
        if self.demodulate:
            # sum over (in, k, k) of (w * s)^2, per sample and output channel: [N, out]
            d = torch.rsqrt(s.pow(2) @ w.pow(2).sum(dim=(2, 3)).t() + self.eps)
            x = x * d[:, :, None, None]
        if self.upsample == "deconv":
            x = self.blur(x)
        elif self.upsample == "conv-bilinear":
            x = bilinear_double(x)
        return x

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"upsample={self.upsample}, padding={self.padding}, demodulate={self.demodulate}")


class StyleConv(nn.Module):
    """Modulated conv + noise injection + bias/leaky ReLU (official ``ModulatedPEStyleConv``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, style_dim: int,
                 **conv_kwargs):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, kernel_size, style_dim, **conv_kwargs)
        self.noise_injector = NoiseInjection()
        self.activate = BiasLeakyReLU(out_channels)

    def forward(self, x: Tensor, style: Tensor, noise: Tensor | None = None) -> Tensor:
        return self.activate(self.noise_injector(self.conv(x, style), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB plus bias, added to the up-sampled skip."""

    def __init__(self, in_channels: int, style_dim: int, *, upsample: bool = True,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1), out_channels: int = 3):
        super().__init__()
        if upsample:
            self.upsample = UpsampleFIR(blur_kernel)
        self.conv = ModulatedConv2d(in_channels, out_channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, out_channels, 1, 1))

    def forward(self, x: Tensor, style: Tensor, skip: Tensor | None = None) -> Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out

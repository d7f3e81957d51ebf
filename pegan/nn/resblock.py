"""The StyleGAN2 discriminator's layers: conv (+ blur down-sampling) + bias/leaky ReLU, and
the residual block. Zero padding is kept everywhere in the discriminator, as officially.

Names follow MMGeneration's ``ConvDownLayer`` (an ``nn.Sequential``: [Blur,] conv, [act])
and ``ResBlock`` (``conv1``, ``conv2``, ``skip``): official ``X.conv.weight_orig`` of the conv
module ``X`` maps to ``X.weight`` here; ``X.bias`` (activation) and blur ``kernel`` keep theirs.
"""

from __future__ import annotations

import math
from typing import Sequence

from torch import Tensor, nn

from pegan.nn.activation import BiasLeakyReLU
from pegan.nn.equalized import EqualConv2d
from pegan.nn.upfirdn import Blur


class ConvLayer(nn.Sequential):
    """[Blur,] equalised conv, [bias + leaky ReLU]; ``downsample`` halves the size (stride 2)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 downsample: bool = False, blur_kernel: Sequence[float] = (1, 3, 3, 1),
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, ((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channels, out_channels, kernel_size, stride=stride,
                                  padding=padding, bias=bias and not activate))
        if activate:
            layers.append(BiasLeakyReLU(out_channels))
        super().__init__(*layers)


class ResBlock(nn.Module):
    """``(conv2(conv1(x)) + skip(x)) / sqrt(2)`` with a x2 down-sampling in conv2 and skip."""

    def __init__(self, in_channels: int, out_channels: int,
                 blur_kernel: Sequence[float] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_channels, in_channels, 3, blur_kernel=blur_kernel)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=True,
                               blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_channels, out_channels, 1, downsample=True, bias=False,
                              activate=False, blur_kernel=blur_kernel)

    def forward(self, x: Tensor) -> Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)

"""Equalised learning rate (PGGAN): weights stored N(0, 1) and scaled at run time.

The run-time weight is ``weight * gain / sqrt(fan_in) * lr_mul`` (gain 1 everywhere in
StyleGAN2). Official MMGeneration stores the stored tensor as ``*.weight_orig`` (and
``EqualLinearActModule`` nests it as ``*.linear.weight_orig``); here it is ``*.weight``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pegan.nn.activation import bias_leaky_relu


class PixelNorm(nn.Module):
    """``x / (rms(x over dim 1) + eps)``, as MMGeneration's ``pixel_norm`` (eps 1e-6)."""

    def __init__(self, eps: float = 1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x / (x.pow(2).mean(dim=1, keepdim=True).sqrt() + self.eps)


class EqualLinear(nn.Module):
    """Equalised-lr linear layer with an optional fused bias + leaky ReLU.

    Args:
        in_features, out_features: sizes.
        bias: learn a bias (applied as ``bias * lr_mul``).
        bias_init: initial bias (1 for the style modulations, 0 elsewhere).
        lr_mul: learning-rate multiplier (0.01 in the mapping network).
        activate: apply StyleGAN2's bias + leaky ReLU (x sqrt 2) instead of a plain bias.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = True,
                 bias_init: float = 0.0, lr_mul: float = 1.0, activate: bool = False):
        super().__init__()
        if activate and not bias:
            raise ValueError("EqualLinear: activate=True needs bias=True (fused bias + lrelu)")
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init))) if bias else None
        self.scale = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        out = F.linear(x, self.weight * self.scale)
        if self.bias is None:
            return out
        if self.activate:
            return bias_leaky_relu(out, self.bias * self.lr_mul)
        return out + self.bias * self.lr_mul

    def extra_repr(self) -> str:
        out_f, in_f = self.weight.shape
        return f"{in_f}, {out_f}, lr_mul={self.lr_mul}, activate={self.activate}"


class EqualConv2d(nn.Module):
    """Equalised-lr 2-D convolution (weight [out, in, k, k], N(0, 1) at init)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int = 1, padding: int = 0, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.scale = 1 / math.sqrt(in_channels * kernel_size ** 2)
        self.stride = stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride,
                        padding=self.padding)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, kernel_size={k}, stride={self.stride}, padding={self.padding}"

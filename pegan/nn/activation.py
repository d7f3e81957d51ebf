"""StyleGAN2's fused bias + leaky ReLU, in plain PyTorch (official ``FusedBiasLeakyReLU``)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

NEGATIVE_SLOPE = 0.2
SCALE = math.sqrt(2.0)  # keeps the activations' second moment roughly constant


def bias_leaky_relu(x: Tensor, bias: Tensor, negative_slope: float = NEGATIVE_SLOPE,
                    scale: float = SCALE) -> Tensor:
    """``leaky_relu(x + bias) * scale``, the bias broadcast over dim 1 (channels)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return torch.nn.functional.leaky_relu(x + bias.view(shape), negative_slope) * scale


class BiasLeakyReLU(nn.Module):
    """Per-channel bias (official ``activate.bias``, init 0) followed by the scaled leaky ReLU."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return bias_leaky_relu(x, self.bias)

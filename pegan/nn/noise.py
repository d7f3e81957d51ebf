"""StyleGAN2's per-layer noise injection (official ``noise_injector.weight``, init 0)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class NoiseInjection(nn.Module):
    """``x + weight * noise``; ``noise`` [N or 1, 1, H, W], drawn N(0, 1) when None."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        if noise is None:
            n, _, h, w = x.shape
            noise = x.new_empty(n, 1, h, w).normal_()
        elif noise.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"noise of size {tuple(noise.shape[-2:])} for a feature map of "
                             f"size {tuple(x.shape[-2:])}")
        return x + self.weight * noise

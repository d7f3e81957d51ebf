"""Minibatch standard deviation (StyleGAN2 discriminator, official ``ModMBStddevLayer``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class MinibatchStddev(nn.Module):
    """Appends ``channel_groups`` feature maps holding the mean std over groups of samples.

    Samples ``m, m + M, m + 2M, ...`` form a group (the official strided grouping). The group
    is ``min(N, group_size)``; where that does not divide N the largest divisor of N below it
    is used (the official layer asserts instead).
    """

    def __init__(self, group_size: int = 4, channel_groups: int = 1, eps: float = 1e-8):
        super().__init__()
        self.group_size = group_size
        self.channel_groups = channel_groups
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        g = min(n, self.group_size)
        while n % g:
            g -= 1
        f = self.channel_groups
        y = x.reshape(g, -1, f, c // f, h, w)  # [G, M, F, C/F, H, W]
        y = torch.sqrt(y.var(dim=0, unbiased=False) + self.eps)  # [M, F, C/F, H, W]
        y = y.mean(dim=(2, 3, 4))  # [M, F]
        y = y[:, :, None, None].repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y], dim=1)

"""upfirdn2d (up-sample by zero insertion, FIR filter, down-sample) in pure PyTorch, and the
blur / FIR up-sampling layers StyleGAN2 builds from it.

The official code uses mmcv's CUDA ``upfirdn2d``; this is the reference ("native") algorithm:
for a symmetric kernel such as [1, 3, 3, 1] both give the same numbers.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def make_kernel(taps: Sequence[float]) -> Tensor:
    """Separable 2-D FIR kernel ``outer(k, k) / sum``, e.g. [1,3,3,1] -> 4x4 summing to 1."""
    k = torch.tensor([float(t) for t in taps], dtype=torch.float32)
    k = k[None, :] * k[:, None] if k.ndim == 1 else k
    return k / k.sum()


def upfirdn2d(x: Tensor, kernel: Tensor, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Zero-insert ``up``, pad ``pad=(before, after)`` on both axes (negative: crop), filter
    with ``kernel`` (true convolution), keep every ``down``-th sample.

    Output size along an axis: ``(n * up + before + after - k) // down + 1``.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    if p0 < 0 or p1 < 0:
        x = x[:, :, max(-p0, 0):x.shape[2] - max(-p1, 0), max(-p0, 0):x.shape[3] - max(-p1, 0)]
    kh, kw = kernel.shape
    weight = torch.flip(kernel, [0, 1]).to(x).expand(c, 1, kh, kw)
    x = F.conv2d(x, weight, groups=c)  # depthwise
    return x[:, :, ::down, ::down] if down > 1 else x


class Blur(nn.Module):
    """FIR low-pass filter with zero padding ``pad`` (kernel x factor^2 after up-sampling)."""

    def __init__(self, taps: Sequence[float], pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps) * upsample_factor ** 2)
        self.pad = tuple(pad)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class UpsampleFIR(nn.Module):
    """x2 FIR up-sampling of the to-RGB skip (official ``UpsampleUpFIRDn``): h -> 2h.

    Its pad (2, 1) is zero padding that the paper's no-padding design keeps.
    """

    def __init__(self, taps: Sequence[float], factor: int = 2):
        super().__init__()
        kernel = make_kernel(taps) * factor ** 2
        self.register_buffer("kernel", kernel)
        p = kernel.shape[0] - factor
        self.factor = factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: Tensor) -> Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)

"""The paper's "statistical property" of zero padding, measured on a random conv stack.

Feed a stack of random 3x3 convs + leaky ReLUs with i.i.d. N(0, 1) inputs and look at its
output y over many draws (paper Sec. 3; the slides' E(y_i) and R(y_i, y_j) figures):

* without padding every output location sees the same input statistics, so the mean
  ``E(y_i)`` is spatially constant and the correlation ``R(y_i, y_j)`` depends only on
  ``i - j`` (a weakly stationary process: no absolute position can be read off);
* with zero padding the taps that fall on the padding see zeros instead of activations with
  a non-zero mean (after the first nonlinearity), so ``E(y_i)`` changes near the border and
  the correlations there differ: an implicit positional encoding.

Both maps come from the same stack and the same inputs for a given ``seed``, so
``position_mean_map(True, ...)`` and ``position_mean_map(False, ...)`` differ only by padding.
The output is always ``size x size``; without padding the input is larger by
``depth * (kernel_size - 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pegan.nn import BiasLeakyReLU, EqualConv2d, conv_padding


def random_conv_stack(padding: bool, *, depth: int = 4, channels: int = 16,
                      kernel_size: int = 3, seed: int = 0) -> nn.Sequential:
    """``depth`` equalised convs (``channels`` wide, the last one to 1 channel) with bias +
    leaky ReLU between them; weights N(0, 1) (run-time scaled by 1/sqrt(fan_in)) and biases
    N(0, 0.1^2) drawn from ``seed``. ``padding`` switches zero padding for every conv."""
    if depth < 1:
        raise ValueError("depth must be >= 1")
    layers: list[nn.Module] = []
    pad = conv_padding(kernel_size, padding)
    for i in range(depth):
        last = i == depth - 1
        out = 1 if last else channels
        layers.append(EqualConv2d(channels, out, kernel_size, padding=pad, bias=last))
        if not last:
            layers.append(BiasLeakyReLU(out))
    stack = nn.Sequential(*layers)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in stack.named_parameters():
            draw = torch.randn(p.shape, generator=gen)
            p.copy_(draw if name.endswith("weight") else 0.1 * draw)
    return stack.requires_grad_(False)


@dataclass
class PositionStats:
    """Per-location statistics of the stack's output over ``samples`` i.i.d. inputs."""

    mean: np.ndarray         # [H, W] E(y_i)
    std: np.ndarray          # [H, W] sd(y_i)
    covariance: np.ndarray   # [H, W] cov(y_i, y_ref), the slides' R(y_i, y_j) (centred)
    correlation: np.ndarray  # [H, W] Pearson correlation of y_i with y_ref
    ref: tuple[int, int]
    samples: int

    def mean_zscore(self) -> np.ndarray:
        """(E(y_i) - spatial mean of E(y)) / standard error of E(y_i), [H, W]."""
        se = self.std / np.sqrt(self.samples)
        return (self.mean - self.mean.mean()) / se


def position_statistics(padding: bool, *, ref: tuple[int, int] | None = None, size: int = 32,
                        depth: int = 4, channels: int = 16, kernel_size: int = 3,
                        samples: int = 4096, seed: int = 0, batch: int = 256) -> PositionStats:
    """Mean, std and correlation-to-``ref`` (default: the centre) maps of a random conv stack
    (see :func:`random_conv_stack`) fed N(0, 1) inputs; the output map is ``size x size``."""
    ref = (size // 2, size // 2) if ref is None else (int(ref[0]), int(ref[1]))
    if not (0 <= ref[0] < size and 0 <= ref[1] < size):
        raise ValueError(f"ref {ref} outside the {size}x{size} output")
    stack = random_conv_stack(padding, depth=depth, channels=channels,
                              kernel_size=kernel_size, seed=seed)
    in_size = size if padding else size + depth * (kernel_size - 1)
    gen = torch.Generator().manual_seed(seed + 1)
    s1 = torch.zeros(size, size, dtype=torch.float64)
    s2 = torch.zeros_like(s1)
    sr = torch.zeros_like(s1)
    done = 0
    while done < samples:
        n = min(batch, samples - done)
        x = torch.randn(n, channels, in_size, in_size, generator=gen)
        y = stack(x)[:, 0].double()  # [n, size, size]
        s1 += y.sum(0)
        s2 += y.pow(2).sum(0)
        sr += (y * y[:, ref[0], ref[1], None, None]).sum(0)
        done += n
    mean = s1 / samples
    var = (s2 / samples - mean.pow(2)).clamp_min(0)
    cov = sr / samples - mean * mean[ref]
    corr = cov / (var.sqrt() * var[ref].sqrt()).clamp_min(1e-12)
    std = (var * samples / max(samples - 1, 1)).sqrt()
    return PositionStats(mean.numpy(), std.numpy(), cov.numpy(), corr.numpy(), ref, samples)


def position_mean_map(padding: bool, *, size: int = 32, depth: int = 4, channels: int = 16,
                      samples: int = 4096, seed: int = 0) -> np.ndarray:
    """E(y_i) at every output location, [size, size] (see :func:`position_statistics`)."""
    return position_statistics(padding, size=size, depth=depth, channels=channels,
                               samples=samples, seed=seed).mean


def correlation_map(padding: bool, ref: tuple[int, int] = (0, 0), *, size: int = 32,
                    depth: int = 4, channels: int = 16, samples: int = 4096, seed: int = 0,
                    normalized: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
    """Relation of y_i to y_ref at every location i and the reference used:
    ``(map [size, size], ref)``. The map is the Pearson correlation (``normalized=True``, 1 at
    ``ref``) or the covariance (False, the slides' R(y_i, y_j))."""
    stats = position_statistics(padding, ref=ref, size=size, depth=depth, channels=channels,
                                samples=samples, seed=seed)
    return (stats.correlation if normalized else stats.covariance), stats.ref

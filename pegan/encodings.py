"""Generator head inputs: the learnable constant, the Cartesian spatial grid (CSG) and the
sinusoidal positional encoding (SPE), each renderable at any head size (square or not).

Semantics follow MMGeneration's code for the paper (``positional_encoding.py``, ``mspie.py``;
``/work/shared/reference/official-implementation.md`` sections 2 and 8):

* **CSG** (2 channels): ``x[i, j] = 2 j / max(W - 1, 1) - 1`` (channel 0, the column) and
  ``y[i, j] = 2 i / max(H - 1, 1) - 1`` (channel 1, the row), both in [-1, 1]. A grid is
  resolution-normalised, so "interp" and "expand" give the same map.
* **SPE** (``2 * dim`` channels): per axis, ``E[p] = [sin(p w_0) .. sin(p w_{h-1}),
  cos(p w_0) .. cos(p w_{h-1})]`` with ``h = dim // 2`` and ``w_k = exp(-k ln(10000) / (h - 1))``
  (sin block then cos block, not interleaved; an odd ``dim`` gets a zero last channel).
  Channels ``[0, dim)`` encode the column, ``[dim, 2 dim)`` the row.
  Positions are ``p = 1 .. n`` anchored at the top-left cell: the official ``center_shift``
  is a no-op (fairseq's ``make_positions`` replaces the axis values by 1..n), so "expand"
  grows the grid towards the bottom/right and its top-left block equals the base grid.
* **Centred SPE** (``centered=True``, not the official code): positions
  ``p = i - (n - 1) / 2`` (half-integers for even ``n``), the centred space the paper's
  Figure 4 draws. "Expand" then grows the grid symmetrically: with an even size increment
  its *central* block equals the base grid. Position 0 (the centre cell of an odd size) keeps
  its value ``[0.., 1..]``; the official table zeroes row 0 only as fairseq's padding index,
  which anchored positions never reach.
* **Modes**: "interp" renders the base grid (or the learnable constant) at the base head
  size and resizes it bilinearly (``align_corners=True``); "expand" renders the encoding
  directly over the larger grid of positions.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pegan.errors import PeganError

HEADS = ("const", "csg", "spe")
HEAD_MODES = ("interp", "expand")

Size = tuple[int, int]


def as_size(size: int | tuple[int, int]) -> Size:
    """``4`` -> ``(4, 4)``; ``(h, w)`` unchanged."""
    if isinstance(size, numbers.Integral):
        return (int(size), int(size))
    h, w = size
    return (int(h), int(w))


def resize_bilinear(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize with ``align_corners=True`` (the official head "interp"); a no-op at
    the same size. ``x``: [C, h, w] or [N, C, h, w]."""
    size = as_size(size)
    if tuple(x.shape[-2:]) == size:
        return x
    squeeze = x.ndim == 3
    out = F.interpolate(x[None] if squeeze else x, size=size, mode="bilinear",
                        align_corners=True)
    return out[0] if squeeze else out


# ------------------------------------------------------------------------------ CSG


def cartesian_grid(height: int, width: int, *, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> Tensor:
    """The Cartesian spatial grid, [2, height, width]: channel 0 = x (column), 1 = y (row)."""
    xs = torch.arange(width, dtype=dtype, device=device) * 2 / max(width - 1, 1) - 1
    ys = torch.arange(height, dtype=dtype, device=device) * 2 / max(height - 1, 1) - 1
    return torch.stack([xs[None, :].expand(height, width), ys[:, None].expand(height, width)])


# ------------------------------------------------------------------------------ SPE


def sinusoidal_frequencies(dim: int, *, dtype: torch.dtype = torch.float64,
                           device: torch.device | str | None = None) -> Tensor:
    """``w_k = exp(-k ln(10000) / (dim//2 - 1))`` for k = 0 .. dim//2 - 1 (from 1 to 1e-4)."""
    half = dim // 2
    if half < 2:
        raise PeganError(f"spe_dim={dim} is too small: the sinusoidal encoding needs spe_dim >= 4")
    k = torch.arange(half, dtype=dtype, device=device)
    return torch.exp(-k * math.log(10000.0) / (half - 1))


def sinusoidal_embedding(positions: Tensor, dim: int) -> Tensor:
    """[n] positions -> [n, dim]: sin block then cos block (zero last channel if dim is odd)."""
    freqs = sinusoidal_frequencies(dim, device=positions.device)
    angles = positions.to(torch.float64)[:, None] * freqs[None, :]  # [n, half]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, emb.new_zeros(len(positions), 1)], dim=1)
    return emb


def spe_positions(n: int, *, centered: bool = False,
                  device: torch.device | str | None = None) -> Tensor:
    """Positions of ``n`` cells along one axis: 1..n (official) or ``i - (n-1)/2`` (centred)."""
    idx = torch.arange(n, dtype=torch.float64, device=device)
    return idx - (n - 1) / 2 if centered else idx + 1


def sinusoidal_grid(height: int, width: int, dim: int, *, centered: bool = False,
                    dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """The 2-D sinusoidal encoding, [2 dim, height, width]: column code then row code."""
    x_emb = sinusoidal_embedding(spe_positions(width, centered=centered, device=device), dim)
    y_emb = sinusoidal_embedding(spe_positions(height, centered=centered, device=device), dim)
    x_grid = x_emb.t()[:, None, :].expand(dim, height, width)  # [dim, H, W], varies along W
    y_grid = y_emb.t()[:, :, None].expand(dim, height, width)  # [dim, H, W], varies along H
    return torch.cat([x_grid, y_grid], dim=0).to(dtype)


# --------------------------------------------------------------------------- modules


class ConstantInput(nn.Module):
    """StyleGAN2's learnable constant input (official ``constant_input.input`` [1, C, h, w]).

    Larger heads are the constant resized bilinearly (``align_corners=True``), the official
    MS-PIE "interp"; a constant has no "expand" mode.
    """

    def __init__(self, channels: int, base_size: int | tuple[int, int] = 4):
        super().__init__()
        self.out_channels = channels
        self.base_size = as_size(base_size)
        self.input = nn.Parameter(torch.randn(1, channels, *self.base_size))

    def forward(self, batch: int, size: int | tuple[int, int] | None = None) -> Tensor:
        out = resize_bilinear(self.input, size or self.base_size)
        return out.expand(batch, -1, -1, -1)  # [N, C, h, w]


class CartesianGrid(nn.Module):
    """The CSG head (2 channels, no parameters); interp and expand coincide."""

    def __init__(self, base_size: int | tuple[int, int] = 4):
        super().__init__()
        self.out_channels = 2
        self.base_size = as_size(base_size)

    def forward(self, batch: int, size: int | tuple[int, int] | None = None) -> Tensor:
        h, w = as_size(size or self.base_size)
        return cartesian_grid(h, w).expand(batch, -1, -1, -1)  # [N, 2, h, w]


class SinusoidalPositionalEncoding(nn.Module):
    """The SPE head (``2 * dim`` channels, no parameters and no state).

    ``mode="interp"`` renders positions at ``base_size`` and resizes (align_corners=True);
    ``mode="expand"`` renders the positions of the requested size directly.
    """

    def __init__(self, dim: int = 256, base_size: int | tuple[int, int] = 4,
                 mode: Literal["interp", "expand"] = "expand", centered: bool = False):
        super().__init__()
        if mode not in HEAD_MODES:
            raise PeganError(f"SPE mode {mode!r}: choose {', '.join(HEAD_MODES)}")
        sinusoidal_frequencies(dim)  # validates dim
        self.dim = dim
        self.out_channels = 2 * dim
        self.base_size = as_size(base_size)
        self.mode = mode
        self.centered = centered

    def grid(self, size: int | tuple[int, int] | None = None) -> Tensor:
        """The encoding at ``size`` (default: the base size), [2 dim, h, w]."""
        size = as_size(size or self.base_size)
        if self.mode == "interp":
            base = sinusoidal_grid(*self.base_size, self.dim, centered=self.centered)
            return resize_bilinear(base, size)
        return sinusoidal_grid(*size, self.dim, centered=self.centered)

    def forward(self, batch: int, size: int | tuple[int, int] | None = None) -> Tensor:
        return self.grid(size).expand(batch, -1, -1, -1)  # [N, 2 dim, h, w]

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base_size={self.base_size}, mode={self.mode}, centered={self.centered}"


def build_head(kind: str, *, channels: int, base_size: int | tuple[int, int], mode: str = "interp",
               spe_dim: int = 256, spe_centered: bool = False) -> nn.Module:
    """The head module of a generator: ``forward(batch, size) -> [N, out_channels, h, w]``.

    ``channels`` is the learnable constant's width (ignored by CSG and SPE, whose widths are
    2 and ``2 * spe_dim``).
    """
    if kind not in HEADS:
        raise PeganError(f"head {kind!r}: choose {', '.join(HEADS)}")
    if mode not in HEAD_MODES:
        raise PeganError(f"head_mode {mode!r}: choose {', '.join(HEAD_MODES)}")
    if kind == "const":
        if mode == "expand":
            raise PeganError("head_mode 'expand' needs a positional encoding: a learnable "
                             "constant can only be interpolated (head_mode: interp)")
        return ConstantInput(channels, base_size)
    if kind == "csg":
        return CartesianGrid(base_size)
    return SinusoidalPositionalEncoding(spe_dim, base_size, mode, spe_centered)

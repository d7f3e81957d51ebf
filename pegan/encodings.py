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
* **Registry**: every positional encoding is a render function registered with
  :func:`register_encoding` (name, channels per ``dim``, and whether it is resolution-
  normalised). Every family accepts every registered encoding as its ``head`` (StyleGAN2's
  head module, the grid concatenated to PGGAN/DCGAN's latent projection, the grid added to
  SinGAN's stage-0 noise); the family's non-positional input (StyleGAN2's learnable constant,
  PGGAN/DCGAN's plain projection ``const``, SinGAN's ``noise``) is its default head.
  Adding an encoding is one registered function here (or in any module imported first).
* **Modes**: "interp" renders the base grid (or the learnable constant) at the base head
  size and resizes it bilinearly (``align_corners=True``); "expand" renders the encoding
  directly over the larger grid of positions.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pegan.errors import PeganError

HEAD_MODES = ("interp", "expand")
NON_POSITIONAL = ("const", "noise")     # the families' inputs without a positional encoding

Size = tuple[int, int]


@dataclass(frozen=True)
class Encoding:
    """A registered positional encoding."""

    name: str
    render: Callable[..., Tensor]     # render(h, w, *, dim, centered, dtype, device) -> [C, h, w]
    channels: Callable[[int], int]    # channels for an embedding dim (`spe_dim`)
    resolution_free: bool = False     # normalised coordinates: "interp" renders at the size too
    description: str = ""


ENCODINGS: dict[str, Encoding] = {}


def register_encoding(name: str, *, channels: Callable[[int], int], resolution_free: bool = False,
                      description: str = "") -> Callable:
    """Decorator: register ``render(height, width, *, dim, centered, dtype, device)`` as the
    positional encoding `name` (a ``head`` value of every family)."""
    if name in NON_POSITIONAL:
        raise PeganError(f"encoding name {name!r} is taken by a non-positional input")

    def decorate(render: Callable[..., Tensor]) -> Callable[..., Tensor]:
        ENCODINGS[name] = Encoding(name, render, channels, resolution_free, description)
        return render

    return decorate


def encoding(name: str) -> Encoding:
    if name not in ENCODINGS:
        raise PeganError(f"head {name!r} is not a registered encoding "
                         f"(registered: {', '.join(ENCODINGS)})")
    return ENCODINGS[name]


def family_heads(default: str) -> tuple[str, ...]:
    """The heads a family accepts: its non-positional `default` input and every encoding."""
    return (default, *ENCODINGS)


def all_heads() -> tuple[str, ...]:
    return (*NON_POSITIONAL, *ENCODINGS)


def check_head(head: str, default: str, family: str) -> None:
    """A one-line error when `family` (whose plain input is `default`) cannot take `head`."""
    allowed = family_heads(default)
    if head not in allowed:
        raise PeganError(f"{family} head {head!r}: choose {', '.join(allowed)}")


def grid(name: str, height: int, width: int, *, dim: int = 256, centered: bool = False,
         dtype: torch.dtype = torch.float32,
         device: torch.device | str | None = None) -> Tensor:
    """The encoding `name` rendered over ``height x width`` positions, [C, height, width]."""
    return encoding(name).render(height, width, dim=dim, centered=centered, dtype=dtype,
                                 device=device)


def projection_grid(head: str, size: int, dim: int, centered: bool) -> Tensor | None:
    """PGGAN/DCGAN: the [C, size, size] grid concatenated to the latent projection's map
    (None for the plain projection, head 'const')."""
    if head == "const":
        return None
    return grid(head, size, size, dim=dim, centered=centered)


def channels(name: str, dim: int) -> int:
    """Channels of the encoding `name` for embedding dim `dim`."""
    return encoding(name).channels(dim)


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


# ----------------------------------------------------------------- the built-in encodings


@register_encoding("csg", channels=lambda dim: 2, resolution_free=True,
                   description="Cartesian spatial grid: x and y in [-1, 1]")
def _render_csg(height: int, width: int, *, dim: int, centered: bool, dtype: torch.dtype,
                device: torch.device | str | None) -> Tensor:
    return cartesian_grid(height, width, dtype=dtype, device=device)


def _spe_channels(dim: int) -> int:
    sinusoidal_frequencies(dim)   # validates dim
    return 2 * dim


@register_encoding("spe", channels=_spe_channels,
                   description="sinusoidal positional encoding, 2 x spe_dim channels")
def _render_spe(height: int, width: int, *, dim: int, centered: bool, dtype: torch.dtype,
                device: torch.device | str | None) -> Tensor:
    return sinusoidal_grid(height, width, dim, centered=centered, dtype=dtype, device=device)


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


class PositionalHead(nn.Module):
    """The head of a registered positional encoding (no parameters and no state).

    ``mode="interp"`` renders the positions of ``base_size`` and resizes them bilinearly
    (align_corners=True); ``mode="expand"`` renders the positions of the requested size. A
    resolution-free encoding (CSG) renders the requested size in both modes.
    """

    def __init__(self, name: str, base_size: int | tuple[int, int] = 4,
                 mode: Literal["interp", "expand"] = "interp", dim: int = 256,
                 centered: bool = False):
        super().__init__()
        if mode not in HEAD_MODES:
            raise PeganError(f"head_mode {mode!r}: choose {', '.join(HEAD_MODES)}")
        self.encoding = encoding(name)
        self.out_channels = self.encoding.channels(dim)   # validates dim
        self.dim, self.base_size, self.mode, self.centered = dim, as_size(base_size), mode, centered

    def grid(self, size: int | tuple[int, int] | None = None) -> Tensor:
        """The encoding at ``size`` (default: the base size), [C, h, w]."""
        size = as_size(size or self.base_size)
        kw = dict(dim=self.dim, centered=self.centered, dtype=torch.float32, device=None)
        if self.mode == "interp" and not self.encoding.resolution_free:
            return resize_bilinear(self.encoding.render(*self.base_size, **kw), size)
        return self.encoding.render(*size, **kw)

    def forward(self, batch: int, size: int | tuple[int, int] | None = None) -> Tensor:
        return self.grid(size).expand(batch, -1, -1, -1)  # [N, C, h, w]

    def extra_repr(self) -> str:
        return (f"{self.encoding.name}, dim={self.dim}, base_size={self.base_size}, "
                f"mode={self.mode}, centered={self.centered}")


class CartesianGrid(PositionalHead):
    """The CSG head (2 channels); interp and expand coincide."""

    def __init__(self, base_size: int | tuple[int, int] = 4):
        super().__init__("csg", base_size)


class SinusoidalPositionalEncoding(PositionalHead):
    """The SPE head (``2 * dim`` channels)."""

    def __init__(self, dim: int = 256, base_size: int | tuple[int, int] = 4,
                 mode: Literal["interp", "expand"] = "expand", centered: bool = False):
        super().__init__("spe", base_size, mode, dim, centered)


def build_head(kind: str, *, channels: int, base_size: int | tuple[int, int], mode: str = "interp",
               spe_dim: int = 256, spe_centered: bool = False) -> nn.Module:
    """The head module of a StyleGAN2 generator: ``forward(batch, size) -> [N, C, h, w]``.

    ``channels`` is the learnable constant's width (ignored by the encodings, whose widths
    come from their registration and ``spe_dim``).
    """
    check_head(kind, "const", "StyleGAN2")
    if mode not in HEAD_MODES:
        raise PeganError(f"head_mode {mode!r}: choose {', '.join(HEAD_MODES)}")
    if kind == "const":
        if mode == "expand":
            raise PeganError("head_mode 'expand' needs a positional encoding: a learnable "
                             "constant can only be interpolated (head_mode: interp)")
        return ConstantInput(channels, base_size)
    return PositionalHead(kind, base_size, mode, spe_dim, spe_centered)

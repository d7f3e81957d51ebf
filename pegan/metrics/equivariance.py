"""Shift equivariance of a generator (``eqt``): does its output move with its input?

The paper's argument is that a convolutional generator without padding, fed a spatially
i.i.d. input, is translation-equivariant, so it cannot tie global structure to a canvas
position; zero padding (implicitly) or an explicit encoding (CSG, SPE) breaks that. This metric
measures it directly, in the spirit of StyleGAN3's EQ-T (Karras et al. 2021,
``metrics/equivariance.py``): render an image, render again with the generator's spatial
**content** input shifted by an integer number of cells, shift the first image by the same
amount in pixels and compare the two where both are defined::

    eqt = 10 * log10(4 / MSE)            # dB; images in [-1, 1] (peak-to-peak 2)
    MSE = sum over pairs of squared differences on the overlap / number of overlap values

The overlap excludes the strip that moved in (StyleGAN3's mask); there is no further margin,
because the border band is exactly where zero padding acts. The MSE is pooled over all pairs
(float64 sums), as StyleGAN3 does. Higher = more equivariant; an exactly equivariant generator
scores :data:`MAX_PSNR` (the MSE is floored at ``4 / 10**(MAX_PSNR / 10)``: float rounding).

**What moves and what stays.** Everything that tells the generator *where* it is on the canvas
stays in place: zero padding, and a positional encoding (CSG, SPE, any registered one). The
content the generator transforms moves: its random spatial maps, and, where it has none, the
first feature map it is given. Per family (each shift is one cell of that map, along one axis,
direction and axis drawn per pair):

* **SinGAN**: the stage-0 noise map (spatially i.i.d.) is rolled by ``d`` px,
  ``d = max(1, round(min(h0, w0) / 8))`` (StyleGAN3's translation bound, 1/8 of the side), and
  the coarsest stage is rendered (its output is compared, 1 px per noise cell). The grid of
  the CSG/SPE variants stays; so does the zero padding of ``padding: zero``. Only stage 0 is
  measured: the pyramid's inter-stage factor (about 4/3) turns an integer shift at one stage
  into a fractional one at the next, so an integer shift cannot be equivariant across stages
  even for an ideal generator; and the coarsest stage is where SinGAN places the layout (its
  later stages add residual detail to the up-sampled coarser image).
* **StyleGAN2 / MS-PIE**: the input of ``conv1`` (``head_input``) and every injected-noise map.
  The learned constant (``head: const``) is the generator's input content and is rolled by one
  cell; a positional head (``csg``, ``spe``) stays, and only the noise maps move (rolled by one
  cell times their up-sampling factor). One head cell is ``resolution / 4`` px at the output:
  the smallest shift the head allows. The head is taken at the evaluation scale when the
  generator renders it (MS-PIE), else at the base resolution.
* **PGGAN / DCGAN**: the input is a latent code ``z`` (no spatial map): its dense projection
  (``[C, 4, 4]``; 6x6 in PGGAN without padding) is the first spatial map, so the projected
  latent channels are rolled by one cell at the input of the first conv (PGGAN's head conv,
  DCGAN's first up-block), while the concatenated encoding channels of row (c) stay. One cell
  is ``resolution / 4`` px at the output.

A roll (circular shift) moves the content by ``d`` cells and brings ``d`` cells in at the
other side; those influence only the output region the overlap excludes, so for an exactly
equivariant network (valid convolutions, shift-equivariant resampling) the overlap matches
exactly (tested: a valid 3x3 conv stack scores the cap, the same weights with zero padding
39 dB; SinGAN's padding-free stage 0 scores the cap, zero padding and CSG far lower).

**Caveat for the latent-code families.** The comparison assumes the nominal geometry, one
content cell = ``resolution / 4`` output px. The official resamplers with
``align_corners=True`` (the padding-free resize h -> 2h + 4 of
:func:`pegan.nn.padding.nopad_resize`, and the x2 of ``conv-bilinear``) stretch every map by
``(2h + 3) / (h - 1)`` instead of 2, compounding over the blocks: at 32 px, an untrained
padding-free PGGAN moves its output by about 23 px per 8-px cell (and matches there to an MSE
of 1e-4), and StyleGAN2 adds a differently scaled FIR-up-sampled skip path. For those rows
``eqt`` says whether an integer shift of the input gives the same shift of the image; it
mixes padding with resampling geometry, and the registry's claim uses SinGAN only (a
fractional, windowed-sinc comparison at the architecture's own displacement, as StyleGAN3's
EQ-T-frac, would isolate padding there).

**References in the protocol record.** ``eqt_anchored`` is the score of an output that does not
move at all when its input moves (the first image against its own shift), on the same fakes;
``eqt_anchored_real`` the same on the real images (resized to the rendered size; for SinGAN,
the training image at the coarsest stage's size). A generator near ``eqt_anchored`` keeps its
layout on the canvas; one far above it follows its input.

The metric re-renders the generator, so it needs a snapshot: for a set of images it raises a
one-line error. Its cost is two generator passes per pair at the base (or coarsest) size; the
pair count is the preset's ``structure`` sample count (else ``swd``), like the structure
metric it shares an evaluation job with (``group="structure"``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F

from pegan.errors import PeganError
from pegan.metrics.images import ImageSet
from pegan.metrics.registry import Output, register
from pegan.seeding import stream_seed

MAX_PSNR = 120.0                 # dB: the MSE floor 4e-12 (float32 rounding of exact equality)
STREAM = 300_000                 # seed streams of the pairs: STREAM + pair index
SINGAN_SHIFT_FRACTION = 1 / 8    # SinGAN's shift: this fraction of the coarsest side, >= 1 px


# ------------------------------------------------------------------------ the comparison


@dataclass(frozen=True)
class Shift:
    """An integer shift of `cells` along `axis` (2: rows, 3: columns), sign included."""

    axis: int
    cells: int


def random_shift(generator: torch.Generator, cells: int) -> Shift:
    """One of the four axis-aligned shifts by `cells` (axis and sign drawn)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    return Shift(axis=2 + k % 2, cells=cells if k < 2 else -cells)


def roll(x: torch.Tensor, shift: Shift, factor: int = 1) -> torch.Tensor:
    """`x` [N, C, H, W] rolled by ``shift.cells * factor`` along the shift's axis."""
    return torch.roll(x, shift.cells * factor, dims=shift.axis)


def overlap(shifted: torch.Tensor, original: torch.Tensor, shift: Shift,
            pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The parts of `shifted` (rendered from the input shifted by `shift`) and `original`
    that show the same content if the generator is equivariant: a shift of ``+d`` cells moves
    the content by ``pixels`` px towards higher indices, so ``shifted[p + pixels]`` should be
    ``original[p]``. Returns (shifted part, original part), equally sized."""
    size = original.shape[shift.axis]
    if not 0 < pixels < size:
        raise PeganError(f"a shift of {pixels} px leaves no overlap on a {size}-px image")
    if shift.cells > 0:
        return (shifted.narrow(shift.axis, pixels, size - pixels),
                original.narrow(shift.axis, 0, size - pixels))
    return (shifted.narrow(shift.axis, 0, size - pixels),
            original.narrow(shift.axis, pixels, size - pixels))


class SquaredError:
    """Pooled squared error of overlapping image parts (float64 sums) and its PSNR."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, a: torch.Tensor, b: torch.Tensor) -> None:
        self.total += float((a.double() - b.double()).square().sum())
        self.count += a.numel()

    def psnr(self) -> float:
        """``10 log10(4 / MSE)`` in dB for [-1, 1] images, at most :data:`MAX_PSNR`."""
        if not self.count:
            return math.nan
        floor = 4.0 / 10 ** (MAX_PSNR / 10)
        return 10.0 * math.log10(4.0 / max(self.total / self.count, floor))


def compare_pair(error: SquaredError, anchored: SquaredError, first: torch.Tensor,
                 second: torch.Tensor, shift: Shift, pixels: int) -> None:
    """Add one rendered pair: `second` rendered with the content shifted by `shift`, i.e. by
    `pixels` px at the output. `anchored` gets `first` against its own shifted copy."""
    error.add(*overlap(second, first, shift, pixels))
    anchored.add(*overlap(first, first, shift, pixels))


# ---------------------------------------------------------------- shifting each family


class Probe(ABC):
    """Renders pairs of one family's generator: original and content-shifted."""

    family = ""
    moved = ""                    # what is shifted (recorded in the protocol)
    cells_per_shift = 1           # content cells per shift

    def __init__(self, G: torch.nn.Module, scale: int, device: torch.device) -> None:
        self.G, self.scale, self.device = G, int(scale), device

    @abstractmethod
    def render(self, generators: list[torch.Generator],
               shifts: list[Shift]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One pair per (seeded generator, shift): (first, second, pixels), `first` and
        `second` float images [N, 3, H, W], `pixels` the output shift of one content cell."""


def _stack(draws: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    return torch.stack(draws).to(device)


def _rolled(x: torch.Tensor, shifts: list[Shift], factor: int = 1) -> torch.Tensor:
    """Sample i of `x` rolled by ``shifts[i]`` (times `factor`)."""
    return torch.cat([roll(x[i:i + 1], s, factor) for i, s in enumerate(shifts)])


class StyleGAN2Probe(Probe):
    family = "stylegan2"

    def __init__(self, G, scale, device) -> None:
        super().__init__(G, scale, device)
        try:
            self.cells = G.cells(self.scale)
        except PeganError:                       # a scale G does not render: its base head
            self.cells = G.cells(None)
        self.rolls_head = G.head_kind == "const"
        self.moved = ("the learned constant and the noise maps" if self.rolls_head
                      else f"the noise maps ({G.head_kind} head in place)")
        self.head_size = (self.cells[0] + G.border, self.cells[1] + G.border)
        # cells of each noise map per head cell: conv1's 1, then x2 per block (two convs each)
        self.factors = [1] + [2 ** (b + 1) for b in range(G.num_blocks) for _ in range(2)]

    @torch.no_grad()
    def render(self, generators, shifts):
        G, n = self.G, len(shifts)
        z = _stack([torch.randn(G.z_dim, generator=g) for g in generators], self.device)
        noise = [_stack([torch.randn(1, h, w, generator=g) for g in generators], self.device)
                 for h, w in G.noise_sizes(self.cells)]
        head = G.head(n, self.head_size).to(z)
        moved_head = _rolled(head, shifts) if self.rolls_head else head
        moved_noise = [_rolled(m, shifts, f) for m, f in zip(noise, self.factors)]
        first = G(z, head_input=head, noise=noise).float()
        second = G(z, head_input=moved_head, noise=moved_noise).float()
        return first, second, G.step


@contextmanager
def _rolled_input(module: torch.nn.Module, channels: int,
                  shifts: list[Shift]) -> Iterator[None]:
    """While active, the first `channels` channels of `module`'s input are rolled, sample by
    sample, for the second half of the batch (the first half renders unshifted)."""

    def hook(_module, args):
        x = args[0]
        n = x.shape[0] // 2
        moved = torch.cat([_rolled(x[n:, :channels], shifts), x[n:, channels:]], dim=1)
        return (torch.cat([x[:n], moved]), *args[1:])

    handle = module.register_forward_pre_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class LatentProjectionProbe(Probe):
    """PGGAN and DCGAN: the latent projection's map is rolled at the first conv's input."""

    def __init__(self, G, scale, device, family: str, module: torch.nn.Module,
                 channels: int) -> None:
        super().__init__(G, scale, device)
        self.family, self.module, self.channels = family, module, channels
        head = getattr(G, "head_size", 4)
        grid = "" if G.grid is None else " (encoding channels in place)"
        self.moved = f"the latent projection's {head}x{head} map{grid}"

    @torch.no_grad()
    def render(self, generators, shifts):
        z = _stack([torch.randn(self.G.z_dim, generator=g) for g in generators], self.device)
        with _rolled_input(self.module, self.channels, shifts):
            out = self.G(torch.cat([z, z])).float()
        first, second = out[:len(shifts)], out[len(shifts):]
        return first, second, first.shape[-1] // 4


class SinGANProbe(Probe):
    family = "singan"
    moved = "the stage-0 noise (coarsest stage rendered; grid and padding in place)"

    def __init__(self, G, scale, device) -> None:
        super().__init__(G, scale, device)
        h0, w0 = G.stage_sizes[0]
        self.cells_per_shift = max(1, round(min(h0, w0) * SINGAN_SHIFT_FRACTION))
        self.noise_shape = (G.stage_noise_channels(0), *G.noise_size(h0, w0))

    @torch.no_grad()
    def render(self, generators, shifts):
        G, n = self.G, len(shifts)
        noise = _stack([torch.randn(*self.noise_shape, generator=g) for g in generators],
                       self.device)
        saved = G.fixed_noise_0
        # the reconstruction path renders stage 0 from the stored noise: give it ours
        G.fixed_noise_0 = torch.cat([noise, _rolled(noise, shifts)])
        try:
            out = G(2 * n, mode="recon", stage=0).float()
        finally:
            G.fixed_noise_0 = saved
        return out[:n], out[n:], 1


def probe_for(G: torch.nn.Module, scale: int, device: torch.device) -> Probe:
    """The probe of a generator's family."""
    from pegan.models import dcgan, pggan, singan, stylegan2

    if isinstance(G, stylegan2.Generator):
        return StyleGAN2Probe(G, scale, device)
    if isinstance(G, singan.Generator):
        return SinGANProbe(G, scale, device)
    if isinstance(G, pggan.Generator):
        return LatentProjectionProbe(G, scale, device, "pggan", G.head_conv, G.channels[0])
    if isinstance(G, dcgan.Generator):
        return LatentProjectionProbe(G, scale, device, "dcgan", G.blocks[0], G.channels)
    raise PeganError(f"the equivariance metric does not know how to shift the input of a "
                     f"{type(G).__module__}.{type(G).__name__}")


def real_anchored(real, num: int, size: tuple[int, int], pixels: int,
                  batch_size: int) -> tuple[float, int]:
    """(``eqt_anchored`` of real images, images read): each of the first `num` images (or all,
    when fewer), resized to `size`, against its own copy shifted by `pixels` px, over the four
    axis-aligned directions."""
    error = SquaredError()
    images = ImageSet(real, min(len(ImageSet(real)), num))
    for batch in images.batches(batch_size):
        x = batch.float() / 127.5 - 1.0
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bicubic", align_corners=False,
                              antialias=True)
        for axis in (2, 3):
            if pixels < x.shape[axis]:
                for sign in (1, -1):
                    error.add(*overlap(x, x, Shift(axis, sign), pixels))
    return error.psnr(), len(images)


# ------------------------------------------------------------------ the registered metric


@register("equivariance", order=50, version="equivariance-1",
          description="shift equivariance (EQ-T-like PSNR) of the generator's content input",
          outputs=(Output("eqt", "PSNR (dB) between the render of the shifted content input and "
                          "the shifted render, on their overlap; [-1, 1] images",
                          lower_is_better=False),),
          samples="structure", samples_fallback="swd", group="structure", singan=True)
class EquivarianceMetric:
    """``eqt`` of the evaluated snapshot: `num` pairs rendered alongside the fakes' batches
    (the fakes themselves are not read: the pairs are the metric's own renders)."""

    def __init__(self, ctx, num: int) -> None:
        G = getattr(ctx, "generator", None)
        if G is None:
            raise PeganError("the equivariance metric re-renders the generator with shifted "
                             "inputs: evaluate a snapshot, not a set of images")
        self.ctx, self.num, self.done = ctx, int(num), 0
        self.probe = probe_for(G, ctx.scale, ctx.device)
        self.error, self.anchored = SquaredError(), SquaredError()
        self.pixels: int | None = None
        self.size: tuple[int, int] | None = None

    def _pairs(self, count: int) -> None:
        generators, shifts = [], []
        for i in range(self.done, self.done + count):
            g = torch.Generator().manual_seed(stream_seed(self.ctx.seed, STREAM + i))
            shifts.append(random_shift(g, self.probe.cells_per_shift))
            generators.append(g)
        first, second, pixels = self.probe.render(generators, shifts)
        self.pixels = pixels * self.probe.cells_per_shift
        self.size = tuple(first.shape[-2:])
        for i, shift in enumerate(shifts):
            compare_pair(self.error, self.anchored, first[i:i + 1].cpu(), second[i:i + 1].cpu(),
                         shift, self.pixels)
        self.done += count

    def add(self, images: torch.Tensor, features) -> None:
        self._pairs(min(len(images), self.num - self.done))

    def finish(self) -> tuple[dict, dict]:
        if self.done < self.num:                   # fewer fakes fed than pairs asked for
            self._pairs(self.num - self.done)
        real, num_real = real_anchored(self.ctx.real, self.num, self.size, self.pixels,
                                       self.ctx.batch_size)
        values = {"eqt": self.error.psnr()}
        protocol = {"network": None, "num_fake": self.num, "num_real": num_real,
                    "family": self.probe.family, "moved": self.probe.moved,
                    "shift_px": self.pixels, "rendered_size": list(self.size),
                    "max_psnr": MAX_PSNR, "eqt_anchored": self.anchored.psnr(),
                    "eqt_anchored_real": real, "seed": int(self.ctx.seed)}
        return values, protocol

"""Global structure of generated images: layout agreement, diversity and patch statistics.

The paper's claim about SinGAN (and, on aligned data, about every generator without padding)
is that a generator which cannot tell where it is on the canvas still produces plausible
*local* texture but loses the *global* arrangement: the sky ends up anywhere, a face's eyes and
mouth scatter. FID and SWD mix both aspects, so pegan measures them separately:

* ``structure`` (layout agreement, in [-1, 1], higher is better): each image is reduced to a
  coarse **edge-energy layout**, the mean gradient magnitude of its luminance in each cell of
  a ``GRID x GRID`` partition (cells follow the image's aspect ratio). The reference layout is
  the mean layout of the real images (for SinGAN: of the single training image). The score is
  the mean over generated images of the Pearson correlation between the image's layout and the
  reference. Edges rather than intensities make the score independent of colours (the synthetic
  dataset draws random colours, photographs change illumination) while keeping *where* the
  structure is. A set with the real layout scores like the reals (~0.7 on the synthetic
  faces); the same images with their patches shuffled score ~0, whatever their local
  statistics.
* ``diversity`` (higher means more varied): the mean over pixels of the per-pixel standard
  deviation across the generated images, in [0, 1] image units. A model that copies one image
  (SinGAN's trivial solution, or mode collapse) has a high structure score and ~0 diversity,
  so the two are reported together.
* ``patch_swd`` (lower is better, x10^3): a single-level, SIFID-like statistic of local
  appearance: sliced Wasserstein distance between random 7x7 RGB patches of the generated
  images and of the real images (PGGAN's SWD descriptor without the Laplacian pyramid, on the
  images as they are, so it works for one non-square training image). It says whether the
  *local* texture is right, which the structure score ignores.

All three read uint8 RGB images [N, 3, H, W]; no network, no download.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pegan.metrics.images import ImageSet
from pegan.metrics.registry import Output, register
from pegan.seeding import stream_seed

GRID = 8                 # layout cells per side
PATCH = 7                # patch side of patch_swd (PGGAN's descriptor size)
PATCHES_PER_IMAGE = 64   # random patches drawn per image for patch_swd
DIRECTIONS = 256         # random projections of patch_swd
MAX_PATCHES = 32768      # cap on patches per set (memory)
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def _float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected uint8 images [N, 3, H, W], got {images.dtype} {tuple(images.shape)}")
    return images.float() / 255.0


def edge_layout(images: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Coarse edge-energy layouts [N, grid*grid] of uint8 RGB images [N, 3, H, W].

    Luminance -> central-difference gradient magnitude -> mean over each of grid x grid
    cells (area pooling), flattened; not normalised (see :func:`standardize`).
    """
    luma = (_float(images) * _LUMA.to(images.device)).sum(1, keepdim=True)
    gx = luma[..., :, 2:] - luma[..., :, :-2]
    gy = luma[..., 2:, :] - luma[..., :-2, :]
    magnitude = torch.sqrt(gx[..., 1:-1, :] ** 2 + gy[..., :, 1:-1] ** 2)
    return F.adaptive_avg_pool2d(magnitude, grid).flatten(1)


def standardize(layouts: torch.Tensor) -> torch.Tensor:
    """Each row to zero mean and unit norm (so a dot product is a Pearson correlation)."""
    centred = layouts - layouts.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=1, keepdim=True).clamp_min(1e-12)


class LayoutReference:
    """Accumulates the mean edge layout of a real image set (any number of batches)."""

    def __init__(self, grid: int = GRID) -> None:
        self.grid, self.total, self.count = grid, None, 0

    def add(self, images: torch.Tensor) -> None:
        layouts = edge_layout(images, self.grid).sum(0)
        self.total = layouts if self.total is None else self.total + layouts
        self.count += len(images)

    def layout(self) -> torch.Tensor:
        if not self.count:
            raise ValueError("no real images were added to the layout reference")
        return standardize((self.total / self.count)[None])[0]


def layout_scores(images: torch.Tensor, reference: torch.Tensor, grid: int = GRID) -> torch.Tensor:
    """Per-image Pearson correlation [N] between each image's edge layout and `reference`."""
    return standardize(edge_layout(images, grid)) @ reference


class PixelMoments:
    """Running per-pixel mean and variance of a set of equally sized images (for diversity)."""

    def __init__(self) -> None:
        self.n, self.mean, self.m2 = 0, None, None

    def add(self, images: torch.Tensor) -> None:
        x = _float(images).double()
        if self.mean is None:
            self.mean, self.m2 = torch.zeros_like(x[0]), torch.zeros_like(x[0])
        for img in x:                        # Welford: exact and stable
            self.n += 1
            delta = img - self.mean
            self.mean += delta / self.n
            self.m2 += delta * (img - self.mean)

    def diversity(self) -> float:
        """Mean over pixels and channels of the per-pixel standard deviation (ddof=0)."""
        if self.n < 2:
            return 0.0
        return float(torch.sqrt(self.m2 / self.n).mean())


def random_patches(images: torch.Tensor, num_per_image: int, generator: torch.Generator,
                   patch: int = PATCH) -> torch.Tensor:
    """[N * num_per_image, 3 * patch * patch] random patches of uint8 images, in [0, 1]."""
    x = _float(images)
    n, _, h, w = x.shape
    if h < patch or w < patch:
        raise ValueError(f"images of {h}x{w} px are smaller than the {patch}-px patches")
    ys = torch.randint(0, h - patch + 1, (n, num_per_image), generator=generator)
    xs = torch.randint(0, w - patch + 1, (n, num_per_image), generator=generator)
    offsets = torch.arange(patch)
    rows = (ys[..., None] + offsets)[..., :, None]           # [n, k, p, 1]
    cols = (xs[..., None] + offsets)[..., None, :]           # [n, k, 1, p]
    idx = torch.arange(n)[:, None, None, None]
    patches = x.permute(0, 2, 3, 1)[idx, rows, cols]          # [n, k, p, p, 3]
    return patches.reshape(n * num_per_image, -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, generator: torch.Generator,
                       directions: int = DIRECTIONS) -> float:
    """Sliced Wasserstein-1 distance between two point sets [Na, D] and [Nb, D].

    Random unit directions; each projection's 1-D distance compares equally spaced quantiles
    (the sets may differ in size). Returns the mean over directions.
    """
    dirs = torch.randn(a.shape[1], directions, generator=generator, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    pa, pb = (a.double() @ dirs).sort(0).values, (b.double() @ dirs).sort(0).values
    m = max(len(pa), len(pb))
    q = (torch.arange(m, dtype=torch.float64) + 0.5) / m
    ia = (q * len(pa)).long().clamp_max(len(pa) - 1)
    ib = (q * len(pb)).long().clamp_max(len(pb) - 1)
    return float((pa[ia] - pb[ib]).abs().mean())


class PatchSet:
    """Random patches of a set of uint8 images, accumulated over batches."""

    def __init__(self, seed: int, stream: int, per_image: int = PATCHES_PER_IMAGE) -> None:
        self.generator = torch.Generator().manual_seed(stream_seed(seed, stream))
        self.per_image, self.chunks = per_image, []

    def add(self, images: torch.Tensor) -> None:
        if sum(len(c) for c in self.chunks) < MAX_PATCHES:
            self.chunks.append(random_patches(images, self.per_image, self.generator))

    def patches(self) -> torch.Tensor:
        return torch.cat(self.chunks)[:MAX_PATCHES]


def patch_swd(real: PatchSet, fake: PatchSet, seed: int) -> float:
    """x10^3 sliced Wasserstein distance between the real and fake patch sets."""
    generator = torch.Generator().manual_seed(stream_seed(seed, 7))
    return 1e3 * sliced_wasserstein(real.patches(), fake.patches(), generator)


def real_patches_per_image(num_real: int, num_fake: int) -> int:
    """Patches per real image so that both sets hold about as many patches (one SinGAN
    training image against hundreds of samples gets correspondingly more)."""
    return int(np.clip(round(PATCHES_PER_IMAGE * num_fake / max(num_real, 1)), PATCHES_PER_IMAGE,
                       MAX_PATCHES))


# ------------------------------------------------------------------ the registered metric


@register("structure", order=40, version="structure-1",
          description="global layout agreement, sample diversity and 7x7 patch SWD",
          outputs=(Output("structure", "Pearson correlation of coarse edge layouts with the "
                          "reals' mean layout", lower_is_better=False),
                   Output("diversity", "mean per-pixel std across samples, [0, 1] image units",
                          lower_is_better=False),
                   Output("patch_swd", "x10^3 sliced Wasserstein distance of random 7x7 RGB "
                          "patches", lower_is_better=True)),
          samples="structure", samples_fallback="swd", singan=True)
class StructureMetric:
    """Layout agreement, diversity and patch statistics of the fakes.

    The reference is the real set (its first `num` images, or all when it holds fewer: one
    image for SinGAN), read before the fakes and resized to the fakes' size if it differs.
    """

    def __init__(self, ctx, num: int) -> None:
        self.seed, self.num = int(ctx.seed), int(num)
        self.num_real = min(len(ImageSet(ctx.real)), self.num)
        self.reference = LayoutReference()
        self.real_patches = PatchSet(self.seed, 1, real_patches_per_image(self.num_real, num))
        self.fake_patches = PatchSet(self.seed, 2)
        self.moments = PixelMoments()
        self.scores: list[torch.Tensor] = []
        self.real_batches = list(ImageSet(ctx.real, self.num_real).batches(ctx.batch_size))
        self.real_size = tuple(self.real_batches[0].shape[-2:])
        self.resized_real = False
        self.ref_layout: torch.Tensor | None = None

    def _take_reals(self, size: tuple[int, int]) -> None:
        for batch in self.real_batches:
            if tuple(batch.shape[-2:]) != size:
                self.resized_real = True
                batch = F.interpolate(batch.float(), size=size, mode="bicubic",
                                      align_corners=False, antialias=True)
                batch = batch.round().clamp(0, 255).to(torch.uint8)
            self.reference.add(batch)
            self.real_patches.add(batch)
        self.real_batches = []
        self.ref_layout = self.reference.layout()

    def add(self, images: torch.Tensor, features) -> None:
        # on the CPU whatever device rendered them: the patch draws come from a CPU generator,
        # so a CUDA evaluation gives the CPU's numbers (and the reals are CPU tensors)
        images = images.cpu()
        if self.real_batches:
            self._take_reals(tuple(images.shape[-2:]))
        self.scores.append(layout_scores(images, self.ref_layout))
        self.moments.add(images)
        self.fake_patches.add(images)

    def finish(self) -> tuple[dict, dict]:
        values = {"structure": float(torch.cat(self.scores).mean()),
                  "diversity": self.moments.diversity(),
                  "patch_swd": patch_swd(self.real_patches, self.fake_patches, self.seed)}
        protocol = {"network": None, "num_fake": self.num, "num_real": self.num_real,
                    "grid": GRID, "patch_size": PATCH, "directions": DIRECTIONS,
                    "real_size": list(self.real_size), "real_resized": self.resized_real,
                    "seed": self.seed}
        return values, protocol

"""Sliced Wasserstein distance as PGGAN defines it (Karras et al., ICLR 2018;
``metrics/sliced_wasserstein.py`` of tkarras/progressive_growing_of_gans), vectorised in torch.

Per image set (reals and fakes separately):

1. Laplacian pyramid of the uint8 RGB images on the 0..255 scale, levels ``res, res/2, ...``
   while ``>= 16`` px: ``pyr_down`` = 5x5 binomial blur (mirror border) then keep every second
   pixel; ``pyr_up`` = zero insertion then the blur with 4x the kernel (cv2.pyrDown/pyrUp).
   Level 0 is the finest band-pass, the last level the 16-px low-pass.
2. 128 random 7x7 patches per image and level (centres uniform in [3, size-4]) -> 147-d
   descriptors.
3. Per-set, per-channel standardisation over (patch, y, x), population std.
4. Per level: 4 repeats x 128 random unit directions; project both sets, sort, mean absolute
   difference; the mean over repeats, x10³. ``avg`` is the plain mean over the levels.

One deliberate difference in *how the patches are drawn* (same distribution): each image's
patch centres come from a generator seeded by (seed, set role, level, digest of the image's
bytes) instead of one global stream. The value is then a function of the image *set*: it does
not change when the images are reordered, and it is reproducible. The directions come from a
generator seeded by (seed, level), the same for both sets.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import torch
import torch.nn.functional as F

from pegan.metrics import REGISTRY

log = logging.getLogger(__name__)

VERSION = REGISTRY["swd"].version
PATCH_SIZE = 7             # PGGAN nhood_size
PATCHES_PER_IMAGE = 128    # PGGAN nhoods_per_image
DIRECTIONS = 128           # PGGAN dir_per_repeat
REPEATS = 4                # PGGAN dirs_repeats
MIN_RES = 16               # pyramid levels down to 16 px
SCALE = 1e3                # PGGAN reports SWDx1e3
_ROLES = {"real": 1, "fake": 2}
_DIRECTION_SALT = 7


def pyramid_sizes(resolution: int, min_res: int = MIN_RES) -> list[int]:
    """Level sizes, finest first: 128 -> [128, 64, 32, 16]; 32 -> [32, 16]."""
    sizes, r = [], int(resolution)
    while r >= min_res:
        sizes.append(r)
        r = (r + 1) // 2          # size after keeping every second pixel
    if not sizes:
        raise ValueError(f"SWD needs images of at least {min_res} px, got {resolution}")
    return sizes


def binomial_kernel(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """5x5 binomial kernel outer([1,4,6,4,1]) / 256."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float64)
    return (torch.outer(k, k) / 256).to(dtype)


def _filter(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Depthwise 5x5 convolution with mirror borders (scipy ``mode='mirror'`` = torch reflect)."""
    c = x.shape[1]
    weight = kernel.to(x).expand(c, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), weight, groups=c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second pixel: [N, C, H, W] -> [N, C, ceil(H/2), ceil(W/2)]."""
    return _filter(x, binomial_kernel())[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero insertion then the blur with 4x the kernel, cropped to `size` (H, W)."""
    n, c, h, w = x.shape
    z = x.new_zeros(n, c, 2 * h, 2 * w)
    z[..., ::2, ::2] = x
    return _filter(z, 4 * binomial_kernel())[..., :size[0], :size[1]]


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels of uint8 (or 0..255 float) images, finest first; the last is low-pass."""
    levels = [images.float()]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1], tuple(levels[-2].shape[-2:]))
    return levels


def image_digests(images: torch.Tensor) -> list[int]:
    """A 63-bit digest of each uint8 image's bytes (seeds its patch positions)."""
    arr = images.detach().cpu().contiguous().numpy()
    return [int.from_bytes(hashlib.blake2b(a.tobytes(), digest_size=8).digest(), "little") >> 1
            for a in arr]


def patch_centres(digests: list[int], size: int, seed: int, role: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cy, cx) Long [len(digests) * 128]: centres uniform in [3, size-4], per image."""
    half = PATCH_SIZE // 2
    cy, cx = [], []
    for d in digests:
        rng = np.random.default_rng([int(seed), _ROLES[role], int(size), d])
        cx.append(rng.integers(half, size - half, PATCHES_PER_IMAGE))   # PGGAN draws x first
        cy.append(rng.integers(half, size - half, PATCHES_PER_IMAGE))
    return torch.from_numpy(np.concatenate(cy)), torch.from_numpy(np.concatenate(cx))


def extract_patches(level: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] level + centres for 128 patches per image -> [N * 128, C, 7, 7]."""
    n = level.shape[0]
    offs = torch.arange(-(PATCH_SIZE // 2), PATCH_SIZE // 2 + 1, device=level.device)
    img = torch.arange(n, device=level.device).repeat_interleave(len(cy) // n)
    ys = cy.to(level.device)[:, None] + offs                      # [P, 7]
    xs = cx.to(level.device)[:, None] + offs                      # [P, 7]
    patches = level[img[:, None, None], :, ys[:, :, None], xs[:, None, :]]   # [P, 7, 7, C]
    return patches.permute(0, 3, 1, 2)


class SWDDescriptors:
    """Accumulates the patch descriptors of one image set, batch by batch.

    Args:
        resolution: image size (square) in pixels.
        seed: seed of the patch positions.
        role: ``real`` or ``fake`` (the two sets draw independent patch positions).
        device: where the pyramid is computed (descriptors are kept on the CPU).
    """

    def __init__(self, resolution: int, seed: int = 0, role: str = "fake",
                 device: str | torch.device = "cpu") -> None:
        if role not in _ROLES:
            raise ValueError(f"role must be one of {sorted(_ROLES)}")
        self.resolution, self.seed, self.role = int(resolution), int(seed), role
        self.device = torch.device(device)
        self.sizes = pyramid_sizes(self.resolution)
        self._desc: list[list[torch.Tensor]] = [[] for _ in self.sizes]
        self.num_images = 0

    @torch.no_grad()
    def add(self, images: torch.Tensor) -> None:
        """Add uint8 [B, C, H, W] images (C = 3, or 1 tiled to RGB; H = W = resolution)."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        if tuple(images.shape[1:]) != (3, self.resolution, self.resolution):
            raise ValueError(f"SWD expects [B, 3, {self.resolution}, {self.resolution}] images, "
                             f"got {list(images.shape)}")
        digests = image_digests(images)
        levels = laplacian_pyramid(images.to(self.device), len(self.sizes))
        for i, (size, level) in enumerate(zip(self.sizes, levels)):
            cy, cx = patch_centres(digests, size, self.seed, self.role)
            self._desc[i].append(extract_patches(level, cy, cx).float().cpu())
        self.num_images += len(images)

    def finalize(self) -> list[torch.Tensor]:
        """Per level, standardised descriptors [num_images * 128, 147]."""
        if not self.num_images:
            raise ValueError("no images were added")
        return [standardize(torch.cat(d)) for d in self._desc]


def standardize(desc: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Per-channel mean/std over (patch, y, x), population std; [P, C, 7, 7] -> [P, C*49]."""
    s = torch.zeros(desc.shape[1], dtype=torch.float64)
    ss = torch.zeros_like(s)
    for i in range(0, len(desc), chunk):
        part = desc[i:i + chunk].double()
        s += part.sum(dim=(0, 2, 3))
        ss += (part * part).sum(dim=(0, 2, 3))
    count = desc.shape[0] * desc.shape[2] * desc.shape[3]
    mean = s / count
    std = (ss / count - mean * mean).clamp_min(0).sqrt().clamp_min(1e-8)
    out = (desc - mean.float()[None, :, None, None]) / std.float()[None, :, None, None]
    return out.reshape(len(desc), -1)


def directions(seed: int, size: int, dim: int) -> list[torch.Tensor]:
    """REPEATS float32 [dim, DIRECTIONS] matrices of unit columns (seeded by seed and level)."""
    rng = np.random.default_rng([int(seed), _DIRECTION_SALT, int(size)])
    out = []
    for _ in range(REPEATS):
        d = rng.standard_normal((dim, DIRECTIONS))
        d /= np.sqrt(np.sum(d * d, axis=0, keepdims=True))
        out.append(torch.from_numpy(d.astype(np.float32)))
    return out


@torch.no_grad()
def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, dirs: list[torch.Tensor],
                       device: str | torch.device = "cpu", dir_chunk: int = 32) -> float:
    """Mean over all directions of the mean |sorted(a·d) - sorted(b·d)| (not yet x10³)."""
    if a.shape != b.shape:
        raise ValueError(f"SWD needs descriptor sets of equal shape, got {list(a.shape)} "
                         f"and {list(b.shape)}")
    device = torch.device(device)
    a, b = a.to(device), b.to(device)
    total, count = 0.0, 0
    for d in dirs:
        d = d.to(device)
        for j in range(0, d.shape[1], dir_chunk):
            dj = d[:, j:j + dir_chunk]
            pa = torch.sort(torch.mm(dj.T, a.T), dim=1).values     # [dirs, P]
            pb = torch.sort(torch.mm(dj.T, b.T), dim=1).values
            total += (pa - pb).abs().sum(dtype=torch.float64).item()
            count += pa.numel()
    return total / count


def swd_from_descriptors(real: list[torch.Tensor], fake: list[torch.Tensor], sizes: list[int],
                         seed: int = 0, device: str | torch.device = "cpu") -> dict[str, float]:
    """{str(level size): SWD x10³, ..., "avg": mean over levels} from finalised descriptors."""
    out = {}
    for size, a, b in zip(sizes, real, fake):
        out[str(size)] = SCALE * sliced_wasserstein(a, b, directions(seed, size, a.shape[1]),
                                                    device)
    out["avg"] = float(np.mean([out[str(s)] for s in sizes]))
    return out


def swd(real: torch.Tensor, fake: torch.Tensor, seed: int = 0, batch_size: int = 64,
        device: str | torch.device = "cpu") -> dict[str, float]:
    """SWD x10³ per level and the average between two uint8 [N, 3, R, R] image sets."""
    if len(real) != len(fake):
        raise ValueError(f"SWD compares sets of equal size, got {len(real)} and {len(fake)}")
    res = real.shape[-1]
    acc = {role: SWDDescriptors(res, seed, role, device) for role in ("real", "fake")}
    for role, images in (("real", real), ("fake", fake)):
        for i in range(0, len(images), batch_size):
            acc[role].add(images[i:i + batch_size])
    return swd_from_descriptors(acc["real"].finalize(), acc["fake"].finalize(),
                                acc["real"].sizes, seed, device)

"""Sliced Wasserstein distance as PGGAN defines it (Karras et al., ICLR 2018;
``metrics/sliced_wasserstein.py`` of tkarras/progressive_growing_of_gans).

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

How it is computed (the numbers do not depend on it beyond float32 rounding):

* The blur-and-subsample and the zero-insert-and-blur are linear maps along each image axis,
  so each pyramid step is two matrix products with small ``[size/2, size]`` operator matrices
  that include the mirror border (:func:`pyramid_operators`). On the CPU they run as single
  numpy GEMMs on a ``[H, N, C, W]`` layout; on a GPU as batched torch matmuls.
* Descriptors stream into float32 slabs of ``SLAB_ROWS`` rows while per-channel sums and sums
  of squares accumulate in float64; ``finalize`` standardises in place, so one set's memory is
  its float32 descriptors (plus one slab while the slabs are joined).
* The distance splits the directions over ``torch.get_num_threads()`` worker threads. Each
  projects ``k`` of them at a time (``k`` such that its two ``[k, P]`` buffers stay within
  ``PROJECTION_BYTES``, at most ``DIRECTIONS_PER_GEMM``) with a one-thread GEMM and sorts
  the rows with numpy's SIMD sort right after, on the same thread: no thread waits for
  another's GEMM (numpy's GEMM on all threads, then the sorts on all threads, took 0.295 s
  instead of 0.19 s per level of 65536 descriptors: OpenBLAS's threads keep spinning after
  each call), and the memory is bounded per worker. On a GPU it stays in torch.
"""

from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from pegan.metrics.registry import Output, register

VERSION = "swd-1"          # bump when the protocol (not the speed) changes
PATCH_SIZE = 7             # PGGAN nhood_size
PATCHES_PER_IMAGE = 128    # PGGAN nhoods_per_image
DIRECTIONS = 128           # PGGAN dir_per_repeat
REPEATS = 4                # PGGAN dirs_repeats
MIN_RES = 16               # pyramid levels down to 16 px
SCALE = 1e3                # PGGAN reports SWDx1e3
SLAB_ROWS = 1 << 16        # descriptors per storage slab (38.5 MB of float32 at 147 dims)
PROJECTION_BYTES = 1 << 27  # bound of each of a worker's two projection buffers
DIRECTIONS_PER_GEMM = 64   # ... and of the directions projected at a time (GEMM efficiency)
_ROLES = {"real": 1, "fake": 2}
_DIRECTION_SALT = 7
_TAPS = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16   # 1-D binomial; the 5x5 kernel is its outer


def pyramid_sizes(resolution: int, min_res: int = MIN_RES) -> list[int]:
    """Level sizes, finest first: 128 -> [128, 64, 32, 16]; 32 -> [32, 16]."""
    sizes, r = [], int(resolution)
    while r >= min_res:
        sizes.append(r)
        r = (r + 1) // 2          # size after keeping every second pixel
    if not sizes:
        raise ValueError(f"SWD needs images of at least {min_res} px, got {resolution}")
    return sizes


def _mirror(i: int, n: int) -> int:
    """scipy ``mode='mirror'`` index (d c b | a b c d | c b a): reflect without the edge."""
    if i < 0:
        return -i
    return 2 * (n - 1) - i if i > n - 1 else i


@functools.lru_cache(maxsize=None)
def _down_matrix(n: int) -> np.ndarray:
    """[ceil(n/2), n] float64: mirror-border blur along one axis, every second sample kept."""
    m = np.zeros(((n + 1) // 2, n))
    for i in range(m.shape[0]):
        for t, w in enumerate(_TAPS):
            m[i, _mirror(2 * i + t - 2, n)] += w
    return m


@functools.lru_cache(maxsize=None)
def _up_matrix(m: int, n: int) -> np.ndarray:
    """[n, m] float64: zero insertion to 2m samples, mirror-border blur with 2x the taps
    (the 5x5 kernel x4 is the outer product of the 1-D taps x2), first n samples kept."""
    if not m <= n <= 2 * m:
        raise ValueError(f"cannot up-sample {m} samples to {n}")
    full = np.zeros((2 * m, m))
    for j in range(2 * m):
        for t, w in enumerate(_TAPS):
            src = _mirror(j + t - 2, 2 * m)
            if src % 2 == 0:
                full[j, src // 2] += 2 * w
    return full[:n]


def pyramid_operators(n: int) -> tuple[np.ndarray, np.ndarray]:
    """float32 (down [ceil(n/2), n], up [n, ceil(n/2)]) of one pyramid step on n-px images:
    ``pyr_down(x) = down @ x @ down.T`` and ``pyr_up(y) = up @ y @ up.T`` per channel."""
    return (_down_matrix(n).astype(np.float32),
            _up_matrix((n + 1) // 2, n).astype(np.float32))


def _both_axes(x: torch.Tensor, rows: np.ndarray, cols: np.ndarray) -> torch.Tensor:
    """``rows @ x @ cols.T`` over the last two axes of a float [N, C, H, W] tensor."""
    r = torch.from_numpy(rows).to(x.device)
    c = torch.from_numpy(np.ascontiguousarray(cols.T)).to(x.device)
    return torch.matmul(torch.matmul(r, x), c)


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur then keep every second pixel: [N, C, H, W] -> [N, C, ceil(H/2), ceil(W/2)]."""
    x = x.float()
    return _both_axes(x, _down_matrix(x.shape[-2]).astype(np.float32),
                      _down_matrix(x.shape[-1]).astype(np.float32))


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero insertion then the blur with 4x the kernel, cropped to `size` (H, W)."""
    x = x.float()
    return _both_axes(x, _up_matrix(x.shape[-2], size[0]).astype(np.float32),
                      _up_matrix(x.shape[-1], size[1]).astype(np.float32))


def laplacian_pyramid(images: torch.Tensor, num_levels: int) -> list[torch.Tensor]:
    """Band-pass levels [N, C, h, w] of uint8 (or 0..255 float) square images, finest first;
    the last is the low-pass. Runs where `images` are (CPU: numpy GEMMs)."""
    if images.device.type == "cpu" and images.shape[-1] == images.shape[-2]:
        levels = _pyramid_hncw(images.detach().numpy(), num_levels)
        return [torch.from_numpy(lv.transpose(1, 2, 0, 3)) for lv in levels]
    levels = [images.float()]
    for _ in range(1, num_levels):
        levels.append(pyr_down(levels[-1]))
        levels[-2] = levels[-2] - pyr_up(levels[-1], tuple(levels[-2].shape[-2:]))
    return levels


def _pyramid_hncw(images: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """CPU pyramid of square uint8 (or float) [N, C, S, S] images; each level float32 in the
    layout [H, N, C, W], where both axis products are one GEMM each without copies."""
    n, c, s, _ = images.shape
    x = np.ascontiguousarray(images.transpose(2, 0, 1, 3), dtype=np.float32)   # [H, N, C, W]
    levels = [x]
    for _ in range(1, num_levels):
        down, up = pyramid_operators(s)
        m = down.shape[0]
        cols = (x.reshape(-1, s) @ down.T).reshape(s, -1)           # along W: [H, N*C*m]
        low = (down @ cols).reshape(m, n, c, m)                     # along H: [m, N, C, m]
        cols = (low.reshape(-1, m) @ up.T).reshape(m, -1)            # [m, N*C*S]
        x -= (up @ cols).reshape(s, n, c, s)                        # band-pass in place
        levels.append(low)
        x, s = low, m
    return levels


def image_digests(images: torch.Tensor) -> list[int]:
    """A 63-bit digest of each uint8 image's bytes (seeds its patch positions)."""
    arr = images.detach().cpu().contiguous().numpy()
    return [int.from_bytes(hashlib.blake2b(a.tobytes(), digest_size=8).digest(), "little") >> 1
            for a in arr]


def patch_centres(digests: list[int], size: int, seed: int, role: str
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cy, cx) Long [len(digests) * 128]: centres uniform in [3, size-4], per image."""
    cy, cx = _centres(digests, size, seed, role)
    return torch.from_numpy(cy), torch.from_numpy(cx)


def _centres(digests: list[int], size: int, seed: int, role: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """numpy (cy, cx) of :func:`patch_centres`."""
    half = PATCH_SIZE // 2
    cy = np.empty((len(digests), PATCHES_PER_IMAGE), np.int64)
    cx = np.empty_like(cy)
    for i, d in enumerate(digests):
        rng = np.random.default_rng([int(seed), _ROLES[role], int(size), d])
        cx[i] = rng.integers(half, size - half, PATCHES_PER_IMAGE)   # PGGAN draws x first
        cy[i] = rng.integers(half, size - half, PATCHES_PER_IMAGE)
    return cy.ravel(), cx.ravel()


def extract_patches(level: torch.Tensor, cy: torch.Tensor, cx: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] level + centres for 128 patches per image -> [N * 128, C, 7, 7]."""
    n = level.shape[0]
    offs = torch.arange(-(PATCH_SIZE // 2), PATCH_SIZE // 2 + 1, device=level.device)
    img = torch.arange(n, device=level.device).repeat_interleave(len(cy) // n)
    ys = cy.to(level.device)[:, None] + offs                      # [P, 7]
    xs = cx.to(level.device)[:, None] + offs                      # [P, 7]
    patches = level[img[:, None, None], :, ys[:, :, None], xs[:, None, :]]   # [P, 7, 7, C]
    return patches.permute(0, 3, 1, 2)


def _extract_hncw(level: np.ndarray, cy: np.ndarray, cx: np.ndarray) -> np.ndarray:
    """float32 [H, N, C, W] level + centres -> [N * 128, C, 7, 7] descriptors."""
    half = PATCH_SIZE // 2
    windows = sliding_window_view(level, (PATCH_SIZE, PATCH_SIZE), axis=(0, 3))
    img = np.repeat(np.arange(level.shape[1]), PATCHES_PER_IMAGE)
    return windows[cy - half, img, :, cx - half]                  # [P, C, 7, 7]


class _Level:
    """One pyramid level's descriptors of one set: float32 slabs plus float64 moments."""

    def __init__(self, dim: int, channels: int) -> None:
        self.dim, self.channels = dim, channels
        self.slabs: list[np.ndarray] = []
        self.rows = 0
        self.sum = np.zeros(dim)
        self.sumsq = np.zeros(dim)

    def append(self, desc: np.ndarray) -> None:
        """Copy [n, dim] float32 descriptors into the slabs and update the moments."""
        self.sum += desc.sum(axis=0, dtype=np.float64)
        self.sumsq += np.einsum("ij,ij->j", desc, desc, dtype=np.float64)
        done = 0
        while done < len(desc):
            used = self.rows % SLAB_ROWS
            if used == 0:
                self.slabs.append(np.empty((SLAB_ROWS, self.dim), np.float32))
            take = min(SLAB_ROWS - used, len(desc) - done)
            self.slabs[-1][used:used + take] = desc[done:done + take]
            done += take
            self.rows += take

    def standardized(self) -> np.ndarray:
        """[rows, dim] float32 standardised per channel (population std); empties the level."""
        count = self.rows * (self.dim // self.channels)
        mean = self.sum.reshape(self.channels, -1).sum(1) / count
        var = self.sumsq.reshape(self.channels, -1).sum(1) / count - mean * mean
        std = np.sqrt(np.maximum(var, 0)).clip(min=1e-8)
        shift = np.repeat(mean, self.dim // self.channels).astype(np.float32)
        scale = np.repeat(1 / std, self.dim // self.channels).astype(np.float32)
        if len(self.slabs) == 1:              # nothing to join: standardise in place
            out = self.slabs.pop()[:self.rows]
            out -= shift
            out *= scale
        else:
            # the joined array's pages are first written as each slab is released, so the
            # resident peak is the level's descriptors plus one slab
            out = np.empty((self.rows, self.dim), np.float32)
            for start in range(0, self.rows, SLAB_ROWS):
                slab = self.slabs.pop(0)
                part = out[start:start + SLAB_ROWS]
                np.subtract(slab[:len(part)], shift, out=part)
                part *= scale
                del slab
        self.rows = 0                                      # handed over: the level is empty
        return out


class SWDDescriptors:
    """Accumulates the patch descriptors of one image set, batch by batch.

    Args:
        resolution: image size (square) in pixels.
        seed: seed of the patch positions.
        role: ``real`` or ``fake`` (the two sets draw independent patch positions).
        device: where the pyramid is computed (descriptors are kept on the CPU).

    Memory: the float32 descriptors, 128 x 147 x 4 bytes per image and level, plus one slab.
    ``finalize`` hands them over standardised (in place) and empties the accumulator.
    """

    def __init__(self, resolution: int, seed: int = 0, role: str = "fake",
                 device: str | torch.device = "cpu") -> None:
        if role not in _ROLES:
            raise ValueError(f"role must be one of {sorted(_ROLES)}")
        self.resolution, self.seed, self.role = int(resolution), int(seed), role
        self.device = torch.device(device)
        self.sizes = pyramid_sizes(self.resolution)
        dim = 3 * PATCH_SIZE * PATCH_SIZE
        self._levels = [_Level(dim, 3) for _ in self.sizes]
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
        if self.device.type == "cpu":
            levels = _pyramid_hncw(images.cpu().numpy(), len(self.sizes))
        else:
            levels = laplacian_pyramid(images.to(self.device), len(self.sizes))
        for size, level, store in zip(self.sizes, levels, self._levels):
            cy, cx = _centres(digests, size, self.seed, self.role)
            if self.device.type == "cpu":
                desc = _extract_hncw(level, cy, cx)
            else:
                desc = extract_patches(level, torch.from_numpy(cy), torch.from_numpy(cx))
                desc = desc.float().cpu().numpy()
            store.append(desc.reshape(len(desc), -1))
        self.num_images += len(images)

    def finalize(self) -> list[torch.Tensor]:
        """Per level, standardised float32 descriptors [num_images * 128, 147] (CPU).

        The accumulator gives its storage away (standardised in place): call it once."""
        if not self.num_images:
            raise ValueError("no images were added")
        if any(level.rows == 0 for level in self._levels):
            raise ValueError("finalize() was already called")
        return [torch.from_numpy(level.standardized()) for level in self._levels]


def standardize(desc: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
    """Per-channel mean/std over (patch, y, x), population std; [P, C, 7, 7] -> [P, C*49]."""
    flat = desc.reshape(len(desc), -1).float().cpu().numpy()
    level = _Level(flat.shape[1], desc.shape[1])
    for i in range(0, len(flat), chunk):
        level.append(flat[i:i + chunk])
    return torch.from_numpy(level.standardized())


def directions(seed: int, size: int, dim: int) -> list[torch.Tensor]:
    """REPEATS float32 [dim, DIRECTIONS] matrices of unit columns (seeded by seed and level)."""
    rng = np.random.default_rng([int(seed), _DIRECTION_SALT, int(size)])
    out = []
    for _ in range(REPEATS):
        d = rng.standard_normal((dim, DIRECTIONS))
        d /= np.sqrt(np.sum(d * d, axis=0, keepdims=True))
        out.append(torch.from_numpy(d.astype(np.float32)))
    return out


def _directions_distance(dt: torch.Tensor, a: torch.Tensor, b: torch.Tensor, rows: range,
                         k: int) -> float:
    """Sum over directions `rows` of ``dt`` [m, dim] of sum |sort(a·d) - sort(b·d)|, `k`
    directions per GEMM into two [k, P] buffers, sorted and compared right after.
    Runs on the calling thread only (its pool sets one intra-op thread per worker)."""
    xa, xb = torch.empty(k, len(a)), torch.empty(k, len(b))
    total = 0.0
    for j in range(rows.start, rows.stop, k):
        n = min(k, rows.stop - j)
        pa, pb = xa[:n], xb[:n]
        torch.mm(dt[j:j + n], a.T, out=pa)
        torch.mm(dt[j:j + n], b.T, out=pb)
        na, nb = pa.numpy(), pb.numpy()
        na.sort(axis=1)                           # numpy's SIMD sort; releases the GIL
        nb.sort(axis=1)
        np.subtract(na, nb, out=na)
        np.abs(na, out=na)
        total += float(na.sum(axis=1).sum(dtype=np.float64))
    return total


@torch.no_grad()
def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, dirs: list[torch.Tensor],
                       device: str | torch.device = "cpu", dir_chunk: int = 32) -> float:
    """Mean over all directions of the mean |sorted(a·d) - sorted(b·d)| (not yet x10³).

    CPU: the directions are split over ``torch.get_num_threads()`` worker threads; each
    projects ``k = PROJECTION_BYTES // (4 P)`` of them at a time (at most
    ``DIRECTIONS_PER_GEMM``) with a one-thread GEMM and sorts the rows with numpy's SIMD
    sort right after; `dir_chunk` is unused there. Other devices: torch,
    `dir_chunk` directions at a time."""
    if a.shape != b.shape:
        raise ValueError(f"SWD needs descriptor sets of equal shape, got {list(a.shape)} "
                         f"and {list(b.shape)}")
    device = torch.device(device)
    if device.type != "cpu":
        return _sliced_wasserstein_torch(a, b, dirs, device, dir_chunk)
    a = a.detach().cpu().float().contiguous()
    b = b.detach().cpu().float().contiguous()
    dt = torch.cat([d.detach().cpu().float() for d in dirs], dim=1).T.contiguous()  # [m, dim]
    p, m = len(a), len(dt)
    k = int(np.clip(PROJECTION_BYTES // (4 * max(p, 1)), 1, DIRECTIONS_PER_GEMM))
    threads = torch.get_num_threads()
    workers = max(1, min(threads, -(-m // k)))
    bounds = np.linspace(0, m, workers + 1).astype(int)
    shares = [range(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
    try:
        # each worker's GEMMs run on its own thread: torch's intra-op thread count is
        # per thread once set, and the caller's count is restored below
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads,
                                initargs=(1,)) as pool:
            total = sum(pool.map(lambda r: _directions_distance(dt, a, b, r, k), shares))
    finally:
        torch.set_num_threads(threads)
    return total / (p * m)


def _sliced_wasserstein_torch(a: torch.Tensor, b: torch.Tensor, dirs: list[torch.Tensor],
                              device: torch.device, dir_chunk: int) -> float:
    """:func:`sliced_wasserstein` on a torch device (projection, sort and sum stay there)."""
    a, b = a.to(device), b.to(device)
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    for d in dirs:
        d = d.to(device)
        for j in range(0, d.shape[1], dir_chunk):
            dj = d[:, j:j + dir_chunk]
            pa = torch.sort(torch.mm(dj.T, a.T), dim=1).values     # [dirs, P]
            pb = torch.sort(torch.mm(dj.T, b.T), dim=1).values
            total += (pa - pb).abs().sum(dtype=torch.float64)
            count += pa.numel()
    return float(total.item()) / count


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


# ----------------------------------------------------------------- the registered metric


@register("swd", order=30, version=VERSION,
          description="sliced Wasserstein distance x10^3 per pyramid level and avg (PGGAN)",
          outputs=(Output("swd", "x10^3 per level size in px, avg = mean of all levels",
                          lower_is_better=True, levels=True),),
          samples="swd")
class SWDMetric:
    """PGGAN's SWD between the fakes and the first `num` real images at the same size."""

    def __init__(self, ctx, num: int) -> None:
        self.ctx, self.num = ctx, int(num)
        self.fake = SWDDescriptors(ctx.scale, ctx.seed, "fake", ctx.device)

    def add(self, images: torch.Tensor, features) -> None:
        self.fake.add(images)

    def finish(self) -> tuple[dict, dict]:
        ctx = self.ctx
        real = SWDDescriptors(ctx.scale, ctx.seed, "real", ctx.device)
        for batch in ctx.real_batches(self.num):
            real.add(batch)
        value = swd_from_descriptors(real.finalize(), self.fake.finalize(), real.sizes,
                                     ctx.seed, ctx.device)
        return {"swd": value}, {"network": None, "num_fake": self.num, "num_real": self.num,
                                "levels": real.sizes, "patch_size": PATCH_SIZE,
                                "patches_per_image": PATCHES_PER_IMAGE,
                                "directions": REPEATS * DIRECTIONS, "seed": int(ctx.seed)}

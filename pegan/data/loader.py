"""Training batches addressed by iteration number, so that a resumed run sees the same data.

The global batch of iteration ``i`` is positions ``[i*B, (i+1)*B)`` of the endless sequence of
per-epoch shuffles; epoch ``e``'s order and flips come from ``numpy.random.default_rng([seed,
e])``. The data order therefore needs no state beyond (seed, dataset size, batch, iteration),
and rank ``r`` of ``W`` takes the ``r``-th slice of ``B / W`` images.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from pegan.data.images import ImageArchive, square, to_array

log = logging.getLogger(__name__)
PRELOAD_BYTES = 1 << 30          # datasets up to 1 GiB are decoded once, into memory


class ImageDataset(torch.utils.data.Dataset):
    """Square RGB images of a folder/zip at `resolution` px, as [3, R, R] uint8 tensors.

    Images of another size are centre-cropped and resized (antialiased); prepared zips
    (``pegan prepare-data``) already have the right size.
    """

    def __init__(self, path: str | Path, resolution: int, preload: bool | None = None) -> None:
        self.archive = ImageArchive(path)
        self.resolution = resolution
        self._cache: torch.Tensor | None = None
        nbytes = len(self.archive) * 3 * resolution * resolution
        if preload if preload is not None else nbytes <= PRELOAD_BYTES:
            self._cache = torch.stack([self._load(i) for i in range(len(self.archive))])

    def __len__(self) -> int:
        return len(self.archive)

    @property
    def in_memory(self) -> bool:
        return self._cache is not None

    def _load(self, index: int) -> torch.Tensor:
        img = square(self.archive.read(index), self.resolution)
        return torch.from_numpy(to_array(img).copy()).permute(2, 0, 1).contiguous()

    def __getitem__(self, index: int) -> torch.Tensor:
        if self._cache is not None:
            return self._cache[index]
        return self._load(index)

    def batch(self, indices: np.ndarray) -> torch.Tensor:
        if self._cache is not None:
            return self._cache[torch.from_numpy(np.asarray(indices, dtype=np.int64))]
        return torch.stack([self._load(int(i)) for i in indices])


@dataclass(frozen=True)
class IterationSampler:
    """Which images (and which flips) iteration `i` uses; see the module docstring."""

    num_images: int
    batch: int                     # global batch
    seed: int
    flip: bool = True              # horizontal flips with probability 0.5 (official pipeline)

    def _epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(self.num_images)
        flips = rng.random(self.num_images) < 0.5 if self.flip else np.zeros(self.num_images, bool)
        return order, flips

    def global_batch(self, iteration: int) -> tuple[np.ndarray, np.ndarray]:
        """(indices [B], flips [B]) of the whole batch of `iteration`."""
        start = iteration * self.batch
        idx, flips = [], []
        pos = start
        while pos < start + self.batch:
            epoch, offset = divmod(pos, self.num_images)
            order, flip = self._epoch(epoch)
            take = min(self.num_images - offset, start + self.batch - pos)
            idx.append(order[offset:offset + take])
            flips.append(flip[offset:offset + take])
            pos += take
        return np.concatenate(idx), np.concatenate(flips)

    def rank_batch(self, iteration: int, rank: int, world_size: int) -> tuple[np.ndarray, np.ndarray]:
        idx, flips = self.global_batch(iteration)
        per = self.batch // world_size
        return idx[rank * per:(rank + 1) * per], flips[rank * per:(rank + 1) * per]

    def state(self, next_iteration: int) -> dict:
        """The data-order state a checkpoint records."""
        return {"num_images": self.num_images, "batch": self.batch, "seed": self.seed,
                "flip": self.flip, "next_iteration": next_iteration}


class _IterationBatches(torch.utils.data.Dataset):
    """Map-style view `iteration -> uint8 batch` (lets a DataLoader prefetch in workers)."""

    def __init__(self, dataset: ImageDataset, sampler: IterationSampler, rank: int, world: int):
        self.dataset, self.sampler, self.rank, self.world = dataset, sampler, rank, world

    def __len__(self) -> int:                     # endless; DataLoader never asks with a sampler
        return 2 ** 62

    def __getitem__(self, iteration: int) -> torch.Tensor:
        idx, flips = self.sampler.rank_batch(iteration, self.rank, self.world)
        imgs = self.dataset.batch(idx)
        if flips.any():
            imgs = imgs.clone()
            sel = torch.from_numpy(np.nonzero(flips)[0])
            imgs[sel] = imgs[sel].flip(-1)
        return imgs


def real_batches(dataset: ImageDataset, sampler: IterationSampler, *, start_iteration: int,
                 rank: int = 0, world_size: int = 1, device: torch.device | str = "cpu",
                 workers: int = 0) -> Iterator[torch.Tensor]:
    """This rank's real batches from `start_iteration` on: float [b, 3, R, R] in [-1, 1]."""
    view = _IterationBatches(dataset, sampler, rank, world_size)
    if workers > 0:
        # an own generator: the loader's worker seed must not consume the global torch RNG
        source = iter(torch.utils.data.DataLoader(
            view, batch_size=None, sampler=itertools.count(start_iteration),
            num_workers=workers, pin_memory=torch.device(device).type == "cuda",
            persistent_workers=True, prefetch_factor=4,
            generator=torch.Generator().manual_seed(sampler.seed)))
    else:
        source = (view[i] for i in itertools.count(start_iteration))
    for batch in source:
        yield batch.to(device, non_blocking=True).to(torch.float32) / 127.5 - 1.0

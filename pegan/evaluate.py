"""Evaluate a generator snapshot (or a folder/zip of images) at one scale against a dataset.

One seeded pass generates the fakes; one Inception pass over them serves FID, KID and (with
the Inception network) precision/recall; SWD reads the same uint8 images. The result is one
JSON file: ``values`` and the ``protocol`` that produced them.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from pegan.errors import PeganError
from pegan.metrics.fid import FeatureExtractor, frechet_distance, stats
from pegan.metrics.real_features import RealFeatures, load_real_features

log = logging.getLogger(__name__)

# How a generated image becomes uint8, as the references do (SG2ADA / MMGeneration P&R):
# truncation toward zero, not rounding.
def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 [0, 255]: ``(x * 127.5 + 128).clamp(0, 255)``."""
    return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------ generation


class Sampler:
    """Seeded uint8 samples of a generator at one scale, in batches.

    ``z = randn(num, G.z_dim)`` is drawn at once from ``torch.Generator().manual_seed(seed)``
    on the CPU, so the images do not depend on the batch size or the device. When `scale` is
    not a size G produces, G samples at the nearest producible size >= `scale` (or its base
    resolution) and the images are resized to `scale` (bicubic, antialiased) before the uint8
    conversion; ``resized_from`` records that size.
    """

    def __init__(self, G: torch.nn.Module, *, scale: int, num: int, seed: int,
                 device: str | torch.device = "cpu", batch_size: int = 16,
                 scales: list[int] | None = None) -> None:
        self.G, self.scale, self.num, self.seed = G, int(scale), int(num), int(seed)
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self.z = torch.randn(self.num, G.z_dim, generator=torch.Generator().manual_seed(self.seed))
        self.gen_scale = self._producible(scales)
        self.resized_from: int | None = None

    def _producible(self, scales: list[int] | None) -> int | None:
        if not scales or self.scale in scales:
            return self.scale
        larger = [s for s in scales if s >= self.scale]
        return min(larger) if larger else max(scales)

    @torch.no_grad()
    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        try:
            return self.G(z, scale=self.gen_scale)
        except PeganError:
            if self.gen_scale is None:
                raise
            log.info("G cannot produce %d px; sampling at its base resolution", self.gen_scale)
            self.gen_scale = None
            return self.G(z, scale=None)

    @torch.no_grad()
    def batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        """uint8 [B, 3, scale, scale] batches of the first `num` (default all) samples."""
        num = self.num if num is None else num
        for start in range(0, num, self.batch_size):
            z = self.z[start:min(start + self.batch_size, num)].to(self.device)
            x = self._generate(z).float()
            if tuple(x.shape[-2:]) != (self.scale, self.scale):
                self.resized_from = int(x.shape[-1])
                x = F.interpolate(x, size=(self.scale, self.scale), mode="bicubic",
                                  align_corners=False, antialias=True)
            yield to_uint8(x)


# ------------------------------------------------------------------------------- FID


@functools.lru_cache(maxsize=4)
def _load_real_cached(path: str, mtime_ns: int) -> RealFeatures:   # mtime: cache key only
    return load_real_features(path)


def cached_real_features(path: str | Path) -> RealFeatures:
    """Load a real-features file once per process (selection calls FID many times)."""
    p = Path(path).resolve()
    if not p.is_file():
        return load_real_features(p)   # raises the clear error
    return _load_real_cached(str(p), p.stat().st_mtime_ns)


def extractor_for(rf: RealFeatures, inception_path: str | None = None,
                  device: str | torch.device = "cpu", batch_size: int = 16) -> FeatureExtractor:
    """A feature extractor with the real features' protocol (mode, and network when present).

    The network recorded in the file is reused when it is still there; an explicit
    `inception_path` wins. A different weights file than the real features' is logged.
    """
    recorded = rf.meta.get("network", {})
    path = inception_path
    if path is None and recorded.get("file") and Path(recorded["file"]).is_file():
        path = recorded["file"]
    extractor = FeatureExtractor(rf.mode, path, device, batch_size)
    if recorded.get("sha256") and extractor.source.sha256 != recorded["sha256"]:
        log.warning("the fakes use Inception %s (sha256 %s), the real features %s (sha256 %s)",
                    extractor.source.path, extractor.source.sha256, recorded.get("file"),
                    recorded["sha256"])
    return extractor


def generator_fid(G: torch.nn.Module, *, scale: int, real_features: str | Path, num: int,
                  seed: int, device: str | torch.device = "cpu", batch_size: int = 16,
                  inception_path: str | None = None) -> float:
    """FID of `num` images of G at `scale` against a cached real-features file.

    Same protocol as the file (clean-fid mode, Inception weights); all the file's real
    features are used (their stored mu/sigma). Fakes: ``z ~ randn(num, G.z_dim)`` from
    ``torch.Generator().manual_seed(seed)``, ``G(z, scale=scale)``, quantised to uint8 like
    image files. G is used as given (device and mode are the caller's).

    Args:
        G: a generator with ``z_dim`` and ``forward(z, scale=None)`` -> [-1, 1] NCHW RGB.
        scale: output size in pixels (resized from the nearest producible size if needed).
        real_features: ``.npz`` written by ``pegan real-features``.
        num: number of generated images.
        seed: seed of the latent draws.
        device: where z goes and the Inception runs.
        batch_size: generator and Inception batch size.
        inception_path: explicit Inception weights; None: the file's, else the default order.

    Returns:
        The FID (float).
    """
    rf = cached_real_features(real_features)
    if rf.meta.get("resolution") not in (None, int(scale)):
        raise PeganError(f"real features {real_features} are at {rf.meta['resolution']} px, "
                         f"FID was asked at {scale} px")
    extractor = extractor_for(rf, inception_path, device, batch_size)
    sampler = Sampler(G, scale=scale, num=num, seed=seed, device=device, batch_size=batch_size)
    fake = np.concatenate([extractor.images(b) for b in sampler.batches()])
    return frechet_distance(*stats(fake), rf.mu, rf.sigma)

"""The cached real-image statistics: Inception features of the first N images of a dataset.

One ``.npz`` per (dataset, resolution, protocol, sample count), written once by
``pegan real-features`` and shared by every evaluation and by best-snapshot selection:

    features  float32 [N, 2048]   pool3 features, dataset order
    mu        [2048]              np.mean(features, 0)
    sigma     float64 [2048, 2048] np.cov(features, rowvar=False)
    meta      JSON string: mode, network {file, sha256, kind, origin}, num, resolution,
              dataset, version
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pegan.errors import PeganError
from pegan.io import atomic_path
from pegan.device import resolve_device
from pegan.metrics.fid import MODES, VERSION, FeatureExtractor, stats
from pegan.metrics.images import ImageSet

log = logging.getLogger(__name__)


@dataclass
class RealFeatures:
    """A loaded real-features file."""

    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    meta: dict
    path: Path | None = None

    @property
    def mode(self) -> str:
        return self.meta["mode"]

    def first(self, num: int) -> np.ndarray:
        """The first `num` features; a clear error when the file holds fewer."""
        if num > len(self.features):
            raise PeganError(f"{self.path} holds features of {len(self.features)} real images, "
                             f"{num} are needed; recompute it with `pegan real-features --num {num}`")
        return self.features[:num]

    def stats(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the first `num` images (the stored ones when `num` is all)."""
        if num == len(self.features):
            return self.mu, self.sigma
        return stats(self.first(num))


def compute_real_features(data: str | Path, *, mode: str = "clean", num: int | None = None,
                          inception_path: str | None = None, device: str | torch.device = "cpu",
                          batch_size: int = 32) -> RealFeatures:
    """Features of the first `num` images (name order) of a dataset zip or folder."""
    images = ImageSet(data, num)
    extractor = FeatureExtractor(mode, inception_path, device, batch_size)
    log.info("real features: %d images of %s, mode %s", len(images), data, mode)
    feats = extractor.image_set(images).astype(np.float32, copy=False)
    mu, sigma = stats(feats)
    height, width = images.size()
    meta = {**extractor.protocol(), "num": len(images), "resolution": height,
            "size": [height, width], "dataset": str(data), "version": VERSION}
    return RealFeatures(feats, mu, sigma, meta)


def save_real_features(path: str | Path, rf: RealFeatures) -> None:
    """Write atomically (a killed job never leaves a file the workflow would trust)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, features=rf.features, mu=rf.mu, sigma=rf.sigma,
                 meta=np.array(json.dumps(rf.meta, sort_keys=True)))


def load_real_features(path: str | Path) -> RealFeatures:
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"real features {path} not found; compute them with `pegan real-features`")
    try:
        with np.load(path, allow_pickle=False) as z:
            rf = RealFeatures(z["features"], z["mu"], z["sigma"], json.loads(str(z["meta"])), path)
    except (KeyError, ValueError, OSError) as exc:
        raise PeganError(f"{path} is not a pegan real-features file ({type(exc).__name__}); "
                         "delete it and rerun `pegan real-features`") from None
    return rf


# ------------------------------------------------------------------------------ CLI


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="dataset zip (or folder) of RES x RES images")
    p.add_argument("--mode", choices=MODES, default="clean", help="clean-fid mode")
    p.add_argument("--num", type=int, required=True, help="use the first N images")
    p.add_argument("--inception", default="",
                   help="Inception weights (file or folder); '' = default resolution order")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", required=True, help="output .npz")


def run(args: argparse.Namespace) -> int:
    if args.num < 2:
        raise PeganError(f"--num {args.num}: FID statistics need at least 2 images")
    rf = compute_real_features(args.data, mode=args.mode, num=args.num,
                               inception_path=args.inception or None,
                               device=resolve_device(args.device), batch_size=args.batch_size)
    save_real_features(args.out, rf)
    print(f"wrote {args.out}: {rf.meta['num']} images at {rf.meta['resolution']} px, "
          f"mode {rf.mode}, network {rf.meta['network']['file']} ({rf.meta['network']['sha256']})")
    return 0

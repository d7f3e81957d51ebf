"""Evaluate a generator snapshot (or a folder/zip of images) at one scale against a dataset.

One seeded pass generates the fakes; one Inception pass over them serves FID, KID and (with
the Inception network) precision/recall; SWD reads the same uint8 images. The result is one
JSON file: ``values`` and the ``protocol`` that produced them.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pegan.errors import PeganError
from pegan.io import write_json
from pegan.metrics import REGISTRY, parse_metric_set, resolve_device
from pegan.metrics.fid import FeatureExtractor, frechet_distance_to_stats, kid_from_features
from pegan.metrics.images import ImageSet, is_image_set
from pegan.metrics.real_features import RealFeatures, compute_real_features, load_real_features

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
    on the CPU, so the latents do not depend on the batch size or the device; the injected
    noise of each batch comes from a forked global RNG seeded by (seed, batch start). When G cannot
    produce `scale` (it raises PeganError), it samples at the nearest larger size of `scales`
    (the experiment's scales), else at its base resolution, and the images are resized to
    `scale` (bicubic, antialiased) before the uint8 conversion; ``resized_from`` records the
    size G produced.
    """

    def __init__(self, G: torch.nn.Module, *, scale: int, num: int, seed: int,
                 device: str | torch.device = "cpu", batch_size: int = 16,
                 scales: list[int] | None = None, generate_at: int | None = None) -> None:
        self.G, self.scale, self.num, self.seed = G, int(scale), int(num), int(seed)
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self.z = torch.randn(self.num, G.z_dim, generator=torch.Generator().manual_seed(self.seed))
        self.scales = list(scales or [])
        # generate_at: render at that size and resize to `scale` (the "up-sample the base
        # output" baseline of the MS-PIE claim); None: render at `scale` when G can.
        self.gen_scale: int | None = self.scale if generate_at is None else int(generate_at)
        self.forced = generate_at is not None
        self.resized_from: int | None = None

    def _fallback(self) -> int | None:
        """Nearest listed scale >= the requested one, else the largest listed, else G's base."""
        larger = [s for s in self.scales if s > self.scale]
        if larger:
            return min(larger)
        return max(self.scales) if self.scales and max(self.scales) != self.scale else None

    @torch.no_grad()
    def _generate(self, z: torch.Tensor) -> torch.Tensor:
        while True:
            try:
                return self.G(z, scale=self.gen_scale)
            except PeganError:
                if self.gen_scale is None or self.forced:
                    raise
                fallback = None if self.gen_scale != self.scale else self._fallback()
                log.info("G cannot produce %d px; sampling at %s and resizing", self.gen_scale,
                         fallback or "its base resolution")
                self.gen_scale = fallback

    @torch.no_grad()
    def batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        """uint8 [B, 3, scale, scale] batches of the first `num` (default all) samples."""
        num = self.num if num is None else num
        for start in range(0, num, self.batch_size):
            z = self.z[start:min(start + self.batch_size, num)].to(self.device)
            # the generator's injected noise comes from the global RNG: seed it per batch in a
            # forked state, so samples are reproducible and the caller's (training) RNG stays
            with torch.random.fork_rng():
                torch.manual_seed(self.seed * 1_000_003 + start)
                x = self._generate(z).float()
            if tuple(x.shape[-2:]) != (self.scale, self.scale):
                self.resized_from = int(x.shape[-1])
                x = F.interpolate(x, size=(self.scale, self.scale), mode="bicubic",
                                  align_corners=False, antialias=True)
            yield to_uint8(x)


class SinGANSampler:
    """Seeded uint8 random samples of a SinGAN snapshot at its training size.

    Batch `start` draws its noise from ``torch.Generator().manual_seed(seed * 1_000_003 +
    start)``, so the samples do not depend on the device or on anything else that runs.
    """

    def __init__(self, G: torch.nn.Module, *, num: int, seed: int,
                 device: str | torch.device = "cpu", batch_size: int = 16) -> None:
        self.G, self.num, self.seed = G, int(num), int(seed)
        self.device, self.batch_size = torch.device(device), int(batch_size)
        self.resized_from: int | None = None

    @torch.no_grad()
    def batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        num = self.num if num is None else num
        for start in range(0, num, self.batch_size):
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + start)
            x = self.G(min(self.batch_size, num - start), mode="rand", generator=gen).float()
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
    path, origin = inception_path, "config"
    if path is None and recorded.get("file") and Path(recorded["file"]).is_file():
        path, origin = recorded["file"], "real features file"
    extractor = FeatureExtractor(rf.mode, path, device, batch_size, origin)
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
    return frechet_distance_to_stats(fake, rf.mu, rf.sigma)


# ------------------------------------------------------------------------ evaluation

# config.yaml `metrics:` defaults (the workflow passes the whole section).
DEFAULT_SETTINGS = {"fid_mode": "clean", "inception_path": None, "pr_network": "inception",
                    "vgg16_path": None, "pr_k": 3}
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000          # clean-fid / SG2ADA kid defaults
UNITS = {"fid": "FID", "kid": "raw MMD^2 (papers print x10^3)",
         "precision": "fraction (papers print %)", "recall": "fraction (papers print %)",
         "swd": "x10^3 per level size in px, avg = mean of all levels",
         "structure": "Pearson correlation of coarse edge layouts with the reals' mean layout",
         "diversity": "mean per-pixel std across samples, [0, 1] image units",
         "patch_swd": "x10^3 sliced Wasserstein distance of random 7x7 RGB patches"}


def network_name(extractor: FeatureExtractor) -> str:
    """Short name of the Inception weights (the two TorchScripts hold the same weights)."""
    kind = extractor.source.kind
    return "inception-pytorch-fid" if kind == "pytorch-fid-state-dict" else "inception-torchscript"


class ImageSource:
    """Fakes read from a folder/zip (first `num` in name order), resized to `scale` if needed."""

    def __init__(self, path: str | Path, *, scale: int, num: int, batch_size: int) -> None:
        self.images = ImageSet(path, num)
        self.scale, self.num, self.batch_size = int(scale), int(num), int(batch_size)
        height, width = self.images.size()
        self.resized_from = None if (height, width) == (self.scale, self.scale) else int(width)

    def batches(self, num: int | None = None) -> Iterator[torch.Tensor]:
        for batch in self.images.batches(self.batch_size):
            if self.resized_from is not None:
                x = F.interpolate(batch.float(), size=(self.scale, self.scale), mode="bicubic",
                                  align_corners=False, antialias=True)
                batch = x.round().clamp(0, 255).to(torch.uint8)
            yield batch


def _settings(settings: Mapping | None) -> dict:
    out = dict(DEFAULT_SETTINGS)
    unknown = set(settings or {}) - set(out)
    if unknown:
        log.warning("ignoring unknown metric setting(s) %s", ", ".join(sorted(unknown)))
    out.update({k: v for k, v in (settings or {}).items() if k in out})
    if out["pr_network"] not in ("inception", "vgg16"):
        raise PeganError(f"pr_network {out['pr_network']!r}: choose inception or vgg16")
    return out


def _count(samples: Mapping, key: str) -> int:
    if key not in samples:
        raise PeganError(f"--samples has no {key!r} count (got {', '.join(samples) or 'none'})")
    n = int(samples[key])
    if n < 2:
        raise PeganError(f"--samples {key}={n}: at least 2 images are needed")
    return n


def _versions() -> dict:
    def pkg(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None
    out = {name: m.version for name, m in REGISTRY.items()}
    out.update({"pegan": pkg("pegan"), "clean-fid": pkg("clean-fid"), "torch": torch.__version__,
                "python": platform.python_version()})
    return out


def evaluate(source: str | Path, *, scale: int, metrics: str | list[str], real: str | Path,
             real_features: str | Path | None = None, samples: Mapping[str, int],
             settings: Mapping[str, Any] | None = None, seed: int = 0,
             device: str | torch.device = "auto", batch_size: int = 16,
             fakes: bool | None = None, generate_at: int | None = None) -> dict:
    """Evaluate a snapshot (or a folder/zip of fake images) at `scale` against a dataset.

    Args:
        source: a pegan snapshot (.pt), or a folder/zip of images (then `fakes` is implied).
        scale: evaluation size in pixels (the real images' size).
        metrics: subset of {fid, kid, pr, swd}, e.g. 'fid-kid-pr'.
        real: dataset zip/folder at `scale` (read for P&R with VGG16, SWD, and real
            Inception features when `real_features` is empty).
        real_features: cached ``pegan real-features`` file (FID/KID/P&R-Inception reals).
        samples: counts per metric: {'fid': N, 'pr': N, 'swd': N, 'structure': N} (extra
            keys ignored).
        settings: config ``metrics`` section (fid_mode, inception_path, pr_network,
            vgg16_path, pr_k).
        seed: seed of the latents, of KID's subsets and of SWD's patches/directions.
        device: 'auto', 'cpu', 'cuda', ...
        batch_size: images per generator / network call.
        fakes: force reading `source` as images (None: by its type).
        generate_at: render the generator at this size and resize the images to `scale`
            (bicubic): the "up-sampled base output" baseline of the MS-PIE claim.

    Returns:
        ``{"values": {...}, "protocol": {...}}`` as written to the output JSON.
    """
    names = parse_metric_set(metrics)
    cfg = _settings(settings)
    device = resolve_device(device)
    scale = int(scale)
    use_inception = bool({"fid", "kid"} & set(names)) or ("pr" in names
                                                          and cfg["pr_network"] == "inception")
    use_vgg = "pr" in names and cfg["pr_network"] == "vgg16"
    n_fid = _count(samples, "fid") if {"fid", "kid"} & set(names) else 0
    n_pr = _count(samples, "pr") if "pr" in names else 0
    n_swd = _count(samples, "swd") if "swd" in names else 0
    n_struct = _count(samples, "structure") if "structure" in names else 0
    n_incep = max(n_fid, n_pr if not use_vgg else 0)
    n_total = max(n_fid, n_pr, n_swd, n_struct)

    # ---- fakes: a generator snapshot or an image set
    protocol: dict[str, Any] = {"metrics": names, "resolution": scale, "seed": int(seed),
                                "device": str(device), "batch_size": int(batch_size)}
    if fakes or (fakes is None and is_image_set(source)):
        sampler = ImageSource(source, scale=scale, num=n_total, batch_size=batch_size)
        protocol.update({"source": "images", "fakes": str(source), "snapshot": None,
                         "kimg": None, "experiment": None})
    else:
        from pegan.snapshot import load_generator

        G, meta = load_generator(source, device)
        if meta.get("arch") == "singan":
            if set(names) - {"structure"}:
                raise PeganError(f"{source} is a SinGAN snapshot: only the 'structure' metric "
                                 "applies (it samples at the training image's size)")
            if generate_at is not None:
                raise PeganError("--generate-at does not apply to SinGAN snapshots")
            sampler = SinGANSampler(G, num=n_total, seed=seed, device=device,
                                    batch_size=batch_size)
        else:
            scales = (meta.get("spec") or {}).get("scales")
            sampler = Sampler(G, scale=scale, num=n_total, seed=seed, device=device,
                              batch_size=batch_size, scales=scales, generate_at=generate_at)
        protocol.update({"source": "snapshot", "snapshot": str(source), "kimg": meta.get("kimg"),
                         "experiment": meta.get("experiment"), "arch": meta.get("arch"),
                         "generate_at": generate_at})

    # ---- reals: Inception features (cached file or computed now), VGG16 net
    rf = extractor = vgg = None
    if use_inception:
        if real_features:
            rf = load_real_features(real_features)
        else:
            log.info("no cached real features: computing them from %s", real)
            rf = compute_real_features(real, mode=cfg["fid_mode"], num=n_incep,
                                       inception_path=cfg["inception_path"], device=device,
                                       batch_size=batch_size)
        if rf.mode != cfg["fid_mode"]:
            raise PeganError(f"real features {real_features} use FID mode {rf.mode!r}, the "
                             f"metric settings ask for {cfg['fid_mode']!r}; recompute them")
        if rf.meta.get("resolution") not in (None, scale):
            raise PeganError(f"real features {real_features} are at {rf.meta['resolution']} px, "
                             f"the evaluation is at {scale} px")
        extractor = extractor_for(rf, cfg["inception_path"], device, batch_size)
    if use_vgg:
        from pegan.metrics.pr import load_vgg16

        vgg = load_vgg16(cfg["vgg16_path"], device)
    swd_fake = swd_real = None
    if n_swd:
        from pegan.metrics.swd import SWDDescriptors

        swd_fake = SWDDescriptors(scale, seed, "fake", device)
        swd_real = SWDDescriptors(scale, seed, "real", device)

    structure = _StructureAccumulator(real, n_struct, seed, batch_size) if n_struct else None

    # ---- one pass over the fakes
    incep_fake, vgg_fake, done = [], [], 0
    with tqdm(total=n_total, desc="fakes", unit="img", disable=None) as bar:
        for batch in sampler.batches(n_total):
            lo, hi = done, done + len(batch)
            if extractor is not None and lo < n_incep:
                incep_fake.append(extractor.images(batch[:n_incep - lo]))
            if vgg is not None and lo < n_pr:
                from pegan.metrics.pr import vgg16_features

                vgg_fake.append(vgg16_features(vgg, batch[:n_pr - lo], batch_size, device))
            if swd_fake is not None and lo < n_swd:
                swd_fake.add(batch[:n_swd - lo])
            if structure is not None and lo < n_struct:
                structure.add(batch[:n_struct - lo])
            done = hi
            bar.update(len(batch))
    protocol["resized_from"] = sampler.resized_from   # size G produced / files had, if != scale

    values: dict[str, Any] = {}
    per_metric: dict[str, dict] = {}
    incep_fake = np.concatenate(incep_fake) if incep_fake else None
    if extractor is not None:
        net = {"network": network_name(extractor), "network_file": str(extractor.source.path),
               "network_sha256": extractor.source.sha256, "mode": rf.mode,
               "real_features": None if real_features is None else str(real_features),
               "real_features_network_sha256": rf.meta.get("network", {}).get("sha256")}
    if "fid" in names:
        values["fid"] = frechet_distance_to_stats(incep_fake[:n_fid], *rf.stats(n_fid))
        per_metric["fid"] = {**net, "num_fake": n_fid, "num_real": n_fid,
                             "version": REGISTRY["fid"].version}
    if "kid" in names:
        values["kid"] = kid_from_features(rf.first(n_fid), incep_fake[:n_fid], seed=seed,
                                          num_subsets=KID_SUBSETS, max_subset_size=KID_SUBSET_SIZE)
        per_metric["kid"] = {**net, "num_fake": n_fid, "num_real": n_fid, "seed": int(seed),
                             "num_subsets": KID_SUBSETS, "max_subset_size": KID_SUBSET_SIZE,
                             "version": REGISTRY["kid"].version}
    if "pr" in names:
        from pegan.metrics.pr import precision_recall, vgg16_features

        if use_vgg:
            real_feats = np.concatenate([vgg16_features(vgg, b, batch_size, device) for b in
                                         _real_batches(real, n_pr, scale, batch_size)])
            fake_feats = np.concatenate(vgg_fake)
            pr_net = {"network": "vgg16", "network_file": str(cfg["vgg16_path"]),
                      "network_sha256": _sha(cfg["vgg16_path"]), "features": "fc2"}
        else:
            real_feats, fake_feats = rf.first(n_pr), incep_fake[:n_pr]
            pr_net = {k: net[k] for k in ("network", "network_file", "network_sha256", "mode")}
            pr_net["features"] = "pool3"
        pr = precision_recall(real_feats, fake_feats, k=int(cfg["pr_k"]), device=device)
        values.update(pr)
        for key in ("precision", "recall"):
            per_metric[key] = {**pr_net, "k": int(cfg["pr_k"]), "num_fake": n_pr,
                               "num_real": n_pr, "version": REGISTRY["pr"].version}
    if n_swd:
        from pegan.metrics import swd as swd_mod

        for batch in _real_batches(real, n_swd, scale, batch_size):
            swd_real.add(batch)
        values["swd"] = swd_mod.swd_from_descriptors(swd_real.finalize(), swd_fake.finalize(),
                                                     swd_real.sizes, seed, device)
        per_metric["swd"] = {"network": None, "num_fake": n_swd, "num_real": n_swd,
                             "levels": swd_real.sizes, "patch_size": swd_mod.PATCH_SIZE,
                             "patches_per_image": swd_mod.PATCHES_PER_IMAGE,
                             "directions": swd_mod.REPEATS * swd_mod.DIRECTIONS,
                             "seed": int(seed), "version": REGISTRY["swd"].version}

    if structure is not None:
        values.update(structure.values())
        for key in ("structure", "diversity", "patch_swd"):
            per_metric[key] = {**structure.protocol(), "version": REGISTRY["structure"].version}

    # Flat protocol fields = those of the set's first metric (fid, else pr, else swd, else
    # structure); `per_metric` holds every metric's own.
    primary = per_metric[next(k for k in ("fid", "kid", "precision", "swd", "structure")
                              if k in per_metric)]
    protocol.update({k: primary.get(k) for k in ("network", "num_fake", "num_real")})
    protocol.update({"mode": rf.mode if rf is not None else None, "real": str(real),
                     "real_features": None if real_features is None else str(real_features),
                     "settings": cfg, "per_metric": per_metric, "units": UNITS,
                     "versions": _versions()})
    return {"values": values, "protocol": protocol}


class _StructureAccumulator:
    """Layout agreement, diversity and patch statistics of the fakes (pegan.metrics.structure).

    The reference is the real set (its first `num` images, or all when it holds fewer: one
    image for SinGAN), read before the fakes and resized to the fakes' size if it differs.
    """

    def __init__(self, real: str | Path, num: int, seed: int, batch_size: int) -> None:
        from pegan.metrics import structure as st

        self.st, self.seed, self.num = st, int(seed), int(num)
        images = ImageSet(real)
        self.num_real = min(len(images), self.num)
        self.real_set = ImageSet(real, self.num_real)
        self.reference = st.LayoutReference()
        self.real_patches = st.PatchSet(seed, 1, st.real_patches_per_image(self.num_real, num))
        self.fake_patches = st.PatchSet(seed, 2)
        self.moments = st.PixelMoments()
        self.scores: list[torch.Tensor] = []
        self.real_batches = list(self.real_set.batches(batch_size))
        self.real_size = tuple(self.real_batches[0].shape[-2:])
        self.resized_real = False

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

    def add(self, batch: torch.Tensor) -> None:
        if self.real_batches:
            self._take_reals(tuple(batch.shape[-2:]))
        self.scores.append(self.st.layout_scores(batch, self.ref_layout))
        self.moments.add(batch)
        self.fake_patches.add(batch)

    def values(self) -> dict[str, float]:
        return {"structure": float(torch.cat(self.scores).mean()),
                "diversity": self.moments.diversity(),
                "patch_swd": self.st.patch_swd(self.real_patches, self.fake_patches, self.seed)}

    def protocol(self) -> dict:
        st = self.st
        return {"network": None, "num_fake": self.num, "num_real": self.num_real,
                "grid": st.GRID, "patch_size": st.PATCH, "directions": st.DIRECTIONS,
                "real_size": list(self.real_size), "real_resized": self.resized_real,
                "seed": self.seed}


def _sha(path) -> str:
    from pegan.metrics.inception import file_sha256

    return file_sha256(path)


def _real_batches(real: str | Path, num: int, scale: int, batch_size: int
                  ) -> Iterator[torch.Tensor]:
    images = ImageSet(real, num)
    height, width = images.size()
    if (height, width) != (scale, scale):
        raise PeganError(f"real images {real} are {width}x{height}, the evaluation is at "
                         f"{scale} px; use the dataset prepared at that size")
    return images.batches(batch_size)


# ------------------------------------------------------------------------------ CLI


def _json_arg(text: str, what: str) -> dict:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise PeganError(f"{what} is not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise PeganError(f"{what} must be a JSON object, got {text!r}")
    return value


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="generator snapshot (.pt) or a folder/zip of fake images")
    p.add_argument("--fakes", action="store_true", help="read SOURCE as images (else by type)")
    p.add_argument("--scale", type=int, required=True, help="evaluation size in pixels")
    p.add_argument("--metrics", default="fid-kid",
                   help="'-'-joined subset of fid, kid, pr, swd, structure")
    p.add_argument("--real", required=True, help="dataset zip/folder at SCALE")
    p.add_argument("--real-features", default="",
                   help="cached `pegan real-features` .npz; '' = compute from --real")
    p.add_argument("--samples", default='{"fid": 50000, "pr": 10000, "swd": 16384}',
                   help="JSON sample counts per metric")
    p.add_argument("--metric-settings", default="{}", help="JSON: config.yaml `metrics` section")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generate-at", type=int, default=None,
                   help="render the generator at this size, then resize to SCALE")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:i]")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--out", required=True, help="output JSON")


def run(args: argparse.Namespace) -> int:
    result = evaluate(args.source, scale=args.scale, metrics=args.metrics, real=args.real,
                      real_features=args.real_features or None,
                      samples=_json_arg(args.samples, "--samples"),
                      settings=_json_arg(args.metric_settings, "--metric-settings"),
                      seed=args.seed, device=args.device, batch_size=args.batch_size,
                      fakes=True if args.fakes else None, generate_at=args.generate_at)
    write_json(args.out, result)
    print(json.dumps(result["values"], sort_keys=True))
    return 0

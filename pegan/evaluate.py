"""Evaluate a generator snapshot (or a folder/zip of images) at one scale against a dataset.

One seeded pass generates the fakes; one Inception pass per FID mode over them serves FID, KID
and (with the Inception network) precision/recall, plus the clean-FID column beside a legacy
FID (``fidclean``: a second pass, in clean mode, over the same fakes); SWD reads the same uint8
images. The result is one JSON file: ``values`` and the ``protocol`` that produced them.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import platform
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from pegan.device import resolve_device
from pegan.errors import PeganError
from pegan.io import write_json
from pegan.metrics import registry
from pegan.metrics.fid import (FeatureExtractor, frechet_distance_to_stats,
                              inception_path_for)
from pegan.metrics.images import ImageSet, is_image_set
from pegan.metrics.real_features import (RealFeatures, check_resolution, compute_real_features,
                                         load_real_features)
from pegan.metrics.registry import parse_metric_set
from pegan.seeding import stream_seed

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
                torch.manual_seed(stream_seed(self.seed, start))
                x = self._generate(z).float()
            if tuple(x.shape[-2:]) != (self.scale, self.scale):
                self.resized_from = int(x.shape[-1])
                x = F.interpolate(x, size=(self.scale, self.scale), mode="bicubic",
                                  align_corners=False, antialias=True)
            yield to_uint8(x)


class SinGANSampler:
    """Seeded uint8 random samples of a SinGAN snapshot at its training size.

    Batch `start` draws its noise from ``torch.Generator().manual_seed(stream_seed(seed,
    start))``, so the samples do not depend on the device or on anything else that runs.
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
            gen = torch.Generator().manual_seed(stream_seed(self.seed, start))
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
    # a TorchScript ported into pytorch-fid's network (legacy FID without pytorch-fid's .pth)
    # is found again by the default order, which alone ports a TorchScript
    if path is None and recorded.get("file") and Path(recorded["file"]).is_file() \
            and recorded.get("kind") != "pytorch-fid-port":
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


def generator_scores(G: torch.nn.Module, *, metric: str, scale: int, num: int, seed: int,
                     real: str | Path, device: str | torch.device = "cpu",
                     batch_size: int = 16) -> dict[str, float]:
    """The values of one registered metric that reads no feature network (e.g. structure) on
    `num` seeded samples of G at `scale`, against the real images `real` (resized to `scale`
    by the metric): the cheap learning-curve metric of the training loop's snapshots."""
    m = registry.get(metric)
    cfg = checked_settings(None)
    if m.feature_pass(cfg):
        raise PeganError(f"metric {metric!r} reads a feature network; use `pegan evaluate`")
    ctx = EvaluationContext(scale=scale, seed=seed, device=torch.device(device),
                            batch_size=batch_size, real=real, real_features=None, settings=cfg,
                            feature_counts={})
    accumulator = m.build(ctx, num)
    for batch in Sampler(G, scale=scale, num=num, seed=seed, device=device,
                         batch_size=batch_size).batches():
        accumulator.add(batch, {})
    return accumulator.finish()[0]


# ------------------------------------------------------------------------ evaluation

def network_name(extractor: FeatureExtractor) -> str:
    """Short name of the Inception weights (the two TorchScripts hold the same weights)."""
    network = extractor.source.network
    return "inception-pytorch-fid" if network == "pytorch-fid" else "inception-torchscript"


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


def checked_settings(settings: Mapping | None) -> dict:
    """config.yaml's `metrics:` section over the registered defaults; unknown keys are
    logged and dropped, a value outside a setting's allowed values is an error."""
    registered = registry.settings()
    out = registry.default_settings()
    unknown = set(settings or {}) - set(out)
    if unknown:
        log.warning("ignoring unknown metric setting(s) %s", ", ".join(sorted(unknown)))
    out.update({k: v for k, v in (settings or {}).items() if k in out})
    for name, setting in registered.items():
        allowed = setting.schema.get("enum")
        if allowed is not None and out[name] not in allowed:
            raise PeganError(f"{name} {out[name]!r}: choose {' or '.join(map(str, allowed))}")
    return out


def sample_count(samples: Mapping, metric: registry.Metric) -> int:
    """A metric's image count from `--samples` (its own key, else its fallback key)."""
    key = metric.samples
    if key not in samples and metric.samples_fallback in samples:
        key = metric.samples_fallback
    if key not in samples:
        raise PeganError(f"--samples has no {metric.samples!r} count "
                         f"(got {', '.join(samples) or 'none'})")
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
    out = {name: m.version for name, m in registry.metrics().items()}
    out.update({"pegan": pkg("pegan"), "clean-fid": pkg("clean-fid"), "torch": torch.__version__,
                "python": platform.python_version()})
    return out


@dataclass
class InceptionPass:
    """The reals' Inception features and the extractor the fakes go through."""

    real: RealFeatures
    extractor: FeatureExtractor
    record: dict          # network and mode, recorded with every metric that reads it


def feature_pass_key(name: str, settings: Mapping) -> str:
    """The shared pass a metric's feature-pass name stands for: ``inception`` is the pass in
    the configured ``fid_mode`` (``inception:<fid_mode>``), ``inception:<mode>`` a pass in
    that mode; two names with one key share one pass over the fakes."""
    if name == "inception":
        return f"inception:{settings['fid_mode']}"
    return name


def _pass_mode(key: str) -> str | None:
    kind, _, mode = key.partition(":")
    return mode if kind == "inception" else None


def feature_modes(metrics: str | list[str], settings: Mapping | None) -> list[str]:
    """FID modes of the Inception passes a metric set reads (the real-features files an
    evaluation job needs, one per mode), the configured ``fid_mode`` first."""
    cfg = checked_settings(settings)
    modes = []
    for name in parse_metric_set(metrics):
        passed = registry.get(name).feature_pass(cfg)
        mode = _pass_mode(feature_pass_key(passed, cfg)) if passed else None
        if mode and mode not in modes:
            modes.append(mode)
    return sorted(modes, key=lambda m: m != cfg["fid_mode"])


def _paths(real_features) -> list[str]:
    if real_features is None or isinstance(real_features, (str, Path)):
        real_features = [real_features]
    return [str(p) for p in real_features if p]


class EvaluationContext:
    """What a metric's accumulator may read: the evaluation's settings and the shared
    resources (real images, one Inception pass per FID mode, the VGG16 network), built once.

    `real_features`: cached real-features files (one path or several); each records its FID
    mode, and the Inception pass of a mode reads the file of that mode.

    `base_resolution`: the snapshot's base resolution (its spec's ``resolution``), which
    ``fid_real_resolution: base`` asks the primary pass's real statistics to have; None for a
    set of images (the check is skipped).
    """

    # The snapshot's generator (eval mode, on `device`) for metrics that re-render it
    # (equivariance); None when the fakes are a set of images. Set by `evaluate`.
    generator: torch.nn.Module | None = None

    def __init__(self, *, scale: int, seed: int, device: torch.device, batch_size: int,
                 real: str | Path, real_features: str | Path | list | None, settings: dict,
                 feature_counts: Mapping[str, int], base_resolution: int | None = None) -> None:
        self.scale, self.seed, self.device = int(scale), int(seed), device
        self.base_resolution = None if base_resolution is None else int(base_resolution)
        self.batch_size, self.real = int(batch_size), real
        self.real_features = _paths(real_features)
        self.settings, self.feature_counts = settings, dict(feature_counts)
        self._inception: dict[str, InceptionPass] = {}
        self._vgg16: torch.nn.Module | None = None

    def real_batches(self, num: int) -> Iterator[torch.Tensor]:
        """uint8 batches of the first `num` real images (they must be at the scale)."""
        images = ImageSet(self.real, num)
        height, width = images.size()
        if (height, width) != (self.scale, self.scale):
            raise PeganError(f"real images {self.real} are {width}x{height}, the evaluation is "
                             f"at {self.scale} px; use the dataset prepared at that size")
        return images.batches(self.batch_size)

    def _real_features_for(self, mode: str) -> RealFeatures | None:
        """The given real-features file of `mode`; None when none was given (computed now).
        A missing file of the configured mode is an error; another mode's pass (the clean
        column) computes its reals from the dataset when no file of its mode was given."""
        if not self.real_features:
            return None
        loaded = [cached_real_features(p) for p in self.real_features]
        same_mode = [rf for rf in loaded if rf.mode == mode]
        if mode != self.settings["fid_mode"]:
            return same_mode[0] if same_mode else None
        if not same_mode:
            given = ", ".join(f"{p} ({rf.mode})" for p, rf in zip(self.real_features, loaded))
            raise PeganError(f"real features {given} use another FID mode than {mode!r}, which "
                             "the metric settings ask for; recompute them")
        # the primary pass's reals must also be resized as fid_real_protocol says
        want = self.settings.get("fid_real_protocol", "pegan")
        for rf in same_mode:
            if rf.protocol == want:
                return rf
        rf = same_mode[0]
        raise PeganError(f"real features {rf.path} were made with protocol {rf.protocol!r}, "
                         f"fid_real_protocol asks for {want!r}; recompute them with `pegan "
                         f"real-features --mode {mode} --protocol {want}`")

    def inception(self, mode: str | None = None) -> InceptionPass:
        """The Inception pass in `mode` (default: the configured ``fid_mode``): real features
        (the cached file of that mode, or computed now for as many reals as the metrics read)
        and the matching extractor for the fakes."""
        cfg = self.settings
        mode = mode or cfg["fid_mode"]
        if mode not in self._inception:
            inception_path = inception_path_for(cfg, mode)
            primary = mode == cfg["fid_mode"]
            # fid_real_protocol / fid_real_resolution choose the primary pass's reals only
            # (the clean column's are pegan's, at the evaluation scale)
            protocol = cfg.get("fid_real_protocol", "pegan") if primary else "pegan"
            resolution = cfg.get("fid_real_resolution") if primary else None
            rf = self._real_features_for(mode)
            if rf is None:
                log.info("no cached real features in mode %s: computing them from %s", mode,
                         self.real)
                num = self.feature_counts.get(f"inception:{mode}") or max(
                    self.feature_counts.values(), default=2)
                rf = compute_real_features(self.real, mode=mode, num=num,
                                           inception_path=inception_path,
                                           device=self.device, batch_size=self.batch_size,
                                           protocol=protocol)
            check_resolution(rf, self.scale, resolution, base=self.base_resolution)
            extractor = extractor_for(rf, inception_path, self.device, self.batch_size)
            record = {"network": network_name(extractor),
                      "network_file": str(extractor.source.path),
                      "network_sha256": extractor.source.sha256, "mode": rf.mode,
                      "real_features": None if rf.path is None else str(rf.path),
                      "real_features_network_sha256": rf.meta.get("network", {}).get("sha256"),
                      "real_protocol": rf.protocol,
                      "real_resolution": rf.meta.get("resolution")}
            self._inception[mode] = InceptionPass(rf, extractor, record)
        return self._inception[mode]

    def vgg16(self) -> torch.nn.Module:
        if self._vgg16 is None:
            from pegan.metrics.pr import load_vgg16

            self._vgg16 = load_vgg16(self.settings["vgg16_path"], self.device)
        return self._vgg16

    def features(self, name: str, images: torch.Tensor) -> np.ndarray:
        """The fakes' features of one shared feature pass (``inception``,
        ``inception:<mode>`` or ``vgg16``)."""
        key = feature_pass_key(name, self.settings)
        mode = _pass_mode(key)
        if mode:
            return self.inception(mode).extractor.images(images)
        if key == "vgg16":
            from pegan.metrics.pr import vgg16_features

            return vgg16_features(self.vgg16(), images, self.batch_size, self.device)
        raise PeganError(f"unknown feature pass {name!r} (inception, inception:<mode>, vgg16)")


def evaluate(source: str | Path, *, scale: int, metrics: str | list[str], real: str | Path,
             real_features: str | Path | list | None = None, samples: Mapping[str, int],
             settings: Mapping[str, Any] | None = None, seed: int = 0,
             device: str | torch.device = "auto", batch_size: int = 16,
             fakes: bool | None = None, generate_at: int | None = None) -> dict:
    """Evaluate a snapshot (or a folder/zip of fake images) at `scale` against a dataset.

    Every metric of the set is a registered accumulator (:mod:`pegan.metrics.registry`): one
    seeded pass over the fakes feeds them all, each with its first N images (N: its sample
    count) and the fakes' features of the shared feature pass it reads.

    Args:
        source: a pegan snapshot (.pt), or a folder/zip of images (then `fakes` is implied).
        scale: evaluation size in pixels (the real images' size).
        metrics: a '-'-joined set of registered metrics, e.g. 'fid-kid-pr'.
        real: dataset zip/folder at `scale` (read for P&R with VGG16, SWD, structure, and
            real Inception features when `real_features` is empty).
        real_features: cached ``pegan real-features`` file(s), one per FID mode the metrics
            read (FID/KID/P&R-Inception reals in ``fid_mode``, the clean column's in clean).
        samples: counts per metric sample key: {'fid': N, 'pr': N, 'swd': N, ...} (extra
            keys ignored).
        settings: config ``metrics`` section (the registered metric settings).
        seed: seed of the latents and of every metric's random draws.
        device: 'auto', 'cpu', 'cuda', ...
        batch_size: images per generator / network call.
        fakes: force reading `source` as images (None: by its type).
        generate_at: render the generator at this size and resize the images to `scale`
            (bicubic): the "up-sampled base output" baseline of the MS-PIE claim.

    Returns:
        ``{"values": {...}, "protocol": {...}}`` as written to the output JSON.
    """
    chosen = [registry.get(name) for name in parse_metric_set(metrics)]
    names = [m.name for m in chosen]
    cfg = checked_settings(settings)
    device = resolve_device(device)
    scale = int(scale)
    counts = {m.name: sample_count(samples, m) for m in chosen}
    n_total = max(counts.values())
    # one pass per feature network and FID mode, over as many fakes as its readers take
    passes = {m.name: feature_pass_key(m.feature_pass(cfg), cfg)
              for m in chosen if m.feature_pass(cfg)}
    feature_counts: dict[str, int] = {}
    for name, key in passes.items():
        feature_counts[key] = max(feature_counts.get(key, 0), counts[name])

    # ---- fakes: a generator snapshot or an image set
    protocol: dict[str, Any] = {"metrics": names, "resolution": scale, "seed": int(seed),
                                "device": str(device), "batch_size": int(batch_size)}
    if fakes or (fakes is None and is_image_set(source)):
        sampler = ImageSource(source, scale=scale, num=n_total, batch_size=batch_size)
        base_resolution = None                         # no spec: fid_real_resolution unchecked
        protocol.update({"source": "images", "fakes": str(source), "snapshot": None,
                         "kimg": None, "experiment": None})
    else:
        from pegan.snapshot import load_generator

        G, meta = load_generator(source, device)
        base_resolution = (meta.get("spec") or {}).get("resolution")
        if meta.get("arch") == "singan":
            other = [m.name for m in chosen if not m.singan]
            if other:
                usable = ", ".join(n for n, m in registry.metrics().items() if m.singan)
                raise PeganError(f"{source} is a SinGAN snapshot: only the {usable!r} metric "
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
                         "generate_at": generate_at,
                         **{k: (meta.get("extra") or {}).get(k)
                            for k in ("trained_by", "trained_on")}})

    # ---- the shared resources first (a missing file fails before the pass), then the metrics
    ctx = EvaluationContext(scale=scale, seed=seed, device=device, batch_size=batch_size,
                            real=real, real_features=real_features, settings=cfg,
                            feature_counts=feature_counts, base_resolution=base_resolution)
    ctx.generator = getattr(sampler, "G", None)       # image sets have no generator
    for key in feature_counts:
        if _pass_mode(key):
            ctx.inception(_pass_mode(key))
    if "vgg16" in feature_counts:
        ctx.vgg16()
    accumulators = {m.name: m.build(ctx, counts[m.name]) for m in chosen}

    # ---- one pass over the fakes
    done = 0
    with tqdm(total=n_total, desc="fakes", unit="img", disable=None) as bar:
        for batch in sampler.batches(n_total):
            features = {name: ctx.features(name, batch[:n - done])
                        for name, n in feature_counts.items() if done < n}
            for m in chosen:
                take = counts[m.name] - done
                if take > 0:
                    pass_name = m.feature_pass(cfg)
                    accumulators[m.name].add(batch[:take], {
                        pass_name: features[passes[m.name]][:take]} if pass_name else {})
            done += len(batch)
            bar.update(len(batch))
    protocol["resized_from"] = sampler.resized_from   # size G produced / files had, if != scale

    values: dict[str, Any] = {}
    per_metric: dict[str, dict] = {}
    for m in chosen:
        got, record = accumulators[m.name].finish()
        values.update(got)
        for output in m.outputs:
            per_metric[output.key] = {**record, "version": m.version}

    # Flat protocol fields = those of the set's first metric; `per_metric` holds every
    # metric's own.
    primary = per_metric[chosen[0].outputs[0].key]
    protocol.update({k: primary.get(k) for k in ("network", "num_fake", "num_real")})
    primary_pass = f"inception:{cfg['fid_mode']}"
    reals = ctx.inception().real if primary_pass in feature_counts else None
    mode = None if reals is None else reals.mode
    given = _paths(real_features)
    protocol.update({"mode": mode, "real": str(real),
                     "real_protocol": None if reals is None else reals.protocol,
                     "real_resolution": None if reals is None else reals.meta.get("resolution"),
                     "real_features": (given[0] if len(given) == 1 else given) or None,
                     "settings": cfg, "per_metric": per_metric, "units": registry.units(),
                     "versions": _versions()})
    return {"values": values, "protocol": protocol}


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
                   help="'-'-joined subset of the registered metrics ("
                        + ", ".join(registry.metrics()) + ")")
    p.add_argument("--real", required=True, help="dataset zip/folder at SCALE")
    p.add_argument("--real-features", nargs="*", default=[],
                   help="cached `pegan real-features` .npz files, one per FID mode the metrics "
                        "read (each records its mode); none or '' = compute from --real")
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
                      real_features=_paths(args.real_features) or None,
                      samples=_json_arg(args.samples, "--samples"),
                      settings=_json_arg(args.metric_settings, "--metric-settings"),
                      seed=args.seed, device=args.device, batch_size=args.batch_size,
                      fakes=True if args.fakes else None, generate_at=args.generate_at)
    write_json(args.out, result)
    print(json.dumps(result["values"], sort_keys=True))
    return 0

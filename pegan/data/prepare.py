"""`pegan prepare-data`: write a dataset as a zip of square RGB PNGs at one resolution.

Output: ``00000000.png``, ``00000001.png``, ... at the zip's root, each RES x RES (centre-crop,
antialiased resize). Single-image (SinGAN) datasets, i.e. kind ``skimage`` or a ``folder`` whose
path is one image file, keep their aspect: the longer side becomes RES.

``--first-index K`` writes the dataset's images K, K+1, ... instead of 0, 1, ...: with K the
preset's ``num_images`` these are *held-out* images, of the same dataset but not in the training
set (the held-out-real floor of ``pegan claims``). Image i of the synthetic dataset is its own
random stream, so its held-out images are ``aligned_object(i)`` for i >= K; the LFW subset and a
folder keep their images after the first K in name order; a single image has none.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import zipfile
from pathlib import Path
from typing import Iterator

from PIL import Image
from tqdm import tqdm

from pegan.data import bundled, synthetic
from pegan.data.images import ImageArchive, from_array, longer_side, square
from pegan.errors import PeganError
from pegan.io import atomic_path

log = logging.getLogger(__name__)


def is_single_image(spec: dict) -> bool:
    """True for SinGAN-style datasets: one training image."""
    if spec["kind"] == "skimage":
        return True
    return spec["kind"] == "folder" and Path(spec["path"]).suffix.lower() in (".png", ".jpg", ".jpeg")


def _folder_source(name: str, spec: dict) -> ImageArchive:
    path = Path(spec["path"])
    candidates = [path, path.with_name(path.name + ".zip")] if path.suffix == "" else [path]
    for candidate in candidates:
        if candidate.exists():
            return ImageArchive(candidate)
    what = spec.get("description", "the images")
    raise PeganError(f"dataset {name!r}: {path} not found; download {what} and put it at "
                     f"{path} (a folder or zip of PNG/JPEG images, or the image file itself)")


def _check_kind(name: str, spec: dict) -> None:
    if spec["kind"] not in ("synthetic", "lfw_subset", "skimage", "folder"):
        raise PeganError(f"dataset {name!r}: unknown kind {spec['kind']!r} "
                         "(synthetic, lfw_subset, skimage or folder)")


def images_after(name: str, spec: dict, first: int) -> int | None:
    """How many images the dataset holds from index `first` on (None: unbounded, the
    synthetic dataset; 0 for a single-image dataset whatever `first`)."""
    _check_kind(name, spec)
    if spec["kind"] == "synthetic":
        return None
    if is_single_image(spec):
        return 0
    total = len(bundled.lfw_subset()) if spec["kind"] == "lfw_subset" else \
        len(_folder_source(name, spec))
    return max(total - first, 0)


def source_images(name: str, spec: dict, num: int, resolution: int, seed: int = 0,
                  first: int = 0) -> tuple[int, Iterator[Image.Image]]:
    """(count, iterator of RGB images ready to write) for a dataset spec of config.yaml: the
    images `first`, `first` + 1, ... (at most `num`)."""
    _check_kind(name, spec)
    kind = spec["kind"]
    single = is_single_image(spec)
    shape = (lambda img: longer_side(img, resolution)) if single else (lambda img: square(img, resolution))
    stop = first + num
    if kind == "synthetic":
        return num, (from_array(synthetic.aligned_object(i, resolution, seed))
                     for i in range(first, stop))
    if kind == "lfw_subset":
        faces = bundled.lfw_subset()[first:stop]
        return len(faces), (shape(f) for f in faces)
    if kind == "skimage":
        return 1, iter([shape(bundled.skimage_image(spec["image"]))])
    archive = _folder_source(name, spec)
    indices = range(1) if single else range(first, min(stop, len(archive)))
    return len(indices), (shape(archive.read(i)) for i in indices)


def check_heldout(name: str, spec: dict, first: int, num: int) -> None:
    """Refuse held-out images (`first` > 0) a dataset cannot give: a single image, or fewer
    than `num` images after the first `first`."""
    if is_single_image(spec):
        raise PeganError(f"dataset {name!r} is a single image: it has no held-out images "
                         f"(drop --first-index {first})")
    left = images_after(name, spec, first)
    if left is not None and left < num:
        raise PeganError(f"dataset {name!r} has {left} images after the first {first}, "
                         f"{num} held-out images are needed; add images or lower --num")


def prepare(name: str, spec: dict, *, resolution: int, num: int, out: str | Path,
            seed: int = 0, first: int = 0) -> int:
    """Write the zip atomically (images `first`, `first` + 1, ...: held-out images when
    `first` > 0); returns the number of images written."""
    if resolution < 1 or num < 1:
        raise PeganError("--resolution and --num must be positive")
    if first < 0:
        raise PeganError(f"--first-index {first}: choose 0 (the training set) or more")
    if first:
        check_heldout(name, spec, first, num)
    count, images = source_images(name, spec, num, resolution, seed, first)
    if count < num and not is_single_image(spec):
        log.warning("dataset %s has %d images, fewer than the %d asked for: keeping %d",
                    name, count, num, count)
    with atomic_path(out) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for i, img in enumerate(tqdm(images, total=count, desc=f"prepare {name}",
                                         unit="img", disable=count < 50)):
                buf = io.BytesIO()
                img.save(buf, format="PNG")
                zf.writestr(f"{i:08d}.png", buf.getvalue())
    log.info("wrote %d images of %s at %d px to %s", count, name, resolution, out)
    return count


def fingerprint(path: str | Path) -> str:
    """A cheap content fingerprint of a dataset (16 hex digits). For a zip: sha256 over its
    members' names, sizes and CRC-32s as the zip directory lists them (no decompression); for
    a folder: over the files' relative names and sizes (names and sizes only, not contents)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        h.update(b"folder\n")
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(f"{file.relative_to(path).as_posix()}\t{file.stat().st_size}\n".encode())
        return h.hexdigest()[:16]
    try:
        with zipfile.ZipFile(path) as zf:
            members = sorted((i.filename, i.file_size, i.CRC) for i in zf.infolist()
                             if not i.is_dir())
    except (OSError, zipfile.BadZipFile) as exc:
        raise PeganError(f"{path}: not a readable dataset zip ({exc})") from None
    h.update(b"zip\n")
    for name, size, crc in members:
        h.update(f"{name}\t{size}\t{crc:08x}\n".encode())
    return h.hexdigest()[:16]


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, help="dataset name (config.yaml `datasets`)")
    p.add_argument("--spec", required=True, help="the dataset's JSON entry of config.yaml")
    p.add_argument("--resolution", type=int, required=True, help="output size in pixels")
    p.add_argument("--num", type=int, required=True, help="number of images to keep")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic dataset")
    p.add_argument("--first-index", type=int, default=0,
                   help="index of the first image written (0: the training set; the preset's "
                        "num_images: held-out images, not in the training set)")
    p.add_argument("--out", required=True, help="output zip")


def run(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise PeganError(f"--spec is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise PeganError("--spec must be a JSON object with a 'kind'")
    count = prepare(args.dataset, spec, resolution=args.resolution, num=args.num,
                    out=args.out, seed=args.seed, first=args.first_index)
    print(f"{args.out}: {count} images of {args.dataset} at {args.resolution} px")
    return 0

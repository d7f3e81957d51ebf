"""`pegan prepare-data`: write a dataset as a zip of square RGB PNGs at one resolution.

Output: ``00000000.png``, ``00000001.png``, ... at the zip's root, each RES x RES (centre-crop,
antialiased resize). Single-image (SinGAN) datasets, i.e. kind ``skimage`` or a ``folder`` whose
path is one image file, keep their aspect: the longer side becomes RES.
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


def source_images(name: str, spec: dict, num: int, resolution: int, seed: int = 0
                  ) -> tuple[int, Iterator[Image.Image]]:
    """(count, iterator of RGB images ready to write) for a dataset spec of config.yaml."""
    kind = spec["kind"]
    single = is_single_image(spec)
    shape = (lambda img: longer_side(img, resolution)) if single else (lambda img: square(img, resolution))
    if kind == "synthetic":
        return num, (from_array(synthetic.aligned_object(i, resolution, seed)) for i in range(num))
    if kind == "lfw_subset":
        faces = bundled.lfw_subset()
        return min(num, len(faces)), (shape(f) for f in faces[:num])
    if kind == "skimage":
        return 1, iter([shape(bundled.skimage_image(spec["image"]))])
    if kind == "folder":
        archive = _folder_source(name, spec)
        count = 1 if single else min(num, len(archive))
        return count, (shape(archive.read(i)) for i in range(count))
    raise PeganError(f"dataset {name!r}: unknown kind {kind!r} "
                     "(synthetic, lfw_subset, skimage or folder)")


def prepare(name: str, spec: dict, *, resolution: int, num: int, out: str | Path,
            seed: int = 0) -> int:
    """Write the zip atomically; returns the number of images written."""
    if resolution < 1 or num < 1:
        raise PeganError("--resolution and --num must be positive")
    count, images = source_images(name, spec, num, resolution, seed)
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
    p.add_argument("--out", required=True, help="output zip")


def run(args: argparse.Namespace) -> int:
    try:
        spec = json.loads(args.spec)
    except json.JSONDecodeError as exc:
        raise PeganError(f"--spec is not valid JSON ({exc})") from None
    if not isinstance(spec, dict) or "kind" not in spec:
        raise PeganError("--spec must be a JSON object with a 'kind'")
    count = prepare(args.dataset, spec, resolution=args.resolution, num=args.num,
                    out=args.out, seed=args.seed)
    print(f"{args.out}: {count} images of {args.dataset} at {args.resolution} px")
    return 0

"""Image folders and zip archives (PNG/JPEG, recursive) and the square resize used everywhere.

A corrupt or unreadable image raises :class:`pegan.errors.PeganError` naming the file.
"""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from pegan.errors import PeganError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not Path(name).name.startswith(".")


class ImageArchive:
    """The images of a folder (recursive), a zip file (any depth) or a single image file,
    in sorted path order; each read as an RGB :class:`PIL.Image.Image`."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self.kind = "folder"
            self.names = sorted(p.relative_to(self.path).as_posix()
                                for p in self.path.rglob("*")
                                if p.is_file() and is_image_name(p.name))
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self.kind = "zip"
            with zipfile.ZipFile(self.path) as zf:
                self.names = sorted(n for n in zf.namelist()
                                    if not n.endswith("/") and is_image_name(n))
        elif self.path.is_file() and is_image_name(self.path.name):
            self.kind = "file"
            self.names = [self.path.name]
        elif self.path.exists():
            raise PeganError(f"{self.path}: not an image folder, a zip file or a PNG/JPEG image")
        else:
            raise PeganError(f"{self.path}: no such file or folder")
        if not self.names:
            raise PeganError(f"{self.path}: holds no PNG/JPEG image")

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict:          # zip handles do not cross process boundaries
        state = dict(self.__dict__)
        state["_zip"], state["_zip_pid"] = None, None
        return state

    def where(self, index: int) -> str:
        """A human-readable location of image `index` (for error messages)."""
        if self.kind == "zip":
            return f"{self.path}:{self.names[index]}"
        if self.kind == "file":
            return str(self.path)
        return str(self.path / self.names[index])

    def _bytes(self, index: int) -> bytes:
        name = self.names[index]
        if self.kind == "zip":
            if self._zip is None or self._zip_pid != os.getpid():
                self._zip = zipfile.ZipFile(self.path)
                self._zip_pid = os.getpid()
            return self._zip.read(name)
        path = self.path if self.kind == "file" else self.path / name
        return path.read_bytes()

    def read(self, index: int) -> Image.Image:
        """Image `index` as RGB; raises PeganError naming the file if it cannot be decoded."""
        try:
            with Image.open(io.BytesIO(self._bytes(index))) as img:
                img.load()
                return _to_rgb(img)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, zipfile.BadZipFile) as exc:
            raise PeganError(f"{self.where(index)}: cannot read image "
                             f"({type(exc).__name__}: {exc}); replace or delete the file") from None


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


def square(img: Image.Image, resolution: int) -> Image.Image:
    """Centre-crop to a square, then resize to `resolution` px (antialiased bicubic)."""
    w, h = img.size
    side = min(w, h)
    if w != h:
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if side != resolution:
        img = img.resize((resolution, resolution), Image.Resampling.BICUBIC, reducing_gap=None)
    return img


def longer_side(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the longer side is `size` px, keeping the aspect (SinGAN images)."""
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.Resampling.BICUBIC)


def to_array(img: Image.Image) -> np.ndarray:
    """[H, W, 3] uint8."""
    return np.asarray(img, dtype=np.uint8)


def from_array(arr: np.ndarray) -> Image.Image:
    """A PIL image from [H, W] or [H, W, 3] uint8, or floats in [0, 1]."""
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return Image.fromarray(arr[:, :, :3], "RGB")

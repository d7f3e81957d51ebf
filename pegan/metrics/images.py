"""Image sets the metrics read: a folder or a zip of image files, in sorted name order.

Decoding is clean-fid's (``PIL.Image.open(f).convert("RGB")`` -> uint8), so a file read here
and a file read by clean-fid's loader give the same array.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from pegan.errors import PeganError

# clean-fid's EXTENSIONS minus .npy (pegan's sets are image files).
EXTENSIONS = {".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp"}


def is_image_set(path: str | Path) -> bool:
    p = Path(path)
    return p.is_dir() or p.suffix.lower() == ".zip"


class ImageSet:
    """The first `num` images (sorted by name) of a folder (recursive) or a zip."""

    def __init__(self, path: str | Path, num: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise PeganError(f"image set {self.path} not found")
        if self.path.is_dir():
            names = sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                           if p.suffix.lower() in EXTENSIONS and p.is_file())
        elif self.path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(self.path) as zf:
                    names = sorted(n for n in zf.namelist()
                                   if Path(n).suffix.lower() in EXTENSIONS)
            except zipfile.BadZipFile:
                raise PeganError(f"{self.path} is not a valid zip; rerun the job that wrote it"
                                 ) from None
        else:
            raise PeganError(f"{self.path} is neither a folder nor a .zip of images")
        if num is not None:
            if len(names) < num:
                raise PeganError(f"{self.path} holds {len(names)} images, {num} are needed; "
                                 "prepare more images or lower the sample count")
            names = names[:num]
        if not names:
            raise PeganError(f"{self.path} holds no images ({', '.join(sorted(EXTENSIONS))})")
        self.names = names

    @property
    def is_zip(self) -> bool:
        return self.path.suffix.lower() == ".zip"

    def __len__(self) -> int:
        return len(self.names)

    def clean_fid_files(self) -> tuple[list[str], str | None]:
        """(files, fdir) in the form `cleanfid.fid.get_files_features` takes."""
        if self.is_zip:
            return list(self.names), str(self.path)
        return [str(self.path / n) for n in self.names], None

    def read(self, index: int) -> np.ndarray:
        """Image `index` as uint8 [H, W, 3] RGB."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.names[index]) as f:
                return np.array(Image.open(f).convert("RGB"))
        return np.array(Image.open(self.path / self.names[index]).convert("RGB"))

    def size(self) -> tuple[int, int]:
        """(height, width) of the first image."""
        return tuple(self.read(0).shape[:2])

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        """uint8 [B, 3, H, W] batches in order; every image must have the first one's size."""
        zf = zipfile.ZipFile(self.path) if self.is_zip else None
        try:
            first = None
            for start in range(0, len(self.names), batch_size):
                arrays = []
                for name in self.names[start:start + batch_size]:
                    if zf is not None:
                        with zf.open(name) as f:
                            arr = np.array(Image.open(f).convert("RGB"))
                    else:
                        arr = np.array(Image.open(self.path / name).convert("RGB"))
                    first = first or arr.shape
                    if arr.shape != first:
                        raise PeganError(f"{self.path}/{name} is {arr.shape[1]}x{arr.shape[0]}, "
                                         f"the set's first image is {first[1]}x{first[0]}")
                    arrays.append(arr)
                yield torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        finally:
            if zf is not None:
                zf.close()

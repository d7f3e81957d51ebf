"""Small image sets for the metric tests (imported by test modules)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def png_zip(path: Path, images: list[np.ndarray]) -> Path:
    """Write uint8 HxWx3 arrays as PNG members 00000000.png, ... of a zip; returns `path`."""
    with zipfile.ZipFile(path, "w") as zf:
        for i, im in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, "PNG")
            zf.writestr(f"{i:08d}.png", buf.getvalue())
    return path

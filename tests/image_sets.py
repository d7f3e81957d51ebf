"""Small image sets and a stand-in VGG16 for the metric tests (imported by test modules)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def png_zip(path: Path, images: list[np.ndarray]) -> Path:
    """Write uint8 HxWx3 arrays as PNG members 00000000.png, ... of a zip; returns `path`."""
    with zipfile.ZipFile(path, "w") as zf:
        for i, im in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, "PNG")
            zf.writestr(f"{i:08d}.png", buf.getvalue())
    return path


def blocky_images(n: int, res: int, seed: int = 0, cells: int = 8) -> list[np.ndarray]:
    """`n` uint8 res x res x 3 images: random `cells` x `cells` colour blocks, bilinear up."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (n, cells, cells, 3)).astype(np.uint8)
    return [np.array(Image.fromarray(b).resize((res, res), Image.BILINEAR)) for b in base]


class StandInVGG16(torch.nn.Module):
    """NVIDIA's vgg16.pt call signature; refuses anything but uint8 [N, 3, size, size] with
    return_features=True. 'Features': 4x4 average colours (48-d)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert img.dtype == torch.uint8, "vgg16.pt takes uint8 images"
        assert img.dim() == 4 and img.shape[1] == 3, "vgg16.pt takes NCHW RGB"
        assert img.shape[2] == self.size and img.shape[3] == self.size, "native resolution"
        assert return_features, "P&R reads the features"
        x = img.to(torch.float32) / 255
        return torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)


def save_stand_in_vgg16(path: Path, size: int) -> Path:
    """The stand-in as a TorchScript file, as metrics.vgg16_path expects it."""
    torch.jit.save(torch.jit.script(StandInVGG16(size)), str(path))
    return path

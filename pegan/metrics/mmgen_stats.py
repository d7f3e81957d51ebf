"""MMGeneration's real FID statistics, built the way its ``inception_stat.py`` builds them.

MMGeneration (the paper's code base, ``open-mmlab/mmgeneration`` @ ccd1f56) scores FID50k
against a pickle of real statistics (``ffhq-256-50k-rgb.pkl``) that
``tools/utils/inception_stat.py`` writes, and the two sides of its FID go through *different*
resize paths:

* **reals** (``inception_stat.py``, default pipeline): ``LoadImageFromFile`` (cv2 decode,
  BGR uint8) -> ``Resize(scale=(299, 299), keep_ratio=False)`` = ``mmcv.imresize(img,
  (299, 299), interpolation='bilinear')`` = ``cv2.resize(img, (299, 299),
  interpolation=cv2.INTER_LINEAR)`` on the **uint8** image (cv2's fixed-point bilinear,
  half-pixel centres, no antialiasing, output rounded to uint8) -> ``Normalize(mean=127.5,
  std=127.5, to_rgb=True)`` -> pytorch-fid's ``InceptionV3([3], resize_input=True,
  normalize_input=False)``, whose own bilinear resize is the identity at 299.
* **fakes** (``FID.feed_op``): the generator's [-1, 1] images (offline evaluation: saved as
  PNG with ``torchvision.save_image``, i.e. ``floor(127.5 x + 128)`` = pegan's uint8
  conversion, and reloaded to [-1, 1]) resized **inside** the network with
  ``F.interpolate(..., (299, 299), mode='bilinear', align_corners=False)`` in float.

pegan's ``legacy_pytorch`` mode already is the fakes' path (clean-fid's PyTorch bilinear
resizer on float, then pytorch-fid's network on ``2 (x / 255) - 1``; the affine
normalisation commutes with bilinear interpolation). This module adds the reals' path:
:func:`cv2_bilinear_resize` and :class:`MMGenRealExtractor`, used by ``pegan real-features
--protocol mmgen`` (the file's ``meta`` records ``protocol: mmgen`` and the resize).

cv2's uint8 bilinear differs from a float bilinear by up to 0.8 grey levels per pixel
(its fixed-point weights; on 256 -> 299 the mean difference is -0.13 grey levels), so the
two paths are not interchangeable at the last digit; which one the reals take is recorded.

Not reproduced (statistical differences only): mmgen's statistics use a *shuffled* 50k
subset of the 70k FFHQ images; pegan uses the first N in name order.

The official MS-PIE configs (every row, including 512, 896 and 1024 px) point at the 256-px
statistics ``ffhq-256-50k-rgb.pkl`` (config-b, the 512-px baseline, at ``ffhq-512-50k-rgb.pkl``);
the metric setting ``fid_real_resolution: base`` reproduces that: an evaluation reads the
real features of the dataset at the experiment's base resolution (``resolution`` of its spec:
256 for every MS-PIE row, 512 for config-b) whatever the scale it samples at.
"""

from __future__ import annotations

import numpy as np
import torch

from pegan.errors import PeganError
from pegan.metrics.inception import load_inception, resolve_inception
from pegan.metrics.registry import Setting

MMGEN_SIZE = 299                      # inception_stat.py --size default
PROTOCOLS = ("pegan", "mmgen")
# What each protocol does to the reals (recorded in the real-features file's meta).
REAL_RESIZE = {
    "pegan": "the FID mode's resizer (the same as the fakes')",
    "mmgen": "cv2.resize INTER_LINEAR on uint8 to 299 outside the network "
             "(mmcv.imresize bilinear, MMGeneration's inception_stat.py)",
}
FAKE_RESIZE_MMGEN = "F.interpolate bilinear align_corners=False to 299 on float (inside the net)"

# The settings that choose the real statistics of the Inception pass. They belong to the
# Inception metrics (FID, KID): fid.py registers them with its INCEPTION_SETTINGS.
REAL_STATISTICS_SETTINGS = (
    Setting("fid_real_protocol", "pegan", {"enum": list(PROTOCOLS)},
            "how the real statistics were resized: pegan (like the fakes) or mmgen "
            "(cv2 bilinear to 299 outside the network, MMGeneration's inception_stat.py; "
            "needs fid_mode legacy_pytorch)"),
    Setting("fid_real_resolution", None,
            {"oneOf": [{"type": "null"}, {"enum": ["base"]}, {"type": "integer", "minimum": 1}]},
            "resolution of the real images behind the FID statistics of fid_mode's pass: "
            "null = the evaluation scale; base = the experiment's base resolution "
            "(MMGeneration's configs: the 256-px statistics for every MS-PIE row, 512 for "
            "config-b); or a number of pixels"),
)


def _cv2():
    try:
        import cv2
    except ImportError:
        raise PeganError("protocol mmgen resizes the reals with OpenCV: "
                         "`pip install opencv-python-headless`") from None
    return cv2


def cv2_version() -> str:
    return _cv2().__version__


def cv2_bilinear_resize(img: np.ndarray, size: int = MMGEN_SIZE) -> np.ndarray:
    """``mmcv.imresize(img, (size, size), interpolation='bilinear')`` with the cv2 backend.

    Args:
        img: uint8 [H, W, C] image (channel order does not matter: channels are resized
            independently).
        size: output height and width.

    Returns:
        uint8 [size, size, C]: ``cv2.resize(img, (size, size), interpolation=INTER_LINEAR)``.
    """
    if img.dtype != np.uint8 or img.ndim != 3:
        raise PeganError(f"mmgen resize takes uint8 HxWxC images, got {img.dtype} "
                         f"of shape {tuple(img.shape)}")
    cv2 = _cv2()
    out = cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_LINEAR)
    return out[..., None] if out.ndim == 2 else out


class MMGenRealExtractor:
    """Inception pool3 features of real images as MMGeneration's ``inception_stat.py`` makes
    them: cv2 bilinear to 299 on uint8, then pytorch-fid's network (``legacy_pytorch``
    weights: pytorch-fid's file or the port of the TorchScript).

    The network input is ``2 (u / 255) - 1`` where mmgen computes ``(u - 127.5) / 127.5``:
    equal up to one float32 rounding.
    """

    mode = "legacy_pytorch"

    def __init__(self, inception_path: str | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 32, origin: str = "config") -> None:
        self.source = resolve_inception(self.mode, inception_path, origin)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.model = load_inception(self.source, self.device)

    def protocol(self) -> dict:
        return {"mode": self.mode, "network": self.source.describe(), "protocol": "mmgen",
                "real_resize": REAL_RESIZE["mmgen"], "fake_resize": FAKE_RESIZE_MMGEN,
                "cv2": cv2_version()}

    @torch.no_grad()
    def images(self, images: torch.Tensor) -> np.ndarray:
        """Features [N, 2048] of uint8 [N, 3, H, W] RGB images."""
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise PeganError(f"real images must be uint8 NCHW, got {images.dtype} "
                             f"{tuple(images.shape)}")
        arrays = images.detach().cpu().numpy().transpose(0, 2, 3, 1)
        out = []
        for start in range(0, len(arrays), self.batch_size):
            resized = np.stack([cv2_bilinear_resize(a) for a in
                                arrays[start:start + self.batch_size]])
            x = torch.from_numpy(np.ascontiguousarray(resized.transpose(0, 3, 1, 2)))
            out.append(self.model(x.to(self.device, torch.float32)).cpu().numpy())
        if not out:
            return np.zeros((0, 2048), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)

    def image_set(self, image_set) -> np.ndarray:
        """Features of a :class:`pegan.metrics.images.ImageSet`, in its order."""
        feats = [self.images(b) for b in image_set.batches(self.batch_size)]
        return np.concatenate(feats) if feats else np.zeros((0, 2048), np.float32)

"""Offline datasets shipped with scikit-image: the LFW subset faces and its photographs."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pegan.data.images import from_array
from pegan.errors import PeganError


def lfw_subset() -> list[Image.Image]:
    """scikit-image's bundled LFW subset: 200 grey 25x25 faces, as RGB images."""
    import skimage.data

    faces = skimage.data.lfw_subset()            # [200, 25, 25] float in [0, 1]
    return [from_array(face) for face in faces]


def skimage_image(name: str) -> Image.Image:
    """One of scikit-image's bundled photographs (e.g. 'coffee', 'chelsea', 'astronaut')."""
    import skimage.data

    loader = getattr(skimage.data, name, None)
    if loader is None or not callable(loader) or name.startswith("_"):
        raise PeganError(f"scikit-image has no bundled image {name!r} "
                         "(try coffee, chelsea, astronaut)")
    try:
        arr = np.asarray(loader())
    except Exception as exc:  # an image that would need a download, or a non-image loader
        raise PeganError(f"scikit-image image {name!r} is not available offline "
                         f"({type(exc).__name__}: {exc})") from None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise PeganError(f"scikit-image data {name!r} is not a photograph (shape {arr.shape})")
    if arr.dtype != np.uint8:
        arr = np.clip(arr.astype(np.float64), 0, 1)
    return from_array(arr)

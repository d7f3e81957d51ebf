"""Procedural "aligned objects": a dataset in which absolute position matters.

Every image has the same layout, a face-like arrangement in the centre of the canvas (an oval,
two eyes above its middle, a mouth below), with random colours, random sizes and a small random
jitter of the whole layout (±`jitter` of the image side, 1-2 px at 32 px). A generator that cannot
tell where it is on the canvas cannot place the parts, which is what the padding/positional
encoding ablations probe (see /work/shared/reference/cpu-scale-findings.md).

Image `i` of seed `s` is drawn from its own generator ``numpy.random.default_rng([s, i])``, so it
is the same at every dataset size, and the layout is described in units of the image side, so
the same image can be rendered at any resolution (edges antialiased analytically).
"""

from __future__ import annotations

import numpy as np

# Layout in units of the image side (x right, y down); sizes are radii.
HEAD_CENTRE = (0.5, 0.52)
HEAD_RADII = (0.30, 0.38)           # +- SIZE_SPREAD relative
EYE_OFFSET = (0.13, -0.08)          # from the head centre, mirrored in x
EYE_RADIUS = 0.065
MOUTH_OFFSET = (0.0, 0.19)
MOUTH_RADII = (0.13, 0.045)
SIZE_SPREAD = 0.15                  # each object's size varies by up to +-15 %
JITTER = 0.04                       # the whole layout moves by up to +-4 % of the side


def _ellipse(xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, rx: float, ry: float,
             resolution: int) -> np.ndarray:
    """Coverage in [0, 1] of an axis-aligned ellipse (1-px-wide antialiased edge)."""
    f = np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)
    dist_px = (f - 1.0) * min(rx, ry) * resolution
    return np.clip(0.5 - dist_px, 0.0, 1.0)[..., None]


def aligned_object(index: int, resolution: int, seed: int = 0) -> np.ndarray:
    """Image `index` of the dataset as [resolution, resolution, 3] uint8."""
    rng = np.random.default_rng([seed, index])
    background = rng.uniform(0.05, 0.95, 3)
    head_colour = rng.uniform(0.2, 1.0, 3)
    eye_colour = rng.uniform(0.0, 0.35, 3)
    mouth_colour = rng.uniform(0.3, 0.9, 3) * np.array([1.0, 0.4, 0.4])
    sizes = 1.0 + rng.uniform(-SIZE_SPREAD, SIZE_SPREAD, 3)      # head, eyes, mouth
    shift = rng.uniform(-JITTER, JITTER, 2)

    coords = (np.arange(resolution) + 0.5) / resolution          # pixel centres
    xx, yy = np.meshgrid(coords, coords)
    cx, cy = HEAD_CENTRE[0] + shift[0], HEAD_CENTRE[1] + shift[1]
    img = np.broadcast_to(background, (resolution, resolution, 3)).copy()

    head = _ellipse(xx, yy, cx, cy, HEAD_RADII[0] * sizes[0], HEAD_RADII[1] * sizes[0], resolution)
    img = img * (1 - head) + head_colour * head
    for side in (-1.0, 1.0):
        r = EYE_RADIUS * sizes[1]
        eye = _ellipse(xx, yy, cx + side * EYE_OFFSET[0], cy + EYE_OFFSET[1], r, r, resolution)
        img = img * (1 - eye) + eye_colour * eye
    mouth = _ellipse(xx, yy, cx + MOUTH_OFFSET[0], cy + MOUTH_OFFSET[1],
                     MOUTH_RADII[0] * sizes[2], MOUTH_RADII[1] * sizes[2], resolution)
    img = img * (1 - mouth) + mouth_colour * mouth
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def aligned_objects(num: int, resolution: int, seed: int = 0) -> np.ndarray:
    """The first `num` images as [num, resolution, resolution, 3] uint8."""
    return np.stack([aligned_object(i, resolution, seed) for i in range(num)])

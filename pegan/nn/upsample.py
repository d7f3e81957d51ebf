"""The up-sampling kinds of the paper's ablations, as functions of a feature map.

* ``deconv`` (StyleGAN2): a stride-2 transposed conv followed by a [1,3,3,1] blur; lives in
  :class:`pegan.nn.modulated.ModulatedConv2d` because the conv itself up-samples.
* ``conv-bilinear`` / ``bilinear-conv`` (Table 2 (b), MS-PIE): bilinear x2 with
  ``align_corners=True`` (official ``up_config``) after / before an ordinary conv.
* no padding: bilinear resize h -> 2h + 4 (``align_corners=True``, official ``interp_pad=4``)
  before two valid 3x3 convs (2h + 2, then 2h).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

NOPAD_RESIZES = ("align-corners", "shift-equivariant")


def bilinear_double(x: Tensor) -> Tensor:
    """Bilinear x2 up-sampling with ``align_corners=True`` (official ``up_config``)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)


def nopad_resize(x: Tensor, extra: int = 4, mode: str = "align-corners") -> Tensor:
    """h x w -> (2h + extra) x (2w + extra) ahead of valid convs.

    ``mode="align-corners"`` is the official resize (bilinear, align_corners=True). Its
    sampling phase changes across the map (scale (h-1)/(2h+3)), so it is not exactly
    shift-equivariant. ``mode="shift-equivariant"`` (not official; for the equivariance
    analysis) up-samples x2 with half-pixel centres and extends the border by replication:
    shifting the input by one cell shifts the output by two pixels, away from the border.
    """
    if mode == "align-corners":
        h, w = x.shape[-2:]
        return F.interpolate(x, size=(2 * h + extra, 2 * w + extra), mode="bilinear",
                             align_corners=True)
    if mode == "shift-equivariant":
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        p0, p1 = extra // 2, extra - extra // 2
        return F.pad(x, [p0, p1, p0, p1], mode="replicate")
    raise ValueError(f"nopad_resize mode {mode!r}: choose {', '.join(NOPAD_RESIZES)}")

"""The up-sampling kinds of the paper's ablations, as functions of a feature map.

* ``deconv`` (StyleGAN2): a stride-2 transposed conv followed by a [1,3,3,1] blur; lives in
  :class:`pegan.nn.modulated.ModulatedConv2d` because the conv itself up-samples.
* ``conv-bilinear`` / ``bilinear-conv`` (Table 2 (b), MS-PIE): bilinear x2 with
  ``align_corners=True`` (official ``up_config``) after / before an ordinary conv.
* no padding: the resize ahead of valid convs lives with the padding switch
  (:func:`pegan.nn.padding.nopad_resize`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

def bilinear_double(x: Tensor) -> Tensor:
    """Bilinear x2 up-sampling with ``align_corners=True`` (official ``up_config``)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)

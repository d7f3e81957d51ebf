"""The padding switch (the paper's central ablation), for all four families.

* StyleGAN2, PGGAN, DCGAN: ``padding=True`` gives every k x k conv of the generator ``k // 2``
  zero padding (size-preserving, :func:`conv_padding`); ``padding=False`` makes them valid
  convs, and the generator compensates the lost border by resizing before each block
  (:func:`nopad_resize`: h -> 2h + 4 before two valid 3x3 convs, as the official no-padding
  design ``no_pad=True, interp_pad=4``; 2h + 2 before DCGAN's one) and by a head larger by
  the border the head's convs eat (:func:`padded_head_size`: 4 -> 6).
* SinGAN (:data:`SINGAN_PADDINGS`): ``zero`` pads each block's input by the border its valid
  convs eat (:func:`zero_pad`), ``interp`` draws the noise at the padded size and resizes the
  previous image to it (interpolation padding = no zero padding), ``conv`` zero-pads every
  conv by 1.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from pegan.errors import PeganError

UPSAMPLE_KINDS = ("deconv", "conv-bilinear", "bilinear-conv")
GAN_PADDINGS = (True, False)                   # StyleGAN2, PGGAN, DCGAN
SINGAN_PADDINGS = ("zero", "interp", "conv")   # SinGAN
NOPAD_RESIZES = ("align-corners", "shift-equivariant")


def padding_values(family: str) -> tuple:
    """The values of a family's `padding` switch."""
    return SINGAN_PADDINGS if family == "singan" else GAN_PADDINGS


def conv_padding(kernel_size: int, padding: bool) -> int:
    """Zero padding of a stride-1 conv: ``k // 2`` with padding, 0 (valid) without."""
    return kernel_size // 2 if padding else 0


def padded_head_size(base: int, padding: bool, kernel_size: int = 3) -> int:
    """Head size feeding a k x k conv: `base`, or `base` + the border a valid conv eats."""
    return base if padding else base + 2 * (kernel_size // 2)


def zero_pad(x: Tensor, pad: int) -> Tensor:
    """Zero padding of `pad` pixels on every side (SinGAN's block input)."""
    return F.pad(x, (pad,) * 4)


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


def check_generator_switches(upsample: str, padding: bool) -> None:
    """Reject combinations the official code cannot size consistently."""
    if upsample not in UPSAMPLE_KINDS:
        raise PeganError(f"upsample {upsample!r}: choose {', '.join(UPSAMPLE_KINDS)}")
    if not padding and upsample != "bilinear-conv":
        raise PeganError(
            f"padding=false needs upsample 'bilinear-conv' (got {upsample!r}): the no-padding "
            "design resizes h -> 2h+4 before two valid convs; a transposed conv or a conv "
            "before the up-sampling would shrink every block")

"""The zero-padding switch (the paper's central ablation).

``padding=True`` gives every k x k conv of the generator ``k // 2`` zero padding (size-
preserving); ``padding=False`` makes them valid convs, and the generator compensates the lost
border by resizing before each block (:func:`pegan.nn.upsample.nopad_resize`), as the
official no-padding design (``no_pad=True, interp_pad=4``).
"""

from __future__ import annotations

from pegan.errors import PeganError

UPSAMPLE_KINDS = ("deconv", "conv-bilinear", "bilinear-conv")


def conv_padding(kernel_size: int, padding: bool) -> int:
    """Zero padding of a stride-1 conv: ``k // 2`` with padding, 0 (valid) without."""
    return kernel_size // 2 if padding else 0


def check_generator_switches(upsample: str, padding: bool) -> None:
    """Reject combinations the official code cannot size consistently."""
    if upsample not in UPSAMPLE_KINDS:
        raise PeganError(f"upsample {upsample!r}: choose {', '.join(UPSAMPLE_KINDS)}")
    if not padding and upsample != "bilinear-conv":
        raise PeganError(
            f"padding=false needs upsample 'bilinear-conv' (got {upsample!r}): the no-padding "
            "design resizes h -> 2h+4 before two valid convs; a transposed conv or a conv "
            "before the up-sampling would shrink every block")

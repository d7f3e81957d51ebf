"""The exponential moving average of the generator (official ``ExponentialMovingAverageHook``)."""

from __future__ import annotations

import torch
from torch import nn


def ema_momentum(half_life_kimg: float, images_per_step: float) -> float:
    """Per-update momentum m = 0.5 ** (images_per_step / (half_life_kimg * 1000))."""
    if half_life_kimg <= 0:
        return 0.0
    return 0.5 ** (images_per_step / (half_life_kimg * 1000.0))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, momentum: float) -> None:
    """ema = model + (ema - model) * momentum for parameters; buffers are copied (the official
    hook's ``momentum_nontrainable=0``)."""
    for p_ema, p in zip(ema.parameters(), model.parameters()):
        p_ema.copy_(torch.lerp(p.detach(), p_ema, momentum))
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)

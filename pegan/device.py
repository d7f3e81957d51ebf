"""The one device resolver of pegan (training, evaluation, real features, figures)."""

from __future__ import annotations

import torch

from pegan.errors import PeganError

DEVICES = ("auto", "cpu", "cuda")     # config.yaml `device` values (cuda[:i] also accepted)


def resolve_device(wanted: str | torch.device) -> torch.device:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda[:i]' without a GPU is an error
    (one line, before any work); anything else -> ``torch.device(wanted)``."""
    if isinstance(wanted, torch.device):
        return wanted
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.startswith("cuda") and not torch.cuda.is_available():
        raise PeganError(f"device {wanted!r} asked for, but no CUDA GPU is visible; "
                         "use a GPU node, --device cpu or a CPU preset (smoke, mini)")
    try:
        return torch.device(wanted)
    except RuntimeError:
        raise PeganError(f"device {wanted!r}: use auto, cpu or cuda[:i]") from None

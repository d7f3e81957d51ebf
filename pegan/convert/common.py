"""What the StyleGAN2 / MS-PIE (:mod:`pegan.convert.mmgen`) and SinGAN
(:mod:`pegan.convert.singan`) importers share: reading a released MMGeneration checkpoint,
splitting its state dict by model prefix, and checking renamed keys and shapes against the
state of the pegan model they become."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from pegan.errors import PeganError

PREFIXES = ("generator", "generator_ema", "discriminator")
_SHOW = 5  # keys listed per category in an error message


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a released checkpoint; returns ``{"meta": dict, "state_dict": dict}``."""
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"checkpoint {path} not found (download it first, see README "
                         "'Evaluating the released checkpoints')")
    try:
        # weights_only=False: mmcv's save_checkpoint pickles whatever the runner and its hooks
        # put into `meta`, which can hold objects the safe loader refuses (numpy scalars and
        # arrays, for one). These are the official releases the user chose to download;
        # pegan's own files load with weights_only=True (pegan.snapshot, pegan.train.checkpoint).
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated download, not a torch file, missing pickled class
        raise PeganError(f"{path} cannot be read as a torch checkpoint "
                         f"({type(exc).__name__}: {exc}); re-download it") from None
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise PeganError(f"{path} is not an MMGeneration checkpoint (no top-level 'state_dict')")
    return {"meta": dict(ckpt.get("meta") or {}), "state_dict": dict(ckpt["state_dict"])}


def split_prefixes(state_dict: Mapping[str, Tensor]) -> dict[str, dict[str, Tensor]]:
    """``{"generator": {...}, "generator_ema": {...}, "discriminator": {...}}`` (prefix stripped);
    keys under other prefixes (e.g. the path-length regulariser's buffer) are left out."""
    parts: dict[str, dict[str, Tensor]] = {p: {} for p in PREFIXES}
    for key, value in state_dict.items():
        head, _, rest = key.partition(".")
        if head in parts and rest:
            parts[head][rest] = value
    return parts


def expected_state(model_fn: Callable[[], torch.nn.Module]) -> dict[str, torch.Size]:
    """Names and shapes of a model's state, built on the meta device (no memory, no init)."""
    with torch.device("meta"):
        model = model_fn()
    return {k: v.shape for k, v in model.state_dict().items()}


def _mismatch_message(what: str, missing: list[str], unexpected: list[str],
                      shapes: list[str]) -> str:
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = "; ".join(items[:_SHOW]) + (f"; ... ({len(items) - _SHOW} more)"
                                                 if len(items) > _SHOW else "")
            parts.append(f"{len(items)} {label}: {shown}")
    return (f"{what} does not match the experiment's architecture: " + " | ".join(parts)
            + " (wrong --experiment? omit it to detect the configuration)")


def map_state(official: Mapping[str, Tensor], expected: Mapping[str, torch.Size], part: str,
              what: str, *, rename: Callable[[str, str], str | None]) -> dict[str, Tensor]:
    """Rename ``official`` to pegan's keys (``rename(key, part)``; None drops a key) and check
    it against ``expected`` (names, shapes); raises :class:`PeganError` listing missing /
    unexpected keys and shape mismatches."""
    out: dict[str, Tensor] = {}
    unexpected, shapes = [], []
    for key, value in official.items():
        name = rename(key, part)
        if name is None:
            continue
        if name not in expected:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(expected[name]):
            shapes.append(f"{key} {list(value.shape)} != {list(expected[name])}")
        else:
            out[name] = value.detach().clone().float()
    present = {rename(k, part) for k in official}
    missing = [k for k in expected if k not in present]
    if missing or unexpected or shapes:
        raise PeganError(_mismatch_message(what, missing, unexpected, shapes))
    return out

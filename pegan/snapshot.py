"""The snapshot file: what training writes and evaluation, selection and figures read.

A snapshot holds the EMA generator only (plus how to rebuild it), not the training state;
the resumable training checkpoint is a different, larger file (see pegan.train).

    {"format": "pegan-snapshot-v1", "arch": "stylegan2", "experiment": "t5f",
     "G_kwargs": {...constructor arguments...}, "G_ema": state_dict,
     "kimg": 160.0, "spec": ExperimentSpec.to_dict(), "extra": {...}}

Only tensors, dicts, lists, tuples, numbers, strings and None go in, so a snapshot loads with
``torch.load(weights_only=True)``: reading one runs no pickled code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pegan.errors import PeganError
from pegan.io import torch_save

FORMAT = "pegan-snapshot-v1"


def save_snapshot(path: str | Path, *, arch: str, experiment: str, G_kwargs: dict,
                  G_ema: torch.nn.Module, kimg: float, spec: dict | None = None,
                  extra: dict | None = None) -> None:
    state = {k: v.detach().cpu() for k, v in G_ema.state_dict().items()}
    torch_save({"format": FORMAT, "arch": arch, "experiment": experiment,
                "G_kwargs": dict(G_kwargs), "G_ema": state, "kimg": float(kimg),
                "spec": spec or {}, "extra": extra or {}}, path)


def load_snapshot(path: str | Path) -> dict[str, Any]:
    """Read a snapshot (weights only: a file holding any other pickled object is refused)."""
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"snapshot {path} not found")
    try:
        snap = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or truncated file, or a pickled object beyond weights
        raise PeganError(f"snapshot {path} cannot be read ({type(exc).__name__}); "
                         "delete it and rerun the job that wrote it") from None
    if not isinstance(snap, dict) or snap.get("format") != FORMAT:
        raise PeganError(f"{path} is not a pegan snapshot (expected format {FORMAT}); "
                         "released MMGeneration checkpoints go through `pegan import-mmgen`")
    return snap


def load_generator(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the EMA generator of a snapshot; returns (G in eval mode, snapshot metadata)."""
    from pegan.models import build_generator

    snap = load_snapshot(path)
    G = build_generator(snap["arch"], snap["G_kwargs"])
    G.load_state_dict(snap["G_ema"])
    G.to(device).eval().requires_grad_(False)
    meta = {k: v for k, v in snap.items() if k != "G_ema"}
    return G, meta

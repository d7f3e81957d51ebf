"""Resumable training checkpoints: atomic, the last K kept, bit-exact continuation on CPU.

A checkpoint ``ckpt-<iterations:09d>.pt`` in the checkpoint dir holds the recipe's state (G, D,
G_ema, optimisers, extra state), the global RNG states of every rank (torch CPU and CUDA, numpy,
python), the data order (:meth:`pegan.data.loader.IterationSampler.state`), the number of
iterations done, the config hash, the dataset's identity (path, content fingerprint) and the
run's recorded configuration changes. It is loadable with ``torch.load(weights_only=True)``.

Only finite state is ever kept: the loop refuses to save a checkpoint whose parameters,
buffers or optimiser moments hold NaN/Inf, and :meth:`CheckpointStore.load_latest` skips such a
checkpoint (written before this rule) in favour of the previous one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pegan.errors import PeganError
from pegan.io import torch_save

log = logging.getLogger(__name__)
FORMAT = "pegan-train-checkpoint-v1"
_NAME = re.compile(r"^ckpt-(\d{9})\.pt$")


def config_hash(payload: dict) -> str:
    """sha256 of the canonical JSON of everything that determines a run's trajectory."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def state_digest(obj: Any) -> str:
    """sha256 of a nested state (dicts, lists, tensors, numbers): equal iff bit-identical."""
    h = hashlib.sha256()

    def feed(x: Any) -> None:
        if isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        elif isinstance(x, dict):
            for k in sorted(x, key=str):
                h.update(f"K{k}".encode())
                feed(x[k])
        elif isinstance(x, (list, tuple)):
            h.update(f"L{len(x)}".encode())
            for v in x:
                feed(v)
        else:
            h.update(f"V{x!r}".encode())

    feed(obj)
    return h.hexdigest()


def nonfinite_entries(obj: Any, prefix: str = "", limit: int = 3) -> list[str]:
    """Dotted names of (up to `limit`) floating-point tensors in a nested state that hold NaN or
    Inf, e.g. 'optimizers.G.state.12.exp_avg_sq'."""
    found: list[str] = []

    def walk(x: Any, name: str) -> None:
        if len(found) >= limit:
            return
        if isinstance(x, torch.Tensor):
            if (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x).all()):
                found.append(name)
        elif isinstance(x, dict):
            for k, v in x.items():
                walk(v, f"{name}.{k}" if name else str(k))
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(v, f"{name}.{i}" if name else str(i))

    walk(obj, prefix)
    return found


# ----------------------------------------------------------------------------- RNG state


def capture_rng() -> dict[str, Any]:
    """This process's global RNG states (torch CPU/CUDA, numpy legacy, python)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, pystate, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": {"version": version, "state": list(pystate), "gauss": gauss},
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))


# ---------------------------------------------------------------------------- the store


class CheckpointStore:
    """The training checkpoints of one run in one folder (outside the workflow's outputs)."""

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.dir = Path(directory)
        self.keep = max(1, keep)

    def paths(self) -> list[Path]:
        """Checkpoint files, oldest first."""
        if not self.dir.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def path_for(self, iterations: int) -> Path:
        return self.dir / f"ckpt-{iterations:09d}.pt"

    def latest(self) -> Path | None:
        paths = self.paths()
        return paths[-1] if paths else None

    def save(self, state: dict) -> Path:
        """Write `state` (must hold 'iterations') atomically, then prune to the last K."""
        path = self.path_for(state["iterations"])
        torch_save({"format": FORMAT, **state}, path)
        for old in self.paths()[:-self.keep]:
            old.unlink(missing_ok=True)
        return path

    def load_latest(self, expected_hash: str, *, accept_other: bool = False) -> dict | None:
        """The newest readable checkpoint with finite state (None if there is none). A different
        config hash is refused unless `accept_other` (the caller then checks what changed)."""
        for path in reversed(self.paths()):
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # truncated by a disk error: fall back to the previous one
                log.warning("checkpoint %s cannot be read (%s: %s); trying the previous one",
                            path, type(exc).__name__, exc)
                continue
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                log.warning("%s is not a pegan training checkpoint; skipped", path)
                continue
            if bad := nonfinite_entries(state["recipe"]):
                log.warning("checkpoint %s holds NaN/Inf (%s); trying the previous one",
                            path, ", ".join(bad))
                continue
            if state["config_hash"] != expected_hash and not accept_other:
                raise PeganError(
                    f"{self.dir} holds a run with another configuration (config hash "
                    f"{state['config_hash']}, this run {expected_hash}"
                    f"{_settings_difference(state)}); delete that folder or "
                    "choose another --checkpoint-dir to start afresh, or continue it with "
                    "other --set settings on purpose: add --accept-config-change REASON")
            state["path"] = str(path)
            return state
        return None


def _settings_difference(state: dict) -> str:
    """For a run that continued with recorded setting changes: the --set flags it runs with."""
    changed = sorted({k.split(".", 1)[1] for c in state.get("changes", [])
                      for k in c.get("changed", {}) if k.startswith("settings.")})
    if not changed:
        return ""
    settings = state.get("config", {}).get("settings", {})
    flags = " ".join(f"--set {k}={settings.get(k)}" for k in changed)
    return f"; it continued with changed settings: repeat {flags}"

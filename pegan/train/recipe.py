"""The recipe interface: what a GAN family gives the generic training loop.

See the package docstring (:mod:`pegan.train`) for the calling order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from pegan.config import ExperimentSpec
from pegan.errors import PeganError


@dataclass(frozen=True)
class TrainContext:
    """Where and as what this process trains."""

    device: torch.device
    seed: int
    rank: int = 0
    world_size: int = 1


@dataclass(frozen=True)
class Schedule:
    """How long a run is and when it takes snapshots, in iterations."""

    total_iterations: int
    images_per_iteration: int              # global batch (all ranks together)
    snapshot_iterations: tuple[int, ...]   # the last one is the final model

    def kimg(self, iterations: int) -> float:
        return iterations * self.images_per_iteration / 1000.0


@dataclass
class StepOutput:
    """One iteration's result: losses (0-d tensors, NaN-checked) and plain info numbers."""

    losses: dict[str, torch.Tensor]
    info: dict[str, float] = field(default_factory=dict)


def schedule_from_spec(spec: ExperimentSpec) -> Schedule:
    """Iterations of a kimg-scheduled run: total and snapshot image counts / global batch."""
    per_iter = spec.batch
    total = max(1, math.ceil(spec.total_kimg * 1000 / per_iter - 1e-9))
    snaps = sorted({min(total, max(1, math.ceil(k * 1000 / per_iter - 1e-9)))
                    for k in spec.snapshot_grid()} | {total})
    return Schedule(total, per_iter, tuple(snaps))


def parse_settings(cls: type, overrides: Mapping[str, Any], *, strict: bool = False) -> Any:
    """Build the settings dataclass `cls` from {name: value} (values may be CLI strings);
    `strict`: values must already have the default's type (a config file's values)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, raw in overrides.items():
        if key not in fields:
            raise PeganError(f"unknown training setting {key!r} (known: {', '.join(fields)})")
        default = getattr(cls(), key)
        if strict and not _same_type(raw, default):
            raise PeganError(f"training setting {key}={raw!r}: expected a value like {default!r}")
        values[key] = _coerce(key, raw, default)
    return cls(**values)


def _same_type(value: Any, default: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


def _coerce(key: str, raw: Any, default: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError(raw)
            return raw.lower() in ("true", "1", "yes")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, (list, tuple)) or default is None:
            return json.loads(raw)
    except ValueError:
        raise PeganError(f"training setting {key}={raw!r}: expected a value like "
                         f"{default!r}") from None
    return raw


class Recipe:
    """Base class of a family's training recipe (models, optimisers, one iteration)."""

    #: the settings dataclass of this family (every field has the official value as default)
    Settings: ClassVar[type]
    #: horizontal flips of the real images (official StyleGAN2 data pipeline: flip_ratio 0.5)
    flip: ClassVar[bool] = True

    def __init__(self, spec: ExperimentSpec, ctx: TrainContext, settings: Any) -> None:
        self.spec = spec
        self.ctx = ctx
        self.settings = settings
        self.G_kwargs: dict = {}

    def build_replicated_models(self) -> tuple[nn.Module, nn.Module]:
        """G and D of the spec (:func:`pegan.models.build_models`) on this process's device,
        identical on every rank (rank 0's initialisation is broadcast); sets ``G_kwargs`` and
        ``D_kwargs``."""
        from pegan.models import build_models
        from pegan.train.distributed import broadcast_module

        G, D, self.G_kwargs, self.D_kwargs = build_models(self.spec)
        G, D = G.to(self.ctx.device), D.to(self.ctx.device)
        broadcast_module(G)
        broadcast_module(D)
        return G, D

    # ---------------------------------------------------------------- what subclasses give
    def modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def step(self, real: torch.Tensor, iteration: int) -> StepOutput:
        raise NotImplementedError

    def eval_generator(self) -> nn.Module:
        raise NotImplementedError

    def extra_state(self) -> dict:
        return {}

    def generators(self) -> dict[str, torch.Generator]:
        """The recipe's own random streams, seeded per rank: the loop checkpoints them per
        rank with the global RNG states (not in :meth:`state_dict`, which every rank must
        hold bit-identically)."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ---------------------------------------------------------------------- defaults
    def schedule(self) -> Schedule:
        return schedule_from_spec(self.spec)

    def data_resolution(self) -> int:
        """Size (px) of the real images the loop loads (the spec's ``data_resolution``)."""
        return self.spec.data_resolution

    def write_snapshot(self, path: Path, *, kimg: float, extra: dict | None = None) -> None:
        from pegan.snapshot import save_snapshot

        save_snapshot(path, arch=self.spec.arch, experiment=self.spec.name,
                      G_kwargs=self.G_kwargs, G_ema=self.eval_generator(), kimg=kimg,
                      spec=self.spec.to_dict(), extra={"seed": self.ctx.seed, **(extra or {})})

    def state_dict(self) -> dict:
        return {
            "modules": {k: m.state_dict() for k, m in self.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()},
            "extra": self.extra_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        for key, module in self.modules().items():
            module.load_state_dict(state["modules"][key])
        for key, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][key])
        self.load_extra_state(state.get("extra", {}))

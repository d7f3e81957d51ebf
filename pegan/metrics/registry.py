"""The metric registry: every metric registers itself here, everything else reads it.

A metric is one module of ``pegan/metrics/`` that decorates its accumulator class with
:func:`register`. The registration says everything the rest of pegan needs:

* ``pegan evaluate`` runs it: it builds the accumulator with the evaluation context and the
  sample count, feeds it every batch of fakes (uint8 images, plus the fakes' features of the
  shared feature pass it asked for) and collects ``finish()``;
* the workflow plans it: which sample count of a preset it reads, and which metrics share one
  evaluation job (``group``);
* tables, comparisons and claims read its outputs: unit, direction, whether the paper prints
  it in percent, whether it has one value per pyramid level;
* the config schema derives its enums (column metrics, tolerances, sample keys, metric
  settings) from the registry, so a new metric needs no schema edit.

Adding a metric is one file: a module in ``pegan/metrics/`` (found by :func:`load_builtin`) or
any module imported before the registry is read, e.g. a test's.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from pegan.errors import PeganError


@dataclass(frozen=True)
class Output:
    """One number (or per-level dict) a metric writes into a result's ``values``."""

    key: str                    # name in `values`, in table columns and tolerances
    unit: str                   # what the raw value means (written into every result)
    lower_is_better: bool
    percent: bool = False       # tables print 100 x the value (the paper's %)
    levels: bool = False        # the value is {level px | 'avg': number} (SWD)


@dataclass(frozen=True)
class Setting:
    """One key of config.yaml's ``metrics:`` section."""

    name: str
    default: Any
    schema: Mapping             # JSON schema of the value (enum, type, ...)
    description: str = ""


class Accumulator(Protocol):
    """What a registered metric builds per evaluation."""

    def add(self, images: Any, features: Mapping[str, Any]) -> None:
        """One batch of fakes: uint8 [B, 3, H, W] and the fakes' shared features."""

    def finish(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(values by output key, protocol record shared by its outputs)."""


@dataclass(frozen=True)
class Metric:
    """A registered metric (a token of a metric set such as ``fid-kid-pr``)."""

    name: str
    version: str                # bump when the protocol changes (recorded in every result)
    description: str
    outputs: tuple[Output, ...]
    build: Callable[..., Accumulator]       # build(ctx, num) -> accumulator
    samples: str                # key of a preset's `samples` holding its image count
    samples_fallback: str | None = None     # key used when `samples` lacks its own
    group: str = ""             # metrics of one group run in one evaluation job (default: name)
    always: bool = False        # evaluated whenever its group is (FID with KID)
    features: str | Callable[[Mapping], str | None] | None = None   # shared fake feature pass
    singan: bool = False        # applies to SinGAN snapshots (samples at the image's size)
    settings: tuple[Setting, ...] = field(default_factory=tuple)
    order: int = 100            # position in the registry (then module, then definition)

    def feature_pass(self, settings: Mapping) -> str | None:
        """Name of the shared feature pass over the fakes it reads (None: pixels only)."""
        return self.features(settings) if callable(self.features) else self.features


_REGISTRY: dict[str, Metric] = {}
_DEFINED: dict[str, tuple[int, str, int]] = {}     # name -> sort key (order, module, seq)
_BUILTIN_LOADED = False


def register(name: str, *, version: str, description: str, outputs: tuple[Output, ...],
             samples: str | None = None, samples_fallback: str | None = None,
             group: str | None = None, always: bool = False,
             features: str | Callable[[Mapping], str | None] | None = None,
             singan: bool = False, settings: tuple[Setting, ...] = (),
             order: int = 100) -> Callable:
    """Class decorator: register ``cls(ctx, num)`` as the accumulator of metric `name`.

    The registry's order (metric sets are named in it: ``fid-kid-pr``) is by `order`, then
    module name, then definition order, whatever order the modules were imported in."""

    def decorate(cls):
        known = {o.key: m.name for m in _REGISTRY.values() if m.name != name for o in m.outputs}
        clash = [o.key for o in outputs if o.key in known]
        if clash:
            raise PeganError(f"metric {name!r}: output {clash[0]!r} is already an output of "
                             f"metric {known[clash[0]]!r}")
        _REGISTRY[name] = Metric(name=name, version=version, description=description,
                                 outputs=tuple(outputs), build=cls, samples=samples or name,
                                 samples_fallback=samples_fallback, group=group or name,
                                 always=always, features=features, singan=singan,
                                 settings=tuple(settings), order=order)
        _DEFINED[name] = (order, cls.__module__, len(_DEFINED) if name not in _DEFINED
                          else _DEFINED[name][2])
        return cls

    return decorate


def load_builtin() -> None:
    """Import every module of ``pegan/metrics/`` once, so their registrations run."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{__package__}.{info.name}")


def metrics() -> dict[str, Metric]:
    """Every registered metric, in the registry's order (see :func:`register`)."""
    load_builtin()
    return {name: _REGISTRY[name] for name in sorted(_REGISTRY, key=lambda n: _DEFINED[n])}


def get(name: str) -> Metric:
    registry = metrics()
    if name not in registry:
        raise PeganError(f"unknown metric {name!r} (registered: {', '.join(registry)})")
    return registry[name]


def outputs() -> dict[str, Output]:
    """Every output key of every metric (the values a table column can show)."""
    return {o.key: o for m in metrics().values() for o in m.outputs}


def owner(output: str) -> Metric:
    """The metric that computes an output key (``precision`` -> ``pr``)."""
    for metric in metrics().values():
        if any(o.key == output for o in metric.outputs):
            return metric
    raise PeganError(f"no registered metric computes {output!r} "
                     f"(known outputs: {', '.join(outputs())})")


def settings() -> dict[str, Setting]:
    """Every metric setting (config.yaml ``metrics:``), first registration wins."""
    out: dict[str, Setting] = {}
    for metric in metrics().values():
        for setting in metric.settings:
            out.setdefault(setting.name, setting)
    return out


def default_settings() -> dict[str, Any]:
    return {name: s.default for name, s in settings().items()}


def parse_metric_set(text: str | list[str]) -> list[str]:
    """'fid-kid-pr' (or a list, or comma-separated) -> ['fid', 'kid', 'pr'] in registry order."""
    registry = metrics()
    tokens = text if isinstance(text, list) else text.replace(",", "-").split("-")
    tokens = [t.strip().lower() for t in tokens if t.strip()]
    unknown = [t for t in tokens if t not in registry]
    if unknown or not tokens:
        raise PeganError(f"unknown metric(s) {', '.join(unknown) or repr(text)} "
                         f"(choose a '-'-joined subset of {', '.join(registry)})")
    return [name for name in registry if name in tokens]


def metric_set(names: set[str] | list[str]) -> str:
    """The metric set that evaluates `names` with their group's companions, e.g.
    {'pr'} -> 'fid-kid-pr' (FID and KID always come with the shared feature pass)."""
    registry = metrics()
    groups = {registry[n].group for n in names}
    chosen = set(names) | {m.name for m in registry.values() if m.always and m.group in groups}
    return "-".join(n for n in registry if n in chosen)


def units() -> dict[str, str]:
    """Output key -> unit, recorded in every result."""
    return {o.key: o.unit for o in outputs().values()}

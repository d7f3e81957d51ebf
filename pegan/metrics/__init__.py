"""Metrics: FID/KID (clean-fid), improved precision/recall, SWD; one file per metric.

The registry names each metric set the workflow asks for (``fid-kid-pr``, ``swd``, ...), what
it reports and which feature pass it needs. Importing this module does not import torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One metric of ``pegan evaluate``."""

    name: str              # token in the metric set ('fid', 'kid', 'pr', 'swd')
    module: str            # implementation
    version: str           # bump when the protocol changes (recorded in every result)
    outputs: tuple[str, ...]   # keys it fills in the result's `values`
    features: str          # inception | pr (Inception or VGG16) | pixels
    description: str


REGISTRY: dict[str, Metric] = {
    "fid": Metric("fid", "pegan.metrics.fid", "fid-1", ("fid",), "inception",
                  "Fréchet Inception distance (clean-fid)"),
    "kid": Metric("kid", "pegan.metrics.fid", "kid-1", ("kid",), "inception",
                  "kernel Inception distance, raw (clean-fid; papers print x10^3)"),
    "pr": Metric("pr", "pegan.metrics.pr", "pr-1", ("precision", "recall"), "pr",
                 "improved precision and recall, fractions (Kynkäänniemi et al. 2019)"),
    "swd": Metric("swd", "pegan.metrics.swd", "swd-1", ("swd",), "pixels",
                  "sliced Wasserstein distance x10^3 per pyramid level and avg (PGGAN)"),
    "structure": Metric("structure", "pegan.metrics.structure", "structure-1",
                        ("structure", "diversity", "patch_swd"), "pixels",
                        "global layout agreement, sample diversity and 7x7 patch SWD"),
}


def parse_metric_set(text: str | list[str]) -> list[str]:
    """'fid-kid-pr' (or a list, or comma-separated) -> ['fid', 'kid', 'pr'] in registry order."""
    from pegan.errors import PeganError

    tokens = text if isinstance(text, list) else text.replace(",", "-").split("-")
    tokens = [t.strip().lower() for t in tokens if t.strip()]
    unknown = [t for t in tokens if t not in REGISTRY]
    if unknown or not tokens:
        raise PeganError(f"unknown metric(s) {', '.join(unknown) or repr(text)} "
                         f"(choose a '-'-joined subset of {', '.join(REGISTRY)})")
    return [name for name in REGISTRY if name in tokens]


def resolve_device(device):
    """'auto' -> cuda when available, else cpu; anything else -> torch.device(device)."""
    import torch

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)

"""Generators and discriminators of every architecture family, and the factory that builds
them from a registry experiment (:class:`pegan.config.ExperimentSpec`).

Every generator except SinGAN's follows one protocol: attribute ``z_dim`` and
``forward(z, scale=None) -> images`` in [-1, 1], RGB, NCHW; ``scale`` is an output size in
pixels (None: the base resolution).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import torch

from pegan.errors import PeganError

# arch -> module; each module defines generator_kwargs(spec), discriminator_kwargs(spec),
# Generator and Discriminator. Modules are imported on first use.
FAMILIES: dict[str, str] = {
    "stylegan2": "pegan.models.stylegan2",
    "pggan": "pegan.models.pggan",
    "dcgan": "pegan.models.dcgan",
    "singan": "pegan.models.singan",
}


def num_octaves(resolution: int) -> int:
    """x2 up-sampling blocks from a 4x4 head to `resolution` (a power of two >= 8)."""
    octaves = int(round(math.log2(resolution / 4)))
    if resolution < 8 or 4 * 2 ** octaves != resolution:
        raise PeganError(f"resolution {resolution} is not 4 x 2^k (k >= 1)")
    return octaves


def family(arch: str):
    if arch not in FAMILIES:
        raise PeganError(f"architecture {arch!r} is not implemented (known: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[arch])


def build_generator(arch: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    return family(arch).Generator(**kwargs)


def build_models(spec) -> tuple[torch.nn.Module, torch.nn.Module, dict, dict]:
    """(G, D, G_kwargs, D_kwargs) for a resolved experiment."""
    module = family(spec.arch)
    g_kwargs, d_kwargs = module.generator_kwargs(spec), module.discriminator_kwargs(spec)
    return module.Generator(**g_kwargs), module.Discriminator(**d_kwargs), g_kwargs, d_kwargs

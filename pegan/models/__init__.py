"""Generators and discriminators of every architecture family, and the factory that builds
them from a registry experiment (:class:`pegan.config.ExperimentSpec`).

Every generator except SinGAN's follows one protocol: attribute ``z_dim`` and
``forward(z, scale=None) -> images`` in [-1, 1], RGB, NCHW; ``scale`` is an output size in
pixels (None: the base resolution).
"""

from __future__ import annotations

import importlib
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


def family(arch: str):
    if arch not in FAMILIES:
        raise PeganError(f"architecture {arch!r} is not implemented (known: {', '.join(FAMILIES)})")
    return importlib.import_module(FAMILIES[arch])


def build_generator(arch: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    return family(arch).Generator(**kwargs)


def build_discriminator(arch: str, kwargs: dict[str, Any]) -> torch.nn.Module:
    return family(arch).Discriminator(**kwargs)


def build_models(spec) -> tuple[torch.nn.Module, torch.nn.Module, dict, dict]:
    """(G, D, G_kwargs, D_kwargs) for a resolved experiment."""
    module = family(spec.arch)
    g_kwargs, d_kwargs = module.generator_kwargs(spec), module.discriminator_kwargs(spec)
    return module.Generator(**g_kwargs), module.Discriminator(**d_kwargs), g_kwargs, d_kwargs

"""Training: one generic loop driving one *recipe* per architecture family.

The loop (:func:`pegan.train.loop.train`) owns everything that is the same for every GAN:
checkpoint/resume (bit-exact on CPU), the time budget and its resume exit status, the NaN/Inf
guard, snapshots and their selection metric, the JSONL logs, the tqdm bar and data-parallel
processes. A recipe owns what differs: the models, their optimisers, losses and regularisers.

Extension point: :class:`pegan.train.recipe.Recipe`
===================================================

A family plugs in by subclassing ``Recipe`` and registering the class's module path in
:data:`RECIPES` (``arch -> "module:Class"``). The loop calls, in this order::

    recipe = Recipe(spec, ctx, settings)          # build models + optimisers (ctx: device, rank,
                                                  # world size, seed); settings: {name: value}
    schedule = recipe.schedule()                  # iterations, images per iteration, snapshot
                                                  # iterations (default: from spec's kimg grid)
    recipe.load_state_dict(ckpt["recipe"])        # on resume only
    for iteration in range(start, schedule.total_iterations):
        real = next(batches)                      # [b, 3, R, R] float in [-1, 1], flipped,
                                                  # this rank's share of the global batch
        out = recipe.step(real, iteration)        # one G/D iteration -> StepOutput(losses, info)
        ...                                       # NaN guard on out.losses, logs, bar
        recipe.state_dict()                       # at checkpoints (modules, optimisers, extra)
        recipe.write_snapshot(path, kimg=...)     # at snapshot iterations (default: G_ema via
                                                  # pegan.snapshot.save_snapshot)
        recipe.eval_generator()                   # the generator the selection metric samples

What a subclass provides (small and explicit):

* ``modules() -> {name: nn.Module}``: every network to checkpoint (e.g. G, D, G_ema);
* ``optimizers() -> {name: Optimizer}``;
* ``extra_state()`` / ``load_extra_state(state)``: anything else (running means, the recipe's
  own seeded generators), default none;
* ``step(real, iteration) -> StepOutput``: losses as 0-d tensors (the guard checks each one),
  ``info`` as plain numbers for the bar and the log (e.g. the MS-PIE scale);
* ``eval_generator()`` and ``G_kwargs``: the generator written to snapshots;
* optionally ``schedule()``, ``data_resolution()`` and ``flip`` (horizontal flips of reals) when
  the family's schedule or data differ from the StyleGAN2-style defaults (e.g. SinGAN).

Distributed training: the loop starts one process per device (torchrun); a recipe averages its
gradients with :func:`pegan.train.distributed.all_reduce_grads` before each optimiser step and
draws run-wide random choices (the MS-PIE scale) from generators seeded alike on every rank, so
no rank waits for another's draw. Global torch / numpy / python RNG states of every rank, and
the recipe's own per-rank streams (``generators()``), are checkpointed by the loop.

Registered recipes: ``stylegan2`` (:mod:`pegan.train.stylegan2`: the official StyleGAN2 recipe
and MS-PIE).
"""

from __future__ import annotations

import importlib

from pegan.errors import PeganError

# arch -> "module:Class" of its recipe; modules are imported on first use.
RECIPES: dict[str, str] = {
    "stylegan2": "pegan.train.stylegan2:StyleGAN2Recipe",
    "pggan": "pegan.train.pggan:PGGANRecipe",
    "dcgan": "pegan.train.dcgan:DCGANRecipe",
    "singan": "pegan.train.singan:SinGANRecipe",
}


def recipe_class(arch: str):
    """The :class:`~pegan.train.recipe.Recipe` subclass that trains architecture `arch`."""
    if arch not in RECIPES:
        raise PeganError(f"no training recipe for architecture {arch!r} "
                         f"(known: {', '.join(RECIPES)})")
    module, _, name = RECIPES[arch].partition(":")
    return getattr(importlib.import_module(module), name)


def settings_for(spec, overrides=None):
    """The training settings of a run of `spec`: the recipe's official defaults, under the
    preset's values for the family (``presets.<p>.train.<arch>``, in ``spec.train``), under
    `overrides` (``pegan train --set``)."""
    from pegan.train.recipe import parse_settings

    return parse_settings(recipe_class(spec.arch).Settings, {**spec.train, **(overrides or {})})


def check_settings(config) -> None:
    """Every preset's `train:` section names settings of its family's recipe with values of
    their type: a ConfigError of one line otherwise (the workflow and `pegan validate` call
    this before any job)."""
    from pegan.errors import ConfigError
    from pegan.train.recipe import parse_settings

    for preset, p in config["presets"].items():
        for family, values in (p.get("train") or {}).items():
            try:
                parse_settings(recipe_class(family).Settings, values, strict=True)
            except PeganError as exc:
                raise ConfigError(f"presets.{preset}.train.{family}: {exc}") from None

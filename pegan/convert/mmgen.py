"""Import the released MMGeneration StyleGAN2 / MS-PIE checkpoints (Table 5 a-k, 896, 1024);
SinGAN checkpoints are recognised by their keys and handed to :mod:`pegan.convert.singan`.

A released ``.pth`` is ``{"meta": {...}, "state_dict": {...}}`` whose state dict holds the
full GAN under the prefixes ``generator.``, ``generator_ema.`` and ``discriminator.``
(``official-implementation.md`` section 10). pegan's StyleGAN2 modules use the same
equalised-lr convention (unscaled weights, scaled at run time), so converting is renaming:

* ``X.linear.weight_orig`` -> ``X.weight`` (mapping layers, style modulations, D's linears);
* generator ``X.conv.weight_orig`` -> ``X.conv.weight`` (modulated convs);
* discriminator ``X.conv.weight_orig`` -> ``X.weight`` (conv layers);
* ``head_pos_enc._float_tensor`` (SPE dtype carrier) is dropped; everything else keeps its name.

The official models learn BGR images, pegan's RGB: the output channels of every ``to_rgb*``
(weight and bias) and the input channels of the discriminator's first conv are reversed.

Which Table 5 configuration a checkpoint is follows from its shapes (:func:`detect_config`),
except SPE-interp vs SPE-expand (e/f/896, j/k), which have identical keys: those are told
apart by the file name / ``meta["exp_name"]`` (``config-e``, ``256-896``, ...) or
``--experiment``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Mapping

from torch import Tensor

from pegan.convert import singan
from pegan.convert.common import (PREFIXES, expected_state, load_checkpoint, map_state,
                                  split_prefixes)
from pegan.convert.names import (TABLE5_EXPERIMENTS, hint_rows,  # noqa: F401
                                 released_checkpoints)
from pegan.errors import PeganError

log = logging.getLogger(__name__)

_DROP = {"head_pos_enc._float_tensor"}  # SPE device/dtype carrier, no pegan counterpart


# ------------------------------------------------------------------------ renaming


def _model_part(parts: Mapping[str, dict], prefix: str) -> dict[str, Tensor]:
    if not parts.get(prefix):
        present = [p for p in PREFIXES if parts.get(p)]
        raise PeganError(f"the checkpoint has no '{prefix}.*' keys (has: {', '.join(present) or 'none'})")
    return parts[prefix]


def official_to_pegan_key(key: str, part: str) -> str | None:
    """pegan's name for an official key of the generator (``part='G'``) or discriminator
    (``'D'``); None for keys pegan does not store."""
    if key in _DROP:
        return None
    if key.endswith(".linear.weight_orig"):
        return key[: -len(".linear.weight_orig")] + ".weight"
    if key.endswith(".conv.weight_orig"):
        stem = key[: -len(".conv.weight_orig")]
        return stem + (".conv.weight" if part == "G" else ".weight")
    if key.endswith(".weight_orig"):
        return key[: -len("_orig")]
    return key


def swap_bgr_generator(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Reverse the colour channels of every to-RGB layer (weight [1, 3, C, 1, 1], bias
    [1, 3, 1, 1]): a BGR generator becomes an RGB one."""
    out = dict(state)
    for key, value in state.items():
        if key.startswith(("to_rgb1.", "to_rgbs.")) and key.endswith(("conv.weight", ".bias")) \
                and value.ndim >= 2 and value.shape[1] == 3:
            out[key] = value.flip(1)
    return out


def swap_bgr_discriminator(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Reverse the input channels of the discriminator's first conv (``convs.0.0``)."""
    out = dict(state)
    out["convs.0.0.weight"] = state["convs.0.0.weight"].flip(1)
    return out


def convert_stylegan2(state_dict: Mapping[str, Tensor], spec, *, prefix: str = "generator_ema",
                      bgr_to_rgb: bool = True) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Official state dict (prefixed keys) -> (pegan G state, pegan D state or None).

    Args:
        state_dict: the checkpoint's ``state_dict`` (keys ``generator_ema.*`` etc.).
        spec: the resolved experiment (``config.resolve(cfg, name, "paper")``).
        prefix: which generator to take: ``generator_ema`` (default, the evaluated one) or
            ``generator``.
        bgr_to_rgb: reverse the colour channels (the official models are BGR).
    """
    from pegan.models.stylegan2 import (Discriminator, Generator, discriminator_kwargs,
                                        generator_kwargs)

    if spec.arch != "stylegan2":
        raise PeganError(f"experiment {spec.name} is a {spec.arch} model; "
                         "import-mmgen converts StyleGAN2 / MS-PIE checkpoints")
    parts = split_prefixes(state_dict)
    g_kw, d_kw = generator_kwargs(spec), discriminator_kwargs(spec)
    G = map_state(_model_part(parts, prefix), expected_state(lambda: Generator(**g_kw)), "G",
                  f"'{prefix}' of the checkpoint", rename=official_to_pegan_key)
    D = None
    if parts["discriminator"]:
        D = map_state(parts["discriminator"], expected_state(lambda: Discriminator(**d_kw)),
                      "D", "'discriminator' of the checkpoint", rename=official_to_pegan_key)
    if bgr_to_rgb:
        G = swap_bgr_generator(G)
        D = swap_bgr_discriminator(D) if D is not None else None
    return G, D


# ------------------------------------------------------------------------ detection


def candidate_rows(state_dict: Mapping[str, Tensor]) -> list[str]:
    """Table 5 rows whose architecture matches the checkpoint's keys and shapes."""
    parts = split_prefixes(state_dict)
    g = parts["generator_ema"] or parts["generator"]
    if not g:
        raise PeganError("the checkpoint has no 'generator_ema.*' or 'generator.*' keys; "
                         "is it an MMGeneration StyleGAN2 / MS-PIE checkpoint?")
    d = parts["discriminator"]
    if "convs.0.conv.blur.kernel" in g:  # transposed conv + blur: plain StyleGAN2
        return ["b"] if "to_rgbs.6.conv.weight_orig" in g else ["a"]
    noise1 = g.get("injected_noise_1")
    no_pad = noise1 is not None and noise1.shape[-1] == 10  # (2h+2) with h=4
    conv1 = g.get("conv1.conv.weight_orig")
    if "constant_input.input" in g:
        return ["h" if no_pad else "c"]
    if conv1 is not None and conv1.shape[2] == 2:
        return ["i" if no_pad else "d"]
    if "head_pos_enc._float_tensor" not in g:
        raise PeganError("cannot tell the configuration: no constant input, no CSG conv1 "
                         "(2 input channels) and no SPE buffer in the generator")
    if no_pad:
        return ["j", "k"]
    rgb5 = g.get("to_rgbs.5.conv.weight_orig")
    c1 = rgb5 is not None and rgb5.shape[2] == 64  # last block 64 channels: C1
    if not c1:
        return ["e", "f", "896"]
    d0 = d.get("convs.0.0.conv.weight_orig")
    if d0 is None:
        return ["g", "1024"]
    return ["g"] if d0.shape[0] == 64 else ["1024"]


def detect_config(state_dict: Mapping[str, Tensor], hint: str = "") -> str:
    """The pegan experiment of a released checkpoint, from its shapes and, where those are
    ambiguous (SPE-interp vs -expand), the Table 5 row named in ``hint`` (file name or
    ``meta['exp_name']``). Raises :class:`PeganError` when it cannot decide."""
    rows = candidate_rows(state_dict)
    if len(rows) > 1:
        named = hint_rows(hint) & set(rows)
        if len(named) == 1:
            rows = sorted(named)
    if len(rows) > 1:
        names = ", ".join(f"{r} ({TABLE5_EXPERIMENTS[r]})" for r in rows)
        raise PeganError(f"the checkpoint's keys fit Table 5 rows {names} equally (SPE-interp "
                         "and SPE-expand have identical weights); pass --experiment")
    return TABLE5_EXPERIMENTS[rows[0]]


# ------------------------------------------------------------------------ import


def import_mmgen(ckpt_path: str | Path, out: str | Path, experiment: str | None = None, *,
                 prefix: str = "generator_ema", config: Mapping | None = None,
                 discriminator_out: str | Path | None = None,
                 pkl: str | Path | None = None) -> str:
    """Convert a released checkpoint into a pegan snapshot at ``out``; returns the experiment.

    Args:
        ckpt_path: the downloaded ``.pth``.
        out: snapshot path (``pegan.snapshot`` format, G_ema = the official ``prefix`` model).
        experiment: pegan experiment (``t5f`` ...); None detects it.
        prefix: ``generator_ema`` (default) or ``generator``.
        config: the registry (default: the repo's ``config.yaml``).
        discriminator_out: also save the converted discriminator state dict here.
        pkl: SinGAN only: the released ``.pkl`` (fixed noises); default: beside the ``.pth``.
    """
    from pegan import config as pconfig
    from pegan.io import torch_save
    from pegan.models.stylegan2 import Generator, generator_kwargs
    from pegan.snapshot import save_snapshot

    ckpt = load_checkpoint(ckpt_path)
    if singan.is_singan(ckpt["state_dict"]):
        return singan.import_singan(ckpt_path, out, experiment, pkl_path=pkl, config=config,
                                    discriminator_out=discriminator_out, ckpt=ckpt)
    meta = ckpt["meta"]
    hint = f"{Path(ckpt_path).name} {meta.get('exp_name', '')}"
    detected = None
    try:
        detected = detect_config(ckpt["state_dict"], hint)
    except PeganError:
        if experiment is None:
            raise
    if experiment is None:
        experiment = detected
        log.info("%s: detected %s", ckpt_path, experiment)
    elif detected is not None and detected != experiment and \
            experiment not in {TABLE5_EXPERIMENTS[r] for r in candidate_rows(ckpt["state_dict"])}:
        raise PeganError(f"--experiment {experiment} does not fit {ckpt_path}, which looks like "
                         f"{detected}")
    cfg = config if config is not None else pconfig.load()
    spec = pconfig.resolve(cfg, experiment, "paper")
    g_state, d_state = convert_stylegan2(ckpt["state_dict"], spec, prefix=prefix)
    kwargs = generator_kwargs(spec)
    G = Generator(**kwargs)
    G.load_state_dict(g_state)
    kimg = float(meta["iter"]) * spec.batch / 1000 if "iter" in meta else spec.total_kimg
    source = {"checkpoint": str(ckpt_path), "prefix": prefix, "bgr_to_rgb": True,
              **{k: meta[k] for k in ("iter", "epoch", "exp_name", "mmcv_version", "time", "seed")
                 if k in meta and isinstance(meta[k], (int, float, str))}}
    save_snapshot(out, arch="stylegan2", experiment=experiment, G_kwargs=kwargs, G_ema=G,
                  kimg=kimg, spec=spec.to_dict(), extra={"imported_from": source})
    if discriminator_out is not None and d_state is not None:
        torch_save(d_state, discriminator_out)
    return experiment


# ------------------------------------------------------------------------ CLI


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="released MMGeneration .pth (download it first)")
    p.add_argument("--experiment", default=None,
                   help="pegan experiment (t2a, t5b ... t5k, t5f-896, t5f-1024, singan-*); "
                   "default: detect")
    p.add_argument("--out", required=True, help="pegan snapshot to write")
    p.add_argument("--prefix", default="generator_ema", choices=["generator_ema", "generator"],
                   help="which generator to import (default: the EMA one, as evaluated)")
    p.add_argument("--discriminator-out", default=None,
                   help="also write the converted discriminator state dict here")
    p.add_argument("--pkl", default=None,
                   help="SinGAN: the released .pkl of fixed noises (default: beside the .pth)")
    p.add_argument("--config", default=None, help="config file (default: the repo's config.yaml)")


def run(args) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config) if args.config else None
    experiment = import_mmgen(args.checkpoint, args.out, args.experiment, prefix=args.prefix,
                              config=cfg, discriminator_out=args.discriminator_out, pkl=args.pkl)
    print(f"{args.checkpoint} -> {args.out} ({experiment}, RGB)")
    return 0

"""Import (and export) the released MMGeneration SinGAN checkpoints and their ``.pkl`` files.

A released SinGAN is two files with the same stem (``official-implementation.md`` sections 7,
10.6; mmgen ``configs/positional_encoding_in_gans/singan_*.py``, ``configs/singan``):

* ``.pth``: ``{"meta": {...}, "state_dict": {...}}`` with ``generator.blocks.{s}.*`` and
  ``discriminator.blocks.{s}.*`` (no ``generator_ema``: SinGAN trains without EMA). Every block
  is ``head`` / ``body.block{1,2,3}`` / ``tail``, each an mmcv ``ConvModule`` holding
  ``conv.{weight,bias}`` and, where normalised, ``bn.*``; SPE generators add the dtype carrier
  ``head_position_encode._float_tensor``. The weights say nothing about image sizes.
* ``.pkl``: a plain pickle written by mmgen's ``PickleDataHook`` after training:
  ``{"fixed_noises": [ndarray [1, C, h, w] per stage], "noise_weights": [1, float, ...],
  "curr_stage": int}`` (tensors turned into numpy arrays; inferred from the code, the released
  files were not available here). The fixed noises carry the pyramid's sizes: padded by
  5 px on each side in the interpolation-padding models (``fixed_noise_with_pad``).

The official variants map onto :class:`pegan.models.singan.Generator` switches:

==========================  =====================  ========================================
official                    pegan experiment       pegan switches
==========================  =====================  ========================================
singan (original)           singan-zero-pad        padding=zero, 3-ch noise after stage 0
interp-pad                  singan-no-pad          padding=interp
interp-pad_disc-nobn        singan-no-pad-disc-nobn  padding=interp, disc_norm=none
csg                         singan-csg             padding=conv, head=csg
spe-dim4                    singan-spe4            padding=conv, head=spe, spe_dim=4
                                                   (fish: first_noise_channels=1)
spe-dim8                    singan-spe8            padding=conv, head=spe, spe_dim from the
                                                   block-0 input (master config: 4, bug)
==========================  =====================  ========================================

The official models learn BGR images (``mmcv.imread``); pegan's are RGB. Every tail conv's
output channels, every generator head conv fed an image-space input (stages >= 1, and stage 0
of the noise-head models, whose input is the 1-channel noise broadcast over 3 channels) and
every discriminator head conv's input channels are reversed, and so are 3-channel fixed noises.
The positional grids are not colours and keep their order.
"""

from __future__ import annotations

import logging
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from pegan.convert.common import expected_state, load_checkpoint, map_state, split_prefixes
from pegan.errors import PeganError

log = logging.getLogger(__name__)

PAD = 5                      # official pad_head = (kernel 3 - 1) / 2 x 5 layers
BASE_CHANNELS, MAX_CHANNELS, NUM_LAYERS = 32, 128, 5   # every official SinGAN config
SPE_BUFFER = "head_position_encode._float_tensor"
PKL_KEYS = ("fixed_noises", "noise_weights", "curr_stage")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(head|body\.block(\d+)|tail)\.(conv|bn)\.(\w+)$")
_PEGAN_BLOCK = re.compile(r"^blocks\.(\d+)\.(head|body\.(\d+)|tail)\.(?:(\d)\.)?(\w+)$")


@dataclass(frozen=True)
class Variant:
    """What a released SinGAN is, in pegan's terms."""

    experiment: str
    padding: str                      # zero | interp | conv
    head: str                         # noise | csg | spe
    spe_dim: int = 4
    first_noise_channels: int | None = None
    disc_norm: str = "batch"

    @property
    def noise_channels(self) -> int:
        """Noise channels after stage 0: 3 in the original SinGAN, 1 in PE-SinGAN."""
        return 3 if self.padding == "zero" else 1


# ------------------------------------------------------------------------ names


def is_singan(state_dict: Mapping[str, Any]) -> bool:
    """True for an MMGeneration SinGAN state dict (``generator.blocks.0.head.conv.weight``)."""
    return "generator.blocks.0.head.conv.weight" in state_dict


def official_to_pegan_key(key: str, part: str) -> str | None:
    """pegan's name for an official SinGAN key (``part``: 'G' or 'D'; prefix stripped);
    None for the SPE dtype carrier. Unknown keys come back unchanged (then unexpected)."""
    if key == SPE_BUFFER:
        return None
    m = _BLOCK.match(key)
    if not m:
        return key
    s, where, body_i, layer, param = m.groups()
    if where == "tail":
        if layer != "conv":
            return key
        return f"blocks.{s}.tail.0.{param}" if part == "G" else f"blocks.{s}.tail.{param}"
    stem = "head" if where == "head" else f"body.{int(body_i) - 1}"
    return f"blocks.{s}.{stem}.{0 if layer == 'conv' else 1}.{param}"


def pegan_to_official_key(key: str, part: str) -> str | None:
    """The official name of a pegan SinGAN key; None for the fixed-noise / amplitude buffers,
    which the ``.pkl`` holds."""
    m = _PEGAN_BLOCK.match(key)
    if not m:
        return None
    s, where, body_i, layer, param = m.groups()
    if where == "tail":
        return f"blocks.{s}.tail.conv.{param}"
    stem = "head" if where == "head" else f"body.block{int(body_i) + 1}"
    return f"blocks.{s}.{stem}.{'conv' if layer == '0' else 'bn'}.{param}"


# ------------------------------------------------------------------------ the .pkl


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles numbers, lists, dicts and numpy arrays only (a .pkl is untrusted input)."""

    def find_class(self, module: str, name: str):
        if module.split(".")[0] == "numpy" or (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a SinGAN .pkl")


def load_pkl(path: str | Path) -> dict[str, Any]:
    """Read a released SinGAN ``.pkl``: ``{"fixed_noises": [ndarray], "noise_weights":
    [float], "curr_stage": int}``, checked for structure."""
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"SinGAN noise file {path} not found (download the .pkl released with "
                         "the checkpoint and pass it with --pkl)")
    try:
        with path.open("rb") as f:
            data = _NumpyUnpickler(f).load()
    except Exception as exc:  # truncated download, not a pickle, disallowed class
        raise PeganError(f"{path} cannot be read as a SinGAN .pkl ({type(exc).__name__}: "
                         f"{exc}); re-download it") from None
    return check_pkl(data, str(path))


def check_pkl(data: Any, what: str = "the .pkl") -> dict[str, Any]:
    """Validate the structure of a SinGAN ``.pkl`` payload; returns it normalised (float32
    arrays, float weights, int stage)."""
    if not isinstance(data, Mapping) or any(k not in data for k in PKL_KEYS):
        have = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise PeganError(f"{what} is not a SinGAN .pkl: expected keys {list(PKL_KEYS)}, "
                         f"found {have}")
    noises, weights = data["fixed_noises"], data["noise_weights"]
    if not isinstance(noises, Sequence) or not noises or \
            not all(np.asarray(z).ndim == 4 and np.asarray(z).shape[0] == 1 for z in noises):
        raise PeganError(f"{what}: fixed_noises must be a list of [1, C, h, w] arrays")
    if not isinstance(weights, Sequence) or len(weights) < len(noises):
        raise PeganError(f"{what}: {len(noises)} fixed noises but "
                         f"{len(weights) if isinstance(weights, Sequence) else 'no'} noise weights")
    if int(data["curr_stage"]) != len(noises) - 1:
        raise PeganError(f"{what}: curr_stage {data['curr_stage']} but {len(noises)} fixed "
                         "noises; only fully trained models can be imported")
    return {"fixed_noises": [np.asarray(z, dtype=np.float32) for z in noises],
            "noise_weights": [float(w) for w in weights[: len(noises)]],
            "curr_stage": int(data["curr_stage"])}


def default_pkl(ckpt_path: str | Path) -> Path:
    """The ``.pkl`` released beside a ``.pth`` (same stem)."""
    return Path(ckpt_path).with_suffix(".pkl")


# ------------------------------------------------------------------------ detection


def _parts(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    parts = split_prefixes(state_dict)
    if not parts["generator"]:
        raise PeganError("the checkpoint has no 'generator.*' keys; is it an MMGeneration SinGAN?")
    return parts["generator"], parts["discriminator"]


def detect_variant(state_dict: Mapping[str, Tensor], pkl: Mapping[str, Any],
                   hint: str = "") -> list[Variant]:
    """The pegan variants a released SinGAN fits, best first: from the block-0 input width
    (3: noise, 2: CSG, 2 x dim: SPE), the discriminator's norm keys, the fixed noises (3-ch
    noise after stage 0: original SinGAN) and, for the SPE-dim8 copy bug (8 input channels
    like dim4), the file / experiment name in ``hint``."""
    g, d = _parts(state_dict)
    in0 = int(g["blocks.0.head.conv.weight"].shape[1])
    disc_norm = "batch" if not d or "blocks.0.head.bn.weight" in d else "none"
    noises = pkl["fixed_noises"]
    first_ch = int(noises[0].shape[1])
    if in0 == 3:
        original = len(noises) > 1 and noises[1].shape[1] == 3
        if original and SPE_BUFFER not in g:
            return [Variant("singan-zero-pad", "zero", "noise", disc_norm=disc_norm)]
        name = "singan-no-pad-disc-nobn" if disc_norm == "none" else "singan-no-pad"
        return [Variant(name, "interp", "noise", disc_norm=disc_norm)]
    first = None if first_ch == in0 else first_ch
    if in0 == 2 and SPE_BUFFER not in g:
        return [Variant("singan-csg", "conv", "csg", first_noise_channels=first, disc_norm=disc_norm)]
    if SPE_BUFFER not in g or in0 % 2 or in0 < 8:
        raise PeganError(f"cannot tell the SinGAN variant: block 0 takes {in0} channels "
                         f"({'with' if SPE_BUFFER in g else 'without'} an SPE buffer); expected "
                         "3 (noise), 2 (CSG) or 2 x dim with an SPE buffer")
    dim = in0 // 2
    variants = [Variant(f"singan-spe{dim}", "conv", "spe", dim, first, disc_norm)]
    if dim == 4:  # the master spe-dim8 config has embedding_dim = 4 (copy bug)
        bug = Variant("singan-spe8", "conv", "spe", 4, first, disc_norm)
        variants = [bug] + variants if "dim8" in hint.lower() else variants + [bug]
    return variants


# ------------------------------------------------------------------------ conversion


def stage_sizes(variant: Variant, pkl: Mapping[str, Any]) -> list[tuple[int, int]]:
    """The pyramid's (h, w) per stage, from the fixed noises (padded ones lose 2 x 5 px)."""
    cut = 2 * PAD if variant.padding == "interp" else 0
    sizes = [(int(z.shape[-2]) - cut, int(z.shape[-1]) - cut) for z in pkl["fixed_noises"]]
    if min(min(s) for s in sizes) < 1:
        raise PeganError(f"the .pkl's fixed noises are smaller than the {2 * PAD} px padding of "
                         f"{variant.experiment}: wrong variant or .pkl")
    return sizes


def generator_kwargs(variant: Variant, pkl: Mapping[str, Any]) -> dict:
    """Constructor arguments of :class:`pegan.models.singan.Generator` for a released model."""
    return {"stage_sizes": [list(s) for s in stage_sizes(variant, pkl)],
            "padding": variant.padding, "head": variant.head, "spe_dim": variant.spe_dim,
            "spe_centered": False, "noise_channels": variant.noise_channels,
            "base_channels": BASE_CHANNELS, "max_channels": MAX_CHANNELS,
            "num_layers": NUM_LAYERS, "first_noise_channels": variant.first_noise_channels}


def discriminator_kwargs(variant: Variant, num_stages: int) -> dict:
    return {"num_stages": num_stages, "disc_norm": variant.disc_norm,
            "base_channels": BASE_CHANNELS, "max_channels": MAX_CHANNELS, "num_layers": NUM_LAYERS}


def _colour_inputs(head: str, stage: int) -> bool:
    """Whether block `stage`'s generator input is an image-space (colour) tensor."""
    return stage > 0 or head == "noise"


def swap_bgr(g_state: Mapping[str, Tensor], d_state: Mapping[str, Tensor] | None,
             head: str) -> tuple[dict[str, Tensor], dict[str, Tensor] | None]:
    """Reverse the colour channels of pegan-named SinGAN states (an involution: BGR <-> RGB)."""
    g = dict(g_state)
    for key, value in g_state.items():
        m = re.match(r"^blocks\.(\d+)\.(head|tail)\.0\.(weight|bias)$", key)
        if m and m.group(2) == "tail":
            g[key] = value.flip(0)
        elif m and m.group(3) == "weight" and _colour_inputs(head, int(m.group(1))):
            g[key] = value.flip(1)
        elif key.startswith("fixed_noise_") and key != "fixed_noise_0" and value.shape[1] == 3:
            g[key] = value.flip(1)
    d = None
    if d_state is not None:
        d = {k: (v.flip(1) if re.match(r"^blocks\.\d+\.head\.0\.weight$", k) else v)
             for k, v in d_state.items()}
    return g, d


def _expected(model_fn, drop_buffers: bool) -> dict[str, torch.Size]:
    shapes = expected_state(model_fn)
    if drop_buffers:
        shapes = {k: v for k, v in shapes.items()
                  if not k.startswith("fixed_noise_") and k != "noise_amps"}
    return shapes


def _map(official: Mapping[str, Tensor], expected: Mapping[str, torch.Size], part: str,
         what: str) -> dict[str, Tensor]:
    """Check ``official`` against pegan's ``expected`` state in OFFICIAL names (so errors name
    the checkpoint's keys), then rename to pegan's keys."""
    wanted = {pegan_to_official_key(k, part): shape for k, shape in expected.items()}
    checked = map_state(official, wanted, part, what,
                        rename=lambda k, _: None if k == SPE_BUFFER else k)
    return {official_to_pegan_key(k, part): v for k, v in checked.items()}


def convert_singan(state_dict: Mapping[str, Tensor], pkl: Mapping[str, Any], variant: Variant, *,
                   bgr_to_rgb: bool = True) -> tuple[dict, dict[str, Tensor], dict | None, dict[str, Tensor] | None]:
    """Official state dict + ``.pkl`` -> (G kwargs, G state, D kwargs or None, D state or None),
    pegan names; the generator state includes the fixed noises and noise amplitudes.

    Raises :class:`PeganError` listing missing / unexpected keys and shape mismatches.
    """
    from pegan.models.singan import Discriminator, Generator

    g_off, d_off = _parts(state_dict)
    g_kw = generator_kwargs(variant, pkl)
    G = _map(g_off, _expected(lambda: Generator(**g_kw), True), "G", "'generator' of the checkpoint")
    buffers = _expected(lambda: Generator(**g_kw), False)
    for s, z in enumerate(pkl["fixed_noises"]):
        key = f"fixed_noise_{s}"
        if tuple(z.shape) != tuple(buffers[key]):
            raise PeganError(f"the .pkl's fixed_noises[{s}] is {list(z.shape)}, "
                             f"{variant.experiment} expects {list(buffers[key])}: wrong variant or .pkl")
        G[key] = torch.from_numpy(np.array(z, dtype=np.float32))
    G["noise_amps"] = torch.tensor(pkl["noise_weights"], dtype=torch.float32)
    d_kw = D = None
    if d_off:
        d_kw = discriminator_kwargs(variant, len(g_kw["stage_sizes"]))
        D = _map(d_off, _expected(lambda: Discriminator(**d_kw), False), "D",
                 "'discriminator' of the checkpoint")
    if bgr_to_rgb:
        G, D = swap_bgr(G, D, variant.head)
    return g_kw, G, d_kw, D


def export_singan(G: torch.nn.Module, D: torch.nn.Module | Mapping[str, Tensor] | None = None, *,
                  rgb_to_bgr: bool = True, meta: Mapping | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """pegan SinGAN -> (official checkpoint ``{"meta", "state_dict"}``, ``.pkl`` payload):
    the inverse of :func:`convert_singan` (channels reversed back to BGR by default)."""
    g_state = {k: v.detach().cpu() for k, v in G.state_dict().items()}
    d_state = None
    if D is not None:
        d_state = {k: v.detach().cpu() for k, v in
                   (D.state_dict() if isinstance(D, torch.nn.Module) else D).items()}
    if rgb_to_bgr:
        g_state, d_state = swap_bgr(g_state, d_state, G.head)
    out: dict[str, Tensor] = {}
    for part, prefix, state in (("G", "generator", g_state), ("D", "discriminator", d_state)):
        for key, value in (state or {}).items():
            name = pegan_to_official_key(key, part)
            if name is not None:
                out[f"{prefix}.{name}"] = value.clone()
    if G.head == "spe":
        out[f"generator.{SPE_BUFFER}"] = torch.zeros(1)
    pkl = {"fixed_noises": [g_state[f"fixed_noise_{s}"].numpy().copy() for s in range(G.num_stages)],
           "noise_weights": [float(w) for w in g_state["noise_amps"]],
           "curr_stage": G.num_stages - 1}
    return {"meta": dict(meta or {}), "state_dict": out}, pkl


# ------------------------------------------------------------------------ import


def choose_variant(state_dict: Mapping[str, Tensor], pkl: Mapping[str, Any], hint: str,
                   experiment: str | None) -> Variant:
    """The detected variant, or the one named by ``experiment`` if the checkpoint fits it."""
    variants = detect_variant(state_dict, pkl, hint)
    if experiment is None:
        return variants[0]
    for v in variants:
        if v.experiment == experiment:
            return v
    raise PeganError(f"--experiment {experiment} does not fit this SinGAN checkpoint, which "
                     f"looks like {variants[0].experiment}")


def import_singan(ckpt_path: str | Path, out: str | Path, experiment: str | None = None, *,
                  pkl_path: str | Path | None = None, config: Mapping | None = None,
                  discriminator_out: str | Path | None = None, ckpt: Mapping | None = None) -> str:
    """Convert a released SinGAN (``.pth`` + ``.pkl``) into a pegan snapshot; returns the
    experiment. ``pkl_path`` defaults to the ``.pkl`` beside the checkpoint.

    The snapshot's ``G_kwargs`` describe the official architecture (e.g. ``padding='conv'``
    for CSG/SPE), which may differ from the registry experiment's switches; ``spec`` is the
    registry experiment (paper preset) it stands for, ``extra.imported_from`` the source.
    """
    from pegan import config as pconfig
    from pegan.io import torch_save
    from pegan.models.singan import Generator
    from pegan.snapshot import save_snapshot

    ckpt = ckpt if ckpt is not None else load_checkpoint(ckpt_path)
    pkl_path = Path(pkl_path) if pkl_path is not None else default_pkl(ckpt_path)
    pkl = load_pkl(pkl_path)
    meta = ckpt["meta"]
    hint = f"{Path(ckpt_path).name} {meta.get('exp_name', '')}"
    variant = choose_variant(ckpt["state_dict"], pkl, hint, experiment)
    if variant.experiment == "singan-spe8" and variant.spe_dim == 4:
        log.warning("%s: block 0 takes 8 channels: the spe-dim8 config's embedding_dim=4 copy "
                    "bug; imported with spe_dim=4", ckpt_path)
    cfg = config if config is not None else pconfig.load()
    spec = pconfig.resolve(cfg, variant.experiment, "paper")
    g_kw, g_state, _, d_state = convert_singan(ckpt["state_dict"], pkl, variant)
    G = Generator(**g_kw)
    G.load_state_dict(g_state)
    iters = float(meta.get("iter", G.num_stages * spec.singan["iters_per_scale"]))
    source = {"checkpoint": str(ckpt_path), "pkl": str(pkl_path), "bgr_to_rgb": True,
              "variant": asdict(variant),
              **{k: meta[k] for k in ("iter", "exp_name", "mmcv_version", "time", "seed")
                 if k in meta and isinstance(meta[k], (int, float, str))}}
    save_snapshot(out, arch="singan", experiment=variant.experiment, G_kwargs=g_kw, G_ema=G,
                  kimg=iters / 1000, spec=spec.to_dict(),
                  extra={"imported_from": source, "trained_stages": G.num_stages})
    if discriminator_out is not None and d_state is not None:
        torch_save(d_state, discriminator_out)
    return variant.experiment

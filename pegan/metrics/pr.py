"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019), k-NN manifolds.

Matches the reference ``knn_precision_recall_features`` (kynkaat/improved-precision-and-recall-
metric; same algorithm in StyleGAN2-ADA and MMGeneration): a set's manifold is the union of
hyperspheres around its points with radius = distance to the (k+1)-th nearest point of the set
*including the point itself* (so the k-th other point); precision = fraction of fakes inside
the real manifold, recall = fraction of reals inside the fake manifold, ``<=`` (ties inside).

Distances are squared Euclidean, ``|u|² - 2 u·v + |v|²`` clamped at 0, in float32 (KYN's);
the decisions equal those on plain distances. Rows and columns are processed in chunks, so
the peak working memory is O(row_chunk x col_chunk), independent of the set sizes.

Distance precision (setting ``pr_dtype``, recorded in the protocol as ``dtype``):

* ``fp32`` (default): the squared distances above, in float32 (KYN's arithmetic);
* ``fp16-radius``: MMGeneration's ``PR`` (mmgen @ ccd1f56, ``metrics.py::PR.summary``), the
  code behind the paper's P&R10k: fp32 features, ``torch.cdist`` in fp32 on row batches
  against the whole manifold, ``kthvalue(k + 1)`` in fp32 then **cast to fp16**, and
  ``dist <= kth`` compares the fp32 distances with the fp16-rounded radii;
* ``fp16``: StyleGAN2-ADA's ``compute_pr`` (``metrics/precision_recall.py``): the features
  are cast to fp16 before the distances, ``torch.cdist`` runs in fp16, ``kthvalue`` on the
  fp32 copy, cast back to fp16, compared fp16 ``<=`` fp16. fp16 ``cdist`` depends on the
  device (matmul accumulation): the same features give different distances on CPU and CUDA.

Both reference paths call ``torch.cdist`` like the references (plain distances; batches of
`row_chunk` rows against all manifold points in `col_chunk` columns). The fp16 path refuses
features whose norm exceeds 256: cdist's matmul algorithm forms ``|x|^2`` in fp16, which
overflows at 65504 (the reference would silently score inf/nan distances).

Measured (CPU, synthetic VGG-like features: 4096-d, half zeros after a ReLU, median distance
103, P ~ 0.6, R ~ 0.37; two seeds at n = 1000, 2000, 5000, 10000 per set), in points of a
percentage: ``fp16-radius`` - ``fp32`` stays within [-0.2, +0.1] (a few tie flips: the
radius rounding goes either way), while ``fp16`` - ``fp32`` is a systematic +0.4 to +0.7 on
both precision and recall (cdist forms |x|^2 ~ 10^4 in fp16, spacing 8: the distance noise
and the ties, which ``<=`` counts inside, let near misses in).
At P&R10k that bias is about one standard error (0.5 points): use ``fp16-radius`` to measure
what the paper's (MMGeneration's) code measured.

Feature network (:func:`load_vgg16`, :func:`vgg16_features`): NVIDIA's VGG16 TorchScript
``vgg16.pt`` (fc2, 4096-d, the paper's protocol) when its file is given, otherwise Inception
pool3 features (2048-d, offline default); the evaluator records which one it used. The
TorchScript is called as StyleGAN2-ADA's ``metric_utils`` calls its detector:
``detector(images, return_features=True)`` with **uint8** NCHW RGB images at their native
resolution (it resizes to 224 inside), on the evaluation device, in batches; the fakes are
``(G(z) * 127.5 + 128).clamp(0, 255).to(uint8)`` (pegan's ``to_uint8``, as SG2ADA and
MMGeneration convert), the reals the dataset's uint8 pixels. Features come back as float32.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from pegan.errors import PeganError
from pegan.metrics.registry import Output, Setting, register

log = logging.getLogger(__name__)

VERSION = "pr-1"           # bump when the protocol changes (recorded in every result)
DEFAULT_K = 3      # paper / MMGeneration pr10k3 / SG2ADA pr50k3
# Distance precision: fp32 (KYN, default) | fp16-radius (MMGeneration) | fp16 (StyleGAN2-ADA)
DTYPES = ("fp32", "fp16-radius", "fp16")


def _as_tensor(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(x).to(device=device, dtype=torch.float32)


def _sq_dist(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor
             ) -> torch.Tensor:
    """Squared Euclidean distances [len(a), len(b)]."""
    d = torch.addmm(b_sq[None, :], a, b.T, beta=1.0, alpha=-2.0)   # |v|² - 2 u·v
    return d.add_(a_sq[:, None]).clamp_min_(0)


def knn_radii(feats: np.ndarray | torch.Tensor, k: int = DEFAULT_K, row_chunk: int = 10000,
              col_chunk: int = 10000, device: str | torch.device = "cpu") -> torch.Tensor:
    """Squared radius of each point: its (k+1)-th smallest squared distance to the set, self
    included. Column chunks are merged with a running top-(k+1)."""
    device = torch.device(device)
    x = _as_tensor(feats, device)
    n = len(x)
    if n < k + 1:
        raise ValueError(f"k={k} needs at least {k + 1} points per set, got {n}")
    sq = (x * x).sum(1)
    radii = torch.empty(n, device=device)
    for r0 in range(0, n, row_chunk):
        rows = slice(r0, min(r0 + row_chunk, n))
        best = None                                               # [rows, <=k+1] smallest
        for c0 in range(0, n, col_chunk):
            cols = slice(c0, min(c0 + col_chunk, n))
            d = _sq_dist(x[rows], x[cols], sq[rows], sq[cols])
            block = d.topk(min(k + 1, d.shape[1]), dim=1, largest=False).values
            del d
            if best is not None:
                block = torch.cat([best, block], 1)
                block = block.topk(min(k + 1, block.shape[1]), dim=1, largest=False).values
            best = block
        radii[rows] = best.max(dim=1).values                      # the (k+1)-th smallest
    return radii


def coverage(manifold: np.ndarray | torch.Tensor, radii: torch.Tensor,
             probes: np.ndarray | torch.Tensor, row_chunk: int = 10000, col_chunk: int = 10000,
             device: str | torch.device = "cpu") -> torch.Tensor:
    """bool [len(probes)]: probe inside at least one hypersphere (``d² <= r²``)."""
    device = torch.device(device)
    m, p = _as_tensor(manifold, device), _as_tensor(probes, device)
    radii = radii.to(device)
    m_sq, p_sq = (m * m).sum(1), (p * p).sum(1)
    inside = torch.zeros(len(p), dtype=torch.bool, device=device)
    for r0 in range(0, len(p), row_chunk):
        rows = slice(r0, min(r0 + row_chunk, len(p)))
        for c0 in range(0, len(m), col_chunk):
            cols = slice(c0, min(c0 + col_chunk, len(m)))
            d = _sq_dist(p[rows], m[cols], p_sq[rows], m_sq[cols])
            inside[rows] |= (d <= radii[None, cols]).any(dim=1)
            del d
    return inside


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    try:
        return torch.cdist(a[None], b[None])[0]
    except NotImplementedError:
        # CPU fp16 has only the matmul algorithm, which torch picks itself above 25 rows
        return torch.cdist(a[None], b[None], compute_mode="use_mm_for_euclid_dist")[0]


def _cdist_rows(rows: torch.Tensor, manifold: torch.Tensor, col_chunk: int) -> torch.Tensor:
    """Plain distances [len(rows), len(manifold)] by ``torch.cdist`` in the inputs' dtype,
    column batch by column batch (the references' ``compute_distances``)."""
    return torch.cat([_cdist(rows, manifold[c0:c0 + col_chunk])
                      for c0 in range(0, len(manifold), col_chunk)], dim=1)


def _reference_precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int, row_chunk: int,
                                col_chunk: int, dtype: str) -> dict[str, float]:
    """MMGeneration's (``fp16-radius``) or StyleGAN2-ADA's (``fp16``) arithmetic."""
    feats = torch.float16 if dtype == "fp16" else torch.float32
    if dtype == "fp16":
        # cdist's matmul algorithm forms |x|^2 in fp16: norms above 256 overflow (65504) and
        # every distance of that point becomes inf/nan (SG2ADA would silently score them)
        norm = max(real.norm(dim=1).max().item(), fake.norm(dim=1).max().item())
        if not norm < 255.9:
            raise PeganError(f"pr_dtype fp16: a feature norm of {norm:.1f} overflows fp16 "
                             "distances (|x|^2 > 65504); use pr_dtype fp16-radius or fp32")
    real, fake = real.to(feats), fake.to(feats)
    for name, points in (("real", real), ("fake", fake)):
        if len(points) < k + 1:
            raise ValueError(f"k={k} needs at least {k + 1} points per set, got "
                             f"{len(points)} {name}")
    out = {}
    for name, manifold, probes in (("precision", real, fake), ("recall", fake, real)):
        kth = torch.cat([_cdist_rows(rows, manifold, col_chunk).float()
                         .kthvalue(k + 1, dim=1).values.half()
                         for rows in manifold.split(row_chunk)])
        inside = torch.cat([(_cdist_rows(rows, manifold, col_chunk) <= kth).any(dim=1)
                            for rows in probes.split(row_chunk)])
        out[name] = inside.sum().item() / len(inside)
    return out


def precision_recall(real: np.ndarray | torch.Tensor, fake: np.ndarray | torch.Tensor,
                     k: int = DEFAULT_K, row_chunk: int = 10000, col_chunk: int = 10000,
                     device: str | torch.device = "cpu", dtype: str = "fp32") -> dict[str, float]:
    """{"precision", "recall"} as fractions in [0, 1] (papers print x100).

    Args:
        real, fake: feature matrices [N_real, D], [N_fake, D] (sizes may differ).
        k: neighbourhood size (3 in the paper).
        row_chunk, col_chunk: distance block size; only memory and speed depend on them
            (for ``fp32``; the reference paths hold a row batch's distances to all points).
        device: where the distances are computed.
        dtype: ``fp32`` (squared distances in float32), ``fp16-radius`` (MMGeneration's
            arithmetic) or ``fp16`` (StyleGAN2-ADA's); see the module docstring.
    """
    if dtype not in DTYPES:
        raise PeganError(f"pr_dtype {dtype!r}: choose {', '.join(DTYPES)}")
    if dtype != "fp32":
        device = torch.device(device)
        return _reference_precision_recall(_as_tensor(real, device), _as_tensor(fake, device),
                                           k, row_chunk, col_chunk, dtype)
    kw = dict(row_chunk=row_chunk, col_chunk=col_chunk, device=device)
    real_radii = knn_radii(real, k, **kw)
    fake_radii = knn_radii(fake, k, **kw)
    inside_real = coverage(real, real_radii, fake, **kw)
    inside_fake = coverage(fake, fake_radii, real, **kw)
    precision = inside_real.sum().item() / len(inside_real)      # exact fraction
    recall = inside_fake.sum().item() / len(inside_fake)
    return {"precision": precision, "recall": recall}


# ----------------------------------------------------------------------- VGG16 network


def load_vgg16(path: str | Path | None, device: str | torch.device = "cpu") -> torch.nn.Module:
    """NVIDIA's VGG16 TorchScript (``vgg16.pt`` of stylegan2-ada-pytorch), never downloaded."""
    if not path:
        raise PeganError("pr_network vgg16 needs metrics.vgg16_path (NVIDIA's vgg16.pt from "
                         "stylegan2-ada-pytorch); or set pr_network: inception")
    path = Path(path).expanduser()
    if not path.is_file():
        raise PeganError(f"VGG16 file {path} (metrics.vgg16_path) does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)   # torch.jit is deprecated upstream
            net = torch.jit.load(str(path), map_location=torch.device(device))
    except Exception as exc:
        raise PeganError(f"{path} is not a TorchScript VGG16 ({type(exc).__name__})") from None
    return net.eval()


VGG16_CALL = "detector(uint8 NCHW RGB at native resolution, return_features=True)"


@torch.no_grad()
def vgg16_features(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 32,
                   device: str | torch.device = "cpu") -> np.ndarray:
    """fc2 features [N, 4096] (float32) of uint8 [N, 3, H, W] RGB at native size; the
    TorchScript resizes to 224 itself (SG2ADA's call: ``detector(images,
    return_features=True)``). Anything but uint8 NCHW RGB is refused: NVIDIA's script
    would silently treat floats in [-1, 1] or [0, 1] as near-black pixels."""
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise PeganError(f"VGG16 takes uint8 [N, 3, H, W] RGB images, got {images.dtype} "
                         f"{list(images.shape)}")
    out = [net(images[i:i + batch_size].to(device), return_features=True).float().cpu()
           for i in range(0, len(images), batch_size)]
    if not out:
        return np.zeros((0, 4096), np.float32)
    return torch.cat(out).numpy()


# ----------------------------------------------------------------- the registered metric

NETWORKS = ("inception", "vgg16")
SETTINGS = (
    Setting("pr_network", "inception", {"enum": list(NETWORKS)},
            "feature network: inception (pool3, offline) or vgg16 (fc2, the paper's)"),
    Setting("vgg16_path", None, {"type": ["string", "null"]},
            "NVIDIA's vgg16.pt TorchScript (stylegan2-ada-pytorch), for pr_network: vgg16"),
    Setting("pr_k", DEFAULT_K, {"type": "integer", "minimum": 1}, "neighbourhood size k"),
    Setting("pr_dtype", "fp32", {"enum": list(DTYPES)},
            "distance precision: fp32 (KYN), fp16-radius (MMGeneration: fp32 distances, "
            "radii rounded to fp16; the paper's) or fp16 (StyleGAN2-ADA: fp16 features)"),
)


def _network(settings) -> str:
    return "vgg16" if settings["pr_network"] == "vgg16" else "inception"


@register("pr", order=20, version=VERSION,
          description="improved precision and recall, fractions (Kynkäänniemi et al. 2019)",
          outputs=(Output("precision", "fraction (papers print %)", lower_is_better=False,
                          percent=True),
                   Output("recall", "fraction (papers print %)", lower_is_better=False,
                          percent=True)),
          samples="pr", group="features", features=_network, settings=SETTINGS)
class PRMetric:
    """Precision/recall on the fakes' features of the configured network."""

    def __init__(self, ctx, num: int) -> None:
        self.ctx, self.num, self.fake = ctx, int(num), []
        self.network = _network(ctx.settings)

    def add(self, images: torch.Tensor, features) -> None:
        self.fake.append(features[self.network])

    def finish(self) -> tuple[dict, dict]:
        ctx, k = self.ctx, int(self.ctx.settings["pr_k"])
        fake = np.concatenate(self.fake)
        if self.network == "vgg16":
            net = ctx.vgg16()
            real = np.concatenate([vgg16_features(net, b, ctx.batch_size, ctx.device)
                                   for b in ctx.real_batches(self.num)])
            path = ctx.settings["vgg16_path"]
            record = {"network": "vgg16", "network_file": str(path),
                      "network_sha256": _sha256(path), "features": "fc2",
                      "input": VGG16_CALL}
        else:
            inception = ctx.inception()
            real = inception.real.first(self.num)
            record = {key: inception.record[key]
                      for key in ("network", "network_file", "network_sha256", "mode")}
            record["features"] = "pool3"
        dtype = ctx.settings.get("pr_dtype", "fp32")
        values = precision_recall(real, fake, k=k, device=ctx.device, dtype=dtype)
        return values, {**record, "k": k, "dtype": dtype, "num_fake": self.num,
                        "num_real": self.num}


def _sha256(path) -> str:
    from pegan.metrics.inception import file_sha256

    return file_sha256(path)

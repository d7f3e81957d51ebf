"""Regenerate the paper's figures from code and runs.

Figures (``pegan figure NAME --out PNG [inputs...]``):

* ``encodings``: the 2-D spaces of CSG, SPE-interp and SPE-expand at 5x5 and 7x7 (paper Fig. 4);
* ``padding-statistics``: per-position mean and location-to-location correlation of a random
  conv stack fed i.i.d. noise, with and without zero padding (the "statistical property" slides);
* ``mspie-scales``: each MS-PIE generator rendering the same latent at every scale;
* ``singan-samples``: each SinGAN variant's training image, samples at the training size and
  at another aspect ratio;
* ``samples-<table>``: a sample grid per row experiment of a table;
* (``pegan claims --samples-figure``) a sample row per claim run, seeds included
  (:func:`figure_run_samples`);
* ``curves-<table>``: the snapshot-selection metric against images seen, per row;
* ``bars-<table>``: reproduced vs reported, one panel per column.

Every figure is deterministic: fixed seeds, and PNGs written without timestamps or version
metadata, so the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from pegan import io
from pegan.errors import PeganError

log = logging.getLogger(__name__)

DPI = 100
SAMPLE_SEED = 2021


def pyplot():
    """matplotlib.pyplot on the Agg backend with pegan's figure style (shared by every figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 8, "svg.hashsalt": "pegan", "figure.dpi": DPI})
    return plt


def save(fig, out: str | Path) -> None:
    """Write a PNG atomically and byte-deterministically (no software/time metadata)."""
    plt = pyplot()
    with io.atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _to_image(x) -> np.ndarray:
    """[3, H, W] tensor in [-1, 1] -> uint8 HWC."""
    arr = ((x.detach().cpu().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    return arr.permute(1, 2, 0).numpy()


# ------------------------------------------------------------------------ encodings


def _pca1(vectors: np.ndarray) -> np.ndarray:
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = centred @ vt[0]
    return proj if proj[0] <= 0 else -proj   # deterministic sign: first position lowest


def _axis_coordinates(vectors: np.ndarray) -> np.ndarray:
    """[n, C] position codes -> [n, 2] drawing coordinates. CSG codes are (x, y) already;
    an SPE code is [column code | row code]: each half is projected on its first principal
    axis, so the drawing keeps x and y apart."""
    if vectors.shape[1] == 2:
        return vectors
    half = vectors.shape[1] // 2
    return np.stack([_pca1(vectors[:, :half]), _pca1(vectors[:, half:])], axis=1)


def figure_encodings(out: str | Path, *, spe_dim: int = 256) -> None:
    from pegan.encodings import cartesian_grid, resize_bilinear, sinusoidal_grid

    plt = pyplot()
    small, large = 5, 7
    spaces = {
        "Cartesian grid (interp = expand)": (cartesian_grid(small, small), cartesian_grid(large, large)),
        "SPE-interp": (sinusoidal_grid(small, small, spe_dim),
                       resize_bilinear(sinusoidal_grid(small, small, spe_dim), large)),
        "SPE-expand": (sinusoidal_grid(small, small, spe_dim), sinusoidal_grid(large, large, spe_dim)),
    }
    fig, axes = plt.subplots(2, 3, figsize=(9, 6))
    for col, (title, (grid5, grid7)) in enumerate(spaces.items()):
        v5 = grid5.reshape(grid5.shape[0], -1).T.double().numpy()
        v7 = grid7.reshape(grid7.shape[0], -1).T.double().numpy()
        joint = _axis_coordinates(np.concatenate([v5, v7]))
        p5, p7 = joint[: small * small], joint[small * small:]
        ax = axes[0, col]
        for pts, n, style, label in ((p7, large, "o-", f"{large}x{large}"),
                                     (p5, small, "s--", f"{small}x{small}")):
            grid = pts.reshape(n, n, 2)
            for i in range(n):
                ax.plot(grid[i, :, 0], grid[i, :, 1], style, ms=3, lw=0.6,
                        color="C1" if n == large else "C0", label=label if i == 0 else None)
                ax.plot(grid[:, i, 0], grid[:, i, 1], "-", lw=0.6, color="C1" if n == large else "C0")
        ax.set_title(title)
        ax.invert_yaxis()     # rows grow downwards, as in an image
        ax.set_aspect("equal", adjustable="datalim")
        ax.legend(loc="best", fontsize=6)
        if v5.shape[1] > 2:
            ax.set_xlabel("column code (1st principal axis)")
            ax.set_ylabel("row code (1st principal axis)")
        else:
            ax.set_xlabel("x"), ax.set_ylabel("y")
        # similarity of every 7x7 position to the top-left cell
        sims = v7 @ v7[0] / (np.linalg.norm(v7, axis=1) * np.linalg.norm(v7[0]) + 1e-12)
        im = axes[1, col].imshow(sims.reshape(large, large), cmap="viridis")
        axes[1, col].set_title(f"cosine similarity to the top-left cell ({large}x{large})")
        fig.colorbar(im, ax=axes[1, col], fraction=0.046)
    fig.suptitle("2-D spaces of the positional encodings (paper Fig. 4): 5x5 vs 7x7")
    fig.tight_layout()
    save(fig, out)


# --------------------------------------------------------------- padding statistics


def figure_padding_statistics(out: str | Path) -> None:
    from pegan import padding_stats

    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(7, 6.5))
    for col, padding in enumerate((True, False)):
        name = "with zero padding" if padding else "without padding"
        mean = padding_stats.position_mean_map(padding=padding, seed=0)
        corr, ref = padding_stats.correlation_map(padding=padding, seed=0)
        im = axes[0, col].imshow(mean, cmap="coolwarm")
        axes[0, col].set_title(f"E[y_i] per position, {name}")
        fig.colorbar(im, ax=axes[0, col], fraction=0.046)
        im = axes[1, col].imshow(corr, cmap="magma", vmin=-1, vmax=1)
        axes[1, col].plot(ref[1], ref[0], "c+", ms=8)
        axes[1, col].set_title(f"R(y_ref, y_j), {name}")
        fig.colorbar(im, ax=axes[1, col], fraction=0.046)
    fig.suptitle("Random conv stack fed i.i.d. N(0,1): zero padding breaks stationarity")
    fig.tight_layout()
    save(fig, out)


# ------------------------------------------------------------------- model samples


def _generate(snapshot: str | Path, n: int, scale: int | None, seed: int = SAMPLE_SEED):
    import torch

    from pegan.snapshot import load_generator

    G, meta = load_generator(snapshot, "cpu")
    if not hasattr(G, "z_dim"):
        raise PeganError(f"{snapshot} is a {meta.get('arch', 'SinGAN')} model, "
                         "which has no latent code: draw it with `pegan figure singan-samples`")
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad(), torch.random.fork_rng():
        torch.manual_seed(seed)            # injected noise: same image on every run
        return G(z, scale=scale), meta


def _run_name(path: str | Path) -> str:
    parts = Path(path).parts
    return f"{parts[-3]}" if len(parts) >= 3 else Path(path).stem


def figure_mspie_scales(out: str | Path, models: Sequence[str | Path]) -> None:
    plt = pyplot()
    if not models:
        raise PeganError("mspie-scales needs at least one MS-PIE model")
    rows = []
    for path in models:
        from pegan.snapshot import load_snapshot

        scales = load_snapshot(path)["spec"].get("scales") or [None]
        images = [_to_image(_generate(path, 1, s)[0][0]) for s in scales]
        rows.append((_run_name(path), scales, images))
    widths = [s or 1 for s in rows[0][1]]
    fig, axes = plt.subplots(len(rows), len(widths), squeeze=False,
                             figsize=(2.2 * len(widths), 2.2 * len(rows)),
                             gridspec_kw={"width_ratios": widths})
    for r, (name, scales, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            ax.axis("off")
            if c < len(images):
                ax.imshow(images[c])
                ax.set_title(f"{name} @ {scales[c]} px", fontsize=7)
    fig.suptitle("MS-PIE: one generator, the same latent, every training scale")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    save(fig, out)


def figure_samples(out: str | Path, models: Sequence[str | Path], *, per_row: int = 8) -> None:
    plt = pyplot()
    if not models:
        raise PeganError("a sample grid needs at least one model")
    fig, axes = plt.subplots(len(models), 1, squeeze=False, figsize=(per_row * 0.9, 1.1 * len(models)))
    for ax, path in zip(axes[:, 0], models):
        images, _ = _generate(path, per_row, None)
        ax.imshow(np.concatenate([_to_image(x) for x in images], axis=1))
        ax.set_title(_run_name(path), fontsize=7, loc="left")
        ax.axis("off")
    fig.tight_layout()
    save(fig, out)


def figure_singan_samples(out: str | Path, models: Sequence[str | Path]) -> None:
    from pegan.models import singan

    plt = pyplot()
    if not models:
        raise PeganError("singan-samples needs at least one SinGAN model")
    fig, axes = plt.subplots(len(models), 5, squeeze=False, figsize=(11, 2.2 * len(models)))
    for row, path in zip(axes, models):
        panels = singan.figure_panels(path, seed=SAMPLE_SEED)
        for ax, (title, image) in zip(row, panels):
            ax.imshow(_to_image(image))
            ax.set_title(title, fontsize=7)
        for ax in row:
            ax.axis("off")
        row[0].set_title(f"{_run_name(path)}\n{panels[0][0]}", fontsize=7)
    fig.suptitle("SinGAN variants: training image, samples, and samples at another aspect ratio")
    fig.tight_layout()
    save(fig, out)


def _run_label(path: str | Path) -> str:
    """'<experiment> seed<k>' of a run's model path (runs/<experiment>/seed<k>/final.pt)."""
    parts = Path(path).parts
    seed = parts[-2] if len(parts) >= 2 and parts[-2].startswith("seed") else ""
    return f"{_run_name(path)} {seed}".strip()


def _strip(images: Sequence[np.ndarray]) -> np.ndarray:
    """uint8 HWC images side by side, each padded at the bottom (white) to the tallest."""
    height = max(im.shape[0] for im in images)
    padded = [np.pad(im, ((0, height - im.shape[0]), (0, 2), (0, 0)), constant_values=255)
              for im in images]
    return np.concatenate(padded, axis=1)


def figure_run_samples(out: str | Path, models: Sequence[str | Path], *,
                       per_row: int = 6) -> None:
    """One row per run (the claims' experiments and seeds): `per_row` latent-code samples of
    a generator (as figure_samples), or a SinGAN run's training image and random samples (as
    figure_singan_samples); the row is titled '<experiment> seed<k>'. Without models (a
    preset or workflow slice that tests no claim) the figure says so."""
    from pegan.models import singan
    from pegan.snapshot import load_snapshot

    plt = pyplot()
    if not models:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no claim run to draw", ha="center", va="center")
        ax.axis("off")
        save(fig, out)
        return
    fig, axes = plt.subplots(len(models), 1, squeeze=False,
                             figsize=(per_row * 0.9, 1.1 * len(models)))
    for ax, path in zip(axes[:, 0], models):
        if load_snapshot(path).get("arch") == "singan":
            panels = singan.figure_panels(path, seed=SAMPLE_SEED)
            images = [image for title, image in panels if title != "reconstruction"][:per_row]
        else:
            images = list(_generate(path, per_row, None)[0])
        ax.imshow(_strip([_to_image(x) for x in images]))
        ax.set_title(_run_label(path), fontsize=7, loc="left")
        ax.axis("off")
    fig.tight_layout()
    save(fig, out)


# -------------------------------------------------------------- curves and bar charts


def figure_curves(out: str | Path, logs: Sequence[str | Path], title: str = "") -> None:
    plt = pyplot()
    series: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for path in logs:
        name = _run_name(path)
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            x = rec.get("mimg", rec.get("kimg"))
            for key, value in rec.items():
                if key.startswith("fid@") and value is not None and math.isfinite(value):
                    series.setdefault(key, {}).setdefault(name, []).append((x, value))
    keys = sorted(series) or ["fid"]
    fig, axes = plt.subplots(1, len(keys), squeeze=False, figsize=(4.5 * len(keys), 3.2))
    for ax, key in zip(axes[0], keys):
        for name, points in sorted(series.get(key, {}).items()):
            points.sort()
            ax.plot([p[0] for p in points], [p[1] for p in points], "o-", ms=3, label=name)
        ax.set_xlabel("images seen (paper Mimg)")
        ax.set_ylabel(key.upper())
        ax.set_title(f"{title} {key}".strip())
        if series.get(key):
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "no selection metric logged", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    save(fig, out)


def figure_bars(out: str | Path, reproduced_csv: str | Path, reported_csv: str | Path | None,
                columns: Sequence[Mapping], title: str = "") -> None:
    """Reproduced (± std over seeds) beside reported bars; a pegan-only table (no reported
    CSV) shows the reproduced bars alone."""
    import pandas as pd

    plt = pyplot()
    ours = pd.read_csv(reproduced_csv, dtype={"row": str}).set_index("row")
    theirs = None if reported_csv is None else \
        pd.read_csv(reported_csv, dtype={"row": str}).set_index("row")
    rows = ours.index if theirs is None else theirs.index
    fig, axes = plt.subplots(1, len(columns), squeeze=False, figsize=(2.6 * len(columns), 3))
    x = np.arange(len(rows))
    shift, width = (0.0, 0.6) if theirs is None else (0.2, 0.4)
    for ax, col in zip(axes[0], columns):
        key = col["key"]
        if theirs is not None:
            # a column pegan adds to a paper table (fid_clean) has no reported bars
            reported = theirs[key] if key in theirs.columns else pd.Series(np.nan, index=rows)
            ax.bar(x - shift, reported.to_numpy(dtype=float), width, label="reported",
                   color="C0")
        std = ours[f"{key}_std"].reindex(rows).to_numpy(dtype=float)
        ax.bar(x + shift, ours[key].reindex(rows).to_numpy(dtype=float), width,
               yerr=np.nan_to_num(std), label="reproduced", color="C1")
        ax.set_xticks(x, list(rows))
        ax.set_title(col["label"], fontsize=7)
    if theirs is not None:
        axes[0, 0].legend(fontsize=6)
    fig.suptitle(title or "reported vs reproduced")
    fig.tight_layout()
    save(fig, out)


# ------------------------------------------------------------------------------ CLI

STATIC: dict[str, Callable[[Path], None]] = {
    "encodings": figure_encodings,
    "padding-statistics": figure_padding_statistics,
}


def make_figure(name: str, out: str | Path, inputs: Sequence[str], config: Mapping) -> None:
    if name in STATIC:
        STATIC[name](out)
    elif name == "mspie-scales":
        figure_mspie_scales(out, inputs)
    elif name == "singan-samples":
        figure_singan_samples(out, inputs)
    elif "-" in name and name.split("-", 1)[0] in ("samples", "curves", "bars"):
        kind, table = name.split("-", 1)
        if table not in config["tables"]:
            raise PeganError(f"figure {name}: {table!r} is not a table")
        spec = config["tables"][table]
        title = spec["title"].split(":")[0]
        if kind == "samples":
            figure_samples(out, inputs)
        elif kind == "curves":
            figure_curves(out, inputs, title)
        else:
            from pegan.config import repo_file

            csv = next((p for p in inputs if p.endswith(".csv")), None)
            if csv is None:
                raise PeganError(f"figure {name}: pass the reproduced table CSV")
            reported = repo_file(spec["reported"]) if spec.get("reported") else None
            figure_bars(out, csv, reported, spec["columns"], title)
    else:
        raise PeganError(f"unknown figure {name!r} (encodings, padding-statistics, mspie-scales, "
                         "singan-samples, samples-<table>, curves-<table>, bars-<table>)")


def add_args(p) -> None:
    p.add_argument("figure", help="figure name, e.g. encodings, mspie-scales, bars-table2")
    p.add_argument("inputs", nargs="*", help="models, snapshot logs or table CSVs it is drawn from")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--config", default=None)
    p.add_argument("--preset", default=None)


def run(args) -> int:
    from pegan import config as pconfig

    cfg = pconfig.load(args.config, {"preset": args.preset} if args.preset else None)
    make_figure(args.figure, args.out, args.inputs, cfg)
    log.info("wrote %s", args.out)
    return 0

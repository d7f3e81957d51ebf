"""The claims figure: one panel per claim with the per-seed values of its rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from pegan.claims.check import ClaimTest
from pegan.tables import lower_is_better

VERDICT_COLOURS = {"held": "tab:green", "not held": "tab:red", "inconclusive": "tab:gray"}


def figure(claims: Sequence[ClaimTest], out: str | Path) -> None:
    """One panel per claim: per-seed values of each compared row, their mean, the verdict."""
    from pegan.figures import pyplot, save

    plt = pyplot()
    n = max(len(claims), 1)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.8 * nrows), squeeze=False)
    for ax, c in zip(axes.flat, claims):
        for i, row in enumerate(c.rows):
            vals = np.array([v for _, v in sorted(c.per_seed.get(row, {}).items())], dtype=float)
            if len(vals):
                jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
                ax.scatter(i + jitter, vals, s=18, color="tab:blue" if i == 0 else "tab:orange",
                           zorder=3)
                ax.hlines(vals.mean(), i - 0.25, i + 0.25, color="black", lw=1.5)
        ax.set_xticks(range(len(c.rows)))
        ax.set_xticklabels(c.rows)
        ax.set_xlim(-0.6, len(c.rows) - 0.4)
        arrow = "↓" if lower_is_better(c.metric) else "↑"
        ax.set_ylabel(f"{c.column} {arrow}", fontsize=7)
        ax.set_title(f"{c.id}\n{c.verdict}", fontsize=7, color=VERDICT_COLOURS[c.verdict])
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(claims):]:
        ax.axis("off")
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)

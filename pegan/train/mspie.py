"""MS-PIE (multi-scale training with positional encodings): which scale each iteration trains.

Every iteration draws one output size from the experiment's scales, resizes the real batch to
it and trains G and D at that size (official ``mmgen/models/gans/mspie_stylegan2.py``,
reference §4). The official code draws on rank 0 and broadcasts the size; pegan's samplers are
seeded alike on every rank and draw the same sizes without a per-iteration broadcast.

Two ways to draw, as a named setting:

* ``"intended"`` (default): the configured probabilities, ``[0.5, 0.25, 0.25]`` for three scales
  (the base scale half of the time, the others sharing the rest);
* ``"official-uniform"``: what the released code actually does. It calls
  ``np.random.choice(scales, 1, probabilities)``, whose third positional argument is ``replace``,
  not ``p``, so every scale is drawn with probability 1/n (numpy issue #20864).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pegan.errors import PeganError

SAMPLING_MODES = ("intended", "official-uniform")


def intended_probabilities(num_scales: int) -> list[float]:
    """[1] for one scale; else 0.5 on the base scale, the rest split evenly ([0.5, 0.25, 0.25])."""
    if num_scales == 1:
        return [1.0]
    return [0.5] + [0.5 / (num_scales - 1)] * (num_scales - 1)


class ScaleSampler:
    """Draws the training size of each iteration from its own seeded numpy generator."""

    def __init__(self, scales: Sequence[int], *, mode: str = "intended",
                 probabilities: Sequence[float] | None = None, seed: int = 0) -> None:
        if mode not in SAMPLING_MODES:
            raise PeganError(f"scale sampling {mode!r}: choose {' or '.join(SAMPLING_MODES)}")
        self.scales = [int(s) for s in scales]
        probs = list(probabilities) if probabilities is not None else intended_probabilities(len(self.scales))
        if len(probs) != len(self.scales) or min(probs) < 0 or abs(sum(probs) - 1) > 1e-6:
            raise PeganError(f"scale probabilities {probs} do not fit scales {self.scales} "
                             "(one non-negative value per scale, summing to 1)")
        self.mode = mode
        self.probabilities = np.asarray(probs, dtype=np.float64) / sum(probs)
        self.rng = np.random.default_rng([seed, 0x5CA1E])

    @property
    def effective_probabilities(self) -> np.ndarray:
        """The probabilities the draws actually follow."""
        if self.mode == "official-uniform":
            return np.full(len(self.scales), 1.0 / len(self.scales))
        return self.probabilities

    def draw(self) -> int:
        """One training size (px)."""
        if len(self.scales) == 1:
            return self.scales[0]
        if self.mode == "official-uniform":
            # np.random.choice(scales, 1, probs): `probs` lands in `replace`, p stays None
            return int(self.rng.choice(self.scales, 1, True)[0])
        return int(self.rng.choice(self.scales, p=self.probabilities))

    def state_dict(self) -> dict:
        return {"bit_generator": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["bit_generator"]


def resize_real(images: torch.Tensor, size: int) -> torch.Tensor:
    """Real batch at the drawn size: bilinear, align_corners=True, no antialiasing, and no-op
    when the size already matches (as the official trainer)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=True)

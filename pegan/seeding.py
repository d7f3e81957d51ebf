"""The one seed-derivation rule of pegan.

Every random stream that must not depend on anything else that runs (a batch of samples, a
rank's data order, one image set's patches) is seeded by ``stream_seed(seed, stream)``: the
run's (or evaluation's) seed and a stream index. ``seed * 1_000_003 + stream`` (a prime
larger than any stream index pegan uses) keeps distinct (seed, stream) pairs distinct for
every stream below a million.
"""

from __future__ import annotations

STREAM_PRIME = 1_000_003


def stream_seed(seed: int, stream: int) -> int:
    """Seed of stream `stream` of a run or evaluation seeded with `seed`."""
    return int(seed) * STREAM_PRIME + int(stream)


def size_seed(height: int, width: int) -> int:
    """Seed of StyleGAN2's stored noise at a head size other than the base one: a function of
    the size alone, so every copy of a model draws the same noise there."""
    return 10007 * int(height) + int(width)


def seed_all(seed: int, stream: int) -> None:
    """Seed the global torch, numpy and Python RNGs of one training process for stream
    `stream` (0: model initialisation; rank + 1: that rank's training draws)."""
    import random

    import numpy as np
    import torch

    torch.manual_seed(stream_seed(seed, stream))
    np.random.seed([seed, stream])
    random.seed(f"pegan-{seed}-{stream}")

"""MS-PIE scale sampling: draw frequencies, the official uniform-draw option, resizing reals."""

import numpy as np
import pytest
import torch
from scipy import stats

from pegan.errors import PeganError
from pegan.train import mspie

SCALES = [32, 48, 64]
DRAWS = 6000


def _counts(sampler: mspie.ScaleSampler, n: int = DRAWS) -> np.ndarray:
    draws = [sampler.draw() for _ in range(n)]
    return np.array([draws.count(s) for s in sampler.scales])


def test_intended_probabilities_are_the_papers():
    assert mspie.intended_probabilities(3) == [0.5, 0.25, 0.25]
    assert mspie.intended_probabilities(1) == [1.0]
    assert sum(mspie.intended_probabilities(5)) == pytest.approx(1.0)


def test_intended_draws_match_the_configured_probabilities():
    counts = _counts(mspie.ScaleSampler(SCALES, mode="intended", seed=0))
    expected = np.array([0.5, 0.25, 0.25]) * DRAWS
    assert stats.chisquare(counts, expected).pvalue > 0.01
    # and they are clearly not uniform
    assert stats.chisquare(counts, np.full(3, DRAWS / 3)).pvalue < 1e-6


def test_official_uniform_option_draws_uniformly():
    sampler = mspie.ScaleSampler(SCALES, mode="official-uniform", seed=0)
    counts = _counts(sampler)
    assert stats.chisquare(counts, np.full(3, DRAWS / 3)).pvalue > 0.01
    assert stats.chisquare(counts, np.array([0.5, 0.25, 0.25]) * DRAWS).pvalue < 1e-6
    np.testing.assert_allclose(sampler.effective_probabilities, [1 / 3] * 3)


def test_official_uniform_reproduces_the_numpy_call_of_the_released_code():
    # np.random.choice(scales, 1, probs): probs is taken as `replace`, so p is None
    legacy = np.random.RandomState(3)
    draws = [int(legacy.choice(SCALES, 1, [0.5, 0.25, 0.25])[0]) for _ in range(3000)]
    counts = np.array([draws.count(s) for s in SCALES])
    assert stats.chisquare(counts, np.full(3, 1000)).pvalue > 0.01


def test_explicit_probabilities_and_validation():
    counts = _counts(mspie.ScaleSampler(SCALES, probabilities=[0.1, 0.1, 0.8], seed=1))
    assert stats.chisquare(counts, np.array([0.1, 0.1, 0.8]) * DRAWS).pvalue > 0.01
    with pytest.raises(PeganError):
        mspie.ScaleSampler(SCALES, probabilities=[0.5, 0.5])
    with pytest.raises(PeganError):
        mspie.ScaleSampler(SCALES, mode="uniform")


def test_sampler_state_round_trip_continues_the_sequence():
    a = mspie.ScaleSampler(SCALES, seed=7)
    [a.draw() for _ in range(11)]
    state = a.state_dict()
    rest = [a.draw() for _ in range(50)]
    b = mspie.ScaleSampler(SCALES, seed=7)
    b.load_state_dict(state)
    assert [b.draw() for _ in range(50)] == rest


def test_single_scale_always_draws_the_base():
    s = mspie.ScaleSampler([32], seed=0)
    assert {s.draw() for _ in range(20)} == {32}


def test_resize_real_is_align_corners_bilinear_and_noop_at_same_size():
    x = torch.rand(2, 3, 64, 64)
    assert mspie.resize_real(x, 64) is x
    y = mspie.resize_real(x, 32)
    assert y.shape == (2, 3, 32, 32)
    # align_corners=True keeps the four corner pixels exactly
    for i, j in [(0, 0), (0, -1), (-1, 0), (-1, -1)]:
        torch.testing.assert_close(y[..., i, j], x[..., i, j])

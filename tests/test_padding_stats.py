"""The paper's statistical claim on a random conv stack fed i.i.d. N(0, 1) inputs: zero
padding makes E(y_i) and R(y_i, y_j) depend on the absolute position near the border;
without padding the output is a weakly stationary process."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pegan.padding_stats import (correlation_map, position_mean_map, position_statistics,
                                 random_conv_stack)


pytestmark = pytest.mark.usefixtures("one_thread")

KW = dict(size=16, depth=3, channels=8, samples=4096)


def _ring(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


@pytest.mark.parametrize("seed", [0, 1])
def test_mean_is_constant_without_padding_and_varies_at_the_border_with_it(seed):
    nopad = position_statistics(False, seed=seed, **KW)
    pad = position_statistics(True, seed=seed, **KW)
    # without padding: every location within sampling error of the spatial mean
    # (256 correlated locations; |z| < 5 is a ~1e-6 two-sided tail per location)
    assert np.abs(nopad.mean_zscore()).max() < 5
    # with padding: the border row/column is many standard errors off
    assert np.abs(_ring(pad.mean_zscore())).max() > 10
    # ... and only within the receptive field (depth cells) of the border: further inside,
    # the padded stack sees no padding and its mean is constant again
    d = KW["depth"]
    inner_mean = pad.mean[d:-d, d:-d]
    inner_se = pad.std[d:-d, d:-d] / np.sqrt(pad.samples)
    assert np.abs((inner_mean - inner_mean.mean()) / inner_se).max() < 5


@pytest.mark.parametrize("seed", [0, 1])
def test_covariance_depends_on_offset_only_without_padding(seed):
    reach = 2 * KW["depth"] + 1  # beyond this offset two outputs share no input
    c = KW["size"] // 2

    def mismatch(padding: bool) -> float:
        corner, _ = correlation_map(padding, (0, 0), seed=seed, normalized=False, **KW)
        centre_stats = position_statistics(padding, ref=(c, c), seed=seed, **KW)
        centre = centre_stats.covariance
        diff = corner[:reach, :reach] - centre[c:c + reach, c:c + reach]
        return float(np.abs(diff).max() / centre_stats.std[c, c] ** 2)

    assert mismatch(False) < 0.15  # R(y_i, y_j) = R(i - j): sampling error only
    assert mismatch(True) > 0.3    # the corner's relations differ: position is encoded


def test_correlation_map_basics():
    corr, ref = correlation_map(False, (3, 5), **KW)
    assert ref == (3, 5)
    assert corr.shape == (16, 16)
    assert corr[3, 5] == pytest.approx(1.0)
    assert np.all(np.abs(corr) <= 1 + 1e-9)
    # beyond the receptive-field overlap outputs are independent: correlation ~ 0
    assert np.abs(corr[3, 5 + 2 * KW["depth"] + 1:]).max() < 0.1
    mean = position_mean_map(False, **KW)
    assert mean.shape == (16, 16)
    # deterministic for a given seed
    assert np.array_equal(mean, position_mean_map(False, **KW))


def test_padded_and_padding_free_stacks_share_weights():
    a, b = random_conv_stack(True, seed=3), random_conv_stack(False, seed=3)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and torch.equal(pa, pb)
    assert a[0].padding == 1 and b[0].padding == 0

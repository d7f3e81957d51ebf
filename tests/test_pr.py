"""Improved precision/recall: the k-NN manifold definition, exact fractions on a hand-computed
case, the limits (identical / disjoint sets) and chunking that changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pegan.metrics.pr import coverage, knn_radii, precision_recall


pytestmark = pytest.mark.usefixtures("one_thread")

def _on_line(xs):
    """Points on the x axis of a 2-D feature space."""
    return np.array([[x, 0.0] for x in xs], dtype=np.float32)


def _brute_force(real, fake, k):
    """Independent oracle: plain Euclidean distances in float64 with numpy."""
    def radii(m):
        d = np.linalg.norm(m[:, None].astype(np.float64) - m[None], axis=-1)
        return np.sort(d, axis=1)[:, k]            # index k: self (0) + k neighbours
    def cov(m, r, p):
        d = np.linalg.norm(p[:, None].astype(np.float64) - m[None], axis=-1)
        return (d <= r[None]).any(1).mean()
    return cov(real, radii(real), fake), cov(fake, radii(fake), real)


def test_hand_computed_fractions():
    # k=1: radius = distance to the nearest *other* point of the same set.
    # reals -10, 0, 1, 3, 7 -> radii 10, 1, 1, 2, 4;  fakes 0.5, 2, 5.5, 12 -> 1.5, 1.5, 3.5, 6.5
    # precision: 0.5 (in 0's ball), 2 (|2-1| = 1 = radius: ties count), 5.5 (in 7's ball),
    #            12 (|12-7| = 5 > 4, |12+10| = 22 > 10: outside)            -> 3/4
    # recall:    -10 (10.5 from 0.5 > 1.5, 22 from 12 > 6.5: outside), 0, 1, 3 (|3-2| = 1),
    #            7 (|7-5.5| = 1.5 <= 3.5)                                -> 4/5
    real, fake = _on_line([-10, 0, 1, 3, 7]), _on_line([0.5, 2, 5.5, 12])
    np.testing.assert_array_equal(knn_radii(real, k=1).sqrt().numpy(), [10, 1, 1, 2, 4])
    assert precision_recall(real, fake, k=1) == {"precision": 0.75, "recall": 0.8}


def test_radius_counts_the_point_itself():
    # k=3 -> the (k+1)-th smallest distance, self included = the 3rd other point;
    # e.g. point 4: others at 2, 3, 4, 4 -> 4; point 8: others at 4, 6, 7, 8 -> 7
    pts = _on_line([0, 1, 2, 4, 8])
    np.testing.assert_array_equal(knn_radii(pts, k=3).sqrt().numpy(), [4, 3, 2, 4, 7])


def test_identical_sets_are_one_and_far_sets_are_zero():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 16)).astype(np.float32)
    assert precision_recall(x, x.copy()) == {"precision": 1.0, "recall": 1.0}
    far = rng.standard_normal((40, 16)).astype(np.float32) + 1000.0
    assert precision_recall(x, far) == {"precision": 0.0, "recall": 0.0}


def test_matches_brute_force_k3():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((120, 8)).astype(np.float32)
    fake = (1.3 * rng.standard_normal((90, 8)) + 0.4).astype(np.float32)
    p, r = _brute_force(real, fake, 3)
    out = precision_recall(real, fake, k=3)
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1
    assert out["precision"] == pytest.approx(p, abs=1e-12)
    assert out["recall"] == pytest.approx(r, abs=1e-12)


def test_chunked_equals_unchunked():
    rng = np.random.default_rng(2)
    real = rng.standard_normal((257, 64)).astype(np.float32)
    fake = (rng.standard_normal((203, 64)) * 1.1 + 0.1).astype(np.float32)
    whole = precision_recall(real, fake, row_chunk=10_000, col_chunk=10_000)
    for rows, cols in ((7, 13), (64, 5), (5, 1000)):
        assert precision_recall(real, fake, row_chunk=rows, col_chunk=cols) == whole
        np.testing.assert_allclose(knn_radii(real, row_chunk=rows, col_chunk=cols).numpy(),
                                   knn_radii(real).numpy(), rtol=1e-5)
    assert 0 < whole["precision"] < 1 and 0 < whole["recall"] < 1


def test_coverage_is_per_probe_and_sets_may_differ_in_size():
    real = _on_line([0, 1, 2, 3])
    r = knn_radii(real, k=1)                              # all 1
    probes = _on_line([0.5, 3.9, 4.0, 4.01, -1.0, -1.5])
    np.testing.assert_array_equal(coverage(real, r, probes).numpy(),
                                  [True, True, True, False, True, False])


def test_too_few_points_for_k():
    with pytest.raises(ValueError, match="k=3"):
        knn_radii(torch.zeros(3, 2), k=3)

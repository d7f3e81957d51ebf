"""SWD: the Laplacian pyramid against an independent scipy implementation, the descriptors,
and the distance's behaviour (noise floor, larger for a changed set at every level, order
invariance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from pegan.metrics import swd as S


# ---------------------------------------------------- independent scipy reference
# PGGAN's definition: blur = 5x5 binomial, scipy ndimage.convolve(mode='mirror');
# down = blur then [::2, ::2]; up = zero insertion then blur with 4x the kernel.


pytestmark = pytest.mark.usefixtures("one_thread")

_K = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0


def _blur(img2d, kernel):
    return ndimage.convolve(img2d, kernel, mode="mirror")


def _scipy_pyramid(images, levels):
    out = []
    for im in images.astype(np.float64):
        pyr = [im]
        for _ in range(1, levels):
            down = np.stack([_blur(c, _K)[::2, ::2] for c in pyr[-1]])
            up = np.zeros_like(pyr[-1])
            up[:, ::2, ::2] = down
            up = np.stack([_blur(c, 4 * _K) for c in up])
            pyr[-1] = pyr[-1] - up
            pyr.append(down)
        out.append(pyr)
    return [np.stack([o[i] for o in out]) for i in range(levels)]


def _textures(n, seed, sigma=1.0, res=32):
    """Smooth random RGB textures, uint8 [n, 3, res, res]."""
    rng = np.random.default_rng(seed)
    x = ndimage.gaussian_filter(rng.standard_normal((n, 3, res, res)),
                                sigma=(0, 0, sigma, sigma), mode="wrap")
    x = x / x.std() * 50 + 128
    return torch.from_numpy(np.clip(x, 0, 255).astype(np.uint8))


def _blurred(images, sigma=1.0):
    y = ndimage.gaussian_filter(images.numpy().astype(np.float64), sigma=(0, 0, sigma, sigma),
                                mode="reflect")
    return torch.from_numpy(np.clip(np.round(y), 0, 255).astype(np.uint8))


# ---------------------------------------------------------------------------- tests


def test_pyramid_sizes():
    assert S.pyramid_sizes(128) == [128, 64, 32, 16]
    assert S.pyramid_sizes(32) == [32, 16]
    assert S.pyramid_sizes(16) == [16]
    assert S.pyramid_sizes(48) == [48, 24]
    assert len(S.pyramid_sizes(1024)) == 7
    with pytest.raises(ValueError):
        S.pyramid_sizes(8)


def test_pyramid_matches_scipy_reference():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 3, 32, 32)).astype(np.uint8)
    ours = S.laplacian_pyramid(torch.from_numpy(images), 3)
    ref = _scipy_pyramid(images, 3)
    assert [tuple(o.shape) for o in ours] == [(2, 3, 32, 32), (2, 3, 16, 16), (2, 3, 8, 8)]
    for o, r in zip(ours, ref):
        np.testing.assert_allclose(o.numpy(), r, atol=2e-3)   # 0..255 scale, float32


def test_pyramid_collapses_back_to_the_image():
    images = _textures(2, 0, res=64)
    levels = S.laplacian_pyramid(images, 4)
    x = levels[-1]
    for band in reversed(levels[:-1]):
        x = band + S.pyr_up(x, tuple(band.shape[-2:]))
    np.testing.assert_allclose(x.numpy(), images.float().numpy(), atol=1e-3)


def test_patches_and_standardisation():
    level = torch.arange(2 * 3 * 16 * 16, dtype=torch.float32).view(2, 3, 16, 16)
    cy = torch.tensor([3, 12] * 64 + [5, 9] * 64)
    cx = torch.tensor([4, 3] * 64 + [12, 7] * 64)
    patches = S.extract_patches(level, cy, cx)
    assert patches.shape == (256, 3, 7, 7)
    torch.testing.assert_close(patches[1], level[0, :, 9:16, 0:7])
    torch.testing.assert_close(patches[128], level[1, :, 2:9, 9:16])
    centres = S.patch_centres(S.image_digests(_textures(3, 1)), 32, seed=0, role="fake")
    assert all(int(c.min()) >= 3 and int(c.max()) <= 28 for c in centres)
    desc = S.standardize(torch.randn(500, 3, 7, 7) * 5 + 2)
    per_channel = desc.view(500, 3, 49).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-5,
                               rtol=0)


def test_sliced_wasserstein_of_equal_descriptor_sets_is_zero_and_order_free():
    a = torch.randn(300, 147)
    b = torch.randn(300, 147) * 1.5
    dirs = S.directions(0, 32, 147)
    assert S.sliced_wasserstein(a, a[torch.randperm(300)], dirs) == 0.0
    ab = S.sliced_wasserstein(a, b, dirs)
    assert ab > 0
    assert S.sliced_wasserstein(a[torch.randperm(300)], b[torch.randperm(300)], dirs) == \
        pytest.approx(ab, rel=1e-6)


@pytest.fixture(scope="module")
def sets():
    return {"a": _textures(48, 1), "b": _textures(48, 2), "smooth": _textures(48, 3, sigma=2.2)}


def test_identical_sets_sit_at_the_noise_floor_and_changed_sets_are_larger(sets):
    a = sets["a"]
    same = S.swd(a, a, seed=0)
    floor = S.swd(a, sets["b"], seed=0)            # two draws of the same distribution
    blurred = S.swd(a, _blurred(a, sigma=1.5), seed=0)
    smoother = S.swd(a, sets["smooth"], seed=0)    # shifted distribution: coarser texture
    assert set(same) == {"32", "16", "avg"}
    for level in ("32", "16"):
        # same images, independent patch draws: the sampling noise only
        assert 0 < same[level] <= 1.25 * floor[level]
        assert blurred[level] > 1.5 * same[level]
        assert smoother[level] > 1.5 * floor[level]
    assert same["avg"] == pytest.approx((same["32"] + same["16"]) / 2)


def test_values_do_not_depend_on_image_order(sets):
    a, b = sets["a"], sets["b"]
    ref = S.swd(a, b, seed=5)
    perm = S.swd(a[torch.randperm(48)], b[torch.randperm(48)], seed=5, batch_size=7)
    for key in ref:
        assert perm[key] == pytest.approx(ref[key], rel=1e-5)
    assert S.swd(a, b, seed=6)["avg"] != ref["avg"]      # the seed does matter


def test_unequal_set_sizes_are_refused(sets):
    with pytest.raises(ValueError, match="equal size"):
        S.swd(sets["a"], sets["b"][:10])


# ------------------------------------------ issue 18: the fast path computes the same numbers


def test_matches_the_previous_implementation_on_fixed_images():
    # values of pegan's torch implementation before issue 18 (conv pyramid, torch sort), on
    # CPU with one thread; the numpy GEMM pyramid and sort differ only by float32 rounding
    a, b = _textures(40, 11, res=48), _textures(40, 12, sigma=1.6, res=48)
    before = {"48": 57.13568438342366, "24": 45.73249146053444, "avg": 51.43408792197905}
    now = S.swd(a, b, seed=3, batch_size=16)
    assert set(now) == set(before)
    for key, value in before.items():
        assert now[key] == pytest.approx(value, rel=1e-6)


def test_slabs_projection_chunks_and_threads_do_not_change_values(sets, monkeypatch):
    a, b = sets["a"], sets["b"]
    ref = S.swd(a, b, seed=2)
    monkeypatch.setattr(S, "SLAB_ROWS", 1000)               # many slabs, batches straddling
    monkeypatch.setattr(S, "PROJECTION_BYTES", 4 * 48 * 128 * 5)   # 5 directions per GEMM
    torch.set_num_threads(2)                                  # rows sorted on two threads
    other = S.swd(a, b, seed=2, batch_size=5)
    for key in ref:
        assert other[key] == pytest.approx(ref[key], rel=1e-6)


def test_cpu_pyramid_equals_the_torch_matmul_path():
    images = _textures(3, 4, res=48)
    cpu = S.laplacian_pyramid(images, 2)                     # numpy GEMMs, [H, N, C, W] inside
    low = S.pyr_down(images.float())                         # torch matmuls (the GPU path)
    band = images.float() - S.pyr_up(low, (48, 48))
    torch.testing.assert_close(cpu[1], low, atol=1e-4, rtol=0)
    torch.testing.assert_close(cpu[0], band, atol=1e-4, rtol=0)


def _rss_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise OSError(field)


def test_finalize_hands_over_standardised_float32_storage_without_copies():
    images = _textures(600, 5)                              # 32 px: 2 levels of 76800 rows
    try:
        open("/proc/self/clear_refs", "w").write("5")       # reset the peak-RSS mark (Linux)
        base = _rss_mb("VmRSS")
    except OSError:
        pytest.skip("needs Linux /proc peak-RSS reset")
    acc = S.SWDDescriptors(32, seed=0, role="real")
    for i in range(0, 600, 50):
        acc.add(images[i:i + 50])
    desc = acc.finalize()
    grown = _rss_mb("VmHWM") - base
    stored = sum(d.numel() * 4 for d in desc) / 2**20       # 2 x 76800 x 147 float32: 86 MB
    assert [tuple(d.shape) for d in desc] == [(600 * 128, 147)] * 2
    assert all(d.dtype == torch.float32 for d in desc)
    # descriptors + one 38.5 MB slab while a level's slabs are joined + one batch; the
    # previous implementation held raw, concatenated and standardised copies (about 3x)
    assert grown < stored + S.SLAB_ROWS * 147 * 4 / 2**20 + 30
    per_channel = desc[0].view(-1, 3, 49).transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(per_channel.mean(1), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(per_channel.std(1, unbiased=False), torch.ones(3), atol=1e-4,
                               rtol=0)
    with pytest.raises(ValueError, match="already"):
        acc.finalize()

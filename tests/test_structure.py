"""The global-structure metric (pegan.metrics.structure): layout agreement separates aligned
images from the same images with their patches shuffled; diversity and patch SWD identities."""

from __future__ import annotations

import numpy as np
import torch

from pegan.data.synthetic import aligned_objects
from pegan.metrics import structure as st


def _images(num: int, res: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(aligned_objects(num, res, seed)).permute(0, 3, 1, 2).contiguous()


def _shuffle_patches(images: torch.Tensor, block: int, seed: int) -> torch.Tensor:
    """Each image cut into block x block tiles, tiles permuted independently per image."""
    n, c, h, w = images.shape
    gh, gw = h // block, w // block
    tiles = images.reshape(n, c, gh, block, gw, block).permute(0, 2, 4, 1, 3, 5)
    tiles = tiles.reshape(n, gh * gw, c, block, block)
    rng = np.random.default_rng(seed)
    out = torch.stack([t[torch.from_numpy(rng.permutation(gh * gw))] for t in tiles])
    out = out.reshape(n, gh, gw, c, block, block).permute(0, 3, 1, 4, 2, 5)
    return out.reshape(n, c, h, w).contiguous()


def test_structure_separates_aligned_from_shuffled_patches():
    real = _images(256, 32, seed=0)
    ref = st.LayoutReference()
    ref.add(real)
    layout = ref.layout()
    held_out = _images(128, 32, seed=1)                 # other images of the same layout
    shuffled = _shuffle_patches(held_out, 8, seed=0)    # same pixels, layout destroyed
    aligned_scores = st.layout_scores(held_out, layout)
    shuffled_scores = st.layout_scores(shuffled, layout)
    assert aligned_scores.mean() > 0.5
    assert abs(float(shuffled_scores.mean())) < 0.15
    # per-image separation, not just on average: nearly every aligned image beats nearly every
    # shuffled one
    assert float(torch.quantile(aligned_scores, 0.05)) > float(torch.quantile(shuffled_scores, 0.95))
    # local statistics are nearly the same (shuffling keeps patches), layout is not
    patches_real, patches_aligned, patches_shuffled = (st.PatchSet(0, k) for k in (1, 2, 3))
    patches_real.add(real)
    patches_aligned.add(held_out)
    patches_shuffled.add(shuffled)
    swd_aligned = st.patch_swd(patches_real, patches_aligned, 0)
    swd_shuffled = st.patch_swd(patches_real, patches_shuffled, 0)
    assert swd_shuffled < 3 * swd_aligned + 5


def test_structure_is_colour_invariant_and_scale_free():
    imgs = _images(16, 48)
    ref = st.LayoutReference()
    ref.add(imgs)
    inverted = 255 - imgs                       # negative image: same edges
    assert torch.allclose(st.layout_scores(imgs, ref.layout()),
                          st.layout_scores(inverted, ref.layout()), atol=1e-5)
    # a correlation: bounded by 1, equal to 1 for an image whose layout is the reference
    one = imgs[:1]
    ref1 = st.LayoutReference()
    ref1.add(one)
    assert abs(float(st.layout_scores(one, ref1.layout())[0]) - 1.0) < 1e-5


def test_diversity_matches_numpy_std():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(10, 3, 8, 6), dtype=np.uint8)
    moments = st.PixelMoments()
    moments.add(torch.from_numpy(arr[:4]))
    moments.add(torch.from_numpy(arr[4:]))
    expected = float((arr / 255.0).std(axis=0).mean())
    assert abs(moments.diversity() - expected) < 1e-7
    same = st.PixelMoments()
    same.add(torch.from_numpy(np.repeat(arr[:1], 5, axis=0)))
    assert same.diversity() == 0.0


def test_sliced_wasserstein_identities():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2000, 5, generator=g)
    gen = torch.Generator().manual_seed(1)
    assert st.sliced_wasserstein(a, a, gen) == 0.0
    # a shift by d along every axis moves each unit projection by d * sum(u); for
    # random unit directions in 5-D, E|sum(u)| = c > 0, so the distance grows linearly
    d1 = st.sliced_wasserstein(a, a + 1.0, torch.Generator().manual_seed(1))
    d2 = st.sliced_wasserstein(a, a + 2.0, torch.Generator().manual_seed(1))
    assert abs(d2 - 2 * d1) < 1e-9 and d1 > 0.5
    # order does not matter
    perm = a[torch.randperm(len(a), generator=g)]
    assert abs(st.sliced_wasserstein(a, perm, torch.Generator().manual_seed(3))) < 1e-12

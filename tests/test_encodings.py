"""Head inputs: CSG and SPE values against the formulas of the official code, interp vs
expand, non-square heads, the centred SPE option and the learnable constant."""

from __future__ import annotations

import math

import pytest
import torch

from pegan.encodings import (CartesianGrid, ConstantInput, SinusoidalPositionalEncoding,
                             build_head, cartesian_grid, resize_bilinear, sinusoidal_frequencies,
                             sinusoidal_grid)
from pegan.errors import PeganError


def test_csg_values_at_known_positions():
    g = cartesian_grid(5, 7)  # H=5 rows, W=7 columns
    assert g.shape == (2, 5, 7)
    for i in range(5):
        for j in range(7):
            assert g[0, i, j].item() == pytest.approx(2 * j / 6 - 1)  # x: column
            assert g[1, i, j].item() == pytest.approx(2 * i / 4 - 1)  # y: row
    assert g[:, 0, 0].tolist() == [-1.0, -1.0]  # top-left
    assert g[:, -1, -1].tolist() == [1.0, 1.0]  # bottom-right
    # a single cell: max(W - 1, 1) avoids dividing by zero and gives -1
    assert cartesian_grid(1, 1).flatten().tolist() == [-1.0, -1.0]


def test_csg_interp_equals_expand():
    head = CartesianGrid(base_size=4)
    for size in [(4, 4), (6, 6), (8, 8), (5, 9)]:
        interp = resize_bilinear(cartesian_grid(4, 4), size)
        expand = head(1, size)[0]
        assert torch.allclose(interp, expand, atol=1e-6)


def test_spe_frequencies():
    w = sinusoidal_frequencies(256)
    assert len(w) == 128
    assert w[0].item() == pytest.approx(1.0)
    assert w[-1].item() == pytest.approx(1e-4)
    ratio = w[1:] / w[:-1]
    assert torch.allclose(ratio, torch.full_like(ratio, 10000 ** (-1 / 127)))
    # SinGAN's dims (official-implementation.md section 8.2)
    assert torch.allclose(sinusoidal_frequencies(4), torch.tensor([1.0, 1e-4], dtype=torch.float64))
    assert torch.allclose(sinusoidal_frequencies(8),
                          torch.tensor([1.0, 10000 ** (-1 / 3), 10000 ** (-2 / 3), 1e-4],
                                       dtype=torch.float64))
    with pytest.raises(PeganError):
        sinusoidal_frequencies(2)


def test_spe_values_at_known_positions():
    dim, half = 8, 4
    g = sinusoidal_grid(3, 5, dim)  # H=3, W=5
    assert g.shape == (2 * dim, 3, 5)
    for i in range(3):
        for j in range(5):
            px, py = j + 1, i + 1  # positions start at 1 at the top-left cell
            for k in range(half):
                wk = math.exp(-k * math.log(10000) / (half - 1))
                assert g[k, i, j].item() == pytest.approx(math.sin(px * wk), abs=1e-6)
                assert g[half + k, i, j].item() == pytest.approx(math.cos(px * wk), abs=1e-6)
                assert g[dim + k, i, j].item() == pytest.approx(math.sin(py * wk), abs=1e-6)
                assert g[dim + half + k, i, j].item() == pytest.approx(math.cos(py * wk), abs=1e-6)


def test_spe_odd_dim_has_zero_last_channel():
    g = sinusoidal_grid(2, 2, 5)
    assert g.shape == (10, 2, 2)
    assert torch.all(g[4] == 0) and torch.all(g[9] == 0)


def test_spe_expand_top_left_block_is_the_base_grid():
    head = SinusoidalPositionalEncoding(16, base_size=4, mode="expand")
    base = head(1)[0]
    for size in [(6, 6), (8, 8), (5, 11)]:
        big = head(1, size)[0]
        assert big.shape == (32, *size)
        assert torch.equal(big[:, :4, :4], base)


def test_spe_interp_resizes_the_base_grid():
    interp = SinusoidalPositionalEncoding(16, base_size=4, mode="interp")
    expand = SinusoidalPositionalEncoding(16, base_size=4, mode="expand")
    base = interp(1)[0]
    assert torch.equal(base, expand(1)[0])  # identical at the base size
    big = interp(1, (8, 8))[0]
    # align_corners=True keeps the four corner cells of the base grid
    for (i, j), (bi, bj) in {(0, 0): (0, 0), (0, 7): (0, 3), (7, 0): (3, 0), (7, 7): (3, 3)}.items():
        assert torch.allclose(big[:, i, j], base[:, bi, bj], atol=1e-6)
    assert torch.allclose(big, resize_bilinear(base, (8, 8)))
    # the two modes differ away from the top-left corner, as specified
    assert not torch.allclose(big, expand(1, (8, 8))[0], atol=1e-3)
    # interp spreads the base positions 1..4 over 8 cells: the row code of the last row is
    # that of position 4, expand's is that of position 8
    assert torch.allclose(big[16:, 7, 0], sinusoidal_grid(4, 4, 16)[16:, 3, 0], atol=1e-6)
    assert torch.allclose(expand(1, (8, 8))[0][16:, 7, 0],
                          sinusoidal_grid(8, 1, 16)[16:, 7, 0], atol=1e-6)


def test_spe_non_square_axes_are_independent():
    g = sinusoidal_grid(3, 6, 8)
    # column code is constant down each column, row code constant along each row
    assert torch.equal(g[:8], g[:8, :1, :].expand(8, 3, 6))
    assert torch.equal(g[8:], g[8:, :, :1].expand(8, 3, 6))
    # a square grid's row code is the transpose of its column code
    sq = sinusoidal_grid(5, 5, 8)
    assert torch.allclose(sq[8:], sq[:8].transpose(1, 2))


def test_centred_spe_is_symmetric_and_expands_around_the_centre():
    head = SinusoidalPositionalEncoding(8, base_size=4, mode="expand", centered=True)
    g = head(1, (6, 6))[0]
    # positions -2.5 .. 2.5: sin is odd, cos even about the centre
    assert torch.allclose(g[:4], -g[:4].flip(2), atol=1e-6)
    assert torch.allclose(g[4:8], g[4:8].flip(2), atol=1e-6)
    # an even increment keeps the base grid as the central block
    assert torch.allclose(g[:, 1:5, 1:5], head(1)[0], atol=1e-6)
    # the official (anchored) grid is not centred: its top-left block is the base instead
    anchored = SinusoidalPositionalEncoding(8, base_size=4, mode="expand")(1, (6, 6))[0]
    assert not torch.allclose(anchored[:, 1:5, 1:5], anchored[:, :4, :4])
    # an odd size has a centre cell at position 0: sin = 0, cos = 1
    odd = sinusoidal_grid(5, 5, 8, centered=True)
    assert torch.allclose(odd[:8, 2, 2], torch.tensor([0.0] * 4 + [1.0] * 4), atol=1e-6)


def test_constant_input_interp():
    head = ConstantInput(3, base_size=4)
    out = head(2)
    assert out.shape == (2, 3, 4, 4)
    assert torch.equal(out[0], head.input[0]) and torch.equal(out[1], head.input[0])
    big = head(1, (7, 5))[0]
    assert big.shape == (3, 7, 5)
    assert torch.allclose(big[:, 0, 0], head.input[0, :, 0, 0])
    assert torch.allclose(big[:, -1, -1], head.input[0, :, -1, -1])
    assert sum(p.numel() for p in head.parameters()) == 3 * 16


def test_build_head_kinds_and_errors():
    assert build_head("const", channels=12, base_size=6).out_channels == 12
    assert build_head("csg", channels=12, base_size=6).out_channels == 2
    spe = build_head("spe", channels=12, base_size=6, mode="expand", spe_dim=256)
    assert spe.out_channels == 512 and list(spe.parameters()) == []
    assert spe(2, (7, 7)).shape == (2, 512, 7, 7)
    with pytest.raises(PeganError, match="expand"):
        build_head("const", channels=12, base_size=4, mode="expand")
    with pytest.raises(PeganError):
        build_head("fourier", channels=12, base_size=4)

"""Tests of insar_denoise.inference.tiling and .blending: blocks, tiles, weights."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insar_denoise.inference.blending import Mosaic, axis_weights, edge_ramp
from insar_denoise.inference.tiling import (
    grid_starts,
    iter_blocks,
    iter_tiled_blocks,
    pad_block,
    round_up,
)


@settings(max_examples=50, deadline=None)
@given(
    h=st.integers(1, 90), w=st.integers(1, 90), chunk=st.integers(1, 40), depth=st.integers(0, 12)
)
def test_blocks_partition_the_scene(h, w, chunk, depth):
    seen = np.zeros((h, w), int)
    scene = np.arange(h * w, dtype=float).reshape(h, w)
    for row in iter_blocks((h, w), chunk, depth):
        for b in row:
            seen[slice(*b.core_y), slice(*b.core_x)] += 1
            ext = pad_block(scene[slice(*b.read_y), slice(*b.read_x)], b.pad_y, b.pad_x)
            assert ext.shape == (b.core_shape[0] + 2 * depth, b.core_shape[1] + 2 * depth)
            np.testing.assert_array_equal(
                ext[b.core_in_extended], scene[slice(*b.core_y), slice(*b.core_x)]
            )
    assert (seen == 1).all()


def test_reflect_padding_matches_numpy_at_scene_edges():
    scene = np.random.default_rng(0).normal(size=(3, 20, 17))
    full = np.pad(scene, ((0, 0), (6, 6), (6, 6)), mode="reflect")
    for row in iter_blocks((20, 17), 8, 6):
        for b in row:
            ext = pad_block(scene[:, slice(*b.read_y), slice(*b.read_x)], b.pad_y, b.pad_x)
            np.testing.assert_array_equal(
                ext, full[:, b.core_y[0] : b.core_y[1] + 12, b.core_x[0] : b.core_x[1] + 12]
            )


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 120),
    w=st.integers(1, 120),
    chunk=st.integers(4, 50),
    tile=st.integers(8, 40),
    data=st.data(),
)
def test_tiled_blocks_weights_are_a_partition_of_unity(h, w, chunk, tile, data):
    overlap = data.draw(st.integers(0, tile // 2))
    margin = data.draw(st.integers(0, overlap))
    covered = np.zeros((h, w), int)
    for row in iter_tiled_blocks((h, w), chunk, (tile, tile), overlap, margin):
        for b in row:
            covered[slice(*b.core_y), slice(*b.core_x)] += 1
            ext = (
                b.read_y[1] - b.read_y[0] + sum(b.pad_y),
                b.read_x[1] - b.read_x[0] + sum(b.pad_x),
            )
            assert b.tiles_y[-1].start + tile == ext[0] and b.tiles_x[-1].start + tile == ext[1]
            cy, cx = b.core_in_extended
            m = Mosaic(1, b.core_shape)
            m_eff = min(margin, overlap // 2)
            for ty in b.tiles_y:
                for tx in b.tiles_x:
                    wy = axis_weights(tile, overlap, m_eff, ty.taper_start, ty.taper_end)
                    wx = axis_weights(tile, overlap, m_eff, tx.taper_start, tx.taper_end)
                    m.add_weight(np.outer(wy, wx), ty.start - cy.start, tx.start - cx.start)
            np.testing.assert_allclose(m.den, 1.0, atol=1e-6)
    assert (covered == 1).all()


def test_grid_starts_cover_scene_and_pad():
    for length in (1, 7, 40, 41, 100):
        starts = grid_starts(length, 16, 6, 6)
        assert starts[0] == -6 and np.all(np.diff(starts) == 10)
        assert starts[-1] + 16 >= length + 6 and starts[-1] + 6 < length + 6


@pytest.mark.parametrize("overlap,margin", [(8, 0), (16, 3), (9, 2), (6, 3)])
def test_cosine_weights_sum_to_one(overlap, margin):
    ramp = edge_ramp(overlap, margin)
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-12)
    assert (ramp[:margin] == 0).all() and np.all(np.diff(ramp) >= 0)
    # regular tiling of a line: the weights of all tiles sum to one on interior pixels
    tile, length = 40, 200
    starts = list(range(0, length - tile + 1, tile - overlap))
    total = np.zeros(length)
    for s in starts:
        total[s : s + tile] += axis_weights(tile, overlap, margin, s > 0, s != starts[-1])
    end = starts[-1] + tile
    np.testing.assert_allclose(total[:end], 1.0, atol=1e-12)


def test_mosaic_of_constant_tiles_is_constant_and_nan_where_uncovered():
    m = Mosaic(2, (30, 30))
    for y0, x0 in [(0, 0), (0, 12), (12, 0), (12, 12)]:
        wy = axis_weights(16, 4, 1, y0 > 0, y0 == 0)
        wt = np.outer(wy, axis_weights(16, 4, 1, x0 > 0, x0 == 0))
        m.add(0, np.full((16, 16), 2.0), wt.astype(np.float32), y0, x0)
        m.add(1, np.full((16, 16), -1.0), wt.astype(np.float32), y0, x0)
        m.add_weight(wt.astype(np.float32), y0, x0)
    out = m.result()
    np.testing.assert_allclose(out[0, :28, :28], 2.0, rtol=1e-6)
    np.testing.assert_allclose(out[1, :28, :28], -1.0, rtol=1e-6)
    assert np.isnan(out[:, 28:, :]).all() and np.isnan(out[:, :, 28:]).all()


def test_round_up():
    assert round_up(1, 8) == 8 and round_up(16, 8) == 16 and round_up(17, 8) == 24

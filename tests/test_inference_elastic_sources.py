"""``inference/elastic_sources.py``: the fit recovers the simulator's own sources, and the
filled areas grow to where a broad source reaches."""

from __future__ import annotations

import numpy as np
import torch

from insar_denoise.inference import elastic_sources as es
from insar_denoise.synth.mogi import mogi_surface

LOS = np.array([-0.397, -0.145, 0.906])  # heading -12°, incidence 25° (the fit's set)


def _mogi_map(n: int = 96, depth: float = 20.0, at: tuple = (40.0, 55.0)) -> np.ndarray:
    """The simulator's Mogi source (an independent implementation) in the line of sight,
    mm, ``depth`` px under ``at`` (row, col)."""
    c = torch.arange(n, dtype=torch.float64)
    east, north, up = mogi_surface(
        c[None, :] - at[1] + 0.0 * c[:, None],
        -(c[:, None] - at[0]) + 0.0 * c[None, :],
        x0_m=0.0,
        y0_m=0.0,
        depth_m=depth,
        volume_change_m3=depth**2 / 20.0,  # about 12 mm of uplift above it
    )
    return 1e3 * sum(v * x.numpy() for v, x in zip(LOS, (east, north, up), strict=True))


def test_a_mogi_source_is_fitted_by_its_family_at_full_gain():
    truth = _mogi_map()
    rng = np.random.default_rng(3)
    noisy = truth + rng.normal(0.0, 0.05 * np.abs(truth).max(), truth.shape)
    peak = np.unravel_index(int(np.argmax(np.abs(truth))), truth.shape)
    starts = [(float(peak[0]) + 3, float(peak[1]) - 3)]
    mogi = es.fit_source(noisy, None, "mogi", es.seeds("mogi", starts))
    bowl = es.fit_source(noisy, None, "bowl", es.seeds("bowl", starts))
    assert mogi.rss < bowl.rss  # the right family fits better
    assert abs(mogi.geometry[2] - 20.0) < 3.0  # its depth (px)
    a, b = mogi.cumulative - mogi.cumulative.mean(), truth - truth.mean()
    assert 0.95 < float(a.ravel() @ b.ravel() / (b.ravel() @ b.ravel())) < 1.05
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


def test_the_areas_grow_to_where_a_broad_source_reaches_and_no_further():
    truth = _mogi_map(n=128, depth=24.0, at=(64.0, 64.0))
    ok = np.ones(truth.shape, bool)
    rows, cols = np.mgrid[:128, :128]
    core = np.hypot(rows - 64, cols - 64) < 36  # what a test detects: the upper part only
    grown, note = es.source_extent(truth, core, ok, None, max_share=0.75)
    size = np.abs(truth)
    reach = size >= es.EXTENT_SHARE * size.max()
    assert grown[core].all() and note["pixels_added"] == int((grown & ~core).sum())
    # the grown areas are where the source exceeds a tenth of its peak, within 5 %
    assert abs(int(grown.sum()) - int((reach | core).sum())) < 0.05 * reach.sum()
    # over the cap, the areas stay as detected
    same, capped = es.source_extent(truth, core, ok, None, max_share=0.01)
    assert np.array_equal(same, core) and capped["pixels_added"] == 0
    # so they do where the source would stand for much more than was detected
    speck = np.hypot(rows - 64, cols - 64) < 3
    same, note = es.source_extent(truth, speck, ok, None, max_share=0.75)
    assert np.array_equal(same, speck) and "skipped" in note

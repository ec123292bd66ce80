"""``benchmarks/series_source_fit.py``: its closed-form generalised least squares."""

from __future__ import annotations

import numpy as np
import torch
from benchmark_scripts import load_benchmark


def _script():
    return load_benchmark("series_source_fit")


def test_the_rank_one_design_fit_is_the_ideal_observers_least_squares():
    """The fit of ``B ⊗ s`` (dense K⁻¹, Woodbury for the nuisances) equals generalised least
    squares with ``NoiseCovariance.apply_inverse`` (conjugate gradients) column by column."""
    mod = _script()
    rng = np.random.default_rng(0)
    n_dates, side = 7, 96
    stack = np.cumsum(rng.normal(size=(n_dates, side, side)), axis=0)
    stack[0] = 0.0
    dem = np.cumsum(rng.normal(size=(side, side)), axis=0) * 10.0 + 500.0
    obj = mod.SeriesObjective(
        stack, dem, np.ones((side, side), bool), np.arange(n_dates) * 12.0, 100.0
    )
    shape = np.zeros(obj.ok.shape)
    shape[obj.ok] = rng.normal(size=int(obj.ok.sum()))
    s = shape[obj.ok]
    ks = obj.solve(shape[None])[0]
    cg = obj.cov.solve_k(torch.as_tensor(s[None])).numpy()[0]
    assert np.abs(ks - cg).max() < 1e-4 * np.abs(cg).max()
    b = obj.basis(3)
    q, beta = obj.fit(s, ks, b)
    columns = [np.outer(b[:, j], s) for j in range(b.shape[1])]
    inverse = [obj.cov.apply_inverse(torch.as_tensor(c)).numpy()[:, obj.ok] for c in columns]
    normal = np.array([[np.sum(c * i) for i in inverse] for c in columns])
    right = np.array([np.sum(obj.d * i) for i in inverse])
    reference = np.linalg.solve(normal, right)
    np.testing.assert_allclose(beta, reference, rtol=1e-4, atol=1e-6)
    assert abs(q - right @ reference) < 1e-4 * abs(q)

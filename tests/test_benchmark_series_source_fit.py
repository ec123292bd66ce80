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


def test_the_history_family_chosen_is_the_one_drawn():
    """A step, a linear and a transient history of a known shape under white noise: the BIC
    choice among the simulator's families names each, and its scale is the true history's."""
    mod = _script()
    rng = np.random.default_rng(1)
    n_dates, side = 18, 48
    times = np.arange(n_dates) * 12.0
    yy, xx = np.mgrid[:side, :side]
    bump = 6.0 * np.exp(-((yy - 20.0) ** 2 + (xx - 26.0) ** 2) / (2 * 8.0**2))
    tn = times / times[-1]
    transient = np.tanh((tn - 0.4) / (0.2 / 2.2))  # a member of the families' grid
    histories = {
        "step": (tn >= tn[11]).astype(float),
        "linear": tn,
        "transient": (transient - transient[0]) / (transient[-1] - transient[0]),
    }
    for name, h in histories.items():
        stack = h[:, None, None] * bump + rng.normal(0.0, 2.0, (n_dates, side, side))
        dem = 500.0 + rng.normal(0.0, 1.0, (side, side))
        obj = mod.SeriesObjective(stack, dem, np.ones((side, side), bool), times, 90.0)
        shape = mod.block_means(bump, mod.BLOCK)
        s, ks = shape[obj.ok], obj.solve(shape[None])[0]
        chosen, member = mod.choose_history(obj, s, ks)
        assert chosen == name
        q, (true_scale,) = obj.fit(s, ks, h[1:, None])
        std = (q / true_scale**2) ** -0.5  # the scale's own: Q = F beta^2
        assert abs(obj.fit(s, ks, member)[1][0] - true_scale) < 3.0 * std
        ends = [(c[0], c[-1]) for c in mod.family_histories(times)[name]]
        assert all(a == 0.0 and b == 1.0 for a, b in ends)

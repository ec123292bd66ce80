"""The gain target's Cramér-Rao reach (insar_denoise.evaluation.gain_bound)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insar_denoise.evaluation import gain_bound as gb
from insar_denoise.scoring.ideal_observer import scene_snr
from insar_denoise.synth import SimConfig, simulate_batch
from insar_denoise.synth.los import los_unit_vector

SIZE = 48


def _scene(source: str, seed: int, **overrides):
    overrides = {"n_dates": 6, **overrides}
    cfg = SimConfig(size=SIZE, amplitude_mm=(8.0, 8.0), **overrides).with_source(source)
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(seed))
    return cfg, batch


@pytest.mark.parametrize(
    ("source", "overrides"),
    [
        ("okada_strike_slip", {}),
        ("okada_dip_slip", {"fault_dip_deg": (20.0, 60.0)}),
        ("mogi", {}),
        ("bowl", {"bowl_width_km": (1.0, 2.0)}),
    ],
)
def test_recorded_geometry_renders_the_simulated_truth(source: str, overrides: dict) -> None:
    """The geometry the simulator records, rendered again, is its own cumulative map."""
    cfg, batch = _scene(source, 3, **overrides)
    assert batch.geometry is not None
    assert batch.source_names[int(batch.source[0])] == source
    scene = gb.source_scene(batch, cfg)
    rendered = scene.scale_mm * gb.source_map(scene, scene.params)
    peak = float(np.abs(scene.truth).max())
    assert peak == pytest.approx(8.0, rel=1e-4)
    np.testing.assert_allclose(rendered, scene.truth, atol=2e-3 * peak)
    # the unit map's own peak is the one the simulator normalised by
    unit_peak = float(np.abs(gb.source_map(scene, scene.params)).max())
    assert unit_peak == pytest.approx(float(batch.geometry.peak[0]), rel=1e-3)


def test_batch_geometry_moves_with_the_batch() -> None:
    _, batch = _scene("mogi", 4)
    moved = batch.to("cpu")
    assert moved.geometry is not batch.geometry
    torch.testing.assert_close(moved.geometry.mogi_depth_m, batch.geometry.mogi_depth_m)


def test_bowl_derivative_matches_the_analytic_one() -> None:
    """d(LOS)/d(x0) of a Gaussian bowl by central differences against the closed form."""
    cfg = SimConfig(
        size=SIZE, n_dates=6, amplitude_mm=(8.0, 8.0), bowl_width_km=(1.5, 2.0)
    ).with_source("bowl")
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(2))
    scene = gb.source_scene(batch, cfg)
    names, d = gb.jacobian(scene)
    p = scene.params
    c = (np.arange(SIZE) - (SIZE - 1) / 2.0) * cfg.pixel_spacing_m
    north, east = np.meshgrid(-c, c, indexing="ij")
    sigma = p["bowl_fwhm_m"] / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    r2 = (east - p["x0_m"]) ** 2 + (north - p["y0_m"]) ** 2
    up_los = float(los_unit_vector(p["incidence_deg"], p["heading_deg"])[2])
    # LOS = -up_los exp(-r²/2σ²); d/dx0 = -up_los exp(...) (east - x0) / σ²
    analytic = -up_los * np.exp(-0.5 * r2 / sigma**2) * (east - p["x0_m"]) / sigma**2
    got = d[names.index("x0_m")] / scene.scale_mm
    np.testing.assert_allclose(got, analytic, atol=1e-6 * np.abs(analytic).max())


def test_amplitude_information_is_the_ideal_observers_snr() -> None:
    """J's amplitude entry is sᵀC⁻¹s / scale²: the ideal observer's SNR, and its gain std
    with every geometry parameter known is 1 / SNR."""
    cfg, batch = _scene("mogi", 6, turbulence_std_mm=(2.0, 2.0))
    scene = gb.source_scene(batch, cfg)
    names, d = gb.jacobian(scene)
    j = gb.fisher_information(scene, batch.noise, d)
    snr = scene_snr(batch.deformation[0], batch.valid[0], batch.dem[0], batch.noise).snr
    assert math.sqrt(j[-1, -1]) * scene.scale_mm == pytest.approx(snr, rel=1e-4)
    only_amplitude = np.zeros_like(j)
    only_amplitude[-1, -1] = 1.0 / j[-1, -1]
    assert gb.gain_std(scene, names, d, only_amplitude) == pytest.approx(1.0 / snr, rel=1e-6)
    # with the geometry unknown the bound can only be wider
    full = np.linalg.inv(j)
    assert gb.gain_std(scene, names, d, full) >= 1.0 / snr * (1 - 1e-9)
    # a prior's information narrows it again
    prior = gb.prior_precision(names, cfg)
    assert gb.gain_std(scene, names, d, np.linalg.inv(j + prior)) <= gb.gain_std(
        scene, names, d, full
    ) * (1 + 1e-9)


def test_reach_of_a_known_shape_follows_the_normal_law() -> None:
    """With only the amplitude uncertain (std 10 % of it) the gain is N(1, 0.1): about 68 %
    of draws land in 0.9-1.1 and r stays 1."""
    cfg, batch = _scene("mogi", 7)
    scene = gb.source_scene(batch, cfg)
    names, d = gb.jacobian(scene)
    cov = np.zeros((len(names), len(names)))
    cov[-1, -1] = (0.1 * scene.scale_mm) ** 2
    out = gb.reach(scene, d, cov, draws=2000, seed=1)
    assert out["inside"] == pytest.approx(0.683, abs=0.03)
    assert out["r_q05"] == pytest.approx(1.0, abs=1e-9)
    assert out["gain_q50"] == pytest.approx(1.0, abs=0.03)


def test_source_scene_refuses_a_scene_without_source() -> None:
    cfg = SimConfig(size=SIZE, n_dates=6).with_source("none")
    batch = simulate_batch(cfg, 1, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="no deformation source"):
        gb.source_scene(batch, cfg)


def test_a_scene_cut_from_the_grid_renders_the_cut() -> None:
    """Injections into a real stack are cut from the simulator's square grid (its top-left
    corner, as ``benchmarks/real_injection.py`` cuts them): the bound renders the same cut."""
    cfg, batch = _scene("okada_strike_slip", 5, fault_top_depth_km=(0.0, 0.3))
    whole = gb.source_scene(batch, cfg)
    cut = gb.SourceScene(
        source_name=whole.source_name,
        params=whole.params,
        scale_mm=whole.scale_mm,
        history=whole.history,
        truth=whole.truth[:, :30],
        valid=whole.valid[:, :30],
        dem=whole.dem[:, :30],
        size=whole.size,
        pixel_spacing_m=whole.pixel_spacing_m,
        poisson=whole.poisson,
    )
    rendered = cut.scale_mm * gb.source_map(cut, cut.params)
    assert rendered.shape == (SIZE, 30)
    np.testing.assert_allclose(rendered, cut.truth, atol=2e-3 * np.abs(whole.truth).max())
    names, d = gb.jacobian(cut)
    assert d.shape == (len(names), SIZE, 30)


def test_a_transient_history_is_read_back_and_its_derivatives_are_the_closed_form() -> None:
    """The simulator's transient, refitted from the scene's noise-free history, renders that
    history; the centre's derivative equals the renormalised tanh's closed form."""
    cfg, batch = _scene("mogi", 5, n_dates=12, history_probs={"transient": 1.0})
    scene = gb.source_scene(batch, cfg)
    assert scene.history_name == "transient"
    centre, tau = gb.transient_parameters(scene)
    np.testing.assert_allclose(
        gb.transient_history(scene.times_days, centre, tau), scene.history, atol=2e-5
    )
    names, dh = gb.history_derivatives(scene)
    assert names == gb.HISTORY_PARAMETERS and dh.shape == (2, 12)
    t = scene.times_days
    tn = (t - t[0]) / (t[-1] - t[0])
    s = np.tanh((tn - centre) / tau)
    ds = -(1.0 - s**2) / tau  # d tanh((t - c) / tau) / dc
    h = (s - s[0]) / (s[-1] - s[0])
    expected = (ds - ds[0] - h * (ds[-1] - ds[0])) / (s[-1] - s[0])
    np.testing.assert_allclose(dh[0], expected, rtol=1e-5, atol=1e-6)
    # a step has no continuous history parameter
    cfg, batch = _scene("mogi", 5, n_dates=12, history_probs={"step": 1.0})
    assert gb.history_derivatives(gb.source_scene(batch, cfg))[0] == ()


def test_an_unknown_transient_only_loosens_the_amplitude() -> None:
    """Estimating the transient's centre and duration too can only raise the amplitude's
    Cramér-Rao variance, and the history's own terms are its series' inner products."""
    cfg, batch = _scene("mogi", 6, n_dates=12, history_probs={"transient": 1.0})
    scene = gb.source_scene(batch, cfg)
    names, d = gb.jacobian(scene)
    _, dh = gb.history_derivatives(scene)
    given = gb.fisher_information(scene, batch.noise, d)
    free = gb.fisher_information(scene, batch.noise, d, history=dh)
    p = len(names)
    np.testing.assert_allclose(free[:p, :p], given, rtol=1e-9)
    amp = names.index("scale_mm")
    assert np.linalg.inv(free)[amp, amp] >= np.linalg.inv(given)[amp, amp] * (1.0 - 1e-9)
    assert free[p, p] > 0.0 and free[p + 1, p + 1] > 0.0


def test_the_covariance_of_parameters_in_mixed_units_is_their_inverse() -> None:
    """A well-posed Fisher matrix whose parameters span 1e-4 to 1e4 in units: the scaled
    inverse is the inverse (the plain pseudo-inverse's cut-off drops a direction)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(5, 5))
    base = a @ a.T + 5.0 * np.eye(5)
    units = np.array([1e-4, 1e-2, 1.0, 1e2, 1e4])
    fisher = base / np.outer(units, units)  # the same information in other units
    cov = gb.parameter_covariance(fisher)
    expected = np.linalg.inv(base) * np.outer(units, units)
    np.testing.assert_allclose(cov, expected, rtol=1e-8)
    assert not np.allclose(np.linalg.pinv(fisher), expected, rtol=1e-3)

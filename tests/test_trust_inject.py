"""Injection tests (insar_denoise.trust.inject and ``insar-denoise inject``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.io.scene import scene_dataset, write_scene
from insar_denoise.models.registry import build_untrained, export_model
from insar_denoise.synth import SimConfig, simulate_scene
from insar_denoise.trust.inject import injected_signals, run_injection, write_injection_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUIET = {
    "turbulence": False,
    "stratified": False,
    "orbital_ramps": False,
    "offsets": False,
    "holes_prob": 0.0,
    "unwrap_prob": 0.0,
}


def _scene(noise_free: bool, n_dates: int = 10) -> dict:
    extra = QUIET if noise_free else {"turbulence_std_mm": (4.0, 4.0), "unwrap_prob": 0.0}
    cfg = SimConfig(size=64, n_dates=n_dates, **extra)
    return simulate_scene(cfg, 2, source="none")


@pytest.fixture(scope="module")
def quiet_ds():
    return scene_dataset(_scene(True))


@pytest.fixture(scope="module")
def noisy_ds():
    return scene_dataset(_scene(False))


def test_injected_signals_have_unit_amplitude_and_known_histories():
    days = np.array([0.0, 6.0, 30.0, 31.0, 90.0])
    series, sources, histories = injected_signals(6, 24, days, 90.0, seed=3)
    assert series.shape == (6, 5, 24, 24)
    np.testing.assert_allclose(np.abs(series[:, -1]).max(axis=(1, 2)), 1.0, rtol=1e-5)
    assert np.all(series[:, 0] == 0)
    assert set(sources) <= {"okada_strike_slip", "okada_dip_slip", "okada_tensile", "mogi"}
    assert set(histories) <= {"step", "linear", "transient"}
    for s, h in zip(series, histories, strict=True):
        peak = np.unravel_index(np.abs(s[-1]).argmax(), s[-1].shape)
        frac = s[:, peak[0], peak[1]] / s[-1][peak]
        if h == "linear":  # linear in real time, not in date index
            np.testing.assert_allclose(frac, days / days[-1], atol=1e-5)


def test_noise_free_stack_recovers_everything(quiet_ds, tmp_path: Path):
    res = run_injection(quiet_ds, method="raw", amplitudes=(1, 2, 5), n=8, seed=0)
    corr = np.array([r["corr"] for r in res.records])
    gain = np.array([r["gain"] for r in res.records])
    np.testing.assert_allclose(corr, 1.0, atol=1e-6)
    np.testing.assert_allclose(gain, 1.0, atol=1e-5)
    assert res.threshold_mm == 1.0
    assert res.grid == (1, 1) and res.tile_threshold_mm.tolist() == [[1.0]]
    paths = write_injection_report(res, tmp_path / "inj")
    for name in ("inject.json", "report.md", "amplitude.png", "threshold_map.png", "examples.png"):
        assert (tmp_path / "inj" / name).is_file()
    assert paths["threshold_map"].read_bytes()[:8] == PNG_MAGIC
    data = json.loads(paths["inject"].read_text())
    assert data["threshold_mm"] == 1.0 and len(data["records"]) == 24
    assert "1 mm" in paths["report"].read_text()


def test_noisy_stack_detection_grows_with_amplitude(noisy_ds):
    res = run_injection(noisy_ds, method="raw", amplitudes=(1, 30), n=6, seed=1, crop_px=32)
    small, large = res.per_amplitude
    assert large["corr_median"] > small["corr_median"] + 0.3
    assert small["detected_frac"] < 0.5
    # raw is linear: the stack's own noise cancels in output(injected) - output(original)
    assert small["corr_diff_median"] == pytest.approx(1.0, abs=1e-6)
    assert res.grid == (2, 2) and res.tile_threshold_mm.shape == (2, 2)


def test_deterministic_by_seed(noisy_ds):
    kw = {"method": "best", "amplitudes": (2, 10), "n": 4, "crop_px": 32}
    a = run_injection(noisy_ds, seed=5, **kw)
    b = run_injection(noisy_ds, seed=5, **kw)
    c = run_injection(noisy_ds, seed=6, **kw)
    assert a.to_dict() == b.to_dict()
    assert [r["row"] for r in a.records] != [r["row"] for r in c.records] or [
        r["source"] for r in a.records
    ] != [r["source"] for r in c.records]


def test_tiny_untrained_model_via_cli(tmp_path: Path):
    scene = _scene(False, n_dates=10)
    stack = tmp_path / "stack"
    write_scene(scene, stack)
    net = build_untrained(window=9, channels=(2, 4, 4, 4))
    meta = {**net.insar_metadata, "default_overlap": 8}  # small tiles: a fast check
    model = export_model(net, meta, tmp_path / "tiny.pt")
    files = sorted(str(p) for p in stack.glob("disp_*.tif"))
    args = ["inject", *files, "--dem", str(stack / "dem.tif"), "-o", str(tmp_path / "out")]
    # 5 places x 2 amplitudes: mosaics with unused cells (padding must not spoil the tiles)
    args += ["--model", str(model), "--amplitudes", "2,10", "--n", "5", "--crop", "32"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "detection threshold (model)" in result.output
    data = json.loads((tmp_path / "out" / "inject.json").read_text())
    check = data["ideal_observer"]["model_check"]
    assert f"scatter {check['z_rms']:.2f}x their modelled std over 5 places" in result.output
    assert data["method"] == "model" and len(data["records"]) == 10
    assert all(-1.0 <= r["corr"] <= 1.0 for r in data["records"])
    assert all(r["gain"] is not None for r in data["records"])
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "already exists" in again.output


def test_inject_threshold_within_one_step_of_evaluate_for_the_same_noise(monkeypatch):
    """Issue 13's check, with the linear-rate stack (fast): both paths find the same limit.

    ``evaluate`` draws scenes of the low-noise level (3 mm turbulence per date) with sources;
    ``inject`` adds sources to a stack of 16 no-deformation scenes of that level.
    """
    from insar_denoise.evaluation import benchmark as bm
    from insar_denoise.evaluation.runner import run_benchmark
    from insar_denoise.scoring import benchmark_scenes as scn

    amps = (5.0, 10.0, 20.0, 40.0)
    monkeypatch.setattr(scn, "AMPLITUDES_MM", (0.0, *amps))
    evaluated = run_benchmark(None, n_per_amplitude=24, size=64, seed=3, n_tune=1)  # no sigma
    expected = evaluated.metrics["detection_threshold_mm"]["low"]["stack"]
    ds = scene_dataset(bm.noise_mosaic("low", 4, seed=11, size=64, n_dates=9))
    res = run_injection(ds, method="stack", amplitudes=amps, n=16, seed=0, crop_px=64)
    assert expected is not None and res.threshold_mm is not None
    assert expected > amps[0]  # a threshold inside the range, not at its edge
    assert abs(amps.index(expected) - amps.index(res.threshold_mm)) <= 1


def test_injection_reports_the_ideal_observer(noisy_ds, tmp_path: Path):
    res = run_injection(noisy_ds, method="raw", amplitudes=(2, 20), n=4, seed=0, crop_px=32)
    paths = write_injection_report(res, tmp_path / "ideal")
    data = json.loads(paths["inject"].read_text())["ideal_observer"]
    assert 2.0 < data["noise"]["beta"] < 5.0
    per_place = data["per_place_5sigma_mm"]
    assert len(per_place) == 4 and all(np.isfinite(v) and v > 0 for v in per_place)
    sources = {r["source"] for r in res.records}
    assert set(data["per_source"]) == sources
    for row in data["per_source"].values():
        assert row["median_5sigma_mm"] > 0 and "empirical_threshold_mm" in row
    report = paths["report"].read_text()
    assert "Ideal observer: the amplitude" in report
    # a simulated stack of the model's own kind: its matched filters scatter as modelled
    check = data["model_check"]
    assert check["n"] == 4 and check["holds"] and 0.2 < check["z_rms"] < 2.0, check
    assert "Model check:" in report and "the model holds" in report
    # the SNR is linear in amplitude: the ideal 5-sigma amplitude of a stack with twice the
    # noise is twice as large
    loud = noisy_ds.copy()
    loud["displacement"] = 2 * noisy_ds["displacement"]
    res2 = run_injection(loud, method="raw", amplitudes=(2, 20), n=4, seed=0, crop_px=32)
    np.testing.assert_allclose(
        res2.ideal["per_place_5sigma_mm"], 2 * np.array(per_place), rtol=1e-3
    )


def test_whole_stack_model_recovers_injections_up_to_a_constant(quiet_ds, monkeypatch):
    """The untrained whole-stack model (a weighted piecewise-linear fit per pixel, full gain):
    on a noise-free stack the injected maps come back whole (scored up to a constant, the
    model's contract), and each crop keeps half the receptive field of context. The 24 px
    crops take the linear small-scene path (no padding to the gate, whose detections are not
    linear in the input): the harness, not the gate, is under test."""
    from insar_denoise.inference import stack_path
    from insar_denoise.models.registry import stack_metadata

    monkeypatch.setattr(stack_path, "PAD_SMALL", False)
    from insar_denoise.models.stack_denoiser import StackDenoiser, receptive_field_px

    net = StackDenoiser().eval()
    meta = stack_metadata(net, 32)
    net.insar_metadata = meta
    res = run_injection(quiet_ds, net, amplitudes=(2, 10), n=4, seed=0, crop_px=24)
    assert res.context_px == max(meta["default_overlap"], -(-receptive_field_px() // 2))
    lin = [r for r in res.records if r["history"] == "linear"]
    assert lin, [r["history"] for r in res.records]
    # the 4-segment fit is exact for linear histories; steps and transients come out close
    np.testing.assert_allclose([r["corr"] for r in lin], 1.0, atol=1e-4)
    np.testing.assert_allclose([r["gain"] for r in lin], 1.0, atol=1e-3)
    assert min(r["corr"] for r in res.records) > 0.9


def test_ideal_model_check_flags_a_model_that_misses_the_stack_s_date_covariance(caplog):
    """On the bundled Envisat stack, the injected shapes' matched filters on the stack itself
    scatter near 1 under the estimated covariance between dates, and about 10x under the
    shared-reference model (dates independent around the first), which is flagged."""
    import dataclasses
    import logging

    from insar_denoise.inference.engine import times_in_days
    from insar_denoise.io.layouts import load_inputs
    from insar_denoise.trust import ideal
    from insar_denoise.trust.measures import pixel_spacing_m

    data = Path(__file__).parent / "data" / "real_envisat_nsw"
    ifgs = sorted(str(f) for f in (data / "interferograms").glob("*.tif"))
    ds = load_inputs(ifgs, dem=data / "dem.tif")[0].load()
    days = times_in_days(ds["time"].values)
    disp = ds["displacement"].transpose("time", "y", "x").values.astype(np.float64)
    dem = np.nan_to_num(ds["dem"].values.astype(np.float64))
    spacing = pixel_spacing_m(ds)
    series, sources, _ = injected_signals(12, 40, days, spacing, seed=0)
    rng = np.random.default_rng(0)
    places = [(k, int(rng.integers(0, 33)), int(rng.integers(0, 8))) for k in range(12)]
    fitted = ideal.ideal_thresholds(disp, dem, spacing, places, series, sources)
    good = fitted["model_check"]
    assert good["holds"] and good["z_rms"] < 2.0, good

    estimate = ideal.estimate_noise_params

    def shared_reference(*args, **kwargs):
        return dataclasses.replace(estimate(*args, **kwargs), date_cov_mm2=None)

    with pytest.MonkeyPatch.context() as mp, caplog.at_level(logging.WARNING):
        mp.setattr(ideal, "estimate_noise_params", shared_reference)
        bad = ideal.ideal_thresholds(disp, dem, spacing, places, series, sources)
    assert not bad["model_check"]["holds"] and bad["model_check"]["z_rms"] > 5.0, bad
    assert "optimistic" in caplog.text
    # the shared-reference model cannot put a date's increment below the first date's std;
    # the estimated covariance keeps the quiet dates at their own spread
    assert min(fitted["noise"]["increment_std_mm"]) < 0.8 * min(bad["noise"]["increment_std_mm"])

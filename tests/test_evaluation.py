"""``insar_denoise.evaluation``: metric functions, the benchmark design, the report files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from insar_denoise.evaluation import benchmark as bm
from insar_denoise.evaluation import results_table, run_benchmark, write_report
from insar_denoise.evaluation.report_common import json_ready
from insar_denoise.models import build_untrained, export_model, load_model
from insar_denoise.models.normalization import deplane
from insar_denoise.scoring import benchmark_scenes as scn
from insar_denoise.scoring import metrics as mt


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    scripted = build_untrained(window=5, channels=(4, 8, 8, 8))
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    export_model(scripted, scripted.insar_metadata, path)
    return load_model(path)


@pytest.fixture(scope="module")
def tiny_eval(tiny_model):
    return run_benchmark(tiny_model, n_per_amplitude=4, seed=3, size=32, n_tune=1)


# --- metric functions against hand-computed values ---------------------------------------
def test_rmse_hand_computed() -> None:
    est = np.array([[1.0, 2.0], [3.0, np.nan]])
    truth = np.array([[1.0, 0.0], [0.0, 5.0]])
    # finite pairs: errors 0, 2, 3 -> sqrt(13 / 3)
    assert mt.rmse(est, truth) == pytest.approx(math.sqrt(13 / 3))
    mask = np.array([[True, True], [False, False]])
    assert mt.rmse(est, truth, mask) == pytest.approx(math.sqrt(2.0))
    assert math.isnan(mt.rmse(est, truth, np.zeros((2, 2), bool)))


def test_pearson_hand_computed() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert mt.pearson(a, 3 * a - 7) == pytest.approx(1.0)
    assert mt.pearson(a, -a) == pytest.approx(-1.0)
    # centred (-1.5, -0.5, 0.5, 1.5) and (1, -1, -1, 1): sum of products 0 -> r = 0
    assert mt.pearson(a, np.array([1.0, -1.0, -1.0, 1.0])) == pytest.approx(0.0, abs=1e-12)
    # centred (-1, 0, 1) and (-1, 1, 0): sum of products 1, sums of squares 2 and 2 -> 0.5
    assert mt.pearson(np.array([1.0, 2, 3]), np.array([1.0, 3, 2])) == pytest.approx(0.5)
    assert math.isnan(mt.pearson(a, np.full(4, 2.0)))


def test_snr_gain_and_false_positive_level() -> None:
    assert mt.snr_gain_db(10.0, 1.0) == pytest.approx(20.0)
    assert mt.snr_gain_db(2.0, 2.0) == 0.0
    assert math.isnan(mt.snr_gain_db(1.0, 0.0))
    values = np.concatenate([-np.arange(101.0), [np.nan]])  # |v| = 0..100
    assert mt.false_positive_level(values) == pytest.approx(99.0)
    assert mt.false_positive_level(values, 50) == pytest.approx(50.0)


def test_detection_threshold_on_a_crafted_table() -> None:
    amp = np.repeat([0.0, 1.0, 2.0, 3.0, 5.0], 5)
    corr = np.array(
        [0.0] * 5  # no deformation: ignored
        + [0.9, 0.9, 0.9, 0.9, 0.1]  # 1 mm: 80 % >= 0.7, but 2 mm fails below
        + [0.9, 0.9, 0.9, np.nan, 0.1]  # 2 mm: 60 % -> not detected
        + [0.7, 0.8, 0.9, 0.95, 0.2]  # 3 mm: 80 % (0.7 counts)
        + [0.9] * 5  # 5 mm: 100 %
    )
    assert mt.detection_threshold(amp, corr) == 3.0
    assert mt.detection_threshold(amp, corr, frac=0.5) == 1.0
    assert mt.detection_threshold(amp, np.where(amp == 5, 0.0, corr)) is None
    assert mt.detected_fraction(np.array([0.7, np.nan, 0.69, 1.0])) == 0.5


def test_summarize_pools_pixels_and_gains() -> None:
    truth = np.zeros((2, 2, 2))
    est = {"raw": np.full((2, 2, 2), 2.0), "half": np.full((2, 2, 2), 1.0)}
    mask = np.ones((2, 2, 2), bool)
    mask[1, 1] = False  # scene 1 has 2 pixels, scene 0 has 4
    est["half"][1] = 4.0
    stats = {k: mt.scene_stats(v, truth, mask) for k, v in est.items()}
    row = mt.summarize(stats, np.array([True, True]))
    assert row["n"] == 2
    assert row["rmse_mm"]["raw"] == pytest.approx(2.0)
    assert row["rmse_mm"]["half"] == pytest.approx(math.sqrt((4 * 1 + 2 * 16) / 6))
    assert row["snr_gain_db"]["raw"] == 0.0
    assert row["snr_gain_db"]["half"] == pytest.approx(20 * math.log10(2.0 / math.sqrt(6)))


# --- benchmark design ---------------------------------------------------------------------
def test_strata_design_and_seeds() -> None:
    cells = scn.strata()
    n_deformed = len(scn.SOURCES) * len(scn.DEMS) * len(scn.NOISE_STD_MM)
    assert len(cells) == (len(scn.AMPLITUDES_MM) - 1) * n_deformed + 2 * len(scn.DEMS)
    counts = scn.allocate(13)
    for amp in scn.AMPLITUDES_MM:
        assert sum(n for c, n in counts if c.amplitude_mm == amp) == 13
    keys = {c.key for c in cells}
    assert len(keys) == len(cells)
    seeds = {scn.stratum_seed(0, "in", k) for k in keys}
    assert len(seeds) == len(keys)
    assert scn.stratum_seed(0, "in", cells[3].key) == scn.stratum_seed(0, "in", cells[3].key)
    assert scn.stratum_seed(1, "in", cells[3].key) != scn.stratum_seed(0, "in", cells[3].key)


def test_stratum_config_fixes_amplitude_source_noise_dem() -> None:
    cell = scn.Stratum(5.0, "high", "mogi", "synthetic")
    cfg = cell.config(scn.base_config(32, 5))
    batch = bm.simulate_batch(cfg, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(batch.amplitude_mm, torch.full((3,), 5.0), rtol=1e-4)
    assert all(scn.SOURCES[2] == batch.source_names[int(s)] for s in batch.source)
    assert cfg.turbulence_std_mm == (10.0, 10.0) and cfg.real_dem_prob == 0.0
    none = scn.Stratum(0.0, "low", "none", "real").config(scn.base_config(32, 5))
    batch = bm.simulate_batch(none, 2, generator=torch.Generator().manual_seed(0))
    assert float(batch.cumulative.abs().max()) == 0.0


# --- the evaluation -----------------------------------------------------------------------
def test_zero_method_rmse_is_rms_of_target(tiny_model, tiny_eval) -> None:
    # independent reference: regenerate the scenes and take the RMS of the de-planed truth
    scenes = scn.generate(4, 3, size=32, n_dates=5)
    mask = scenes.valid & torch.isfinite(scenes.displacement).all(1)
    target = deplane(scenes.cumulative, mask).numpy()[mask.numpy()]
    rms = float(np.sqrt(np.mean(target.astype(np.float64) ** 2)))
    assert tiny_eval.metrics["groups"]["all"]["all"]["rmse_mm"]["zero"] == pytest.approx(
        rms, rel=1e-5
    )


def test_metrics_structure(tiny_eval) -> None:
    m = tiny_eval.metrics
    assert m["methods"] == list(scn.METHODS)
    assert m["n_scenes"] == 4 * len(scn.AMPLITUDES_MM)
    assert m["window"] == 5 and m["model"]["id"].startswith("insar-denoise-")
    assert set(m["groups"]["amplitude"]) == {f"{a:g}" for a in scn.AMPLITUDES_MM}
    cells = m["groups"]["stratum"]
    assert set(cells) == set(m["design"]["strata"])
    assert all(cells[k]["n"] == n for k, n in m["design"]["strata"].items())
    assert m["sigma_tuning"]["sigma_px"]["filter"] in scn.SIGMA_CANDIDATES_PX
    for row in m["groups"]["amplitude"].values():
        assert row["snr_gain_db"]["raw"] == 0.0
    assert m["false_positive_p99_mm"]["all"]["zero"] == 0.0
    # the raw map of no-deformation scenes is pure noise: its p99 is well above 0
    assert m["false_positive_p99_mm"]["all"]["raw"] > 0.5


def test_report_files_and_table(tiny_eval, tmp_path) -> None:
    paths = write_report(tiny_eval, tmp_path / "rep")
    names = {p.name for p in paths.values()}
    assert names == {
        "metrics.json",
        "report.md",
        "examples.png",
        "rmse_vs_amplitude.png",
        "corr_vs_amplitude.png",
    }
    for p in paths.values():
        assert p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert loaded == json_ready(tiny_eval.metrics)
    table = results_table(loaded)
    for method in scn.METHODS:
        assert f"| {method} |" in table
    assert "## Summary" in (tmp_path / "rep" / "report.md").read_text()


def test_series_rmse_of_the_zero_series_is_the_rms_of_the_truth():
    from insar_denoise.baselines import raw_cumulative

    scenes = scn.generate(2, 0, size=16, n_dates=9)
    raw = raw_cumulative(scenes.displacement, time_axis=1)
    est = {"zero": torch.zeros_like(scenes.cumulative), "raw": raw}
    out = bm.series_rmse(scenes, est, {})
    sel = scenes.amplitude_mm > 0
    mask = (scenes.valid & torch.isfinite(est["raw"]))[sel]
    for k in (1, 4, 8):
        truth = deplane(scenes.deformation[sel][:, k].float(), mask)
        expected = float(torch.sqrt((truth[mask] ** 2).mean()))
        assert out["zero"]["per_date"][k] == pytest.approx(expected, rel=1e-4)
    assert out["zero"]["per_date"][0] == 0.0 and out["raw"]["all"] > out["zero"]["all"]


@pytest.mark.parametrize("name", ["default", "window_v1"])
def test_evaluate_stack_scores_each_model_kind_on_its_own_terms(name: str) -> None:
    """Whole-stack models are compared up to a constant, window models de-planed: the zero
    map's RMSE is the std of the truth, or the RMS of its least-squares-plane residual."""
    from insar_denoise.evaluation.runner import evaluate_stack
    from insar_denoise.io.scene import scene_dataset
    from insar_denoise.synth import SimConfig, simulate_scene

    config = SimConfig(size=48, n_dates=10, holes_prob=0.0, unwrap_prob=0.0)
    scene = simulate_scene(config, 3, source="mogi", amplitude_mm=20.0)
    ds = scene_dataset(scene)[["displacement", "dem"]]
    model = load_model(name)
    ev = evaluate_stack(ds, scene["cumulative"], model)
    m = ev.metrics
    truth = np.asarray(scene["cumulative"], np.float64)
    assert m["n_pixels"] == truth.size  # no holes: every pixel compared
    yy, xx = np.mgrid[: truth.shape[0], : truth.shape[1]]
    if model.metadata.get("kind") == "stack":
        expected, aligned = float(np.std(truth)), "mean removed"
    else:
        design = np.column_stack([np.ones(truth.size), yy.ravel(), xx.ravel()])
        coef, *_ = np.linalg.lstsq(design, truth.ravel(), rcond=None)
        expected = float(np.sqrt(np.mean((truth.ravel() - design @ coef) ** 2)))
        aligned = "plane removed"
    assert m["aligned"] == aligned
    assert m["rmse_mm"]["zero"] == pytest.approx(expected, rel=1e-4)
    assert set(m["rmse_mm"]) >= {"model", "zero", "raw", "best"}

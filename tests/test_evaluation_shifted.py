"""The ``shifted`` benchmark split: its configuration, determinism, scenes and ``--split both``."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from insar_denoise.cli.main import main
from insar_denoise.evaluation import results_table
from insar_denoise.models import build_untrained, export_model
from insar_denoise.scoring import benchmark_scenes as scn
from insar_denoise.synth import SOURCE_NAMES, SimConfig, simulate_batch

ROOT = Path(__file__).resolve().parents[1]


def _training_config(size: int = 64, n_dates: int = 9) -> SimConfig:
    """The training distribution as ``experiments/training/default.yaml`` builds it (trainer.py)."""
    cfg = yaml.safe_load((ROOT / "experiments" / "training" / "default.yaml").read_text())
    return SimConfig.from_dict({**cfg["sim"], "n_dates": n_dates, "size": size})


def _unfixed(cfg: SimConfig) -> SimConfig:
    """``cfg`` without the fields every stratum fixes (source and amplitude)."""
    return dataclasses.replace(cfg, source_probs={"mogi": 1.0}, amplitude_mm=(1.0, 1.0))


def test_in_split_is_the_training_distribution() -> None:
    # every stratum fixes source and amplitude; everything else is the training prior
    assert scn.split_config("in") == {}
    assert _unfixed(scn.base_config(64, 9, "in")) == _unfixed(_training_config())
    assert _unfixed(scn.base_config(32, 5)) == _unfixed(_training_config(32, 5))
    cell = scn.Stratum(5.0, "low", "mogi", "real").config(scn.base_config(64, 9))
    assert cell.amplitude_mm == (5.0, 5.0) and cell.source_probs["mogi"] == 1.0


def test_shifted_split_differs_from_training_in_each_stated_way() -> None:
    train = _unfixed(_training_config())  # source and amplitude: fixed by every stratum
    shifted = _unfixed(scn.base_config(64, 9, "shifted"))
    overrides = scn.split_config("shifted")
    # turbulence: only von Karman with exponential covariance, lengths below training's
    assert train.powerlaw_prob == 0.5 and shifted.powerlaw_prob == 0.0
    assert shifted.vonkarman_hurst == (0.5, 0.5)
    assert shifted.correlation_length_km[1] < train.correlation_length_km[0]
    # strongly nonlinear stratified delay: quadratic term > 3x training's on both sides
    assert shifted.stratified_quad_mm_per_km2[0] <= 3 * train.stratified_quad_mm_per_km2[0]
    assert shifted.stratified_quad_mm_per_km2[1] >= 3 * train.stratified_quad_mm_per_km2[1]
    # linear coefficient drawn per date in a symmetric range: changes sign between dates
    assert shifted.stratified_mm_per_km[0] < 0 < shifted.stratified_mm_per_km[1]
    # sources outside the training depths: deeper faults, shallower Mogi sources
    assert shifted.fault_top_depth_km[0] >= train.fault_top_depth_km[1]
    assert shifted.mogi_depth_km[1] <= train.mogi_depth_km[0]
    # larger holes in every scene, an unwrapping error in every scene, over larger regions
    assert shifted.holes_prob == 1.0 > train.holes_prob
    assert shifted.holes_fraction[0] >= train.holes_fraction[1]
    assert shifted.unwrap_prob == 1.0 > train.unwrap_prob
    assert shifted.unwrap_radius_frac[0] >= train.unwrap_radius_frac[1]
    # DEMs: rougher, higher fractal DEMs; real DEM patches with more relief
    assert shifted.dem_beta[1] < train.dem_beta[0]
    assert shifted.dem_relief_m[0] >= train.dem_relief_m[1]
    assert shifted.real_dem_relief_scale[0] >= train.real_dem_relief_scale[1]
    # nothing else changes, and every listed override does change something
    for f in dataclasses.fields(SimConfig):
        same = getattr(shifted, f.name) == getattr(train, f.name)
        assert same == (f.name not in overrides), f.name
    # the strata keep their fixed amplitude / noise / source / DEM kind in the shifted split
    cell = scn.Stratum(5.0, "high", "mogi", "synthetic")
    cfg = cell.config(scn.base_config(64, 9, "shifted"))
    assert cfg.amplitude_mm == (5.0, 5.0) and cfg.turbulence_std_mm == (10.0, 10.0)
    weights = dict(zip(SOURCE_NAMES, cfg.source_weights(), strict=True))
    assert cfg.real_dem_prob == 0.0 and weights["mogi"] == 1.0 and sum(weights.values()) == 1.0
    assert cfg.mogi_depth_km == shifted.mogi_depth_km
    with pytest.raises(ValueError, match="unknown split"):
        scn.split_config("ood")
    with pytest.raises(ValueError, match="unknown split"):
        scn.generate(1, 0, size=16, n_dates=3, split="ood")


def _equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.equal(torch.isnan(a), torch.isnan(b))) and bool(
        torch.equal(torch.nan_to_num(a), torch.nan_to_num(b))
    )


@pytest.fixture(scope="module")
def scenes() -> dict[str, scn.Scenes]:
    return {s: scn.generate(12, 4, size=32, n_dates=5, split=s) for s in scn.SPLITS}


def test_shifted_split_is_deterministic_by_seed(scenes) -> None:
    again = scn.generate(12, 4, size=32, n_dates=5, split="shifted")
    assert _equal(again.displacement, scenes["shifted"].displacement)
    assert torch.equal(again.dem, scenes["shifted"].dem)
    assert torch.equal(again.cumulative, scenes["shifted"].cumulative)
    other = scn.generate(12, 5, size=32, n_dates=5, split="shifted")
    assert not _equal(other.displacement, scenes["shifted"].displacement)
    # same seed, other split: other scenes, same strata
    assert not _equal(scenes["in"].displacement, scenes["shifted"].displacement)
    assert list(scenes["in"].source) == list(scenes["shifted"].source)
    assert list(scenes["in"].amplitude_mm) == list(scenes["shifted"].amplitude_mm)


def _quadratic_stratified_mm(sc: scn.Scenes) -> np.ndarray:
    """Per scene and date: amplitude (mm) of the z^2 term of a least-squares fit of the
    displacement on (1, east, north, z, z^2) over the valid pixels (z: km above the minimum)."""
    s, t, n, _ = sc.displacement.shape
    c = np.arange(n, dtype=np.float64) / n
    yy, xx = np.meshgrid(c, c, indexing="ij")
    out = []
    for i in range(s):
        z = sc.dem[i].double().numpy()
        z = (z - z.min()) / 1000.0
        for d in range(1, t):
            disp = sc.displacement[i, d].double().numpy()
            ok = np.isfinite(disp)
            a = np.stack([np.ones(ok.sum()), xx[ok], yy[ok], z[ok], z[ok] ** 2], 1)
            coef = np.linalg.lstsq(a, disp[ok], rcond=None)[0]
            out.append(abs(coef[4]) * float(z[ok].max()) ** 2)
    return np.asarray(out)


def test_shifted_scenes_are_measurably_different(scenes) -> None:
    # much larger holes
    holes = {s: float(torch.isnan(sc.displacement).float().mean()) for s, sc in scenes.items()}
    assert holes["shifted"] >= 0.2 > 0.1 > holes["in"]
    # larger nonlinear (quadratic) stratified delay in the scenes themselves (the fit also
    # picks up turbulence, which dilutes the contrast)
    quad = {s: float(np.median(_quadratic_stratified_mm(sc))) for s, sc in scenes.items()}
    assert quad["shifted"] > 2.0 * quad["in"], quad
    # DEM relief: the synthetic DEMs of the shifted split all exceed training's maximum
    relief = {
        s: (sc.dem.amax(dim=(-2, -1)) - sc.dem.amin(dim=(-2, -1))).numpy()
        for s, sc in scenes.items()
    }
    synth = scenes["in"].dem_kind == "synthetic"
    assert relief["shifted"][synth].min() >= 2000.0 * 0.99 > relief["in"][synth].max()


def _nuisance_only(config: SimConfig, **families: bool) -> SimConfig:
    """``config`` without deformation, ramps, offsets, holes and unwrapping errors."""
    return dataclasses.replace(
        config.with_source("none"),
        orbital_ramps=False,
        offsets=False,
        holes_prob=0.0,
        unwrap_prob=0.0,
        **families,
    )


def test_shifted_stratified_delay_is_far_more_nonlinear() -> None:
    quad = {}
    for split in scn.SPLITS:
        cfg = _nuisance_only(scn.base_config(32, 5, split), turbulence=False)
        batch = simulate_batch(cfg, 24, generator=torch.Generator().manual_seed(3))
        sc = scn.Scenes(
            displacement=batch.displacement,
            dem=batch.dem,
            cumulative=batch.cumulative,
            valid=batch.valid,
            **{k: np.zeros(24) for k in ("amplitude_mm", "noise", "source", "dem_kind")},
            times_days=np.arange(5.0),
        )
        quad[split] = float(np.median(_quadratic_stratified_mm(sc)))
    assert quad["shifted"] > 10.0 * quad["in"], quad


def _efolding_lag_px(config: SimConfig, seed: int) -> float:
    """Turbulence only: median over examples and dates of the first east-west lag (px) at
    which the field's autocorrelation falls below 1/e (a correlation-length statistic)."""
    cfg = _nuisance_only(config, stratified=False)
    field = simulate_batch(cfg, 32, generator=torch.Generator().manual_seed(seed)).displacement
    field = field[:, 1:].double()
    field = field - field.mean(dim=(-2, -1), keepdim=True)
    var = (field * field).mean(dim=(-2, -1))
    n = field.shape[-1]
    corr = torch.stack(
        [(field[..., k:] * field[..., :-k]).mean(dim=(-2, -1)) / var for k in range(1, n // 2)],
        -1,
    )
    below = corr < np.exp(-1.0)
    lag = torch.where(below.any(-1), below.double().argmax(-1) + 1, n // 2)
    return float(lag.double().median())


def test_shifted_turbulence_has_shorter_correlation() -> None:
    lag = {s: _efolding_lag_px(scn.base_config(64, 3, s), seed=11) for s in scn.SPLITS}
    # exponential covariance with L = 0.2-0.8 km: 1/e at 2-9 px of 90 m
    assert lag["shifted"] <= 9 and lag["in"] >= 2.0 * lag["shifted"], lag


@pytest.fixture(scope="module")
def both_report(tmp_path_factory) -> Path:
    scripted = build_untrained(window=5, channels=(4, 8, 8, 8))
    model = export_model(scripted, scripted.insar_metadata, tmp_path_factory.mktemp("m") / "t.pt")
    folder = tmp_path_factory.mktemp("both") / "report"
    args = ["--suite", "v1", "--model", model, "--n", 2, "--n-tune", 1, "--size", 32, "--seed", 2]
    res = CliRunner().invoke(
        main, ["evaluate", *map(str, args), "--split", "both", "-o", str(folder), "-q"]
    )
    assert res.exit_code == 0, res.output
    return folder


def test_split_both_writes_both_splits(both_report) -> None:
    metrics = json.loads((both_report / "metrics.json").read_text())
    assert metrics["split"] == "both" and list(metrics["splits"]) == ["in", "shifted"]
    for name, m in metrics["splits"].items():
        assert m["kind"] == "benchmark" and m["split"] == name
        assert m["methods"] == metrics["methods"] and "model" in m["methods"]
        assert m["groups"]["all"]["all"]["n"] == m["n_scenes"] == 2 * len(scn.AMPLITUDES_MM)
    assert metrics["splits"]["in"]["split_overrides"] == {}
    shifted = metrics["splits"]["shifted"]
    assert shifted["sim_config"]["holes_prob"] == 1.0
    assert shifted["split_overrides"]["correlation_length_km"] == [0.2, 0.8]
    fixed = ("source_probs", "amplitude_mm")  # set by every stratum
    in_cfg = {k: v for k, v in metrics["splits"]["in"]["sim_config"].items() if k not in fixed}
    train = json.loads(json.dumps(_training_config(32, 5).to_dict()))
    assert in_cfg == {k: v for k, v in train.items() if k not in fixed}
    # the two splits are scored on different scenes
    rm = {n: m["groups"]["all"]["all"]["rmse_mm"]["raw"] for n, m in metrics["splits"].items()}
    assert rm["in"] != rm["shifted"]
    report = (both_report / "report.md").read_text()
    assert "## Splits side by side" in report
    assert "## Split `in`" in report and "## Split `shifted`" in report
    assert "(each cell: in / shifted)" in report
    assert "`correlation_length_km`: [0.2, 0.8] (training [1.0, 30.0])" in report
    for name in ("in", "shifted"):
        for fig in ("rmse_vs_amplitude.png", "corr_vs_amplitude.png"):
            assert (both_report / f"{name}_{fig}").stat().st_size > 0
            assert f"]({name}_{fig})" in report
    assert (both_report / "examples.png").stat().st_size > 0
    # the side-by-side row shows both splits' values, the README table each split's
    table = results_table(metrics)
    raw_row = next(line for line in table.splitlines() if line.startswith("| raw | "))
    assert raw_row.count(" / ") >= 5
    assert "Split `in`:" in table and "Split `shifted`:" in table


def test_results_table_script_reads_a_both_report(both_report, capsys) -> None:
    spec = importlib.util.spec_from_file_location("rt", ROOT / "scripts" / "results_table.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(both_report / "metrics.json")]) == 0
    out = capsys.readouterr().out
    assert "split `in`" in out and "split `shifted`" in out


def test_overwrite_guard_covers_split_figures(both_report, tmp_path) -> None:
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "shifted_rmse_vs_amplitude.png").write_bytes(b"x")
    res = CliRunner().invoke(main, ["evaluate", "--model", "none", "-o", str(folder)])
    assert res.exit_code == 2 and "shifted_rmse_vs_amplitude.png" in res.output


def test_shifted_split_samples_irregularly_with_a_missing_date() -> None:
    train, shifted = scn.base_config(64, 9, "in"), scn.base_config(64, 9, "shifted")
    assert np.allclose(np.diff(train.times_days()), 12.0)
    steps = set(np.diff(shifted.times_days()).tolist())
    assert steps == {6.0, 12.0, 24.0}  # mixed 6/12-day sampling and one missing date
    scenes = scn.generate(1, 0, size=16, n_dates=9, split="shifted")
    np.testing.assert_allclose(scenes.times_days, shifted.times_days())
    # a linear history follows the real times: cumulative at date k is proportional to t_k
    cfg = dataclasses.replace(shifted, size=16, history_probs={"linear": 1.0}, turbulence=False)
    batch = simulate_batch(cfg.with_source("mogi"), 1, generator=torch.Generator().manual_seed(0))
    d = batch.deformation[0].double()
    k = torch.argmax(d[-1].abs())
    series = d.reshape(9, -1)[:, k].numpy()
    t = np.asarray(shifted.times_days())
    np.testing.assert_allclose(series, series[-1] * t / t[-1], atol=1e-4)

"""The v2 benchmark (referee): scores against hand-computed values, the design, a tiny run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from insar_denoise.baselines import gaussian_filter_nan
from insar_denoise.cli.main import main
from insar_denoise.evaluation import referee as rf
from insar_denoise.evaluation import referee_scoring as rs
from insar_denoise.evaluation.referee_report import summary_table, write_referee_report
from insar_denoise.evaluation.report_common import json_ready
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.testing import tiny_model


@pytest.mark.parametrize(
    ("snr", "label"),
    [
        (0.0, "0-3"),
        (2.999, "0-3"),
        (3.0, "3-5"),
        (7.0, "5-10"),
        (10.0, "10-20"),
        (49.9, "20-50"),
        (50.0, ">50"),
        (math.inf, ">50"),
        (math.nan, None),
        (-1.0, None),
    ],
)
def test_snr_bins_include_their_lower_edge(snr, label) -> None:
    assert rs.snr_bin(snr) == label


def test_gain_rmse_and_r_of_half_the_truth_plus_an_offset() -> None:
    truth = np.array([[0.0, 1.0, 2.0, 3.0, 10.0, 99.0]])
    mask = np.array([[True] * 5 + [False]])
    out = 0.5 * truth + 7.0
    out[0, 5] = -1e6  # outside the mask: ignored
    s = rs.offset_free_scores(out, truth, mask)
    # medians 2 and 8 removed: o = 0.5 c with c = (-2, -1, 0, 1, 8)
    assert s["gain"] == pytest.approx(0.5)
    assert s["r"] == pytest.approx(1.0)
    assert s["rmse_mm"] == pytest.approx(0.5 * math.sqrt((4 + 1 + 0 + 1 + 64) / 5))
    # an offset changes nothing; the truth itself scores perfectly
    shifted = rs.offset_free_scores(out + 123.0, truth, mask)
    assert shifted == pytest.approx(s)
    exact = rs.offset_free_scores(truth - 5.0, truth, mask)
    assert exact == pytest.approx({"r": 1.0, "gain": 1.0, "rmse_mm": 0.0})


def test_gap_pixels_are_scored_apart_with_the_compared_pixels_levels() -> None:
    from types import SimpleNamespace

    import torch

    truth = np.arange(16, dtype=np.float32).reshape(4, 4)
    valid = np.ones((4, 4), bool)
    valid[0, :2] = False  # the gap patch
    valid[3, 3] = False  # a hole: NaN in the output, neither compared nor a gap pixel
    batch = SimpleNamespace(
        cumulative=torch.from_numpy(truth[None]),
        deformation=torch.from_numpy(np.stack([0 * truth, truth])[None]),
        valid=torch.from_numpy(valid[None]),
    )
    out = truth + 4.0
    out[0, 0] += 3.0  # errors of 3 and -1 mm on the gap patch only
    out[0, 1] -= 1.0
    out[3, 3] = np.nan
    scores, _, n = rf.score_scene(batch, {"model": (out, np.stack([0 * out, out]))})
    assert n == 13
    assert scores["model"]["rmse_mm"] == pytest.approx(0.0, abs=1e-6)
    assert scores["model"]["gap_rmse_mm"] == pytest.approx(math.sqrt((9 + 1) / 2))
    no_gap = rs.gap_rmse(out, truth, valid, np.zeros_like(valid))
    assert math.isnan(no_gap)
    records = [{"methods": {"model": scores["model"]}}, {"methods": {"model": {"rmse_mm": 1.0}}}]
    table = rs.gap_table(records, ["model"])
    assert table["n_scenes"] == 1
    assert table["max_gap_rmse_mm"]["model"] == pytest.approx(math.sqrt(5))


def test_a_ramp_is_charged_no_plane_is_removed() -> None:
    xx = np.mgrid[0:8, 0:8][1].astype(float)
    truth = np.zeros((8, 8))
    truth[2, 7] = 5.0  # one pixel: medians 0 (truth) and 1.05 (truth + ramp, 64 values)
    mask = np.ones_like(truth, bool)
    s = rs.offset_free_scores(truth + 0.3 * xx, truth, mask)
    # error = 0.3 (x - 3.5) on every pixel; mean of (x - 3.5)^2 over x = 0..7 is 5.25
    assert s["rmse_mm"] == pytest.approx(0.3 * math.sqrt(5.25))
    zero = rs.offset_free_scores(np.zeros_like(truth), truth, mask)
    assert zero["gain"] == 0.0 and math.isnan(zero["r"])
    flat = rs.offset_free_scores(truth, np.zeros_like(truth), mask)
    assert math.isnan(flat["gain"]) and flat["rmse_mm"] > 0


def test_series_rmse_removes_one_median_per_date() -> None:
    truth = np.zeros((3, 2, 2))
    series = np.zeros((3, 2, 2))
    series[1] += 5.0  # an offset on date 1: free
    series[2, 0, 0] = 4.0  # one pixel off on date 2: median 0, error 4 on 1 of 8 values
    mask = np.ones((2, 2), bool)
    assert rs.series_rmse(series, truth, mask) == pytest.approx(math.sqrt(16 / 8))


def _record(snr: float, t: int, kind: str, r: float, gain: float) -> dict:
    m = {"r": r, "gain": gain, "rmse_mm": 1.0, "series_rmse_mm": 2.0}
    return {
        "snr": snr,
        "snr_bin": rs.snr_bin(snr),
        "n_dates": t,
        "source_type": kind,
        "methods": {"model": m},
    }


def test_tables_group_by_snr_t_and_source() -> None:
    recs = [
        _record(1.0, 9, "bowl", 0.8, 0.2),
        _record(2.0, 18, "bowl", float("nan"), 0.4),
        _record(4.0, 9, "creep", 0.69, 1.0),
        _record(4.5, 9, "creep", 0.7, 3.0),
    ]
    t = rs.tables(recs, ["model"])
    low = t["by_snr"]["0-3"]
    assert low["all"]["n"] == 2 and low["all"]["methods"]["model"]["detected"] == 0.5
    assert low["all"]["methods"]["model"]["gain"] == pytest.approx(0.3)
    assert low["T=9"]["n"] == 1 and low["T=18"]["methods"]["model"]["detected"] == 0.0
    mid = t["by_snr"]["3-5"]["all"]
    assert mid["methods"]["model"]["detected"] == 0.5  # r = 0.7 counts, 0.69 does not
    assert mid["snr_median"] == pytest.approx(4.25)
    assert set(t["by_snr"]) == {"0-3", "3-5"}
    assert t["by_source"]["creep"]["all"]["n"] == 2 and "3-5" in t["by_source"]["creep"]
    fp = rs.false_positive_table({9: {"raw": [np.arange(100.0)]}, 18: {"raw": [-np.ones(5)]}})
    assert fp["T=9"]["raw"] == pytest.approx(np.percentile(np.arange(100.0), 99))
    assert fp["T=18"]["raw"] == 1.0
    assert fp["all"]["raw"] == pytest.approx(np.percentile(np.r_[np.arange(100.0), np.ones(5)], 99))


def test_design_is_stable_and_covers_every_cell() -> None:
    specs = rf.design(28, 0, "in")
    assert rf.design(5, 0, "in") == specs[:5]  # adding scenes never changes earlier ones
    assert rf.design(5, 0, "shifted") != specs[:5]
    cells = {(s.n_dates, s.source_type) for s in specs}
    assert cells == {(t, k) for t in rf.N_DATES for k in rf.SOURCE_TYPES}
    for s in rf.design(200, 1, "in"):
        assert (s.amplitude_mm == 0) == (s.source_type == "none")
        assert s.source_type == "none" or 1.0 <= s.amplitude_mm <= 50.0
        assert 2.0 <= s.turbulence_mm <= 12.0
        assert all(1 <= d <= s.n_dates - 2 for d in s.gap_dates)
    amps = [s.amplitude_mm for s in rf.design(280, 0, "in") if s.source_type == "bowl"]
    # golden-ratio spread in log amplitude: every decade-third of 1-50 mm gets scenes
    counts = np.histogram(np.log(amps), bins=3, range=(0, math.log(50)))[0]
    assert counts.min() >= 10


def test_scene_has_its_design_factors_and_gaps() -> None:
    spec = next(s for s in rf.design(60, 0, "shifted") if s.gap_dates and s.n_dates == 18)
    batch, ds = rf.simulate(spec, "shifted", 32)
    disp = ds["displacement"].values
    rows, cols = spec.gap_slices(32)
    assert np.isnan(disp[list(spec.gap_dates), rows, cols]).all()
    assert not batch.valid[0, rows, cols].any()
    days = np.diff(ds["time"].values).astype("timedelta64[D]").astype(int)
    assert set(days) == ({6, 12, 24} if spec.sampling == "irregular" else {12})
    cfg = spec.config("shifted", 32)
    assert cfg.turbulence_std_mm == (spec.turbulence_mm, spec.turbulence_mm)
    assert cfg.correlation_length_km == (0.2, 0.8)  # the split's own overrides stay
    assert set(ds.data_vars) == {"displacement", "dem"}  # the truth never reaches a method
    truth_amp = float(np.abs(batch.cumulative[0]).max())
    assert truth_amp == pytest.approx(spec.amplitude_mm, rel=1e-4)


def test_tuning_filters_equal_the_engine_best() -> None:
    spec = rf.design(6, 0, "in")[5]
    _, ds = rf.simulate(spec, "in", 48)
    run = {
        s: denoise_dataset(ds, None, method="best", sigma_px=s, progress=False)[
            "cumulative_deformation"
        ].values
        for s in (0.0, 3.0)
    }
    filtered = gaussian_filter_nan(run[0.0].astype(np.float64), 3.0)
    np.testing.assert_allclose(filtered, run[3.0], atol=1e-4, equal_nan=True)


def test_window_models_run_with_contiguous_windows() -> None:
    model = tiny_model(window=5)
    assert rf.model_stride(model, 18) == 4
    assert rf.model_stride(model, 5) == 1
    assert rf.model_stride(object(), 72) == 1


@pytest.fixture(scope="module")
def tiny_run():
    return rf.run_referee(tiny_model(window=5), n=8, seed=3, size=32, split="both", n_tune=2)


def test_tiny_run_writes_json_markdown_and_two_figures(tiny_run, tmp_path: Path) -> None:
    metrics = tiny_run.metrics
    assert metrics["kind"] == "referee" and metrics["methods"] == ["model", "best", "zero", "raw"]
    assert list(metrics["splits"]) == ["in", "shifted"]
    for split in metrics["splits"].values():
        assert split["n_scenes"] == len(split["scenes"]) == 8
        scene = split["scenes"][5]
        assert {"snr", "snr_free", "snr_bin", "n_dates", "source_type", "methods"} <= set(scene)
        assert set(scene["methods"]["model"]) == {
            "r",
            "gain",
            "rmse_mm",
            "series_rmse_mm",
            "gap_rmse_mm",
        }
        assert scene["methods"]["zero"]["gain"] == 0.0
        binned = [s for s in split["scenes"] if s["snr_bin"] is not None]
        assert sum(g["all"]["n"] for g in split["by_snr"].values()) == len(binned)
        assert set(split["false_positive_p99_mm"]["all"]) == set(metrics["methods"])
        assert split["false_positive_p99_mm"]["all"]["zero"] == 0.0
    paths = write_referee_report(metrics, tmp_path / "rep")
    for name in ("metrics.json", "report.md", "detection_vs_snr.png", "gain_vs_snr.png"):
        assert (tmp_path / "rep" / name).stat().st_size > 0
    written = json.loads(paths["metrics"].read_text())
    assert written["splits"]["in"]["by_snr"] == json_ready(metrics["splits"]["in"]["by_snr"])
    text = paths["report"].read_text()
    for heading in ("## Split `in`", "### Per SNR bin", "### Per source type", "p99", "gap patch"):
        assert heading in text
    assert "detection_vs_snr.png" in text and "| split | SNR bin |" in summary_table(written)


def test_same_seed_same_metrics(tiny_run) -> None:
    again = rf.run_referee(tiny_model(window=5), n=3, seed=3, size=32, split="in", n_tune=2)
    first = tiny_run.metrics["splits"]["in"]
    # a smaller n draws the same first scenes; the tuning set is the same too
    assert again.metrics["splits"]["in"]["sigma_tuning"] == first["sigma_tuning"]
    for a, b in zip(again.metrics["splits"]["in"]["scenes"], first["scenes"][:3], strict=True):
        assert {k: v for k, v in a.items() if k != "wall_s"} == {
            k: v for k, v in b.items() if k != "wall_s"
        }


def test_cli_default_suite_is_v2(tmp_path: Path) -> None:
    out = tmp_path / "r"
    args = ["evaluate", "--model", "none", "--n", "3", "--n-tune", "1", "--size", "24"]
    res = CliRunner().invoke(main, [*args, "--split", "in", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "referee" and metrics["methods"] == ["best", "zero", "raw"]
    assert (out / "gain_vs_snr.png").is_file()
    res = CliRunner().invoke(main, [*args, "--window", "9", "-o", str(tmp_path / "w")])
    assert res.exit_code == 2 and "--suite v1" in res.output
    res = CliRunner().invoke(main, [*args, "-o", str(out)])
    assert res.exit_code == 2 and "--overwrite" in res.output


def test_observer_workers_give_the_same_records() -> None:
    import torch

    kw = {"n": 5, "seed": 1, "size": 24, "n_tune": 1}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the workers (float sums depend on the thread count)
    try:
        alone = rf.run_split(None, split="in", workers=0, **kw)
    finally:
        torch.set_num_threads(threads)
    pooled = rf.run_split(None, split="in", workers=1, **kw)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in alone["scenes"]]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in pooled["scenes"]]
    assert any(r["snr"] > 0 for r in pooled["scenes"])


def test_snr_cache_reuses_the_observer_of_an_earlier_report(monkeypatch) -> None:
    kw = {"n": 5, "seed": 2, "size": 24, "n_tune": 1}
    first = rf.run_split(None, split="in", **kw)
    metrics = json.loads(json.dumps({"kind": "referee", "size_px": 24, "splits": {"in": first}}))
    cache = rf.snr_cache(metrics)
    assert cache and all(k[0] == "in" and k[2] == 24 for k in cache)

    def no_observer(batch):
        raise AssertionError("the observer ran although its SNR was cached")

    monkeypatch.setattr(rf, "_scene_snr", no_observer)
    again = rf.run_split(None, split="in", snr_cache=cache, **kw)
    strip = [{k: v for k, v in r.items() if k != "wall_s"} for r in first["scenes"]]
    assert strip == [{k: v for k, v in r.items() if k != "wall_s"} for r in again["scenes"]]
    with pytest.raises(ValueError, match="not a Benchmark v2 report"):
        rf.snr_cache({"kind": "benchmark"})


def test_cli_snr_from_a_bad_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "metrics.json"
    bad.write_text('{"kind": "benchmark"}')
    args = ["evaluate", "--model", "none", "--n", "2", "--size", "24", "--split", "in"]
    res = CliRunner().invoke(main, [*args, "--snr-from", str(bad), "-o", str(tmp_path / "o")])
    assert res.exit_code == 2 and str(bad) in res.output and "not a Benchmark v2" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "o").exists()  # nothing written

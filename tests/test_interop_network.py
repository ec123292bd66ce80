"""Interferogram networks: pair names, SBAS inversion and the real Envisat network."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from insar_denoise.errors import DateError, InputError
from insar_denoise.io.network import (
    coherence_weights,
    invert_network,
    is_interferogram_stack,
    network_components,
    open_interferograms,
    parse_pair_name,
)

ENVISAT = Path(__file__).parent / "data" / "real_envisat_nsw"
D1, D2 = datetime(2020, 1, 1), datetime(2020, 1, 13)
HYP3_TAIL = "VVP012_INT80_G_ueF_1A2B_unw_phase.tif"


@pytest.mark.parametrize(
    ("name", "pattern", "expected"),
    [
        (
            "S1AA_20200101T054512_20200113T054513_VVP012_INT80_G_ueF_1A2B_unw_phase.tif",
            None,
            (D1, D2),
        ),
        (
            "S1BA_20200101T000000_20200113T000000_VVP012_INT40_G_weF_FFFF_unw_phase.tif",
            None,
            (D1, D2),
        ),
        ("20200101_20200113.unw.tif", None, (D1, D2)),
        ("ifg_20200101-20200113_filt.tif", None, (D1, D2)),
        ("geo_060619-061002_unw.tif", None, (datetime(2006, 6, 19), datetime(2006, 10, 2))),
        ("geo_990101-000113_unw.tif", None, (datetime(1999, 1, 1), datetime(2000, 1, 13))),
        ("ref20200101_sec20200113.tif", "ref{ref}_sec{sec}", (D1, D2)),
        ("A_2020-01-01_2020-01-13_x.tif", "{ref}_{sec}", (D1, D2)),
        ("disp_20200101.tif", None, None),
        ("geo_061332-070101_unw.tif", None, None),
    ],
)
def test_parse_pair_name(name, pattern, expected):
    assert parse_pair_name(name, pattern) == expected


def _network():
    """A redundant network over 6 dates: consecutive, skip-one and a long pair."""
    pairs = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (0, 2), (1, 3), (2, 4), (3, 5), (0, 5)]
    return pairs, 6


@pytest.mark.parametrize("weighted", [False, True])
def test_invert_network_recovers_series_with_nans(weighted):
    rng = np.random.default_rng(0)
    pairs, n_dates = _network()
    truth = rng.normal(0, 20, (n_dates, 9, 11))
    truth[0] = 0.0
    ifgs = np.stack([truth[j] - truth[i] for i, j in pairs])
    ifgs[0, 2:5, 3] = np.nan  # (0,1) missing: date 1 still reached through (1,2), (1,3)
    ifgs[5, 2:4, 3] = np.nan
    ifgs[3, 7, :] = np.nan
    weights = rng.uniform(0.1, 3.0, ifgs.shape) if weighted else None
    series = invert_network(ifgs, pairs, n_dates, weights)
    assert series.shape == truth.shape
    np.testing.assert_allclose(series, truth, atol=1e-9)


def test_invert_network_pixel_gap_is_nan_and_least_squares_averages():
    pairs = [(0, 1), (1, 2), (0, 2)]
    ifgs = np.array([1.0, 2.0, 6.0]).reshape(3, 1, 1).repeat(2, axis=2)
    ifgs[1, 0, 1] = np.nan
    ifgs[2, 0, 1] = np.nan  # pixel 1 keeps only (0,1): date 2 is undetermined
    series = invert_network(ifgs, pairs, 3)
    # closure error 3 spread evenly over the three pairs: d1 = 2, d2 = 5
    np.testing.assert_allclose(series[:, 0, 0], [0.0, 2.0, 5.0])
    np.testing.assert_allclose(series[:2, 0, 1], [0.0, 1.0])
    assert np.isnan(series[2, 0, 1])


def test_network_components():
    assert network_components([(0, 1), (2, 3), (1, 4)], 6) == [[0, 1, 4], [2, 3], [5]]


def test_coherence_weights_monotonic():
    w = coherence_weights(np.array([0.0, 0.3, 0.6, 1.0, np.nan]))
    assert np.all(np.diff(w[:4]) > 0) and np.isnan(w[4])
    assert math.isclose(w[1], 2 * 0.09 / 0.91)


def _write_ifg(path, data, tags=None, nodata=0.0):
    profile = dict(
        driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype="float32",
        crs="EPSG:32633", transform=Affine(80.0, 0, 500000.0, 0, -80.0, 4600000.0), nodata=nodata,
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(np.float32), 1)
        dst.update_tags(**(tags or {}))


def test_open_interferograms_hyp3_radians_to_mm(tmp_path):
    days = ["20200101", "20200113", "20200125", "20200206"]
    truth_mm = np.array([0.0, 5.0, -3.0, 8.0])
    wavelength = 55.465763
    pairs = [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    for i, j in pairs:
        phase = -(truth_mm[j] - truth_mm[i]) * 4 * np.pi / wavelength
        name = f"S1AA_{days[i]}T050000_{days[j]}T050000_VVP012_INT80_G_ueF_ABCD_unw_phase.tif"
        _write_ifg(tmp_path / name, np.full((5, 6), phase))
    assert is_interferogram_stack(str(tmp_path / "*_unw_phase.tif"))
    ds = open_interferograms(str(tmp_path / "*_unw_phase.tif"))
    assert [str(t)[:10] for t in ds.time.values] == [
        "2020-01-01",
        "2020-01-13",
        "2020-01-25",
        "2020-02-06",
    ]
    np.testing.assert_allclose(ds.displacement.values[:, 2, 3], truth_mm, atol=1e-4)
    assert ds.displacement.dtype == np.float32 and ds.attrs["units"] == "mm"
    assert ds.rio.crs.to_epsg() == 32633 and ds.rio.transform() == Affine(80, 0, 5e5, 0, -80, 4.6e6)
    assert "dem" not in ds and bool(ds.valid.all())


def test_open_interferograms_disconnected_names_groups(tmp_path):
    for ref, sec in [("20200101", "20200113"), ("20200113", "20200125"), ("20200301", "20200313")]:
        _write_ifg(tmp_path / f"{ref}_{sec}.tif", np.ones((4, 4)), {"DATA_UNITS": "mm"})
    with pytest.raises(InputError, match="disconnected into 2 groups.*2020-03-01,2020-03-13"):
        open_interferograms(sorted(tmp_path.glob("*.tif")))


def test_not_a_stack_and_bad_pairs(tmp_path):
    _write_ifg(tmp_path / "disp_20200101.tif", np.ones((4, 4)))
    assert not is_interferogram_stack(tmp_path / "disp_20200101.tif")
    assert not is_interferogram_stack(tmp_path / "missing_20200101-20200113.tif")
    _write_ifg(tmp_path / "20200113-20200101.tif", np.ones((4, 4)))
    with pytest.raises(DateError, match="not before"):
        open_interferograms(tmp_path / "20200113-20200101.tif")


def test_pyrate_tags_and_coherence_weights(tmp_path):
    truth = np.array([0.0, 1.0, 3.0])
    for i, j, noise in [(0, 1, 0.0), (1, 2, 0.0), (0, 2, 0.3)]:
        phase = -(truth[j] - truth[i] + noise) * 4 * np.pi / 56.0
        tags = {"FIRST_DATE": f"2020-01-0{i + 1}", "SECOND_DATE": f"2020-01-0{j + 1}",
                "WAVELENGTH_METRES": "0.056", "DATA_UNITS": "RADIANS"}  # fmt: skip
        _write_ifg(tmp_path / f"ifg{i}{j}.tif", np.full((3, 3), phase), tags)
        coh = 0.95 if noise == 0 else 0.05
        _write_ifg(tmp_path / f"coh_2020010{i + 1}_2020010{j + 1}.tif", np.full((3, 3), coh))
    plain = open_interferograms(sorted(tmp_path.glob("ifg*.tif")))
    weighted = open_interferograms(
        sorted(tmp_path.glob("ifg*.tif")), coherence=str(tmp_path / "coh_*.tif")
    )
    assert plain.attrs["wavelength_mm"] == pytest.approx(56.0)
    err_plain = np.abs(plain.displacement.values[:, 1, 1] - truth).max()
    err_weighted = np.abs(weighted.displacement.values[:, 1, 1] - truth).max()
    assert err_weighted < 0.05 * err_plain


def test_real_envisat_network():
    files = sorted((ENVISAT / "interferograms").glob("*.tif"))
    assert is_interferogram_stack([str(f) for f in files])
    ds = open_interferograms(files, dem=ENVISAT / "dem.tif")
    expected = ["060619", "060828", "061002", "061106", "061211", "070115", "070219",
                "070326", "070430", "070604", "070709", "070813", "070917"]  # fmt: skip
    got = [np.datetime_as_string(t, "D").replace("-", "")[2:] for t in ds.time.values]
    assert got == expected
    assert ds.rio.crs.to_epsg() == 4326
    with rasterio.open(files[0]) as src:
        assert ds.rio.transform().almost_equals(src.transform)
        phase = src.read(1)
    assert ds.attrs["wavelength_mm"] == pytest.approx(56.2356424)
    assert ds.displacement.shape == (13, 72, 47) and float(ds.displacement[0].max()) == 0.0
    assert 0.7 < float(ds.valid.mean()) < 1.0
    assert ds.dem.dtype == np.float32 and 190 < float(ds.dem.min()) < float(ds.dem.max()) < 372
    # the first pair, 060619-061002, spans dates 0 and 2: its mm value is closely reproduced
    # by the inverted series where the network is redundant (misclosure stays small)
    first = -phase * 56.2356424 / (4 * np.pi)
    both = ds.valid.values & (phase != 0)
    diff = ds.displacement.values[2][both] - first[both]
    assert np.median(np.abs(diff)) < 0.5 * np.median(np.abs(first[both]))

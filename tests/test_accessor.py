"""Tests of insar_denoise.accessor: ds.insar / da.insar are thin doors onto denoise_dataset."""

from __future__ import annotations

import subprocess
import sys

import dask.array as da
import numpy as np

import insar_denoise.accessor  # noqa: F401
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.testing import synthetic_dataset, tiny_model


def test_dataset_accessor_lazy_and_does_not_mutate():
    ds = synthetic_dataset(n_dates=6, shape=(30, 30)).chunk({"y": 15, "x": 15})
    before = ds.copy(deep=True)
    out = ds.insar.denoise(model=tiny_model(), tile=16, overlap=8, progress=False)
    assert isinstance(out["deformation"].data, da.Array)
    assert isinstance(out["cumulative_deformation"].data, da.Array)
    assert set(ds.data_vars) == {"displacement", "dem"}
    assert ds.identical(before)
    direct = denoise_dataset(ds, tiny_model(), tile=16, overlap=8, progress=False)
    np.testing.assert_allclose(
        out["cumulative_deformation"].values, direct["cumulative_deformation"].values
    )


def test_dataset_accessor_dem_override():
    ds = synthetic_dataset(n_dates=6, shape=(20, 20))
    out = ds.insar.denoise(dem=ds.dem.values * 0 + 100.0, model=tiny_model(), progress=False)
    ref = denoise_dataset(ds.assign(dem=ds.dem * 0 + 100.0), tiny_model(), progress=False)
    np.testing.assert_allclose(
        out["cumulative_deformation"].values, ref["cumulative_deformation"].values
    )
    assert float(ds.dem.max()) > 100.0


def test_dataarray_accessor():
    ds = synthetic_dataset(n_dates=6, shape=(20, 24))
    before = ds.displacement.copy(deep=True)
    out = ds.displacement.insar.denoise(dem=ds.dem, model=tiny_model(), progress=False)
    ref = denoise_dataset(ds, tiny_model(), progress=False)
    np.testing.assert_allclose(out["deformation"].values, ref["deformation"].values)
    assert out.rio.crs == ds.rio.crs
    assert ds.displacement.identical(before)
    raw = ds.displacement.insar.denoise(method="raw", progress=False)
    np.testing.assert_allclose(
        raw["cumulative_deformation"].values,
        (ds.displacement[-1] - ds.displacement[0]).values,
        atol=1e-5,
    )


def test_accessor_import_does_not_import_torch():
    code = "import sys, insar_denoise.accessor; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_accessor_uncertainty_is_the_calibrated_sigma():
    import pytest

    from insar_denoise.errors import InputError
    from insar_denoise.trust.uncertainty import predict_with_uncertainty

    ds = synthetic_dataset(n_dates=5, shape=(24, 20))
    model = tiny_model(5)
    out = ds.insar.denoise(model=model, uncertainty=True, tile=16, overlap=8, progress=False)
    _, ref, _ = predict_with_uncertainty(ds, model, tile=16, overlap=8)
    assert out["uncertainty"].dims == ("y", "x") and out["uncertainty"].attrs["units"] == "mm"
    np.testing.assert_allclose(out["uncertainty"].values, ref.values)
    assert float(out["uncertainty"].max()) > 0
    via_da = ds.displacement.insar.denoise(
        dem=ds.dem, model=model, uncertainty=True, tile=16, overlap=8, progress=False
    )
    np.testing.assert_allclose(via_da["uncertainty"].values, ref.values)
    with pytest.raises(InputError, match="method='model'"):
        ds.insar.denoise(method="raw", uncertainty=True, progress=False)


def test_accessor_reference_options():
    from insar_denoise.reference import apply_reference, resolve_reference

    ds = synthetic_dataset(n_dates=6, shape=(20, 24))
    out = ds.insar.denoise(model=tiny_model(), progress=False, ref_yx=(4, 5))
    direct = denoise_dataset(ds, tiny_model(), progress=False)
    expected = apply_reference(direct, resolve_reference(ds, ref_yx=(4, 5)))
    np.testing.assert_allclose(out["deformation"].values, expected["deformation"].values)
    assert (
        out["cumulative_deformation"].values[4, 5] == 0
        and out.attrs["insar_denoise_reference"] == "yx=4,5"
    )
    auto = ds.displacement.insar.denoise(method="raw", progress=False, reference="auto")
    assert auto.attrs["insar_denoise_reference"] == "median of valid area"
    assert abs(float(np.nanmedian(auto["cumulative_deformation"].values))) < 1e-5

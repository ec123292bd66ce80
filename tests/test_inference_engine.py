"""Tests of insar_denoise.inference.engine: tiled = untiled, georeference, NaN, laziness."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

from insar_denoise import baselines
from insar_denoise.errors import ConfigError, InputError
from insar_denoise.inference import denoise_dataset
from insar_denoise.inference.engine import times_in_days
from insar_denoise.inference.testing import synthetic_dataset, tiny_model
from insar_denoise.inference.windows import combination_matrix, combine_windows, window_starts
from insar_denoise.models import LoadedModel


def _untiled(ds, model):
    """Reference: the model on the whole scene at once, window by window."""
    disp = torch.from_numpy(ds.displacement.values)
    dem = torch.from_numpy(ds.dem.values)[None]
    n = model.window
    starts = window_starts(disp.shape[0], n)
    with torch.inference_mode():
        outs = [model.module((disp[s : s + n] - disp[s])[None], dem)[0].numpy() for s in starts]
    p = combination_matrix(disp.shape[0], n, starts, times_in_days(ds.time.values))
    return combine_windows(np.stack(outs), p)


# the blend gives 0 weight to min(receptive-field half-width, overlap / 4) px at tile edges:
# a translation-equivariant model is tile-exact once overlap >= 4 x that half-width (8 px here)
@pytest.mark.parametrize("shape,tile,overlap,chunk", [((70, 90), 16, 8, 24), ((45, 33), 12, 8, 20)])
def test_tiled_equals_untiled_away_from_edges(shape, tile, overlap, chunk):
    ds = synthetic_dataset(n_dates=7, shape=shape)
    model = tiny_model()
    out = denoise_dataset(ds, model, tile=tile, overlap=overlap, chunk=chunk, progress=False)
    ref = _untiled(ds, model)
    e = 4  # the tiny model's receptive-field half-width plus a margin: scene-edge effects
    np.testing.assert_allclose(out.deformation.values[:, e:-e, e:-e], ref[:, e:-e, e:-e], atol=1e-3)
    np.testing.assert_allclose(
        out["cumulative_deformation"].values[e:-e, e:-e], ref[-1, e:-e, e:-e], atol=1e-3
    )
    noise = ds.displacement.values - out.deformation.values
    np.testing.assert_allclose(out.noise.values, noise, atol=1e-5)


class TileNormalisedModel(torch.nn.Module):
    """Not translation-equivariant: the output's mean over each tile is removed (like the
    packaged model's per-tile deplaning)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, displacement, dem):
        out = self.inner(displacement, dem)
        return out - out.mean(dim=(-2, -1), keepdim=True)


@pytest.mark.parametrize("chunks", [(13, 1000), (20, 37)])
def test_result_does_not_depend_on_block_size_even_for_tile_normalising_models(chunks):
    ds = synthetic_dataset(n_dates=6, shape=(61, 50))
    inner = tiny_model()
    model = LoadedModel(TileNormalisedModel(inner.module), inner.metadata, "tile-normalised")
    a, b = (denoise_dataset(ds, model, tile=16, overlap=8, chunk=c, progress=False) for c in chunks)
    np.testing.assert_allclose(a.deformation.values, b.deformation.values, atol=1e-5)


def test_georeference_coords_and_attrs_preserved():
    ds = synthetic_dataset(n_dates=6, shape=(20, 28), crs="EPSG:4326")
    out = denoise_dataset(ds, tiny_model(), progress=False)
    assert out.rio.crs == ds.rio.crs
    assert out.rio.transform() == ds.rio.transform()
    for c in ("time", "y", "x"):
        np.testing.assert_array_equal(out[c].values, ds[c].values)
    assert out["cumulative_deformation"].dims == ("y", "x") and out.deformation.dims == (
        "time",
        "y",
        "x",
    )
    assert out.attrs["units"] == "mm" and out.attrs["insar_denoise_model"] == "tiny-test-model"
    assert (
        out.attrs["insar_denoise_window"] == 5
        and out["cumulative_deformation"].attrs["units"] == "mm"
    )
    assert out.deformation.dtype == np.float32


def test_nan_and_valid_mask_propagate():
    ds = synthetic_dataset(n_dates=6, shape=(24, 24))
    ds["displacement"][3, 5, 6] = np.nan
    ds["valid"] = (("y", "x"), np.ones((24, 24), bool))
    ds["valid"][10, 11] = False
    strict = denoise_dataset(
        ds, tiny_model(), tile=16, overlap=8, progress=False, min_valid_dates=6
    )
    for v in ("cumulative_deformation", "deformation", "noise"):
        arr = strict[v].values
        assert np.isnan(arr[..., 5, 6]).all() and np.isnan(arr[..., 10, 11]).all()
        assert np.isfinite(arr).sum() == arr.size - 2 * arr.size // (24 * 24)
    # default (half the dates, at least the window of 5): the pixel missing one date is kept
    out = denoise_dataset(ds, tiny_model(), tile=16, overlap=8, progress=False)
    assert np.isfinite(out["cumulative_deformation"].values[5, 6])
    assert np.isnan(out["deformation"].values[3, 5, 6])
    assert np.isfinite(np.delete(out["deformation"].values[:, 5, 6], 3)).all()
    assert np.isnan(out["cumulative_deformation"].values[10, 11])


class CountingModel(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.items = inner, 0

    def forward(self, displacement, dem):
        self.items += displacement.shape[0]
        return self.inner(displacement, dem)


def test_all_nan_tiles_are_skipped():
    ds = synthetic_dataset(n_dates=5, shape=(64, 64))
    disp = ds.displacement.values
    disp[:, :, 20:] = np.nan  # only the left 20 columns have data
    ds["displacement"] = (("time", "y", "x"), disp)
    inner = tiny_model()
    counter = CountingModel(inner.module)
    model = LoadedModel(counter, inner.metadata, "counting")
    out = denoise_dataset(ds, model, tile=16, overlap=4, chunk=64, progress=False)
    # one block of 64 + 2 x 4 px context: tile starts 0, 12, ..., 56 on each axis -> 6 x 6
    # tiles; only the 2 tile columns reaching columns < 20 (+4 context) hold data.
    assert 0 < counter.items <= 6 * 3
    assert np.isnan(out["cumulative_deformation"].values[:, 20:]).all()
    assert np.isfinite(out["cumulative_deformation"].values[:, :20]).all()
    ds["displacement"] = ds.displacement * np.nan
    counter.items = 0
    out = denoise_dataset(ds, model, tile=16, overlap=4, progress=False)
    assert counter.items == 0 and np.isnan(out.deformation.values).all()


def test_fewer_dates_than_window():
    ds = synthetic_dataset(n_dates=4, shape=(16, 16))
    with pytest.raises(InputError, match="N=5"):
        denoise_dataset(ds, tiny_model(), progress=False)
    with pytest.raises(ConfigError, match="N=5"):
        denoise_dataset(synthetic_dataset(n_dates=6), tiny_model(), window=7, progress=False)
    with pytest.raises(ConfigError, match="unknown method"):
        denoise_dataset(ds, tiny_model(), method="magic")


def test_exact_windows_recover_known_series_through_the_engine():
    ds = synthetic_dataset(n_dates=12, shape=(30, 26), noise_mm=0.0)
    out = denoise_dataset(ds, tiny_model(exact=True), tile=16, overlap=4, progress=False)
    np.testing.assert_allclose(out.deformation.values, ds.displacement.values, atol=1e-3)
    np.testing.assert_allclose(out.noise.values, 0.0, atol=1e-3)


def test_dask_input_gives_lazy_output_equal_to_eager():
    ds = synthetic_dataset(n_dates=6, shape=(40, 36))
    lazy = ds.chunk({"time": 3, "y": 16, "x": 16})
    out = denoise_dataset(lazy, tiny_model(), tile=16, overlap=8, chunk=20, progress=False)
    assert all(
        isinstance(out[v].data, da.Array)
        for v in ("cumulative_deformation", "deformation", "noise")
    )
    eager = denoise_dataset(ds, tiny_model(), tile=16, overlap=8, chunk=20, progress=False)
    np.testing.assert_allclose(out.compute().deformation.values, eager.deformation.values)


@pytest.mark.parametrize("method", ["raw", "elevation", "filter", "stack", "best"])
def test_classical_methods_blockwise_equal_whole_scene(method):
    ds = synthetic_dataset(n_dates=6, shape=(37, 29)).chunk({"y": 10})
    ds["displacement"][:, 4, 4] = np.nan
    out = denoise_dataset(ds, method=method, chunk=12, sigma_px=1.5, progress=False).compute()
    disp = ds.displacement.values.astype(np.float64)
    disp[:, 4, 4] = np.nan
    ref = baselines.classical_series(
        method, disp, ds.dem.values, times_in_days(ds.time.values), 1.5
    )
    ref[:, 4, 4] = np.nan
    np.testing.assert_allclose(out.deformation.values, ref, atol=1e-4)
    assert out.attrs["insar_denoise_method"] == method


def test_packaged_architecture_runs_when_available():
    models = pytest.importorskip("insar_denoise.models")
    module = models.build_untrained(window=9, channels=(4, 8, 8, 8))
    ds = synthetic_dataset(n_dates=10, shape=(40, 48))
    out = denoise_dataset(ds, module, tile=32, overlap=8, progress=False)
    assert out["cumulative_deformation"].shape == (40, 48)
    assert np.isfinite(out["cumulative_deformation"].values).all()
    assert out.attrs["insar_denoise_window"] == 9


def test_devices_and_batch_size():
    from insar_denoise.inference.devices import fit_batch_size, resolve_device

    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        resolve_device("tpu")
    small = fit_batch_size((64, 64), 9, torch.device("cpu"))
    large = fit_batch_size((4096, 4096), 9, torch.device("cpu"))
    assert 1 <= large <= small <= 8


def test_default_model_is_loaded_when_model_is_none():
    models = pytest.importorskip("insar_denoise.models")
    if not models.default_model_path().is_file():
        pytest.skip("no packaged default model yet")
    ds = synthetic_dataset(n_dates=10, shape=(40, 48))
    out = denoise_dataset(ds, progress=False)
    assert out.attrs["insar_denoise_model"].startswith("default")
    assert out.attrs["insar_denoise_window"] == 10  # the whole stack
    assert np.isfinite(out["cumulative_deformation"].values).all()
    assert {"detection", "uncertainty", "uncertainty_95"} <= set(out.data_vars)

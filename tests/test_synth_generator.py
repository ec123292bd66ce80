"""Tests of insar_denoise.synth.generator (simulate_batch) and SimConfig."""

from __future__ import annotations

import json

import pytest
import torch

from insar_denoise.errors import ConfigError
from insar_denoise.synth import SOURCE_NAMES, SimBatch, SimConfig, simulate_batch
from insar_denoise.synth.histories import LINEAR, NONE, STEP, TRANSIENT, sample_histories


def _batch(config: SimConfig, seed: int, b: int = 8) -> SimBatch:
    return simulate_batch(config, b, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def config() -> SimConfig:
    return SimConfig(size=32, n_dates=5, holes_prob=0.5, unwrap_prob=0.3)


@pytest.fixture(scope="module")
def batch(config: SimConfig) -> SimBatch:
    return _batch(config, 0, 16)


def test_shapes_and_dtypes(batch: SimBatch) -> None:
    assert batch.displacement.shape == (16, 5, 32, 32)
    assert batch.deformation.shape == (16, 5, 32, 32)
    assert batch.dem.shape == batch.cumulative.shape == batch.valid.shape == (16, 32, 32)
    assert batch.amplitude_mm.shape == batch.source.shape == batch.history.shape == (16,)
    for name in ("displacement", "deformation", "dem", "cumulative", "amplitude_mm"):
        assert getattr(batch, name).dtype == torch.float32, name
    assert batch.valid.dtype == torch.bool
    assert batch.source.dtype == torch.int64
    assert batch.source_names == SOURCE_NAMES


def test_first_date_is_zero_and_nan_only_in_holes(batch: SimBatch) -> None:
    valid = batch.valid[:, None].expand_as(batch.displacement)
    assert torch.isnan(batch.displacement).eq(~valid).all()
    first = batch.displacement[:, 0][batch.valid]
    assert torch.equal(first, torch.zeros_like(first))
    assert torch.equal(batch.deformation[:, 0], torch.zeros_like(batch.deformation[:, 0]))
    assert (~batch.valid).any(), "holes_prob=0.5 over 16 examples should give some holes"
    assert torch.isfinite(batch.deformation).all() and torch.isfinite(batch.dem).all()


def test_cumulative_and_amplitude(batch: SimBatch, config: SimConfig) -> None:
    assert torch.equal(batch.cumulative, batch.deformation[:, -1] - batch.deformation[:, 0])
    peak = batch.cumulative.abs().amax(dim=(-2, -1))
    torch.testing.assert_close(batch.amplitude_mm, peak)
    none = batch.source == SOURCE_NAMES.index("none")
    assert (batch.amplitude_mm[none] == 0).all()
    lo, hi = config.amplitude_mm
    amp = batch.amplitude_mm[~none]
    assert ((amp >= lo * (1 - 1e-4)) & (amp <= hi * (1 + 1e-4))).all()


def test_same_seed_identical_different_seed_differs(config: SimConfig) -> None:
    a, b, c = _batch(config, 3), _batch(config, 3), _batch(config, 4)
    assert torch.equal(a.displacement.nan_to_num(-999.0), b.displacement.nan_to_num(-999.0))
    for name in ("deformation", "dem", "valid", "source", "history", "amplitude_mm"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.dem, c.dem)
    assert not torch.equal(a.displacement.nan_to_num(0.0), c.displacement.nan_to_num(0.0))


@pytest.mark.parametrize("source", ["okada", "mogi", "none", "okada_tensile"])
def test_forced_source(config: SimConfig, source: str) -> None:
    batch = _batch(config.with_source(source), 1, 6)
    names = {SOURCE_NAMES[int(s)] for s in batch.source}
    if source == "okada":
        assert names <= {"okada_strike_slip", "okada_dip_slip", "okada_tensile"}
    else:
        assert names == {source}
    if source == "none":
        assert (batch.deformation == 0).all()
    else:
        assert (batch.amplitude_mm > 0).all()


def test_fixed_amplitude_and_noise_free_signal(config: SimConfig) -> None:
    quiet = SimConfig.from_dict(
        {
            **config.to_dict(),
            "amplitude_mm": [5.0, 5.0],
            "turbulence": False,
            "stratified": False,
            "orbital_ramps": False,
            "offsets": False,
            "holes_prob": 0.0,
            "unwrap_prob": 0.0,
        }
    ).with_source("mogi")
    batch = _batch(quiet, 2, 4)
    torch.testing.assert_close(batch.amplitude_mm, torch.full((4,), 5.0))
    torch.testing.assert_close(batch.displacement, batch.deformation)
    assert batch.valid.all()


def test_config_round_trip_json() -> None:
    cfg = SimConfig(size=48, amplitude_mm=(1.0, 1.0), source_probs={"mogi": 1.0})
    again = SimConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 4},
        {"amplitude_mm": (3.0, 1.0)},
        {"source_probs": {"volcano": 1.0}},
        {"holes_prob": 2},
    ],
)
def test_config_rejects_invalid(bad: dict) -> None:
    with pytest.raises(ConfigError):
        SimConfig(**bad)
    with pytest.raises(ConfigError):
        SimConfig.from_dict({"no_such_field": 1})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(config: SimConfig) -> None:
    cpu = _batch(config, 5, 4)
    gpu = simulate_batch(config, 4, generator=torch.Generator().manual_seed(5), device="cuda")
    assert gpu.displacement.device.type == "cuda"
    torch.testing.assert_close(gpu.deformation.cpu(), cpu.deformation, atol=1e-3, rtol=1e-3)
    assert torch.equal(gpu.valid.cpu(), cpu.valid)


def test_histories() -> None:
    times = torch.arange(10, dtype=torch.float32) * 12.0
    kind = torch.tensor([NONE, STEP, LINEAR, TRANSIENT] * 25)
    h = sample_histories(
        torch.Generator().manual_seed(0), kind, times, duration_frac=(0.05, 0.6), device="cpu"
    )
    assert h.shape == (100, 10)
    assert (h[kind == NONE] == 0).all()
    moving = kind != NONE
    torch.testing.assert_close(h[moving, 0], torch.zeros(75))
    torch.testing.assert_close(h[moving, -1], torch.ones(75))
    assert (h[moving].diff(dim=1) >= -1e-6).all(), "histories are monotonic"
    step = h[kind == STEP]
    assert ((step == 0) | (step == 1)).all()
    assert len({int(s.sum()) for s in step}) > 3, "step dates vary"
    torch.testing.assert_close(h[kind == LINEAR], (times / times[-1]).expand(25, -1))
    trans = h[kind == TRANSIENT]
    assert ((trans > 0.01) & (trans < 0.99)).any(dim=1).all(), "transients are gradual"


def test_synth_imports_only_torch_and_numpy() -> None:
    """The GPU training machine has no scipy, rasterio or dask."""
    import subprocess
    import sys

    code = (
        "import sys, insar_denoise.synth as s, torch; "
        "s.simulate_batch(s.SimConfig(size=16, n_dates=3), 2, generator=torch.Generator()); "
        "bad = {'scipy', 'rasterio', 'dask', 'rioxarray'} & set(sys.modules); "
        "print(sorted(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_float32_okada_path_matches_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faults up to FLOAT32_MAX_DIP_DEG run in float32: within 1e-3 of the peak of float64."""
    from insar_denoise.synth import sources

    config = SimConfig(size=48, fault_dip_deg=(10.0, 90.0)).with_source("okada")
    src = torch.tensor([1, 2, 3] * 8)
    inc, head = torch.full((24,), 39.0), torch.full((24,), -12.0)

    def maps() -> torch.Tensor:
        gen = torch.Generator().manual_seed(9)
        return sources.unit_los_maps(gen, config, src, inc, head, "cpu")

    mixed = maps()
    monkeypatch.setattr(sources, "FLOAT32_MAX_DIP_DEG", -1.0)
    exact = maps()
    torch.testing.assert_close(mixed, exact, atol=1e-3, rtol=0)
    assert not torch.equal(mixed, exact), "some faults should have taken the float32 path"

"""Tests of the simulator's noise parameters (NoiseParams), the bowl source and bit-identity."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from insar_denoise.synth import SOURCE_NAMES, NoiseParams, SimConfig, simulate_batch
from insar_denoise.synth.turbulence import turbulent_delay

# sha256 of displacement, deformation and dem bytes, computed before NoiseParams and the
# bowl source were added: the arrays of every existing seed and config must not change.
# Bits hold on one machine only (torch's CPU kernels differ between CPUs: session 8's
# machine gave other digests for unchanged code), so where the digest differs the arrays'
# fingerprints (:func:`_fingerprint`, recorded in session 8) must agree to float precision.
PINNED = [
    (
        SimConfig(size=32, n_dates=5),
        7,
        4,
        "009a799fd4ec230a58756fb452c4486daf91ef0acc1865cdb61711cd1378e829",
        [
            -14375.272,
            3807127.43,
            591.742076,
            1518.10108,
            21016.0131,
            -16.2492873,
            2300835.63,
            2574562180.0,
            -1433.95524,
        ],
    ),
    (
        SimConfig(
            size=48,
            n_dates=4,
            holes_prob=1.0,
            unwrap_prob=0.5,
            real_dem_prob=0.0,
            irregular_sampling=True,
        ),
        123,
        3,
        "b0dff6d1b099361c4b942e607854cff9efe6b7874f78b8ea60245e51a9512b57",
        [
            -102403.779,
            4210976.63,
            -1411.2841,
            -28108.3104,
            253638.794,
            -13.0195909,
            7855341.02,
            10056910700.0,
            -7269.40967,
        ],
    ),
    (
        SimConfig(size=32, n_dates=5).with_source("okada"),
        5,
        1,
        "a71e4664ca8ef2910c659f98e202d316cfa3a0d034b1e4d7ab4f32f2e4aa5955",
        [
            5879.9706,
            531406.998,
            229.573101,
            1171.53103,
            3458.15389,
            2.34601687,
            1009468.41,
            996873724.0,
            2051.45823,
        ],
    ),
    (
        SimConfig(size=32, n_dates=5),
        11,
        1,
        "ca344e4de16a287e467456523df1a7b4c8b04126fce7c0f1014b905d6e2278f5",
        [-7554.26848, 339347.468, -101.93892, 0.0, 0.0, 0.0, 1601880.28, 2507673810.0, 4486.76279],
    ),
    (
        SimConfig(size=32, n_dates=5).with_source("mogi"),
        3,
        2,
        "36e491f2b1bf0e6a4f20943901dfc0b0f5553679682bd9d021d9d818ef4d4066",
        [
            50798.784,
            921732.555,
            -394.908709,
            36001.1201,
            176935.53,
            12.5579148,
            2055556.09,
            2166291460.0,
            4865.70483,
        ],
    ),
]


def _batch(cfg: SimConfig, seed: int, b: int):
    return simulate_batch(cfg, b, generator=torch.Generator().manual_seed(seed))


def _digest(batch) -> str:
    h = hashlib.sha256()
    for a in (batch.displacement, batch.deformation, batch.dem):
        h.update(a.numpy().tobytes())
    return h.hexdigest()


def _fingerprint(batch) -> list[float]:
    """Per array (displacement, deformation, dem): its sum, sum of squares and a sum
    weighted by ``sin(0.37 i)`` over the flat index (NaN as 0): any change of the random
    stream or of the noise model moves them far beyond float rounding."""
    out = []
    for a in (batch.displacement, batch.deformation, batch.dem):
        x = np.nan_to_num(a.numpy().astype(np.float64).ravel(), nan=0.0)
        w = np.sin(np.arange(x.size) * 0.37)
        out += [float(x.sum()), float((x * x).sum()), float((x * w).sum())]
    return out


@pytest.mark.parametrize(("cfg", "seed", "b", "digest", "fingerprint"), PINNED)
def test_arrays_are_bit_identical_to_before(cfg, seed, b, digest, fingerprint):
    batch = _batch(cfg, seed, b)
    if _digest(batch) == digest:
        return
    got = _fingerprint(batch)
    for i, (g, want) in enumerate(zip(got, fingerprint, strict=True)):
        scale = math.sqrt(max(fingerprint[3 * (i // 3) + 1], 1.0))  # the array's L2 norm
        assert g == pytest.approx(want, rel=1e-5, abs=1e-5 * scale), i


def test_noise_params_are_the_drawn_ones():
    cfg = SimConfig(size=32, n_dates=6, turbulence_std_mm=(2.0, 9.0))
    batch = _batch(cfg, 4, 5)
    noise = batch.noise
    assert isinstance(noise, NoiseParams)
    assert noise.turb_std_mm.shape == (5, 6) and noise.turb_beta.shape == (5,)
    assert ((noise.turb_std_mm >= 2.0 - 1e-5) & (noise.turb_std_mm <= 9.0 + 1e-5)).all()
    assert noise.turb_pad == cfg.turbulence_pad and noise.pixel_spacing_m == cfg.pixel_spacing_m
    assert noise.strat_coef_mm_per_km == cfg.stratified_mm_per_km
    assert noise.ramp_mm == cfg.ramp_mm and noise.offsets and noise.orbital_ramps
    off = SimConfig(size=16, n_dates=3, turbulence=False)
    none = _batch(off, 0, 2).noise
    assert not none.turbulence and torch.equal(none.turb_std_mm, torch.zeros(2, 3))


def test_turbulent_delay_params_match_the_field():
    kw = dict(
        pixel_spacing_m=90.0,
        powerlaw_prob=0.5,
        powerlaw_beta=(5 / 3, 11 / 3),
        vonkarman_hurst=(0.3, 1.0),
        correlation_length_km=(1.0, 30.0),
        std_mm=(1.0, 20.0),
        pad=2.0,
        device="cpu",
    )
    plain = turbulent_delay(torch.Generator().manual_seed(1), 4, 3, 32, **kw)
    field, params = turbulent_delay(
        torch.Generator().manual_seed(1), 4, 3, 32, return_params=True, **kw
    )
    assert torch.equal(plain, field)
    emp = (field - field.mean(dim=(-2, -1), keepdim=True)).pow(2).mean(dim=(-2, -1)).sqrt()
    torch.testing.assert_close(emp, params["std_mm"], rtol=1e-4, atol=0)
    assert ((params["beta"] >= 5 / 3 - 1e-6) & (params["beta"] <= 4.0 + 1e-6)).all()


def test_example_slices_and_to_moves():
    batch = _batch(SimConfig(size=16, n_dates=3), 0, 4)
    one = batch.noise.example(2)
    assert one.batch_size == 1 and one.n_dates == 3
    assert torch.equal(one.turb_std_mm[0], batch.noise.turb_std_mm[2])
    assert one.turb_beta.item() == batch.noise.turb_beta[2].item()
    assert torch.equal(batch.noise.example(-1).turb_std_mm, batch.noise.turb_std_mm[3:])
    with pytest.raises(IndexError, match="out of range"):
        batch.noise.example(4)
    moved = batch.to("cpu")
    assert isinstance(moved.noise, NoiseParams)
    assert torch.equal(moved.noise.turb_k0_per_m, batch.noise.turb_k0_per_m)


def test_bowl_code_and_default_weight():
    assert SOURCE_NAMES[:5] == (
        "none",
        "okada_strike_slip",
        "okada_dip_slip",
        "okada_tensile",
        "mogi",
    )
    assert SOURCE_NAMES.index("bowl") == 5
    assert SimConfig().source_weights()[5] == 0.0


@pytest.mark.parametrize("width_km", [5.0, 12.0])
def test_bowl_width_amplitude_and_sign(width_km):
    spacing = 90.0
    cfg = SimConfig(
        size=256,
        n_dates=3,
        pixel_spacing_m=spacing,
        bowl_width_km=(width_km, width_km),
        amplitude_mm=(7.0, 7.0),
        source_margin=0.45,
    ).with_source("bowl")
    batch = _batch(cfg, 2, 2)
    assert [batch.source_names[int(s)] for s in batch.source] == ["bowl", "bowl"]
    for cum in batch.cumulative.numpy():
        assert cum.min() == pytest.approx(-7.0, rel=1e-5)  # subsidence: away from the satellite
        assert cum.max() <= 0.0
        iy, ix = np.unravel_index(cum.argmin(), cum.shape)
        row = -cum[iy] / 7.0
        above = np.nonzero(row >= 0.5)[0]
        # FWHM measured on the map (linear interpolation at both half-maximum crossings)
        left, right = above[0], above[-1]
        lx = left - (row[left] - 0.5) / (row[left] - row[left - 1])
        rx = right + (row[right] - 0.5) / (row[right] - row[right + 1])
        assert abs((rx - lx) * spacing / 1e3 - width_km) < 2 * spacing / 1e3


def test_bowl_mixes_with_other_sources():
    cfg = SimConfig(size=32, n_dates=3, source_probs={"mogi": 1.0, "bowl": 1.0})
    batch = _batch(cfg, 0, 16)
    names = {batch.source_names[int(s)] for s in batch.source}
    assert names == {"mogi", "bowl"}
    assert math.isfinite(float(batch.deformation.abs().max()))
    torch.testing.assert_close(
        batch.amplitude_mm[batch.source == 5],
        batch.cumulative[batch.source == 5].abs().amax(dim=(-2, -1)),
    )

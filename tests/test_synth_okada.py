"""Okada (1985) surface displacement against Okada's own DC3D Fortran (okada_wrapper)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from insar_denoise.synth.okada import okada_surface

dc3d = pytest.importorskip("okada_wrapper").dc3dwrapper


def _dc3d_enu(points: np.ndarray, g: dict, poisson: float) -> np.ndarray:
    """Reference east/north/up via DC3D: rotate into its along-strike frame (x along strike,
    y to its left, z up), reference point below the bottom edge, surface z = 0."""
    s, c = np.sin(np.deg2rad(g["strike"])), np.cos(np.deg2rad(g["strike"]))
    sd, cd = np.sin(np.deg2rad(g["dip"])), np.cos(np.deg2rad(g["dip"]))
    alpha = 1.0 / (2.0 * (1.0 - poisson))  # (lambda + mu) / (lambda + 2 mu)
    out = []
    for px, py in points:
        de, dn = px - g["x0"], py - g["y0"]
        x = de * s + dn * c
        y = -de * c + dn * s + g["width"] * cd
        ok, u, _ = dc3d(
            alpha,
            [x, y, 0.0],
            g["depth"] + g["width"] * sd,
            g["dip"],
            [-g["length"] / 2, g["length"] / 2],
            [0.0, g["width"]],
            list(g["slip"]),
        )
        assert ok == 0
        out.append([u[0] * s - u[1] * c, u[0] * c + u[1] * s, u[2]])
    return np.asarray(out)


def _random_geometry(rng: np.random.Generator, i: int) -> dict:
    dip = 90.0 if i % 10 == 0 else rng.uniform(1.0, 90.0)
    return {
        "x0": rng.uniform(-5e3, 5e3),
        "y0": rng.uniform(-5e3, 5e3),
        "depth": rng.uniform(50.0, 5e3),
        "strike": rng.uniform(0.0, 360.0),
        "dip": dip,
        "length": rng.uniform(300.0, 15e3),
        "width": rng.uniform(300.0, 8e3),
        "slip": rng.normal(size=3),
    }


@pytest.mark.parametrize("poisson", [0.25, 0.3])
def test_matches_dc3d_over_random_geometries(poisson: float) -> None:
    rng = np.random.default_rng(42)
    n_geom = 60
    geoms = [_random_geometry(rng, i) for i in range(n_geom)]
    points = rng.uniform(-25e3, 25e3, size=(40, 2))
    col = lambda k: torch.tensor([g[k] for g in geoms], dtype=torch.float64)[:, None]  # noqa: E731
    slip = torch.tensor(np.array([g["slip"] for g in geoms]), dtype=torch.float64)
    east, north, up = okada_surface(
        torch.tensor(points[:, 0])[None],
        torch.tensor(points[:, 1])[None],
        x0_m=col("x0"),
        y0_m=col("y0"),
        depth_m=col("depth"),
        strike_deg=col("strike"),
        dip_deg=col("dip"),
        length_m=col("length"),
        width_m=col("width"),
        strike_slip_m=slip[:, :1],
        dip_slip_m=slip[:, 1:2],
        opening_m=slip[:, 2:],
        poisson=poisson,
    )
    ours = torch.stack([east, north, up], dim=-1).numpy()  # (geom, point, 3)
    for i, g in enumerate(geoms):
        ref = _dc3d_enu(points, g, poisson)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(ours[i], ref, rtol=1e-6, atol=1e-6 * scale, err_msg=str(g))


def test_each_dislocation_type_separately() -> None:
    rng = np.random.default_rng(7)
    points = rng.uniform(-10e3, 10e3, size=(25, 2))
    for i, slip in enumerate(np.eye(3)):
        g = {**_random_geometry(rng, i + 1), "slip": slip}
        e, n, u = okada_surface(
            torch.tensor(points[:, 0]),
            torch.tensor(points[:, 1]),
            x0_m=g["x0"],
            y0_m=g["y0"],
            depth_m=g["depth"],
            strike_deg=g["strike"],
            dip_deg=g["dip"],
            length_m=g["length"],
            width_m=g["width"],
            strike_slip_m=slip[0],
            dip_slip_m=slip[1],
            opening_m=slip[2],
        )
        ref = _dc3d_enu(points, g, 0.25)
        ours = torch.stack([e, n, u], dim=-1).numpy()
        np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6 * np.abs(ref).max())


def test_strike_slip_symmetry_and_far_field_decay() -> None:
    """Vertical left-lateral fault striking north: north motion is odd across the fault plane
    (east side north, west side south), no vertical motion on the perpendicular bisector, and
    the motion decays away from the fault."""
    x = torch.linspace(-20e3, 20e3, 81, dtype=torch.float64)
    xx, yy = torch.meshgrid(x, x, indexing="xy")
    kw = dict(
        x0_m=0.0, y0_m=0.0, depth_m=1e3, strike_deg=0.0, dip_deg=90.0, length_m=10e3, width_m=5e3
    )
    e, n, u = okada_surface(xx, yy, strike_slip_m=1.0, **kw)
    torch.testing.assert_close(n, -torch.flip(n, dims=[1]))  # north motion flips across the fault
    torch.testing.assert_close(u[40], torch.zeros_like(u[40]), atol=1e-12, rtol=0)
    assert n[40, 45] > 0 > n[40, 35]
    assert n.abs().max() > 10 * n[40, 0].abs()


def test_float32_runs_and_is_close_near_the_source() -> None:
    x = torch.linspace(-5e3, 5e3, 33)
    xx, yy = torch.meshgrid(x, x, indexing="xy")
    kw = dict(
        x0_m=200.0,
        y0_m=-300.0,
        depth_m=500.0,
        strike_deg=35.0,
        dip_deg=40.0,
        length_m=4e3,
        width_m=2e3,
        dip_slip_m=1.0,
    )
    lo = torch.stack(okada_surface(xx, yy, **kw))
    hi = torch.stack(okada_surface(xx.double(), yy.double(), **kw))
    assert lo.dtype == torch.float32
    torch.testing.assert_close(lo.double(), hi, atol=1e-4 * hi.abs().max().item(), rtol=0)


@pytest.mark.parametrize("dip", [90.0, 70.0])
def test_a_slip_given_as_plain_zero_is_skipped_with_the_same_result(dip: float) -> None:
    # the kinds skipped (plain zeros) against all nine terms computed (zeros as tensors):
    # the same bits on a grid that holds the trace and both tips' lines
    x = torch.linspace(-8e3, 8e3, 65, dtype=torch.float64)
    xx, yy = torch.meshgrid(x, x, indexing="xy")
    kw = dict(
        x0_m=250.0,
        y0_m=-500.0,
        depth_m=0.0,
        strike_deg=20.0,
        dip_deg=dip,
        length_m=6e3,
        width_m=3e3,
    )
    zero = torch.tensor(0.0, dtype=torch.float64)
    for slip in ({"strike_slip_m": 1.0}, {"dip_slip_m": 0.5}, {"opening_m": 2.0}):
        kinds = {k: slip.get(k, zero) for k in ("strike_slip_m", "dip_slip_m", "opening_m")}
        skipped = torch.stack(okada_surface(xx, yy, **kw, **slip))
        full = torch.stack(okada_surface(xx, yy, **kw, **kinds))
        finite = torch.isfinite(full)
        assert finite.float().mean() > 0.9
        assert torch.equal(skipped[finite], full[finite])


def test_unit_slips_are_each_slip_alone() -> None:
    from insar_denoise.synth.okada import okada_unit_slips

    x = torch.linspace(-8e3, 8e3, 49, dtype=torch.float64)
    xx, yy = torch.meshgrid(x, x, indexing="xy")
    kw = dict(
        x0_m=-300.0,
        y0_m=400.0,
        depth_m=500.0,
        strike_deg=70.0,
        dip_deg=35.0,
        length_m=5e3,
        width_m=2e3,
    )
    slips = okada_unit_slips(xx, yy, **kw, kinds=(True, True, True))
    names = ("strike_slip_m", "dip_slip_m", "opening_m")
    assert len(slips) == 3
    for name, got in zip(names, slips, strict=True):
        alone = okada_surface(xx, yy, **kw, **{name: 1.0})
        for a, b in zip(got, alone, strict=True):
            assert torch.equal(a, b)
    assert not torch.allclose(slips[0][2], slips[1][2])
    (dip_only,) = okada_unit_slips(xx, yy, **kw, kinds=(False, True, False))
    assert all(torch.equal(a, b) for a, b in zip(dip_only, slips[1], strict=True))

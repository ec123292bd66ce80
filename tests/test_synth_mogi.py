"""Mogi (1958) point source and the line-of-sight projection."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from insar_denoise.synth.los import los_unit_vector, project_los
from insar_denoise.synth.mogi import mogi_surface


def _mogi_numpy(x, y, x0, y0, d, dv, nu):
    """Independent closed form: u_r = C r / R^3, u_z = C d / R^3, C = (1 - nu) dV / pi."""
    dx, dy = x - x0, y - y0
    r = np.hypot(dx, dy)
    big_r = np.sqrt(r**2 + d**2)
    c = (1 - nu) * dv / np.pi
    ur = c * r / big_r**3
    az = np.arctan2(dy, dx)
    return ur * np.cos(az), ur * np.sin(az), c * d / big_r**3


@pytest.mark.parametrize("nu", [0.25, 0.33])
def test_matches_closed_form(nu: float) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.uniform(-20e3, 20e3, (2, 200))
    for _ in range(10):
        x0, y0 = rng.uniform(-5e3, 5e3, 2)
        d = rng.uniform(200.0, 8e3)
        dv = rng.normal() * 1e6
        ours = mogi_surface(
            torch.tensor(x),
            torch.tensor(y),
            x0_m=x0,
            y0_m=y0,
            depth_m=d,
            volume_change_m3=dv,
            poisson=nu,
        )
        ref = _mogi_numpy(x, y, x0, y0, d, dv, nu)
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(a.numpy(), b, rtol=1e-12, atol=1e-18)


def test_known_value() -> None:
    # 1e6 m^3 at 1 km depth, nu = 0.25: uplift above = C / d^2 = 0.75e6 / (pi 1e6) = 0.2387 m
    e, n, u = mogi_surface(
        torch.tensor([0.0, 1000.0], dtype=torch.float64),
        torch.tensor([0.0, 0.0], dtype=torch.float64),
        x0_m=0.0,
        y0_m=0.0,
        depth_m=1000.0,
        volume_change_m3=1e6,
    )
    assert u[0].item() == pytest.approx(0.75e6 / (math.pi * 1e6), rel=1e-12)
    # at r = d: u_r = u_z = C d / (sqrt(2) d)^3
    assert e[1].item() == pytest.approx(u[1].item(), rel=1e-12)
    assert u[1].item() == pytest.approx(u[0].item() / 2**1.5, rel=1e-12)
    assert n.abs().max().item() == 0.0


@pytest.mark.parametrize("incidence", [30.0, 38.5, 46.0])
@pytest.mark.parametrize("heading", [-12.0, 192.0, -168.0])
def test_los_unit_vector(incidence: float, heading: float) -> None:
    e, n, u = los_unit_vector(incidence, heading)
    assert float(e**2 + n**2 + u**2) == pytest.approx(1.0)
    # pure uplift projects with cos(incidence), towards the satellite
    up = project_los(torch.zeros(1), torch.zeros(1), torch.ones(1), incidence, heading)
    assert up.item() == pytest.approx(math.cos(math.radians(incidence)), rel=1e-6)
    # the horizontal look is perpendicular to the flight direction
    fe, fn = math.sin(math.radians(heading)), math.cos(math.radians(heading))
    assert float(e * fe + n * fn) == pytest.approx(0.0, abs=1e-12)


def test_los_east_motion_sign_ascending_vs_descending() -> None:
    """Sentinel-1 looks east on ascending passes and west on descending ones (right-looking):
    eastward motion moves away from an ascending satellite (negative LOS), towards a
    descending one (positive)."""
    east = torch.ones(1)
    zero = torch.zeros(1)
    asc = project_los(east, zero, zero, 39.0, -12.0).item()
    desc = project_los(east, zero, zero, 39.0, 192.0).item()
    assert asc < 0 < desc
    assert asc == pytest.approx(-math.sin(math.radians(39.0)) * math.cos(math.radians(12.0)))
    # northward motion: small and away from an ascending satellite (it sits west-south-west)
    north_asc = project_los(zero, torch.ones(1), zero, 39.0, -12.0).item()
    assert north_asc == pytest.approx(-math.sin(math.radians(39.0)) * math.sin(math.radians(12.0)))

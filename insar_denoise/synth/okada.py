"""Surface displacement of a finite rectangular dislocation in an elastic half-space.

Okada (1985), "Surface deformation due to shear and tensile faults in a half-space",
BSSA 75(4), 1135-1154. Vectorised in torch over any broadcastable set of observation
points and sources (grid x batch); float64 is recommended (the formulas difference
nearly equal terms far from the fault).

Geometry used here (map frame, metres): ``x`` east, ``y`` north, depth positive down.
A fault is described by the surface projection ``(x0, y0)`` of the midpoint of its top
edge, the depth of that top edge, its strike (degrees clockwise from north; the fault dips
to the right of the strike direction, Aki & Richards convention), dip (degrees), along-strike
length and down-dip width. Slip follows Okada: ``strike_slip`` > 0 is left-lateral,
``dip_slip`` > 0 is reverse (thrust), ``opening`` > 0 is tensile opening.
"""

from __future__ import annotations

import math

import torch

_COS_EPS = 1e-10


def _plus(r: torch.Tensor, a: torch.Tensor, rest2: torch.Tensor) -> torch.Tensor:
    """``r + a`` without cancellation: ``(r**2 - a**2) / (r - a)`` where ``a < 0``."""
    neg = a < 0
    return torch.where(neg, rest2 / torch.where(neg, r - a, torch.ones_like(r)), r + a)


def _weighted(
    factors: tuple[torch.Tensor, ...], terms: list[torch.Tensor | None], kinds: tuple[bool, ...]
) -> torch.Tensor:
    """``sum(factor * term)`` over the slip kinds in ``kinds``, in their order."""
    out = None
    for factor, term, kind in zip(factors, terms, kinds, strict=True):
        if kind:
            out = factor * term if out is None else out + factor * term
    return out


def _corner_terms(
    xi: torch.Tensor,
    eta: torch.Tensor,
    q: torch.Tensor,
    sd: torch.Tensor,
    cd: torch.Tensor,
    m: float,
    kinds: tuple[bool, bool, bool] = (True, True, True),
) -> tuple[torch.Tensor | None, ...]:
    """The nine bracketed Okada functions at one corner of Chinnery's notation.

    Returns ``(ux_ss, uy_ss, uz_ss, ux_ds, uy_ds, uz_ds, ux_tf, uy_tf, uz_tf)`` without the
    ``-U/(2 pi)`` factors; ``None`` for the slip kinds (strike, dip, tensile) that ``kinds``
    leaves out. ``m`` is ``mu / (lambda + mu) = 1 - 2 nu``.
    """
    xi2, eta2, q2 = xi * xi, eta * eta, q * q
    r = torch.sqrt(xi2 + eta2 + q2)
    yb = eta * cd + q * sd
    db = eta * sd - q * cd
    x = torch.sqrt(xi2 + q2)
    r_eta = _plus(r, eta, xi2 + q2)
    r_db = _plus(r, db, xi2 + yb * yb)
    log_r_eta = torch.log(r_eta)

    # Okada (1985), BSSA 75(4), eq. 25-27 note: theta = atan(xi eta / (q R)), 0 on q = 0 (DC3D)
    q_zero = q == 0
    theta = torch.where(
        q_zero, torch.zeros_like(q), torch.atan(xi * eta / torch.where(q_zero, 1.0, q * r))
    )

    regular = cd.abs() > _COS_EPS
    if bool(regular.any()):
        # Okada (1985), BSSA 75(4), eq. 28: I1..I5 for cos(dip) != 0
        cds = torch.where(regular, cd, torch.ones_like(cd))
        tan_d = sd / cds
        xi_zero = xi == 0
        i5_arg = (eta * (x + q * cds) + x * (r + x) * sd) / torch.where(
            xi_zero, 1.0, xi * (r + x) * cds
        )
        i5 = torch.where(xi_zero, torch.zeros_like(xi), m * 2.0 / cds * torch.atan(i5_arg))
        i4 = m / cds * (torch.log(r_db) - sd * log_r_eta)
        i3 = m * (yb / (cds * r_db) - log_r_eta) + tan_d * i4
        i1 = m * (-xi / (cds * r_db)) - tan_d * i5
    if not bool(regular.all()):
        # Okada (1985), BSSA 75(4), eq. 29: I1..I5 for cos(dip) = 0
        i5_vert = -m * xi * sd / r_db
        i4_vert = -m * q / r_db
        i3_vert = 0.5 * m * (eta / r_db + yb * q / (r_db * r_db) - log_r_eta)
        i1_vert = -0.5 * m * xi * q / (r_db * r_db)
        if bool(regular.any()):
            i5 = torch.where(regular, i5, i5_vert)
            i4 = torch.where(regular, i4, i4_vert)
            i3 = torch.where(regular, i3, i3_vert)
            i1 = torch.where(regular, i1, i1_vert)
        else:  # every dip vertical: the regular branch would be discarded
            i1, i3, i4, i5 = i1_vert, i3_vert, i4_vert, i5_vert
    i2 = m * (-log_r_eta) - i3

    rr_eta = r * r_eta
    xiq_rre = xi * q / rr_eta
    ux_ss = uy_ss = uz_ss = ux_ds = uy_ds = uz_ds = ux_tf = uy_tf = uz_tf = None
    if kinds[0]:
        # Okada (1985), BSSA 75(4), eq. 25: strike-slip
        ux_ss = xiq_rre + theta + i1 * sd
        uy_ss = yb * q / rr_eta + q * cd / r_eta + i2 * sd
        uz_ss = db * q / rr_eta + q * sd / r_eta + i4 * sd
    if kinds[1] or kinds[2]:
        rr_xi = r * _plus(r, xi, eta2 + q2)
    if kinds[1]:
        # Okada (1985), BSSA 75(4), eq. 26: dip-slip
        ux_ds = q / r - i3 * sd * cd
        uy_ds = yb * q / rr_xi + cd * theta - i1 * sd * cd
        uz_ds = db * q / rr_xi + sd * theta - i5 * sd * cd
    if kinds[2]:
        # Okada (1985), BSSA 75(4), eq. 27: tensile
        ux_tf = q2 / rr_eta - i3 * sd * sd
        uy_tf = -db * q / rr_xi - sd * (xiq_rre - theta) - i1 * sd * sd
        uz_tf = yb * q / rr_xi + cd * (xiq_rre - theta) - i5 * sd * sd
    return (ux_ss, uy_ss, uz_ss, ux_ds, uy_ds, uz_ds, ux_tf, uy_tf, uz_tf)


def okada_surface(
    x_m: torch.Tensor,
    y_m: torch.Tensor,
    *,
    x0_m: torch.Tensor | float,
    y0_m: torch.Tensor | float,
    depth_m: torch.Tensor | float,
    strike_deg: torch.Tensor | float,
    dip_deg: torch.Tensor | float,
    length_m: torch.Tensor | float,
    width_m: torch.Tensor | float,
    strike_slip_m: torch.Tensor | float = 0.0,
    dip_slip_m: torch.Tensor | float = 0.0,
    opening_m: torch.Tensor | float = 0.0,
    poisson: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """East, north and up surface displacement of rectangular dislocations (Okada 1985).

    All arguments broadcast together (e.g. points ``(H, W)`` with sources ``(B, 1, 1)``);
    the computation runs in the dtype and on the device of ``x_m``.

    Parameters
    ----------
    x_m, y_m : Tensor
        Observation points, east and north (m), on the free surface z = 0.
    x0_m, y0_m : Tensor or float
        East/north (m) of the surface projection of the top-edge midpoint.
    depth_m : Tensor or float
        Depth of the top edge (m, positive down, >= 0).
    strike_deg, dip_deg : Tensor or float
        Strike (degrees clockwise from north) and dip (degrees, 0-90, dipping to the right
        of the strike direction).
    length_m, width_m : Tensor or float
        Along-strike length and down-dip width (m).
    strike_slip_m, dip_slip_m, opening_m : Tensor or float
        Left-lateral slip, reverse slip and tensile opening (m, or any length unit: the
        displacement has the same unit).
    poisson : float
        Poisson ratio of the half-space (default 0.25).

    Returns
    -------
    (east, north, up) : tuple of Tensor
        Displacement components, same unit as the slip. Points exactly on the surface trace
        of a fault that reaches the surface (``depth_m = 0``) are singular and give NaN.
    """
    slips = (strike_slip_m, dip_slip_m, opening_m)
    # a slip kind given as a plain zero is skipped (its terms would be multiplied by zero)
    kinds = tuple(not (isinstance(u, (int, float)) and u == 0) for u in slips)
    if not any(kinds):
        kinds = (True, False, False)
    as_t = lambda v: torch.as_tensor(v, dtype=x_m.dtype, device=x_m.device)  # noqa: E731
    total, ss, cs = _chinnery(
        x_m, y_m, x0_m, y0_m, depth_m, strike_deg, dip_deg, length_m, width_m, kinds, poisson
    )
    # Okada (1985), BSSA 75(4), eq. 25-27: prefactors -U1/2pi, -U2/2pi, +U3/2pi
    factors = (-as_t(slips[0]), -as_t(slips[1]), as_t(slips[2]))
    ux, uy, uz = (
        _K * _weighted(factors, [total[axis + 3 * kind] for kind in range(3)], kinds)
        for axis in range(3)
    )
    east = ux * ss - uy * cs
    north = ux * cs + uy * ss
    return east, north, uz


_K = 1.0 / (2.0 * math.pi)


def _chinnery(
    x_m: torch.Tensor,
    y_m: torch.Tensor,
    x0_m,
    y0_m,
    depth_m,
    strike_deg,
    dip_deg,
    length_m,
    width_m,
    kinds: tuple[bool, bool, bool],
    poisson: float,
) -> tuple[list, torch.Tensor, torch.Tensor]:
    """The nine Okada functions summed over the four corners (``None`` for the slip kinds
    ``kinds`` leaves out) and the sine and cosine of the strike (:func:`okada_surface`)."""
    as_t = lambda v: torch.as_tensor(v, dtype=x_m.dtype, device=x_m.device)  # noqa: E731
    strike = torch.deg2rad(as_t(strike_deg))
    dip = torch.deg2rad(as_t(dip_deg))
    length, width = as_t(length_m), as_t(width_m)
    sd, cd = torch.sin(dip), torch.cos(dip)
    ss, cs = torch.sin(strike), torch.cos(strike)
    de = x_m - as_t(x0_m)
    dn = y_m - as_t(y0_m)
    # Rotate into Okada's frame: x along strike, y to its left; origin below the bottom edge.
    xs = de * ss + dn * cs + 0.5 * length
    ys = -de * cs + dn * ss + width * cd
    d = as_t(depth_m) + width * sd
    # Okada (1985), BSSA 75(4), eq. 30: p and q
    p = ys * cd + d * sd
    q = ys * sd - d * cd
    m = 1.0 - 2.0 * poisson
    # Okada (1985), BSSA 75(4), eq. 24: Chinnery f(x,p) - f(x,p-W) - f(x-L,p) + f(x-L,p-W)
    total = list(_corner_terms(xs, p, q, sd, cd, m, kinds))
    for sign, xi, eta in (
        (-1.0, xs, p - width),
        (-1.0, xs - length, p),
        (1.0, xs - length, p - width),
    ):
        terms = _corner_terms(xi, eta, q, sd, cd, m, kinds)
        total = [None if a is None else a + sign * t for a, t in zip(total, terms, strict=True)]
    return total, ss, cs


def okada_unit_slips(
    x_m: torch.Tensor,
    y_m: torch.Tensor,
    *,
    x0_m: torch.Tensor | float,
    y0_m: torch.Tensor | float,
    depth_m: torch.Tensor | float,
    strike_deg: torch.Tensor | float,
    dip_deg: torch.Tensor | float,
    length_m: torch.Tensor | float,
    width_m: torch.Tensor | float,
    kinds: tuple[bool, bool, bool] = (True, True, False),
    poisson: float = 0.25,
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """``(east, north, up)`` of a unit slip of each kind ``kinds`` selects (strike, dip,
    tensile), the corners' shared terms computed once: each the same as
    :func:`okada_surface` with that slip alone set to 1."""
    total, ss, cs = _chinnery(
        x_m, y_m, x0_m, y0_m, depth_m, strike_deg, dip_deg, length_m, width_m, kinds, poisson
    )
    one = torch.as_tensor(1.0, dtype=x_m.dtype, device=x_m.device)
    out = []
    for kind, factor in enumerate((-one, -one, one)):  # Okada (1985), eq. 25-27 prefactors
        if kinds[kind]:
            ux, uy, uz = (_K * (factor * total[axis + 3 * kind]) for axis in range(3))
            out.append((ux * ss - uy * cs, ux * cs + uy * ss, uz))
    return out

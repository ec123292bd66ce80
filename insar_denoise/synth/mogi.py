"""Surface displacement of a Mogi point pressure source in an elastic half-space.

Mogi (1958), Bull. Earthq. Res. Inst. 36, 99-134; volume form as in Segall (2010), eq. 7.14.
"""

from __future__ import annotations

import math

import torch


def mogi_surface(
    x_m: torch.Tensor,
    y_m: torch.Tensor,
    *,
    x0_m: torch.Tensor | float,
    y0_m: torch.Tensor | float,
    depth_m: torch.Tensor | float,
    volume_change_m3: torch.Tensor | float,
    poisson: float = 0.25,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """East, north and up surface displacement (m) of a Mogi source.

    All arguments broadcast together; the result has the dtype and device of ``x_m``.

    Parameters
    ----------
    x_m, y_m : Tensor
        Observation points, east and north (m), on the free surface.
    x0_m, y0_m, depth_m : Tensor or float
        Source position (m); depth positive down.
    volume_change_m3 : Tensor or float
        Volume change (m^3), > 0 for inflation (uplift).
    poisson : float
        Poisson ratio (default 0.25).

    Returns
    -------
    (east, north, up) : tuple of Tensor
        Displacement (m).
    """
    as_t = lambda v: torch.as_tensor(v, dtype=x_m.dtype, device=x_m.device)  # noqa: E731
    dx = x_m - as_t(x0_m)
    dy = y_m - as_t(y0_m)
    d = as_t(depth_m)
    # Mogi (1958): u_r = C r / R^3, u_z = C d / R^3, C = (1 - nu) dV / pi
    c = (1.0 - poisson) * as_t(volume_change_m3) / math.pi
    k = c / (dx * dx + dy * dy + d * d) ** 1.5
    return k * dx, k * dy, k * d

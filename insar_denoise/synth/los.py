"""Projection of east/north/up displacement onto the radar line of sight (LOS).

Positive LOS = motion towards the satellite (MintPy's convention). The SAR is right-looking,
so the ground-to-satellite vector points to the left of the flight direction.
Sentinel-1 headings: ascending about -12 degrees, descending about -168 (= 192) degrees.
"""

from __future__ import annotations

import torch


def los_unit_vector(
    incidence_deg: torch.Tensor | float, heading_deg: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """East, north, up components of the ground-to-satellite unit vector.

    Parameters
    ----------
    incidence_deg : Tensor or float
        Incidence angle from the vertical at the ground (degrees).
    heading_deg : Tensor or float
        Flight direction (degrees clockwise from north).

    Returns
    -------
    (east, north, up) : tuple of Tensor
    """
    inc = torch.deg2rad(torch.as_tensor(incidence_deg, dtype=torch.float64))
    head = torch.deg2rad(torch.as_tensor(heading_deg, dtype=torch.float64))
    # azimuth of the ground-to-satellite direction = heading - 90 degrees (right-looking)
    east = -torch.sin(inc) * torch.cos(head)
    north = torch.sin(inc) * torch.sin(head)
    return east, north, torch.cos(inc)


def project_los(
    east: torch.Tensor,
    north: torch.Tensor,
    up: torch.Tensor,
    incidence_deg: torch.Tensor | float,
    heading_deg: torch.Tensor | float,
) -> torch.Tensor:
    """LOS displacement (same unit as the input), positive towards the satellite.

    Angles broadcast against the displacement components (e.g. ``(B, 1, 1)`` with ``(B, H, W)``).
    """
    le, ln, lu = (
        v.to(device=east.device, dtype=east.dtype)
        for v in los_unit_vector(incidence_deg, heading_deg)
    )
    return east * le + north * ln + up * lu

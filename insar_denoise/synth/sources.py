"""Random deformation sources (Okada faults, Mogi sources, subsidence bowls) as LOS maps of
unit amplitude."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from insar_denoise.synth import sampling
from insar_denoise.synth.config import SOURCE_NAMES, SimConfig
from insar_denoise.synth.los import project_los
from insar_denoise.synth.mogi import mogi_surface
from insar_denoise.synth.okada import okada_surface

OKADA_KINDS = {
    SOURCE_NAMES.index("okada_strike_slip"): 0,
    SOURCE_NAMES.index("okada_dip_slip"): 1,
    SOURCE_NAMES.index("okada_tensile"): 2,
}
MOGI = SOURCE_NAMES.index("mogi")
BOWL = SOURCE_NAMES.index("bowl")
#: Okada sources up to this dip run in float32 (< 5e-4 of the peak off float64); steeper
#: ones lose digits in the 1 / cos(dip) terms and run in float64.
FLOAT32_MAX_DIP_DEG = 75.0


def grid_coords_m(
    size: int, pixel_spacing_m: float, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """East and north (m) of pixel centres, ``(size, size)`` float64, origin at the tile centre;
    row 0 is the northern edge."""
    c = (
        torch.arange(size, device=device, dtype=torch.float64) - (size - 1) / 2.0
    ) * pixel_spacing_m
    north, east = torch.meshgrid(-c, c, indexing="ij")
    return east, north


def gaussian_bowl(
    east: torch.Tensor,
    north: torch.Tensor,
    x0_m: torch.Tensor,
    y0_m: torch.Tensor,
    fwhm_m: torch.Tensor,
) -> torch.Tensor:
    """Vertical displacement of a Gaussian subsidence bowl, -1 at its centre.

    ``fwhm_m`` is the full width at half maximum (m): sigma = FWHM / (2 sqrt(2 ln 2)).
    """
    sigma = fwhm_m / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    r2 = (east - x0_m) ** 2 + (north - y0_m) ** 2
    return -torch.exp(-0.5 * r2 / (sigma * sigma))


@dataclass
class SourceGeometry:
    """The geometry drawn for each example of a batch: ``(B,)`` float64 tensors (metres and
    degrees; every family's parameters are drawn for every example, whatever its source).

    ``bowl_fwhm_m`` is NaN when the batch drew no bowl; ``peak`` is the max |LOS| of the
    unit source before normalisation (0 for ``none``): ``unit map = LOS / peak``.
    """

    x0_m: torch.Tensor
    y0_m: torch.Tensor
    sign: torch.Tensor
    strike_deg: torch.Tensor
    dip_deg: torch.Tensor
    length_m: torch.Tensor
    width_m: torch.Tensor
    top_m: torch.Tensor
    mogi_depth_m: torch.Tensor
    bowl_fwhm_m: torch.Tensor
    incidence_deg: torch.Tensor
    heading_deg: torch.Tensor
    peak: torch.Tensor

    def to(self, device: torch.device | str) -> SourceGeometry:
        """Copy on ``device``."""
        return SourceGeometry(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def unit_los_maps(
    gen: torch.Generator,
    config: SimConfig,
    source: torch.Tensor,
    incidence_deg: torch.Tensor,
    heading_deg: torch.Tensor,
    device: torch.device | str,
) -> torch.Tensor:
    """LOS maps ``(B, H, W)`` float32 with max |LOS| = 1 (all zero for ``none``): the maps of
    :func:`los_maps_and_geometry`."""
    return los_maps_and_geometry(gen, config, source, incidence_deg, heading_deg, device)[0]


def los_maps_and_geometry(
    gen: torch.Generator,
    config: SimConfig,
    source: torch.Tensor,
    incidence_deg: torch.Tensor,
    heading_deg: torch.Tensor,
    device: torch.device | str,
) -> tuple[torch.Tensor, SourceGeometry]:
    """LOS maps ``(B, H, W)`` float32 with max |LOS| = 1 (all zero for ``none``) and the
    geometry drawn for them.

    The source position is uniform in the tile minus ``source_margin`` at each border;
    slip / volume change has a random sign; a bowl always subsides (negative LOS). Mogi
    sources, bowls and faults steeper than :data:`FLOAT32_MAX_DIP_DEG` are computed in
    float64, other faults in float32.
    """
    b, n = source.shape[0], config.size
    east, north = grid_coords_m(n, config.pixel_spacing_m, device)
    half = 0.5 * n * config.pixel_spacing_m * (1.0 - 2.0 * config.source_margin)
    f64 = torch.float64
    shp = (b, 1, 1)
    x0 = sampling.uniform(gen, (-half, half), shp, device, f64)
    y0 = sampling.uniform(gen, (-half, half), shp, device, f64)
    sgn = sampling.sign(gen, shp, device).double()
    strike = sampling.uniform(gen, (0.0, 360.0), shp, device, f64)
    dip = sampling.uniform(gen, config.fault_dip_deg, shp, device, f64)
    length = 1e3 * sampling.log_uniform(gen, config.fault_length_km, shp, device, f64)
    width = 1e3 * sampling.log_uniform(gen, config.fault_width_km, shp, device, f64)
    top = 1e3 * sampling.uniform(gen, config.fault_top_depth_km, shp, device, f64)
    mogi_depth = 1e3 * sampling.uniform(gen, config.mogi_depth_km, shp, device, f64)
    # drawn only when needed, so that batches without bowls keep their former draws
    bowl_width = None
    if bool((source == BOWL).any()):
        bowl_width = 1e3 * sampling.uniform(gen, config.bowl_width_km, shp, device, f64)
    out = torch.zeros((b, n, n), device=device, dtype=f64)
    src = source.to(device)
    inc = incidence_deg.to(device, f64)[:, None, None]
    head = heading_deg.to(device, f64)[:, None, None]
    okada_codes = torch.tensor(list(OKADA_KINDS), device=device)
    lut = torch.zeros(len(SOURCE_NAMES), dtype=torch.long, device=device)
    lut[okada_codes] = torch.tensor(list(OKADA_KINDS.values()), device=device)
    is_okada = torch.isin(src, okada_codes)
    steep = dip[:, 0, 0] > FLOAT32_MAX_DIP_DEG
    for dtype, group in ((torch.float32, is_okada & ~steep), (f64, is_okada & steep)):
        i = torch.nonzero(group).flatten()
        if i.numel() == 0:
            continue
        slip = torch.zeros((3, i.numel(), 1, 1), device=device, dtype=dtype)
        slip[lut[src[i]], torch.arange(i.numel(), device=device)] = sgn[i].to(dtype)
        e, nn, u = okada_surface(
            east.to(dtype),
            north.to(dtype),
            x0_m=x0[i].to(dtype),
            y0_m=y0[i].to(dtype),
            depth_m=top[i].to(dtype),
            strike_deg=strike[i].to(dtype),
            dip_deg=dip[i].to(dtype),
            length_m=length[i].to(dtype),
            width_m=width[i].to(dtype),
            strike_slip_m=slip[0],
            dip_slip_m=slip[1],
            opening_m=slip[2],
            poisson=config.poisson,
        )
        out[i] = project_los(e, nn, u, inc[i].to(dtype), head[i].to(dtype)).double()
    mogi_idx = torch.nonzero(src == MOGI).flatten()
    if mogi_idx.numel():
        i = mogi_idx
        e, nn, u = mogi_surface(
            east,
            north,
            x0_m=x0[i],
            y0_m=y0[i],
            depth_m=mogi_depth[i],
            volume_change_m3=sgn[i],
            poisson=config.poisson,
        )
        out[i] = project_los(e, nn, u, inc[i], head[i])
    bowl_idx = torch.nonzero(src == BOWL).flatten()
    if bowl_width is not None and bowl_idx.numel():
        i = bowl_idx
        up = gaussian_bowl(east, north, x0[i], y0[i], bowl_width[i])
        out[i] = project_los(torch.zeros_like(up), torch.zeros_like(up), up, inc[i], head[i])
    # a pixel exactly on the trace of a surface-breaking fault is singular (Okada's log terms)
    out = torch.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    peak = out.abs().amax(dim=(-2, -1), keepdim=True)
    out = torch.where(peak > 0, out / peak.clamp_min(1e-300), out)
    nan = torch.full((b,), math.nan, device=device, dtype=f64)
    geometry = SourceGeometry(
        x0_m=x0.flatten(),
        y0_m=y0.flatten(),
        sign=sgn.flatten(),
        strike_deg=strike.flatten(),
        dip_deg=dip.flatten(),
        length_m=length.flatten(),
        width_m=width.flatten(),
        top_m=top.flatten(),
        mogi_depth_m=mogi_depth.flatten(),
        bowl_fwhm_m=nan if bowl_width is None else bowl_width.flatten(),
        incidence_deg=inc.flatten(),
        heading_deg=head.flatten(),
        peak=peak.flatten(),
    )
    return out.float(), geometry

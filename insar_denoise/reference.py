"""The spatial reference of a run: which pixel (or area) the outputs are relative to.

InSAR displacement is relative in space: every map is known up to a constant per date.
:func:`resolve_reference` picks the reference from an option (``--ref-yx``, ``--ref-lalo``,
``--ref-area``), else from the input (MintPy ``REF_Y``/``REF_X`` or ``REF_LAT``/``REF_LON``,
LiCSBAS ``refarea``), else the median of the valid area; :func:`apply_reference` subtracts,
per date, each variable's value there (or its median over the area). Both are pure
functions of the canonical Dataset (or of a result Dataset).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import numpy as np
import xarray as xr

from insar_denoise.errors import ConfigError

log = logging.getLogger(__name__)

#: variables (mm) that are re-referenced; the others (dem, valid, uncertainty, ...) are not
REFERENCED = ("displacement", "deformation", "noise", "cumulative", "cumulative_deformation")
#: side (px) of the central window whose valid pixels give the default median reference
MEDIAN_WINDOW_PX = 1024


@dataclass(frozen=True)
class Reference:
    """Where the outputs are referenced.

    Attributes
    ----------
    kind : ``"yx"`` (one pixel), ``"area"`` (median over a box) or ``"median"`` (median
        over the valid pixels of the central ``MEDIAN_WINDOW_PX`` window).
    rows, cols : half-open pixel ranges ``(start, stop)`` of the pixel or box.
    source : where it came from (``--ref-yx``, ``--ref-lalo``, ``--ref-area``, ``MintPy
        REF_Y/REF_X``, ``LiCSBAS refarea``, ``default``).
    lalo : the latitude/longitude asked for (``--ref-lalo`` or MintPy REF_LAT/REF_LON).
    """

    kind: str
    rows: tuple[int, int] = (0, 0)
    cols: tuple[int, int] = (0, 0)
    source: str = "default"
    lalo: tuple[float, float] | None = None

    @property
    def yx(self) -> tuple[int, int] | None:
        """``(row, col)`` of a one-pixel reference, else None."""
        return (self.rows[0], self.cols[0]) if self.kind == "yx" else None

    def describe(self) -> str:
        """Short text for tags and summaries, e.g. ``yx=12,30`` or ``median of valid area``."""
        if self.kind == "median":
            return "median of valid area"
        if self.kind == "area":
            text = f"area=rows {self.rows[0]}:{self.rows[1]}, cols {self.cols[0]}:{self.cols[1]}"
        else:
            text = f"yx={self.rows[0]},{self.cols[0]}"
            if self.lalo is not None:
                text = f"lalo={self.lalo[0]:.6f},{self.lalo[1]:.6f} ({text})"
        return text if self.source.startswith("--") else f"{text} (from {self.source})"


def _pixel(ds: xr.Dataset, row: int, col: int, option: str, source: str, lalo=None) -> Reference:
    h, w = ds.sizes["y"], ds.sizes["x"]
    if not (0 <= row < h and 0 <= col < w):
        raise ConfigError(f"{option}: pixel ({row}, {col}) is outside the {h} x {w} grid")
    values = np.asarray(ds["displacement"].transpose("time", "y", "x")[:, row, col].values)
    bad = int((~np.isfinite(values)).sum())
    if "valid" in ds and not bool(ds["valid"].transpose("y", "x")[row, col]):
        bad = len(values)
    if bad:
        raise ConfigError(
            f"{option}: pixel ({row}, {col}) is NaN on {bad} of {len(values)} dates; choose a "
            "pixel valid on every date, or --ref-area"
        )
    return Reference("yx", (row, row + 1), (col, col + 1), source, lalo)


def _area(ds: xr.Dataset, box, option: str, source: str) -> Reference:
    r0, r1, c0, c1 = (int(v) for v in box)
    h, w = ds.sizes["y"], ds.sizes["x"]
    if not (0 <= r0 < r1 <= h and 0 <= c0 < c1 <= w):
        raise ConfigError(
            f"{option}: box rows {r0}:{r1}, cols {c0}:{c1} is not inside the {h} x {w} grid "
            "(ROW0 < ROW1 <= rows, COL0 < COL1 <= columns, end excluded)"
        )
    disp = ds["displacement"].transpose("time", "y", "x")[:, r0:r1, c0:c1]
    empty = int((~np.isfinite(np.asarray(disp.values)).reshape(len(disp), -1).any(1)).sum())
    if empty:
        raise ConfigError(f"{option}: box rows {r0}:{r1}, cols {c0}:{c1} is NaN on {empty} dates")
    return Reference("area", (r0, r1), (c0, c1), source)


def lalo_to_yx(ds: xr.Dataset, lat: float, lon: float) -> tuple[int, int]:
    """Row and column of the pixel holding WGS 84 ``lat``/``lon`` (degrees).

    When the stack's CRS is geographic the coordinates are taken in it as they are (as
    MintPy does); otherwise they are transformed from EPSG:4326 to the stack's CRS.
    """
    crs = ds.rio.crs
    x, y = float(lon), float(lat)
    if crs is not None and not crs.is_geographic:
        from rasterio.warp import transform

        xs, ys = transform("EPSG:4326", crs, [x], [y])
        x, y = xs[0], ys[0]
    col, row = ~ds.rio.transform() * (x, y)
    return int(np.floor(row)), int(np.floor(col))


def _from_input(ds: xr.Dataset) -> Reference | None:
    """The reference recorded by a MintPy or LiCSBAS input, or None."""
    try:
        if "mintpy_metadata" in ds.attrs:
            meta = json.loads(ds.attrs["mintpy_metadata"])
            if "REF_Y" in meta and "REF_X" in meta:
                row, col = int(float(meta["REF_Y"])), int(float(meta["REF_X"]))
                return _pixel(ds, row, col, "MintPy REF_Y/REF_X", "MintPy REF_Y/REF_X")
            if "REF_LAT" in meta and "REF_LON" in meta:
                lalo = (float(meta["REF_LAT"]), float(meta["REF_LON"]))
                row, col = lalo_to_yx(ds, *lalo)
                return _pixel(ds, row, col, "MintPy REF_LAT/LON", "MintPy REF_LAT/LON", lalo)
        if "licsbas_metadata" in ds.attrs:
            area = json.loads(ds.attrs["licsbas_metadata"]).get("refarea")
            if area:  # LiCSBAS 'x1:x2/y1:y2', python slices (LiCSBAS13_sb_inv.py)
                xs, ys = str(area).split("/")
                (c0, c1), (r0, r1) = (map(int, p.split(":")) for p in (xs, ys))
                return _area(ds, (r0, r1, c0, c1), "LiCSBAS refarea", "LiCSBAS refarea")
    except (ConfigError, ValueError, TypeError) as exc:
        log.warning("ignoring the input's reference (%s); using the median of the valid area", exc)
    return None


def resolve_reference(
    ds: xr.Dataset,
    *,
    ref_yx: tuple[int, int] | None = None,
    ref_lalo: tuple[float, float] | None = None,
    ref_area: tuple[int, int, int, int] | None = None,
) -> Reference:
    """The reference of a run: an option, else the input's own, else the valid-area median.

    Parameters
    ----------
    ds : canonical Dataset (``displacement(time, y, x)`` mm, CRS via rioxarray).
    ref_yx : ``(row, col)`` pixel, 0-based.
    ref_lalo : ``(lat, lon)`` in degrees, WGS 84 (or the stack's geographic CRS).
    ref_area : ``(row0, row1, col0, col1)`` box, end excluded: the median over it.

    Returns
    -------
    Reference

    Raises
    ------
    ConfigError
        Several options, or a pixel/box outside the grid or NaN (one line naming the option).
    """
    given = [o for o in (ref_yx, ref_lalo, ref_area) if o is not None]
    if len(given) > 1:
        raise ConfigError("--ref-yx, --ref-lalo and --ref-area: give at most one")
    if ref_yx is not None:
        row, col = (int(v) for v in ref_yx)
        return _pixel(ds, row, col, f"--ref-yx {row} {col}", "--ref-yx")
    if ref_lalo is not None:
        lat, lon = (float(v) for v in ref_lalo)
        row, col = lalo_to_yx(ds, lat, lon)
        return _pixel(ds, row, col, f"--ref-lalo {lat:g} {lon:g}", "--ref-lalo", (lat, lon))
    if ref_area is not None:
        return _area(ds, ref_area, "--ref-area " + " ".join(str(v) for v in ref_area), "--ref-area")
    return _from_input(ds) or Reference("median")


def _window(ref: Reference, h: int, w: int) -> dict[str, slice]:
    if ref.kind == "median":
        y0, x0 = max(0, (h - MEDIAN_WINDOW_PX) // 2), max(0, (w - MEDIAN_WINDOW_PX) // 2)
        return {"y": slice(y0, y0 + MEDIAN_WINDOW_PX), "x": slice(x0, x0 + MEDIAN_WINDOW_PX)}
    return {"y": slice(*ref.rows), "x": slice(*ref.cols)}


def reference_values(da: xr.DataArray, ref: Reference) -> xr.DataArray:
    """Per date (or scalar for a map): ``da`` at the reference pixel, or its median there."""
    part = da.isel(_window(ref, da.sizes["y"], da.sizes["x"]))
    if ref.kind == "yx":
        return part.isel(y=0, x=0, drop=True)
    # dask's median reduces one axis in one chunk, never all axes: add a length-1 axis
    flat = part.stack(_pixel=("y", "x")).expand_dims("_one")
    if flat.chunks is not None:
        flat = flat.chunk({"_pixel": -1})
    med = flat.median(dim="_pixel", skipna=True).isel(_one=0, drop=True)
    return med.drop_vars(["y", "x", "_pixel"], errors="ignore")


def apply_reference(ds: xr.Dataset, ref: Reference) -> xr.Dataset:
    """Subtract, per date, each displacement-like variable's value at the reference.

    Parameters
    ----------
    ds : canonical Dataset or a result of ``denoise_dataset``; the variables in
        :data:`REFERENCED` are referred to ``ref`` (their value at the pixel, or their median
        over the box or the valid area), the others are kept as they are. ``noise`` takes
        the offset of ``deformation + noise`` minus that of ``deformation``, so that series
        plus noise stays the referenced input.
    ref : from :func:`resolve_reference`.

    Returns
    -------
    New Dataset (lazy if ``ds`` is) with attrs ``insar_denoise_reference`` (``ref.describe()``)
    and ``insar_denoise_reference_box`` (``kind:row0,row1,col0,col1``).
    """
    # spatial referencing of InSAR time series (MintPy reference_point.py, per date)
    out = ds.copy()
    for name in REFERENCED:
        if name in ds and {"y", "x"} <= set(ds[name].dims):
            var = ds[name]
            offset = reference_values(var, ref)
            if name == "noise" and "deformation" in ds:  # keep series + noise = input
                total = reference_values(var + ds["deformation"], ref)
                offset = total - reference_values(ds["deformation"], ref)
            out[name] = (var - offset).astype(var.dtype)
            out[name].attrs = var.attrs
    if "detection" in ds and "uncertainty" in ds:  # detection is relative to the reference
        from insar_denoise.models.detection import detection_map

        cum = (
            out["cumulative_deformation"] if "cumulative_deformation" in out else out["cumulative"]
        )
        det = detection_map(
            np.asarray(cum.values),
            np.asarray(ds["uncertainty"].values),
            float(ds["detection"].attrs.get("threshold_mm", 1.0)),
            relative=False,
        )
        out["detection"] = ds["detection"].copy(data=det)
    out.attrs["insar_denoise_reference"] = ref.describe()
    out.attrs["insar_denoise_reference_box"] = (
        f"{ref.kind}:{ref.rows[0]},{ref.rows[1]},{ref.cols[0]},{ref.cols[1]}"
    )
    return out


def reference_from_attrs(attrs: dict) -> Reference | None:
    """The :class:`Reference` recorded by :func:`apply_reference` in ``attrs``, or None."""
    box = attrs.get("insar_denoise_reference_box")
    if not box:
        return None
    kind, _, numbers = str(box).partition(":")
    r0, r1, c0, c1 = (int(v) for v in numbers.split(","))
    return Reference(kind, (r0, r1), (c0, c1), "attrs")

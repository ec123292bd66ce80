"""``RunOptions``: the one set of run options shared by the CLI, the pipeline, the batch
manifest and the in-memory product (:func:`insar_denoise.product.denoise`).

Bottom layer: imports nothing heavy (no torch, numpy or xarray), so the CLI and the manifest
validate options before anything loads. Output *paths* (``output``, ``series``, ``report``,
``uncertainty``, ...) are not options: they belong to the surface that writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from insar_denoise.errors import ConfigError
from insar_denoise.methods import METHODS

DEVICES = ("auto", "cpu", "cuda")
REFERENCES = ("auto", "none")


@dataclass(frozen=True)
class RunOptions:
    """How to denoise one stack (every option of ``insar-denoise run`` but the file paths).

    Attributes
    ----------
    model : packaged model name or file (None: ``"default"``); ignored by classical methods.
    method : ``"model"`` or a classical correction (:data:`METHODS`).
    tile, overlap : tile side and overlap in pixels (None: the model's defaults).
    window : dates per window (must equal the model's; None: the model's).
    stride : dates between window starts (window models).
    device : ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batch_size : tiles per model call (None: fitted to free memory).
    chunk : block core side in pixels (None: about 6 tile steps; at most 512 px for
        whole-stack models, whose blocks hold every date).
    sigma_px, lam : Gaussian sigma (px) of ``filter``/``best``; second-difference weight of
        the window combination (None: the engine's defaults).
    deramp : remove each date's least-squares plane first.
    fix_unwrapping : remove unwrapping errors of single dates first (whole-stack models,
        stacks of at least 12 dates; :mod:`insar_denoise.inference.unwrapping`).
    denoise_fine_scales : inside the open gate, take out the fine scales the stack does not
        support (whole-stack models; :mod:`insar_denoise.inference.fine_scales`).
    min_valid_dates : dates a pixel must be valid on to be kept (None: engine default).
    ref_yx, ref_lalo, ref_area : the spatial reference (pixel, WGS 84 point, box rows/cols).
    reference : ``"auto"`` (a ``ref_*`` option, else the input's own, else the valid-area
        median, as ``run``) or ``"none"`` (the outputs as the engine gives them, unless a
        ``ref_*`` option is set).
    uncertainty : add ``uncertainty`` / ``uncertainty_95`` (calibrated, mm; model method).
    detection : require the detection map (whole-stack models only).
    return_noise : add ``noise`` (input minus denoised series).
    progress : show the tile progress bar.
    units, wavelength_mm, variable, pairs_pattern : how to read the input files.
    cog : write the cumulative GeoTIFF as a Cloud-Optimized GeoTIFF.
    """

    model: str | None = None
    method: str = "model"
    tile: int | None = None
    overlap: int | None = None
    window: int | None = None
    stride: int = 1
    device: str = "auto"
    batch_size: int | None = None
    chunk: int | None = None
    sigma_px: float | None = None
    lam: float | None = None
    deramp: bool = False
    fix_unwrapping: bool = True
    denoise_fine_scales: bool = False
    min_valid_dates: int | None = None
    ref_yx: tuple[int, int] | None = None
    ref_lalo: tuple[float, float] | None = None
    ref_area: tuple[int, int, int, int] | None = None
    reference: str = "auto"
    uncertainty: bool = False
    detection: bool = False
    return_noise: bool = True
    progress: bool = True
    units: str | None = None
    wavelength_mm: float | None = None
    variable: str | None = None
    pairs_pattern: str | None = None
    cog: bool = False

    @classmethod
    def from_kwargs(cls, where: str = "options", **kwargs: Any) -> RunOptions:
        """Options from keyword arguments; an unknown name is a one-line ``ConfigError``."""
        names = option_names()
        unknown = [k for k in kwargs if k not in names]
        if unknown:
            raise ConfigError(f"{where}: unknown option {unknown[0]!r}")
        return cls(**kwargs)

    def with_(self, **changes: Any) -> RunOptions:
        """A copy with ``changes`` (``dataclasses.replace``)."""
        return replace(self, **changes)

    def engine_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`insar_denoise.inference.denoise_dataset`."""
        kw = {k: getattr(self, k) for k in ENGINE_OPTIONS}
        return {k: v for k, v in kw.items() if v is not None or k not in ("sigma_px", "lam")}

    def reference_kwargs(self) -> dict[str, Any]:
        """``ref_yx`` / ``ref_lalo`` / ``ref_area`` that are set."""
        return {k: getattr(self, k) for k in REFERENCE_OPTIONS if getattr(self, k) is not None}

    def tta_kwargs(self) -> dict[str, Any]:
        """Options that shape the test-time copies of the window-model uncertainty."""
        return {k: getattr(self, k) for k in TTA_OPTIONS if getattr(self, k) is not None}


ENGINE_OPTIONS = (
    "tile",
    "overlap",
    "window",
    "stride",
    "device",
    "batch_size",
    "method",
    "progress",
    "return_noise",
    "chunk",
    "sigma_px",
    "lam",
    "deramp",
    "fix_unwrapping",
    "denoise_fine_scales",
    "min_valid_dates",
)
REFERENCE_OPTIONS = ("ref_yx", "ref_lalo", "ref_area")
TTA_OPTIONS = ("tile", "overlap", "window", "stride", "device", "batch_size", "chunk")

#: options a manifest (and ``run``) may set, with the types they accept; ``uncertainty`` and
#: ``detection`` are set by giving their output path, ``progress`` by the surface
FILE_OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "method": (str,),
    "tile": (int,),
    "overlap": (int,),
    "window": (int,),
    "stride": (int,),
    "device": (str,),
    "batch_size": (int,),
    "chunk": (int,),
    "sigma_px": (int, float),
    "deramp": (bool,),
    "fix_unwrapping": (bool,),
    "denoise_fine_scales": (bool,),
    "min_valid_dates": (int,),
    "ref_yx": (list, tuple),
    "ref_lalo": (list, tuple),
    "ref_area": (list, tuple),
    "units": (str,),
    "wavelength_mm": (int, float),
    "variable": (str,),
    "pairs_pattern": (str,),
    "cog": (bool,),
}
#: ``ref_*`` options: their length and the type of their items
_SEQUENCES = {"ref_yx": (2, int), "ref_lalo": (2, (int, float)), "ref_area": (4, int)}
_MINIMUM = {"tile": 1, "overlap": 0, "window": 1, "stride": 1, "batch_size": 1, "chunk": 1}


def option_names() -> tuple[str, ...]:
    """Names of the fields of :class:`RunOptions`."""
    return tuple(f.name for f in fields(RunOptions))


def check_option(key: str, value: Any) -> str | None:
    """Problem with one file option (``"tile must be int, got str 'big'"``), or None."""
    types = FILE_OPTION_TYPES[key]
    if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
        names = " or ".join(t.__name__ for t in types)
        return f"{key} must be {names}, got {type(value).__name__} {value!r}"
    choices = {"method": METHODS, "device": DEVICES}.get(key)
    if choices is not None and value not in choices:
        return f"{key} {value!r} unknown; choose one of {', '.join(choices)}"
    if key in _MINIMUM and value < _MINIMUM[key]:
        return f"{key} must be >= {_MINIMUM[key]}, got {value}"
    if key in ("wavelength_mm", "sigma_px") and value <= 0:
        return f"{key} must be > 0, got {value}"
    if key in _SEQUENCES:
        size, item = _SEQUENCES[key]
        ok = len(value) == size and all(
            isinstance(v, item) and not isinstance(v, bool) for v in value
        )
        if not ok:
            return f"{key} must be a list of {size} numbers, got {value!r}"
    return None


def normalise_option(key: str, value: Any) -> Any:
    """A checked file option as :class:`RunOptions` holds it (lists become tuples)."""
    return tuple(value) if key in _SEQUENCES else value

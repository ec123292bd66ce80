"""``SimConfig``: the whole distribution of synthetic InSAR examples in one dataclass.

Saved with every dataset and trained model (``to_dict`` is JSON-serialisable). Ranges are
``(min, max)`` pairs; set ``min == max`` to fix a value. Probabilities of the source and
history tables are relative weights (need not sum to 1); set all but one to 0 to force one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from insar_denoise.errors import ConfigError

#: Source codes of ``SimBatch.source`` (index = code).
SOURCE_NAMES: tuple[str, ...] = (
    "none",
    "okada_strike_slip",
    "okada_dip_slip",
    "okada_tensile",
    "mogi",
    "bowl",
)
#: Number of source codes before ``bowl`` was added (draws of older configs are unchanged).
LEGACY_SOURCE_COUNT = 5
#: History codes of ``SimBatch.history`` (index = code).
HISTORY_NAMES: tuple[str, ...] = ("none", "step", "linear", "transient")

#: Intervals (multiples of ``interval_days / 2``: 6 and 12 days for Sentinel-1's 12) of
#: ``irregular_sampling``, cycled: mixed 6/12-day sampling with one missing date (a double
#: interval) per cycle, as when two satellites fly and acquisitions are lost.
IRREGULAR_INTERVALS: tuple[int, ...] = (2, 1, 1, 2, 4, 1, 2, 1)

#: Sentinel-1 C-band half wavelength (mm): one phase cycle in LOS displacement.
S1_HALF_WAVELENGTH_MM = 27.7


def _default_sources() -> dict[str, float]:
    return {
        "none": 0.2,
        "okada_strike_slip": 0.2,
        "okada_dip_slip": 0.2,
        "okada_tensile": 0.1,
        "mogi": 0.3,
    }


def _default_histories() -> dict[str, float]:
    return {"step": 0.35, "linear": 0.3, "transient": 0.35}


@dataclass
class SimConfig:
    """Distribution of synthetic examples (units in the field names).

    Grid and dates
        ``size`` (pixels, square tiles), ``n_dates``, ``interval_days`` between dates,
        ``pixel_spacing_m``; ``irregular_sampling`` replaces the regular intervals by the
        fixed pattern of :data:`IRREGULAR_INTERVALS` (see :meth:`times_days`).
    Deformation
        ``source_probs`` over :data:`SOURCE_NAMES` (``bowl``: a broad Gaussian subsidence
        bowl of full width at half maximum ``bowl_width_km``, weight 0 unless given);
        ``history_probs`` over step / linear /
        transient; ``amplitude_mm``: log-uniform range of the max |LOS| of the cumulative
        deformation; fault and Mogi geometry ranges (km, degrees); ``source_margin``: share of
        the tile side kept free at each border for the source position; ``poisson``.
    Geometry
        ``ascending_prob``, ``heading_asc_deg``, ``heading_desc_deg``, ``incidence_deg``.
    Noise (each family can be switched off)
        turbulence (2-D spectrum ``P(k) = (k^2 + k0^2)^(-beta/2)``, ``k0 = 1 / (2 pi L)``;
        pure power law with ``powerlaw_beta`` or von Karman with Hurst exponent
        ``vonkarman_hurst``, beta = 2 H + 2, ``H = 0.5`` = exponential covariance),
        stratified delay, orbital ramps, constant offsets, decorrelation holes,
        unwrapping errors. DEMs are fractal or patches of the bundled real DEMs.
    """

    size: int = 64
    n_dates: int = 9
    interval_days: float = 12.0
    irregular_sampling: bool = False
    pixel_spacing_m: float = 90.0
    poisson: float = 0.25
    # deformation sources
    source_probs: dict[str, float] = field(default_factory=_default_sources)
    history_probs: dict[str, float] = field(default_factory=_default_histories)
    amplitude_mm: tuple[float, float] = (0.5, 20.0)
    source_margin: float = 0.15
    fault_length_km: tuple[float, float] = (0.5, 8.0)
    fault_width_km: tuple[float, float] = (0.5, 5.0)
    fault_top_depth_km: tuple[float, float] = (0.1, 3.0)
    fault_dip_deg: tuple[float, float] = (10.0, 90.0)
    mogi_depth_km: tuple[float, float] = (0.5, 5.0)
    bowl_width_km: tuple[float, float] = (5.0, 30.0)
    transient_duration_frac: tuple[float, float] = (0.05, 0.6)
    # viewing geometry
    ascending_prob: float = 0.5
    heading_asc_deg: tuple[float, float] = (-14.0, -10.0)
    heading_desc_deg: tuple[float, float] = (190.0, 194.0)
    incidence_deg: tuple[float, float] = (30.0, 46.0)
    # turbulent delay
    turbulence: bool = True
    turbulence_std_mm: tuple[float, float] = (1.0, 20.0)
    powerlaw_prob: float = 0.5
    powerlaw_beta: tuple[float, float] = (5.0 / 3.0, 11.0 / 3.0)
    vonkarman_hurst: tuple[float, float] = (0.3, 1.0)
    correlation_length_km: tuple[float, float] = (1.0, 30.0)
    turbulence_pad: float = 2.0
    # stratified delay: coef * z_km + quad * z_km^2, z above the tile minimum
    stratified: bool = True
    stratified_mm_per_km: tuple[float, float] = (-15.0, 15.0)
    stratified_quad_mm_per_km2: tuple[float, float] = (-3.0, 3.0)
    # DEMs
    real_dem_prob: float = 0.5
    dem_relief_m: tuple[float, float] = (50.0, 2000.0)
    dem_beta: tuple[float, float] = (3.6, 4.4)
    dem_base_m: tuple[float, float] = (0.0, 1500.0)
    real_dem_zoom: tuple[float, float] = (0.25, 1.5)
    real_dem_relief_scale: tuple[float, float] = (0.3, 2.0)
    # other artifacts
    orbital_ramps: bool = True
    ramp_mm: tuple[float, float] = (0.0, 5.0)
    offsets: bool = True
    offset_mm: tuple[float, float] = (-5.0, 5.0)
    holes_prob: float = 0.3
    holes_fraction: tuple[float, float] = (0.01, 0.2)
    unwrap_prob: float = 0.1
    unwrap_radius_frac: tuple[float, float] = (0.05, 0.2)
    unwrap_half_wavelength_mm: float = S1_HALF_WAVELENGTH_MM

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ConfigError`` naming the first invalid field and what would fix it."""
        if int(self.size) < 8:
            raise ConfigError(f"SimConfig.size={self.size}: need at least 8 pixels")
        if int(self.n_dates) < 2:
            raise ConfigError(f"SimConfig.n_dates={self.n_dates}: need at least 2 dates")
        for name in ("interval_days", "pixel_spacing_m", "turbulence_pad"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"SimConfig.{name}={getattr(self, name)}: must be > 0")
        if not 0.0 <= self.poisson < 0.5:
            raise ConfigError(f"SimConfig.poisson={self.poisson}: must be in [0, 0.5)")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                if len(value) != 2 or not all(math.isfinite(float(v)) for v in value):
                    raise ConfigError(f"SimConfig.{f.name}={value}: need a finite (min, max) pair")
                if value[0] > value[1]:
                    raise ConfigError(f"SimConfig.{f.name}={value}: min > max")
            if f.name.endswith("_prob") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"SimConfig.{f.name}={value}: must be in [0, 1]")
        positive = ("amplitude_mm", "turbulence_std_mm", "correlation_length_km", "real_dem_zoom")
        for name in (*positive, "bowl_width_km"):
            if getattr(self, name)[0] <= 0:
                raise ConfigError(f"SimConfig.{name}={getattr(self, name)}: must be > 0")
        self._check_table("source_probs", self.source_probs, SOURCE_NAMES)
        self._check_table("history_probs", self.history_probs, HISTORY_NAMES[1:])

    @staticmethod
    def _check_table(name: str, table: dict[str, float], names: tuple[str, ...]) -> None:
        unknown = set(table) - set(names)
        if unknown:
            raise ConfigError(
                f"SimConfig.{name}: unknown keys {sorted(unknown)}; use {list(names)}"
            )
        if any(v < 0 for v in table.values()) or sum(table.values()) <= 0:
            raise ConfigError(f"SimConfig.{name}={table}: weights must be >= 0 with a positive sum")

    def times_days(self) -> list[float]:
        """Acquisition times (days since the first date) of the ``n_dates`` dates."""
        if not self.irregular_sampling:
            return [i * float(self.interval_days) for i in range(int(self.n_dates))]
        half = float(self.interval_days) / 2.0
        times, t = [0.0], 0.0
        for i in range(int(self.n_dates) - 1):
            t += IRREGULAR_INTERVALS[i % len(IRREGULAR_INTERVALS)] * half
            times.append(t)
        return times

    def source_weights(self) -> list[float]:
        """Weights in the order of :data:`SOURCE_NAMES`."""
        return [float(self.source_probs.get(n, 0.0)) for n in SOURCE_NAMES]

    def history_weights(self) -> list[float]:
        """Weights in the order of :data:`HISTORY_NAMES` (``none`` has weight 0)."""
        return [0.0] + [float(self.history_probs.get(n, 0.0)) for n in HISTORY_NAMES[1:]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [float(v) for v in value]
            elif isinstance(value, dict):
                value = {k: float(v) for k, v in value.items()}
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SimConfig:
        """Inverse of :meth:`to_dict`; missing keys take the defaults, unknown keys fail."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(fields)
        if unknown:
            raise ConfigError(f"SimConfig: unknown keys {sorted(unknown)}")
        kwargs: dict[str, Any] = {}
        defaults = cls()
        for key, value in data.items():
            if isinstance(getattr(defaults, key), tuple):
                value = tuple(float(v) for v in value)
            elif isinstance(getattr(defaults, key), dict):
                value = {str(k): float(v) for k, v in dict(value).items()}
            kwargs[key] = value
        return cls(**kwargs)

    def with_source(self, source: str) -> SimConfig:
        """Copy with every example drawn from one source family.

        ``source`` is a name of :data:`SOURCE_NAMES`, or ``"okada"`` (the three Okada kinds
        with their current relative weights, or equal weights if those are all 0).
        """
        if source == "okada":
            okada = {
                n: self.source_probs.get(n, 0.0) for n in SOURCE_NAMES if n.startswith("okada")
            }
            if sum(okada.values()) <= 0:
                okada = dict.fromkeys(okada, 1.0)
            probs = {n: okada.get(n, 0.0) for n in SOURCE_NAMES}
        elif source in SOURCE_NAMES:
            probs = {n: float(n == source) for n in SOURCE_NAMES}
        else:
            raise ConfigError(
                f"unknown source {source!r}; use okada or one of {list(SOURCE_NAMES)}"
            )
        return dataclasses.replace(self, source_probs=probs)

"""How much of the gain target an efficient estimator can reach: the Cramér-Rao bound of a
simulated scene's source geometry carried to the gain and correlation of its cumulative map.

The ideal-observer SNR (:mod:`insar_denoise.scoring.ideal_observer`) knows the signal's
shape and fits only its amplitude, so its gain has a std of ``1 / SNR``. An estimator that
knows the source family (Okada rectangle, Mogi source, Gaussian bowl) and the time history
but must also estimate the geometry (position, strike, dip, length, width, depth) has the
Fisher information ``J_ij = (h ⊗ ∂c/∂θ_i)ᵀ C⁻¹ (h ⊗ ∂c/∂θ_j)`` over the series, ``c`` the
cumulative map, ``h`` the history, ``C`` the scene's noise covariance. No unbiased estimator
does better than ``cov(θ̂) = J⁻¹``; with the simulator's priors as Gaussian information
(their variances) added, ``(J + P)⁻¹`` bounds the Bayesian ones (van Trees). The first-order
maps of estimates drawn from those covariances, scored as Benchmark v2 scores an output
(gain and r up to an offset), give the chance that such an estimator lands inside the target
(gain 0.9-1.1 and r >= 0.9): an optimistic reach, since the family and history are given.
A transient's history has two parameters of its own (its centre and duration, drawn as
``synth/histories.py`` draws them): :func:`history_derivatives` gives their series terms
``∂h/∂φ ⊗ c`` so that the bound can estimate them too (the cumulative map does not move
with them: the history is 0 at the first date and 1 at the last whatever they are). A
step's onset is a date, not a continuous parameter; at SNR >= 20 it is found, so it is
given.
"""

# Kay (1993), Fundamentals of Statistical Signal Processing vol. I, eq. 3.31 (Fisher
# information of a Gaussian signal in known noise); van Trees (1968) for the prior's term.

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from insar_denoise.evaluation.referee_scoring import offset_free_scores
from insar_denoise.scoring.ideal_observer import NoiseCovariance
from insar_denoise.synth import SimBatch, SimConfig
from insar_denoise.synth.los import project_los
from insar_denoise.synth.mogi import mogi_surface
from insar_denoise.synth.noise_params import NoiseParams
from insar_denoise.synth.okada import okada_surface
from insar_denoise.synth.sources import gaussian_bowl, grid_coords_m

#: parameters each family's geometry is estimated with (besides the amplitude)
FAMILY_PARAMETERS: dict[str, tuple[str, ...]] = {
    "okada": ("x0_m", "y0_m", "strike_deg", "dip_deg", "length_m", "width_m", "top_m"),
    "mogi": ("x0_m", "y0_m", "mogi_depth_m"),
    "bowl": ("x0_m", "y0_m", "bowl_fwhm_m"),
}
#: central-difference step of each parameter (m or degrees)
STEPS: dict[str, float] = {
    "x0_m": 0.5,
    "y0_m": 0.5,
    "strike_deg": 0.01,
    "dip_deg": 0.01,
    "length_m": 1.0,
    "width_m": 1.0,
    "top_m": 0.5,
    "mogi_depth_m": 1.0,
    "bowl_fwhm_m": 1.0,
}
#: a transient's history parameters (normalised time: centre in 0-1, the tanh's time scale
#: tau = duration / 2.2) and their central-difference steps
HISTORY_PARAMETERS: tuple[str, ...] = ("transient_centre", "transient_tau")
HISTORY_STEP = 1e-4
#: the gain target (issue "Model v2"): gain in this range and r at least R_TARGET
GAIN_TARGET, R_TARGET = (0.9, 1.1), 0.9


def in_gain_target(gain: float | None, r: float | None) -> bool:
    """Gain within :data:`GAIN_TARGET` and r at least :data:`R_TARGET` (None or NaN misses)."""
    g = math.nan if gain is None else float(gain)
    rr = math.nan if r is None else float(r)
    return bool(GAIN_TARGET[0] <= g <= GAIN_TARGET[1] and rr >= R_TARGET)


def family(source_name: str) -> str | None:
    """``okada``, ``mogi`` or ``bowl`` for a simulator source name (None for ``none``)."""
    if source_name.startswith("okada"):
        return "okada"
    return source_name if source_name in ("mogi", "bowl") else None


@dataclass
class SourceScene:
    """One simulated scene's source, its truth, observed pixels and DEM, as the bound needs them."""

    source_name: str
    params: dict[str, float]  # geometry (FAMILY_PARAMETERS) and sign, incidence, heading
    scale_mm: float  # cumulative = scale_mm * unit-slip LOS map
    history: np.ndarray  # (T,) 0 at the first date, 1 at the last
    truth: np.ndarray  # (H, W) true cumulative, mm
    valid: np.ndarray  # (H, W) observed pixels
    dem: np.ndarray
    size: int  # the simulator's square grid; truth, valid and dem are its top-left corner
    pixel_spacing_m: float
    poisson: float
    times_days: np.ndarray | None = None  # (T,) the dates
    history_name: str = ""  # the simulator's history code name (``step``, ``transient``, ...)


def source_scene(batch: SimBatch, config: SimConfig, index: int = 0) -> SourceScene:
    """The :class:`SourceScene` of example ``index`` of a simulated batch."""
    geo = batch.geometry
    if geo is None or batch.noise is None:
        raise ValueError("the batch carries no geometry or noise: simulate with simulate_batch")
    name = batch.source_names[int(batch.source[index])]
    if family(name) is None:
        raise ValueError(f"example {index} has no deformation source ({name})")
    keys = (*FAMILY_PARAMETERS[family(name)], "sign", "incidence_deg", "heading_deg")
    params = {k: float(getattr(geo, k)[index]) for k in keys}
    truth = batch.cumulative[index].double().numpy()
    cum = batch.deformation[index].double()
    peak = np.unravel_index(np.argmax(np.abs(truth)), truth.shape)
    history = (cum[:, peak[0], peak[1]] / float(truth[peak])).numpy()
    scene = SourceScene(
        source_name=name,
        params=params,
        scale_mm=1.0,
        history=history,
        truth=truth,
        valid=batch.valid[index].numpy().astype(bool),
        dem=batch.dem[index].double().numpy(),
        size=int(config.size),
        pixel_spacing_m=float(config.pixel_spacing_m),
        poisson=float(config.poisson),
        times_days=np.asarray(config.times_days(), dtype=np.float64),
        history_name=batch.history_names[int(batch.history[index])],
    )
    return fit_scale(scene)


def fit_scale(scene: SourceScene) -> SourceScene:
    """``scene`` with ``scale_mm`` the least-squares factor of its unit map on its truth."""
    unit = source_map(scene, scene.params).ravel()
    scene.scale_mm = float(np.dot(unit, scene.truth.ravel()) / np.dot(unit, unit))
    return scene


def source_map(scene: SourceScene, params: dict[str, float]) -> np.ndarray:
    """``(H, W)`` float64 LOS map of the scene's source with geometry ``params`` and unit
    slip / volume change (bowls: unit depth), signed as drawn; rendered on the ``size`` grid
    and cut to the truth's shape, as the simulator's scenes are cut."""
    east, north = grid_coords_m(scene.size, scene.pixel_spacing_m, "cpu")
    p = {k: torch.tensor(v, dtype=torch.float64) for k, v in params.items()}
    sgn, kind = p["sign"], family(scene.source_name)
    if kind == "okada":
        slip = [torch.zeros((), dtype=torch.float64) for _ in range(3)]
        slip[("okada_strike_slip", "okada_dip_slip", "okada_tensile").index(scene.source_name)] = (
            sgn
        )
        e, n, u = okada_surface(
            east,
            north,
            x0_m=p["x0_m"],
            y0_m=p["y0_m"],
            depth_m=p["top_m"],
            strike_deg=p["strike_deg"],
            dip_deg=p["dip_deg"],
            length_m=p["length_m"],
            width_m=p["width_m"],
            strike_slip_m=slip[0],
            dip_slip_m=slip[1],
            opening_m=slip[2],
            poisson=scene.poisson,
        )
    elif kind == "mogi":
        e, n, u = mogi_surface(
            east,
            north,
            x0_m=p["x0_m"],
            y0_m=p["y0_m"],
            depth_m=p["mogi_depth_m"],
            volume_change_m3=sgn,
            poisson=scene.poisson,
        )
    else:
        u = gaussian_bowl(east, north, p["x0_m"], p["y0_m"], p["bowl_fwhm_m"])
        e = n = torch.zeros_like(u)
    los = project_los(e, n, u, p["incidence_deg"], p["heading_deg"])
    h, w = scene.truth.shape
    return torch.nan_to_num(los, nan=0.0, posinf=0.0, neginf=0.0).numpy()[:h, :w]


def jacobian(scene: SourceScene) -> tuple[tuple[str, ...], np.ndarray]:
    """Names and ``(p, H, W)`` derivatives of the cumulative map (mm per unit): the
    geometry's by central differences, then the amplitude's (``scale_mm``)."""
    names = FAMILY_PARAMETERS[family(scene.source_name)]
    rows = []
    for k in names:
        hi, lo = dict(scene.params), dict(scene.params)
        hi[k] += STEPS[k]
        lo[k] -= STEPS[k]
        rows.append(
            scene.scale_mm * (source_map(scene, hi) - source_map(scene, lo)) / (2 * STEPS[k])
        )
    rows.append(source_map(scene, scene.params))
    return (*names, "scale_mm"), np.stack(rows)


def transient_history(times_days: np.ndarray, centre: float, tau: float) -> np.ndarray:
    """The simulator's transient history ``(T,)`` on ``times_days``: 0 at the first date, 1 at
    the last."""
    # synth/histories.py: 0.5 (1 + tanh((t - c) / tau)) on normalised time, renormalised
    tn = (times_days - times_days[0]) / (times_days[-1] - times_days[0])
    s = np.tanh((tn - centre) / tau)
    return (s - s[0]) / max(s[-1] - s[0], 1e-6)


def transient_parameters(scene: SourceScene) -> tuple[float, float] | None:
    """``(centre, tau)`` of the scene's transient history (least squares on its noise-free
    history), or None when the history is not a transient."""
    from scipy import optimize

    if scene.history_name != "transient" or scene.times_days is None:
        return None
    t, h = scene.times_days, scene.history

    def misfit(v: np.ndarray) -> float:
        return float(np.sum((transient_history(t, v[0], math.exp(v[1])) - h) ** 2))

    starts = [(c, math.log(d / 2.2)) for c in np.linspace(0.0, 1.0, 21) for d in (0.1, 0.3, 0.6)]
    first = min(starts, key=lambda v: misfit(np.asarray(v)))
    found = optimize.minimize(
        misfit,
        np.asarray(first),
        method="Nelder-Mead",
        options={"xatol": 1e-8, "fatol": 1e-14, "maxfev": 4000},
    )
    return float(found.x[0]), float(math.exp(found.x[1]))


def history_derivatives(scene: SourceScene) -> tuple[tuple[str, ...], np.ndarray]:
    """Names and ``(k, T)`` derivatives of the scene's history with respect to its own
    parameters (:data:`HISTORY_PARAMETERS` for a transient; none otherwise), by central
    differences."""
    fitted = transient_parameters(scene)
    if fitted is None:
        return (), np.zeros((0, len(scene.history)))
    t, p, e = scene.times_days, np.asarray(fitted), HISTORY_STEP
    rows = [
        (transient_history(t, *(p + e * unit)) - transient_history(t, *(p - e * unit))) / (2 * e)
        for unit in np.eye(2)
    ]
    return HISTORY_PARAMETERS, np.stack(rows)


def fisher_information(
    scene: SourceScene,
    noise: NoiseParams,
    derivatives: np.ndarray,
    *,
    index: int = 0,
    history: np.ndarray | None = None,
) -> np.ndarray:
    """``J (p, p)``: ``(h ⊗ D_i)ᵀ C⁻¹ (h ⊗ D_j)`` under the scene's noise covariance; with
    ``history`` (``(k, T)``, :func:`history_derivatives`) ``k`` more parameters whose
    series are ``∂h/∂φ ⊗ c`` (``c`` the cumulative map: ``D``'s last row, the unit map, times
    the scale), ordered after ``D``'s."""
    cov = NoiseCovariance(scene.valid, scene.dem, noise, index=index)
    h = torch.as_tensor(scene.history[1:] - scene.history[0], dtype=torch.float64)
    d = torch.as_tensor(derivatives, dtype=torch.float64)
    series = [h[:, None, None] * d[i] for i in range(d.shape[0])]
    if history is not None and len(history):
        cum = scene.scale_mm * d[-1]
        dh = torch.as_tensor(history[:, 1:] - history[:, :1], dtype=torch.float64)
        series += [row[:, None, None] * cum for row in dh]
    solved = [cov.apply_inverse(s) for s in series]
    p = len(series)
    j = np.zeros((p, p))
    for a in range(p):
        for b in range(a, p):
            j[a, b] = j[b, a] = float((series[a] * solved[b]).sum())
    return j


def parameter_covariance(precision: np.ndarray) -> np.ndarray:
    """``precision⁻¹`` (pseudo-inverse) of a Fisher matrix whose parameters have different
    units: inverted with each parameter scaled to unit information first (Jacobi), so that
    the pseudo-inverse's cut-off drops only directions the data do not hold, not those of
    parameters with small units (a transient's normalised time beside metres: condition
    numbers of 1e19 unscaled, 1e2 scaled)."""
    scale = np.sqrt(np.clip(np.diag(precision), 1e-300, None))
    return np.linalg.pinv(precision / np.outer(scale, scale)) / np.outer(scale, scale)


def prior_precision(names: tuple[str, ...], config: SimConfig) -> np.ndarray:
    """Diagonal precision of the simulator's priors on ``names`` (the variance of each
    uniform or log-uniform range; none on the amplitude, which the design fixes per scene
    but an estimator does not know)."""
    half = 0.5 * config.size * config.pixel_spacing_m * (1.0 - 2.0 * config.source_margin)
    ranges = {
        "x0_m": ((-half, half), False),
        "y0_m": ((-half, half), False),
        "strike_deg": ((0.0, 360.0), False),
        "dip_deg": (config.fault_dip_deg, False),
        "length_m": (tuple(1e3 * v for v in config.fault_length_km), True),
        "width_m": (tuple(1e3 * v for v in config.fault_width_km), True),
        "top_m": (tuple(1e3 * v for v in config.fault_top_depth_km), False),
        "mogi_depth_m": (tuple(1e3 * v for v in config.mogi_depth_km), False),
        "bowl_fwhm_m": (tuple(1e3 * v for v in config.bowl_width_km), False),
        "transient_centre": ((0.0, 1.0), False),
        "transient_tau": (tuple(v / 2.2 for v in config.transient_duration_frac), False),
    }
    prec = []
    for k in names:
        if k not in ranges:
            prec.append(0.0)
            continue
        (lo, hi), log = ranges[k]
        if log and lo > 0 and hi > lo:
            # variance of exp(U(log lo, log hi))
            m1 = (hi - lo) / math.log(hi / lo)
            m2 = (hi * hi - lo * lo) / (2.0 * math.log(hi / lo))
            var = m2 - m1 * m1
        else:
            var = (hi - lo) ** 2 / 12.0
        prec.append(1.0 / var if var > 0 else 0.0)
    return np.diag(prec)


def gain_std(
    scene: SourceScene, names: tuple[str, ...], derivatives: np.ndarray, cov: np.ndarray
) -> float:
    """Linearised std of the gain ``sum(o c) / sum(c c)`` (median-free) under ``cov(θ̂)``."""
    mask = scene.valid & np.isfinite(scene.truth)
    c = scene.truth[mask] - np.median(scene.truth[mask])
    w = np.array([np.dot(d[mask] - np.median(d[mask]), c) for d in derivatives]) / np.dot(c, c)
    return float(math.sqrt(max(w @ cov @ w, 0.0)))


def reach(
    scene: SourceScene,
    derivatives: np.ndarray,
    cov: np.ndarray,
    *,
    draws: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """Scores of ``draws`` maps ``c + D δθ``, ``δθ ~ N(0, cov)`` (the first-order maps of
    the estimates the bound allows), against the truth: ``{"inside", "gain_q05",
    "gain_q50", "gain_q95", "r_q05", "r_q50"}``.

    The maps are linear in ``δθ`` as the bound is: rendering the drawn geometries instead
    would take combinations the data pin down in the map (a deep fault's slip, width and
    length) far along directions where only the parameters, not the map, are loose.
    """
    rng = np.random.default_rng(seed)
    # cov may be near-singular along combinations the data pin down: eigen square root
    val, vec = np.linalg.eigh(0.5 * (cov + cov.T))
    root = vec * np.sqrt(np.clip(val, 0.0, None))
    mask = scene.valid & np.isfinite(scene.truth)
    d = derivatives[:, mask]
    gains, rs = [], []
    for _ in range(int(draws)):
        estimate = np.full(scene.truth.shape, np.nan)
        estimate[mask] = scene.truth[mask] + (root @ rng.standard_normal(root.shape[1])) @ d
        s = offset_free_scores(estimate, scene.truth, mask)
        gains.append(s["gain"])
        rs.append(s["r"] if np.isfinite(s["r"]) else 0.0)
    g, r = np.asarray(gains), np.asarray(rs)
    inside = (g >= GAIN_TARGET[0]) & (g <= GAIN_TARGET[1]) & (r >= R_TARGET)
    return {
        "inside": float(inside.mean()),
        "gain_q05": float(np.quantile(g, 0.05)),
        "gain_q50": float(np.quantile(g, 0.5)),
        "gain_q95": float(np.quantile(g, 0.95)),
        "r_q05": float(np.quantile(r, 0.05)),
        "r_q50": float(np.quantile(r, 0.5)),
    }

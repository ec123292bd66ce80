"""Ideal observer: matched-filter SNR of a known deformation under the simulator's noise.

Noise model of one scene (dates t = 0..T-1, displacement relative to date 0):
``d_t = s_t + n_t``, ``n_t = a_t - a_0``, ``a_t = sigma_t f_t + strat_t + ramp_t + offset_t``
with ``f_t`` independent unit-variance stationary Gaussian fields of spectrum
``P(k) = (k^2 + k0^2)^(-beta/2)`` (:mod:`insar_denoise.synth.turbulence`). The turbulence of
dates 1..T-1 has covariance ``A = M ⊗ K``, ``M = diag(sigma_1^2..sigma_{T-1}^2) +
sigma_0^2 11ᵀ``, so ``A⁻¹ = M⁻¹ ⊗ K⁻¹`` and a rank-r series (r = 1: separable,
``s = h ⊗ c``) needs r solves with K. K is applied by FFT embedding into the periodic padded
grid the simulator synthesises on, and ``K⁻¹x`` on the observed pixels is found by
conjugate gradients preconditioned by the full-grid inverse (1 / P on the padded grid). K is
scaled so that the expected empirical variance over the tile after mean removal is 1
(``trace(K (I - 11ᵀ/N)) / N = 1``), as the simulator normalises each field.

Nuisances (stratification ``a z + q z^2``, ramps in x and y, offsets), independent per date
and referenced to date 0, enter as ``C = A + U W Uᵀ`` with ``U = I ⊗ [1, x, y, z, z^2]``,
``W = (I + 11ᵀ) ⊗ diag(prior variances)`` (the variances of the uniform priors) through the
Woodbury identity ``C⁻¹ = A⁻¹ - A⁻¹U (W⁻¹ + UᵀA⁻¹U)⁻¹ UᵀA⁻¹``; the offset has an infinite
variance (zero precision: maps are compared up to a constant), whatever the config says.
Only second moments enter: this is the best linear detector, exact for the Gaussian
turbulence, a Gaussian approximation for the uniform nuisance priors. Unwrapping errors and
decorrelation noise are not part of C (holes are: they are left out of the observed pixels).

SNR (Kay 1998, Fundamentals of Statistical Signal Processing vol. II, sec. 4.3-4.4, matched
filter for a known signal in coloured Gaussian noise): ``snr = sqrt(sᵀC⁻¹s)``. When the time
history is unknown (k = T-1 free date amplitudes of the same spatial shape), the GLRT
statistic is chi-squared with k degrees of freedom and non-centrality ``λ = sᵀC⁻¹s`` (Kay
sec. 7.3); its deflection ``λ / sqrt(2k)`` is ``snr_free``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from insar_denoise.synth import SimBatch
from insar_denoise.synth.noise_params import NoiseParams
from insar_denoise.synth.turbulence import padded_size

F64 = torch.float64


@dataclass
class IdealSNR:
    """Ideal-observer detectability of one deformation series.

    Attributes
    ----------
    snr : float
        ``sqrt(sᵀC⁻¹s)``: matched filter, signal shape and time history known.
    snr_free : float
        ``λ / sqrt(2 dof)`` with ``λ = sᵀC⁻¹s``: deflection of the GLRT chi-squared test
        when the time history is unknown (``dof`` free date amplitudes).
    dof : int
        Free dates ``T - 1``.
    amplitude_mm : float
        ``max |s_last - s_0|`` over the scene (mm).
    amplitude_5sigma_mm : float
        ``5 amplitude_mm / snr``: the amplitude of this shape and history detected at 5
        sigma (the SNR is linear in the amplitude); NaN without signal.
    """

    snr: float
    snr_free: float
    dof: int
    amplitude_mm: float
    amplitude_5sigma_mm: float


def spectrum_grid(
    shape: tuple[int, int], pixel_spacing_m: float, beta: float, k0_per_m: float
) -> torch.Tensor:
    """Eigenvalues of the turbulence's periodic covariance on an ``shape`` grid, rfft2 layout.

    ``P(k) = (k^2 + k0^2)^(-beta/2)``, 0 at k = 0 (the simulator removes the mean). The
    columns kx = 0 and kx = nx/2 carry half the power: the simulator draws a half-plane
    spectrum and ``irfft`` keeps only the real part on those lines.
    """
    ny, nx = shape
    ky = torch.fft.fftfreq(ny, d=pixel_spacing_m, dtype=F64)
    kx = torch.fft.rfftfreq(nx, d=pixel_spacing_m, dtype=F64)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    kk = torch.where(k2 > 0, k2 + k0_per_m**2, torch.ones_like(k2))
    lam = torch.where(k2 > 0, kk ** (-beta / 2.0), torch.zeros_like(k2))
    lam[:, 0] *= 0.5
    if nx % 2 == 0:
        lam[:, -1] *= 0.5
    return lam


def _tile_variance(lam: torch.Tensor, grid: tuple[int, int], tile: tuple[int, int]) -> float:
    """``trace(K (I - 11ᵀ/N)) / N`` over an ``tile`` block of the periodic covariance."""
    ny, nx = grid
    weight = torch.full_like(lam, 2.0)
    weight[:, 0] = 1.0
    if nx % 2 == 0:
        weight[:, -1] = 1.0
    k00 = float((lam * weight).sum()) / (ny * nx)
    ones = torch.zeros(grid, dtype=F64)
    ones[: tile[0], : tile[1]] = 1.0
    k1 = torch.fft.irfft2(torch.fft.rfft2(ones) * lam, s=grid)
    n = tile[0] * tile[1]
    return k00 - float((k1 * ones).sum()) / (n * n)


def conjugate_gradients(apply_a, apply_m, b: torch.Tensor, tol: float, max_iter: int):
    """Preconditioned CG for the rows of ``b`` (independent systems solved together).

    Returns ``(x, iterations)``; stops when every ``|b - A x| <= tol |b|`` (Hestenes and
    Stiefel 1952; Saad 2003, Iterative Methods for Sparse Linear Systems, alg. 9.1).
    """
    x = torch.zeros_like(b)
    r = b.clone()
    bnorm = b.norm(dim=1).clamp_min(1e-300)
    z = apply_m(r)
    p = z.clone()
    rz = (r * z).sum(dim=1)
    for it in range(1, max_iter + 1):
        ap = apply_a(p)
        alpha = rz / (p * ap).sum(dim=1).clamp_min(1e-300)
        x += alpha[:, None] * p
        r -= alpha[:, None] * ap
        if bool((r.norm(dim=1) <= tol * bnorm).all()):
            return x, it
        z = apply_m(r)
        rz_new = (r * z).sum(dim=1)
        p = z + (rz_new / rz.clamp_min(1e-300))[:, None] * p
        rz = rz_new
    return x, max_iter


def _as_tensor(a: np.ndarray | torch.Tensor, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to("cpu", dtype)


def _uniform_var(bounds: tuple[float, float]) -> float:
    lo, hi = float(bounds[0]), float(bounds[1])
    return (hi - lo) ** 2 / 12.0


class NoiseCovariance:
    """Covariance ``C`` of the noise of dates 1..T-1 of one scene on its observed pixels.

    Parameters
    ----------
    valid : (H, W) bool, observed pixels (shared by all dates).
    dem : (H, W) elevation (m) for the stratification basis (None: no stratification).
    noise : NoiseParams; example ``index`` is used.
    tol, max_iter : conjugate-gradient tolerance (relative residual) and iteration cap.
    variance_shape : tile (rows, cols) over which ``turb_std_mm`` is a std (default: the map).
    """

    def __init__(
        self,
        valid: np.ndarray | torch.Tensor,
        dem: np.ndarray | torch.Tensor | None,
        noise: NoiseParams,
        *,
        index: int = 0,
        tol: float = 1e-6,
        max_iter: int = 500,
        variance_shape: tuple[int, int] | None = None,
    ) -> None:
        self.valid = _as_tensor(valid, torch.bool)
        h, w = self.valid.shape
        self.n_obs = int(self.valid.sum())
        if self.n_obs < 4:
            raise ValueError("the ideal observer needs at least 4 observed pixels")
        std = _as_tensor(noise.turb_std_mm[index])
        if not noise.turbulence or float(std.min()) <= 0:
            raise ValueError("the noise has no turbulence on some date: C is singular")
        self.tol, self.max_iter, self.iterations = float(tol), int(max_iter), 0
        self.grid = (padded_size(h, noise.turb_pad), padded_size(w, noise.turb_pad))
        beta, k0 = float(noise.turb_beta[index]), float(noise.turb_k0_per_m[index])
        lam = spectrum_grid(self.grid, noise.pixel_spacing_m, beta, k0)
        vshape = variance_shape or (h, w)
        vgrid = (padded_size(vshape[0], noise.turb_pad), padded_size(vshape[1], noise.turb_pad))
        vlam = lam if vgrid == self.grid else spectrum_grid(vgrid, noise.pixel_spacing_m, beta, k0)
        lam = lam / _tile_variance(vlam, vgrid, vshape)
        # k = 0 gets the largest eigenvalue: a constant, absorbed by the improper offset prior
        lam[0, 0] = lam.max()
        self.lam = lam
        self.std_mm = std
        var = std * std
        self.m = torch.diag(var[1:]) + var[0]
        if noise.date_cov_mm2 is not None:  # estimated from a real stack (noise_estimate)
            self.m = _as_tensor(noise.date_cov_mm2[index])
            if self.m.shape != (std.numel() - 1,) * 2:
                raise ValueError(
                    f"date_cov_mm2 of shape {tuple(self.m.shape)} for {std.numel()} dates"
                )
        self.m_inv = torch.linalg.inv(self.m).contiguous()
        self._basis(dem, noise)
        self._kb: torch.Tensor | None = None

    @property
    def n_free(self) -> int:
        """Number of free dates T - 1."""
        return int(self.m.shape[0])

    def _basis(self, dem, noise: NoiseParams) -> None:
        """Nuisance basis ``(N_obs, p)`` on the observed pixels and its prior precisions."""
        h, w = self.valid.shape
        # pixel conventions of insar_denoise.synth.artifacts._unit_coords and .stratified
        c_x = (torch.arange(w, dtype=F64) + 0.5) / w - 0.5
        c_y = (torch.arange(h, dtype=F64) + 0.5) / h - 0.5
        y, x = torch.meshgrid(-c_y, c_x, indexing="ij")
        cols, prec = [torch.ones(h, w, dtype=F64)], [0.0]
        if noise.orbital_ramps:
            lo, hi = (float(v) for v in noise.ramp_mm)
            var = (lo * lo + lo * hi + hi * hi) / 3.0 / 2.0  # E[mag^2] E[cos^2]
            if var > 0:
                cols += [x, y]
                prec += [1.0 / var, 1.0 / var]
        if noise.stratified and dem is not None:
            d = _as_tensor(dem)
            d = torch.where(torch.isfinite(d), d, d[torch.isfinite(d)].mean())
            z = (d - d.min()) / 1000.0
            for zz, bounds in (
                (z, noise.strat_coef_mm_per_km),
                (z * z, noise.strat_quad_mm_per_km2),
            ):
                var = _uniform_var(bounds)
                if var > 0 and float(zz[self.valid].abs().max()) > 0:
                    cols.append(zz)
                    prec.append(1.0 / var)
        self.basis = torch.stack([c[self.valid] for c in cols], dim=1)
        self.basis_names = ["offset", "ramp_x", "ramp_y", "z", "z2"][: len(cols)]
        t1 = self.n_free
        date_prec = torch.eye(t1, dtype=F64) - 1.0 / (t1 + 1)  # (I + 11ᵀ)⁻¹
        self.w_inv = torch.kron(date_prec, torch.diag(torch.tensor(prec, dtype=F64)))

    # --- K on the observed pixels -------------------------------------------------------
    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.valid.shape
        full = torch.zeros((x.shape[0], *self.grid), dtype=F64)
        full[:, :h, :w][:, self.valid] = x
        return full

    def _crop(self, full: torch.Tensor) -> torch.Tensor:
        h, w = self.valid.shape
        return full[:, :h, :w][:, self.valid]

    def apply_k(self, x: torch.Tensor) -> torch.Tensor:
        """``K x`` for rows ``x`` ``(R, N_obs)``: embed, filter by the spectrum, crop."""
        f = torch.fft.rfft2(self._embed(x))
        return self._crop(torch.fft.irfft2(f * self.lam, s=self.grid))

    def _precondition(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.fft.rfft2(self._embed(x))
        return self._crop(torch.fft.irfft2(f / self.lam, s=self.grid))

    def solve_k(self, b: torch.Tensor) -> torch.Tensor:
        """``K⁻¹ b`` for rows ``b`` ``(R, N_obs)`` by preconditioned conjugate gradients."""
        x, it = conjugate_gradients(self.apply_k, self._precondition, b, self.tol, self.max_iter)
        self.iterations = max(self.iterations, it)
        return x

    # --- C⁻¹ ----------------------------------------------------------------------------
    def _flat(self, s: np.ndarray | torch.Tensor) -> torch.Tensor:
        s = _as_tensor(s)
        if s.ndim == 3:
            s = s[:, self.valid]
        if s.shape != (self.n_free, self.n_obs):
            raise ValueError(f"series of shape {tuple(s.shape)}: need ({self.n_free}, H, W)")
        return torch.nan_to_num(s)

    def _a_inverse(self, s: torch.Tensor) -> torch.Tensor:
        """``A⁻¹ s = M⁻¹ s K⁻¹`` with one K solve per singular vector of ``s``."""
        u, sv, vt = torch.linalg.svd(s, full_matrices=False)
        keep = sv > 1e-12 * float(sv.max()) if float(sv.max()) > 0 else sv > 0
        if not bool(keep.any()):
            return torch.zeros_like(s)
        kv = self.solve_k(vt[keep])
        return self.m_inv @ (u[:, keep] * sv[keep]) @ kv

    def _woodbury(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._kb is None:
            self._kb = self.solve_k(self.basis.T.contiguous())  # K⁻¹B, (p, N_obs)
            g = (self.basis.T @ self._kb.T).contiguous()
            cap = self.w_inv + torch.kron(self.m_inv.contiguous(), g)
            self._cap_inv = torch.linalg.inv(cap)
        return self._kb, self._cap_inv

    def apply_inverse(self, s: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``C⁻¹ s`` for a series ``s`` ``(T-1, H, W)`` (or ``(T-1, N_obs)``), mm⁻¹.

        Returned as ``(T-1, H, W)`` float64, 0 outside the observed pixels.
        """
        flat = self._flat(s)
        x = self._a_inverse(flat)
        kb, cap_inv = self._woodbury()
        proj = (x @ self.basis).reshape(-1)  # Uᵀ A⁻¹ s
        y = (cap_inv @ proj).reshape(self.n_free, -1)
        x = x - self.m_inv @ (y @ kb)
        out = torch.zeros((self.n_free, *self.valid.shape), dtype=F64)
        out[:, self.valid] = x
        return out

    def quadratic(self, s: np.ndarray | torch.Tensor) -> float:
        """``sᵀ C⁻¹ s`` (mm⁰: squared SNR)."""
        flat = self._flat(s)
        return float((flat * self.apply_inverse(flat)[:, self.valid]).sum())


def relative_series(deformation: np.ndarray | torch.Tensor) -> torch.Tensor:
    """``s_t - s_0`` for t = 1..T-1 of a ``(T, H, W)`` series (float64)."""
    d = _as_tensor(deformation)
    return d[1:] - d[:1]


def snr_from_quadratic(lam: float, dof: int, amplitude_mm: float) -> IdealSNR:
    """:class:`IdealSNR` of a signal with ``sᵀC⁻¹s = lam``."""
    snr = math.sqrt(max(lam, 0.0))
    five = 5.0 * amplitude_mm / snr if snr > 0 else math.nan
    return IdealSNR(snr, lam / math.sqrt(2.0 * dof), dof, amplitude_mm, five)


def scene_snr(
    deformation: np.ndarray | torch.Tensor,
    valid: np.ndarray | torch.Tensor,
    dem: np.ndarray | torch.Tensor,
    noise: NoiseParams,
    *,
    index: int = 0,
    tol: float = 1e-6,
    max_iter: int = 500,
) -> IdealSNR:
    """Ideal-observer SNR of the true deformation of one scene.

    Parameters
    ----------
    deformation : (T, H, W) mm, the truth relative to date 0.
    valid : (H, W) bool, observed pixels.
    dem : (H, W) m.
    noise : NoiseParams of the scene (example ``index`` of a batch).
    tol, max_iter : conjugate-gradient settings.
    """
    cov = NoiseCovariance(valid, dem, noise, index=index, tol=tol, max_iter=max_iter)
    s = relative_series(deformation)
    amp = float(s[-1].abs().max())
    return snr_from_quadratic(cov.quadratic(s), cov.n_free, amp)


def batch_snr(batch: SimBatch) -> list[IdealSNR]:
    """:func:`scene_snr` of every example of a simulated batch (its ``noise`` is needed)."""
    if batch.noise is None:
        raise ValueError("SimBatch.noise is None: simulate with simulate_batch")
    b = batch.to("cpu")
    return [
        scene_snr(b.deformation[i], b.valid[i], b.dem[i], b.noise, index=i)
        for i in range(b.deformation.shape[0])
    ]

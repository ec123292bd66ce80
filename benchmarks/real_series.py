"""The temporal part of the whole-stack model on real, long Sentinel-1 series (T = 134-146).

Data: the point time series of the ``wasar`` 0.0.4 wheel on PyPI (GPL-3.0; Sentinel-1
ascending and descending over Doñana, 2015-2020, in its example shapefiles). The data are
read from a wheel you download yourself; nothing of it is vendored here:

    pip download --no-deps wasar==0.0.4 -d /tmp/wasar
    python benchmarks/real_series.py /tmp/wasar/wasar-0.0.4-py3-none-any.whl

For every point series (mm LOS) the model's own temporal projection
(:mod:`insar_denoise.models.stack_denoiser`: date weights estimated from the ensemble, a
constant + 4 piecewise-linear ramps, weighted least squares) is run with and without an
injected step (at a random date), transient (tanh, random centre and duration) or linear
history of 2, 5, 10 and 20 mm:

- **gain**: (estimate with − estimate without) / injected cumulative, median and 5-95 %
  over points: how whole the temporal basis keeps each history at real sampling;
- **noise at T**: the cumulative's propagated standard deviation (residual RMS of each point
  around its own fit × the weights' propagation), using the first 9, 18, 36, 72 and all
  dates, for the projection and for the classical linear-rate stack: does the error fall
  with T at least as fast as the linear-rate stack's?
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import torch

from insar_denoise.models.stack_denoiser import date_variances, ramp_basis, weighted_fit

AMPLITUDES_MM = (2.0, 5.0, 10.0, 20.0)
#: the example series are in cm: their Vel column (cm/yr, median -0.37) matches the series'
#: median cumulative (-1.44 over 4.8 years)
CM_TO_MM = 10.0
HISTORIES = ("step", "transient", "linear")
MEMBERS = (
    "wasar/example/Data/shapefiles/Sentinel_Asc.dbf",
    "wasar/example/Data/shapefiles/Sentinel_Desc.dbf",
)


def read_dbf(raw: bytes) -> dict[str, np.ndarray]:
    """Numeric columns of a dBASE III table (the attribute file of a shapefile)."""
    n = struct.unpack("<I", raw[4:8])[0]
    header_len, record_len = struct.unpack("<HH", raw[8:12])
    fields, pos = [], 32
    while raw[pos] != 0x0D:
        name = raw[pos : pos + 11].split(b"\0")[0].decode()
        fields.append((name, raw[pos + 16]))
        pos += 32
    cols: dict[str, list[float]] = {name: [] for name, _ in fields}
    for i in range(n):
        rec = raw[header_len + i * record_len : header_len + (i + 1) * record_len]
        off = 1  # deletion flag
        for name, width in fields:
            text = rec[off : off + width].strip()
            cols[name].append(float(text) if text else np.nan)
            off += width
    return {k: np.asarray(v) for k, v in cols.items()}


def load_series(wheel: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(name, times_days (T,), series (N, T) mm relative to the first date)`` per track."""
    out = []
    with zipfile.ZipFile(wheel) as zf:
        for member in MEMBERS:
            cols = read_dbf(io.BytesIO(zf.read(member)).getvalue())
            dates = sorted(k for k in cols if k.startswith("D") and k[1:].isdigit())
            t = np.array([np.datetime64(f"{d[1:5]}-{d[5:7]}-{d[7:9]}") for d in dates])
            days = ((t - t[0]) / np.timedelta64(1, "D")).astype(float)
            series = np.stack([cols[d] for d in dates], axis=1)
            series = CM_TO_MM * (series - series[:, :1])
            out.append((Path(member).stem, days, series[np.isfinite(series).all(1)]))
    return out


def projection(series: np.ndarray, days: np.ndarray, var: torch.Tensor):
    """Cumulative estimates ``(N,)`` and their propagated std ``(N,)`` (mm) of the model's
    projection and of the linear-rate stack (residual RMS per point x the propagation)."""
    y = torch.from_numpy(series.T[None].astype(np.float64))  # (1, T, N)
    t = torch.from_numpy(days[None])
    w = (1.0 / var.double())[:, :, None].expand_as(y)
    ramps = ramp_basis(t, 4)
    ones = torch.ones_like(ramps[:, :, :1])
    out = {}
    for name, basis in (
        ("projection", torch.cat([ones, ramps], 2)),
        ("linear rate", torch.cat([ones, ramps.sum(2, keepdim=True) / 4], 2)),
    ):
        coef, inv = weighted_fit(y, w, basis)
        fit = torch.einsum("btj,bjp->btp", basis, coef)
        dof = max(y.shape[1] - basis.shape[2], 1)
        chi2 = ((y - fit) ** 2 * w).sum(1) / dof  # (1, N): residual scale per point
        cum = coef[:, 1:].sum(1)[0] if name == "projection" else coef[:, 1][0]
        var_cum = inv[:, :, 1:, 1:].sum((-2, -1)) if name == "projection" else inv[:, :, 1, 1]
        out[name] = (cum.numpy(), (var_cum[0] * chi2[0]).sqrt().numpy())
    return out


def history(kind: str, days: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A normalised history (0 at the first date, 1 at the last) of ``kind``."""
    u = (days - days[0]) / (days[-1] - days[0])
    if kind == "linear":
        return u
    c = rng.uniform(0.1, 0.9)
    if kind == "step":
        h = (u >= c).astype(float)
        h[-1] = 1.0
        return h
    tau = rng.uniform(0.05, 0.3) / 2.2
    s = np.tanh((u - c) / tau)
    return (s - s[0]) / (s[-1] - s[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("wheel", type=Path, help="wasar-0.0.4-py3-none-any.whl")
    p.add_argument("-o", "--output", default="experiments/benchmarks/real_series.json")
    args = p.parse_args()
    rng = np.random.default_rng(0)
    report = {}
    for name, days, series in load_series(args.wheel):
        var = date_variances(torch.from_numpy(series.T[None, :, None, :].astype(np.float32)))
        base = projection(series, days, var)
        gains = {}
        for kind in HISTORIES:
            for amp in AMPLITUDES_MM:
                inj = np.stack([amp * history(kind, days, rng) for _ in range(len(series))])
                with_inj = projection(series + inj, days, var)
                g = (with_inj["projection"][0] - base["projection"][0]) / amp
                gains[f"{kind} {amp:g} mm"] = [float(np.percentile(g, q)) for q in (5, 50, 95)]
        noise = {}
        for t in (9, 18, 36, 72, len(days)):
            sub = projection(series[:, :t], days[:t], var[:, :t])
            noise[str(t)] = {k: float(np.median(v[1])) for k, v in sub.items()}
        report[name] = {
            "points": int(len(series)),
            "dates": int(len(days)),
            "span_days": float(days[-1]),
            "gain_p5_p50_p95": gains,
            "cumulative_std_mm_by_T": noise,
        }
        print(f"{name}: {len(series)} points, {len(days)} dates over {days[-1]:.0f} days")
        for key, (lo, mid, hi) in gains.items():
            print(f"  gain {key:<16} {mid:5.2f}  (5-95 %: {lo:5.2f} .. {hi:5.2f})")
        print("  cumulative std (mm) by T:  projection / linear rate")
        for t, row in noise.items():
            print(f"    T={t:>4}: {row['projection']:6.2f} / {row['linear rate']:6.2f}")
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"source": "wasar 0.0.4 example shapefiles (GPL-3.0, not vendored)", "tracks": report},
            indent=1,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

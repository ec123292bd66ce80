"""Time and memory of the creep model (insar_denoise.inference.creep_model) on synthetic stacks.

    OMP_NUM_THREADS=1 python benchmarks/bench_creep_model.py   # ~5 min

A steadily creeping finite fault (Okada 1985, one tip in the scene) under correlated noise,
at the sizes the step runs on (up to ``creep_model.MAX_PIXELS`` and ``MAX_BYTES``): the
trace search, the cross-validated choice of prewhitening (four fits to halves of the dates),
the final fit and the dates' shares; then the same stack without the creep (the two
searches alone, ``seconds_without_trace``). Prints a row per size and writes
``experiments/benchmarks/bench_creep_model.json`` (with the fitted map's r and gain).
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from insar_denoise.inference import creep_model
from insar_denoise.synth.okada import okada_surface

OUT = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_creep_model.json"
RUNS = ((192, 36), (512, 100), (1024, 40))


def creep(size: int) -> np.ndarray:
    """LOS mm of 60 mm of left-lateral slip on a vertical fault 14 km long, 0.1-2.1 km deep,
    one tip in a scene of 17.3 km (90 m pixels at 192 px, finer above)."""
    pixel = 90.0 * 192 / size
    rows, cols = np.mgrid[:size, :size].astype(np.float64)
    e, n, u = okada_surface(
        torch.from_numpy(cols * pixel),
        torch.from_numpy((size - rows) * pixel),
        x0_m=0.5 * size * pixel,
        y0_m=0.3 * size * pixel,
        depth_m=100.0,
        strike_deg=30.0,
        dip_deg=90.0,
        length_m=14000.0,
        width_m=2000.0,
        strike_slip_m=60.0,
    )
    # seen ascending at 38 degrees: the ground-to-satellite vector (east, north, up)
    return (-0.60 * e.numpy() - 0.13 * n.numpy() + 0.79 * u.numpy()).astype(np.float32)


def stack(
    size: int, n_dates: int, seed: int = 0, calm: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, size, size)`` float32 mm relative to the first date (3 mm correlated noise per
    date, the creep growing linearly; ``calm``: noise only) and the creep's cumulative."""
    rng = np.random.default_rng(seed)
    truth = creep(size) * (0.0 if calm else 1.0)
    out = np.empty((n_dates, size, size), np.float32)
    for t in range(n_dates):
        noise = ndimage.gaussian_filter(rng.normal(size=(size, size)), 6 * size / 192)
        out[t] = 3.0 * noise / noise.std() + truth * t / (n_dates - 1)
    return out - out[:1], truth


def main() -> None:
    rows = []
    for size, n_dates in RUNS:
        series, truth = stack(size, n_dates)
        days = np.arange(n_dates) * 12.0
        start = time.perf_counter()
        model, note = creep_model.creep_series(series, None, days, np.full(n_dates, 9.0), 4)
        seconds = time.perf_counter() - start
        row = {
            "size": size,
            "dates": n_dates,
            "seconds": round(seconds, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
        }
        if model is not None:
            o, t = model[-1] - np.median(model[-1]), truth - np.median(truth)
            row["r"] = round(float(np.corrcoef(o.ravel(), t.ravel())[0, 1]), 3)
            row["gain"] = round(float(o.ravel() @ t.ravel() / (t**2).sum()), 3)
            row["fit"] = json.loads(note)
        else:
            row["note"] = note
        # the same stack without the creep: the searches alone (the model's least-squares
        # cumulative, then the straight line's), what most scenes pay
        calm = stack(size, n_dates, calm=True)[0]
        start = time.perf_counter()
        _, calm_note = creep_model.creep_series(calm, None, days, np.full(n_dates, 9.0), 4)
        row["seconds_without_trace"] = round(time.perf_counter() - start, 1)
        row["note_without_trace"] = calm_note
        print(row, flush=True)
        rows.append(row)
    OUT.write_text(json.dumps({"runs": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()

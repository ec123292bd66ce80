"""Benchmark of whole-scene inference: throughput, peak memory and seams.

For each scene size (pixels per side) a fresh subprocess builds a lazy dask stack of
``--dates`` dates (random noise plus a growing bump, never wholly in memory), runs
``denoise_dataset`` and writes the cumulative map to a temporary GeoTIFF through
``insar_denoise.io.write_geotiff`` (or, with ``--writer memmap``, stores it with dask into a
numpy memmap). It reports megapixel-dates per second and its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss`` in the child; the parent also records
``RUSAGE_CHILDREN``, the maximum over the children so far). Memory should stay flat
across sizes: it is bounded by the block size, not the scene.

The seam metric runs in this process on simulated scenes (``insar_denoise.synth``): the
mean absolute error of the cumulative map (after removing its best-fit plane, which the
model leaves undetermined) within 8 px of internal tile and block borders, divided by the
same in the tile interiors. Target <= 1.05.

``--frame-steps`` skips the fault-trace and unwrapping-error searches at every size, as a
Sentinel-1 frame does (they run on scenes up to ``fault_trace.MAX_PIXELS`` and
``unwrapping.MAX_PIXELS`` only), so that a 2048^2 run extrapolates to a frame's work.

Model: ``--model default`` uses the packaged model when present, else an untrained model of
the same architecture (the report says which); ``--model tiny`` is the 5-px receptive
field test model (engine overhead and memory only).

    python benchmarks/bench_run.py            # 1k, 2k, 4k pixels x 30 dates
    python benchmarks/bench_run.py --quick    # 256, 512 pixels x 12 dates
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "benchmarks" / "bench_run.json"


def load(name: str, device: str):
    """Return ``(model, description)``."""
    from insar_denoise.errors import ModelError

    if name == "tiny":
        from insar_denoise.inference.testing import tiny_model

        model = tiny_model(window=9)
        model.metadata.update(default_tile=256, default_overlap=16)  # realistic tile sizes
        return model, "tiny test model (5 px receptive field, untrained, tile 256)"
    from insar_denoise import models

    try:
        loaded = models.load_model(name, device="cpu")
        return loaded, f"{name} ({loaded.path.name}, trained)"
    except ModelError as exc:
        if name != "default":
            raise
        from insar_denoise.models.autoencoder import DEFAULT_CHANNELS

        module = models.build_untrained(window=9, channels=DEFAULT_CHANNELS)
        return module, f"untrained DenoisingAutoencoder, default architecture ({exc})"


def lazy_scene(size: int, n_dates: int, seed: int = 0):
    """A dask-backed canonical Dataset of ``size^2`` pixels and ``n_dates`` dates."""
    import dask.array as da

    from insar_denoise.io.dataset import dataset_from_arrays

    chunk = min(size, 512)
    rng = da.random.default_rng(seed)
    # one date per chunk, as the GeoTIFF reader gives them (a block reads only its window)
    noise = 2.0 * rng.standard_normal(
        size=(n_dates, size, size), chunks=(1, chunk, chunk), dtype=np.float32
    )
    yy = da.arange(size, chunks=chunk, dtype=np.float32)[:, None]
    xx = da.arange(size, chunks=chunk, dtype=np.float32)[None, :]
    bump = 20.0 * da.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 8) ** 2))
    frac = da.from_array(np.linspace(0, 1, n_dates, dtype=np.float32)[:, None, None])
    disp = (frac * bump[None] + noise).astype(np.float32)
    dem = (500.0 + 300.0 * da.sin(yy / 50.0) * da.cos(xx / 70.0)).astype(np.float32)
    time_ = np.datetime64("2021-01-01") + 12 * np.arange(n_dates).astype("timedelta64[D]")
    return dataset_from_arrays(
        disp, dem, times=time_, spacing=90.0, origin=(5e5, 4e6), crs="EPSG:32611"
    )


def worker(args: argparse.Namespace) -> dict:
    """Run one size in this (child) process and return its measurements."""
    import dask

    from insar_denoise.inference import denoise_dataset

    if args.frame_steps:  # what a Sentinel-1 frame runs: its size skips the fault-trace
        from insar_denoise.inference import fault_trace, unwrapping  # and unwrapping searches

        fault_trace.MAX_PIXELS = 0
        unwrapping.MAX_PIXELS = 0
    model, description = load(args.model, args.device)
    ds = lazy_scene(args.size, args.dates)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stack = getattr(model, "metadata", {}).get("kind") == "stack"
    # window models: blocks = the writer's strips; whole-stack models: their default block
    chunk = args.chunk or (1024 if args.writer == "geotiff" and not stack else None)
    out = denoise_dataset(
        ds,
        model,
        device=args.device,
        stride=args.stride,
        tile=args.tile,
        overlap=args.overlap,
        progress=False,
        return_noise=False,
        chunk=chunk,
    )
    cumulative = out["cumulative_deformation"]
    with tempfile.TemporaryDirectory() as tmp:
        writer = args.writer
        if writer == "geotiff":
            try:
                from insar_denoise.io import write_geotiff
            except ImportError:
                writer = "memmap"
        if writer == "geotiff":
            with dask.config.set(scheduler="threads"):
                write_geotiff(cumulative, Path(tmp) / "cumulative.tif")
        else:
            target = np.lib.format.open_memmap(
                Path(tmp) / "cumulative.npy",
                mode="w+",
                dtype=np.float32,
                shape=cumulative.shape,
            )
            cumulative.data.store(target, lock=False, scheduler="threads")
            target.flush()
    wall = time.perf_counter() - start
    mpix_dates = args.size * args.size * args.dates / 1e6
    return {
        "size_px": args.size,
        "dates": args.dates,
        "device": out.attrs["insar_denoise_device"],
        "model": description,
        "tile_px": out.attrs["insar_denoise_tile_px"],
        "overlap_px": out.attrs["insar_denoise_overlap_px"],
        "stride": args.stride,
        "window": int(out.attrs["insar_denoise_window"]),
        # tiles per model call: chosen from free memory (inference.devices.fit_batch_size)
        "batch_size": int(out.attrs.get("insar_denoise_batch_size", 0)),
        "windows": n_windows(args.dates, int(out.attrs["insar_denoise_window"]), args.stride),
        "writer": writer,
        "wall_s": round(wall, 2),
        "mpix_dates_per_s": round(mpix_dates / wall, 4),
        "rss_after_setup_mb": round(rss_before / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def n_windows(dates: int, window: int, stride: int) -> int:
    """Number of model windows (one model pass each) over ``dates`` dates."""
    from insar_denoise.inference.windows import window_starts

    return len(window_starts(dates, window, stride))


def full_frame_hours(run: dict, args: argparse.Namespace) -> float:
    """Extrapolate one run to a Sentinel-1 frame, 5000 x 5000 px x 100 dates (same stride):
    time scales with pixels x windows (each window is one model pass over the scene)."""
    per_px_window = run["wall_s"] / (run["size_px"] ** 2 * run["windows"])
    return per_px_window * 5000**2 * n_windows(100, run["window"], args.stride) / 3600.0


def full_frame_rss_mb(runs: list[dict]) -> float | None:
    """Peak RSS extrapolated to a 5000 x 5000 px frame, linear in pixels through the two
    largest sizes of ``runs`` (one device, same dates); ``None`` with fewer than two."""
    if len({r["size_px"] for r in runs}) < 2:
        return None
    small, large = sorted(runs, key=lambda r: r["size_px"])[-2:]
    px_small, px_large = small["size_px"] ** 2, large["size_px"] ** 2
    per_px = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (px_large - px_small)
    return large["peak_rss_mb"] + per_px * (5000**2 - px_large)


def run_size(args: argparse.Namespace, size: int, device: str) -> dict:
    """Run :func:`worker` in a subprocess and collect its result and RUSAGE_CHILDREN."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        path = fh.name
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        "--size",
        str(size),
        "--dates",
        str(args.dates),
        "--model",
        args.model,
        "--device",
        device,
        "--writer",
        args.writer,
        "--stride",
        str(args.stride),
        "--json",
        path,
    ]
    if args.chunk:
        cmd += ["--chunk", str(args.chunk)]
    if args.tile:
        cmd += ["--tile", str(args.tile)]
    if args.overlap is not None:
        cmd += ["--overlap", str(args.overlap)]
    if args.frame_steps:
        cmd += ["--frame-steps"]
    subprocess.run(cmd, check=True)
    result = json.loads(Path(path).read_text())
    os.remove(path)
    result["children_max_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
    )
    return result


def border_mask(shape: tuple[int, int], tile: int, overlap: int, band: int = 8):
    """Pixels within ``band`` px of an internal tile border of the global tile grid, and
    the remaining tile-interior pixels (both ``band`` px away from the scene edges)."""
    from insar_denoise.inference.tiling import grid_starts

    mask = np.zeros(shape, bool)
    for axis, n in enumerate(shape):
        for s in grid_starts(n, tile, overlap, overlap):
            for e in (s, s + tile):
                if 0 < e < n:
                    sl = slice(max(0, e - band), min(n, e + band))
                    if axis == 0:
                        mask[sl, :] = True
                    else:
                        mask[:, sl] = True
    inner = np.zeros(shape, bool)
    inner[band : shape[0] - band, band : shape[1] - band] = True
    return mask & inner, ~mask & inner


def seam_metric(args: argparse.Namespace, device: str) -> dict:
    """Border / interior error ratio of the cumulative map on simulated scenes."""
    import torch

    from insar_denoise.inference import denoise_dataset
    from insar_denoise.io.dataset import dataset_from_arrays
    from insar_denoise.synth import SimConfig, simulate_batch

    model, description = load(args.model, device)
    size = args.seam_size
    cfg = SimConfig(size=size, n_dates=args.seam_dates, holes_prob=0.0, unwrap_prob=0.0)
    batch = simulate_batch(cfg, args.seam_scenes, generator=torch.Generator().manual_seed(1))
    errs: dict[str, list] = {"tiled": [], "whole": [], "tiled_vs_whole": []}
    for i in range(args.seam_scenes):
        ds = dataset_from_arrays(
            batch.displacement[i].numpy(),
            batch.dem[i].numpy(),
            times=np.datetime64("2021-01-01")
            + 12 * np.arange(cfg.n_dates).astype("timedelta64[D]"),
            spacing=90.0,
            half_pixel=False,
        )
        tiled = denoise_dataset(
            ds, model, device=device, tile=args.seam_tile, progress=False, return_noise=False
        )
        # reference: the whole scene as one tile (no borders at all), same model
        whole = denoise_dataset(
            ds,
            model,
            device=device,
            tile=size,
            overlap=0,
            chunk=size,
            progress=False,
            return_noise=False,
        )
        attrs = tiled.attrs
        border, interior = border_mask(
            (size, size), attrs["insar_denoise_tile_px"], attrs["insar_denoise_overlap_px"]
        )
        truth = batch.cumulative[i].numpy()
        for name, out in (("tiled", tiled), ("whole", whole)):
            err = _deplaned_abs(out["cumulative_deformation"].values - truth)
            errs[name].append((np.nanmean(err[border]), np.nanmean(err[interior])))
        diff = _deplaned_abs(
            tiled["cumulative_deformation"].values - whole["cumulative_deformation"].values
        )
        errs["tiled_vs_whole"].append((np.nanmean(diff[border]), np.nanmean(diff[interior])))
    mean = {k: np.mean(np.asarray(v, dtype=float), axis=0) for k, v in errs.items()}
    ratio = float(mean["tiled"][0] / mean["tiled"][1])
    ratio_whole = float(mean["whole"][0] / mean["whole"][1])
    return {
        "model": description,
        "scene_px": size,
        "dates": cfg.n_dates,
        "tile_px": int(attrs["insar_denoise_tile_px"]),
        "overlap_px": int(attrs["insar_denoise_overlap_px"]),
        "scenes": args.seam_scenes,
        "border_mae_mm": round(float(mean["tiled"][0]), 4),
        "interior_mae_mm": round(float(mean["tiled"][1]), 4),
        "seam_ratio": round(ratio, 4),
        "same_pixels_untiled_ratio": round(ratio_whole, 4),
        "seam_ratio_normalised": round(ratio / ratio_whole, 4),
        "tiled_minus_untiled_border_mm": round(float(mean["tiled_vs_whole"][0]), 4),
        "tiled_minus_untiled_interior_mm": round(float(mean["tiled_vs_whole"][1]), 4),
        "target": 1.05,
    }


def _deplaned_abs(err: np.ndarray) -> np.ndarray:
    """``|err - best-fit plane|`` (the model leaves offset and ramp undetermined)."""
    from insar_denoise.models.normalization import deplane_np

    return np.abs(deplane_np(err.astype(np.float64), np.isfinite(err)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="256 and 512 px x 12 dates")
    p.add_argument("--sizes", type=int, nargs="*", help="scene sides in pixels")
    p.add_argument("--dates", type=int, default=None)
    p.add_argument("--model", default="default", help="default, tiny, or a model path")
    p.add_argument("--devices", nargs="*", default=None, help="default: cpu (+ cuda if present)")
    p.add_argument("--writer", choices=("geotiff", "memmap"), default="geotiff")
    p.add_argument("--stride", type=int, default=1, help="window stride in dates")
    p.add_argument("--chunk", type=int, default=None, help="block core side in pixels")
    p.add_argument("--tile", type=int, default=None, help="tile side (default: the model's)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap (default: the model's)")
    p.add_argument("--seam-size", type=int, default=None)
    p.add_argument("--seam-dates", type=int, default=None)
    p.add_argument("--seam-tile", type=int, default=None)
    p.add_argument("--seam-scenes", type=int, default=2)
    p.add_argument("--skip-seams", action="store_true")
    p.add_argument(
        "--frame-steps",
        action="store_true",
        help="skip the fault-trace and unwrapping-error searches at every size, as a 5000^2 "
        "frame does (scenes over their MAX_PIXELS), so that smaller runs extrapolate to a frame",
    )
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        Path(args.json).write_text(json.dumps(worker(args)))
        return 0
    import torch

    sizes = args.sizes or ([256, 512] if args.quick else [1024, 2048, 4096])
    args.dates = args.dates or (12 if args.quick else 30)
    args.seam_size = args.seam_size or (256 if args.quick else 512)
    args.seam_dates = args.seam_dates or (10 if args.quick else 12)
    # args.seam_tile None: the model's default tile
    devices = args.devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    report = {
        "argv": sys.argv[1:],
        "cpu_count": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "runs": [],
        "seams": [],
    }
    for device in devices:
        for size in sizes:
            report["runs"].append(run_size(args, size, device))
            r = report["runs"][-1]
            r["s1_frame_hours"] = round(full_frame_hours(r, args), 2)
            print(
                f"{device:5s} {size:5d}^2 x {r['dates']:3d}  {r['wall_s']:8.1f} s  "
                f"{r['mpix_dates_per_s']:8.3f} Mpx·dates/s  peak RSS {r['peak_rss_mb']:8.1f} MB  "
                f"batch {r['batch_size']}  "
                f"S1 frame (5000^2 x 100) ~{r['s1_frame_hours']:.1f} h",
                flush=True,
            )
        runs = [r for r in report["runs"] if r["device"] == device]
        frame_mb = full_frame_rss_mb(runs)
        if frame_mb is not None:
            runs[-1]["s1_frame_peak_rss_mb"] = round(frame_mb, 1)
            print(
                f"{device:5s} S1 frame (5000^2 x {args.dates}) peak RSS ~{frame_mb:.0f} MB "
                "(linear in pixels from the two largest sizes)",
                flush=True,
            )
        if not args.skip_seams:
            report["seams"].append({"device": device, **seam_metric(args, device)})
    print("\nmodel:", report["runs"][0]["model"] if report["runs"] else "-")
    print(
        f"{'device':6s} {'size':>6s} {'dates':>5s} {'wall s':>8s} {'Mpx·d/s':>9s} "
        f"{'RSS MB':>8s} {'setup MB':>8s}"
    )
    for r in report["runs"]:
        print(
            f"{r['device']:6s} {r['size_px']:6d} {r['dates']:5d} {r['wall_s']:8.1f} "
            f"{r['mpix_dates_per_s']:9.3f} {r['peak_rss_mb']:8.1f} {r['rss_after_setup_mb']:8.1f}"
        )
    for s in report["seams"]:
        print(
            f"seam ratio ({s['device']}, {s['scene_px']} px, tile {s['tile_px']}): "
            f"{s['seam_ratio']:.3f} (target <= 1.05; border {s['border_mae_mm']} mm, interior "
            f"{s['interior_mae_mm']} mm); same pixels untiled {s['same_pixels_untiled_ratio']:.3f}"
            f" -> normalised {s['seam_ratio_normalised']:.3f}; |tiled - untiled| border "
            f"{s['tiled_minus_untiled_border_mm']} mm, interior "
            f"{s['tiled_minus_untiled_interior_mm']} mm"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print("wrote", args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The bundled demo: simulate a realistic stack on a real DEM patch, denoise it, score it.

``insar-denoise demo -o DIR`` (the README's first command) calls :func:`run_demo`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from insar_denoise.errors import OutputError
from insar_denoise.io import atomic_output

if TYPE_CHECKING:
    from insar_denoise.models.registry import ModelLike

DEMO_SEED = 2021
DEMO_SIZE = 192
DEMO_DATES = 18
DEMO_AMPLITUDE_MM = 10.0


@dataclass
class DemoResult:
    """Where the demo wrote its files and the scores it measured."""

    out_dir: Path
    outputs: dict[str, Path]
    metrics: dict[str, Any]


def demo_config():
    """The demo scene: Sentinel-1-like 12-day stack, 90 m pixels, real DEM, moderate atmosphere."""
    from insar_denoise.synth import SimConfig

    return SimConfig(
        size=DEMO_SIZE,
        n_dates=DEMO_DATES,
        pixel_spacing_m=90.0,
        real_dem_prob=1.0,
        turbulence_std_mm=(2.0, 6.0),
    )


def run_demo(
    out_dir: str | Path,
    *,
    model: ModelLike = None,
    overwrite: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> DemoResult:
    """Simulate the demo stack into ``out_dir/stack``, denoise it, write outputs and scores.

    Writes ``deformation.tif`` (cumulative, mm), ``series.tif``, ``noise.tif``,
    ``quicklook.png`` and ``demo_metrics.json`` (RMSE / correlation of the model, the all-zero
    map, the raw cumulative and the classical corrections against the simulated truth).
    """
    from insar_denoise.evaluation.runner import evaluate_stack
    from insar_denoise.io.layouts import load_inputs
    from insar_denoise.io.scene import write_scene
    from insar_denoise.models import as_model
    from insar_denoise.pipeline import run_pipeline
    from insar_denoise.synth import simulate_scene

    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputError(f"{out}: folder is not empty (pass --overwrite)")
    out.mkdir(parents=True, exist_ok=True)
    loaded = as_model(model)  # loaded and hashed once: the run and the scores share it
    scene = simulate_scene(demo_config(), DEMO_SEED, source="okada", amplitude_mm=DEMO_AMPLITUDE_MM)
    stack_dir = out / "stack"
    write_scene(scene, stack_dir, overwrite=overwrite)
    inputs = sorted(str(p) for p in stack_dir.glob("disp_*.tif"))
    dem = stack_dir / "dem.tif"
    run = run_pipeline(
        inputs,
        out / "deformation.tif",
        dem=dem,
        series=out / "series.tif",
        noise=out / "noise.tif",
        quicklook=out / "quicklook.png",
        model=loaded,
        device=device,
        overwrite=overwrite,
        progress=progress,
    )
    ds, _ = load_inputs(inputs, dem=dem)
    evaluation = evaluate_stack(ds.compute(), scene["cumulative"], loaded, device=device)
    metrics = {
        **evaluation.metrics,
        "scene": {
            "seed": DEMO_SEED,
            "source": scene["source"],
            "history": scene["history"],
            "amplitude_mm": float(scene["amplitude_mm"]),
            "config": scene["config"],
        },
        "run_wall_s": run.wall_s,
    }
    with atomic_output(out / "demo_metrics.json", overwrite=overwrite) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=str))
    figure = comparison_figure(ds, scene["cumulative"], out, overwrite)
    outputs = {
        **run.outputs,
        "comparison": figure,
        "metrics": out / "demo_metrics.json",
        "stack": stack_dir,
    }
    return DemoResult(out_dir=out, outputs=outputs, metrics=metrics)


def comparison_figure(ds, truth: np.ndarray, out: Path, overwrite: bool) -> Path:
    """``comparison.png``: the simulated truth beside the model, the classical correction and
    the raw cumulative, each on its own colour scale (all with their median removed: every
    map is defined up to a constant)."""
    import rioxarray

    from insar_denoise.inference import denoise_dataset
    from insar_denoise.plots import quicklook

    model = rioxarray.open_rasterio(out / "deformation.tif").squeeze("band", drop=True)
    best = denoise_dataset(ds, method="best", return_noise=False)["cumulative_deformation"]
    disp = ds["displacement"].transpose("time", "y", "x")
    raw = disp.isel(time=-1) - disp.isel(time=0)
    template = best.copy(data=np.asarray(truth, dtype=np.float32))

    def centred(a):
        a = a.astype("float32").compute()
        return (a - float(np.nanmedian(a.values))).rio.write_crs(ds.rio.crs)

    panels = [
        ("simulated truth", centred(template), "mm"),
        ("model", centred(model.assign_coords(y=best["y"], x=best["x"])), "mm"),
        ("classical correction (best)", centred(best), "mm"),
        ("raw cumulative", centred(raw), "mm"),
    ]
    title = "demo: truth and estimates of the cumulative LOS deformation (medians removed)"
    return quicklook(panels, out / "comparison.png", title=title, overwrite=overwrite)


def summary_lines(result: DemoResult) -> list[str]:
    """Human-readable scores: every method next to the all-zero map and the raw data."""
    m = result.metrics
    scene = m["scene"]
    lines = [
        f"demo scene: {scene['source']} ({scene['history']}), max |LOS| "
        f"{scene['amplitude_mm']:.1f} mm over {m['n_dates']} dates, "
        f"{m['shape'][0]}x{m['shape'][1]} px; denoised in {m['run_wall_s']:.1f} s",
        "error of the cumulative map against the simulated truth "
        f"({m.get('aligned', 'plane removed')}, mm):",
        f"  {'method':<10} {'RMSE':>7} {'corr':>6}",
    ]
    for name in m["methods"]:
        corr = m["corr"].get(name)
        corr_txt = "   n/a" if corr is None or corr != corr else f"{corr:6.2f}"
        lines.append(f"  {name:<10} {m['rmse_mm'][name]:7.2f} {corr_txt}")
    lines.append("(zero = a map of zeros; best = elevation regression + stacking + filter)")
    for kind, path in result.outputs.items():
        lines.append(f"  {kind}: {path}")
    return lines

"""Run every frame of a manifest, one task per frame, resumably.

Without a client the frames run one after another in this process; with a
``distributed.Client`` each frame is one task (``client.submit(process_frame, ...)``) and
results are gathered as they complete. A failing frame is recorded and does not stop the
others. ``summary.json`` and ``summary.csv`` list every frame at the end.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from insar_denoise.batch.manifest import FrameSpec, Manifest, load_manifest
from insar_denoise.batch.records import (
    failed_record,
    failure_path,
    finished_record,
    frame_fingerprint,
    record_path,
    write_done,
    write_failure,
    write_json_atomic,
    write_text_atomic,
)
from insar_denoise.errors import ConfigError, InsarDenoiseError

log = logging.getLogger(__name__)

SUMMARY_FIELDS = ("frame", "status", "reason", "wall_s", "pixels", "dates", "outputs")


@dataclass
class FrameResult:
    """What became of one frame.

    Attributes
    ----------
    frame : the frame's name.
    status : ``"done"`` (computed now), ``"skipped"`` (finished earlier, unchanged) or
        ``"failed"`` (now, or earlier with unchanged inputs and no ``retry_failed``).
    reason : why it failed or was skipped; empty when done.
    wall_s : seconds spent on the frame in this run (s).
    pixels : pixels per date (rows x columns); 0 if unknown.
    dates : number of dates; 0 if unknown.
    outputs : ``{"output": path, ...}`` of the frame's files.
    """

    frame: str
    status: str
    reason: str = ""
    wall_s: float = 0.0
    pixels: int = 0
    dates: int = 0
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the rows of ``summary.json``)."""
        return asdict(self)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _reason(exc: BaseException) -> str:
    """A one-line reason: the message alone for our errors, else with the exception type."""
    if isinstance(exc, InsarDenoiseError):
        return _one_line(str(exc)) or type(exc).__name__
    return _one_line(f"{type(exc).__name__}: {exc}")


def _worker_scheduler() -> contextlib.AbstractContextManager:
    """Inside a dask worker, compute a frame's own graph with the worker's thread count."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return contextlib.nullcontext()
    nthreads = int(getattr(worker.state, "nthreads", 1) or 1)
    if nthreads == 1:
        return _dask_config(scheduler="synchronous")
    return _dask_config(scheduler="threads", num_workers=nthreads)


def _dask_config(**settings: Any) -> contextlib.AbstractContextManager:
    import dask

    return dask.config.set(**settings)


def process_frame(
    frame: FrameSpec, *, retry_failed: bool = False, progress: bool = False
) -> FrameResult:
    """Denoise one frame unless it is already finished; never raises for a frame's failure.

    Parameters
    ----------
    frame : a validated frame (see :func:`insar_denoise.batch.manifest.load_manifest`).
    retry_failed : re-run a frame whose last attempt failed with the same fingerprint
        (otherwise it is reported as failed again without running).
    progress : show the tile progress bar of this frame.

    Returns
    -------
    FrameResult with status ``done``, ``skipped`` or ``failed``.
    """
    start = time.perf_counter()
    outputs = dict(frame.outputs)
    try:
        fingerprint = frame_fingerprint(frame)
    except OSError as exc:
        reason = f"input vanished: {exc.filename or exc}"
        return _failed(frame, None, reason, traceback.format_exc(), start)
    done = finished_record(frame, fingerprint)
    if done is not None:
        result = done.get("result") or {}
        return FrameResult(
            frame.name,
            "skipped",
            "finished earlier, inputs unchanged",
            time.perf_counter() - start,
            int(result.get("pixels", 0)),
            int(result.get("dates", 0)),
            outputs,
        )
    previous = failed_record(frame, fingerprint)
    if previous is not None and not retry_failed:
        reason = f"{previous.get('reason', 'unknown')} (earlier run; inputs unchanged)"
        return FrameResult(
            frame.name, "failed", reason, time.perf_counter() - start, outputs=outputs
        )
    record_path(frame).unlink(missing_ok=True)
    try:
        from insar_denoise.messages import labelled_warnings
        from insar_denoise.pipeline import run_pipeline

        for path in outputs.values():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        extra = {k: v for k, v in outputs.items() if k != "output"}
        options = frame.run_options.with_(progress=progress)
        with _worker_scheduler(), labelled_warnings(frame.name):
            res = run_pipeline(
                list(frame.inputs),
                outputs["output"],
                dem=frame.dem,
                **extra,
                options=options,
                overwrite=True,
            )
        summary = {
            "pixels": res.shape[0] * res.shape[1],
            "dates": res.n_dates,
            "shape": list(res.shape),
            "layout": res.layout,
            "wall_s": res.wall_s,
        }
        write_done(frame, fingerprint, outputs, summary)  # last: only complete frames count
    except Exception as exc:  # a frame's failure, whatever it is, must not stop the batch
        return _failed(frame, fingerprint, _reason(exc), traceback.format_exc(), start)
    with contextlib.suppress(OSError):
        failure_path(frame).unlink(missing_ok=True)
    return FrameResult(
        frame.name, "done", "", time.perf_counter() - start, summary["pixels"], res.n_dates, outputs
    )


def _failed(
    frame: FrameSpec, fingerprint: dict | None, reason: str, trace: str, start: float
) -> FrameResult:
    log.warning("%s: failed: %s", frame.name, reason)
    try:
        write_failure(frame, fingerprint, reason, trace)
    except OSError as exc:
        log.warning("%s: cannot write the failure record: %s", frame.name, exc)
    return FrameResult(
        frame.name, "failed", reason, time.perf_counter() - start, outputs=dict(frame.outputs)
    )


@contextlib.contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` for ``--workers N`` or ``--scheduler ADDRESS``, else None.

    ``workers`` starts a ``LocalCluster`` of ``workers`` single-threaded processes bound to
    127.0.0.1; ``scheduler`` connects to an existing cluster (``tcp://HOST:8786``).
    """
    if workers is not None and scheduler is not None:
        raise ConfigError("give either --workers or --scheduler, not both")
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if workers is None and scheduler is None:
        yield None
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="30s")
        except OSError as exc:
            raise ConfigError(f"cannot reach the dask scheduler {scheduler}: {exc}") from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def run_batch(
    manifest: str | Path | dict[str, Any] | Manifest,
    client: Any = None,
    *,
    retry_failed: bool = False,
    summary_dir: str | Path | None = None,
    progress: bool = True,
) -> list[FrameResult]:
    """Run every frame of ``manifest``; write ``summary.json`` and ``summary.csv``.

    Parameters
    ----------
    manifest : a YAML/TOML manifest path, an already-parsed dict (relative paths resolve
        against the current folder) or a :class:`~insar_denoise.batch.manifest.Manifest`.
    client : a ``distributed.Client``: one task per frame on its cluster. None: one frame
        at a time in this process.
    retry_failed : re-run frames whose last attempt failed with unchanged inputs.
    summary_dir : folder of the summaries (default: the manifest's folder).
    progress : a bar over frames, one line per finished frame, and (in-process or on a
        single worker) the tile bar of each frame.

    Returns
    -------
    list of FrameResult, in manifest order.

    Raises
    ------
    ConfigError
        The manifest is invalid (nothing is run); the message lists every problem.
    """
    spec = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    out_dir = Path(summary_dir) if summary_dir is not None else spec.root
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, FrameResult] = {}
    bar = tqdm(total=len(spec.frames), unit="frame", desc="frames", disable=not progress)

    def report(result: FrameResult) -> None:
        results[result.frame] = result
        bar.update(1)
        line = _line(result, len(results), len(spec.frames))
        if progress:
            bar.write(line)
        log.info(line)

    try:
        if client is None:
            for frame in spec.frames:
                report(process_frame(frame, retry_failed=retry_failed, progress=progress))
        else:
            _run_on_cluster(spec.frames, client, retry_failed, progress, report)
    finally:
        bar.close()
    ordered = [results[f.name] for f in spec.frames if f.name in results]
    write_summary(ordered, out_dir, spec.path)
    return ordered


def _run_on_cluster(
    frames: tuple[FrameSpec, ...], client: Any, retry_failed: bool, progress: bool, report: Any
) -> None:
    from distributed import as_completed

    n_workers = len(client.scheduler_info().get("workers", {}))
    tile_progress = progress and n_workers <= 1
    futures = {
        client.submit(
            process_frame, frame, retry_failed=retry_failed, progress=tile_progress, pure=False
        ): frame
        for frame in frames
    }
    try:
        for future in as_completed(futures):
            frame = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the task itself died (worker lost, killed, ...)
                result = _failed(
                    frame,
                    None,
                    f"task lost: {_reason(exc)}",
                    traceback.format_exc(),
                    time.perf_counter(),
                )
            report(result)
    finally:
        client.cancel(list(futures))


def _line(result: FrameResult, index: int, total: int) -> str:
    head = f"[{index}/{total}] {result.frame}: {result.status}"
    if result.status == "failed":
        return f"{head}: {result.reason}"
    size = f", {result.dates} dates x {result.pixels} px" if result.pixels else ""
    return f"{head} ({result.wall_s:.1f} s{size})"


def write_summary(
    results: list[FrameResult], folder: str | Path, manifest_path: Path | None = None
) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.csv`` (one row per frame) into ``folder``."""
    folder = Path(folder)
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    payload = {
        "manifest": str(manifest_path) if manifest_path else None,
        "counts": counts,
        "frames": [r.to_dict() for r in results],
    }
    json_path = write_json_atomic(folder / "summary.json", payload)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SUMMARY_FIELDS)
    for r in results:
        outputs = ";".join(f"{k}={v}" for k, v in r.outputs.items())
        writer.writerow(
            [r.frame, r.status, r.reason, f"{r.wall_s:.3f}", r.pixels, r.dates, outputs]
        )
    csv_path = write_text_atomic(folder / "summary.csv", buf.getvalue())
    return json_path, csv_path

"""``insar-denoise batch``: denoise every frame of a manifest, resumably, optionally on dask."""

from __future__ import annotations

import logging

import click


def _quiet_dask_logs() -> None:
    """Keep distributed's INFO chatter off the terminal unless -v was given."""
    import distributed  # noqa: F401  (configures its loggers on import)

    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        logging.getLogger("distributed").setLevel(logging.WARNING)


@click.command("batch")
@click.argument("manifest", type=click.Path(dir_okay=False))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Start a local dask cluster of N single-threaded worker processes.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Submit to an existing dask cluster, e.g. tcp://HOST:8786.",
)
@click.option(
    "--retry-failed", is_flag=True, help="Re-run frames that failed before with unchanged inputs."
)
@click.option(
    "--summary-dir",
    type=click.Path(file_okay=False),
    help="Folder of summary.json / summary.csv (default: the manifest's folder).",
)
@click.option("--check", is_flag=True, help="Only validate the manifest; run nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or per-frame lines.")
@click.pass_context
def batch(ctx, manifest, workers, scheduler, retry_failed, summary_dir, check, quiet):
    """Denoise every frame listed in MANIFEST (YAML or TOML).

    Finished frames (same inputs, model and options) are skipped; failed frames are
    recorded and do not stop the others. Exit code 0: all frames done or skipped;
    1: a frame failed; 2: invalid manifest (nothing was run).
    """
    from insar_denoise.batch import load_manifest, open_client, run_batch

    spec = load_manifest(manifest)
    if check:
        click.echo(f"{manifest}: {len(spec.frames)} frame(s), manifest OK")
        return
    if workers is not None or scheduler is not None:
        _quiet_dask_logs()
    with open_client(workers, scheduler) as client:
        results = run_batch(
            spec, client, retry_failed=retry_failed, summary_dir=summary_dir, progress=not quiet
        )
    failed = [r for r in results if r.status == "failed"]
    if not quiet:
        counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
        click.echo(", ".join(f"{n} {s}" for s, n in counts.items()) + " frame(s)")
    for r in failed:
        click.echo(f"failed {r.frame}: {r.reason}", err=True)
    if failed:
        ctx.exit(1)

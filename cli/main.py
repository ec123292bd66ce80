"""The ``insar-denoise`` command group.

Sub-commands live in one module each and are imported only when used, so ``--help`` and
light commands do not pay for importing torch. Every ``InsarDenoiseError`` becomes one line
on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

import click

from insar_denoise._version import __version__
from insar_denoise.errors import InsarDenoiseError

#: GDAL's block cache (MB) when the user has not set ``GDAL_CACHEMAX``: GDAL's default is 5 %
#: of the RAM, and the engine reads each block of a stack once per pass, so a larger cache
#: adds memory, not speed (`run` on 1024² x 100 GeoTIFFs, session 24: peak RSS 1.96 -> 1.64
#: GB, the same outputs, 151 s -> 157 s on a machine running another job)
GDAL_CACHE_MB = 128

# name -> "module:attribute" of the click command, relative to insar_denoise.cli
COMMANDS: dict[str, str] = {
    "info": "info:info",
    "simulate": "simulate:simulate",
    "run": "run:run",
    "demo": "demo:demo",
    "train": "train:train",
    "export": "export:export",
    "evaluate": "evaluate:evaluate",
    "batch": "batch:batch",
    "inject": "inject:inject",
}


def _available() -> dict[str, str]:
    """Commands whose module ships in this build."""
    out = {}
    for name, target in COMMANDS.items():
        module = target.split(":")[0]
        if importlib.util.find_spec(f"insar_denoise.cli.{module}") is not None:
            out[name] = target
    return out


class LazyGroup(click.Group):
    """A click group that imports a sub-command's module on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_available())

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _available().get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(f"insar_denoise.cli.{module}"), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InsarDenoiseError as exc:
            from insar_denoise.cli.messages import cli_spelling, one_line

            click.echo(f"insar-denoise: error: {cli_spelling(one_line(exc))}", err=True)
            ctx.exit(2)


@click.group(
    "insar-denoise", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, prog_name="insar-denoise")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Denoise InSAR displacement time series with a convolutional autoencoder.

    Units are millimetres along the line of sight (LOS); positive = motion towards the satellite.
    """
    from insar_denoise.cli.messages import configure_logging

    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))  # before any raster is read
    configure_logging(verbose)

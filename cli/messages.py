"""How the command line prints errors and warnings: ``insar-denoise: warning: ...`` on one
line, with the Python keyword spellings of library messages (``pass units=``) turned into
the options of the command line (``pass --units``)."""

from __future__ import annotations

import logging
import re

import click

from insar_denoise.messages import one_line

PY_TO_CLI: dict[str, str] = {
    "units": "units",
    "variable": "variable",
    "pairs_pattern": "pairs",
    "overwrite": "overwrite",
    "tile": "tile",
    "overlap": "overlap",
    "window": "window",
    "stride": "stride",
    "batch_size": "batch-size",
    "wavelength_mm": "wavelength",
    "method": "method",
    "uncertainty": "uncertainty",
    "device": "device",
    "dem": "dem",
}
"""Keyword argument of the Python API -> option of ``insar-denoise run``."""

_KWARG = re.compile(r"(?<![\w.-])([a-z_]+)=('[^']*'|\"[^\"]*\"|[^\s,;)\]]*)")


def cli_spelling(text: str) -> str:
    """``text`` with ``name=value`` of known keywords written as ``--option value``.

    ``pass units=`` -> ``pass --units``; ``overwrite=True`` -> ``--overwrite``;
    ``method='model'`` -> ``--method model``; ``pairs_pattern='{ref}_{sec}'`` ->
    ``--pairs '{ref}_{sec}'`` (quotes kept where the shell needs them).
    """

    def sub(match: re.Match) -> str:
        name, value = match.groups()
        option = PY_TO_CLI.get(name)
        if option is None:
            return match.group(0)
        if value in ("", "True"):
            return f"--{option}"
        if value[0] in "'\"" and re.fullmatch(r"[\w.-]+", value[1:-1]):
            value = value[1:-1]
        return f"--{option} {value}"

    return _KWARG.sub(sub, text)


class CliFormatter(logging.Formatter):
    """``insar-denoise: warning: message`` on one line (``-vv`` adds the logger name)."""

    def __init__(self, debug: bool = False) -> None:
        super().__init__()
        self.debug = debug

    def format(self, record: logging.LogRecord) -> str:
        text = cli_spelling(one_line(record.getMessage()))
        where = f" [{record.name}]" if self.debug else ""
        return f"insar-denoise: {record.levelname.lower()}{where}: {text}"


class EchoHandler(logging.Handler):
    """Writes records with ``click.echo`` to the standard error of the moment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:
            self.handleError(record)


def configure_logging(verbose: int = 0) -> None:
    """Log WARNING and above (INFO with ``-v``, DEBUG with ``-vv``) as one CLI line each.

    Replaces the handler an earlier call installed, so repeated in-process calls (tests,
    ``rio``) print once.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, EchoHandler)]:
        root.removeHandler(old)
    handler = EchoHandler()
    handler.setFormatter(CliFormatter(debug=verbose >= 2))
    root.addHandler(handler)
    root.setLevel(logging.WARNING - 10 * min(verbose, 2))

"""One-line warnings that name the file or frame they concern (``run``, ``batch``).

Inside :func:`labelled_warnings`, Python warnings (out-of-distribution findings, library
warnings) are logged on the ``insar_denoise`` logger instead of printed with their source
line, and every ``insar_denoise`` log record at WARNING or above is squeezed onto one line
that starts with the label (the input or frame), unless it already does.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from insar_denoise.errors import OutOfDistributionWarning

LOGGER = "insar_denoise"
log = logging.getLogger(f"{LOGGER}.warnings")
_NAMES_FILE = re.compile(r"[^\s:]*[/\\.][^\s:]*( \(\+\d+ files\))?:")
"""A message that starts with a file name: ``dir/a.tif: ...``, ``a.tif (+9 files): ...``."""


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())


def input_label(inputs: list[str]) -> str:
    """How messages name a stack: its file, or its first file and how many more."""
    if len(inputs) == 1:
        return str(inputs[0])
    return f"{inputs[0]} (+{len(inputs) - 1} files)"


@contextmanager
def labelled_warnings(label: str, *, always: bool = True) -> Iterator[None]:
    """Within the block, warnings become one log line each starting with ``label``.

    ``always=False``: a message that already starts with a file name (``path: ...``) keeps
    it alone. Out-of-distribution warnings are shown every time (not once per source
    line), as ``[code] message``; other Python warnings as ``message (Category)``, except
    deprecation notices of the libraries underneath (``DeprecationWarning``,
    ``PendingDeprecationWarning``: for developers, hidden as Python hides them by default).
    """
    factory = logging.getLogRecordFactory()
    prefix = f"{label}:"

    def make(*args, **kwargs) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        if record.levelno >= logging.WARNING and record.name.startswith(LOGGER):
            text = one_line(record.getMessage())
            named = text.startswith(prefix) or (not always and _NAMES_FILE.match(text))
            record.msg = text if named else f"{prefix} {text}"
            record.args = ()
        return record

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, OutOfDistributionWarning):
            log.warning("%s", message)
        else:
            log.warning("%s (%s)", message, category.__name__)

    with warnings.catch_warnings():
        warnings.simplefilter("always", OutOfDistributionWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        warnings.showwarning = show
        logging.setLogRecordFactory(make)
        try:
            yield
        finally:
            logging.setLogRecordFactory(factory)

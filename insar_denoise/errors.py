"""Exception hierarchy: every user-facing failure is an ``InsarDenoiseError``.

The CLI turns these into one line on stderr and exit code 2. Messages name the file
(or option) and the problem, and where possible what would fix it.
"""

from __future__ import annotations


class InsarDenoiseError(Exception):
    """Base class of all errors raised on purpose by insar-denoise."""


class InputError(InsarDenoiseError):
    """An input file or array is unreadable, corrupt or inconsistent."""


class GridMismatchError(InputError):
    """Files of one stack differ in CRS, shape or transform."""


class DateError(InputError):
    """A date is missing, unparseable or duplicated."""


class UnitsError(InputError):
    """Unknown or inconsistent physical units."""


class DemError(InputError):
    """The DEM is missing a CRS, unreadable or does not cover the stack."""


class OutputError(InsarDenoiseError):
    """An output cannot be written (exists without --overwrite, bad folder, bad format)."""


class ModelError(InsarDenoiseError):
    """A model file is missing, corrupt, truncated or not an insar-denoise model."""


class ConfigError(InsarDenoiseError):
    """A configuration file or option value is invalid."""


class OutOfDistributionWarning(UserWarning):
    """The input lies outside what the model was trained on (raised by the QC checks)."""

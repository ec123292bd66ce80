"""Acquisition dates from file names, TIFF tags and band descriptions.

Accepted forms, anywhere in a file name and not touching other digits:
``YYYYMMDDTHHMMSS`` (e.g. ``20200113T054512``), ``YYYY-MM-DD`` and ``YYYYMMDD``.
Tags may also use the TIFF form ``YYYY:MM:DD HH:MM:SS`` or ISO 8601.
Years outside 1970–2100 are ignored so orbit or frame numbers are not taken for dates.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np

from insar_denoise.errors import DateError

_NAME_PATTERNS = (
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?!\d)"),
    re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?![\d])"),
    re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?![\dT])"),
)
_TAG_PATTERN = re.compile(
    r"^\s*(\d{4})[-:]?(\d{2})[-:]?(\d{2})(?:[T ](\d{2}):?(\d{2}):?(\d{2})(?:\.\d+)?)?Z?\s*$"
)
_YEARS = range(1970, 2101)


def _build(groups: tuple[str | None, ...]) -> datetime | None:
    """A datetime from regex groups (year, month, day[, hour, minute, second]) or None."""
    numbers = [int(g) for g in groups if g is not None]
    if numbers[0] not in _YEARS:
        return None
    try:
        return datetime(*numbers)
    except ValueError:
        return None


def dates_in_name(name: str) -> list[datetime]:
    """All distinct dates found in a file name, in order of appearance.

    Parameters
    ----------
    name : str
        File name (the folder part is ignored when a path is given).

    Returns
    -------
    list of datetime
        Empty when the name holds no date.
    """
    stem = Path(name).name
    found: list[tuple[int, datetime]] = []
    taken: list[range] = []
    for pattern in _NAME_PATTERNS:
        for match in pattern.finditer(stem):
            span = range(match.start(), match.end())
            if any(span.start < t.stop and t.start < span.stop for t in taken):
                continue
            value = _build(match.groups())
            if value is not None:
                taken.append(span)
                found.append((match.start(), value))
    unique: list[datetime] = []
    for _, value in sorted(found, key=lambda item: item[0]):
        if value not in unique:
            unique.append(value)
    return unique


def parse_date_text(text: str | None) -> datetime | None:
    """Parse one date written as a tag or band description, or return None.

    Parameters
    ----------
    text : str or None
        ``YYYYMMDD``, ``YYYY-MM-DD``, ``YYYY:MM:DD HH:MM:SS`` (TIFFTAG_DATETIME),
        ``YYYYMMDDTHHMMSS`` or ISO 8601 ``YYYY-MM-DDTHH:MM:SS[Z]``.
    """
    if not text:
        return None
    match = _TAG_PATTERN.match(str(text))
    return None if match is None else _build(match.groups())


def date_from_file(path: str | Path, tags: dict[str, str]) -> datetime:
    """The acquisition date of a single-date raster file.

    The file name is tried first, then the ``TIFFTAG_DATETIME`` tag.

    Parameters
    ----------
    path : str or Path
        The file (only its name is parsed).
    tags : dict
        The file's dataset-level tags (``rasterio`` ``src.tags()``).

    Raises
    ------
    DateError
        When neither the name nor the tag holds exactly one date.
    """
    in_name = dates_in_name(str(path))
    if len(in_name) == 1:
        return in_name[0]
    from_tag = parse_date_text(tags.get("TIFFTAG_DATETIME"))
    if from_tag is not None:
        return from_tag
    if len(in_name) > 1:
        listed = ", ".join(d.strftime("%Y-%m-%d") for d in in_name)
        raise DateError(
            f"{path}: file name holds several dates ({listed}) and no TIFFTAG_DATETIME; "
            "one date per file is expected (interferogram pairs are not a time series)"
        )
    raise DateError(
        f"{path}: no date in the file name (YYYYMMDD, YYYY-MM-DD or YYYYMMDDTHHMMSS) "
        "and no TIFFTAG_DATETIME tag"
    )


def check_unique(times: list[datetime], sources: list[str]) -> None:
    """Raise DateError naming both files when two inputs share one date.

    Parameters
    ----------
    times : list of datetime
        One date per input.
    sources : list of str
        The input (file, band) each date came from, same order.
    """
    seen: dict[datetime, str] = {}
    for when, source in zip(times, sources, strict=True):
        if when in seen:
            raise DateError(
                f"{source}: duplicate date {when.isoformat()} (also in {seen[when]}); "
                "give each date once"
            )
        seen[when] = source


def to_datetime64(times: list[datetime]) -> np.ndarray:
    """Datetimes as a ``datetime64[ns]`` array."""
    return np.array(times, dtype="datetime64[ns]")


def iso(values: np.ndarray) -> list[str]:
    """``datetime64`` values as ISO strings: ``YYYY-MM-DD`` at midnight, else with the time."""
    out = []
    for value in np.asarray(values, dtype="datetime64[s]"):
        text = str(value)
        out.append(text[:10] if text.endswith("T00:00:00") else text)
    return out

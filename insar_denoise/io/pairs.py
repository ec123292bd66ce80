"""Interferogram pairs: the acquisition dates of each file, from its name or tags.

Recognised inputs (one single-band raster per interferogram, all on one grid):

- HyP3 GeoTIFF products such as
  ``S1AA_20200101T000000_20200113T000000_VVP012_INT80_G_ueF_XXXX_unw_phase.tif``
  (reference and secondary acquisition times in the name, radians);
- GeoTIFFs whose tags carry ``FIRST_DATE`` / ``SECOND_DATE`` (and ``WAVELENGTH_METRES``,
  ``DATA_UNITS``), as PyRate writes them;
- names holding a ``YYYYMMDD-YYYYMMDD`` (or ``_``) pair, or a two-digit-year
  ``YYMMDD-YYMMDD`` pair (years 70–99 → 19xx, else 20xx);
- any name, with ``pairs_pattern`` such as ``'{ref}_{sec}'`` (``YYYYMMDD``, ``YYYYMMDDTHHMMSS``
  or ``YYYY-MM-DD`` in place of each field, searched anywhere in the file name).

Acquisition times are truncated to the day (one acquisition per day and track).
"""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from insar_denoise.errors import DateError, InputError
from insar_denoise.io.geotiff import probe

_DATE = r"(\d{8}(?:T\d{6})?|\d{4}-\d{2}-\d{2})"
_HYP3 = re.compile(r"S1[ABCD_]{2}_(\d{8})T\d{6}_(\d{8})T\d{6}_")
_FULL_PAIR = re.compile(r"(?<!\d)(\d{8})(?:T\d{6})?[-_](\d{8})(?:T\d{6})?(?!\d)")
_SHORT_PAIR = re.compile(r"(?<!\d)(\d{6})-(\d{6})(?!\d)")


def _day(text: str) -> datetime | None:
    """``YYYYMMDD[T...]``, ``YYYY-MM-DD`` or ``YYMMDD`` text as a date, None when invalid."""
    digits = text.replace("-", "")[:8]
    if len(digits) == 6:
        year = int(digits[:2])
        digits = f"{1900 + year if year >= 70 else 2000 + year}{digits[2:]}"
    try:
        return datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        return None


def _valid_pair(first: str, second: str) -> tuple[datetime, datetime] | None:
    ref, sec = _day(first), _day(second)
    return None if ref is None or sec is None else (ref, sec)


def parse_pair_name(
    name: str | Path, pairs_pattern: str | None = None
) -> tuple[datetime, datetime] | None:
    """The (reference, secondary) dates written in an interferogram's file name.

    Parameters
    ----------
    name : str or Path
        File name (the folder part is ignored).
    pairs_pattern : str, optional
        Template with ``{ref}`` and ``{sec}`` fields, e.g. ``'{ref}_{sec}'``; the other
        characters are literal. Without it HyP3, ``YYYYMMDD-YYYYMMDD`` and ``YYMMDD-YYMMDD``
        names are tried in that order.

    Returns
    -------
    tuple of datetime or None
        None when the name holds no pair.
    """
    stem = Path(name).name
    if pairs_pattern is not None:
        if "{ref}" not in pairs_pattern or "{sec}" not in pairs_pattern:
            raise InputError(f"pairs_pattern {pairs_pattern!r}: needs {{ref}} and {{sec}} fields")
        regex = re.escape(pairs_pattern).replace(r"\{ref\}", "{ref}").replace(r"\{sec\}", "{sec}")
        regex = regex.replace("{ref}", f"(?P<ref>{_DATE})").replace("{sec}", f"(?P<sec>{_DATE})")
        match = re.search(regex, stem)
        return None if match is None else _valid_pair(match["ref"], match["sec"])
    for pattern in (_HYP3, _FULL_PAIR, _SHORT_PAIR):
        match = pattern.search(stem)
        if match is not None and (pair := _valid_pair(*match.groups())) is not None:
            return pair
    return None


def _tag_pair(tags: dict[str, str]) -> tuple[datetime, datetime] | None:
    """The pair in PyRate-style ``FIRST_DATE`` / ``SECOND_DATE`` tags, or None."""
    if "FIRST_DATE" not in tags or "SECOND_DATE" not in tags:
        return None
    return _valid_pair(tags["FIRST_DATE"], tags["SECOND_DATE"])


def expand_paths(paths_or_glob: str | Path | Sequence[str | Path]) -> list[str]:
    """Files named by a path, a glob pattern, or a list of either, sorted within each glob."""
    items = [paths_or_glob] if isinstance(paths_or_glob, (str, Path)) else list(paths_or_glob)
    out: list[str] = []
    for item in items:
        text = str(item)
        out.extend(sorted(glob.glob(text)) if glob.has_magic(text) else [text])
    if not out:
        raise InputError(f"{paths_or_glob}: no interferogram files match")
    return out


def pair_of_file(path: str, pairs_pattern: str | None = None) -> tuple[datetime, datetime]:
    """The pair of one file: ``pairs_pattern``, else the tags, else the name conventions.

    Raises
    ------
    DateError
        When no pair is found, or the reference date is not before the secondary date.
    """
    pair = parse_pair_name(path, pairs_pattern)
    if pair is None and pairs_pattern is None:
        pair = _tag_pair(probe(path).tags)
    if pair is None:
        raise DateError(
            f"{path}: no date pair in the name (YYYYMMDD-YYYYMMDD, YYMMDD-YYMMDD, HyP3) or in "
            "FIRST_DATE/SECOND_DATE tags; pass pairs_pattern='{ref}_{sec}'"
        )
    if pair[0] >= pair[1]:
        raise DateError(
            f"{path}: reference date {pair[0]:%Y-%m-%d} is not before {pair[1]:%Y-%m-%d}"
        )
    return pair


def is_interferogram_stack(paths: str | Path | Sequence[str | Path]) -> bool:
    """True when every file names (or tags) a date pair, i.e. is an interferogram.

    Parameters
    ----------
    paths : str, Path or sequence
        Files or glob patterns, as given to ``open_interferograms``.
    """
    try:
        files = expand_paths(paths)
        return all(Path(f).is_file() for f in files) and all(pair_of_file(f) for f in files)
    except InputError:
        return False

"""Batch manifests: parse a YAML/TOML file of frames and validate all of it before any work.

A manifest has two top-level keys::

    defaults:            # any run option, applied to every frame (optional)
      model: models/my_model.pt
      method: model
      tile: 256
    frames:
      - name: t087a
        stack: t087a/S1_*.tif     # a glob, a file, or a list of either
        dem: dem/t087a.tif
        output: out/t087a.tif
        series: out/t087a_series.tif   # optional, as are noise, quicklook, report,
        uncertainty: out/t087a_sigma.tif  # uncertainty and detection (output paths)
        tile: 128                      # optional override of a default
        ref_yx: [120, 340]             # every run option (RunOptions) works here

Options are the fields of :class:`insar_denoise.options.RunOptions` that ``run`` sets
(:data:`insar_denoise.options.FILE_OPTION_TYPES`: ``stride``, ``deramp``, ``ref_yx``,
``ref_lalo``, ``ref_area``, ``min_valid_dates``, ...); ``uncertainty``, ``detection`` and
``report`` are switched on by giving their output path.

Relative paths resolve against the manifest's folder (the current folder for a manifest
given as a dict). :func:`load_manifest` collects *every* problem and raises one
:class:`~insar_denoise.errors.ConfigError` listing them all.
"""

from __future__ import annotations

import difflib
import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib
import yaml

from insar_denoise.errors import ConfigError
from insar_denoise.options import FILE_OPTION_TYPES, RunOptions, check_option, normalise_option

#: run options a manifest may set (in ``defaults`` or per frame) and their accepted types
OPTION_TYPES = FILE_OPTION_TYPES
RASTERS = (".tif", ".tiff", ".nc", ".nc4", ".zarr")
OUTPUT_KEYS = ("output", "series", "noise", "quicklook", "report", "uncertainty", "detection")
OUTPUT_SUFFIXES = {
    "output": RASTERS,
    "series": (*RASTERS, ".h5", ".hdf5", ".he5"),
    "noise": (*RASTERS, ".h5", ".hdf5", ".he5"),
    "quicklook": (".png",),
    "uncertainty": RASTERS,
    "detection": RASTERS,
}
FRAME_KEYS = ("name", "stack", "dem", *OUTPUT_KEYS, *OPTION_TYPES)
DEFAULT_KEYS = ("dem", *OPTION_TYPES)
TOP_KEYS = ("defaults", "frames")


@dataclass(frozen=True)
class FrameSpec:
    """One validated frame: absolute paths and the merged run options.

    Attributes
    ----------
    name : unique frame name.
    inputs : the stack's files, sorted, absolute (globs expanded).
    dem : DEM file (elevation in metres), absolute.
    outputs : ``{"output": path, "series": ..., "noise": ..., "quicklook": ...}`` (only
        those given), absolute.
    options : the frame's :class:`~insar_denoise.options.RunOptions` fields as given
        (defaults merged with the frame's overrides; ``model`` as an absolute path or
        ``"default"``); :attr:`run_options` is the checked ``RunOptions``.
    """

    name: str
    inputs: tuple[str, ...]
    dem: str
    outputs: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def run_options(self) -> RunOptions:
        """The frame's options as :class:`~insar_denoise.options.RunOptions`."""
        return RunOptions(**{k: normalise_option(k, v) for k, v in self.options.items()})


@dataclass(frozen=True)
class Manifest:
    """A validated manifest: its frames in file order and the folder paths resolve against."""

    frames: tuple[FrameSpec, ...]
    root: Path
    path: Path | None = None


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Parse a manifest file (``.toml`` with tomllib, anything else as YAML) into a dict.

    Raises
    ------
    ConfigError
        The file is missing, unreadable or not a mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read manifest ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {first}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a manifest is a mapping with 'defaults' and 'frames'")
    return data


def load_manifest(
    source: str | Path | dict[str, Any], base_dir: str | Path | None = None
) -> Manifest:
    """Read (if a path) and validate a manifest.

    Parameters
    ----------
    source : path of a YAML/TOML manifest, or an already-parsed dict.
    base_dir : folder relative paths resolve against (default: the manifest's folder, or
        the current folder for a dict).

    Raises
    ------
    ConfigError
        One error whose message lists every problem found (unknown keys, wrong types,
        missing files, globs matching nothing, missing DEM, duplicate names or outputs).
    """
    path = None
    if isinstance(source, dict):
        data = source
        root = Path(base_dir or Path.cwd()).resolve()
    else:
        path = Path(source).resolve()
        data = read_manifest(path)
        root = Path(base_dir).resolve() if base_dir is not None else path.parent
    problems: list[str] = []
    frames = _validate(data, root, problems)
    if problems:
        where = str(path) if path is not None else "manifest"
        if len(problems) == 1:  # one line
            raise ConfigError(f"{where}: 1 problem, nothing was run: {problems[0]}")
        listing = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{where}: {len(problems)} problem(s), nothing was run:\n{listing}")
    return Manifest(frames=tuple(frames), root=root, path=path)


def _unknown(keys: Any, allowed: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in keys:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown key {key!r}{hint}")


def _check_option(key: str, value: Any, where: str, problems: list[str]) -> bool:
    """Type- and range-check one run option; False (and a problem noted) when bad."""
    problem = check_option(key, value)
    if problem is not None:
        problems.append(f"{where}: {problem}")
    return problem is None


def _model_path(model: str, root: Path, where: str, problems: list[str]) -> str:
    """A model other than ``"default"`` is a file: resolve it and check it exists."""
    path = _resolve(model, root)
    if not path.is_file():
        problems.append(f"{where}: model file {model!r} not found ({path})")
    return str(path)


def _is_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _resolve(text: str, root: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else root / path


def _expand_stack(value: Any, root: Path, where: str, problems: list[str]) -> list[str]:
    """Expand a glob / file / list of them into sorted absolute paths."""
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        problems.append(f"{where}: stack must be a path, a glob or a list of them, got {value!r}")
        return []
    found: list[str] = []
    for item in items:
        full = _resolve(item, root)
        if _is_glob(item):
            matches = sorted(glob.glob(str(full)))
            if not matches:
                problems.append(f"{where}: stack glob {item!r} matches no file (in {root})")
            found.extend(matches)
        elif full.exists():
            found.append(str(full))
        else:
            problems.append(f"{where}: stack file {item!r} not found ({full})")
    return sorted(dict.fromkeys(found))


def _validate(data: dict[str, Any], root: Path, problems: list[str]) -> list[FrameSpec]:
    _unknown(data, TOP_KEYS, "manifest", problems)
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(f"defaults: must be a mapping, got {type(defaults).__name__}")
        defaults = {}
    _unknown(defaults, DEFAULT_KEYS, "defaults", problems)
    good_defaults = {
        k: v
        for k, v in defaults.items()
        if k in OPTION_TYPES and _check_option(k, v, "defaults", problems)
    }
    if good_defaults.get("model", "default") != "default":
        good_defaults["model"] = _model_path(good_defaults["model"], root, "defaults", problems)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        problems.append("frames: must be a non-empty list of frames")
        return []
    specs: list[FrameSpec] = []
    names: dict[str, int] = {}
    claimed: dict[Path, str] = {}
    for index, frame in enumerate(frames):
        where = f"frames[{index}]"
        if not isinstance(frame, dict):
            problems.append(f"{where}: must be a mapping, got {type(frame).__name__}")
            continue
        name = frame.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"{where}: 'name' is required (a non-empty string)")
            name = None
        else:
            where = f"frames[{index}] ({name})"
            if name in names:
                problems.append(f"{where}: duplicate name, also frames[{names[name]}]")
            names.setdefault(name, index)
        _unknown(frame, FRAME_KEYS, where, problems)
        spec = _frame(frame, name, defaults, good_defaults, root, where, problems, claimed)
        if spec is not None:
            specs.append(spec)
    return specs


def _frame(
    frame: dict[str, Any],
    name: str | None,
    defaults: dict[str, Any],
    good_defaults: dict[str, Any],
    root: Path,
    where: str,
    problems: list[str],
    claimed: dict[Path, str],
) -> FrameSpec | None:
    """Validate one frame; register its outputs in ``claimed`` to catch duplicates."""
    n_before = len(problems)
    inputs: list[str] = []
    if "stack" not in frame:
        problems.append(f"{where}: 'stack' is required (a file, a glob or a list)")
    else:
        inputs = _expand_stack(frame["stack"], root, where, problems)
    dem_value = frame.get("dem", defaults.get("dem"))
    dem = None
    if dem_value is None:
        problems.append(f"{where}: missing DEM ('dem': elevation file in metres)")
    elif not isinstance(dem_value, str) or not dem_value:
        problems.append(f"{where}: dem must be a path, got {dem_value!r}")
    else:
        dem = _resolve(dem_value, root)
        if not dem.exists():
            problems.append(f"{where}: DEM {dem_value!r} not found ({dem})")
    outputs: dict[str, str] = {}
    if "output" not in frame:
        problems.append(f"{where}: 'output' is required")
    input_set = {Path(p) for p in inputs}
    for key in OUTPUT_KEYS:
        value = frame.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            problems.append(f"{where}: {key} must be a path, got {value!r}")
            continue
        target = _resolve(value, root).resolve()
        if key in OUTPUT_SUFFIXES and target.suffix.lower() not in OUTPUT_SUFFIXES[key]:
            allowed = ", ".join(OUTPUT_SUFFIXES[key])
            problems.append(f"{where}: {key} {value!r} must end in one of {allowed}")
        if target in input_set or (dem is not None and target == dem.resolve()):
            problems.append(f"{where}: {key} {value!r} would overwrite an input")
        if target in claimed:
            problems.append(f"{where}: {key} {value!r} is also written by {claimed[target]}")
        else:
            claimed[target] = f"{where} {key}"
        outputs[key] = str(target)
    options = dict(good_defaults)
    for key in OPTION_TYPES:
        if key in frame and _check_option(key, frame[key], where, problems):
            options[key] = frame[key]
    if options.get("model", "default") != "default" and "model" in frame:
        options["model"] = _model_path(options["model"], root, where, problems)
    if len(problems) > n_before or name is None or dem is None:
        return None
    return FrameSpec(
        name=name, inputs=tuple(inputs), dem=str(dem), outputs=outputs, options=options
    )

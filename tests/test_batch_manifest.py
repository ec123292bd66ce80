"""Batch manifests: parsing (YAML/TOML), path resolution, and validation before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from insar_denoise.batch.manifest import load_manifest
from insar_denoise.errors import ConfigError


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two frames' worth of (empty) input files, a DEM each and a model file."""
    for frame in ("t087", "t160"):
        folder = tmp_path / frame
        folder.mkdir()
        for day in (5, 17, 29):
            (folder / f"S1_202103{day:02d}.tif").write_bytes(b"x")
        (folder / "dem.tif").write_bytes(b"x")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.pt").write_bytes(b"x")
    return tmp_path


def good_manifest() -> dict:
    return {
        "defaults": {"model": "models/m.pt", "tile": 64, "overlap": 16, "device": "cpu"},
        "frames": [
            {
                "name": "t087",
                "stack": "t087/S1_*.tif",
                "dem": "t087/dem.tif",
                "output": "out/t087.tif",
                "series": "out/t087_series.nc",
            },
            {
                "name": "t160",
                "stack": ["t160/S1_20210329.tif", "t160/S1_20210305.tif"],
                "dem": "t160/dem.tif",
                "output": "out/t160.nc",
                "tile": 32,
                "method": "elevation",
            },
        ],
    }


def test_paths_resolve_against_the_manifest_folder(tree, tmp_path, monkeypatch):
    path = tree / "frames.yaml"
    path.write_text(yaml.safe_dump(good_manifest()))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_manifest(path)
    assert spec.root == tree.resolve() and spec.path == path.resolve()
    a, b = spec.frames
    assert a.inputs == tuple(str(tree / "t087" / f"S1_202103{d:02d}.tif") for d in (5, 17, 29))
    assert b.inputs == (str(tree / "t160/S1_20210305.tif"), str(tree / "t160/S1_20210329.tif"))
    assert a.dem == str(tree / "t087/dem.tif")
    assert a.outputs == {
        "output": str(tree / "out/t087.tif"),
        "series": str(tree / "out/t087_series.nc"),
    }
    assert a.options == {
        "model": str(tree / "models/m.pt"),
        "tile": 64,
        "overlap": 16,
        "device": "cpu",
    }
    # frame overrides win over defaults, other defaults carry over
    assert b.options["tile"] == 32 and b.options["overlap"] == 16
    assert b.options["method"] == "elevation"


def test_toml_and_yaml_give_the_same_frames(tree):
    (tree / "frames.yaml").write_text(yaml.safe_dump(good_manifest()))
    toml = """
[defaults]
model = "models/m.pt"
tile = 64
overlap = 16
device = "cpu"

[[frames]]
name = "t087"
stack = "t087/S1_*.tif"
dem = "t087/dem.tif"
output = "out/t087.tif"
series = "out/t087_series.nc"

[[frames]]
name = "t160"
stack = ["t160/S1_20210329.tif", "t160/S1_20210305.tif"]
dem = "t160/dem.tif"
output = "out/t160.nc"
tile = 32
method = "elevation"
"""
    (tree / "frames.toml").write_text(toml)
    assert load_manifest(tree / "frames.toml").frames == load_manifest(tree / "frames.yaml").frames


def test_dict_manifest_resolves_against_base_dir(tree):
    spec = load_manifest(good_manifest(), base_dir=tree)
    assert spec.path is None and spec.root == tree.resolve()
    assert spec.frames[0].dem == str(tree / "t087/dem.tif")


def test_every_problem_is_listed_in_one_error(tree):
    manifest = good_manifest()
    manifest["defaults"]["tiles"] = 64  # unknown key (typo)
    manifest["frames"][0]["stack"] = "t087/IFG_*.tif"  # glob matches nothing
    manifest["frames"][1]["dem"] = "t160/missing_dem.tif"  # missing file
    manifest["frames"][1]["output"] = "out/t087.tif"  # duplicate output
    manifest["frames"].append(
        {"name": "t087", "stack": "t087/S1_20210305.tif", "output": "out/x.tif", "tile": "big"}
    )  # duplicate name, no DEM, wrong type
    with pytest.raises(ConfigError) as info:
        load_manifest(manifest, base_dir=tree)
    message = str(info.value)
    expected = [
        "defaults: unknown key 'tiles' (did you mean 'tile'?)",
        "stack glob 't087/IFG_*.tif' matches no file",
        "DEM 't160/missing_dem.tif' not found",
        "output 'out/t087.tif' is also written by frames[0] (t087) output",
        "frames[2] (t087): duplicate name, also frames[0]",
        "frames[2] (t087): missing DEM",
        "frames[2] (t087): tile must be int, got str 'big'",
    ]
    for text in expected:
        assert text in message
    assert f"{len(expected)} problem(s)" in message
    assert not (tree / "out").exists()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"stack": "t087/S1_20210101.tif"}, "stack file 't087/S1_20210101.tif' not found"),
        ({"stack": []}, "stack must be a path, a glob or a list"),
        ({"model": "models/none.pt"}, "model file 'models/none.pt' not found"),
        ({"method": "magic"}, "method 'magic' unknown"),
        ({"device": "tpu"}, "device 'tpu' unknown"),
        ({"tile": True}, "tile must be int, got bool"),
        ({"tile": 0}, "tile must be >= 1"),
        ({"wavelength_mm": "55"}, "wavelength_mm must be int or float"),
        ({"cog": "yes"}, "cog must be bool"),
        ({"output": "out/t087.png"}, "output 'out/t087.png' must end in one of"),
        ({"quicklook": "out/q.tif"}, "quicklook 'out/q.tif' must end in one of .png"),
        ({"output": "t087/S1_20210305.tif"}, "would overwrite an input"),
        ({"series": "out/t087.tif"}, "series 'out/t087.tif' is also written by"),
    ],
)
def test_single_problem_is_reported(tree, change, problem):
    manifest = good_manifest()
    manifest["frames"][0].update(change)
    with pytest.raises(ConfigError, match="1 problem") as info:
        load_manifest(manifest, base_dir=tree)
    assert problem in str(info.value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("frames: [\n  - name: a\n", "not valid yaml"),
        ("- just\n- a list\n", "a manifest is a mapping"),
        ("defaults: {}\n", "frames: must be a non-empty list"),
        ("frames: [42]\n", "frames[0]: must be a mapping"),
    ],
)
def test_malformed_files_are_refused(tmp_path, text, problem):
    path = tmp_path / "frames.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    assert problem in str(info.value)


def test_missing_manifest_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read manifest"):
        load_manifest(tmp_path / "nope.yaml")


def test_shared_dem_in_defaults(tree):
    manifest = good_manifest()
    manifest["defaults"]["dem"] = "t087/dem.tif"
    del manifest["frames"][0]["dem"]
    spec = load_manifest(manifest, base_dir=tree)
    assert spec.frames[0].dem == str(tree / "t087/dem.tif")
    assert spec.frames[1].dem == str(tree / "t160/dem.tif")


def test_unknown_key_is_one_line_naming_the_file_and_key(tree):
    path = tree / "frames.yaml"
    manifest = good_manifest()
    manifest["frames"][0]["strides"] = 2
    path.write_text(yaml.safe_dump(manifest))
    with pytest.raises(ConfigError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and "unknown key 'strides' (did you mean 'stride'?)" in message


def test_every_run_option_is_a_manifest_option(tree):
    """The manifest takes RunOptions' fields: run's options work per frame and in defaults."""
    from insar_denoise.options import RunOptions

    manifest = good_manifest()
    manifest["defaults"].update(stride=3, deramp=True, min_valid_dates=5)
    manifest["frames"][0].update(
        ref_area=[0, 4, 2, 6], uncertainty="out/s.tif", detection="out/d.tif", report="out/r"
    )
    manifest["frames"][1].update(ref_lalo=[36.5, -84.25], stride=1)
    spec = load_manifest(manifest, base_dir=tree)
    first, second = spec.frames[0].run_options, spec.frames[1].run_options
    assert isinstance(first, RunOptions)
    assert (first.stride, first.deramp, first.min_valid_dates) == (3, True, 5)
    assert first.ref_area == (0, 4, 2, 6) and first.tile == 64
    assert (second.stride, second.ref_lalo, second.tile) == (1, (36.5, -84.25), 32)
    assert spec.frames[0].outputs["uncertainty"] == str(tree / "out/s.tif")
    assert spec.frames[0].outputs["report"] == str(tree / "out/r")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"stride": 0}, "stride must be >= 1"),
        ({"ref_yx": [1]}, "ref_yx must be a list of 2 numbers"),
        ({"deramp": "yes"}, "deramp must be bool"),
        ({"uncertainty": "out/s.png"}, "uncertainty 'out/s.png' must end in one of"),
    ],
)
def test_new_options_are_checked(tree, change, problem):
    manifest = good_manifest()
    manifest["frames"][0].update(change)
    with pytest.raises(ConfigError, match="1 problem") as info:
        load_manifest(manifest, base_dir=tree)
    assert problem in str(info.value)

"""Export / load of scripted models with metadata, and rejection of bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from insar_denoise.errors import ModelError
from insar_denoise.models import (
    LoadedModel,
    build_untrained,
    default_model_path,
    export_model,
    load_model,
    weights_sha256,
)
from insar_denoise.models.registry import (
    MIN_TORCH,
    default_overlap,
    resolve,
    tiling_for_crop,
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[torch.jit.ScriptModule, Path]:
    module = build_untrained(window=5, channels=(4, 8, 8, 8), seed=7)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    export_model(module, module.insar_metadata, path)
    return module, path


def inputs(b: int = 2, n: int = 5, h: int = 16, w: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, n, h, w, generator=g) * 5, torch.rand(b, h, w, generator=g) * 900


def test_round_trip_same_outputs_and_metadata(exported) -> None:
    module, path = exported
    loaded = load_model(path)
    assert isinstance(loaded, LoadedModel)
    disp, dem = inputs()
    with torch.no_grad():
        ref = module(disp, dem)
    torch.testing.assert_close(loaded(disp, dem), ref, rtol=0, atol=0)
    meta = loaded.metadata
    assert meta["format"] == "insar-denoise-model" and meta["format_version"] == 1
    assert loaded.window == meta["window"] == 5 and loaded.tile_multiple == 8
    assert meta["sha256"] == weights_sha256(module)
    rf = meta["receptive_field_px"]
    assert meta["default_overlap"] >= rf and meta["default_overlap"] % 8 == 0
    assert meta["default_tile"] % 8 == 0 and meta["default_tile"] > 2 * meta["default_overlap"]
    for key in (
        "normalization",
        "train_config",
        "sim_config",
        "examples_seen",
        "val_metrics",
        "package_version",
        "model_id",
        "created",
    ):
        assert key in meta


def test_inference_mode_output(exported) -> None:
    _, path = exported
    out = load_model(path)(*inputs())
    assert out.shape == (2, 16, 24) and not out.requires_grad


@pytest.mark.parametrize("rf,multiple,expected", [(84, 8, 88), (1, 8, 8), (32, 8, 32), (33, 4, 36)])
def test_default_overlap(rf: int, multiple: int, expected: int) -> None:
    assert default_overlap(rf, multiple) == expected


@pytest.mark.parametrize(
    "crop,expected", [(64, (96, 32)), (100, (152, 48)), (256, (384, 88)), (8, (16, 0))]
)
def test_tiling_for_crop(crop: int, expected: tuple[int, int]) -> None:
    # 1.5 training crops a side, half a crop of overlap capped at the receptive field (84 px)
    assert tiling_for_crop(crop, 84, 8) == expected


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found") as err:
        load_model(tmp_path / "nope.pt")
    assert "nope.pt" in str(err.value) and "\n" not in str(err.value)


def test_truncated_file(exported, tmp_path: Path) -> None:
    _, path = exported
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated.pt") as err:
        load_model(bad)
    assert "\n" not in str(err.value)


def test_random_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "random.pt"
    bad.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(ModelError, match="random.pt"):
        load_model(bad)


def test_foreign_torchscript_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))
    with pytest.raises(ModelError, match="without insar-denoise metadata"):
        load_model(path)


def test_foreign_format(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    meta = json.dumps({"format": "someone-else", "window": 9})
    torch.jit.save(
        torch.jit.script(torch.nn.Linear(3, 2)), str(path), _extra_files={"metadata.json": meta}
    )
    with pytest.raises(ModelError, match="not an insar-denoise model"):
        load_model(path)


def test_hash_mismatch(exported, tmp_path: Path) -> None:
    module, _ = exported
    meta = dict(
        module.insar_metadata, format="insar-denoise-model", format_version=1, sha256="0" * 64
    )
    path = tmp_path / "tampered.pt"
    torch.jit.save(module, str(path), _extra_files={"metadata.json": json.dumps(meta)})
    with pytest.raises(ModelError, match="hash"):
        load_model(path)


def test_default_resolves_to_the_packaged_file() -> None:
    import insar_denoise.models as pkg

    path = default_model_path()
    assert resolve("default") == path
    assert path.name == "default.pt" and path.parent == Path(pkg.__file__).parent
    if path.is_file():
        meta = load_model("default").metadata
        assert meta["window"] >= 1 and meta["examples_seen"] > 0


def test_model_from_a_newer_torch_names_the_version(exported, monkeypatch) -> None:
    # what torch 2.11 says on the shipped files (session 19, the lent GPU machine)
    def old_torch_load(*args, **kwargs):
        raise RuntimeError("Unknown builtin op: aten::_upsample_lanczos2d_aa.\nHere are some")

    monkeypatch.setattr(torch.jit, "load", old_torch_load)
    with pytest.raises(ModelError) as err:
        load_model(exported[1])
    message = str(err.value)
    assert "needs a newer torch" in message and torch.__version__ in message
    assert f">= {MIN_TORCH}" in message and "\n" not in message

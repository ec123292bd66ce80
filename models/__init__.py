"""Network definitions, the shipped weights (``default.pt``) and their model card.

Use :func:`load_model` to get a scripted model with its metadata::

    from insar_denoise.models import load_model
    model = load_model("default")          # or a path to an exported .pt
    cumulative_mm = model(displacement_mm, dem_m)   # (B, N, H, W), (B, H, W) -> (B, H, W)
"""

from __future__ import annotations

from insar_denoise.models.autoencoder import (
    DenoisingAutoencoder,
    count_parameters,
    receptive_field,
)
from insar_denoise.models.registry import (
    LoadedModel,
    ModelLike,
    as_model,
    base_metadata,
    build_untrained,
    default_model_path,
    export_model,
    load_model,
    weights_sha256,
)

__all__ = [
    "DenoisingAutoencoder",
    "LoadedModel",
    "ModelLike",
    "as_model",
    "base_metadata",
    "build_untrained",
    "count_parameters",
    "default_model_path",
    "export_model",
    "load_model",
    "receptive_field",
    "weights_sha256",
]

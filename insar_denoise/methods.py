"""The one list of denoising methods (stdlib only, so the CLI can name them without torch)."""

from __future__ import annotations

#: Classical corrections (:func:`insar_denoise.baselines.classical_correction`), in report order.
CLASSICAL_METHODS: tuple[str, ...] = ("raw", "elevation", "filter", "stack", "best")
#: Every method ``denoise_dataset`` accepts: the model, then the classical corrections.
METHODS: tuple[str, ...] = ("model", *CLASSICAL_METHODS)

"""Device choice, CPU threads and a batch size that fits in memory."""

from __future__ import annotations

import logging
import os

import torch

from insar_denoise.devices import resolve_device  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

# Bytes of activations per input value of a tile, a deliberately generous guess for a small
# convolutional network (about 64 float32 feature maps alive per input date-pixel).
BYTES_PER_INPUT_VALUE = 64 * 4
# On CPU large batches do not run faster, they only cost memory; on a GPU they fill the card.
MAX_BATCH = {"cpu": 8, "cuda": 64}
CPU_BUDGET_BYTES = 2 * 1024**3


def configure_threads() -> int:
    """Give torch every CPU core unless the user set ``OMP_NUM_THREADS``; return the count."""
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
    return torch.get_num_threads()


def free_memory_bytes(device: torch.device) -> int:
    """Free memory on ``device`` in bytes (CUDA: driver query; CPU: available RAM)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3


def fit_batch_size(
    tile_shape: tuple[int, int], window: int, device: torch.device, fraction: float = 0.25
) -> int:
    """Tiles per model call that fit in ``fraction`` of the free memory of ``device``.

    Parameters
    ----------
    tile_shape : ``(h, w)`` of one tile in pixels.
    window : dates per tile.
    device : where the model runs.
    fraction : share of the free memory to use (default 0.25).

    Returns
    -------
    Batch size between 1 and 8 on CPU (budget at most 2 GiB) or 64 on CUDA.
    """
    per_item = tile_shape[0] * tile_shape[1] * (window + 1) * BYTES_PER_INPUT_VALUE
    budget = fraction * free_memory_bytes(device)
    if device.type != "cuda":
        budget = min(budget, CPU_BUDGET_BYTES)
    size = int(budget // max(per_item, 1))
    size = max(1, min(MAX_BATCH.get(device.type, 8), size))
    log.debug("batch size %d for tiles %s x %d dates on %s", size, tile_shape, window, device)
    return size

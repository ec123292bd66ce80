"""Where the second detector's filters may test: two scales from the array's edges and, in
a small scene padded with invalid pixels (:func:`.stack_path.denoise_padded`), two scales
from the input scene's own edges.

Near an edge the filtered noise is inflated (reflected copies at the array's edge, a step to
the zero fill at the padding's), so a padded scene is tested as far from its own edges as an
unpadded scene is from the array's (session 36: the no-deformation 128 px crops `in` 2 and
56 of ``benchmarks/small_scenes.py`` reached z 6.6 and 8.2 at 8 px within 8 px of the padding
and came back with 5.2 and 2.8 mm (p99) patches; 4.2 and 3.7 beyond two scales). The gate
keeps the array's edges: at 72 x 48 px two of its larger filters' extents from the scene's
edges lowered strong creeps' gain (`shifted` 26 and 27: 0.94 and 0.99 -> 0.79 and 0.80).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

#: distance (filter scales) kept from the array's and from a padded scene's own edges
EDGE_SCALES = 2.0

_BOX: ContextVar[tuple[int, int, int, int] | None] = ContextVar("padded_scene_box", default=None)


@contextmanager
def padded_scene(rows: slice, cols: slice) -> Iterator[None]:
    """Within the block, the input scene lies at ``rows, cols`` of the padded arrays."""
    token = _BOX.set((int(rows.start), int(rows.stop), int(cols.start), int(cols.stop)))
    try:
        yield
    finally:
        _BOX.reset(token)


def inner_bounds(shape: tuple[int, int], scale: float) -> tuple[int, int, int, int]:
    """``(row0, row1, col0, col1)``, end exclusive: the pixels of arrays of ``shape`` that a
    filter of ``scale`` px tests, :data:`EDGE_SCALES` scales from the array's edges and from
    a padded scene's own (:func:`padded_scene`; ignored when its box does not fit)."""
    h, w = shape
    e = int(round(EDGE_SCALES * scale))
    r0, r1, c0, c1 = e, h - e, e, w - e
    box = _BOX.get()
    if box is not None and box[1] <= h and box[3] <= w:
        r0, r1 = max(r0, box[0] + e), min(r1, box[1] - e)
        c0, c1 = max(c0, box[2] + e), min(c1, box[3] - e)
    return r0, max(r1, r0), c0, max(c1, c0)

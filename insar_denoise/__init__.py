"""insar-denoise: separate mm-scale ground deformation from atmospheric noise in InSAR stacks.

Method: Rouet-Leduc, Jolivet, Dalaison, Johnson & Hulbert (2021), Nature Communications 12, 6480.
"""

from __future__ import annotations

from insar_denoise._version import __version__
from insar_denoise.errors import InsarDenoiseError

try:  # registers ds.insar / da.insar; the simulator and training also run where xarray is absent
    import insar_denoise.accessor  # noqa: F401
except ModuleNotFoundError as exc:  # pragma: no cover - only on torch-only machines
    if exc.name != "xarray":
        raise

__all__ = ["__version__", "InsarDenoiseError"]

"""insar-denoise: separate mm-scale ground deformation from atmospheric noise in InSAR stacks.

Method: Rouet-Leduc, Jolivet, Dalaison, Johnson & Hulbert (2021), Nature Communications 12, 6480.
"""

from __future__ import annotations

import insar_denoise.accessor  # noqa: F401  registers ds.insar
from insar_denoise._version import __version__
from insar_denoise.errors import InsarDenoiseError

__all__ = ["__version__", "InsarDenoiseError"]

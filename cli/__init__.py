"""Command-line interface, installed as ``insar_denoise.cli``: thin click wrappers."""

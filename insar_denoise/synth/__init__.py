"""Placeholder package docstring, replaced by its owner."""

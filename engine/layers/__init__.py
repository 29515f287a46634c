"""Packing ModelSpec layers into the kernels' flat layout (see pack.py)."""

"""Benchmarks: run as ``python -m benchmarks.<name>``; each checks outputs before timing."""

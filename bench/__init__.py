"""Benchmarks run by `make bench`: each bench/*.py prints its figures (see docs/performance.md)."""

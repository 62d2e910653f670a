"""Benchmarks (not tests). `python -m bench.quick --help`; see bench/README.md."""

"""The benchmarks `scripts/bench.py` runs, one module per subject."""

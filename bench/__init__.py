"""The benchmarks: scripts run by path (``python bench/bench_clips.py``) or as modules (``python -m bench.bench_clips``),
from any folder; ``bench._report`` holds what they share."""

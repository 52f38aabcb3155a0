"""Benchmarks of the pipeline: `python benchmarks/<name>.py`, or `python -m benchmarks.<name>` from the repository root."""

"""Benchmarks of the pipeline's stages: `python -m support_nlp.benchmarks.performance`."""

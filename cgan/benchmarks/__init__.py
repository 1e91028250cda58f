"""Benchmarks and quality reports: cgan-bench, cgan-eval."""

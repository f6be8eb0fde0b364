"""Offline benchmarks; each script writes JSON + Markdown under ``benchmarks/results/``."""

"""Video sources, preprocessing, encoders, runtimes, training and dataset loaders.

A leaf package: imports neither ``speech``, ``kg_reasoning`` nor ``copilot``.
"""

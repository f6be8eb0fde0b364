"""Anatomical / procedural knowledge graph, query API and step-by-step reasoner.

A leaf package: imports neither ``vision``, ``speech`` nor ``copilot``.
"""

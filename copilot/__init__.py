"""Surgical video copilot: runtime, timeline, alerts, dialogue, overlay, CLI and web UI."""

__version__ = "0.1.0"

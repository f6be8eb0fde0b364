"""Audio sources, VAD, wake word, ASR, speaker check, TTS and audio output.

A leaf package: imports neither ``vision``, ``kg_reasoning`` nor ``copilot``.
"""

"""Synthetic laparoscopy / endoscopy scenes with exact per-pixel labels.

- :mod:`vision.synth.cholec`: laparoscopic cholecystectomy (Cholec80 phases, CVS, clips,
  bleeding, unexpected large vessel) with CholecSeg8k-aligned classes; its script is
  :mod:`vision.synth.cholec_plan`, anatomy and world maps :mod:`vision.synth.cholec_anatomy`,
  instruments :mod:`vision.synth.cholec_tools`.
- :mod:`vision.synth.bowel`: bowel-survey endoscopy through named segments.
- :mod:`vision.synth.events`: the scripted events both understand.

A leaf: imports only numpy / OpenCV and ``vision.labels``.
"""

from vision.synth.events import EVENT_KINDS, SceneEvent
from vision.synth.scene import SynthFrame

__all__ = ["EVENT_KINDS", "SceneEvent", "SynthFrame"]

"""Pulsatility of a vessel from its outline over time (vision findings, media seconds).

An artery the camera sees beats: its calibre, hence the area of its mask, swells and shrinks
at the heart rate. ``PulseTracker`` keeps each watched structure's mask area over the last
``window_s`` seconds and fits to the log area, for each frequency of the heart-rate band
(0.8-2.5 Hz, 48-150 beats per minute), a sinusoid plus a low-degree polynomial (camera
drift, breathing) by least squares. The best frequency's share of the detrended variance
(R^2) and its amplitude (half the peak-to-peak swing of the log area, a relative size) give

    pulsatile_score = R^2 * min(1, amplitude / ref_amplitude)

in [0, 1], written into the finding's ``attrs["pulsatile_score"]`` (the reasoner reads >= 0.5
as pulsatile; a majority of the recent scores decides). No score is written until the series
covers ``min_span_s`` with ``min_samples`` samples: pulsatility is then unknown, not "no".
The constants were chosen on the brain benchmark's DEV feeds (``docs/pulse.md``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

#: the classes whose pulsatility is measured (vessel-like findings)
WATCHED = ("large_vessel",)
#: heart-rate band searched (Hz) and its step
BAND_HZ = (0.8, 2.5)
STEP_HZ = 0.05
#: relative amplitude (half swing of log area) that counts fully
REF_AMPLITUDE = 0.04
#: analysis window, shortest span and fewest samples before a score is given (s, s, count)
WINDOW_S, MIN_SPAN_S, MIN_SAMPLES = 4.0, 1.8, 8
#: degree of the polynomial trend removed with the sinusoid (camera motion, breathing)
DEGREE = 1


class PulseTracker:
    """Per-structure area series -> ``pulsatile_score`` on the findings of each frame."""

    def __init__(self, names: Iterable[str] = WATCHED, window_s: float = WINDOW_S,
                 min_span_s: float = MIN_SPAN_S, min_samples: int = MIN_SAMPLES,
                 ref_amplitude: float = REF_AMPLITUDE, degree: int = DEGREE) -> None:
        self.names = frozenset(names)
        self.degree = degree
        self.window_s, self.min_span_s, self.min_samples = window_s, min_span_s, min_samples
        self.ref_amplitude = ref_amplitude
        self._series: dict[str, deque[tuple[float, float]]] = {}
        self._freqs = np.arange(BAND_HZ[0], BAND_HZ[1] + 1e-9, STEP_HZ)

    def update(self, t_s: float, findings: Iterable[Any]) -> None:
        """Add this frame's areas (``finding.attrs["area"]``, image fraction) and write each
        watched finding's score into its attrs once the series is long enough."""
        seen = set()
        for f in findings:
            if f.name not in self.names or getattr(f, "kind", "structure") != "structure":
                continue
            area = f.attrs.get("area")
            if area is None:
                continue
            seen.add(f.name)
            s = self._series.setdefault(f.name, deque())
            if s and t_s < s[-1][0]:  # the media clock went back (a replay): start again
                s.clear()
            s.append((float(t_s), float(area)))
            while s and s[0][0] < t_s - self.window_s:
                s.popleft()
            score = self.score(s)
            if score is not None:
                f.attrs["pulsatile_score"] = round(score, 3)
        for name in [n for n in self._series if n not in seen]:
            del self._series[name]  # out of view: a new sighting starts a new series

    def score(self, series: Iterable[tuple[float, float]]) -> float | None:
        """The pulsatile score of (t_s, area) samples, or None when too short to tell."""
        pts = list(series)
        if len(pts) < self.min_samples or pts[-1][0] - pts[0][0] < self.min_span_s:
            return None
        t = np.array([p[0] for p in pts])
        area = np.array([p[1] for p in pts])
        if float(area.min()) <= 0:
            return None
        a = np.log(area)  # a beat scales the area: its swing here is relative already
        t = t - t[0]
        base = np.stack([t ** k for k in range(self.degree + 1)], axis=1)
        resid = a - base @ np.linalg.lstsq(base, a, rcond=None)[0]
        var = float(resid @ resid)
        if var <= 1e-12:
            return 0.0
        best_r2, best_amp = 0.0, 0.0
        for f in self._freqs:
            w = 2 * np.pi * f * t
            x = np.column_stack([base, np.sin(w), np.cos(w)])
            coef = np.linalg.lstsq(x, a, rcond=None)[0]
            r = a - x @ coef
            r2 = 1.0 - float(r @ r) / var
            if r2 > best_r2:
                best_r2, best_amp = r2, float(np.hypot(coef[2], coef[3]))
        return float(max(0.0, best_r2) * min(1.0, best_amp / self.ref_amplitude))

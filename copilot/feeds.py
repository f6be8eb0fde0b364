"""Synthetic recorded feeds with ground truth: video.mp4 + audio.wav + truth.json + masks/.

Composes the scene renderers of ``vision.synth`` (pixels, label masks, phases, segments,
events) with ``speech.synth`` (espeak-ng utterances over an OR soundscape) following a
scenario script, and writes the folder described in docs/feed_format.md. Everything is
deterministic given (scenario, seconds, seed, size, fps, events, route).

Event syntax (``--event``; times in seconds from the start of the feed):

- ``bleeding@T``            bleeding starts at T and spreads
- ``clip_before_cvs@T``     first clip at T before the critical view of safety (cholecystectomy)
- ``large_vessel@T``        an unexpected large pulsatile vessel comes into view at T
- ``skip_phase:PHASE``      a Cholec80 phase is left out (cholecystectomy)
- ``skip_segment:SEGMENT``  a bowel segment is never viewed (bowel-survey)
- ``brief_segment:SEGMENT`` a bowel segment is viewed for under a second (bowel-survey)

Rooms: audio script placement and the audio track (``copilot.feed_audio``), pixels and masks
(``copilot.feed_video``), the truth (``copilot.feed_truth``), the fact matcher
(``copilot.feed_facts``), the contact sheet (``copilot.feed_sheet``). This module holds the
scenarios (what is said when, and what a right answer states) and ``make_feed``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError

# the rooms of the feed; the names they took from here are importable from here as before
from copilot.feed_audio import (  # noqa: F401
    ADDRESSED_RMS,
    AUDIO_RATE,
    CHATTER_RMS,
    Line,
    _place,
    write_audio,
)
from copilot.feed_facts import _STOP, FACT_SYNONYMS, _tokens, fact_in_answer  # noqa: F401
from copilot.feed_sheet import _decode_frames, _text, show_feed  # noqa: F401
from copilot.feed_truth import (  # noqa: F401
    SCHEMA_PATH,
    SCHEMA_VERSION,
    _intervals,
    load_truth,
    truth_of,
    validate_truth,
)
from copilot.feed_truth import round_s as _r  # noqa: F401
from copilot.feed_video import _VideoWriter, _write_mask, render_frames  # noqa: F401
from vision.labels import CLASSES, CVS_CRITERIA, PHASES
from vision.synth.events import EVENT_KINDS, SceneEvent

log = logging.getLogger(__name__)

SCENARIOS = ("cholecystectomy", "bowel-survey")
EVENT_HELP = (
    "bleeding@T, clip_before_cvs@T, large_vessel@T (T in seconds), skip_phase:PHASE, "
    "skip_segment:SEGMENT, brief_segment:SEGMENT"
)


# ----------------------------------------------------------------------------- parsing
def parse_event(spec: str | SceneEvent) -> SceneEvent:
    """Parse ``kind@seconds`` or ``kind:NAME`` into a SceneEvent (CopilotError if malformed)."""
    if isinstance(spec, SceneEvent):
        return spec
    s = str(spec).strip()
    m = re.fullmatch(r"([a-z_]+)@([0-9]*\.?[0-9]+)s?", s)
    if m:
        kind, t = m.group(1), float(m.group(2))
        if kind not in EVENT_KINDS or kind.startswith(("skip_", "brief_")):
            raise CopilotError(f"bad event {s!r}: timed events are bleeding@T, "
                               "clip_before_cvs@T, large_vessel@T")
        return SceneEvent(kind, time_s=t)
    m = re.fullmatch(r"([a-z_]+):([A-Za-z0-9_]+)", s)
    if m:
        kind, arg = m.group(1), m.group(2)
        if kind not in ("skip_phase", "skip_segment", "brief_segment"):
            raise CopilotError(f"bad event {s!r}: named events are skip_phase:PHASE, "
                               "skip_segment:SEGMENT, brief_segment:SEGMENT")
        return SceneEvent(kind, arg=arg)
    raise CopilotError(f"bad event {s!r}: expected one of {EVENT_HELP}")


def parse_size(text: str | Sequence[int]) -> tuple[int, int]:
    """``"1280x720"`` (or a (w, h) pair) -> (1280, 720); even sizes from 64x64 to 3840x2160."""
    if isinstance(text, str):
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
        if not m:
            raise CopilotError(f"bad size {text!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
        w, h = int(m.group(1)), int(m.group(2))
    else:
        w, h = int(text[0]), int(text[1])
    if not (64 <= w <= 3840 and 64 <= h <= 2160):
        raise CopilotError(f"size {w}x{h} out of range (64x64 .. 3840x2160)")
    if w % 2 or h % 2:
        raise CopilotError(f"size {w}x{h}: width and height must be even (H.264 yuv420p)")
    return w, h




# ----------------------------------------------------------------------------- script
def _first_time_present(labels: dict, fps: float, cls: str, t_from: float, span_s: float
                        ) -> float | None:
    """First time >= t_from where class ``cls`` is in every frame for ``span_s`` seconds."""
    cid = CLASSES.index(cls)
    pres = np.array([cid in c for c in labels["classes_present"]], bool)
    n = len(pres)
    k = max(1, int(span_s * fps))
    for i in range(int(t_from * fps), n - k):
        if pres[i:i + k].all():
            return i / fps
    return None


def vessel_facts(event: dict) -> list[str]:
    """What a right answer to "what is this large vessel?" states, from the scene's own truth
    of the event (not from the reasoner's tables): where it is, and that it pulses when the
    scene draws it pulsing."""
    return [str(event["location"]), *(["pulsatile"] if event.get("pulsatile") else [])]


def _chole_script(truth: dict, labels: dict, fps: float, extra: dict) -> list[Line]:
    T = truth["duration_s"]
    ev = truth["events"]
    phases = truth["phases"]

    def phase_at(t: float) -> str:
        i = labels["phase"][min(len(labels["phase"]) - 1, int(t * fps))]
        return PHASES[i]

    def cvs_facts(t: float) -> list[str]:
        c = labels["cvs"][min(len(labels["cvs"]) - 1, int(t * fps))]
        if all(c):
            return ["reached"]
        return ["not reached", *[CVS_CRITERIA[i] for i in range(3) if not c[i]]]

    def skipped(t: float) -> list[str]:
        s = [e["phase"] for e in ev if e["kind"] == "phase_skipped" and e["time_s"] <= t]
        clip = [e for e in ev if e["kind"] == "clip_applied" and not e["cvs_reached"]
                and e["time_s"] <= t]
        out = list(s)
        if clip:
            out.append("critical view of safety")
        return out or ["no step skipped"]

    lines = [
        Line(0.04 * T, "nurse", "Suction is ready when you need it.", False, priority=1),
        Line(0.12 * T, "surgeon", "copilot, what phase are we in?", True, "current_phase", {},
             lambda t: [phase_at(t)]),
        Line(0.30 * T, "anaesthetist", "Blood pressure is stable, one twenty over seventy.",
             False, priority=2),
    ]
    calot = next((p for p in phases if p["name"] == "CalotTriangleDissection"), None)
    t_duct = _first_time_present(labels, fps, "cystic_duct",
                                 calot["start_s"] if calot else 0.15 * T, 3.0)
    if t_duct is not None:
        lines.append(Line(t_duct, "surgeon", "copilot, outline the cystic duct in red", True,
                          "outline_structure", {"structure": "cystic_duct", "colour": "red"},
                          ["cystic_duct"], priority=0))
    clips = [e for e in ev if e["kind"] == "clip_applied"]
    t_cvs = (clips[0]["time_s"] - 4.0) if clips else 0.45 * T
    lines.append(Line(max(t_cvs, 0.2 * T), "surgeon",
                      "copilot, is the critical view of safety reached?", True, "cvs_status", {},
                      cvs_facts, priority=0))
    lines.append(Line(0.62 * T, "assistant", "The cystic duct looks a bit short today.", False,
                      priority=2))
    vessel = [e for e in ev if e["kind"] == "large_vessel"]
    if vessel:
        t_v = _first_time_present(labels, fps, "large_vessel", vessel[0]["time_s"] + 0.5, 2.5)
        lines.append(Line(t_v if t_v is not None else vessel[0]["time_s"] + 1.0, "surgeon",
                          "copilot, what is this large "
                          "vessel?", True, "identify_structure", {"cue": "large_vessel"},
                          vessel_facts(vessel[0]), priority=0))
    bleed = [e for e in ev if e["kind"] == "bleeding_onset"]
    lines.append(Line(bleed[0]["time_s"] + 1.0 if bleed else 0.55 * T, "surgeon",
                      "copilot, mark this moment", True, "bookmark", {}, []))
    lines.append(Line(0.82 * T, "surgeon_b", "copilot, did we skip any step?", True,
                      "skipped_step", {}, skipped))
    lines.append(Line(0.92 * T, "surgeon", "copilot, mute alerts for five minutes", True,
                      "mute_alerts", {"minutes": 5}, ["muted"]))
    return lines


def _bowel_script(truth: dict, labels: dict, fps: float, extra: dict) -> list[Line]:
    T = truth["duration_s"]
    ev = truth["events"]
    segs = [s["name"] for s in truth["segments"]]

    def missed(t: float) -> list[str]:
        out = [e["segment"] for e in ev if e["kind"] in ("segment_missed", "segment_brief")
               and e["time_s"] <= t and e["time_s"] >= t - 15 * 60]
        return out or ["no segment missed"]

    lines = [
        Line(0.03 * T, "nurse", "Scope is in, the light source is fine.", False, priority=1),
        Line(0.35 * T, "assistant", "Can you give me a little more insufflation?", False,
             priority=2),
        Line(0.5 * T, "surgeon", "copilot, mark this moment", True, "bookmark", {}, []),
        Line(0.9 * T, "surgeon", "copilot, did we miss a view of any bowel segment in the "
             "last fifteen minutes?", True, "missed_segments", {"minutes": 15}, missed),
    ]
    d3 = next((s for s in truth["segments"] if s["name"] == "duodenum_d3"), None)
    if d3 is not None or "duodenum_d3" in segs:
        lines.append(Line(d3["start_s"] + 0.2, "surgeon",
                          "copilot, what lies behind the third part of the duodenum?", True,
                          "relation_query", {"relation": "posterior", "structure": "duodenum_d3"},
                          ["abdominal_aorta", "inferior_vena_cava"], voice="surgeon_fast"))
    vessel = [e for e in ev if e["kind"] == "large_vessel"]
    if vessel:
        facts = vessel_facts(vessel[0])
        t_v = _first_time_present(labels, fps, "large_vessel", vessel[0]["time_s"] + 0.3, 2.5)
        lines.append(Line(t_v if t_v is not None else vessel[0]["time_s"] + 0.8, "surgeon",
                          "copilot, what is this large "
                          "vessel?", True, "identify_structure", {"cue": "large_vessel"}, facts,
                          priority=0))
    return lines



def scenario_script(truth: dict, labels: dict, fps: float) -> list[Line]:
    """The scripted lines of the feed's scenario (truth before the audio is added)."""
    return (_chole_script if truth["scenario"] == "cholecystectomy" else _bowel_script)(
        truth, labels, fps, {})


# ----------------------------------------------------------------------------- making
def make_feed(
    out_dir: str | Path,
    scenario: str = "cholecystectomy",
    seconds: float = 30.0,
    seed: int = 0,
    size: tuple[int, int] | str = (1280, 720),
    fps: float = 30.0,
    skip_segments: Iterable[str] = (),
    events: Iterable[str | SceneEvent] = (),
    route: str = "full",
    audio: bool = True,
    preset: str = "ultrafast",
    crf: int = 20,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Generate a recorded feed folder; returns its path.

    ``seconds``: feed length; ``size``: (width, height) or "WxH"; ``fps``: frames/s;
    ``skip_segments``: bowel segments never viewed; ``events``: ``--event`` strings or
    SceneEvents; ``route`` (bowel-survey): full / upper / lower; ``audio``: False writes an
    OR soundscape without speech (no espeak-ng needed). Raises CopilotError / VisionError /
    SpeechError with a one-line message on bad arguments.
    """
    from vision.synth.bowel import BowelScene, plan_bowel
    from vision.synth.cholec import CholecScene, plan_cholecystectomy

    seconds, fps, seed, (w, h), evs = _check_options(scenario, seconds, fps, seed, size,
                                                     events, skip_segments)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise CopilotError(f"output path {out} exists and is not a folder")
    n_frames = max(1, int(round(seconds * fps)))
    duration = n_frames / fps

    if scenario == "cholecystectomy":
        plan = plan_cholecystectomy(duration, seed, evs)
        scene = CholecScene(plan, (w, h), fps, seed, n_frames)
    else:
        plan = plan_bowel(duration, seed, evs, route)
        scene = BowelScene(plan, (w, h), fps, seed, n_frames)

    labels = render_frames(out, scenario, plan, scene, (w, h), fps, n_frames, preset, crf,
                           progress)
    options = {"route": route if scenario == "bowel-survey" else None,
               "events": [e.spec() for e in evs], "audio": bool(audio)}
    truth = truth_of(scenario, plan, scene, labels, fps, seed, (w, h), n_frames, duration,
                     options)
    write_audio(out, truth, fps, seed, scenario_script(truth, labels, fps) if audio else None)
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return out


def _check_options(scenario: str, seconds: float, fps: float, seed: int,
                   size: tuple[int, int] | str, events: Iterable[str | SceneEvent],
                   skip_segments: Iterable[str]
                   ) -> tuple[float, float, int, tuple[int, int], list[SceneEvent]]:
    """make_feed's options checked and parsed (CopilotError with a one-line message)."""
    if scenario not in SCENARIOS:
        raise CopilotError(f"unknown scenario {scenario!r}; scenarios: {', '.join(SCENARIOS)}")
    try:
        seconds = float(seconds)
        fps = float(fps)
        seed = int(seed)
    except (TypeError, ValueError) as exc:
        raise CopilotError(f"bad numeric option: {exc}") from exc
    if not (0.5 <= seconds <= 3 * 3600):
        raise CopilotError(f"seconds must be between 0.5 and 10800, got {seconds:g}")
    if not (1.0 <= fps <= 120.0):
        raise CopilotError(f"fps must be between 1 and 120, got {fps:g}")
    if seed < 0:
        raise CopilotError(f"seed must be >= 0, got {seed}")
    w, h = parse_size(size)
    if isinstance(events, str | SceneEvent):
        events = [events]
    if isinstance(skip_segments, str):
        skip_segments = [skip_segments]
    evs = [parse_event(e) for e in events]
    evs += [SceneEvent("skip_segment", arg=s) for s in skip_segments]
    if scenario == "cholecystectomy" and any(e.kind.endswith("_segment") for e in evs):
        raise CopilotError("segment events and --skip-segment apply to the bowel-survey scenario")
    return seconds, fps, seed, (w, h), evs


# ----------------------------------------------------------------------------- demo
DEMO_RECIPE: dict = {
    "scenario": "cholecystectomy",
    "seconds": 75.0,
    "seed": 7,
    "size": (854, 480),
    "fps": 25.0,
    "events": ("clip_before_cvs@34", "bleeding@50"),
}


def make_demo_feed(out_dir: str | Path, force: bool = False) -> Path:
    """The shipped demo feed (used by ``make demo``): 75 s cholecystectomy at 854x480/25 fps
    with addressed questions, staff chatter, clipping before the critical view and a bleed.

    Generated on first use; reused when ``out_dir`` already holds it (same recipe).
    """
    out = Path(out_dir)
    if not force and (out / "truth.json").is_file() and (out / "video.mp4").is_file():
        try:
            t = load_truth(out)
            if (t["scenario"], t["seed"], t["options"]["events"]) == (
                    DEMO_RECIPE["scenario"], DEMO_RECIPE["seed"], list(DEMO_RECIPE["events"])):
                return out
        except (CopilotError, KeyError):
            pass
    return make_feed(out, **DEMO_RECIPE)


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
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from copilot.errors import CopilotError
from vision.labels import CLASSES, CVS_CRITERIA, PHASES, REGIONS, SEGMENTS, TOOLS
from vision.synth.events import EVENT_KINDS, SceneEvent

log = logging.getLogger(__name__)

SCENARIOS = ("cholecystectomy", "bowel-survey")
SCHEMA_VERSION = 1
AUDIO_RATE = 16000
SCHEMA_PATH = Path(__file__).with_name("schemas") / "truth.schema.json"

#: Speech level (RMS) of lines spoken to the copilot and of background chatter.
ADDRESSED_RMS = 0.1
CHATTER_RMS = 0.06

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


# ----------------------------------------------------------------------------- facts
#: Extra spoken forms accepted by :func:`fact_in_answer` for canonical keys.
FACT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "duodenum_d1": ("first part of the duodenum", "duodenal bulb", "d1", "d one"),
    "duodenum_d2": ("second part of the duodenum", "descending duodenum", "d2", "d two"),
    "duodenum_d3": ("third part of the duodenum", "horizontal duodenum", "d3", "d three"),
    "duodenum_d4": ("fourth part of the duodenum", "ascending duodenum", "d4", "d four"),
    "abdominal_aorta": ("aorta",),
    "inferior_vena_cava": ("vena cava", "ivc"),
    "CalotTriangleDissection": ("calot", "hepatocystic triangle"),
    "ClippingCutting": ("clipping",),
    "GallbladderDissection": ("gallbladder dissection",),
    "GallbladderPackaging": ("packaging", "specimen bag"),
    "CleaningCoagulation": ("cleaning", "coagulation"),
    "GallbladderRetraction": ("retraction", "extraction"),
    "caecum": ("cecum",),
    "calot_triangle": ("hepatocystic triangle", "calot triangle", "calots triangle"),
    # the CVS criteria in the wording of the knowledge graph (SAGES)
    "cystic_plate_exposed": ("lower third of the gallbladder", "cystic plate"),
    "two_structures": ("two and only two structures",),
    "hepatocystic_triangle_cleared": ("hepatocystic triangle cleared",),
    "not reached": ("not yet", "not achieved", "not been reached"),
}
_STOP = {"the", "of", "and", "a", "an", "part"}


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text)
    return [w for w in re.split(r"[^a-z0-9]+", text.lower().replace("_", " ")) if w]


def fact_in_answer(fact: str, answer: str) -> bool:
    """Does ``answer`` state ``fact``? Case, ``_`` / CamelCase and filler words are ignored;
    a fact matches when all its content words appear, or one of FACT_SYNONYMS does."""
    ans = set(_tokens(answer))
    ans_text = " ".join(_tokens(answer))
    for form in (fact, *FACT_SYNONYMS.get(fact, ())):
        words = [w for w in _tokens(form) if w not in _STOP] or _tokens(form)
        if all(w in ans for w in words) or " ".join(_tokens(form)) in ans_text:
            return True
    return False


# ----------------------------------------------------------------------------- script
@dataclass
class Line:
    """A scripted utterance: wanted start time, who, what, and the expected parse.

    ``facts`` computes the expected facts from the truth at the end of the utterance.
    """

    at_s: float
    speaker: str
    text: str
    addressed: bool
    intent: str | None = None
    slots: dict = field(default_factory=dict)
    facts: Callable[[float], list[str]] | list[str] = field(default_factory=list)
    voice: str | None = None  # speech.synth.VOICES name; defaults to the speaker's name
    priority: int = 1  # 0 = tied to an event, placed first; 2 = chatter, placed last


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


def _place(lines: list[Line], audio: list[np.ndarray], duration: float, gap: float = 0.6
           ) -> list[tuple[Line, np.ndarray, float]]:
    """Start times without overlaps: by priority, each line at the first free slot at or
    after its wanted time; lines that would run past the end are dropped."""
    order = sorted(range(len(lines)), key=lambda i: (lines[i].priority, lines[i].at_s, i))
    busy: list[tuple[float, float]] = []
    out = []
    for i in order:
        ln, a = lines[i], audio[i]
        dur = len(a) / AUDIO_RATE
        start = max(ln.at_s, 0.25)
        for b0, b1 in sorted(busy):
            if start + dur + gap <= b0:
                break
            if start < b1 + gap:
                start = max(start, b1 + gap)
        if start + dur > duration - 0.2:
            continue
        busy.append((start, start + dur))
        out.append((ln, a, start))
    out.sort(key=lambda x: x[2])
    return out


# ----------------------------------------------------------------------------- writing
class _VideoWriter:
    """H.264 (libx264, yuv420p, constant frame rate) through PyAV."""

    def __init__(self, path: Path, size: tuple[int, int], fps: float, preset: str, crf: int):
        import av

        self.av = av
        self.container = av.open(str(path), mode="w")
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = size
        self.stream.pix_fmt = "yuv420p"
        # fixed thread count: the bitstream must not depend on the machine's core count
        self.stream.options = {"preset": preset, "crf": str(crf), "threads": "4"}

    def write(self, rgb: np.ndarray) -> None:
        """Encode one RGB uint8 (H, W, 3) frame."""
        frame = self.av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for pkt in self.stream.encode(frame):
            self.container.mux(pkt)

    def close(self) -> None:
        """Flush the encoder and finish the MP4."""
        for pkt in self.stream.encode():
            self.container.mux(pkt)
        self.container.close()


def _write_mask(path: Path, mask: np.ndarray) -> None:
    import cv2

    # label maps: no row filter + run-length deflate is ~3x faster than the defaults
    params = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
              cv2.IMWRITE_PNG_STRATEGY_RLE, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_NONE]
    if not cv2.imwrite(str(path), mask, params):
        raise CopilotError(f"cannot write {path}")


def _r(x: float) -> float:
    return round(float(x), 4)


def _intervals(values: list[int], fps: float, names: Sequence[str], times: dict[str, tuple]
               ) -> list[dict]:
    """[{name, start_s, end_s, start_frame, end_frame}] from per-frame indices."""
    out: list[dict] = []
    for i, v in enumerate(values):
        if v < 0:
            continue
        if out and out[-1]["_v"] == v and out[-1]["end_frame"] == i:
            out[-1]["end_frame"] = i + 1
        else:
            out.append({"_v": v, "start_frame": i, "end_frame": i + 1})
    res = []
    for o in out:
        name = names[o["_v"]]
        s, e = times.get(name, (o["start_frame"] / fps, o["end_frame"] / fps))
        res.append({"name": name, "start_s": _r(s), "end_s": _r(e),
                    "start_frame": o["start_frame"], "end_frame": o["end_frame"]})
    return res


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

    out.mkdir(parents=True, exist_ok=True)
    masks = out / "masks"
    if masks.exists():
        shutil.rmtree(masks)
    masks.mkdir()
    labels: dict[str, list] = {"phase": [], "region": [], "cvs": [], "tools": [],
                               "classes_present": []}
    writer = _VideoWriter(out / "video.mp4", (w, h), fps, preset, crf)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=1) as enc, ThreadPoolExecutor(max_workers=2) as io:
        try:
            for i in range(n_frames):
                t = i / fps
                fr = scene.render(i)
                pending.append(enc.submit(writer.write, fr.rgb))
                pending.append(io.submit(_write_mask, masks / f"{i:06d}.png", fr.mask))
                labels["classes_present"].append(list(fr.classes))
                labels["tools"].append([int(x in fr.tools) for x in TOOLS])
                if scenario == "cholecystectomy":
                    labels["phase"].append(plan.phase_at(t)[0])
                    labels["region"].append(0)
                    labels["cvs"].append(plan.cvs_at(t))
                else:
                    labels["phase"].append(-1)
                    labels["region"].append(scene.region_index(t))
                    labels["cvs"].append([0, 0, 0])
                while len(pending) > 12:
                    pending.popleft().result()
                if progress is not None:
                    progress(i + 1, n_frames)
            while pending:
                pending.popleft().result()
        finally:
            enc.submit(writer.close).result()

    # ------------------------------------------------------------------ truth
    events_out = list(plan.events) + scene.located_events()
    for e in events_out:
        e["time_s"] = _r(e["time_s"])
        e["frame"] = min(n_frames - 1, max(0, math.ceil(e["time_s"] * fps - 1e-6)))
    events_out.sort(key=lambda e: (e["time_s"], e["kind"]))
    if scenario == "cholecystectomy":
        times = {p.name: (p.start_s, p.end_s) for p in plan.phases}
        phases = _intervals(labels["phase"], fps, PHASES, times)
        segments: list[dict] = []
    else:
        phases = []
        times = {s.name: (s.start_s, s.end_s) for s in plan.segments}
        segments = _intervals([r - 1 for r in labels["region"]], fps, SEGMENTS, times)
    truth: dict = {
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario,
        "seed": seed,
        "fps": fps,
        "width": w,
        "height": h,
        "n_frames": n_frames,
        "duration_s": _r(duration),
        "classes": list(CLASSES),
        "phases": phases,
        "segments": segments,
        "frame_labels": labels,
        "events": events_out,
        "utterances": [],
        "noise": {},
        "options": {"route": route if scenario == "bowel-survey" else None,
                    "events": [e.spec() for e in evs], "audio": bool(audio)},
        "regions": list(REGIONS),
        "tools": list(TOOLS),
        "phase_names": list(PHASES),
        "cvs_criteria": list(CVS_CRITERIA),
    }
    _write_audio(out, truth, labels, fps, seed, audio, plan)
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    return out


def _write_audio(out: Path, truth: dict, labels: dict, fps: float, seed: int, speech: bool,
                 plan) -> None:
    from speech.synth import VOICES, Soundscape, mix, render_soundscape, synthesize, write_wav

    n = int(round(truth["n_frames"] / fps * AUDIO_RATE))
    cautery = [(e["time_s"], e["time_s"] + e["duration_s"]) for e in truth["events"]
               if e["kind"] == "cautery"]
    suction = [(e["time_s"], e["time_s"] + e["duration_s"]) for e in truth["events"]
               if e["kind"] == "suction"]
    params = Soundscape()
    bg = render_soundscape(truth["duration_s"], seed, cautery, suction, params,
                           AUDIO_RATE, n_samples=n)
    floor_rms = float(np.sqrt(np.mean(render_soundscape(
        min(truth["duration_s"], 5.0), seed, (), (), params, AUDIO_RATE) ** 2)))
    placed: list[tuple[Line, np.ndarray, float]] = []
    if speech:
        script = (_chole_script if truth["scenario"] == "cholecystectomy" else _bowel_script)(
            truth, labels, fps, {})
        voices = [synthesize(ln.text, ln.voice or ln.speaker) for ln in script]
        placed = _place(script, voices, truth["duration_s"])
    audio = mix(bg, [(s, a, ADDRESSED_RMS if ln.addressed else CHATTER_RMS)
                     for ln, a, s in placed], AUDIO_RATE)
    write_wav(out / "audio.wav", audio, AUDIO_RATE)
    utts = []
    for ln, a, s in placed:
        end = s + len(a) / AUDIO_RATE
        facts = ln.facts(end) if callable(ln.facts) else list(ln.facts)
        utts.append({
            "start_s": _r(s), "end_s": _r(end), "speaker": ln.speaker,
            "voice": {"name": ln.voice or ln.speaker, **VOICES[ln.voice or ln.speaker].as_dict()},
            "text": ln.text, "addressed": ln.addressed,
            "intent": ln.intent if ln.addressed else None,
            "slots": dict(ln.slots) if ln.addressed else None,
            "expected_facts": facts if ln.addressed else [],
        })
    truth["utterances"] = utts
    truth["noise"] = {
        "snr_db": _r(20 * math.log10(ADDRESSED_RMS / max(floor_rms, 1e-9))),
        "chatter_snr_db": _r(20 * math.log10(CHATTER_RMS / max(floor_rms, 1e-9))),
        "floor_rms": _r(floor_rms),
        "sources": ["noise_floor", "mains_hum", "ventilation", "monitor_beeps",
                    *(["cautery"] if cautery else []), *(["suction"] if suction else []),
                    *(["staff_chatter"] if any(not u["addressed"] for u in utts) else [])],
        "params": params.as_dict(),
        "sample_rate": AUDIO_RATE,
    }


# ----------------------------------------------------------------------------- reading
def load_truth(feed_dir: str | Path) -> dict:
    """Read and check a feed's truth.json (CopilotError when missing or malformed)."""
    p = Path(feed_dir) / "truth.json"
    if not p.is_file():
        raise CopilotError(f"no truth.json in {feed_dir} (not a feed folder?)")
    try:
        truth = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise CopilotError(f"corrupt {p}: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(truth, dict) or truth.get("schema_version") != SCHEMA_VERSION:
        raise CopilotError(f"{p}: unsupported schema_version {truth.get('schema_version')!r}")
    return truth


def validate_truth(truth: dict) -> None:
    """Validate against copilot/schemas/truth.schema.json (CopilotError on violations)."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    try:
        jsonschema.validate(truth, schema)
    except jsonschema.ValidationError as exc:
        path = "/".join(str(x) for x in exc.absolute_path)
        raise CopilotError(f"truth.json invalid at {path or '(root)'}: {exc.message}") from exc


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


# ----------------------------------------------------------------------------- contact sheet
def _decode_frames(video: Path, indices: Sequence[int]) -> dict[int, np.ndarray]:
    """Decode the frames with the given indices (RGB uint8) from an MP4, in one pass."""
    import av

    want = set(indices)
    out: dict[int, np.ndarray] = {}
    try:
        with av.open(str(video)) as c:
            for i, fr in enumerate(c.decode(video=0)):
                if i in want:
                    out[i] = fr.to_ndarray(format="rgb24")
                if len(out) == len(want):
                    break
    except av.error.FFmpegError as exc:
        raise CopilotError(f"cannot decode {video}: {exc}") from exc
    return out


def _text(img: np.ndarray, lines: list[str], x: int, y: int, scale: float = 0.38,
          colour: tuple[int, int, int] = (235, 235, 235)) -> None:
    import cv2

    for k, ln in enumerate(lines):
        cv2.putText(img, ln, (x, y + int(k * 30 * scale * 1.25)), cv2.FONT_HERSHEY_SIMPLEX,
                    scale, colour, 1, cv2.LINE_AA)


def show_feed(feed_dir: str | Path, out_png: str | Path | None = None, n: int = 8,
              thumb_width: int = 240, frames: Sequence[int] | None = None) -> Path:
    """Contact sheet of ``n`` frames (evenly spaced, or the given ``frames``): each cell is
    the frame, its mask blended in class colours, and the truth at that time (phase / segment,
    CVS, tools, classes, nearby events, the line being spoken). Written as a palette PNG."""
    import cv2
    from PIL import Image

    from vision.labels import CLASS_COLOURS

    feed = Path(feed_dir)
    truth = load_truth(feed)
    nf, fps = truth["n_frames"], truth["fps"]
    if n < 1 or thumb_width < 64:
        raise CopilotError("need at least one frame and a thumbnail width >= 64")
    if frames is None:
        idx = sorted({int(round(x)) for x in np.linspace(0.03 * nf, 0.97 * nf - 1, n)})
    else:
        idx = sorted({int(i) for i in frames})
        if any(i < 0 or i >= nf for i in idx):
            raise CopilotError(f"frame index out of range 0..{nf - 1}")
    imgs = _decode_frames(feed / "video.mp4", idx)
    lut = np.zeros((256, 3), np.uint8)
    for i, c in enumerate(truth["classes"]):
        lut[i] = CLASS_COLOURS.get(c, (255, 255, 255))
    lut[255] = (128, 128, 128)
    tw = thumb_width
    th = int(round(tw * truth["height"] / truth["width"]))
    text_h = 96  # six lines of small text (14 px apart)
    cells = []
    fl = truth["frame_labels"]
    for i in idx:
        rgb = imgs.get(i)
        if rgb is None:
            raise CopilotError(f"video.mp4 has fewer frames than truth.json says ({i})")
        mpath = feed / "masks" / f"{i:06d}.png"
        mask = cv2.imread(str(mpath), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise CopilotError(f"missing mask {mpath}")
        a = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
        m = cv2.resize(mask, (tw, th), interpolation=cv2.INTER_NEAREST)
        ov = (a.astype(np.uint16) * 2 // 5 + lut[m].astype(np.uint16) * 3 // 5).astype(np.uint8)
        edge = (m != np.roll(m, 1, 0)) | (m != np.roll(m, 1, 1))
        ov[edge] = (255, 255, 255)
        cell = np.zeros((th + text_h, 2 * tw + 4, 3), np.uint8)
        cell[:th, :tw] = a
        cell[:th, tw + 4:] = ov
        t = i / fps
        lines = [f"t={t:6.2f}s  frame {i}"]
        if truth["scenario"] == "cholecystectomy":
            ph = fl["phase"][i]
            cvs = "".join(str(c) for c in fl["cvs"][i])
            lines[0] += f"  {PHASES[ph] if ph >= 0 else '-'}  CVS {cvs}"
        else:
            lines[0] += f"  segment {REGIONS[fl['region'][i]]}"
        tools = [TOOLS[k] for k, v in enumerate(fl["tools"][i]) if v]
        lines.append("tools: " + (", ".join(tools) or "-"))
        names = [truth["classes"][c] for c in fl["classes_present"][i] if c != 0]
        lines.append("classes: " + ", ".join(names))
        near = [e["kind"] for e in truth["events"] if abs(e["time_s"] - t) <= 1.0
                and e["kind"] not in ("cautery", "suction")]
        sp = [u for u in truth["utterances"] if u["start_s"] - 0.2 <= t <= u["end_s"] + 0.2]
        extra = []
        if near:
            extra.append("events: " + ", ".join(near))
        if sp:
            extra.append(f"{sp[0]['speaker']}: \"{sp[0]['text']}\"")
        lines += extra[:2]
        _wrap = []
        for ln in lines:
            maxc = int(2 * tw / 6.2)
            while len(ln) > maxc:
                _wrap.append(ln[:maxc])
                ln = "  " + ln[maxc:]
            _wrap.append(ln)
        _text(cell, _wrap[:6], 4, th + 12)
        cells.append(cell)
    cols = 2 if len(cells) > 1 else 1
    rows = [np.concatenate(cells[r:r + cols] + [np.zeros_like(cells[0])] *
                           (cols - len(cells[r:r + cols])), 1) for r in range(0, len(cells), cols)]
    sheet = np.concatenate(rows, 0)
    # legend of the classes present anywhere on the sheet
    used = sorted({c for i in idx for c in fl["classes_present"][i]})
    leg = np.zeros((22 * ((len(used) + 5) // 6) + 24, sheet.shape[1], 3), np.uint8)
    title = (f"{truth['scenario']}  seed {truth['seed']}  {truth['width']}x{truth['height']} "
             f"@ {fps:g} fps  {truth['duration_s']:.1f} s  left: frame, right: mask")
    _text(leg, [title], 6, 15, 0.42)
    colw = sheet.shape[1] // 6
    for k, c in enumerate(used):
        x, y = 6 + (k % 6) * colw, 26 + (k // 6) * 22
        cv2.rectangle(leg, (x, y), (x + 14, y + 14), tuple(int(v) for v in lut[c]), -1)
        _text(leg, [truth["classes"][c]], x + 18, y + 12, 0.4)
    sheet = np.concatenate([leg, sheet], 0)
    out = Path(out_png) if out_png is not None else feed / "contact_sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                    dither=Image.Dither.NONE).save(out, optimize=True)
    return out

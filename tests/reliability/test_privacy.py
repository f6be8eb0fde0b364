"""Privacy: out-of-body frames are found and hidden; no input audio is stored; words not
addressed to the copilot never reach the session log or the report; voice commands that
change state are gated (when the brain provides the gate).
"""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from copilot.privacy import (
    Anonymiser,
    hidden_frame,
    out_of_body_score,
)

CHATTER = "Nurse, the suction canister is nearly full, please replace it before closing."
ADDRESSED = "copilot, what phase are we in?"


def _frames(path: Path, step: int = 1) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0))
                if i % step == 0]


def _portrait() -> np.ndarray:
    """A real photograph of a person (matplotlib's sample image of Grace Hopper)."""
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _operating_room(w: int = 320, h: int = 240) -> np.ndarray:
    """A drawn OR view: grey wall, blue-green drapes, a lamp, a skin-toned face."""
    img = np.full((h, w, 3), (170, 172, 175), np.uint8)
    img[h // 2:] = (40, 110, 120)  # drapes
    cv2.circle(img, (w // 4, h // 5), h // 10, (250, 250, 240), -1)  # lamp
    cv2.ellipse(img, (2 * w // 3, h // 3), (w // 12, h // 8), 0, 0, 360, (225, 180, 150), -1)
    return img


def _sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def _detail(rgb: np.ndarray) -> float:
    """Typical local detail: the 75th percentile of |Laplacian| (thin overlay lines drawn on
    a few per cent of the pixels do not move it)."""
    lap = cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F)
    return float(np.percentile(np.abs(lap), 75))


# ----------------------------------------------------------------------- detector
def test_endoscopic_frames_are_inside(feed: Path):
    an = Anonymiser()
    checks = [an.check(f) for f in _frames(feed / "video.mp4", step=2)]
    assert not any(c.outside for c in checks)
    assert max(c.score for c in checks) < 0.45, max(c.score for c in checks)
    dark = an.check(np.zeros((48, 64, 3), np.uint8))  # lens covered: no field of view
    assert dark.outside and dark.reason == "no field of view"


def test_room_views_are_outside():
    assert out_of_body_score(_portrait()) >= 0.55
    assert out_of_body_score(_operating_room()) >= 0.55
    gray = cv2.cvtColor(_portrait(), cv2.COLOR_RGB2GRAY)
    for img in (_portrait(), _operating_room(), gray):  # a grayscale camera: no tissue colour
        c = Anonymiser().check(img)
        assert c.outside and c.reason == "out of body", c


def test_anonymiser_fails_safe():
    inside = np.zeros((60, 80, 3), np.uint8)
    inside[...] = (180, 40, 40)  # tissue red
    room = _operating_room(80, 60)
    an = Anonymiser(clear_s=0.2, clear_frames=3)
    seq = [inside, room, inside, inside, inside, inside, room]
    flags = []
    for i, f in enumerate(seq):
        an.process(i, i * 0.1, f.copy())
        flags.append(an.is_hidden(i))
    # hidden from the first room frame; shown again only after 3 inside frames (0.2 s)
    assert flags == [False, True, True, True, False, False, True]
    shown, hidden = an.render(0, inside)[0], an.render(1, room)[0]
    assert shown is inside and np.array_equal(hidden, hidden_frame(80, 60))  # no room pixel
    assert an.hidden == 4


def test_run_hides_out_of_body_frames_in_the_recording(feed: Path, tmp_path: Path):
    from copilot.app import RunConfig, run_copilot
    from vision.writer import Mp4Writer

    inside = _frames(feed / "video.mp4", step=4)[:6]
    room = cv2.resize(_portrait(), (320, 240), interpolation=cv2.INTER_AREA)
    clip = tmp_path / "in_out_in.mp4"
    with Mp4Writer(clip, 10, (320, 240)) as w:
        for f in [*inside, *([room] * 6), *inside]:
            w.write(f)
    res = run_copilot(RunConfig(source=str(clip), out=tmp_path / "o", vision="heuristic",
                                speech="off"))  # anonymised by default
    assert res.exit_code == 0 and res.frames_out == 18
    # the middle of the picture (away from the status line); analysis drawings are thin
    out = [f[30:210] for f in _frames(tmp_path / "o" / "annotated.mp4")]
    detail = [_detail(f) for f in out]
    assert max(detail[6:12]) < 0.35 * _detail(room[30:210])  # the room is hidden
    assert min(detail[:4]) > 0.7 * _detail(inside[0][30:210])  # the patient view is not


# -------------------------------------------------------------------- audio and words
@pytest.fixture(scope="module")
def chatter_run(feed: Path, tmp_path_factory: pytest.TempPathFactory):
    """The 4 s feed's video with an audio track of staff chatter then a copilot question."""
    from copilot.app import RunConfig, run_copilot
    from speech.synth import mix, synthesize, write_wav

    d = tmp_path_factory.mktemp("privacy")
    chat = synthesize(CHATTER, "nurse")
    ask = synthesize(ADDRESSED, "surgeon")
    dur = 0.3 + len(chat) / 16000 + 0.8 + len(ask) / 16000 + 1.0
    bg = np.random.default_rng(5013).normal(0, 0.003, int(dur * 16000)).astype(np.float32)
    audio = mix(bg, [(0.3, chat, 0.08), (0.3 + len(chat) / 16000 + 0.8, ask, 0.1)])
    wav = d / "room.wav"
    write_wav(wav, audio)
    out = d / "run"
    res = run_copilot(RunConfig(source=str(feed / "video.mp4"), audio=wav, out=out,
                                vision="heuristic"))
    return res, out, wav


def test_no_input_audio_is_stored_without_consent(chatter_run):
    import soundfile as sf

    res, out, wav = chatter_run
    assert res.exit_code == 0, res.error
    names = {p.name for p in out.iterdir()}
    assert names <= {"annotated.mp4", "copilot_speech.wav", "session.jsonl", "report.html",
                     "trace.jsonl"}, names
    # the one WAV written is the copilot's own voice, not the room: it does not correlate
    # with the microphone audio on the shared time line
    mine, rate = sf.read(str(out / "copilot_speech.wav"), dtype="float32")
    room, rate_room = sf.read(str(wav), dtype="float32")
    assert rate == rate_room == 16000
    n = min(len(mine), len(room))
    a, b = mine[:n], room[:n]
    corr = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-9))
    assert abs(corr) < 0.1, corr
    with av.open(str(out / "annotated.mp4")) as c:
        assert not c.streams.audio  # the recording carries no sound either


def test_words_not_addressed_to_the_copilot_are_never_written(chatter_run):
    from copilot.session import read_session

    res, out, _ = chatter_run
    s = read_session(out / "session.jsonl")
    for r in s.of("speech"):
        assert r.get("addressed") is False and "text" not in r and "words" not in r
    assert s.of("speech"), "the chatter was heard (logged without its words)"
    files = [out / "session.jsonl", out / "report.html"]
    blob = " ".join(p.read_text(encoding="utf-8").lower() for p in files if p.exists())
    for word in ("canister", "nearly", "replace", "closing", "suction"):
        assert word not in blob, word
    for r in s.of("transcript"):  # commands only
        assert r.get("text", "").lower().startswith(("copilot", "co pilot")) or r.get(
            "addressed", True), r


def _heard(text: str, t: float, score: float | None):
    from copilot.messages import Transcript

    return Transcript(t_ns=0, trace_id=f"u{t}", media_t_s=t, text=text, confidence=0.9,
                      start_s=t - 1.0, end_s=t, speaker_score=score, accepted=True)


def test_state_changing_voice_commands_are_gated(tmp_path: Path):
    """A stranger's "mute alerts" is held for confirmation; the enrolled surgeon's runs."""
    from copilot.brain import Brain, BrainConfig
    from copilot.messages import Control
    from copilot.session import SessionLog, read_session

    log = SessionLog(tmp_path / "session.jsonl")
    brain = Brain("cholecystectomy", session=log, config=BrainConfig(require_enrolled=True))
    cmd = "copilot, mute alerts for five minutes"

    def mutes(out) -> bool:
        return any(isinstance(m, Control) and m.command == "mute" for m in out)

    held = brain.on_transcript(_heard(cmd, 5.0, 0.1), True)  # a voice that is not enrolled
    assert not mutes(held) and any("confirm" in (getattr(m, "text", "") or "").lower()
                                   for m in held)
    assert not mutes(brain.on_transcript(_heard(cmd, 30.0, None), True))  # unscored, late
    assert mutes(brain.on_transcript(_heard(cmd, 60.0, 0.95), True))  # the enrolled surgeon
    log.close()
    assert read_session(tmp_path / "session.jsonl").of("transcript")

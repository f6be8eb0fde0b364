"""The UI's server side without a browser: bind rules, token gate, uploads and consent,
hands-free listening, rendering of steps / alerts / timeline, the CLI refusal."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from copilot.errors import CopilotError
from copilot.messages import Alert, Answer, OverlayUpdate, Transcript
from copilot.overlay import AnnotationSet
from tests.ui.conftest import TOKEN

ROOT = Path(__file__).resolve().parents[2]


def test_bind_rules() -> None:
    from copilot.ui import check_bind, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4")
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "long-enough-token")
    with pytest.raises(CopilotError, match="--token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(CopilotError, match="at least 8"):
        check_bind("0.0.0.0", "short")


def test_cli_refuses_network_host_without_token() -> None:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    p = subprocess.run([sys.executable, "-m", "copilot.cli", "ui", "--host", "0.0.0.0"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --host 0.0.0.0") and "--token" in err[0]
    assert "Traceback" not in p.stderr


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read(2_000_000), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


@pytest.mark.browser
def test_token_gate(ui) -> None:  # noqa: ANN001
    base = ui.base
    assert _get(base)[0] == 401
    assert _get(base + "api/status")[0] == 401
    assert _get(base + "frame.jpg?token=wrong-token-000")[0] == 401
    code, body, headers = _get(base + f"?token={TOKEN}")
    assert code == 200 and b"<html" in body.lower()
    assert "copilot_token=" in headers.get("set-cookie", "")
    code, body, _ = _get(base + "api/status", {"Authorization": f"Bearer {TOKEN}"})
    assert code == 200 and b'"running"' in body
    code, body, _ = _get(base + "frame.jpg", {"Cookie": f"copilot_token={TOKEN}"})
    assert code == 200 and body[:2] == b"\xff\xd8"  # a JPEG


def _wav_bytes(x: np.ndarray, rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.fixture
def ctrl(tmp_path: Path, ui_feed: Path):  # noqa: ANN201 - a controller without a copilot
    from copilot.ui import UIConfig, UIController

    c = UIController(UIConfig(source=str(ui_feed), workdir=tmp_path / "work",
                              max_upload_bytes=200_000))
    yield c
    c.stop()


def test_uploads_are_checked_and_consent_decides_storage(ctrl, tmp_path: Path,  # noqa: ANN001
                                                         question_wav: Path) -> None:
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(CopilotError, match="not an audio type"):
        ctrl.take_audio(bad)
    big = tmp_path / "big.wav"
    big.write_bytes(_wav_bytes(np.zeros(16000 * 10, np.float32)))  # 320 kB > 200 kB
    with pytest.raises(CopilotError, match="too large"):
        ctrl.take_audio(big)
    silent = tmp_path / "silent.wav"
    silent.write_bytes(_wav_bytes(np.zeros(16000, np.float32)))
    with pytest.raises(CopilotError, match="no speech"):
        ctrl.take_audio(silent)
    assert not silent.exists()  # even a rejected upload is deleted
    fake = tmp_path / "fake.wav"
    fake.write_bytes(b"RIFF" + os.urandom(400))
    with pytest.raises(CopilotError):
        ctrl.take_audio(fake)
    # consent off: decoded in memory, the upload deleted, nothing stored
    clip = tmp_path / "clip.wav"
    clip.write_bytes(question_wav.read_bytes())
    x = ctrl.take_audio(clip)
    assert len(x) > 16000 and not clip.exists()
    assert not (ctrl.workdir / "recordings").exists()
    # consent on: the clip is stored under workdir/recordings
    ctrl.consent = True
    clip.write_bytes(question_wav.read_bytes())
    ctrl.take_audio(clip)
    stored = list((ctrl.workdir / "recordings").glob("*.wav"))
    assert len(stored) == 1 and not clip.exists()


def test_hands_free_hears_the_wake_word(ctrl, question_wav: Path) -> None:  # noqa: ANN001
    from speech.audio import load_audio

    x = (load_audio(question_wav) * 32767).astype(np.int16)
    pad = np.zeros(16000, np.int16)
    x = np.concatenate([pad, x, pad])
    for i in range(0, len(x), 8000):  # 0.5 s chunks at 16 kHz, int16 like gradio's numpy
        ctrl.hands_free(16000, x[i:i + 8000])
    heard = ctrl.hands_free_stop(timeout_s=60)
    assert abs(ctrl.hf_seconds - len(x) / 16000) < 0.01
    accepted = [h for h in heard if h.accepted]
    assert [h.text for h in accepted] == ["copilot what phase are we in"]


def test_state_collects_messages_and_renders() -> None:
    from copilot.ui_plot import timeline_figure
    from copilot.ui_state import UIState, alerts_html, answer_html, steps_html

    st = UIState()
    st.on_message(Transcript(t_ns=1, trace_id="u1", text="copilot what phase", confidence=0.9,
                             start_s=1.0, end_s=2.0))
    st.on_message(Transcript(t_ns=1, trace_id="u2", text="", confidence=0.1, start_s=3.0,
                             end_s=4.0, accepted=False))
    for t, cap in ((0.0, "phase: Preparation (0.9)"), (5.0, "phase: CalotTriangleDissection "
                                                             "(0.8)")):
        st.on_message(OverlayUpdate(t_ns=1, trace_id="f", media_t_s=t, frame_id=int(t),
                                    annotations=AnnotationSet("vision", 0, 0, caption=cap)))
    with st.origin("mic"):
        st.on_message(Answer(t_ns=2, trace_id="u1", media_t_s=2.0, question="what phase",
                             text="Calot <triangle> dissection", confidence=0.8,
                             steps=[{"claim": "Phase seen", "ok": True,
                                     "evidence": {"observations": [
                                         {"name": "CalotTriangleDissection", "t_s": 5.0,
                                          "score": 0.8}]}}]))
    st.on_message(Alert(t_ns=3, trace_id="a", media_t_s=6.0, rule="bleeding",
                        text="Bleeding in view"))
    snap = st.snapshot()
    assert [i.kind for i in snap["items"]] == ["answer", "alert"]
    assert snap["items"][0].origin == "mic" and snap["items"][1].origin == "vision"
    assert snap["chatter"] == 1 and snap["heard"][0].text == "copilot what phase"
    assert [p[2] for p in snap["timeline"]] == ["Preparation", "CalotTriangleDissection"]
    h = answer_html(snap["items"][0])
    assert "&lt;triangle&gt;" in h and "<triangle>" not in h  # escaped
    assert "CalotTriangleDissection@5.0s" in steps_html(snap["items"][0].steps)
    assert "OPEN" in alerts_html(snap["items"])
    assert st.acknowledge().rule == "bleeding"
    assert "acknowledged" in alerts_html(st.snapshot()["items"])
    fig = timeline_figure(st.snapshot(), 8.0)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"

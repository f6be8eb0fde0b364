"""The bad-input corpus, generated here: every case ends in a graceful result (exit 0 and the
frames written) or one ``error:`` line on stderr with exit code 2, never a traceback.

Videos: zero-byte, random bytes, an MP4 cut at half (index at the end, and index first),
variable frame rate, 1x1 (libx264 accepts it, as 4:4:4), 1921x1081, 4K, grayscale (FFV1 gray).
Audio (``--audio`` with a video): 8 / 44.1 / 48 kHz stereo, clipped, silent, zero samples,
zero bytes. Questions (``copilot ask``): empty, very long, non-English. Configuration
(``copilot run --config``) and knowledge files (``copilot ask --knowledge``): malformed.
Live streams are in test_stream_reconnect.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from tests.reliability import corpus as C
from tests.reliability.conftest import N_FRAMES, assert_clean_error


def _mp4_info(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a video file, decoded for real."""
    with av.open(str(path)) as c:
        n = sum(1 for _ in c.decode(video=0))
        s = c.streams.video[0]
        return n, s.codec_context.width, s.codec_context.height


def _assert_ok(r, frames: int) -> None:
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, (r.stdout[-500:], r.stderr[-1000:])
    assert f"frames: {frames} in, {frames} out" in r.stdout, r.stdout


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    (d / "zero.mp4").write_bytes(b"")
    (d / "random.mp4").write_bytes(np.random.default_rng(5011).bytes(50_000))
    C.write_video(d / "whole.mp4", (160, 120), 50)
    C.truncated_video(d / "whole.mp4", d / "cut_index_last.mp4")
    C.faststart_video(d / "whole_fs.mp4", (160, 120), 50)
    C.truncated_video(d / "whole_fs.mp4", d / "cut_index_first.mp4")
    C.vfr_video(d / "vfr.mp4")
    C.write_video(d / "1x1.mp4", (1, 1), 10)
    C.write_video(d / "odd.mp4", (1921, 1081), 4)
    C.write_video(d / "4k.mp4", (3840, 2160), 3)
    C.gray_video(d / "gray.mkv")
    for rate in (8000, 44100, 48000):
        C.write_audio(d / f"stereo_{rate}.wav", rate, 2.0)
    C.write_audio(d / "clipped.wav", 44100, 2.0, kind="clipped")
    C.write_audio(d / "silent.wav", 48000, 2.0, kind="silent")
    C.write_audio(d / "no_samples.wav", 16000, 0.0, kind="empty")
    (d / "zero.wav").write_bytes(b"")
    return d


# ------------------------------------------------------------------------------ videos
@pytest.mark.parametrize("name,must", [
    ("zero.mp4", "empty (0 bytes)"),
    ("random.mp4", "cannot open video"),
    ("cut_index_last.mp4", "cannot open video"),
])
def test_undecodable_video_one_line_exit_2(corpus, tmp_path, run_main, name, must):
    r = run_main("run", str(corpus / name), "--out", str(tmp_path / "o"), "--vision", "none")
    assert_clean_error(r, must, name)


def test_cut_file_keeps_its_decodable_frames(corpus, tmp_path, run_main):
    r = run_main("run", str(corpus / "cut_index_first.mp4"), "--out", str(tmp_path / "o"),
                 "--vision", "heuristic")
    line = assert_clean_error(r, "cut or corrupt", "decodable frames")
    n = int(line.split("wrote the ")[1].split()[0])
    assert 0 < n < 50
    assert _mp4_info(tmp_path / "o" / "annotated.mp4")[0] == n


def test_variable_frame_rate_keeps_each_frames_time(corpus, tmp_path, run_main):
    _, pts = C.vfr_video(tmp_path / "vfr.mp4")
    out = tmp_path / "o"
    r = run_main("run", str(corpus / "vfr.mp4"), "--out", str(out), "--vision", "heuristic",
                 "--trace", str(out / "trace.jsonl"))
    _assert_ok(r, len(pts))
    spans = [json.loads(x) for x in (out / "trace.jsonl").read_text().splitlines()]
    times = [s["media_t_s"] for s in spans if (s["stage"], s["name"]) == ("decode", "frame")]
    assert times == pytest.approx(pts, abs=1e-3)  # 20 / 40 / 80 ms gaps, not 1 / fps
    assert _mp4_info(out / "annotated.mp4")[0] == len(pts)


@pytest.mark.parametrize("name,frames,size", [
    ("1x1.mp4", 10, (1, 1)),
    ("odd.mp4", 4, (1921, 1081)),
    ("4k.mp4", 3, (3840, 2160)),
    ("gray.mkv", 25, (160, 120)),
])
def test_odd_sizes_and_gray_run_through(corpus, tmp_path, run_main, name, frames, size):
    out = tmp_path / "o"
    r = run_main("run", str(corpus / name), "--out", str(out), "--vision", "auto")
    _assert_ok(r, frames)
    assert _mp4_info(out / "annotated.mp4") == (frames, *size)


def test_gray_source_frames_are_rgb(corpus):
    from vision.sources import open_source

    with av.open(str(corpus / "gray.mkv")) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "gray"
    for backend in ("pyav", "opencv"):
        with open_source(corpus / "gray.mkv", backend) as src:
            frames = [rgb for _, _, rgb in src]
        assert len(frames) == 25
        assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for f in frames)
        f = frames[3].astype(int)
        assert np.abs(f[..., 0] - f[..., 1]).max() <= 2  # grey stays grey


def test_no_analysis_means_no_waiting(feed, tmp_path, run_main):
    from copilot.session import read_session

    out = tmp_path / "o"
    r = run_main("run", str(feed), "--out", str(out), "--vision", "none", "--speech", "off",
                 "--max-seconds", "0.3")
    _assert_ok(r, 3)
    end = read_session(out / "session.jsonl").first("end")
    assert end["analysis_skipped"] == 0  # nothing analyses, so nothing is waited for


# ------------------------------------------------------------------------------- audio
@pytest.mark.parametrize("name", ["stereo_8000.wav", "stereo_44100.wav", "stereo_48000.wav",
                                  "clipped.wav", "silent.wav"])
def test_odd_audio_is_listened_to(corpus, feed, tmp_path, run_main, name):
    from copilot.session import read_session

    out = tmp_path / "o"
    r = run_main("run", str(feed / "video.mp4"), "--audio", str(corpus / name), "--out",
                 str(out), "--vision", "heuristic")
    _assert_ok(r, N_FRAMES)
    end = read_session(out / "session.jsonl").first("end")
    # 2 s at 16 kHz in 512-sample chunks: the listener heard all of it
    assert end["health"]["speech"]["processed"] == 63
    assert end["health"]["speech"]["errors"] == 0


@pytest.mark.parametrize("name,must", [("no_samples.wav", "zero samples"),
                                       ("zero.wav", "empty file")])
def test_empty_audio_one_line_exit_2_video_still_written(corpus, feed, tmp_path, run_main,
                                                         name, must):
    out = tmp_path / "o"
    r = run_main("run", str(feed / "video.mp4"), "--audio", str(corpus / name), "--out",
                 str(out), "--vision", "heuristic")
    assert_clean_error(r, must)
    assert _mp4_info(out / "annotated.mp4")[0] == N_FRAMES


def test_audio_loader_reports_what_it_read(corpus):
    from speech.audio import check_audio, load_audio_with_info

    for rate in (8000, 44100, 48000):
        x, info = load_audio_with_info(corpus / f"stereo_{rate}.wav")
        assert (info.source_rate, info.source_channels) == (rate, 2)
        assert len(x) == 32000 and x.dtype == np.float32
        # the 440 Hz (left) and 660 Hz (right) tones both survive the mono mix + resampling
        spec = np.abs(np.fft.rfft(x))
        peaks = sorted(np.argsort(spec)[-2:] * 16000 / len(x))
        assert peaks == pytest.approx([440, 660], abs=2)
    x, info = load_audio_with_info(corpus / "clipped.wav")
    assert info.clipped_fraction > 0.5 and np.abs(x).max() <= 1.01
    x, _ = load_audio_with_info(corpus / "silent.wav")
    assert check_audio(x) == "silence (no signal)"


# ----------------------------------------------------------------------------- questions
@pytest.mark.parametrize("question,extra", [
    ("", ["--no-semantic"]),
    ("what lies behind the duodenum " * 700, ["--no-semantic"]),  # 21 000 characters
    ("¿Qué estructura está detrás del duodeno?", []),
    ("胆囊管在哪里？", []),
    ("\x00\x1b[31m copilot \u202e what phase", ["--no-semantic"]),
])
def test_odd_questions_get_an_answer_or_an_abstention(run_main, question, extra):
    r = run_main("ask", question, "--json", *extra)
    assert "Traceback" not in r.stderr, r.stderr[-2000:]
    assert r.returncode == 0, r.stderr[-500:]
    ans = json.loads(r.stdout)
    assert ans["answer"]
    assert ans["abstained"] is True  # none of these is a question the copilot can answer


# ---------------------------------------------------------------------------- config
def test_malformed_config_names_file_and_line(feed, tmp_path, run_main):
    bad = tmp_path / "bad.yaml"
    bad.write_text("vision: heuristic\nmax_seconds: 3\nfaults: [vision:raise\n")
    r = run_main("run", str(feed), "--config", str(bad))
    line = assert_clean_error(r, "bad.yaml")
    assert "line 4" in line or "line 3" in line
    for text, must in (("- a list\n", "mapping"), ("no_such_option: 1\n", "no_such_option")):
        bad.write_text(text)
        assert_clean_error(run_main("run", str(feed), "--config", str(bad)), must)
    assert_clean_error(run_main("run", str(feed), "--config", str(tmp_path / "nope.yaml")),
                       "not found")


@pytest.mark.parametrize("text,key", [("max_seconds: abc\n", "max_seconds"),
                                      ("hang_s: fast\n", "hang_s"),
                                      ("stale_after: x\n", "stale_after"),
                                      ("vision: [1, 2]\n", "vision")])
def test_config_value_of_the_wrong_type(feed, tmp_path, run_main, text, key):
    bad = tmp_path / "typed.yaml"
    bad.write_text("vision: heuristic\n" + text)
    r = run_main("run", str(feed), "--out", str(tmp_path / "o"), "--speech", "off",
                 "--config", str(bad))
    assert_clean_error(r, "typed.yaml", key, "line 2")


# ----------------------------------------------------------------------- knowledge files
def _ask_with(run_main, path: Path):
    return run_main("ask", "what lies behind D3?", "--no-semantic", "--knowledge", str(path))


def test_knowledge_file_errors_name_the_file(tmp_path, run_main):
    obo = tmp_path / "bad.obo"
    obo.write_text("format-version: 1.2\n[Term]\nid: X\nname\n")
    assert_clean_error(_ask_with(run_main, obo), "bad.obo", "line 4")
    other = tmp_path / "notes.txt"
    other.write_text("x\n")
    assert_clean_error(_ask_with(run_main, other), "notes.txt")
    assert_clean_error(_ask_with(run_main, tmp_path / "missing.yaml"), "missing.yaml")


@pytest.mark.parametrize("name,text,line", [
    ("bad.yaml", "entities:\n  foo: [unclosed\n", "line 3"),
    ("bad.ttl", "@prefix ex: <http://x/> .\nex:a ex:b ex:c\nex:d ex:e .\n", "line 3"),
    ("shape.yaml", "entities:\n  - 1\nfacts: 5\n", "line 2"),
])
def test_malformed_knowledge_file_one_line_with_line_number(tmp_path, run_main, name, text,
                                                           line):
    p = tmp_path / name
    p.write_text(text)
    assert_clean_error(_ask_with(run_main, p), name, line)

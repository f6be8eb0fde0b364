"""The learned denoiser: shipped model, streaming, real speech in OR noise, training command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech.denoise import Denoiser
from speech.errors import SpeechError
from speech.neural_denoise import DEFAULT_MODEL_DIR, NeuralDenoiser
from speech.testset import TEST_VOICES, active_rms, or_noise, speak

DELAY = 512  # samples


def _si_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio (dB) of ``est`` against ``ref``."""
    est = est.astype(np.float64)
    ref = ref.astype(np.float64)
    a = np.dot(est, ref) / np.dot(ref, ref)
    err = est - a * ref
    return float(10 * np.log10(np.sum((a * ref) ** 2) / np.sum(err ** 2)))


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, np.ndarray]:
    """(clean, mixture) at 0 dB: a test voice over OR noise of an unused seed."""
    clean = speak("copilot mute alerts for five minutes", TEST_VOICES[3])
    clean = np.concatenate([np.zeros(8000, np.float32), clean, np.zeros(8000, np.float32)])
    clean = clean * (0.25 / active_rms(clean))
    noise = or_noise(len(clean) / 16000, seed=5311)
    return clean, (clean + 0.25 * noise).astype(np.float32)


def _run(den: Denoiser, x: np.ndarray, chunk: int) -> np.ndarray:
    out = [den.process(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    out.append(den.process(np.zeros(DELAY, np.float32)))  # flush the delay
    return np.concatenate(out)[DELAY:DELAY + len(x)]


def test_shipped_model_is_there_with_its_training_record() -> None:
    for f in ("model.onnx", "config.json", "metrics.json"):
        assert (DEFAULT_MODEL_DIR / f).is_file(), f


def test_learned_denoiser_raises_si_sdr_of_real_speech_in_or_noise(noisy) -> None:  # noqa: ANN001
    clean, mix = noisy
    before = _si_sdr(mix, clean)
    neural = _si_sdr(_run(NeuralDenoiser(), mix, 512), clean)
    wiener = _si_sdr(_run(Denoiser(), mix, 512), clean)
    assert neural > before + 5.0, (before, neural)
    assert neural > wiener, (wiener, neural)


@pytest.mark.parametrize("kind", [NeuralDenoiser, Denoiser])
def test_streaming_output_does_not_depend_on_chunk_size(noisy, kind) -> None:  # noqa: ANN001
    _, mix = noisy
    a = _run(kind(), mix, 512)
    b = _run(kind(), mix, 160)
    assert len(a) == len(mix)
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_noise_alone_is_attenuated() -> None:
    noise = 0.1 * or_noise(3.0, seed=5312)
    out = _run(NeuralDenoiser(), noise, 512)
    assert np.sqrt(np.mean(out ** 2)) < 0.3 * np.sqrt(np.mean(noise ** 2))


def test_reset_clears_the_state(noisy) -> None:  # noqa: ANN001
    _, mix = noisy
    d = NeuralDenoiser()
    a = _run(d, mix, 512)
    d.reset()
    np.testing.assert_allclose(_run(d, mix, 512), a, atol=1e-5)


def test_missing_or_corrupt_model_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(SpeechError, match="not found"):
        NeuralDenoiser(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(SpeechError, match="cannot load"):
        NeuralDenoiser(tmp_path)


def test_training_command_writes_a_verified_model_the_recogniser_loads(tmp_path: Path) -> None:
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import PocketsphinxASR

    out = tmp_path / "dn"
    r = subprocess.run([sys.executable, "-m", "speech.train_denoiser", "--out", str(out),
                        "--speech", "24", "--noise", "6", "--steps", "4", "--hidden", "16",
                        "--noise-models", "both"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote" in r.stdout
    for f in ("model.onnx", "config.json", "metrics.json"):
        assert (out / f).is_file()
    asr = PocketsphinxASR(catalogue_grammar(), denoise="on", denoiser=str(out))
    tr = asr.transcribe(np.zeros(16000, np.float32))
    assert tr.text == "" or not tr.accepted


def test_training_command_bad_noise_dir_exits_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "speech.train_denoiser", "--out",
                        str(tmp_path / "x"), "--noise-dir", str(tmp_path / "missing")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "not a folder" in r.stderr


def test_unknown_denoiser_is_a_speech_error(tmp_path: Path) -> None:
    from copilot.cli_speech import catalogue_grammar
    from speech.asr import PocketsphinxASR

    with pytest.raises(SpeechError, match="unknown denoiser"):
        PocketsphinxASR(catalogue_grammar(), denoiser=str(tmp_path))

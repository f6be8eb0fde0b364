"""Optional backends with tiny random models built here from installed packages (no download):
faster-whisper (a random Whisper converted to CTranslate2) and Piper (a random ONNX voice)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from speech.errors import SpeechError
from speech.testset import TEST_VOICES, make_sample


def _bytes_to_unicode() -> list[str]:
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


@pytest.fixture(scope="session")
def tiny_whisper_dir(tmp_path_factory) -> Path:
    """A random 1-layer Whisper (d_model 64) with a byte-level tokenizer, as CTranslate2."""
    pytest.importorskip("faster_whisper")
    ctranslate2 = pytest.importorskip("ctranslate2")
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    out = tmp_path_factory.mktemp("whisper")
    vocab = {ch: i for i, ch in enumerate(_bytes_to_unicode())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                "<|translate|>", "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>",
                "<|notimestamps|>"] + [f"<|{i * 0.02:.2f}|>" for i in range(1501)]
    tok.add_special_tokens([AddedToken(s, special=True) for s in specials])
    hf = out / "hf"
    hf.mkdir()
    tok.save(str(hf / "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    cfg = transformers.WhisperConfig(
        vocab_size=tok.get_vocab_size(), num_mel_bins=80, d_model=64, encoder_layers=1,
        decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
        encoder_ffn_dim=128, decoder_ffn_dim=128, max_source_positions=1500,
        max_target_positions=448, pad_token_id=eot, bos_token_id=eot, eos_token_id=eot,
        decoder_start_token_id=tok.token_to_id("<|startoftranscript|>"), suppress_tokens=[],
        begin_suppress_tokens=[eot])
    torch.manual_seed(0)
    model = transformers.WhisperForConditionalGeneration(cfg).eval()
    with torch.no_grad():  # make end-of-text unlikely so the random model emits tokens
        model.model.decoder.embed_tokens.weight[eot].zero_()
        model.model.decoder.embed_tokens.weight[:256] *= 3.0
    model.save_pretrained(str(hf))
    ct2 = out / "ct2"
    ctranslate2.converters.TransformersConverter(
        str(hf), copy_files=["tokenizer.json"]).convert(str(ct2), force=True)
    return ct2


def test_speech_faster_whisper_tiny_model(tiny_whisper_dir):
    from speech.asr import create_asr

    asr = create_asr("faster-whisper", model_dir=tiny_whisper_dir, no_speech_threshold=None,
                     vocabulary=["copilot", "cystic", "duct"], min_avg_logprob=-1.0)
    assert asr.prompt == "copilot, cystic, duct"
    s = make_sample("copilot stop", TEST_VOICES[0], 15.0, seed=1)
    results = []
    # segments are consumed inside the worker thread that calls transcribe
    th = threading.Thread(target=lambda: results.append(asr.transcribe(s.audio, start_s=2.0)))
    th.start()
    th.join(60)
    tr = results[0]
    assert tr.backend == "faster-whisper"
    assert tr.scores["segments"] >= 1 and np.isfinite(tr.scores["avg_logprob"])
    assert tr.start_s == 2.0 and tr.end_s == pytest.approx(2.0 + len(s.audio) / 16000)
    # a random model is unsure: its output is rejected, deterministically (temperature 0)
    assert not tr.accepted and tr.reason
    again = asr.transcribe(s.audio, start_s=2.0)
    assert again.text == tr.text and again.scores == tr.scores
    empty = asr.start().finish()
    assert not empty.accepted and empty.reason == "no audio"


def test_speech_faster_whisper_bad_dir(tmp_path):
    from speech.asr import create_asr

    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(SpeechError, match="tokenizer.json"):
        create_asr("faster-whisper", model_dir=tmp_path)
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(SpeechError, match="cannot load"):
        create_asr("faster-whisper", model_dir=tmp_path)


@pytest.fixture(scope="session")
def tiny_piper_voice(tmp_path_factory) -> Path:
    """A random Piper-shaped ONNX voice: (input, input_lengths, scales) -> audio."""
    torch = pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("piper")

    class TinyVits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(64, 16)
            self.up = torch.nn.ConvTranspose1d(16, 1, kernel_size=256, stride=256)

        def forward(self, ids, lengths, scales):  # noqa: ANN001 - ONNX export signature
            h = self.emb(ids).transpose(1, 2) * scales[1] * (lengths > 0).float()
            return torch.tanh(self.up(h))  # (1, 1, n_ids * 256)

    torch.manual_seed(0)
    model = TinyVits().eval()
    path = out / "tiny.onnx"
    ids = torch.ones(1, 10, dtype=torch.long)
    torch.onnx.export(model, (ids, torch.tensor([10]), torch.tensor([0.667, 1.0, 0.8])),
                      str(path), input_names=["input", "input_lengths", "scales"],
                      output_names=["output"], dynamic_axes={"input": {1: "n"}, "output": {2: "t"}},
                      dynamo=False)
    phonemes = sorted(set("ðəkɪstɪkdʌktɪzaʊtlaɪndɹɛ ˈˌɑːiːuːæɔʃʒθŋjwhbpfvglmnrsz"))
    id_map = {"_": [0], "^": [1], "$": [2]} | {p: [i + 3] for i, p in enumerate(phonemes)}
    (out / "tiny.onnx.json").write_text(json.dumps({
        "audio": {"sample_rate": 16000}, "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8},
        "phoneme_id_map": id_map}))
    return path


def test_speech_piper_tiny_voice(tiny_piper_voice):
    from speech.tts import create_tts

    tts = create_tts("piper", model=tiny_piper_voice)
    ids = tts.ids("the cystic duct")
    assert ids[0] == 1 and ids[-1] == 2 and len(ids) > 10
    sp = tts.synthesize("the cystic duct is outlined")
    assert sp.rate == 16000
    n_ids = len(tts.ids("the cystic duct is outlined"))
    assert len(sp.audio) == n_ids * 256 and np.all(np.abs(sp.audio) <= 1)
    with pytest.raises(SpeechError, match="not found"):
        create_tts("piper", model=tiny_piper_voice.parent / "missing.onnx")


def test_speech_coqui_needs_its_extra():
    """Coqui TTS is not installable here without another torch: its backend says what to do."""
    import importlib.util

    from speech.tts import create_tts

    if importlib.util.find_spec("TTS") is not None:
        pytest.skip("coqui-tts is installed; its real test needs a model file")
    with pytest.raises(SpeechError, match="pip install"):
        create_tts("coqui", model="/nonexistent/model.pth")

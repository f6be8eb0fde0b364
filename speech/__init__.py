"""Audio sources, VAD, wake word, ASR, speaker check, TTS and audio output.

A leaf package: imports neither ``vision``, ``kg_reasoning`` nor ``copilot``; the recogniser's
vocabulary is handed in as data (``speech.grammar.GrammarSpec``).

- ``speech.audio``: ``load_audio`` (any file / rate / channels -> 16 kHz mono float32),
  ``FileSource``, ``PushSource`` (web UI chunks), ``MicrophoneSource`` (extra ``mic``).
- ``speech.vad``: ``SileroVAD`` (ONNX Runtime, 32 ms chunks), ``Segmenter``.
- ``speech.wakeword``: ``KeyphraseWakeWord`` (pocketsphinx), ``PushToTalk``.
- ``speech.asr``: ``PocketsphinxASR`` (grammar), ``FasterWhisperASR`` (extra ``whisper``),
  ``Transcript``; registry ``ASR_BACKENDS`` / ``create_asr`` (imports every backend). Its
  rooms: ``speech.asr_base`` (interface, registry), ``speech.asr_pocketsphinx`` +
  ``speech.ps_utterance``, ``speech.pocketsphinx_decoder`` (shared with the spotter),
  ``speech.snr_switch`` (raw / denoised front end), ``speech.asr_whisper``.
- ``speech.grammar``: ``GrammarSpec``; pronunciations in ``speech.pronunciation``.
- ``speech.moonshine``: ``MoonshineASR`` (tiny-en / base-en from the wheels, extra
  ``moonshine``; ONNX Runtime via ``speech.moonshine_model``, beam search constrained to the
  catalogue's sentences, ``speech.constrain``), ``speech.hybrid``: ``HybridASR`` (Moonshine +
  pocketsphinx);
  ``speech.defaults``: the measured default by name (``resolve_asr("default")``).
- ``speech.denoise`` / ``speech.neural_denoise``: streaming noise suppression in front of the
  recogniser and the spotter (Wiener filter; learned GRU gains, ``speech/models/denoiser``,
  trained by ``python -m speech.train_denoiser``).
- ``speech.listener``: ``Listener`` (VAD -> wake -> ASR -> speaker score).
- ``speech.speaker``: ``ResemblyzerEncoder``, ``VoicePrint``, ``SpeakerGate``,
  ``PyannoteEncoder`` / ``PyannoteDiarizer`` (optional, local dirs).
- ``speech.tts``: ``EspeakTTS``, ``PiperTTS``, ``CoquiTTS``; ``create_tts`` ("default":
  Piper ``en_US-joe-medium`` where extra ``voice-neural`` is installed, else espeak-ng).
- ``speech.audio_out``: ``AudioOut`` (priority, hold, barge-in, repeat); sinks in
  ``speech.sinks``, ``TimelineWavWriter`` in ``speech.timeline_wav``.
- ``speech.testset``: espeak-ng test voices and synthetic OR noise for tests / benchmarks;
  ``speech.natural``: Piper joe and held-out espeak-ng voices (natural-voice dev / test).
"""

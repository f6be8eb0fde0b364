"""Real espeak-ng speech in OR noise through the real pocketsphinx grammar recogniser."""

from __future__ import annotations

import numpy as np
import pytest

from speech.asr import PocketsphinxASR, create_asr
from speech.errors import SpeechError
from speech.grammar import GrammarSpec
from speech.listener import Listener
from speech.vad import Segmenter, SileroVAD


def test_speech_grammar_covers_catalogue(grammar, catalogue):
    jsgf = grammar.to_jsgf()
    assert jsgf.startswith("#JSGF V1.0;")
    assert "<structure> =" in jsgf and "cystic duct" in jsgf
    # every catalogue sentence is a grammar sentence, and chatter is not
    for text, _intent, _slots in catalogue.expand(max_per_intent=3, wake_word=True):
        assert grammar.matches(text), text
    assert not grammar.matches("copilot make me a coffee")
    assert not grammar.matches("outline the cystic duct in")


def test_speech_oov_words_get_pronunciations(asr):
    # surgical words missing from CMUdict come from the curated lexicon / espeak-ng
    assert "hepatocystic" in asr.extra_words
    assert asr.extra_words["jejunum"].split()[0] == "JH"


def test_speech_commands_recognised_in_noise(asr_ptt, command_samples, catalogue):
    correct = 0
    for s in command_samples:
        tr = asr_ptt.transcribe(s.audio)
        parse = catalogue.parse(tr.text) if tr.accepted else None
        got = (parse.intent, parse.slots) if parse else None
        correct += got == s.truth
        assert 0.0 <= tr.confidence <= 1.0
        assert tr.end_s > tr.start_s
    assert correct >= len(command_samples) - 1, f"{correct}/{len(command_samples)} at 15 dB"


def test_speech_chatter_rejected_commands_kept(asr, chatter_samples, command_samples):
    """The default decision (grammar wake slot AND keyphrase spotter) rejects chatter.

    The grammar's wake slot alone lets a few chatter lines through ("could you ..." decoded
    as "copilot ..."): about 1 in 100 on the benchmark, hence the spotter.
    """
    from speech.listener import decide_wake
    from speech.wakeword import DEFAULT_THRESHOLD, KeyphraseWakeWord

    ww = KeyphraseWakeWord(threshold=DEFAULT_THRESHOLD)
    grammar_only = 0
    for s in chatter_samples:
        tr = asr.transcribe(s.audio)
        grammar_only += tr.accepted
        tr = decide_wake(tr, ww.detect(s.audio).detected, "both")
        assert not tr.accepted, (s.text, tr.text)
        assert tr.reason
    assert grammar_only <= 1
    kept = [decide_wake(asr.transcribe(s.audio), ww.detect(s.audio).detected, "both")
            for s in command_samples]
    pairs = zip(kept, command_samples, strict=True)
    assert sum(t.accepted and t.text == s.text for t, s in pairs) >= 2


def test_speech_listener_streams_utterances(asr, command_samples, chatter_samples):
    """Commands and chatter in one stream: VAD finds each, only commands are accepted."""
    gap = np.zeros(8000, np.float32)
    stream = np.concatenate([command_samples[0].audio, gap, chatter_samples[0].audio, gap,
                             command_samples[2].audio])
    listener = Listener(Segmenter(SileroVAD()), asr)
    trs = listener.process(stream)
    accepted = [t for t in trs if t.accepted]
    assert len(trs) >= 3
    assert [t.text for t in accepted] == [command_samples[0].text, command_samples[2].text], [
        (t.text, t.reason) for t in trs]
    assert accepted[0].end_s < accepted[1].start_s
    assert listener.real_time_factor > 0
    assert len(listener.stats.finals) == len(trs)


def test_speech_asr_bad_config():
    with pytest.raises(SpeechError, match="unknown ASR backend"):
        create_asr("nope")
    with pytest.raises(SpeechError, match="no spoken forms"):
        GrammarSpec(["outline the {structure}"], {})
    with pytest.raises(SpeechError, match="grammar search"):
        PocketsphinxASR(GrammarSpec.from_sentences(["stop"]), search="ngram")
    with pytest.raises(SpeechError, match="not a CTranslate2"):
        create_asr("faster-whisper", model_dir="/nonexistent")


def test_speech_asr_silence_and_noise_only(asr):
    tr = asr.transcribe(np.zeros(16000, np.float32))
    assert not tr.accepted
    rng = np.random.default_rng(0)
    tr = asr.transcribe((0.05 * rng.standard_normal(24000)).astype(np.float32))
    assert not tr.accepted


def test_speech_small_grammar_without_competitors():
    g = GrammarSpec.from_sentences(["stop", "repeat that"])
    asr = PocketsphinxASR(g)
    from speech.testset import TEST_VOICES, make_sample

    s = make_sample("copilot repeat that", TEST_VOICES[3], 20.0, seed=9)
    tr = asr.transcribe(s.audio)
    assert tr.accepted and tr.text == "copilot repeat that"


def test_speech_wake_policies():
    from speech.asr import Transcript
    from speech.listener import decide_wake

    def tr(text, slot, body):
        return Transcript(text, 1.0, accepted=slot and body,
                          scores={"wake_slot": float(slot), "body_complete": float(body)})

    # wake slot lost to a chatter word, but the keyphrase spotter heard "copilot": rescued
    t = decide_wake(tr("keep show overlays", False, True), True, "either")
    assert t.accepted and t.text == "copilot show overlays"
    assert not decide_wake(tr("keep show overlays", False, True), True, "both").accepted
    assert not decide_wake(tr("keep show overlays", False, True), False, "either").accepted
    # chatter forced into "copilot ..." but no wake word spotted
    t = decide_wake(tr("copilot show overlays", True, True), False, "both")
    assert not t.accepted and t.reason == "wake word not heard"
    assert decide_wake(tr("copilot show overlays", True, True), False, "either").accepted
    assert decide_wake(tr("the show overlays", False, True), True, "keyphrase").accepted
    assert decide_wake(tr("copilot show", True, False), None).accepted is False
    # a strong wake slot stands in for a spotter that missed; a weak one does not
    strong = tr("copilot show overlays", True, True)
    strong.scores["wake_score"] = -40.0
    assert decide_wake(strong, False, "both", rescue=-54.0).accepted
    weak = tr("copilot show overlays", True, True)
    weak.scores["wake_score"] = -64.0
    assert not decide_wake(weak, False, "both", rescue=-54.0).accepted
    assert not decide_wake(tr("copilot show overlays", True, True), False, "both",
                           rescue=-54.0).accepted  # no score (e.g. push-to-talk grammar)
    with pytest.raises(SpeechError, match="wake policy"):
        Listener(Segmenter(SileroVAD()), None, wake_policy="maybe")  # type: ignore[arg-type]


def test_speech_fsg_is_the_grammar_language(grammar, catalogue):
    """The minimal word automaton accepts the catalogue's sentences, not others; arcs sum to 1."""
    start, final, trans = grammar.to_fsg()
    out: dict[int, list[tuple]] = {}
    for t in trans:
        out.setdefault(t[0], []).append(t)
    for st, arcs in out.items():
        assert abs(sum(a[2] for a in arcs) - 1.0) < 1e-9, st

    def accepts(words: list[str]) -> bool:
        states = {start}
        for w in [*words, None]:
            closure, todo = set(states), list(states)
            while todo:  # follow epsilon arcs
                for a in out.get(todo.pop(), []):
                    if len(a) == 3 and a[1] not in closure:
                        closure.add(a[1])
                        todo.append(a[1])
            if w is None:
                return final in closure
            states = {a[1] for s in closure for a in out.get(s, []) if len(a) == 4 and a[3] == w}
            if not states:
                return False
        return False

    sents = catalogue.expand(max_per_intent=5, wake_word=True)
    assert all(accepts(t.split()) for t, _, _ in sents)
    assert accepts("the what phase are we in".split())  # a competitor word in the wake slot
    assert not accepts("copilot outline the cystic duct in".split())
    assert not accepts("copilot make me a coffee".split())
    assert len({a[0] for a in trans}) < 2000  # shared prefixes and suffixes, not 21k paths


def test_speech_second_pass_option():
    """With ``second_pass`` (off by default) a wider decode runs only when the first finds no
    path."""
    from speech.testset import TEST_VOICES, make_sample

    asr = PocketsphinxASR(GrammarSpec.from_sentences(["stop", "repeat that"]), second_pass=True)
    s = make_sample("copilot repeat that", TEST_VOICES[1], 15.0, seed=5001)
    tr = asr.transcribe(s.audio)
    assert tr.accepted and tr.text == "copilot repeat that"
    assert tr.scores["second_pass"] == 0.0
    tr = asr.transcribe(np.zeros(8000, np.float32))
    assert not tr.accepted and "second_pass" in tr.scores


def test_speech_grammar_completion(grammar):
    """Final / complete / prefix states of hypotheses in the catalogue grammar."""
    assert grammar.completion("copilot hide the outline") == "final"
    assert grammar.completion("copilot outline the liver in red") == "final"  # "please" only
    assert grammar.completion("the outline the liver in red please") == "final"  # competitor
    assert grammar.completion("copilot outline the liver") == "complete"  # "... in red"
    assert grammar.completion("copilot mute alerts") == "complete"  # "... for N minutes"
    assert grammar.completion("copilot outline the") == "prefix"
    assert grammar.completion("copilot make me a coffee") == "none"
    assert grammar.completion("") == "prefix" and not grammar.is_final("copilot")
    assert grammar.is_final("copilot why")


def test_speech_listener_ends_final_commands_early(asr, command_samples):
    """A final command ends before the VAD hang-over; the transcript is the same."""
    s = command_samples[2]  # "copilot is the critical view of safety reached": final
    assert asr.grammar.is_final(s.text)
    stream = np.concatenate([s.audio, np.zeros(16000, np.float32)])
    out = {}
    for early in (True, False):
        kw = {} if early else {"early_end_s": None, "final_tail_s": None,
                               "complete_tail_s": None}
        lis = Listener(Segmenter(SileroVAD()), asr, **kw)
        trs = lis.process(stream)
        assert [t.text for t in trs if t.accepted] == [s.text], [(t.text, t.reason) for t in trs]
        out[early] = (lis.stats.early_ends, lis.stats.closed_at_s[0])
    assert out[True][0] == 1 and out[False][0] == 0
    # closed at least two 32 ms chunks sooner, and not before the speech ended
    assert out[True][1] <= out[False][1] - 0.064
    assert out[True][1] >= s.speech_end_s
    part = asr.start()
    assert part.partial() == ("", 0.0)
    part.finish()


def test_speech_segmenter_end_now():
    """``end_now`` closes an open utterance once; nothing to close afterwards."""
    from speech.vad import EnergyVAD

    seg = Segmenter(EnergyVAD(-40.0), min_on=1, preroll_s=0.032)
    loud = (0.3 * np.sin(np.arange(512) / 5.0)).astype(np.float32)
    assert [e.kind for e in seg.push(loud)] == ["start"]
    seg.push(np.zeros(512, np.float32))
    assert seg.silent_chunks == 1
    ev = seg.end_now()
    assert [e.kind for e in ev] == ["end"] and ev[0].t_s == pytest.approx(0.032)
    assert seg.end_now() == [] and seg.silent_chunks == 0


def test_speech_denoise_auto_switches_on_snr(asr, asr_ptt):
    """The default front end filters noisy utterances only; the wake slot gets a score."""
    from speech.asr import SNR_SWITCH_DB, estimate_snr_db
    from speech.testset import TEST_VOICES, make_sample

    assert asr.denoise == "auto"
    noisy = make_sample("copilot show the coverage map", TEST_VOICES[2], 5.0, seed=5003)
    clean = make_sample("copilot show the coverage map", TEST_VOICES[2], 20.0, seed=5003)
    assert estimate_snr_db(noisy.audio[:12800]) < SNR_SWITCH_DB < estimate_snr_db(
        clean.audio[:12800])
    t_noisy, t_clean = asr.transcribe(noisy.audio), asr.transcribe(clean.audio)
    assert t_noisy.scores["denoised"] == 1.0 and t_clean.scores["denoised"] == 0.0
    assert t_clean.scores["front_switched"] == 0.0 and "front_switched" not in t_noisy.scores
    assert t_clean.accepted and t_clean.text == clean.text
    assert -80.0 < t_clean.scores["wake_score"] <= 0.0
    assert "wake_score" not in asr_ptt.transcribe(clean.audio).scores
    assert asr.transcribe(np.zeros(600, np.float32)).scores["denoised"] == 0.0  # too short
    with pytest.raises(SpeechError, match="denoise mode"):
        PocketsphinxASR(GrammarSpec.from_sentences(["stop"]), denoise="maybe")


def test_speech_listener_wake_rescue(asr, command_samples):
    """A spotter that cannot fire: the strong wake slot still accepts the command (also once
    the app has wrapped ``wake`` in a proxy); without the rescue it is rejected."""
    from speech.wakeword import DEFAULT_RESCUE, KeyphraseWakeWord

    class Proxy:  # like copilot.faults.Guarded: attribute pass-through
        def __init__(self, obj):
            self._obj = obj

        def __getattr__(self, name):
            return getattr(self._obj, name)

    deaf = KeyphraseWakeWord(threshold=0.99)
    s = command_samples[2]
    stream = np.concatenate([s.audio, np.zeros(8000, np.float32)])
    lis = Listener(Segmenter(SileroVAD()), asr, deaf)
    lis.wake = Proxy(deaf)
    trs = lis.process(stream)
    assert [t.text for t in trs if t.accepted] == [s.text], [(t.text, t.reason) for t in trs]
    assert all(t.wake is False for t in trs)
    assert max(t.scores.get("wake_score", -1e9) for t in trs) >= DEFAULT_RESCUE
    off = Listener(Segmenter(SileroVAD()), asr, deaf, wake_rescue=None).process(stream)
    assert not any(t.accepted for t in off)
    assert any(t.reason == "wake word not heard" for t in off)


def test_speech_noise_rise_share():
    """The removed share lines the input up with the suppressor's delayed output."""
    from speech.asr import _NoiseRise

    x = np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32)
    delayed = np.concatenate([np.zeros(512, np.float32), x[:-512]])
    same = _NoiseRise(512)
    same.add(x, delayed)  # output = input: nothing removed
    assert same.max_db == -np.inf
    tenth = _NoiseRise(512)
    for i in range(0, len(x), 700):  # any chunking
        tenth.add(x[i:i + 700], np.sqrt(0.1) * delayed[i:i + 700])
    assert tenth.max_db == pytest.approx(10 * np.log10(0.9), abs=0.05)  # 90 % removed


def test_speech_shadow_front_takes_over_when_noise_rises(grammar, catalogue):
    """Clean start, then hiss at -9 dB from 1 s into the command: the result of the denoised
    decoder running alongside the raw one (chosen on the clean start) is taken; the wake
    word keeps the score it got from the raw decoder, where it was spoken. (Which noise the
    switch pays off in is measured by the benchmarks, not asserted here.)"""
    from speech.asr import NOISE_RISE_DB
    from speech.testset import DEV_CHATTER_VOICES, DEV_VOICES, _pink, make_sample, speak

    text = "copilot outline the cystic duct in red"
    sp = speak(text, DEV_VOICES[2])
    sp = 0.25 * sp / np.sqrt(np.mean(sp[np.abs(sp) > 0.02 * np.abs(sp).max()] ** 2))
    x = np.concatenate([np.zeros(8000, np.float32), sp, np.zeros(8000, np.float32)])
    rng = np.random.default_rng(1)
    floor = _pink(len(x), rng)
    hiss = 0.09 * rng.standard_normal(len(x))
    hiss[:24000] = 0.0  # starts 1 s after the speech
    x = (x + 0.25 / 10 ** (25 / 20) * floor / np.std(floor) + hiss).astype(np.float32)
    room = make_sample("we should send this for histology", DEV_CHATTER_VOICES[-1], 15.0, 24242)
    got = {}
    for rise in (NOISE_RISE_DB, None):
        asr = PocketsphinxASR(grammar, noise_rise_db=rise)
        asr.warm_up(room.audio)
        got[rise] = asr.transcribe(x)
    shadow, raw = got[NOISE_RISE_DB], got[None]
    assert shadow.scores["front_switched"] == 1.0 and shadow.scores["denoised"] == 1.0
    assert shadow.scores["noise_rise_db"] >= NOISE_RISE_DB
    assert shadow.accepted and shadow.text == text
    assert "front_switched" not in raw.scores and raw.scores["denoised"] == 0.0
    assert shadow.scores["wake_score"] == raw.scores["wake_score"]

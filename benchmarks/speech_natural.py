"""Natural-voice part of the speech benchmark: per backend and voice family, dev and test.

    python -m benchmarks.speech_natural [--split dev|test|both] [--n 62] [--base-n 20]

Voice families (speech/natural.py): Piper ``en_US-joe-medium`` (several length / noise
scales) and held-out espeak-ng voices; dev and test differ in voice settings, sentences (the
catalogue's stratified commands, alternate ones per intent) and noise seeds; OR noise at
15 / 10 / 5 dB. Negatives: staff chatter (dev: DEV_CHATTER_VOICES + Piper dev settings, test:
CHATTER_VOICES + Piper test settings), the 71 s of real speech in ../shared/data/real/speech
and pyannote's sample.wav (segmented by the VAD).

Per utterance the raw outputs are recorded (pocketsphinx grammar decision, keyphrase spotter,
Moonshine free transcript, best catalogue sentence, margin, wake similarity) in a cache
(``/tmp/speech_natural/records_*.jsonl``); the decision rules are then scored offline: the
thresholds and the rule are chosen on dev, and reported on test.
"""

from __future__ import annotations

import copy
import io
import json
import math
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from copilot.stats import percentile
from speech.natural import (
    DEV_HARD_CHATTER,
    FAMILIES,
    PIPER_DEV,
    PIPER_TEST,
    cache_dir,
    natural_sample,
    voices,
)

SNRS = (15.0, 10.0, 5.0)
#: version of the Moonshine decoding in the records (2: punctuation tokens may not repeat
#: in the constrained search; version 1 beams could loop on them and find no sentence)
MS_VERSION = 2
SEED = {"dev": 31000, "test": 41000}


def split_sentences(cat, split: str, n: int | None = None) -> list:  # noqa: ANN001
    """Dev / test commands: the catalogue's stratified commands (10 per intent), alternate
    ones per intent (disjoint sentences), in round-robin order over the intents (so the
    first ``n`` cover every intent)."""
    sents = cat.expand(max_per_intent=10, wake_word=True, stratify=True)
    seen: dict[str, int] = {}
    ranked = []
    for t, intent, slots in sents:
        k = seen.get(intent, 0)
        seen[intent] = k + 1
        if (k % 2 == 0) == (split == "dev"):
            ranked.append((k, len(ranked), (t, intent, slots)))
    out = [x for _, _, x in sorted(ranked)]
    return out[:n] if n else out


class Backends:
    """The recognisers measured: pocketsphinx (default decision) and Moonshine tiny / base."""

    def __init__(self, sizes: tuple[str, ...] = ("tiny", "base")) -> None:
        from copilot.cli_speech import catalogue_grammar
        from speech.asr import PocketsphinxASR
        from speech.moonshine import MoonshineASR
        from speech.testset import DEV_CHATTER_VOICES, make_sample
        from speech.wakeword import DEFAULT_THRESHOLD, KeyphraseWakeWord

        self.ps = PocketsphinxASR(catalogue_grammar())
        self.ps.warm_up(make_sample("we should send this for histology", DEV_CHATTER_VOICES[-1],
                                    15.0, 4242).audio)
        self.kws = KeyphraseWakeWord(threshold=DEFAULT_THRESHOLD)
        self._grammar = catalogue_grammar(competitors=False)
        self._ms_cls = MoonshineASR
        self._ms: dict = {}

    @property
    def ms(self) -> dict:
        """Moonshine recognisers by size, built on first use (thresholds off: every score
        is recorded and the rule applied offline)."""
        return _LazyMs(self)

    def record(self, audio: np.ndarray, sizes: tuple[str, ...], ps: bool = True) -> dict:
        """Raw outputs of each backend on one utterance (``ps`` False: Moonshine only)."""
        from speech.listener import decide_wake
        from speech.wakeword import DEFAULT_RESCUE

        if not ps:
            return {"ms_v": MS_VERSION} | {s: self._ms_record(audio, s) for s in sizes}
        t0 = time.perf_counter()
        tw = self.ps.transcribe(audio)
        spot = self.kws.detect(audio).detected
        d = decide_wake(copy.deepcopy(tw), spot, "both", rescue=DEFAULT_RESCUE)
        rec = {"ps": {"text": d.text, "accepted": bool(d.accepted), "raw": tw.text,
                      "decode_s": time.perf_counter() - t0}, "spot": bool(spot)}
        rec["ms_v"] = MS_VERSION
        for s in sizes:
            rec[s] = self._ms_record(audio, s)
        return rec

    def _ms_record(self, audio: np.ndarray, size: str) -> dict:
        tr = self.ms[size].transcribe(audio)
        return {"free": tr.nbest[-1][0] if tr.nbest else "",
                "cmd": tr.text if tr.scores.get("in_catalogue") else "",
                "margin": tr.scores.get("margin", -1e9),
                "wake_sim": tr.scores.get("wake_sim", 0.0),
                "lf": tr.scores.get("lf", 0.0), "decode_s": tr.decode_s}


class _LazyMs:
    def __init__(self, be: Backends) -> None:
        self.be = be

    def __getitem__(self, size: str) -> object:
        be = self.be
        if size not in be._ms:
            be._ms[size] = be._ms_cls(be._grammar, size=size, min_margin=-math.inf,
                                      free_form=False)
        return be._ms[size]


def _load(path: Path) -> dict[str, dict]:
    """Records of ``path`` and of its worker files (``path.stem`` + ``_k``)."""
    out: dict[str, dict] = {}
    for p in [path, *sorted(path.parent.glob(path.stem + "_*.jsonl"))]:
        if p.exists():
            for line in p.read_text().splitlines():
                if line.strip():
                    r = json.loads(line)
                    old = out.get(r["id"])
                    if old is None or r.get("ms_v", 1) >= old.get("ms_v", 1):
                        out[r["id"]] = r
    return out


def collect(split: str, n: int | None, base_n: int, be: Backends | None = None,
            negatives: bool = True, snrs: tuple[float, ...] = SNRS,
            chatter_per_line: int = 2, worker: tuple[int, int] | None = None,
            cached_only: bool = False) -> list[dict]:
    """Records of ``split`` (commands of both families at every SNR, then negatives).

    ``worker`` (k, K): only items k, k + K, ... (parallel collection into
    ``records_<split>_<k>.jsonl``); the result then holds only those. ``cached_only``:
    no new decoding, the records already collected (the report says how many)."""
    from kg_reasoning.catalogue import load_catalogue
    from speech.testset import CHATTER_VOICES, DEV_CHATTER_VOICES, STAFF_CHATTER

    cat = load_catalogue()
    path = cache_dir() / f"records_{split}.jsonl"
    done = _load(path)
    be = be or Backends()
    out = []
    items = []
    sents = split_sentences(cat, split, n)
    for fi, fam in enumerate(FAMILIES):
        vs = voices(fam, split)
        for k, snr in enumerate(SNRS):
            if snr not in snrs:
                continue
            for i, (t, intent, slots) in enumerate(sents):
                uid = f"{split}/{fam}/{int(snr)}/{i}"
                seed = SEED[split] + 1000 * (3 * fi + k) + i
                items.append((uid, fam, snr, t, (intent, slots), vs[i % len(vs)], seed,
                              i < base_n and snr == 10.0))
    if negatives:
        cvs = (DEV_CHATTER_VOICES + PIPER_DEV) if split == "dev" else (CHATTER_VOICES[:3]
                                                                       + PIPER_TEST[:2])
        # (id tag, lines, seed offset, voice shift, base-en lines); the hard negatives are
        # dev only (speech.natural.DEV_HARD_CHATTER)
        negs = [("chatter", STAFF_CHATTER, 9000, 0, base_n // 2)]
        if split == "dev":
            negs.append(("hardchatter", DEV_HARD_CHATTER, 20000, 1, 0))
        for tag, lines, off, shift, n_base in negs:
            for i, t in enumerate(lines):
                for j in range(chatter_per_line):
                    v = cvs[(i + j + shift) % len(cvs)]
                    items.append((f"{split}/{tag}/{i}/{j}", "chatter", 15.0, t, None, v,
                                  SEED[split] + off + 10 * i + j, i < n_base))
    items.sort(key=_priority)
    if worker is not None:
        items = items[worker[0]::worker[1]]
        path = path.with_name(f"{path.stem}_{worker[0]}.jsonl")
    with path.open("a") as f:
        for uid, fam, snr, t, truth, v, seed, do_base in items:
            sizes = ("tiny", "base") if do_base else ("tiny",)
            r = done.get(uid)
            if cached_only and (r is None or r.get("ms_v", 1) != MS_VERSION):
                continue
            stale = r is not None and r.get("ms_v", 1) != MS_VERSION
            if stale and not cached_only and all(s in r for s in sizes):
                r = dict(r) | be.record(_sample(fam, t, v, snr, seed).audio, sizes, ps=False)
                f.write(json.dumps(r) + "\n")
                f.flush()
            elif not cached_only and (r is None or any(s not in r for s in sizes)):
                s = _sample(fam, t, v, snr, seed)
                r = {"id": uid, "family": fam, "snr": snr, "text": t, "voice": v.label,
                     "truth": truth, "seconds": round(s.speech_end_s - s.speech_start_s, 2),
                     **be.record(s.audio, sizes)}
                f.write(json.dumps(r) + "\n")
                f.flush()
                print(uid, r["ps"]["text"], "|", r["tiny"]["cmd"] or r["tiny"]["free"],
                      file=sys.stderr)
            out.append(r)
    return out


def _sample(fam: str, t: str, v: object, snr: float, seed: int) -> object:
    """The utterance of an item: ``t`` in voice ``v`` (Piper or espeak) in OR noise."""
    from speech.testset import Sample, make_sample, mix_at_snr, or_noise

    if fam == "chatter" and hasattr(v, "speed"):
        return make_sample(t, v, snr, seed)
    if fam == "chatter":
        from speech.natural import say

        sp = say(t, v)
        mix, a, b = mix_at_snr(sp, or_noise(len(sp) / 16000 + 1.5, seed=seed), snr)
        return Sample(mix, t, v, snr, a, b)  # type: ignore[arg-type]
    return natural_sample(t, v, snr, seed)


def _priority(item: tuple) -> tuple:
    """The targets first: 10 and 5 dB commands and the chatter by sentence index; 15 dB
    commands last."""
    uid, fam, snr = item[0], item[1], item[2]
    parts = uid.split("/")
    idx = int(parts[-2] if fam == "chatter" else parts[-1])
    return (snr == 15.0 and fam != "chatter", idx, uid)


def pyannote_sample() -> tuple[np.ndarray, list[tuple[float, float, str]]] | None:
    """sample.wav + RTTM turns from the pyannote.audio wheel, or None if it cannot be fetched."""
    from speech.audio import audio_from_bytes

    with tempfile.TemporaryDirectory() as d:
        try:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                            "pyannote.audio", "-d", d], check=True, timeout=300,
                           capture_output=True)
            wheel = next(Path(d).glob("*.whl"))
        except Exception as exc:
            print(f"pyannote sample unavailable: {exc}", file=sys.stderr)
            return None
        with zipfile.ZipFile(wheel) as z:
            names = z.namelist()
            audio = audio_from_bytes(z.read(next(n for n in names
                                                 if n.endswith("sample/sample.wav"))))
            turns = []
            for line in io.StringIO(z.read(next(n for n in names
                                                if n.endswith("sample/sample.rttm"))).decode()):
                f = line.split()
                if len(f) >= 8 and f[0] == "SPEAKER":
                    turns.append((float(f[3]), float(f[3]) + float(f[4]), f[7]))
    return audio, turns


def real_negatives(be: Backends, base: bool = True) -> dict[str, list[dict]]:
    """Records of the VAD segments of the real recordings (../shared speech, pyannote)."""
    from speech.audio import load_audio
    from speech.vad import speech_segments

    files = {}
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "speech"
    for name in ("jfk.wav", "silero_vad_test.wav"):
        if (real / name).exists():
            files[name] = load_audio(real / name)
    ps = pyannote_sample()
    if ps is not None:
        files["pyannote_sample.wav"] = ps[0]
    path = cache_dir() / "records_real.json"
    old: dict[str, dict] = {}
    if path.exists():
        prev = json.loads(path.read_text())
        # the cache holds only the files that were there when it was made
        if set(prev) == set(files) and all(r.get("ms_v", 1) == MS_VERSION
                                           for segs in prev.values() for r in segs):
            return prev
        old = {r["id"]: r for segs in prev.values() for r in segs}  # ps parts reused
    out: dict[str, list[dict]] = {}
    for name, x in files.items():
        out[name] = []
        for a, b in speech_segments(x):
            seg = x[int(a * 16000):int(b * 16000)]
            uid = f"real/{name}/{a:.2f}"
            sizes = ("tiny", "base") if base else ("tiny",)
            r = (old[uid] | be.record(seg, sizes, ps=False) if uid in old
                 else be.record(seg, sizes))
            r.update({"id": uid, "family": "real", "seconds": b - a,
                      "duration_s": len(x) / 16000})
            out[name].append(r)
    path.write_text(json.dumps(out))
    return out


def leak_check(asr, audio: np.ndarray, n: int = 1000) -> dict:  # noqa: ANN001 - an ASR
    """RSS (MB) while ``asr`` decodes ``audio`` ``n`` times (every ``n // 10``-th recorded;
    growth counted from the second record, after the caches have filled)."""
    import gc

    import psutil

    proc = psutil.Process()
    rss = []
    every = max(1, n // 10)
    t0 = time.perf_counter()
    for i in range(n):
        asr.transcribe(audio)
        if i % every == 0 or i == n - 1:
            gc.collect()
            rss.append(round(proc.memory_info().rss / 1e6, 1))
    after_warm = rss[1] if len(rss) > 1 else rss[0]
    return {"utterances": n, "rss_mb_every": every, "rss_mb": rss, "growth_after_first_mb":
            round(rss[-1] - after_warm, 1), "seconds": round(time.perf_counter() - t0, 1),
            "audio_s": round(len(audio) / 16000, 2)}


def listener_latency(asr, samples: list) -> dict:  # noqa: ANN001 - ASR, Samples
    """Last spoken sample -> transcript through the real listener (VAD segmentation), as
    bench_speech measures it: the wait until the utterance was closed, plus processing."""
    from speech.listener import Listener
    from speech.vad import Segmenter, SileroVAD

    lis = Listener(Segmenter(SileroVAD()), asr, None)
    audio = np.concatenate([s.audio for s in samples])
    trs = lis.process(audio)
    bounds, t_off = [], 0.0
    for s in samples:
        bounds.append((t_off, t_off + len(s.audio) / 16000, t_off + s.speech_end_s))
        t_off += len(s.audio) / 16000
    lat, wait, proc = [], [], []
    for tr, fin, closed in zip(trs, lis.stats.finals, lis.stats.closed_at_s, strict=True):
        mid = (tr.start_s + tr.end_s) / 2
        for a, b, e in bounds:
            if a <= mid < b:
                # a speculative decode (Moonshine, in the pause) ran before the close, in
                # wall time that the offline stream clock does not count: add it
                spec = tr.scores.get("speculative_s", 0.0)
                lat.append(closed - e + fin + spec)
                wait.append(closed - e)
                proc.append(fin + spec)
                break

    def p(xs: list[float], q: float) -> float:
        return round(percentile(xs, q) * 1e3, 1) if xs else float("nan")

    return {"speech_end_to_transcript_ms": {"p50": p(lat, 50), "p95": p(lat, 95)},
            "end_of_speech_wait_ms": {"p50": p(wait, 50), "p95": p(wait, 95)},
            "processing_ms": {"p50": p(proc, 50), "p95": p(proc, 95)},
            "definition": "last spoken sample -> transcript = wait until the listener closed "
                          "the utterance (VAD lag, early end on a final command or hang-over) "
                          "+ processing (the decode after the close, or the speculative "
                          "decode run in the pause before it)",
            "utterances": len(trs), "matched": len(lat), "early_ends": lis.stats.early_ends,
            "accepted": sum(int(t.accepted) for t in trs)}

"""Moonshine speech recognition (tiny-en / base-en) through ONNX Runtime, catalogue-aware.

Weights come from installed wheels, never from a hub: tiny-en from ``moonshine-voice``
(``moonshine_voice/assets/tiny-en``), base-en from ``moonshine-cpp``
(``moonshine_cpp/models/base-en``); both MIT (pip extra ``moonshine``). The packages' own C
library is not used (it leaked ~58 MB per call): the ``.ort`` encoder and merged decoder are
run with ``onnxruntime`` here and ``tokenizer.bin`` is read here. ``model_dir`` may point at
any folder with the three files instead.

Decoding (per VAD segment, at its end): the encoder once, then
- a free greedy decode (what was said, as the model hears it): log-probability ``Lf``;
- a beam search constrained to the catalogue's sentences behind the wake word
  (``speech.constrain.SentenceAutomaton``): best sentence and its log-probability ``Lc``.
The rejection score is ``margin = Lc - Lf`` (nats; 0 when the free decode is a catalogue
sentence, very negative for chatter forced into a command). A command is accepted when the
margin is at least ``min_margin``; otherwise, when the free transcript starts with the wake
word (``wake_similarity`` >= ``min_wake``) and ``free_form``, the free text goes on (wake word
spelt canonically) with its own confidence, for the reasoner's free-form parser.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
import time
from pathlib import Path

import numpy as np

from speech.asr_base import ASR, ASR_BACKENDS, Transcript, Utterance
from speech.audio import SAMPLE_RATE
from speech.constrain import SentenceAutomaton, State, strip_wake, wake_similarity
from speech.errors import SpeechError
from speech.grammar import GrammarSpec, normalise
from speech.registry import require

log = logging.getLogger(__name__)

#: model size -> (package, folder inside it)
WHEEL_MODELS: dict[str, tuple[str, str]] = {"tiny": ("moonshine_voice", "assets/tiny-en"),
                                            "base": ("moonshine_cpp", "models/base-en")}
FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
BOS, EOS = 1, 2
#: punctuation tokens a constrained decode may emit (once between words)
PUNCT = frozenset({".", ",", "?", "!"})
#: tokens per second of audio at most (Moonshine's own bound is ~6.5)
TOKENS_PER_S = 6.5
#: Defaults chosen on the natural-voice dev set (benchmarks/bench_speech.py, speech.json
#: "choice"; speech.defaults): dev chatter forced into a catalogue sentence scored <= -65
#: nats or found none, commands mostly above -30.
DEFAULT_MIN_MARGIN = -30.0
DEFAULT_MIN_WAKE = 0.75


def model_dir(size: str = "tiny") -> Path:
    """The folder of Moonshine ``size`` ("tiny" / "base") inside its installed wheel."""
    if size not in WHEEL_MODELS:
        raise SpeechError(f"unknown Moonshine size {size!r}: tiny or base")
    pkg, sub = WHEEL_MODELS[size]
    spec = importlib.util.find_spec(pkg)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        dist = pkg.replace("_", "-")
        raise SpeechError(f"Moonshine {size} needs the wheel {dist!r}: pip install "
                          f"'.[moonshine]' (or pip install {dist})")
    d = Path(next(iter(spec.submodule_search_locations))) / sub
    missing = [f for f in FILES if not (d / f).exists()]
    if missing:
        raise SpeechError(f"{d}: Moonshine files missing: {', '.join(missing)}")
    return d


def read_tokenizer(path: Path) -> list[bytes]:
    """Token byte strings of Moonshine's ``tokenizer.bin``: per token a length (one byte, or
    two when the first is >= 128: low 7 bits + next byte << 7) and that many bytes."""
    b = Path(path).read_bytes()
    out: list[bytes] = []
    i = 0
    while i < len(b):
        n = b[i]
        i += 1
        if n >= 128:
            n = (n & 0x7F) | (b[i] << 7)
            i += 1
        out.append(b[i:i + n])
        i += n
    return out


def _piece(tok: bytes, idx: int) -> str | None:
    """A token's text, lower-cased, word marker as space; None for special and byte tokens."""
    if idx < 259 or tok.startswith(b"<<") or tok in (b"<unk>", b"<s>", b"</s>"):
        return None
    s = tok.decode("utf-8", errors="replace").replace("\u2581", " ")
    return None if "\ufffd" in s else s.lower()


class MoonshineModel:
    """Encoder + merged decoder sessions and the tokenizer of one Moonshine model."""

    def __init__(self, size: str = "tiny", path: str | Path | None = None,
                 threads: int = 2, fold: bool | None = None) -> None:
        ort = require("onnxruntime", "moonshine", "the Moonshine recogniser")
        d = Path(path) if path else model_dir(size)
        if path and not all((d / f).exists() for f in FILES):
            raise SpeechError(f"{d}: not a Moonshine model folder ({', '.join(FILES)})")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        files = [d / FILES[0], d / FILES[1]]
        if fold is None:  # measured: base's decoder steps ~3x faster folded, tiny no change
            fold = size == "base"
        if fold:  # the decoder de-quantised once into a cache (speech.moonshine_fold)
            from speech.moonshine_fold import folded_path

            try:
                files[1] = folded_path(files[1])
            except SpeechError as exc:
                log.warning("Moonshine runs its int8 graphs as shipped (slower): %s", exc)
        try:
            self.enc = ort.InferenceSession(str(files[0]), so,
                                            providers=["CPUExecutionProvider"])
            self.dec = ort.InferenceSession(str(files[1]), so,
                                            providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise SpeechError(f"{d}: cannot load Moonshine ({str(exc)[:200]})") from None
        self.size, self.path = size, d
        self.tokens = read_tokenizer(d / FILES[2])
        self.pieces = [_piece(t, i) for i, t in enumerate(self.tokens)]
        self._is_punct = np.array([p in PUNCT for p in self.pieces])
        self._enc_mask = "attention_mask" in {i.name for i in self.enc.get_inputs()}
        self._dec_inputs = {i.name: i for i in self.dec.get_inputs()}
        self._past = [n for n in self._dec_inputs if n.startswith("past_key_values.")]
        self._present = [o.name for o in self.dec.get_outputs()][1:]
        shp = self._dec_inputs[self._past[0]].shape
        self._heads, self._dim = int(shp[1]), int(shp[3])
        self._lock = threading.Lock()

    def decode_text(self, ids: list[int]) -> str:
        """Token ids -> text (special tokens dropped)."""
        b = b"".join(self.tokens[i] for i in ids if i > 2 and not self.tokens[i].startswith(b"<<"))
        return b.decode("utf-8", errors="replace").replace("\u2581", " ").strip()

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """Encoder states [1, frames, dim] of 16 kHz float32 audio."""
        x = np.asarray(audio, np.float32)[None, :]
        self._n_samples = x.shape[1]
        feeds = {"input_values": x}
        if self._enc_mask:
            feeds["attention_mask"] = np.ones_like(x, dtype=np.int64)
        return self.enc.run(None, feeds)[0]

    def _step(self, ids: np.ndarray, enc: np.ndarray, past: dict | None) -> tuple[np.ndarray,
                                                                                   dict]:
        """One decoder step for a batch: log-probs [B, vocab] and the new cache."""
        b = ids.shape[0]
        feeds = {"input_ids": ids.astype(np.int64), "encoder_hidden_states": enc,
                 "use_cache_branch": np.array([past is not None])}
        if "encoder_attention_mask" in self._dec_inputs:
            # tiny's mask is over the audio samples (the graph downsamples it)
            feeds["encoder_attention_mask"] = np.ones((b, self._n_samples), np.int64)
        if past is None:
            z = np.zeros((b, self._heads, 1, self._dim), np.float32)
            feeds.update({n: z for n in self._past})
        else:
            feeds.update(past)
        out = self.dec.run(None, feeds)
        lp = self._logp(out[0][:, -1, :])
        new = {}
        for name, val in zip(self._present, out[1:], strict=True):
            key = name.replace("present.", "past_key_values.")
            new[key] = past[key] if (past is not None and ".encoder." in key) else val
        return lp, new

    def greedy(self, enc: np.ndarray, max_len: int) -> tuple[list[int], float]:
        """Free greedy decode: token ids (no BOS / EOS) and total log-probability."""
        ids, lf, _ = self.search(enc, None, max_len)
        return ids, lf

    def search(self, enc: np.ndarray, auto: SentenceAutomaton | None, max_len: int,
               beam: int = 3, max_constrained: int | None = None
               ) -> tuple[list[int], float, tuple]:
        """The free greedy decode and, in the same batched decoder calls, a beam search over
        the catalogue sentences of ``auto``.

        Returns (free token ids, free log-prob, (canonical words or None, constrained
        log-prob, tokens)). Row 0 of each batch is the free decode while it runs; the free
        decode stops at ``max_len`` tokens, the constrained one at ``max_constrained``.
        """
        max_c = max_len if max_constrained is None else max_constrained
        lp, past = self._step(np.array([[BOS]]), enc, None)
        free_ids: list[int] = []
        lf, free_row = 0.0, 0  # free_row: the free decode's batch row, None once ended
        beams: list[tuple[float, State, int, bool]] = (  # score, state, row, after punct.
            [(0.0, auto.initial(), 0, True)] if auto is not None else [])
        best: tuple[tuple[str, ...] | None, float, int] = (None, -math.inf, 0)
        allowed = _Allowed(self, auto) if auto is not None else None
        for step in range(max(max_len, max_c)):
            rows: list[int] = []
            toks: list[int] = []
            if free_row is not None and step >= max_len:
                free_row = None  # the free decode ran out of tokens
            if step >= max_c:
                beams = []
            if free_row is not None:
                t = int(lp[free_row].argmax())
                lf += float(lp[free_row, t])
                if t == EOS:
                    free_row = None
                else:
                    free_ids.append(t)
                    rows.append(free_row)
                    toks.append(t)
            cands: dict[tuple, tuple[float, State, int, int]] = {}
            for score, st, row, after_punct in beams:
                done = auto.finish(st)
                if done is not None:
                    s = score + float(lp[row, EOS])
                    if s > best[1]:
                        best = (done, s, step + 1)
                ids, states = allowed(st)
                if not len(ids):
                    continue
                sc = lp[row, ids]
                if after_punct:  # no punctuation first or twice in a row
                    sc = np.where(self._is_punct[ids], -np.inf, sc)
                for k in np.argsort(-sc)[: beam * 2]:
                    if not np.isfinite(sc[k]):
                        continue
                    ns = states[k]
                    key = (ns.node, ns.partial, ns.words)
                    s = score + float(sc[k])
                    if key not in cands or cands[key][0] < s:
                        cands[key] = (s, ns, row, int(ids[k]))
            alive = sorted(cands.values(), key=lambda c: -c[0])[:beam]
            if alive and alive[0][0] <= best[1]:
                alive = []  # no open hypothesis can beat the best finished one
            off = len(rows)
            beams = [(c[0], c[1], off + i, bool(self._is_punct[c[3]]))
                     for i, c in enumerate(alive)]
            rows += [c[2] for c in alive]
            toks += [c[3] for c in alive]
            if not rows:
                break
            idx = np.array(rows)
            # decoder caches follow their rows; the encoder's are equal in every row
            past = {k: (v[idx] if ".decoder." in k else v if v.shape[0] == len(rows)
                        else np.broadcast_to(v[:1], (len(rows), *v.shape[1:])))
                    for k, v in past.items()}
            if enc.shape[0] != len(rows):
                enc = np.repeat(enc[:1], len(rows), axis=0)
            lp, past = self._step(np.array(toks)[:, None], enc, past)
            if free_row is not None:
                free_row = 0
        return free_ids, lf, best

    def _logp(self, logits: np.ndarray) -> np.ndarray:
        """Log-softmax over the vocabulary, per row."""
        m = logits.max(axis=1, keepdims=True)
        return logits - m - np.log(np.exp(logits - m).sum(axis=1, keepdims=True))


class _Allowed:
    """Tokens that continue a state, with their next states (cached per state)."""

    _trie_cache: dict[int, dict] = {}

    def __init__(self, model: MoonshineModel, auto: SentenceAutomaton) -> None:
        key = id(model)
        if key not in self._trie_cache:  # char trie of the token pieces: {ch: (ids, sub)}
            root: dict = {}
            for i, p in enumerate(model.pieces):
                if not p:
                    continue
                node = root
                for ch in p[:-1]:
                    node = node.setdefault(ch, ([], {}))[1]
                node.setdefault(p[-1], ([], {}))[0].append(i)
            self._trie_cache[key] = root
        self.root = self._trie_cache[key]
        self.pieces = model.pieces
        self.auto = auto
        self.cache: dict[tuple[int, str], tuple[np.ndarray, list[State]]] = getattr(
            auto, "_allowed_cache", {})
        auto._allowed_cache = self.cache

    def __call__(self, st: State) -> tuple[np.ndarray, list[State]]:
        key = (st.node, st.partial)
        hit = self.cache.get(key)
        if hit is None:
            ids: list[int] = []
            rel: list[State] = []
            stack = [(self.root, State(st.node, st.partial, ()))]
            while stack:
                node, s = stack.pop()
                for ch, (tids, sub) in node.items():
                    ns = self.auto.step(s, ch)
                    if ns is None:
                        continue
                    ids.extend(tids)
                    rel.extend([ns] * len(tids))
                    if sub:
                        stack.append((sub, ns))
            # tokens that leave the state as it was (punctuation, quotes): only sentence
            # punctuation, and never twice in a row (``search``), or a beam loops on them
            keep = [k for k, (i, r) in enumerate(zip(ids, rel, strict=True))
                    if not (r.node == st.node and r.partial == st.partial and not r.words)
                    or self.pieces[i] in PUNCT]
            ids, rel = [ids[k] for k in keep], [rel[k] for k in keep]
            hit = (np.array(ids, np.int64), rel)
            if len(self.cache) < 200_000:
                self.cache[key] = hit
        ids, rel = hit
        return ids, [State(r.node, r.partial, st.words + r.words) for r in rel]


@ASR_BACKENDS.register("moonshine")
class MoonshineASR(ASR):
    """Moonshine on VAD segments, the catalogue's sentences as the domain (see module doc).

    ``size``: "tiny" (default) or "base"; ``grammar``: the catalogue sentences (None: free
    transcripts only, accepted when they start with the wake word); ``beam``: width of the
    constrained search; ``min_margin`` (nats) / ``min_wake`` (0-1): acceptance thresholds;
    ``wake_rule``: "constraint" (the catalogue search's forced wake word and the margin
    decide) or "neural" (the free transcript must also start with the wake word).
    """

    name = "moonshine"

    def __init__(self, grammar: GrammarSpec | None = None, size: str = "tiny",
                 model_dir: str | Path | None = None, beam: int = 3,
                 min_margin: float = DEFAULT_MIN_MARGIN, min_wake: float = DEFAULT_MIN_WAKE,
                 free_form: bool = True, threads: int = 2, wake_rule: str = "constraint"
                 ) -> None:
        if wake_rule not in ("constraint", "neural"):
            raise SpeechError(f"unknown Moonshine wake rule {wake_rule!r}: constraint or neural")
        self.wake_rule = wake_rule
        self.model = MoonshineModel(size, model_dir, threads)
        self.name = f"moonshine-{size}"
        self.grammar = grammar
        self.wake = normalise(grammar.wake_words[0]) if grammar else "copilot"
        self.wake_optional = bool(grammar and grammar.wake_optional)
        self.auto = (SentenceAutomaton([tuple(s) for s in grammar.sentences()],
                                       grammar.wake_words, grammar.wake_optional)
                     if grammar is not None else None)
        self.beam, self.min_margin, self.min_wake = beam, min_margin, min_wake
        self.free_form = free_form

    def start(self, start_s: float = 0.0) -> Utterance:
        return _MoonshineUtterance(self, start_s)

    def decode(self, audio: np.ndarray, start_s: float = 0.0) -> Transcript:
        """Decode one segment of 16 kHz float32 audio."""
        t0 = time.perf_counter()
        end_s = start_s + len(audio) / SAMPLE_RATE
        if len(audio) < SAMPLE_RATE // 10:
            return Transcript("", 0.0, [], start_s, end_s, False, "too short", self.name)
        m = self.model
        max_len = max(8, int(len(audio) / SAMPLE_RATE * TOKENS_PER_S))
        with m._lock:
            enc = m.encode(audio)
            ids, lf, (words, lc, nc) = m.search(enc, self.auto, max_len, self.beam,
                                                max_constrained=min(2 * max_len, 48))
        free = normalise(m.decode_text(ids))
        sim = wake_similarity(free, self.wake)
        margin = lc - lf if words is not None else -math.inf
        scores = {"lf": lf, "lc": lc if words is not None else -1e9, "tokens": float(len(ids)),
                  "margin": max(margin, -1e9), "wake_sim": sim}
        cmd = " ".join(words) if words is not None else ""
        in_cat = words is not None and margin >= self.min_margin
        woke = sim >= self.min_wake or self.wake_optional
        scores["in_catalogue"] = float(in_cat)  # a catalogue command passed the margin
        scores["wake_slot"] = float(woke)  # the neural wake path (speech.listener)
        if self.wake_rule == "neural":
            in_cat = in_cat and woke
        nper = max(1, len(ids) + 1)
        nbest = []
        if cmd:
            nbest.append((cmd, math.exp(min(0.0, margin) / max(1, nc))))
        if free:
            nbest.append((free, math.exp(lf / nper)))
        if in_cat:
            text, conf, ok, why = cmd, nbest[0][1], True, ""
        elif self.free_form and (rest := (free if self.wake_optional else strip_wake(
                free, self.wake, self.min_wake))):
            text = rest if self.wake_optional else f"{self.wake} {rest}"
            conf, ok, why = math.exp(lf / nper), True, ""
            scores["free_form"] = 1.0
        else:
            text, conf, ok = free, 0.0, False
            why = "no speech" if not free else ("wake word not heard" if not woke
                                                else "no catalogue command")
        scores["body_complete"] = float(ok)  # for speech.listener.decide_wake
        return Transcript(text, float(conf), nbest, start_s, end_s, ok, why, self.name, None,
                          scores, time.perf_counter() - t0)


class _MoonshineUtterance(Utterance):
    """Collects the segment; decodes at ``finish``, or earlier when the listener asks for a
    partial result in a pause (``partial``): if the person said nothing more, ``finish``
    reuses that decode, so a final command ends the utterance without the VAD hang-over."""

    #: the listener asks ``partial`` only after some VAD silence (each call is a decode)
    partial_needs_quiet = True
    #: audio after a speculative decode that ``finish`` still accepts as its tail (s)
    REUSE_S = 0.4

    def __init__(self, asr: MoonshineASR, start_s: float) -> None:
        self.asr, self.start_s = asr, start_s
        self.parts: list[np.ndarray] = []
        self.n = 0
        self._spec: tuple[int, Transcript] | None = None

    def feed(self, chunk: np.ndarray) -> None:
        x = np.asarray(chunk, np.float32)
        self.parts.append(x)
        self.n += len(x)

    def _audio(self) -> np.ndarray:
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0] if self.parts else np.zeros(0, np.float32)

    def partial(self) -> tuple[str, float] | None:
        if self._spec is None or self.n - self._spec[0] > 0.25 * SAMPLE_RATE:
            self._spec = (self.n, self.asr.decode(self._audio(), self.start_s))
        tr = self._spec[1]
        if tr.accepted and tr.scores.get("in_catalogue"):
            return tr.text, 0.0  # a final catalogue command ends at the VAD's early end
        return "", 0.0

    def finish(self) -> Transcript:
        spec, self._spec = self._spec, None
        if spec is not None and self.n - spec[0] <= self.REUSE_S * SAMPLE_RATE:
            tr = spec[1]
            tr.end_s = self.start_s + self.n / SAMPLE_RATE
            tr.scores["speculative"] = 1.0  # decoded during the pause, before the close:
            tr.scores["speculative_s"] = tr.decode_s  # that time still counts for latency
            self.parts = []
            return tr
        audio = self._audio()
        self.parts = []
        return self.asr.decode(audio, self.start_s)


ASR_BACKENDS.register("moonshine-tiny")(lambda **cfg: MoonshineASR(size="tiny", **cfg))
ASR_BACKENDS.register("moonshine-base")(lambda **cfg: MoonshineASR(size="base", **cfg))

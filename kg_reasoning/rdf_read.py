"""Read RDF (our own Turtle, or generic OWL-as-RDF classes) back into a knowledge graph;
ids round-trip (the mapping is described in :mod:`kg_reasoning.rdf`)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kg_reasoning.errors import KGError
from kg_reasoning.graph import Entity, Fact, KnowledgeGraph
from kg_reasoning.rdf_write import OBO, OBOINOWL, SCOP_ENT, SCOP_VOCAB, iri_to_curie


def _lit(g: Any, s: Any, p: Any) -> str | None:
    """The literal of ``s p ?`` as text (None when absent)."""
    v = g.value(s, p)
    return str(v) if v is not None else None


def _read_entities(g: Any, kg: KnowledgeGraph) -> None:
    """Every OWL class or labelled IRI (but the models node) becomes an entity."""
    from rdflib import URIRef
    from rdflib.namespace import DCTERMS, OWL, RDF, RDFS

    scop_key = URIRef(SCOP_VOCAB + "key")
    subjects = set(g.subjects(RDF.type, OWL.Class)) | set(g.subjects(RDFS.label, None))
    subjects = {s for s in subjects if isinstance(s, URIRef) and str(s) != SCOP_ENT + "models"}
    for s in sorted(subjects, key=str):
        curie = iri_to_curie(str(s))
        label = _lit(g, s, RDFS.label) or curie
        key = _lit(g, s, scop_key) or _derive_key(kg, curie, label)
        syns = sorted(
            str(o)
            for p in ("hasExactSynonym", "hasRelatedSynonym", "hasNarrowSynonym")
            for o in g.objects(s, URIRef(OBOINOWL + p))
        )
        cues = _lit(g, s, URIRef(SCOP_VOCAB + "cues"))
        kg.add_entity(
            Entity(
                key=key,
                id=curie,
                label=label,
                kind=_lit(g, s, URIRef(SCOP_VOCAB + "kind")) or "ontology_term",
                synonyms=syns,
                fma=_lit(g, s, URIRef(SCOP_VOCAB + "fma")),
                cues=json.loads(cues) if cues else {},
                note=_lit(g, s, RDFS.comment),
                source=_lit(g, s, DCTERMS.source) or "",
                segmentable=g.value(s, URIRef(SCOP_VOCAB + "segmentable")) is not None,
            )
        )


def _read_facts(g: Any, kg: KnowledgeGraph) -> None:
    """Reified statements (our Turtle) become facts with their attributes; without any,
    direct scop: triples, rdfs:subClassOf (is_a) and BFO part of (part_of)."""
    from rdflib import URIRef
    from rdflib.namespace import DCTERMS, RDF, RDFS

    def key_of(node: Any) -> str | None:
        return kg.by_id.get(iri_to_curie(str(node)))

    statements = list(g.subjects(RDF.type, RDF.Statement))
    for st in statements:
        s, p, o = (
            key_of(g.value(st, RDF.subject)),
            g.value(st, RDF.predicate),
            key_of(g.value(st, RDF.object)),
        )
        if s is None or o is None or p is None or not str(p).startswith(SCOP_VOCAB):
            continue
        kg.add_fact(
            Fact(
                s,
                str(p)[len(SCOP_VOCAB) :],
                o,
                _lit(g, st, URIRef(SCOP_VOCAB + "side")),
                _lit(g, st, URIRef(SCOP_VOCAB + "order")),
                _lit(g, st, RDFS.comment),
                _lit(g, st, DCTERMS.source) or "",
            )
        )
    if not statements:
        for s, p, o in g:
            ks, ko = key_of(s), key_of(o)
            if ks is None or ko is None:
                continue
            if str(p).startswith(SCOP_VOCAB):
                kg.add_fact(Fact(ks, str(p)[len(SCOP_VOCAB) :], ko, source="rdf"))
            elif p == RDFS.subClassOf:
                kg.add_fact(Fact(ks, "is_a", ko, source="rdf"))
            elif str(p) == OBO + "BFO_0000050":
                kg.add_fact(Fact(ks, "part_of", ko, source="rdf"))


def _read_models(g: Any, kg: KnowledgeGraph) -> None:
    """The procedure, CVS, survey, pathology and order models (one JSON literal)."""
    from rdflib import URIRef

    models = g.value(URIRef(SCOP_ENT + "models"), URIRef(SCOP_VOCAB + "json"))
    if models is not None:
        m = json.loads(str(models))
        kg.procedures = m.get("procedures", {})
        kg.cvs = m.get("cvs", {})
        kg.surveys = m.get("surveys", {})
        kg.regions = m.get("regions", [])
        kg.pathologies = m.get("pathologies", {})
        kg.orders = m.get("orders", {})
        kg.sources = m.get("sources", {})
        kg.vision_classes = m.get("vision_classes", [])


def from_rdf(g: Any) -> KnowledgeGraph:
    """Build a graph from rdflib triples (our own Turtle, or generic OWL-as-RDF classes)."""
    kg = KnowledgeGraph()
    _read_entities(g, kg)
    _read_facts(g, kg)
    _read_models(g, kg)
    return kg


def _derive_key(kg: KnowledgeGraph, curie: str, label: str) -> str:
    import re

    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "term"
    if key in kg.entities:
        key = re.sub(r"[^a-z0-9]+", "_", curie.lower())
    return key


def from_rdf_file(path: Path) -> KnowledgeGraph:
    """Parse an RDF file (format from the suffix) and build a graph."""
    if not path.is_file():
        raise KGError(f"RDF file not found: {path}")
    try:
        from rdflib import Graph
        from rdflib.util import guess_format
    except ImportError as exc:  # pragma: no cover - extra not installed
        raise KGError("reading Turtle needs rdflib: pip install 'surgical-copilot[kg]'") from exc
    g = Graph()
    try:
        g.parse(str(path), format=guess_format(str(path)) or "turtle")
    except Exception as exc:  # rdflib raises many parser error types
        raise KGError(_parse_error(path, exc)) from exc
    return from_rdf(g)


def _parse_error(path: Path, exc: Exception) -> str:
    """One line naming the file and (when the parser knows it) the 1-based line."""
    why = getattr(exc, "_why", None)
    line = getattr(exc, "lines", None)  # rdflib's n3 / turtle BadSyntax: 0-based line
    if isinstance(line, int):
        return f"cannot parse RDF {path}: line {line + 1}: {why or exc.__class__.__name__}"
    text = " ".join(str(exc).split())
    m = re.search(r"line (\d+)", text)
    where = f"line {m.group(1)}: " if m else ""
    return f"cannot parse RDF {path}: {where}{exc.__class__.__name__}: {text[:300]}"


"""RDF form of the knowledge graph (rdflib): compile to Turtle and read it back; ids round-trip.

Mapping:

- entity -> ``owl:Class`` at its id's IRI (``UBERON:0002107`` ->
  ``http://purl.obolibrary.org/obo/UBERON_0002107``; ``SCOP:x`` -> ``urn:scop:x``) with
  ``rdfs:label``, ``oboInOwl:hasExactSynonym``, ``scop:key``, ``scop:kind``, ``scop:cues``
  (JSON), ``rdfs:comment`` (note), ``dcterms:source``.
- fact -> the direct triple ``s scop:<predicate> o`` plus a standard ``rdf:Statement``
  reification carrying ``scop:side`` / ``scop:order`` / ``rdfs:comment`` / ``dcterms:source``.
  ``scop:part_of`` is declared ``rdfs:subPropertyOf`` BFO part of (``BFO_0000050``).
- procedure, CVS, survey and pathology models -> JSON literals on ``urn:scop:models``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from kg_reasoning.errors import KGError
from kg_reasoning.graph import Entity, Fact, KnowledgeGraph

OBO = "http://purl.obolibrary.org/obo/"
SCOP_ENT = "urn:scop:"
SCOP_VOCAB = "urn:scop:vocab#"
OBOINOWL = "http://www.geneontology.org/formats/oboInOwl#"


def curie_to_iri(curie: str) -> str:
    """``UBERON:0002107`` -> OBO PURL; ``SCOP:x`` -> ``urn:scop:x``."""
    prefix, _, local = curie.partition(":")
    if prefix == "SCOP":
        return SCOP_ENT + local
    if not local:
        return SCOP_ENT + curie
    return f"{OBO}{prefix}_{local}"


def iri_to_curie(iri: str) -> str:
    """Inverse of :func:`curie_to_iri` (other IRIs are returned unchanged)."""
    if iri.startswith(SCOP_VOCAB):
        return iri
    if iri.startswith(SCOP_ENT):
        return "SCOP:" + iri[len(SCOP_ENT) :]
    if iri.startswith(OBO):
        local = iri[len(OBO) :]
        prefix, _, rest = local.partition("_")
        return f"{prefix}:{rest}" if rest else local
    return iri


def to_rdf(kg: KnowledgeGraph) -> Any:
    """Compile a :class:`KnowledgeGraph` to an rdflib Graph."""
    from rdflib import BNode, Graph, Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, OWL, RDF, RDFS

    g = Graph()
    scop = Namespace(SCOP_VOCAB)
    oio = Namespace(OBOINOWL)
    g.bind("scop", scop)
    g.bind("scopent", Namespace(SCOP_ENT))
    g.bind("obo", Namespace(OBO))
    g.bind("oboInOwl", oio)
    g.bind("dcterms", DCTERMS)
    g.add((scop.part_of, RDFS.subPropertyOf, URIRef(OBO + "BFO_0000050")))
    for e in kg.entities.values():
        u = URIRef(curie_to_iri(e.id))
        g.add((u, RDF.type, OWL.Class))
        g.add((u, RDFS.label, Literal(e.label)))
        g.add((u, scop.key, Literal(e.key)))
        g.add((u, scop.kind, Literal(e.kind)))
        for s in e.synonyms:
            g.add((u, oio.hasExactSynonym, Literal(s)))
        if e.fma:
            g.add((u, scop.fma, Literal(e.fma)))
        if e.cues:
            g.add((u, scop.cues, Literal(json.dumps(e.cues, sort_keys=True))))
        if e.note:
            g.add((u, RDFS.comment, Literal(e.note)))
        if e.source:
            g.add((u, DCTERMS.source, Literal(e.source)))
        if e.segmentable:
            g.add((u, scop.segmentable, Literal(True)))
    for f in kg.facts:
        s = URIRef(curie_to_iri(kg.entities[f.s].id))
        o = URIRef(curie_to_iri(kg.entities[f.o].id))
        p = scop[f.p]
        g.add((s, p, o))
        st = BNode()
        g.add((st, RDF.type, RDF.Statement))
        g.add((st, RDF.subject, s))
        g.add((st, RDF.predicate, p))
        g.add((st, RDF.object, o))
        if f.side:
            g.add((st, scop.side, Literal(f.side)))
        if f.order:
            g.add((st, scop.order, Literal(f.order)))
        if f.note:
            g.add((st, RDFS.comment, Literal(f.note)))
        if f.source:
            g.add((st, DCTERMS.source, Literal(f.source)))
    models = {
        "procedures": kg.procedures,
        "cvs": kg.cvs,
        "surveys": kg.surveys,
        "regions": kg.regions,
        "pathologies": kg.pathologies,
        "orders": kg.orders,
        "sources": kg.sources,
        "vision_classes": kg.vision_classes,
    }
    g.add((URIRef(SCOP_ENT + "models"), scop.json, Literal(json.dumps(models, sort_keys=True))))
    return g


def from_rdf(g: Any) -> KnowledgeGraph:
    """Build a graph from rdflib triples (our own Turtle, or generic OWL-as-RDF classes)."""
    from rdflib import URIRef
    from rdflib.namespace import DCTERMS, OWL, RDF, RDFS

    scop_key = URIRef(SCOP_VOCAB + "key")
    kg = KnowledgeGraph()
    subjects = set(g.subjects(RDF.type, OWL.Class)) | set(g.subjects(RDFS.label, None))
    subjects = {s for s in subjects if isinstance(s, URIRef) and str(s) != SCOP_ENT + "models"}

    def lit(s: Any, p: Any) -> str | None:
        v = g.value(s, p)
        return str(v) if v is not None else None

    for s in sorted(subjects, key=str):
        curie = iri_to_curie(str(s))
        label = lit(s, RDFS.label) or curie
        key = lit(s, scop_key) or _derive_key(kg, curie, label)
        syns = sorted(
            str(o)
            for p in ("hasExactSynonym", "hasRelatedSynonym", "hasNarrowSynonym")
            for o in g.objects(s, URIRef(OBOINOWL + p))
        )
        cues = lit(s, URIRef(SCOP_VOCAB + "cues"))
        kg.add_entity(
            Entity(
                key=key,
                id=curie,
                label=label,
                kind=lit(s, URIRef(SCOP_VOCAB + "kind")) or "ontology_term",
                synonyms=syns,
                fma=lit(s, URIRef(SCOP_VOCAB + "fma")),
                cues=json.loads(cues) if cues else {},
                note=lit(s, RDFS.comment),
                source=lit(s, DCTERMS.source) or "",
                segmentable=g.value(s, URIRef(SCOP_VOCAB + "segmentable")) is not None,
            )
        )

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
                lit(st, URIRef(SCOP_VOCAB + "side")),
                lit(st, URIRef(SCOP_VOCAB + "order")),
                lit(st, RDFS.comment),
                lit(st, DCTERMS.source) or "",
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


SHIPPED_TURTLE = Path(__file__).resolve().parent / "data" / "kg.ttl"


def export_turtle(path: Path = SHIPPED_TURTLE) -> Path:
    """Write the shipped graph (YAML compiled to RDF) as Turtle; returns the path."""
    from kg_reasoning.loaders import load_default

    path.write_text(load_default(fresh=True).to_turtle(), encoding="utf-8")
    return path


if __name__ == "__main__":
    import sys

    out = export_turtle(Path(sys.argv[1]) if len(sys.argv) > 1 else SHIPPED_TURTLE)
    print(f"wrote {out}")

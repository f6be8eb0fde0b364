"""Compile the knowledge graph to RDF (rdflib), and the IRI <-> CURIE mapping both ways
(the mapping is described in :mod:`kg_reasoning.rdf`). Imports no graph code at run time,
so :meth:`KnowledgeGraph.to_rdf` can use it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_reasoning.graph import KnowledgeGraph

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


def _add_entities(g: Any, kg: KnowledgeGraph) -> None:
    """Each entity as an owl:Class at its id's IRI with label, key, kind, synonyms, ..."""
    from rdflib import Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, OWL, RDF, RDFS

    scop = Namespace(SCOP_VOCAB)
    oio = Namespace(OBOINOWL)
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


def _add_facts(g: Any, kg: KnowledgeGraph) -> None:
    """Each fact as a direct triple plus an rdf:Statement carrying its attributes."""
    from rdflib import BNode, Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, RDF, RDFS

    scop = Namespace(SCOP_VOCAB)
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


def to_rdf(kg: KnowledgeGraph) -> Any:
    """Compile a :class:`KnowledgeGraph` to an rdflib Graph."""
    from rdflib import Graph, Literal, Namespace, URIRef
    from rdflib.namespace import DCTERMS, RDFS

    g = Graph()
    scop = Namespace(SCOP_VOCAB)
    oio = Namespace(OBOINOWL)
    g.bind("scop", scop)
    g.bind("scopent", Namespace(SCOP_ENT))
    g.bind("obo", Namespace(OBO))
    g.bind("oboInOwl", oio)
    g.bind("dcterms", DCTERMS)
    g.add((scop.part_of, RDFS.subPropertyOf, URIRef(OBO + "BFO_0000050")))
    _add_entities(g, kg)
    _add_facts(g, kg)
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


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

The writer is :mod:`kg_reasoning.rdf_write`, the reader :mod:`kg_reasoning.rdf_read`; this
module keeps their names and writes the shipped Turtle (``python -m kg_reasoning.rdf``).
"""

from __future__ import annotations

from pathlib import Path

from kg_reasoning.rdf_read import from_rdf, from_rdf_file
from kg_reasoning.rdf_write import (
    OBO,
    OBOINOWL,
    SCOP_ENT,
    SCOP_VOCAB,
    curie_to_iri,
    iri_to_curie,
    to_rdf,
)

__all__ = ["OBO", "OBOINOWL", "SCOP_ENT", "SCOP_VOCAB", "SHIPPED_TURTLE", "curie_to_iri",
           "export_turtle", "from_rdf", "from_rdf_file", "iri_to_curie", "to_rdf"]

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

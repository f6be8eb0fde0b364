"""Loaders: the shipped YAML knowledge files, and OBO / OWL / Turtle ontologies to merge in.

- :func:`load_default` builds the curated graph from ``kg_reasoning/data/*.yaml`` (cached).
- :func:`load_obo` / :func:`load_owl` read an ontology with pronto (e.g. the full UBERON
  release, ``uberon.obo`` / ``uberon.owl``): every term becomes an entity (id, label, exact /
  related synonyms), ``is_a`` and ``part_of`` relationships become facts. Terms whose id is
  already in the graph merge into that entity (their synonyms are added), so "spleen" etc.
  resolve after merging the full release.
- :func:`load_turtle` reads Turtle written by :meth:`KnowledgeGraph.to_turtle` (ids
  round-trip), or any RDF with ``rdfs:label`` / ``oboInOwl`` synonyms / ``rdfs:subClassOf``.
- :func:`load_knowledge` dispatches on the file suffix and merges into a graph.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import yaml

from kg_reasoning.errors import KGError
from kg_reasoning.graph import Entity, Fact, KnowledgeGraph

DATA_DIR = Path(__file__).resolve().parent / "data"
_PROJECT_ID_NOTE = "project id: no checked UBERON id listed in DATASETS.md, none guessed"
DEFAULT_FILES = ("anatomy.yaml", "procedures.yaml", "pathology.yaml")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise KGError(f"knowledge file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise KGError(f"knowledge file {path}: invalid YAML ({exc.__class__.__name__})") from exc
    if not isinstance(data, dict):
        raise KGError(f"knowledge file {path}: expected a mapping at the top level")
    return data


def load_yaml_files(paths: list[Path]) -> KnowledgeGraph:
    """Build a graph from knowledge YAML files (anatomy / procedures / pathology sections)."""
    kg = KnowledgeGraph()
    for path in paths:
        data = _read_yaml(Path(path))
        _add_yaml(kg, data, str(path))
    return kg


def _add_yaml(kg: KnowledgeGraph, data: dict[str, Any], where: str) -> None:
    kg.sources.update(data.get("sources", {}))
    kg.vision_classes.extend(
        c for c in data.get("vision_classes", []) if c not in kg.vision_classes
    )
    for key, spec in (data.get("entities") or {}).items():
        try:
            src = spec.get("src", "")
            kg.add_entity(
                Entity(
                    key=key,
                    id=str(spec["id"]),
                    label=str(spec.get("label", key.replace("_", " "))),
                    kind=str(spec.get("kind", "entity")),
                    synonyms=[str(s) for s in spec.get("synonyms", [])],
                    fma=spec.get("fma"),
                    cues=dict(spec.get("cues", {})),
                    note=spec.get("note")
                    or (_PROJECT_ID_NOTE if str(spec["id"]).startswith("SCOP:") else None),
                    source=kg.sources.get(src, src),
                    segmentable=key in kg.vision_classes,
                )
            )
        except (KeyError, AttributeError, TypeError) as exc:
            raise KGError(f"{where}: bad entity {key!r} ({exc})") from exc
    for row in data.get("facts") or []:
        if not isinstance(row, list) or len(row) not in (3, 4):
            raise KGError(f"{where}: a fact must be [subject, predicate, object, {{attrs}}]: {row}")
        attrs = row[3] if len(row) == 4 else {}
        src = attrs.get("src", "gray")
        kg.add_fact(
            Fact(
                row[0],
                row[1],
                row[2],
                attrs.get("side"),
                None,
                attrs.get("note"),
                kg.sources.get(src, src),
            )
        )
    for name, spec in (data.get("orders") or {}).items():
        items = list(spec["items"])
        kg.orders[name] = items
        src = kg.sources.get(spec.get("src", ""), spec.get("src", ""))
        for a, b in zip(items, items[1:], strict=False):
            kg.add_fact(Fact(a, "continuous_with", b, None, name, None, src))
    for name, spec in (data.get("procedures") or {}).items():
        kg.procedures[name] = spec
    if data.get("cvs"):
        kg.cvs = data["cvs"]
    for name, spec in (data.get("surveys") or {}).items():
        kg.surveys[name] = spec
    if data.get("regions"):
        kg.regions = list(data["regions"])
    for name, spec in (data.get("pathologies") or {}).items():
        for k in (
            *spec.get("connects", []),
            *spec.get("typical_sites", []),
            *spec.get("involves", []),
        ):
            if k not in kg.entities:
                raise KGError(f"{where}: pathology {name} names unknown entity {k!r}")
        kg.pathologies[name] = spec


def _build_default() -> KnowledgeGraph:
    """Shipped YAML files plus the catalogue's spoken forms as synonyms (kept in sync)."""
    from kg_reasoning.catalogue import load_catalogue

    kg = load_yaml_files([DATA_DIR / f for f in DEFAULT_FILES])
    for key, forms in load_catalogue().slot_values["structure"].items():
        if key not in kg.entities:
            raise KGError(f"catalogue structure {key!r} is not a knowledge graph entity")
        e = kg.entities[key]
        e.synonyms.extend(f for f in forms if f != e.label and f not in e.synonyms)
        kg.add_entity(e)  # re-index synonyms
    return kg


@functools.lru_cache(maxsize=1)
def _default() -> KnowledgeGraph:
    return _build_default()


def load_default(fresh: bool = False) -> KnowledgeGraph:
    """The curated graph shipped in ``kg_reasoning/data`` (a cached instance unless ``fresh``).

    Callers that merge other ontologies into the graph should pass ``fresh=True``.
    """
    if fresh:
        return _build_default()
    return _default()


# ---------------------------------------------------------------------- ontologies
def _key_for(kg: KnowledgeGraph, curie: str, label: str | None) -> str:
    base = re.sub(r"[^a-z0-9]+", "_", (label or curie).lower()).strip("_") or "term"
    key = base
    if key in kg.entities and kg.entities[key].id != curie:
        key = re.sub(r"[^a-z0-9]+", "_", curie.lower())
    return key


def _pronto_to_kg(onto: Any, prefix: str | None) -> KnowledgeGraph:
    kg = KnowledgeGraph()
    terms = [t for t in onto.terms() if not t.obsolete]
    if prefix:
        terms = [t for t in terms if t.id.startswith(prefix + ":")]
    src = "ontology file"
    for t in terms:
        syns = [s.description for s in t.synonyms if s.scope in ("EXACT", "RELATED", "NARROW")]
        kg.add_entity(
            Entity(
                key=_key_for(kg, t.id, t.name),
                id=t.id,
                label=t.name or t.id,
                kind="ontology_term",
                synonyms=syns,
                note=str(t.definition) if t.definition else None,
                source=src,
            )
        )
    for t in terms:
        s = kg.by_id[t.id]
        for sup in t.superclasses(distance=1, with_self=False):
            if sup.id in kg.by_id:
                kg.add_fact(Fact(s, "is_a", kg.by_id[sup.id], source=src))
        for rel, targets in t.relationships.items():
            name = (rel.name or rel.id).replace(" ", "_")
            if rel.id in ("BFO:0000050", "part_of") or name == "part_of":
                pred = "part_of"
            else:
                pred = name
            for other in targets:
                if other.id in kg.by_id:
                    kg.add_fact(Fact(s, pred, kg.by_id[other.id], source=src))
    return kg


def load_obo(path: str | Path, prefix: str | None = None) -> KnowledgeGraph:
    """Read an OBO file (pronto) into a graph; ``prefix`` keeps only e.g. "UBERON" terms."""
    return _load_pronto(path, prefix)


def load_owl(path: str | Path, prefix: str | None = None) -> KnowledgeGraph:
    """Read an OWL (RDF/XML) ontology (pronto) into a graph."""
    return _load_pronto(path, prefix)


def _load_pronto(path: str | Path, prefix: str | None) -> KnowledgeGraph:
    p = Path(path)
    if not p.is_file():
        raise KGError(f"ontology file not found: {p}")
    try:
        import pronto
    except ImportError as exc:  # pragma: no cover - extra not installed
        raise KGError("reading OBO / OWL needs pronto: pip install 'surgical-copilot[kg]'") from exc
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onto = pronto.Ontology(str(p))
    except Exception as exc:  # pronto raises many parser error types
        raise KGError(f"cannot parse ontology {p}: {exc.__class__.__name__}: {exc}") from exc
    return _pronto_to_kg(onto, prefix)


def load_turtle(path: str | Path) -> KnowledgeGraph:
    """Read Turtle (or any rdflib-readable RDF by suffix) into a graph."""
    from kg_reasoning.rdf import from_rdf_file

    return from_rdf_file(Path(path))


def load_knowledge(paths: list[str | Path], base: KnowledgeGraph | None = None) -> KnowledgeGraph:
    """Merge files (.yaml, .obo, .owl, .ttl / .rdf / .nt) into ``base`` (a fresh default)."""
    kg = base if base is not None else load_default(fresh=True)
    for path in paths:
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".yaml", ".yml"):
            other = load_yaml_files([p])
        elif suffix == ".obo":
            other = load_obo(p)
        elif suffix == ".owl":
            other = load_owl(p)
        elif suffix in (".ttl", ".rdf", ".nt", ".n3", ".xml", ".jsonld"):
            other = load_turtle(p)
        else:
            raise KGError(f"unsupported knowledge file type: {p.name}")
        kg.merge(other)
    return kg

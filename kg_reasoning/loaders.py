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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KGError(f"knowledge file {path}: cannot read ({exc.__class__.__name__})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f": line {mark.line + 1}" if mark is not None else ""
        what = " ".join(str(getattr(exc, "problem", "") or exc.__class__.__name__).split())
        raise KGError(f"knowledge file {path}{where}: invalid YAML ({what})") from exc
    if not isinstance(data, dict):
        raise KGError(f"knowledge file {path}: line 1: expected a mapping at the top level")
    return data


#: Top-level sections of a knowledge YAML file and the type each must have.
SECTION_TYPES: dict[str, type] = {
    "sources": dict, "vision_classes": list, "entities": dict, "facts": list, "orders": dict,
    "procedures": dict, "cvs": dict, "surveys": dict, "regions": list, "pathologies": dict,
    "complete": list,
}


class _Lines:
    """1-based line numbers of nodes of a YAML document (for error messages)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._root: Any = None
        self._done = False

    def line(self, *keys: str | int) -> int | None:
        """The line where the value at ``keys`` (mapping keys / sequence indices) starts."""
        if not self._done:  # composed only when an error needs it
            self._done = True
            try:
                self._root = yaml.compose(self.path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError):
                self._root = None
        node = self._root
        for k in keys:
            if isinstance(node, yaml.MappingNode):
                node = next((v for kn, v in node.value if kn.value == k), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(k, int) \
                    and 0 <= k < len(node.value):
                node = node.value[k]
            else:
                node = None
            if node is None:
                return None
        return None if node is None else node.start_mark.line + 1

    def at(self, *keys: str | int) -> str:
        """``"FILE: line N"`` (or just the file when the line is unknown)."""
        n = self.line(*keys)
        return f"{self.path}: line {n}" if n is not None else str(self.path)


def load_yaml_files(paths: list[Path]) -> KnowledgeGraph:
    """Build a graph from knowledge YAML files (anatomy / procedures / pathology sections).

    Malformed files raise :class:`KGError` with one line naming the file and the line.
    """
    kg = KnowledgeGraph()
    for path in paths:
        p = Path(path)
        data = _read_yaml(p)
        lines = _Lines(p)
        for name, typ in SECTION_TYPES.items():
            if name in data and data[name] is not None and not isinstance(data[name], typ):
                kind = "a mapping" if typ is dict else "a list"
                raise KGError(f"{lines.at(name)}: section {name!r} must be {kind}, not "
                              f"{type(data[name]).__name__}")
        try:
            _add_yaml(kg, data, lines)
        except KGError:
            raise
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise KGError(f"{p}: bad knowledge data ({exc.__class__.__name__}: {exc})") from exc
    return kg


def _add_yaml(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """Add one YAML file's sections to ``kg`` (sources and vision classes first)."""
    kg.sources.update(data.get("sources") or {})
    kg.vision_classes.extend(
        c for c in data.get("vision_classes") or [] if c not in kg.vision_classes
    )
    _add_entities(kg, data, lines)
    _add_facts(kg, data, lines)
    _add_orders(kg, data, lines)
    _add_models(kg, data, lines)
    _add_pathologies(kg, data, lines)


def _add_entities(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """The ``entities`` section (a SCOP id gets the project-id note)."""
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
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise KGError(f"{lines.at('entities', key)}: bad entity {key!r} "
                          f"({exc.__class__.__name__}: {exc})") from exc


def _add_facts(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """The ``facts`` section: [subject, predicate, object, {attrs}] rows."""
    for i, row in enumerate(data.get("facts") or []):
        if not isinstance(row, list) or len(row) not in (3, 4) or \
                (len(row) == 4 and not isinstance(row[3], dict)):
            raise KGError(f"{lines.at('facts', i)}: a fact must be "
                          f"[subject, predicate, object, {{attrs}}], not {row!r}")
        attrs = row[3] if len(row) == 4 else {}
        src = attrs.get("src", "gray")
        try:
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
        except KGError as exc:
            raise KGError(f"{lines.at('facts', i)}: {exc}") from exc


def _add_orders(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """The ``orders`` section: each consecutive pair becomes a continuous_with fact."""
    for name, spec in (data.get("orders") or {}).items():
        if not isinstance(spec, dict) or not isinstance(spec.get("items"), list):
            raise KGError(f"{lines.at('orders', name)}: order {name!r} needs a list 'items'")
        items = list(spec["items"])
        kg.orders[name] = items
        src = kg.sources.get(spec.get("src", ""), spec.get("src", ""))
        for a, b in zip(items, items[1:], strict=False):
            kg.add_fact(Fact(a, "continuous_with", b, None, name, None, src))


def _add_models(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """Procedures (with their phase entities), complete lists, CVS, surveys, regions."""
    for name, spec in (data.get("procedures") or {}).items():
        kg.procedures[name] = spec
        _add_phases(kg, name, spec)
    for i, row in enumerate(data.get("complete") or []):
        if not isinstance(row, list) or len(row) < 2 or row[0] not in kg.entities:
            raise KGError(f"{lines.at('complete', i)}: expected [entity, relation], not {row!r}")
        kg.complete.add((str(row[0]), str(row[1])))
    if data.get("cvs"):
        kg.cvs = data["cvs"]
    for name, spec in (data.get("surveys") or {}).items():
        kg.surveys[name] = spec
    if data.get("regions"):
        kg.regions = list(data["regions"])


def _add_pathologies(kg: KnowledgeGraph, data: dict[str, Any], lines: _Lines) -> None:
    """The ``pathologies`` section; every entity a pattern names must exist."""
    for name, spec in (data.get("pathologies") or {}).items():
        if not isinstance(spec, dict):
            raise KGError(f"{lines.at('pathologies', name)}: pathology {name!r} must be a "
                          "mapping")
        for k in (
            *spec.get("connects", []),
            *spec.get("typical_sites", []),
            *spec.get("involves", []),
        ):
            if k not in kg.entities:
                raise KGError(f"{lines.at('pathologies', name)}: pathology {name} names "
                              f"unknown entity {k!r}")
        kg.pathologies[name] = spec


def _add_phases(kg: KnowledgeGraph, procedure: str, spec: dict[str, Any]) -> None:
    """The procedure's phases as entities (kind "phase") and their order as ``precedes``
    facts, so that answers about steps cite graph edges with ids."""
    src = kg.sources.get(spec.get("src", ""), spec.get("src", ""))
    keys = []
    for ph in spec.get("phases") or []:
        key = kg.phase_key(str(ph["name"]))
        kg.add_entity(Entity(key, f"SCOP:{key}", str(ph.get("spoken", ph["name"])), "phase",
                             source=src, note=f"phase of {procedure}"))
        keys.append(key)
    for a, b in zip(keys, keys[1:], strict=False):
        kg.add_fact(Fact(a, "precedes", b, None, procedure, None, src))


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
    from kg_reasoning.rdf_read import from_rdf_file

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

"""The shipped knowledge graph: ids, sources, query API, RDF round trip."""

from __future__ import annotations

import re

import pytest

from kg_reasoning.catalogue import load_catalogue
from kg_reasoning.errors import KGError
from kg_reasoning.graph import Entity, Fact, KnowledgeGraph
from kg_reasoning.loaders import load_default, load_turtle, load_yaml_files

# The UBERON ids DATASETS.md lists as checked: no other UBERON id may appear in the shipped KG.
CHECKED_UBERON = {
    "liver": "UBERON:0002107",
    "gallbladder": "UBERON:0002110",
    "gallbladder_fundus": "UBERON:0006081",
    "cystic_duct": "UBERON:0001152",
    "common_bile_duct": "UBERON:0001174",
    "common_hepatic_duct": "UBERON:0001175",
    "right_hepatic_duct": "UBERON:0001176",
    "left_hepatic_duct": "UBERON:0001177",
    "biliary_tree": "UBERON:0001173",
    "cystic_artery": "UBERON:0039222",
    "proper_hepatic_artery": "UBERON:0015480",
    "right_hepatic_artery": "UBERON:0015482",
    "left_hepatic_artery": "UBERON:0015481",
    "common_hepatic_artery": "UBERON:0005436",
    "portal_vein": "UBERON:0001639",
    "hepatic_vein": "UBERON:0001143",
    "duodenum": "UBERON:0002114",
    "stomach": "UBERON:0000945",
    "pancreas": "UBERON:0001264",
    "abdominal_aorta": "UBERON:0001516",
    "inferior_vena_cava": "UBERON:0001072",
    "superior_mesenteric_artery": "UBERON:0001182",
    "superior_mesenteric_vein": "UBERON:0001138",
    "jejunum": "UBERON:0002115",
    "ileum": "UBERON:0002116",
    "caecum": "UBERON:0001153",
    "ascending_colon": "UBERON:0001156",
    "transverse_colon": "UBERON:0001157",
    "descending_colon": "UBERON:0001158",
    "sigmoid_colon": "UBERON:0001159",
    "rectum": "UBERON:0001052",
    "falciform_ligament": "UBERON:0001247",
    "round_ligament_of_liver": "UBERON:0006588",
    "lesser_omentum": "UBERON:0002399",
    "gastroduodenal_artery": "UBERON:0010132",
    "celiac_trunk": "UBERON:0006637",
}


@pytest.fixture(scope="module")
def kg():
    return load_default()


def test_ids_are_checked_uberon_or_project_ids_with_notes(kg):
    for key, e in kg.entities.items():
        if e.id.startswith("UBERON:"):
            assert CHECKED_UBERON.get(key) == e.id, f"{key}: {e.id} is not a checked id"
        else:
            assert e.id == f"SCOP:{key}", key
            assert e.note, f"{key} has a project id but no note"
        assert e.source, key
    for key, uid in CHECKED_UBERON.items():
        assert kg.entities[key].id == uid
    # unverified ones stay project ids
    for key in (
        "duodenum_d1",
        "duodenum_d3",
        "head_of_pancreas",
        "greater_omentum",
        "hepatocystic_triangle",
    ):
        assert kg.entities[key].id.startswith("SCOP:")


def test_every_fact_has_a_source_and_known_relation(kg):
    allowed = {
        "part_of",
        "adjacent_to",
        "supplied_by",
        "drains_to",
        "continuous_with",
        "contains",
        "bounded_by",
        "branch_of",
        "precedes",  # procedure phase order (issue 20: steps are graph edges)
    }
    for f in kg.facts:
        assert f.source, f
        assert f.p in allowed, f
        if f.side:
            assert f.p == "adjacent_to"


def test_catalogue_structures_are_kg_entities(kg):
    cat = load_catalogue()
    for key in cat.slot_values["structure"]:
        assert key in kg.entities, key
    for key, forms in cat.slot_values["structure"].items():
        for form in forms:
            e = kg.resolve(form)
            assert e is not None and e.key == key, (form, e and e.key)


def test_vision_names_are_present(kg):
    for cls in (
        "liver",
        "gallbladder",
        "cystic_duct",
        "cystic_artery",
        "common_bile_duct",
        "hepatic_vein",
        "large_vessel",
        "blood",
        "fat",
    ):
        assert kg.entities[cls].segmentable
    assert not kg.entities["portal_vein"].segmentable
    assert kg.surveys["bowel_survey"]["order"][2] == "duodenum_d3"
    phases = [p["name"] for p in kg.procedures["laparoscopic_cholecystectomy"]["phases"]]
    assert phases == [
        "Preparation",
        "CalotTriangleDissection",
        "ClippingCutting",
        "GallbladderDissection",
        "GallbladderPackaging",
        "CleaningCoagulation",
        "GallbladderRetraction",
    ]
    assert [c["name"] for c in kg.cvs["criteria"]] == [
        "two_structures",
        "hepatocystic_triangle_cleared",
        "cystic_plate_exposed",
    ]


def test_neighbours_with_relation_and_side(kg):
    behind = {n.key for n in kg.located("duodenum_d3", "posterior")}
    assert behind == {"abdominal_aorta", "inferior_vena_cava"}
    in_front = {n.key for n in kg.located("duodenum_d3", "anterior")}
    assert in_front == {"superior_mesenteric_artery", "superior_mesenteric_vein"}
    # read backwards: D3 lies in front of the aorta
    n = [n for n in kg.neighbours("abdominal_aorta", "adjacent_to") if n.key == "duodenum_d3"]
    assert n and n[0].side == "anterior"
    assert {n.key for n in kg.neighbours("gallbladder", "supplied_by")} == {"cystic_artery"}
    assert "gallbladder" in {n.key for n in kg.neighbours("cystic_artery", "supplies")}


def test_part_of_closure_parts_paths_and_orders(kg):
    assert kg.part_of_closure("duodenum_d3") == ["duodenum", "small_intestine", "gi_tract"]
    assert kg.is_part_of("liver_segment_5", "liver")
    assert {"gallbladder_fundus", "gallbladder_body", "gallbladder_neck"} <= set(
        kg.parts("gallbladder")
    )
    assert kg.next_in_order("duodenum_d3") == "duodenum_d4"
    assert kg.previous_in_order("jejunum") == "duodenum_d4"
    assert kg.next_in_order("rectum") is None
    assert kg.next_in_order("duodenum_d2", "bowel_survey") == "duodenum_d3"
    chain = kg.path("cystic_artery", "abdominal_aorta", relations=["branch_of"])
    assert [f.o for f in chain] == [
        "right_hepatic_artery",
        "proper_hepatic_artery",
        "common_hepatic_artery",
        "celiac_trunk",
        "abdominal_aorta",
    ]
    assert [f.o for f in kg.drains_to("cystic_duct")] == ["common_bile_duct"]
    assert {f.s for f in kg.drained_by("common_bile_duct")} == {
        "cystic_duct",
        "common_hepatic_duct",
    }
    assert {f.o for f in kg.supplied_by("duodenum_d3")} == {"superior_mesenteric_artery"}
    assert "duodenum_d3" in {f.s for f in kg.supplies("superior_mesenteric_artery")}


def test_synonyms_resolve(kg):
    assert kg.resolve("Calot's triangle").key == "hepatocystic_triangle"
    assert kg.resolve("the IVC").key == "inferior_vena_cava"
    assert kg.resolve("D3").key == "duodenum_d3"
    assert kg.resolve("UBERON:0001516").key == "abdominal_aorta"
    assert kg.resolve("SCOP:duodenum_d3").key == "duodenum_d3"
    assert kg.resolve("spleen") is None
    assert [e.key for e in kg.find_mentions("what lies behind the third part of the duodenum")] == [
        "duodenum_d3"
    ]
    with pytest.raises(KGError):
        kg.entity("spleen")


def test_shipped_graph_round_trips_through_turtle(kg, tmp_path):
    p = tmp_path / "kg.ttl"
    p.write_text(kg.to_turtle(), encoding="utf-8")
    back = load_turtle(p)
    assert {k: e.id for k, e in back.entities.items()} == {k: e.id for k, e in kg.entities.items()}
    for k, e in kg.entities.items():
        b = back.entities[k]
        assert (b.label, set(b.synonyms), b.cues, b.note, b.source, b.segmentable) == (
            e.label,
            set(e.synonyms),
            e.cues,
            e.note,
            e.source,
            e.segmentable,
        )
    assert {(f.s, f.p, f.o, f.side, f.order, f.source) for f in back.facts} == {
        (f.s, f.p, f.o, f.side, f.order, f.source) for f in kg.facts
    }
    assert back.procedures == kg.procedures and back.pathologies == kg.pathologies
    ttl = p.read_text()
    assert re.search(r"obo:UBERON_0001516", ttl) and "BFO_0000050" in ttl


def test_load_is_cached():
    """A fresh load parses the files; later loads reuse it (load time itself is benchmarked
    by benchmarks/bench_reasoner.py, not asserted here: the test machines are shared)."""
    kg = load_default()
    assert load_default() is kg  # cached
    fresh = load_default(fresh=True)  # a new instance with the same content
    assert fresh is not kg and len(fresh.facts) == len(kg.facts) > 0


def test_bad_knowledge_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entities: {a: {id: 'SCOP:a'}}\nfacts: [[a, part_of, b]]\n")
    with pytest.raises(KGError, match="unknown entity 'b'"):
        load_yaml_files([bad])
    with pytest.raises(KGError, match="not found"):
        load_yaml_files([tmp_path / "nope.yaml"])



@pytest.mark.parametrize("text,line,what", [
    ("entities:\n  foo: [unclosed\n", 3, "invalid YAML"),
    ("entities:\n  - 1\nfacts: 5\n", 2, "section 'entities' must be a mapping"),
    ("sources: {}\nfacts: 5\n", 2, "section 'facts' must be a list"),
    ("entities: {a: {id: 'SCOP:a'}}\nfacts:\n  - [a, part_of, a]\n  - [a, b]\n", 4,
     "a fact must be"),
    ("entities: {a: {id: 'SCOP:a'}}\nfacts:\n  - [a, part_of, a]\n  - [a, part_of, b]\n", 4,
     "unknown entity 'b'"),
    ("entities:\n  a: {id: 'SCOP:a'}\n  b: 7\n", 3, "bad entity 'b'"),
])
def test_malformed_yaml_names_file_and_line(tmp_path, text, line, what):
    p = tmp_path / "k.yaml"
    p.write_text(text)
    with pytest.raises(KGError) as ei:
        load_yaml_files([p])
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg and f"line {line}" in msg and what in msg, msg


def test_malformed_turtle_names_file_and_line(tmp_path):
    p = tmp_path / "k.ttl"
    p.write_text("@prefix ex: <http://x/> .\nex:a ex:b ex:c\nex:d ex:e .\n")
    with pytest.raises(KGError) as ei:
        load_turtle(p)
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg and "line 3" in msg, msg

def test_merge_by_id_adds_synonyms():
    a, b = KnowledgeGraph(), KnowledgeGraph()
    a.add_entity(Entity("liver", "UBERON:0002107", "liver"))
    b.add_entity(Entity("hepar_x", "UBERON:0002107", "hepar", synonyms=["iecur"]))
    b.add_entity(Entity("lobe", "SCOP:lobe", "lobe"))
    b.add_fact(Fact("lobe", "part_of", "hepar_x", source="test"))
    a.merge(b)
    assert a.resolve("iecur").key == "liver"
    assert a.part_of_closure("lobe") == ["liver"]


def test_shipped_turtle_is_in_sync_with_the_yaml(kg):
    """kg_reasoning/data/kg.ttl (python -m kg_reasoning.rdf) equals the compiled YAML."""
    from kg_reasoning.rdf import SHIPPED_TURTLE

    back = load_turtle(SHIPPED_TURTLE)
    assert {k: e.id for k, e in back.entities.items()} == {k: e.id for k, e in kg.entities.items()}
    assert {k: set(e.synonyms) for k, e in back.entities.items()} == {
        k: set(e.synonyms) for k, e in kg.entities.items()
    }
    assert {(f.s, f.p, f.o, f.side, f.order, f.source) for f in back.facts} == {
        (f.s, f.p, f.o, f.side, f.order, f.source) for f in kg.facts
    }
    assert back.pathologies == kg.pathologies and back.cvs == kg.cvs

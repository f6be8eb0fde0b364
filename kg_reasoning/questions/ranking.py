"""Ranking hypotheses for a finding (identify, step 3): its appearance cues (calibre,
pulsatile, colour), the candidates the graph puts at its place (a bowel segment's
neighbours, the space the landmarks in view outline, vessels within two hops of them), an
appearance match in [0, 1] per candidate, and fistula patterns for a vessel in the lumen."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from kg_reasoning.graph import SIDE_WORDS, Entity, Fact
from kg_reasoning.phrasing import join_words
from kg_reasoning.questions.base import Context
from kg_reasoning.timeline import Observation

VESSEL_KINDS = ("artery", "vein")
CALIBRES = ("small", "medium", "large")


def finding_cues(r: Context, name: str, det: list[Observation]) -> dict[str, Any]:
    """Appearance of a detection: calibre, pulsatile, tubular, colour (from attrs / KG)."""
    prior = r.kg.entities[name].cues if name in r.kg.entities else {}
    cues: dict[str, Any] = {}
    puls = [bool(o.attrs["pulsatile"]) for o in det if "pulsatile" in o.attrs]
    puls += [
        float(o.attrs["pulsatile_score"]) >= 0.5 for o in det if "pulsatile_score" in o.attrs
    ]
    if puls:
        frac = sum(puls) / len(puls)
        if not 0.35 <= frac <= 0.65:  # in between: pulsatility unknown
            cues["pulsatile"] = frac > 0.65
        cues["pulsatile_fraction"] = round(frac, 3)
    elif "pulsatile" in prior:
        cues["pulsatile"] = bool(prior["pulsatile"])
    areas = [float(o.attrs["area"]) for o in det if "area" in o.attrs]
    if "calibre" in prior:
        cues["calibre"] = prior["calibre"]
        if name in r.kg.entities and r.kg.entities[name].kind == "finding":
            # a finding class's calibre ("large vessel") is relative: larger than expected
            cues["calibre_relative"] = True
    elif areas:
        a = sum(areas) / len(areas)
        cues["calibre"] = "large" if a >= 0.05 else "medium" if a >= 0.01 else "small"
    if areas:
        cues["area"] = round(sum(areas) / len(areas), 4)
    colours = [str(o.attrs["colour"]) for o in det if "colour" in o.attrs]
    if colours:
        cues["colour"] = Counter(colours).most_common(1)[0][0]
    if "tubular" in prior:
        cues["tubular"] = bool(prior["tubular"])
    return cues

@staticmethod


def match(
    finding: dict[str, Any], cues: dict[str, Any], ref_calibre: str | None = None
) -> tuple[float, list[str]]:
    """Appearance match of a finding against an entity's cues, in [0, 1], with reasons.

    ``ref_calibre``: for a finding whose calibre is relative (``calibre_relative``, e.g.
    "large vessel" = larger than expected here), the calibre of what is expected at the
    place (the visible vessels, or the smallest vessel the space holds): candidates above
    it match (1.0), in the same coarse class nearly (0.8), below it hardly (0.2).
    """
    scores, why = [], []
    if "pulsatile" in finding and "pulsatile" in cues:
        ok = finding["pulsatile"] == cues["pulsatile"]
        scores.append(1.0 if ok else 0.2)
        if ok:  # a reason only when it supports the hypothesis
            why.append(("" if cues["pulsatile"] else "not ") + "pulsatile")
    if "calibre" in finding and "calibre" in cues:
        if finding.get("calibre_relative") and ref_calibre in CALIBRES:
            d = CALIBRES.index(cues["calibre"]) - CALIBRES.index(ref_calibre)
            scores.append(1.0 if d > 0 else 0.8 if d == 0 else 0.2)
            ok = d > 0  # only a larger calibre than expected supports "large"
        else:
            d = abs(CALIBRES.index(finding["calibre"]) - CALIBRES.index(cues["calibre"]))
            scores.append((1.0, 0.5, 0.1)[d])
            ok = d == 0
        if ok:  # "a large vessel" is not justified by "small calibre"
            why.append(f"{cues['calibre']} calibre")
    if "colour" in finding and cues.get("colour"):
        scores.append(1.0 if finding["colour"] in cues["colour"] else 0.4)
    if not scores:
        return 0.5, why
    prod = 1.0
    for s in scores:
        prod *= s
    return prod ** (1 / len(scores)), why


def spaces(r: Context, anchors: list[str]) -> list[str]:
    """Spaces (e.g. the hepatocystic triangle) that the visible landmarks outline: at
    least two of a space's boundaries / usual contents in view, the best matched first."""
    kg = r.kg
    seen = set(anchors)
    found = []
    for key, e in kg.entities.items():
        if e.kind != "space":
            continue
        parts = {n.key for n in kg.neighbours(key) if n.relation in ("bounded_by", "contains")}
        hit = len(parts & seen)
        if hit >= 2:
            found.append((-hit / len(parts), key))
    return [k for _, k in sorted(found)]


def reference_calibre(r: Context, anchors: list[str], inside: set[str]) -> str | None:
    """What calibre is expected here: the largest vessel in view, else the smallest
    vessel the space usually holds (None when neither is known)."""
    kg = r.kg

    def cal(keys: Any) -> list[int]:
        return [
            CALIBRES.index(kg.entities[k].cues["calibre"])
            for k in keys
            if k in kg.entities
            and kg.entities[k].kind in VESSEL_KINDS
            and kg.entities[k].cues.get("calibre") in CALIBRES
        ]

    seen = cal(anchors)
    if seen:
        return CALIBRES[max(seen)]
    held = cal(inside)
    return CALIBRES[min(held)] if held else None


def fistula(r: Context, vessel: str, segment: str) -> tuple[str, dict[str, Any]] | None:
    """The fistula pattern connecting ``vessel`` to something ``segment`` is part of."""
    kg = r.kg
    for pid, p in sorted(kg.pathologies.items()):
        if p.get("kind") != "fistula":
            continue
        conn = p.get("connects", [])
        if vessel in conn and any(kg.is_part_of(segment, c) for c in conn if c != vessel):
            return pid, p
    return None


def side_phrase(facts: list[Fact]) -> str:
    """The side words of the first sided adjacency ("behind"), else "next to"."""
    for f in facts:
        if f.p == "adjacent_to" and f.side:
            return SIDE_WORDS[f.side]
    return "next to"


def neighbour_sentence(r: Context, facts: list[Fact], segment: str | None) -> str:
    """Up to four adjacency facts as one sentence."""
    adj = [f for f in facts if f.p == "adjacent_to"]
    if not adj:
        return "The knowledge graph lists no vessels next to it."
    return "From the knowledge graph: " + join_words([r.fact_text(f) for f in adj[:4]]) + "."


def _candidates(r: Context, segment: str | None, anchors: list[str]
                ) -> tuple[dict[str, list[Fact]], list[str], set[str], str | None]:
    """Candidate keys with the facts that put them here; the spaces the landmarks outline,
    what those usually hold, and the calibre expected here."""
    kg = r.kg
    cands: dict[str, list[Fact]] = defaultdict(list)
    outlined: list[str] = []
    inside: set[str] = set()
    ref_calibre = None
    if segment is None:
        outlined = spaces(r, anchors)
        for sp in outlined:  # what the space the landmarks outline usually holds
            for n in kg.neighbours(sp, "contains"):
                inside.add(n.key)
                if n.key not in anchors:
                    cands[n.key].append(n.fact)
        ref_calibre = reference_calibre(r, anchors, inside)
    if segment is not None:
        for n in kg.neighbours(segment):
            if n.relation in ("adjacent_to", "supplied_by"):
                cands[n.key].append(n.fact)
    near = ("adjacent_to", "contains", "contained_in", "supplied_by", "bounded_by", "bounds")
    for a in anchors:  # vessels within two hops of the visible landmarks
        for n in kg.neighbours(a):
            if n.relation not in near:
                continue
            cands[n.key].append(n.fact)
            for n2 in kg.neighbours(n.key):
                if n2.relation in near and n2.key not in anchors:
                    if (
                        kg.entities[n2.key].kind in VESSEL_KINDS
                        and n2.fact not in cands[n2.key]
                    ):
                        cands[n2.key].append(n2.fact)
    return cands, outlined, inside, ref_calibre


def _fistula_hypothesis(r: Context, pattern: tuple[str, dict[str, Any]], e: Entity, m: float,
                        why: list[str], fs: list[Fact], segment: str) -> dict[str, Any]:
    """A vessel seen inside the lumen: an abnormal connection (e.g. aortoduodenal
    fistula), surer at one of its typical sites."""
    key = e.key
    pid, p = pattern
    site = 1.0 if segment in p.get("typical_sites", []) else 0.7
    conn = [c for c in p["connects"] if c != key]
    return {
        "key": pid,
        "id": p.get("id", ""),
        "label": p["label"],
        "article": "an " if p["label"][0] in "aeiou" else "a ",
        "score": round(m * site, 4),
        "via": key,
        "why": (
            f"The {r.say(e.key)}"
            f"{' (' + ', '.join(why) + ')' if why else ''} lies "
            f"{side_phrase(fs)} the {r.say(segment)}; a vessel seen "
            f"inside the lumen suggests an abnormal connection between the "
            f"{r.say(e.key)} and the "
            f"{join_words([r.say(c) for c in conn])}."
        ),
        "source": p.get("src", ""),
        "facts": fs,
    }


def _wall_hypothesis(r: Context, finding_name: str, e: Entity, m: float, fs: list[Fact],
                     segment: str) -> dict[str, Any]:
    """A neighbour of a bowel segment seen through its wall (or bleeding from it)."""
    label = (
        f"bleeding from the {r.say(e.key)}"
        if finding_name == "blood"
        else f"the {r.say(e.key)} seen through the wall"
    )
    return {
        "key": e.key,
        "id": e.id,
        "label": label,
        "article": "",
        "score": round(m * 0.5, 4),
        "via": e.key,
        "why": f"The {r.say(e.key)} lies {side_phrase(fs)} the "
        f"{r.say(segment)}.",
        "source": "",
        "facts": fs,
    }


def _near_hypothesis(r: Context, finding_name: str, e: Entity, m: float, why: list[str],
                     fs: list[Fact], anchors: list[str], outlined: list[str],
                     inside: set[str]) -> dict[str, Any]:
    """A structure near the landmarks in view: likelier the more landmarks it relates to,
    and inside the space they outline (when they outline one)."""
    key = e.key
    linked = {f.s for f in fs} | {f.o for f in fs}
    share = len([a for a in anchors if a in linked]) / max(1, len(anchors))
    near_score = 0.6 + 0.4 * share
    if outlined:  # inside the space the landmarks outline, or (less likely) not
        near_score = 1.0 if key in inside else 0.5 * near_score
    label = (
        f"bleeding from the {r.say(e.key)}"
        if finding_name == "blood"
        else f"the {r.say(e.key)}"
    )
    return {
        "key": key,
        "id": e.id,
        "label": label,
        "article": "",
        "score": round(m * near_score, 4),
        "via": key,
        "why": (f"The {r.say(e.key)} is {', '.join(why)}; " if why else "")
        + f"{r.fact_text(fs[0])}.".capitalize(),
        "source": "",
        "facts": fs,
    }


def hypotheses(
    r: Context, finding_name: str, finding: dict[str, Any], segment: str | None,
    anchors: list[str]
) -> tuple[list[dict[str, Any]], list[Fact]]:
    """Ranked hypotheses (best score first, in [0, 1]) for a finding at a bowel
    ``segment`` or among the ``anchors`` in view, and the facts they rest on."""
    kg = r.kg
    vessel_finding = finding_name == "large_vessel" or finding.get("tubular")
    facts: list[Fact] = []
    cands, outlined, inside, ref_calibre = _candidates(r, segment, anchors)
    hyps: list[dict[str, Any]] = []
    for key, fs in cands.items():
        e = kg.entities[key]
        if segment is None and key in anchors:
            continue  # segmented separately in the same frames: not this finding
        if vessel_finding and e.kind not in VESSEL_KINDS:
            continue
        if finding_name == "blood" and e.kind not in VESSEL_KINDS:
            continue
        facts.extend(f for f in fs if f not in facts)
        m, why = (
            match(finding, e.cues, ref_calibre if outlined else None)
            if finding_name != "blood"
            else (0.6, [])
        )
        if segment is None:
            hyps.append(_near_hypothesis(r, finding_name, e, m, why, fs, anchors, outlined,
                                         inside))
            continue
        pattern = fistula(r, key, segment)
        if pattern is not None and finding_name != "blood":
            hyps.append(_fistula_hypothesis(r, pattern, e, m, why, fs, segment))
        else:
            hyps.append(_wall_hypothesis(r, finding_name, e, m, fs, segment))
    hyps.sort(key=lambda h: (-h["score"], h["label"]))
    return hyps, facts

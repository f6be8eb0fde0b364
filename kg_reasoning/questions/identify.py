"""What is this: three steps, each of which may fail (and then the copilot abstains):
1. detect: the finding the cue names (or the most unexpected one) in the last ``recent_s`` s;
2. locate: the region model's vote in the same frames, and the landmarks in view;
3. rank: a known vision class is named directly; a finding (e.g. a large pulsatile vessel in
   the third part of the duodenum) is matched against what the graph puts there
   (:mod:`kg_reasoning.questions.ranking`). Scores are probabilities in [0, 1]."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from kg_reasoning.answers import UNSURE, Answer, Question, Step, abstain, obs_evidence, window_ref
from kg_reasoning.evidence import pick_finding
from kg_reasoning.graph import Entity
from kg_reasoning.phrasing import count_words, describe, join_words
from kg_reasoning.questions.base import Context
from kg_reasoning.questions.commands import COLOUR_RGB
from kg_reasoning.questions.ranking import finding_cues, hypotheses, neighbour_sentence, spaces
from kg_reasoning.timeline import Observation

#: Cue slot -> structure classes the vision model reports for it.
CUE_CLASSES: dict[str | None, tuple[str, ...]] = {
    "large_vessel": ("large_vessel",),
    "blood": ("blood",),
    "tubular_structure": ("cystic_duct", "common_bile_duct", "cystic_artery", "large_vessel"),
    "mass": (),
}


@dataclass
class Seen:
    """Step 1's finding: its class, detections, mean score, cues, words and step."""

    name: str
    det: list[Observation]
    score: float
    cues: dict[str, Any]
    desc: str
    step: Step


@dataclass
class Place:
    """Step 2's place: the region, whether it is inside the bowel, the landmarks in view,
    the words for it, its confidence (vote share x mean region score) and step."""

    region: str
    endoluminal: bool
    anchors: list[str]
    where: str
    conf: float
    step: Step


def _detect(r: Context, q: Question, structs: list[Observation], t0: float, now: float
            ) -> Answer | Seen:
    """Step 1: the detection the cue asks for (an abstention when there is none, or two)."""
    cfg, kg = r.cfg, r.kg
    cue = q.slots.get("cue")
    if cue in CUE_CLASSES:
        targets: tuple[str, ...] = CUE_CLASSES[cue]
    else:
        targets = tuple(c for c in kg.vision_classes if c in kg.entities)
    cue_label = r.cat.spoken("cue", cue) if cue else "structure"
    found = r.detections(structs, set(targets))
    if cue is None:  # "what is this?": an unexpected finding first, else the most salient
        unexpected = [o for o in found if kg.entities[o.name].kind == "finding"]
        found = unexpected if len(unexpected) >= cfg.min_frames else found
    if not targets:
        s1 = Step(f"I have no detector for a {cue_label}.", False,
                  {"rule": "cue -> vision classes", "rule_id": f"rule:cue_classes:{cue}"})
        return abstain(
            q.intent,
            f"{UNSURE}: I cannot detect a {cue_label}.",
            [s1],
            reason=f"no detector for cue {cue!r}",
        )
    if len(found) < cfg.min_frames:
        s1 = Step(
            f"No {cue_label} detected in the last {cfg.recent_s:g} s.",
            False,
            {
                "observations": obs_evidence(
                    r.detections(structs, set(targets))
                    or [o for o in structs if o.name in targets]
                ),
                "window": window_ref(t0, now),
            },
        )
        return abstain(
            q.intent,
            f"{UNSURE}: I do not see a {cue_label} right now.",
            [s1],
            reason=f"step 1 failed: no {cue_label} detected",
        )
    return _pick(r, q, found)


def _pick(r: Context, q: Question, found: list[Observation]) -> Answer | Seen:
    """The detected class to explain (asks back when two are equally likely)."""
    picked, decided, tied = pick_finding(found, r.names)
    if picked is None:  # no alphabetical tie-break: ask which one is meant
        names = [r.say(n) for n in tied]
        s1 = Step(f"I detect the {join_words(names)} equally clearly; {decided}.", False,
                  {"observations": obs_evidence(found)})
        return abstain(
            q.intent,
            f"{UNSURE} which one you mean: I see the {join_words(names)}. Which structure "
            "do you mean?",
            [s1],
            reason="two findings equally likely: " + ", ".join(tied),
        )
    name = picked
    det = [o for o in found if o.name == name]
    det_score = sum(o.score for o in det) / len(det)
    finding = finding_cues(r, name, det)
    desc = describe(finding, r.say(name))
    s1 = Step(
        f"I detect {desc} in {len(det)} frames (mean score {det_score:.2f}); chosen by "
        f"{decided}.",
        True,
        {
            "observations": obs_evidence(det),
            "scores": {
                "detection": round(det_score, 3),
                **{k: v for k, v in finding.items() if isinstance(v, float)},
            },
            "cues": {k: v for k, v in finding.items() if not isinstance(v, float)},
        },
    )
    return Seen(name, det, det_score, finding, desc, s1)


def _anchors(r: Context, structs: list[Observation], name: str) -> list[str]:
    """The anatomical landmarks confidently in view besides the finding (sorted keys)."""
    kg = r.kg
    return sorted(
        {
            o.name
            for o in structs
            if o.score >= r.cfg.detect_min_score
            and o.name != name
            and o.name in kg.entities
            and kg.entities[o.name].kind not in ("finding", "tissue")
        }
    )


def _where(r: Context, region: str, endoluminal: bool, anchors: list[str]) -> str:
    """ "in the third part of the duodenum", "in the hepatocystic triangle, next to the ..."."""
    kg = r.kg
    region_label = r.say(region) if region in kg.entities else region.replace("_", " ")
    outlined = [] if endoluminal else spaces(r, anchors)  # e.g. the hepatocystic triangle
    return (
        f"in the {region_label}"
        if endoluminal
        else (f"in the {r.say(outlined[0])}" if outlined else "in the abdominal cavity")
        + (f", next to the {join_words([r.say(a) for a in anchors])}" if anchors else "")
    )


def _locate(r: Context, q: Question, seen: Seen, window: list[Observation],
            structs: list[Observation], t0: float, now: float) -> Answer | Place:
    """Step 2: the region the finding's frames are in, and the landmarks in view."""
    cfg, kg = r.cfg, r.kg
    regions = [o for o in window if o.kind == "region" and o.score >= cfg.detect_min_score]
    frames = {o.frame_id for o in seen.det}
    same = [o for o in regions if o.frame_id in frames] or regions
    if not same:
        s2 = Step("No anatomical region estimate for these frames.", False,
                  {"observations": obs_evidence(seen.det), "window": window_ref(t0, now)})
        return abstain(
            q.intent,
            f"{UNSURE}: I see {seen.desc}, but I cannot place it anatomically.",
            [seen.step, s2],
            reason="step 2 failed: no region estimate",
            confidence=seen.score * 0.3,
        )
    region, rn = Counter(o.name for o in same).most_common(1)[0]
    share = rn / len(same)
    rmine = [o for o in same if o.name == region]
    rscore = sum(o.score for o in rmine) / len(rmine)
    loc_conf = share * rscore
    endoluminal = region in kg.surveys.get("bowel_survey", {}).get("order", [])
    anchors: list[str] = [] if endoluminal else _anchors(r, structs, seen.name)
    where = _where(r, region, endoluminal, anchors)
    ok2 = share >= cfg.region_min_share and region != "out_of_body" and (endoluminal or anchors)
    s2 = Step(
        f"It is {where} (region score {rscore:.2f}, {rn} of {len(same)} frames).",
        bool(ok2),
        {
            "observations": obs_evidence(rmine),
            "scores": {"region": round(rscore, 3), "share": round(share, 3)},
        },
    )
    if not ok2:
        return abstain(
            q.intent,
            f"{UNSURE}: I see {seen.desc}, but I cannot place it anatomically.",
            [seen.step, s2],
            reason="step 2 failed: region uncertain or no landmark",
            confidence=seen.score * loc_conf,
        )
    return Place(region, endoluminal, anchors, where, loc_conf, s2)


def _known(r: Context, q: Question, entity: Entity, seen: Seen, place: Place) -> Answer:
    """A known anatomical class (e.g. cystic artery): the model names it directly; the
    graph's facts relating it to the landmarks in view support it."""
    nbs = [n for n in r.kg.neighbours(seen.name) if n.key in place.anchors][:6]
    facts = [n.fact for n in nbs]
    related = list(dict.fromkeys(n.key for n in nbs))  # as many as facts cite
    s3 = Step(
        (f"The knowledge graph relates the {r.say(entity.key)} to the "
         f"{join_words([r.say(a) for a in related])} in view "
         f"({count_words(len(facts), 'fact')})." if related else
         f"The knowledge graph has no fact relating the {r.say(entity.key)} to "
         "what else is in view."),
        True,
        {"triples": r.triples(facts), "entity": {"id": entity.id,
                                                 "key": entity.key}},
    )
    conf = seen.score * (0.7 + 0.3 * bool(facts))
    return Answer(
        f"This is the {r.say(entity.key)} (score {seen.score:.2f}).",
        [seen.step, place.step, s3],
        conf,
        False,
        "",
        q.intent,
        [],
        {"hypotheses": [{"key": seen.name, "id": entity.id, "score": round(conf, 3)}]},
    )


def _ranked(r: Context, q: Question, seen: Seen, place: Place) -> Answer:
    """Step 3 for a finding: the graph's neighbours -> ranked hypotheses; answers when the
    top one is likely enough and clearly ahead of the second."""
    cfg = r.cfg
    segment = place.region if place.endoluminal else None
    hyps, facts = hypotheses(r, seen.name, seen.cues, segment, place.anchors)
    top = hyps[0] if hyps else None
    second = hyps[1]["score"] if len(hyps) > 1 else 0.0
    ranked = [{k: v for k, v in h.items() if k != "facts"} for h in hyps[:5]]
    nb_text = neighbour_sentence(r, facts, segment)
    outlined = [] if place.endoluminal else spaces(r, place.anchors)
    if outlined:
        nb_text = f"The landmarks in view outline the {r.say(outlined[0])}. " + nb_text
    s3 = Step(
        nb_text + (f" Most likely: {top['label']} ({top['score']:.2f})." if top else ""),
        bool(
            top
            and top["score"] >= cfg.hypothesis_min
            and top["score"] - second >= cfg.hypothesis_margin
        ),
        {"triples": r.triples(facts), "hypotheses": ranked},
    )
    steps = [seen.step, place.step, s3]
    data = {"hypotheses": ranked, "region": place.region, "finding": seen.name}
    if not s3.ok:
        alts = (
            join_words([h["label"] for h in hyps[:2]], "or") if hyps else "nothing in my graph"
        )
        return abstain(
            q.intent,
            f"{UNSURE}: I see {seen.desc} {place.where}; it could be {alts}.",
            steps,
            reason="step 3 failed: no hypothesis clearly ahead",
            confidence=(top["score"] if top else 0.0) * seen.score * place.conf,
            data=data,
        )
    conf = top["score"] * seen.score * place.conf
    text = (f"This is most likely {top['article']}{top['label']}: {seen.desc} {place.where}. "
            f"{top['why']}")
    if len(hyps) > 1:
        text += f" Less likely: {join_words([h['label'] for h in hyps[1:3]])}."
    outline = {"action": "outline", "structure": seen.name, "colour": "red",
               "rgb": list(COLOUR_RGB["red"]), "transient_s": 5.0}
    return Answer(text, steps, conf, False, "", q.intent, [outline], data)


def identify_structure(r: Context, q: Question, tl: Any, now: float,
                       prev: Answer | None) -> Answer:
    """What is this (large vessel / blood / tubular structure / mass, or anything)."""
    t0 = now - r.cfg.recent_s
    window = tl.window(t0, now)
    structs = [o for o in window if o.kind == "structure"]
    seen = _detect(r, q, structs, t0, now)
    if isinstance(seen, Answer):
        return seen
    entity = r.kg.entities.get(seen.name)
    place = _locate(r, q, seen, window, structs, t0, now)
    if isinstance(place, Answer):
        return place
    if entity is not None and entity.kind not in ("finding", "tissue"):
        return _known(r, q, entity, seen, place)
    return _ranked(r, q, seen, place)

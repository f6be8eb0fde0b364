"""What a reasoning step cites: the ids in its evidence (facts, frames, entities, rules)."""

from __future__ import annotations

from typing import Any


def cited_ids(evidence: dict[str, Any]) -> list[str]:
    """Every id a step's evidence names: fact ids, frame ids of observations, entity /
    rule / command / parse ids, hypothesis ids."""
    ids: list[str] = [t["id"] for t in evidence.get("triples", []) if t.get("id")]
    ids += [f"frame:{o['frame_id']}" for o in evidence.get("observations", [])
            if o.get("frame_id") is not None]
    for key in ("entity", "command", "parse", "window"):
        if isinstance(evidence.get(key), dict) and evidence[key].get("id"):
            ids.append(str(evidence[key]["id"]))
    if evidence.get("rule_id"):
        ids.append(str(evidence["rule_id"]))
    ids += [str(h["id"]) for h in evidence.get("hypotheses", []) if h.get("id")]
    return ids

"""``copilot ask``: answer one question from the knowledge graph and a recorded session.

Session log (``--session session.jsonl``): JSON lines; every line with
``"type": "observation"`` is one perception finding and needs ``t_s`` (media time, s),
``frame_id`` (int), ``kind`` (structure | instrument | phase | cvs | region | event),
``name`` (a vision.labels name, e.g. "cystic_duct", "duodenum_d3", "ClippingCutting",
"two_structures", "clip_applied"), ``score`` (0-1) and optionally ``attrs`` (area, centroid,
colour, pulsatile, ...). Other line types are ignored. Without ``--session`` the timeline is
empty and questions that need perception abstain with that reason.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

_HELP = (
    "Answer a question the way the copilot would: with its steps, evidence and confidence, "
    "or 'I am not sure'.\n\n"
    '--session reads a JSONL session log; lines with "type": "observation" need t_s, '
    "frame_id, kind (structure|instrument|phase|cvs|region|event), name, score and "
    "optional attrs. Without it the perception timeline is empty."
)


def register(app: typer.Typer) -> None:
    """Add the ``ask`` command to the copilot CLI."""

    @app.command("ask", help=_HELP)
    def ask_cmd(
        question: str = typer.Argument(..., help='The question, e.g. "what lies behind D3?"'),
        session: Path | None = typer.Option(
            None,
            "--session",
            help="Session log (JSONL) whose observation lines form the perception timeline.",
        ),
        explain: bool = typer.Option(
            False, "--explain", help="Also print the reasoning steps with their evidence."
        ),
        as_json: bool = typer.Option(
            False,
            "--json",
            help="Print the answer as JSON (answer, steps, confidence, abstained, reason, ...).",
        ),
        at: float | None = typer.Option(
            None,
            "--at",
            help="Media time of the question in seconds (default: the last observation).",
        ),
        semantic: bool = typer.Option(
            True,
            "--semantic/--no-semantic",
            help="Use the packaged "
            "MiniLM model for free-form questions the catalogue "
            "does not match (offline).",
        ),
        knowledge: list[Path] = typer.Option(
            [],
            "--knowledge",
            help="Extra knowledge files to merge (.obo, .owl, .ttl, .yaml); repeatable.",
        ),
    ) -> None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import math

        from copilot.errors import CopilotError
        from kg_reasoning.loaders import load_default, load_knowledge
        from kg_reasoning.nlu import ask, understand
        from kg_reasoning.reasoner import Reasoner
        from kg_reasoning.timeline import Timeline

        if at is not None and not (math.isfinite(at) and at >= 0):
            raise CopilotError(f"--at {at}: a media time is a finite number of seconds >= 0")
        kg = load_knowledge(list(knowledge)) if knowledge else load_default()
        timeline = Timeline.from_jsonl(session) if session is not None else Timeline()
        last = timeline.latest_t()
        if at is not None and last is not None and at > last:
            raise CopilotError(f"--at {at:g} s is after the session's last observation "
                               f"({last:g} s)")
        reasoner = Reasoner(kg)
        matcher = None
        # the rules understand exact / partial matches; anything else may be free-form
        if semantic and understand(question, reasoner.cat, kg).method not in ("exact",
                                                                               "partial"):
            from kg_reasoning.semantic import SemanticMatcher

            matcher = SemanticMatcher(reasoner.cat)
        answer = ask(question, reasoner, timeline, matcher, t_s=at)
        if as_json:
            typer.echo(json.dumps(answer.to_dict(), indent=1))
            return
        typer.echo(answer.answer)
        if explain:
            for i, step in enumerate(answer.steps, 1):
                mark = "ok" if step.ok else "FAILED"
                typer.echo(f"  step {i} [{mark}]: {step.claim}")
                ev = step.evidence
                for t in ev.get("triples", [])[:6]:
                    side = f" ({t['side']})" if t.get("side") else ""
                    typer.echo(
                        f"      triple: {t.get('s_id', t['s'])} {t['p']}{side} "
                        f"{t.get('o_id', t['o'])}  [{t.get('source', '')[:60]}]"
                    )
                for o in ev.get("observations", [])[:4]:
                    typer.echo(
                        f"      frame {o['frame_id']} t={o['t_s']:.2f}s {o['kind']} "
                        f"{o['name']} score={o['score']:.2f}"
                    )
            typer.echo(
                f"  confidence: {answer.confidence:.2f}"
                + (f"; abstained: {answer.reason}" if answer.abstained else "")
            )

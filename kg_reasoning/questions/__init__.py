"""The reasoner's question families, one module each (the dispatcher is
:class:`kg_reasoning.reasoner.Reasoner`): ``commands`` (overlays, mute, bookmark, explain,
repeat), ``relations`` (graph relations), ``phase`` (current phase, skipped steps), ``cvs``
(critical view of safety), ``survey`` (bowel survey coverage), ``locate`` (where is X),
``identify`` (what is this) and ``ranking`` (its hypotheses). Each handler takes the
:class:`~kg_reasoning.questions.base.Context`, the question, the timeline, the question's
media time (s) and the previous answer, and returns an answer.
"""

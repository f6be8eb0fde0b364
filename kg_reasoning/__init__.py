"""Anatomical / procedural knowledge graph, query API and step-by-step reasoner.

A leaf package: imports neither ``vision``, ``speech`` nor ``copilot``.

Main entry points (all light to import; rdflib / pronto / MiniLM load lazily)::

    from kg_reasoning.catalogue import load_catalogue      # intents, templates, parse
    from kg_reasoning.loaders import load_default, load_knowledge   # the graph (+ OBO/OWL/TTL)
    from kg_reasoning.timeline import Observation, Timeline        # perception input
    from kg_reasoning.reasoner import Question, Reasoner, Answer   # step-by-step answers
    from kg_reasoning.nlu import ask, understand                   # transcript -> answer
    from kg_reasoning.semantic import SemanticMatcher              # free-form (MiniLM)

See ``kg_reasoning/README.md``.
"""

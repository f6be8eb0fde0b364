"""JSON Schemas of the files the copilot writes (truth.schema.json: feed truth manifest)."""

"""benchmarks.machine: one machine description for every benchmark."""

from __future__ import annotations

import json
import os

from benchmarks.machine import machine_info, machine_line


def test_machine_info_describes_this_machine() -> None:
    m = machine_info(extra_libs=("pyyaml",))
    json.dumps(m)  # JSON-ready
    assert m["cpu_count"] == os.cpu_count()
    assert m["cpu"]
    assert m["ram_gib"] and m["ram_gib"] > 0.1
    assert m["python"].startswith("3.")
    for lib in ("numpy", "torch", "onnxruntime", "av", "decord", "opencv-python-headless"):
        assert m["libs"][lib], lib  # all are dependencies of the project
    assert "pyyaml" in m["libs"]
    assert m["git"]["commit"] is None or len(m["git"]["commit"]) == 40
    line = machine_line(m)
    assert "CPUs" in line and m["libs"]["torch"] in line

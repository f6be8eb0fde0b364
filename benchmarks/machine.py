"""One description of the machine a benchmark ran on, shared by every ``benchmarks/bench_*.py``
and by ``copilot bench``.

``machine_info()`` returns CPU model and counts, RAM, load, OS, Python, the versions of the
libraries that decide the numbers (torch, onnxruntime, PyAV, decord, OpenCV, numpy, ...) and
the git commit of the working tree. Versions come from package metadata, so nothing heavy is
imported; a missing library is reported as ``None``.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

#: Distribution names whose versions every result records (``None`` when not installed).
LIBRARIES: tuple[str, ...] = (
    "numpy",
    "torch",
    "torchvision",
    "onnxruntime",
    "onnxruntime-gpu",
    "tensorrt",
    "av",
    "decord",
    "opencv-python-headless",
    "pocketsphinx",
    "faster-whisper",
    "ray",
)


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    """Total physical memory in GiB."""
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 2)
    except Exception:  # psutil missing or no /proc
        return None


def lib_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Installed versions of LIBRARIES and ``extra`` distributions."""
    out: dict[str, str | None] = {}
    for name in (*LIBRARIES, *extra):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(repo: Path = REPO) -> dict[str, Any]:
    """HEAD commit of ``repo`` and whether the tree had local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        return {"commit": head, "dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def machine_info(extra_libs: tuple[str, ...] = ()) -> dict[str, Any]:
    """Machine, OS, Python, library versions and git commit, as a JSON-ready dict.

    Keys: cpu, cpu_count, affinity, ram_gib, load_avg_1m, os, platform, python, libs,
    git (commit, dirty); plus flat copies torch / onnxruntime / opencv / pyav / decord /
    numpy for the markdown lines of older results.
    """
    libs = lib_versions(extra_libs)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": ram_gib(),
        "load_avg_1m": round(load[0], 2) if load else None,
        "load_avg": [round(x, 2) for x in load] if load else None,
        "os": f"{platform.system()} {platform.release()}",
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "libs": libs,
        "torch": libs.get("torch"),
        "onnxruntime": libs.get("onnxruntime"),
        "opencv": libs.get("opencv-python-headless"),
        "pyav": libs.get("av"),
        "decord": libs.get("decord"),
        "numpy": libs.get("numpy"),
        "espeak_ng": shutil.which("espeak-ng"),
        "git": git_commit(),
    }


def machine_line(m: dict[str, Any]) -> str:
    """The machine of a result in one markdown line (callers write the "Machine: " label)."""
    libs = m.get("libs", {})
    vers = ", ".join(f"{k} {v}" for k, v in libs.items() if v)
    commit = (m.get("git") or {}).get("commit") or "?"
    dirty = " (+local changes)" if (m.get("git") or {}).get("dirty") else ""
    return (
        f"{m.get('cpu')}, {m.get('cpu_count')} CPUs, {m.get('ram_gib')} GiB RAM, "
        f"load avg {m.get('load_avg_1m')} at start, {m.get('os')}, Python {m.get('python')}; "
        f"{vers}; git {commit[:10]}{dirty}"
    )


if __name__ == "__main__":
    import json

    print(json.dumps(machine_info(), indent=1))

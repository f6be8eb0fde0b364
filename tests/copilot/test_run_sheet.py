"""``copilot sheet``: contact sheet of a run folder (frames + what the copilot believed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from copilot.app import RunConfig, run_copilot
from vision.writer import write_test_clip


def test_sheet_of_a_run_and_a_bad_folder(tmp_path: Path) -> None:
    clip = write_test_clip(tmp_path / "clip.mp4", seconds=2.0, fps=25, size=(320, 240), seed=3)
    run = tmp_path / "run"
    assert run_copilot(RunConfig(source=str(clip), out=run)).exit_code == 0
    r = subprocess.run([sys.executable, "-m", "copilot.cli", "sheet", str(run), "--n", "4"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    png = Path(r.stdout.strip())
    assert png == run / "sheet.png"
    with Image.open(png) as im:
        assert im.width == 4 * 320 and im.height > 240
    bad = subprocess.run([sys.executable, "-m", "copilot.cli", "sheet", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        f"error: no annotated.mp4 in {tmp_path}"]

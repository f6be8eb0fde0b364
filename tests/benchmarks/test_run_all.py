"""benchmarks.run_all: every bench_*.py module is run by ``make bench`` / ``make bench-quick``
or excluded with a reason; the smoke run never writes to the committed results."""

from __future__ import annotations

from pathlib import Path

from benchmarks import run_all
from benchmarks.paths import COMMITTED

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "benchmarks"


def test_every_bench_module_is_run_or_excluded_with_a_reason() -> None:
    modules = {p.stem for p in BENCH_DIR.glob("bench_*.py")}
    listed = {b.module for b in run_all.BENCHES}
    excluded = {k for k, why in run_all.EXCLUDED.items() if why.strip()}
    assert modules <= listed | excluded, sorted(modules - listed - excluded)
    assert not listed & excluded
    for name in listed | set(run_all.EXCLUDED):
        assert (BENCH_DIR / f"{name}.py").is_file(), name


def test_the_quick_run_writes_to_its_scratch_folder_only(tmp_path: Path) -> None:
    runs = run_all.plan(quick=True, scratch=tmp_path)
    assert {name for name, _, _ in runs} == {b.module for b in run_all.BENCHES}
    for _name, cmds, _missing in runs:
        for cmd in cmds:
            assert cmd[1:3] == ["-m", cmd[2]] and cmd[2].startswith("benchmarks.")
            assert not any(str(COMMITTED) in x or "benchmarks/results" in x for x in cmd)
            assert not any("{scratch}" in x for x in cmd)


def test_make_and_ci_run_it() -> None:
    make = (REPO / "Makefile").read_text()
    assert "-m benchmarks.run_all --quick" in make and "-m benchmarks.run_all\n" in make
    ci = (REPO / ".ci" / "run").read_text().split()
    assert ci.index("bench-quick") > ci.index("test")

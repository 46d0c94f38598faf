"""The generated performance page and its runner (benchmarks/report.py, ``make bench``).

The README's performance section may only quote figures of ``docs/performance.md``; the runner
must pick up every ``benchmarks/bench_*.py`` and render what each reports.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _report_module() -> ModuleType:
    """benchmarks/report.py, imported once under its own name."""
    name = "multispa_benchmark_report"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "report.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


def _readme_performance_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Performance\n(.*?)(?=^## )", readme, flags=re.M | re.S)
    assert match, "README.md has no '## Performance' section"
    return match.group(1)


def test_generated_performance_page_exists() -> None:
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    report = _report_module()
    assert page.startswith(report.HEADER + "\n")
    for heading in ("## Machine", "## Commands", "## `bench_generate.py`"):
        assert heading in page


def test_readme_figures_come_from_the_generated_page() -> None:
    section = _readme_performance_section()
    assert "docs/performance.md" in section
    page_numbers = set(NUMBER.findall((ROOT / "docs" / "performance.md").read_text("utf-8")))
    quoted = NUMBER.findall(section)
    assert len(quoted) > 10
    missing = sorted({n for n in quoted if n not in page_numbers})
    assert not missing, f"README performance figures not in docs/performance.md: {missing}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_runner_runs_every_bench_script_and_renders_what_it_reports(tmp_path: Path) -> None:
    folder = tmp_path / "benchmarks"
    _write(folder / "bench_alpha.py", '''
import argparse, json, pathlib
REPORT_ARGS = ["--size", "3", "--work", "{scratch}/alpha"]
parser = argparse.ArgumentParser()
parser.add_argument("--size", type=int, default=1)
parser.add_argument("--work", type=pathlib.Path)
parser.add_argument("--json", type=pathlib.Path)
args = parser.parse_args()
args.work.mkdir(parents=True)
print("alpha rate 1234.5 items/s")
args.json.write_text(json.dumps({
    "title": "Alpha throughput", "summary": [f"alpha: {args.size * 411.5:,.1f} items/s"],
    "table": {"columns": ["case", "items/s"], "rows": [["a|b", "1234.5"]]},
    "notes": ["wall clock"]}))
''')
    _write(folder / "bench_beta.py", 'print("beta: 77 frames/s")\n')
    _write(folder / "helper.py", 'raise SystemExit("not a benchmark: never run")\n')
    out = tmp_path / "docs" / "performance.md"
    scratch = tmp_path / "scratch"
    readme = tmp_path / "README.md"
    report = _report_module()
    _write(readme, f"# X\n\n## Performance\n\n{report.README_BEGIN}\nold figures\n"
                   f"{report.README_END}\n\n## Next\n")
    real_readme = (ROOT / "README.md").read_bytes()
    report.main(["--benchmarks", str(folder), "--out", str(out), "--scratch", str(scratch),
                 "--readme", str(readme)])
    page = out.read_text(encoding="utf-8")
    block = readme.read_text(encoding="utf-8")
    assert "old figures" not in block and block.startswith("# X\n\n## Performance\n\n")
    assert block.endswith(f"{report.README_END}\n\n## Next\n")
    assert "- Alpha throughput (`bench_alpha.py`):\n  - alpha: 1,234.5 items/s" in block
    assert "(docs/performance.md)" in block
    quoted = set(NUMBER.findall(block.split("## Performance")[1]))
    assert quoted <= set(NUMBER.findall(page))
    assert page.startswith(report.HEADER)
    assert (scratch / "alpha").is_dir()  # {scratch} substituted
    assert "python benchmarks/bench_alpha.py --size 3 --work SCRATCH/alpha" in page
    assert "## `bench_alpha.py`: Alpha throughput" in page
    assert "- alpha: 1,234.5 items/s" in page
    assert "| case | items/s |" in page and "| a\\|b | 1234.5 |" in page
    assert "wall clock" in page
    assert "## `bench_beta.py`" in page and "```\nbeta: 77 frames/s\n```" in page
    assert page.index("bench_alpha") < page.index("bench_beta")
    assert f"Python: {sys.version_info.major}.{sys.version_info.minor}" in page
    for key in ("numpy:", "Pillow:", "cores:", "CPU:", "load average", "speed check"):
        assert key in page
    # --only runs a subset; an unknown name is refused.
    report.main(["--benchmarks", str(folder), "--out", str(out), "--only", "beta"])
    assert "bench_alpha" not in out.read_text(encoding="utf-8")
    assert (ROOT / "README.md").read_bytes() == real_readme  # not the default page: untouched
    with pytest.raises(SystemExit, match="gamma"):
        report.main(["--benchmarks", str(folder), "--out", str(out), "--only", "gamma"])


def test_runner_stops_on_a_failing_script_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "benchmarks"
    _write(folder / "bench_ok.py", 'print("fine")\n')
    _write(folder / "bench_zz.py", 'import sys\nprint("boom", file=sys.stderr)\nsys.exit(3)\n')
    out = tmp_path / "performance.md"
    report = _report_module()
    with pytest.raises(SystemExit, match=r"bench_zz.py failed \(exit 3\):\n.*boom"):
        report.main(["--benchmarks", str(folder), "--out", str(out)])
    assert not out.exists()
    _write(folder / "bench_zz.py", 'import argparse\nprint("--json", "ignored")\n')
    with pytest.raises(SystemExit, match="wrote no results"):
        report.main(["--benchmarks", str(folder), "--out", str(out)])
    _write(folder / "bench_zz.py", 'REPORT_ARGS = ["--n", 3]\n')
    with pytest.raises(SystemExit, match="REPORT_ARGS must be a list of strings"):
        report.main(["--benchmarks", str(folder), "--out", str(out)])
    assert not out.exists()


def test_write_results_is_what_the_runner_reads(tmp_path: Path) -> None:
    report = _report_module()
    path = tmp_path / "r.json"
    report.write_results(path, title="T", summary=["a: 1 x/s"], columns=("c",), rows=[(1.5,)],
                         notes=["n"])
    assert json.loads(path.read_text(encoding="utf-8")) == {
        "title": "T", "summary": ["a: 1 x/s"], "table": {"columns": ["c"], "rows": [[1.5]]},
        "notes": ["n"],
    }
    report.write_results(None, title="T", summary=[])  # no --json: nothing written
    assert report.supports_json(ROOT / "benchmarks" / "bench_generate.py")

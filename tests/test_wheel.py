"""The wheel: built from this checkout, it carries every package file (Python modules and data:
task templates, ``py.typed``...), installs into a fresh virtual environment and runs
``multispa demo --small`` there, from outside the source tree.

Hermetic: the wheel is built with the installed hatchling (``--no-build-isolation``, pinned in
the ``dev`` extra) and nothing is downloaded. The fresh environment has no pip and no packages
of its own besides the wheel: a ``.pth`` file lists the running environment's site-packages
folders, so it imports the installed dependencies. A path listed in a ``.pth`` file is only
appended to ``sys.path``; the ``.pth`` files inside it (such as the hook of an editable
multispa) are not run, so the checkout's own ``multispa`` cannot leak in, and the environment's
own site-packages (with the wheel) comes first anyway. The test checks that the imported
``multispa`` is the wheel's copy.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "multispa"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _package_files() -> set[str]:
    """Every file of the package in the checkout, as ``multispa/...`` (no caches)."""
    return {"multispa/" + path.relative_to(PACKAGE).as_posix()
            for path in PACKAGE.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of the subprocesses: no PYTHONPATH, no package index."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    clean.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1",
                 MPLCONFIGDIR=str(tmp_path_factory.mktemp("mpl")))
    return clean


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    assert importlib.util.find_spec("hatchling") is not None, (
        "hatchling is needed to build the wheel offline: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(out), str(ROOT)], cwd=out, env=env)
    (built,) = out.glob("multispa-*.whl")
    return built


def test_wheel_carries_every_package_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    package = {n for n in names if n.startswith("multispa/")}
    expected = _package_files()
    assert {n for n in expected if n.endswith(".yaml")}  # the task templates
    assert "multispa/py.typed" in expected
    assert package == expected, (sorted(expected - package), sorted(package - expected))
    assert "multispa = multispa.cli:main" in scripts


@pytest.mark.slow
def test_wheel_installs_and_runs_the_demo(wheel: Path, env: dict[str, str],
                                          tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    site_packages = Path(_run([str(python), "-c", "import sysconfig; "
                               "print(sysconfig.get_paths()['purelib'])"],
                              cwd=tmp_path, env=env).strip())
    dependencies = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "_multispa_test_dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dependencies), encoding="utf-8")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
          str(wheel)], cwd=tmp_path, env=env)

    where = _run([str(python), "-c", "import multispa, multispa.tasks.templates as t; "
                  "print(multispa.__file__); print(t.load_templates('depth').source)"],
                 cwd=tmp_path, env=env).split()
    module, template = (Path(p).resolve() for p in where)
    assert module == site_packages.resolve() / "multispa" / "__init__.py"
    assert template.is_file() and template.is_relative_to(site_packages.resolve())
    assert not module.is_relative_to(ROOT)

    out = tmp_path / "demo"
    log = _run([str(venv / "bin" / "multispa"), "demo", "--small", "--out", str(out),
                "--workers", "1", "--max-per-subtask", "30", "--bench-per-subtask", "5",
                "--gallery-per-subtask", "1"], cwd=tmp_path, env=env, timeout=900)
    for name in ("report.html", "gallery.html", "bench/bench.jsonl"):
        assert (out / name).is_file(), (name, log[-2000:])
    assert "baseline:oracle" in (out / "report.html").read_text(encoding="utf-8")

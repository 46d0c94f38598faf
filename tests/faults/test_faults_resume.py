"""Kill and resume at repeatable points: ``prepare``, ``generate`` and ``eval`` are SIGKILLed
just before the N-th call of a function (``kill_at.py``), rerun, and their whole output trees
compared by hash with an uninterrupted run (``prepare``'s ``logs/`` aside; for ``eval``, the
session times in ``config.json``). This extends the timed SIGKILL tests of ``test_prepare.py``,
``test_generate.py`` and ``test_openai_backend.py`` with kills at chosen moments: between a
temporary write and its rename, in the middle of a unit, of a shard, of the predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fault_kit import Cli, tree_hashes

KILL_AT = str(Path(__file__).with_name("kill_at.py"))


def _killed_then_resumed(cli: Cli, args: list[str | Path], target: str, when: int) -> None:
    killed = cli.run([sys.executable, KILL_AT, target, str(when), "--", *map(str, args)])
    assert killed.returncode == -9, (killed.returncode, killed.stdout, killed.stderr)
    resumed = cli(*args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr


@pytest.fixture(scope="module")
def prepared(small_source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, dict]:
    """The prepare arguments (cache folder last) and the uninterrupted cache's hashes."""
    from multispa.pipeline.prepare import PrepareConfig, prepare

    synth = small_source / "synth"
    cache = tmp_path_factory.mktemp("resume_prepare") / "cache"
    prepare(PrepareConfig(cache=cache, scannet=synth / "scannet", tapvid3d=synth / "tapvid3d"))
    args = ["prepare", "--scannet", synth / "scannet", "--tapvid3d", synth / "tapvid3d",
            "--cache"]
    return args, tree_hashes(cache, skip=("logs",))


@pytest.mark.parametrize(("target", "when"), [
    ("os:replace", 1),  # the settings file written, not renamed
    ("os:replace", 3),  # the first unit renamed into place, its completion marker not
    ("multispa.cache.scannet_cache:write_npy", 12),  # in the middle of a scene's arrays
    ("os:replace", 18),  # every unit done, the manifest not renamed
])
def test_prepare_killed_and_resumed_equals_one_run(
    cli: Cli, prepared: tuple[list, dict], tmp_path: Path, target: str, when: int,
) -> None:
    args, reference = prepared
    cache = tmp_path / "cache"
    _killed_then_resumed(cli, [*args, cache], target, when)
    assert tree_hashes(cache, skip=("logs",)) == reference


@pytest.fixture(scope="module")
def generated(small_source: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, dict]:
    """The generate arguments (output folder last) and the uninterrupted output's hashes
    (``_work`` included)."""
    from multispa.pipeline.generate import GenerateConfig, generate

    out = tmp_path_factory.mktemp("resume_generate") / "dataset"
    generate(GenerateConfig(cache=small_source / "cache", out=out, max_per_subtask=15, seed=2))
    args = ["generate", "--cache", small_source / "cache", "--max-per-subtask", "15", "--seed",
            "2", "--out"]
    return args, tree_hashes(out)


@pytest.mark.parametrize(("target", "when"), [
    ("os:replace", 4),  # a plan folder written, not renamed
    ("multispa.pipeline.generate:record_line", 25),  # in the middle of a shard
    ("os:replace", 30),  # a shard written to the scratch folder, not renamed
    ("multispa.pipeline.generate:_internvl_meta", 1),  # every shard merged, no meta files yet
])
def test_generate_killed_and_resumed_equals_one_run(
    cli: Cli, generated: tuple[list, dict], tmp_path: Path, target: str, when: int,
) -> None:
    args, reference = generated
    out = tmp_path / "dataset"
    _killed_then_resumed(cli, [*args, out], target, when)
    assert tree_hashes(out) == reference


_SESSION_FIELDS = ("started", "last_started", "finished", "last_session_asked")


def _run_hashes(run: Path) -> dict[str, object]:
    hashes: dict[str, object] = tree_hashes(run)
    config = json.loads((run / "config.json").read_text())
    hashes["config.json"] = {k: v for k, v in config.items() if k not in _SESSION_FIELDS}
    return hashes


@pytest.fixture(scope="module")
def evaluated(small_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[list, Path]:
    """The eval arguments (RUN folder last) and an uninterrupted RUN folder."""
    args = ["eval", "--bench", small_bench, "--model", "baseline:prior", "--seed", "3", "--out"]
    reference = tmp_path_factory.mktemp("resume_eval") / "run"
    from click.testing import CliRunner

    from multispa.cli import main

    result = CliRunner().invoke(main, [*map(str, args), str(reference)])
    assert result.exit_code == 0, result.output
    return args, reference


@pytest.mark.parametrize(("target", "when"), [
    ("multispa.evaluate.runner:PredictionLog.append", 1),  # config written, nothing answered
    ("multispa.evaluate.runner:PredictionLog.append", 40),  # in the middle of the answers
    ("multispa.evaluate.runner:write_text_atomic", 2),  # all answered, results not written
    ("multispa.evaluate.runner:write_text_atomic", 4),  # scored, config not finished
])
def test_eval_killed_and_resumed_equals_one_run(
    cli: Cli, evaluated: tuple[list, Path], tmp_path: Path, target: str, when: int,
) -> None:
    args, reference = evaluated
    run = tmp_path / "run"
    _killed_then_resumed(cli, [*args, run], target, when)
    assert _run_hashes(run) == _run_hashes(reference)
    scores = json.loads((run / "scores.json").read_text())
    assert scores["run"]["asked"] == scores["run"]["items"]  # counted over both sessions

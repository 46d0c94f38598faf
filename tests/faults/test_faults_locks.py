"""One writer per output folder: a second writer is refused with the holder named, a lock left
by a killed run is taken over, and two runs started at once never race."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_kit import Cli, assert_one_line_error, tree_hashes

from multispa.lock import LOCK_NAME, FolderLock

Args = Callable[[Path, Path, Path], list[str | Path]]
WRITERS: dict[str, Args] = {
    "prepare": lambda s, b, o: ["prepare", "--scannet", s / "synth" / "scannet", "--cache", o],
    "generate": lambda s, b, o: ["generate", "--cache", s / "cache", "--out", o,
                                 "--max-per-subtask", "5"],
    "eval": lambda s, b, o: ["eval", "--bench", b, "--model", "baseline:chance", "--out", o],
    "bench build": lambda s, b, o: ["bench", "build", "--dataset", s / "dataset", "--out", o,
                                    "--per-subtask", "2"],
    "export dataset": lambda s, b, o: ["export", "--dataset", s / "dataset", "--format",
                                       "internvl", "--out", o],
    "export bench": lambda s, b, o: ["export", "--bench", b, "--format", "vlmevalkit",
                                     "--out", o],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_second_writer_is_refused_naming_the_holder(
    cli: Cli, small_source: Path, small_bench: Path, tmp_path: Path, command: str,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    args = WRITERS[command](small_source, small_bench, out)
    with FolderLock(out, "test holder"):
        run = cli(*args)
        assert_one_line_error(run, out, f"in use by test holder (pid {os.getpid()} on "
                                        f"{socket.gethostname()}")
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
    done = cli(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (out / LOCK_NAME).exists()


def test_a_lock_left_by_a_killed_run_is_taken_over(
    cli: Cli, small_source: Path, tmp_path: Path,
) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({
        "pid": int(gone.stdout), "host": socket.gethostname(), "command": "multispa generate",
        "started": "2000-01-01T00:00:00Z"}) + "\n")
    run = cli(*WRITERS["generate"](small_source, Path(), out))
    assert run.returncode == 0, run.stderr
    assert f"taking over the lock of multispa generate (pid {int(gone.stdout)}" in run.stderr
    assert not (out / LOCK_NAME).exists()


def test_two_generate_runs_at_once_do_not_race(
    cli: Cli, small_source: Path, tmp_path: Path,
) -> None:
    reference = tmp_path / "reference"
    assert cli(*WRITERS["generate"](small_source, Path(), reference)).returncode == 0
    out = tmp_path / "out"
    command = [sys.executable, "-m", "multispa",
               *map(str, WRITERS["generate"](small_source, Path(), out))]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for _ in range(2)]
    outcomes = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        outcomes.append((process.returncode, stdout.decode(), stderr.decode()))
    from fault_kit import Run

    for returncode, stdout, stderr in outcomes:
        run = Run(tuple(command), returncode, stdout, stderr)
        cli.keep(run)
        if returncode != 0:  # the one that came second while the first still ran
            assert_one_line_error(run, out, "in use by multispa generate (pid")
    assert any(code == 0 for code, _, _ in outcomes)
    assert tree_hashes(out) == tree_hashes(reference)

"""Fault cases on outputs: paths that are files (or lie under a file) for every command that
writes, input paths of the wrong kind, a full disk, and failed commands leaving no empty
output folder behind."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from fault_kit import Cli, assert_one_line_error, assert_valid_manifest, tmpfs_wrapper

from multispa.evaluate.runner import run_eval


@pytest.fixture(scope="module")
def run_dir(small_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished RUN folder (chance baseline on the shared small benchmark). Read-only."""
    out = tmp_path_factory.mktemp("fault_run") / "chance"
    run_eval(small_bench, "baseline:chance", out, progress=False, bootstrap=10)
    return out


def _record_id(dataset: Path) -> str:
    import json

    first = next(iter(sorted(dataset.glob("val/*/*.jsonl"))))
    return json.loads(first.read_text().splitlines()[0])["id"]


# Folder outputs: (command, arguments given the output path, the option named in the message).
FolderCase = Callable[[Path, Path, Path, Path], list[str | Path]]
FOLDER_OUTPUTS: dict[str, tuple[FolderCase, str]] = {
    "prepare": (lambda s, b, r, o: ["prepare", "--scannet", s / "synth" / "scannet",
                                    "--cache", o], "--cache"),
    "generate": (lambda s, b, r, o: ["generate", "--cache", s / "cache", "--out", o], "--out"),
    "synth": (lambda s, b, r, o: ["synth", o, "--small", "--scenes", "1", "--clips", "0"],
              "OUT"),
    "demo": (lambda s, b, r, o: ["demo", "--small", "--out", o], "--out"),
    "bench build": (lambda s, b, r, o: ["bench", "build", "--dataset", s / "dataset",
                                        "--out", o], "--out"),
    "eval": (lambda s, b, r, o: ["eval", "--bench", b, "--model", "baseline:chance",
                                 "--out", o], "--out"),
    "score": (lambda s, b, r, o: ["score", "--bench", b, "--predictions",
                                  r / "predictions.jsonl", "--out", o], "--out"),
    "export vlmevalkit": (lambda s, b, r, o: ["export", "--bench", b, "--format", "vlmevalkit",
                                              "--out", o], "--out"),
    "export lmms-eval": (lambda s, b, r, o: ["export", "--bench", b, "--format", "lmms-eval",
                                             "--out", o], "--out"),
    "export llava": (lambda s, b, r, o: ["export", "--dataset", s / "dataset", "--format",
                                         "llava", "--out", o], "--out"),
    "train": (lambda s, b, r, o: ["train", "--data", s / "dataset" / "meta_train.json",
                                  "--model", s / "no_model", "--out", o], "--out"),
}

# File outputs: the file itself may be replaced, so only "under a file" is a fault.
FILE_OUTPUTS: dict[str, tuple[FolderCase, str]] = {
    "report": (lambda s, b, r, o: ["report", r, "--out", o], "--out"),
    "report markdown": (lambda s, b, r, o: ["report", r, "--out", o.parents[2] / "r.html",
                                            "--markdown", o], "--markdown"),
    "gallery": (lambda s, b, r, o: ["gallery", s / "dataset", "--out", o], "--out"),
    "show": (lambda s, b, r, o: ["show", s / "dataset", _record_id(s / "dataset"), "--out", o],
             "--out"),
}


@pytest.mark.parametrize("where", ["is a file", "under a file"])
@pytest.mark.parametrize("command", sorted(FOLDER_OUTPUTS))
def test_output_folder_that_is_a_file_is_one_line_error(
    cli: Cli, small_source: Path, small_bench: Path, run_dir: Path, tmp_path: Path,
    command: str, where: str,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    target = blocker if where == "is a file" else blocker / "sub" / "out"
    build, option = FOLDER_OUTPUTS[command]
    run = cli.in_process(*build(small_source, small_bench, run_dir, target))
    line = assert_one_line_error(run, blocker.name, f"({option})")
    assert ("exists and is not a folder" if where == "is a file" else "is a file, not a folder") \
        in line
    assert blocker.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


@pytest.mark.parametrize("command", sorted(FILE_OUTPUTS))
def test_output_file_under_a_file_is_one_line_error(
    cli: Cli, small_source: Path, small_bench: Path, run_dir: Path, tmp_path: Path,
    command: str,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me")
    build, option = FILE_OUTPUTS[command]
    run = cli.in_process(*build(small_source, small_bench, run_dir, blocker / "sub" / "out.png"))
    assert_one_line_error(run, blocker.name, "is a file, not a folder", f"({option})")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_input_paths_of_the_wrong_kind(
    cli: Cli, small_bench: Path, run_dir: Path, tmp_path: Path,
) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("{}")
    assert_one_line_error(
        cli("eval", "--bench", a_file, "--model", "baseline:chance", "--out", tmp_path / "r1"),
        a_file, "expected a BENCH folder")
    assert_one_line_error(
        cli.in_process("score", "--bench", small_bench, "--predictions", tmp_path, "--out",
                       tmp_path / "r2"),
        tmp_path, "is a folder, expected a file")
    assert_one_line_error(
        cli.in_process("score", "--bench", small_bench, "--predictions",
                       tmp_path / "none.jsonl", "--out", tmp_path / "r3"),
        "none.jsonl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_failed_commands_leave_no_empty_output_folder(
    cli: Cli, small_bench: Path, tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "response": "1"}\n{not json\n')
    run = cli("eval", "--bench", small_bench, "--model", f"predictions:{bad}", "--out",
              tmp_path / "new" / "run")
    assert_one_line_error(run, bad, "line 2")
    broken = tmp_path / "bench"
    shutil.copytree(small_bench, broken)
    next(broken.glob("images/**/*.jpg")).unlink()
    run = cli("export", "--bench", broken, "--format", "vlmevalkit", "--out",
              tmp_path / "new" / "tsv")
    assert_one_line_error(run, "not found")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "bench"]


# ----------------------------------------------------------------------------- full disk


@pytest.fixture(scope="module")
def tmpfs_works(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Skip unless a private tmpfs can be mounted (``unshare -m`` as root)."""
    mount = tmp_path_factory.mktemp("tmpfs_probe")
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c",
                               f'mount -t tmpfs -o size=64k none "{mount}"'],
                              capture_output=True, check=False, timeout=30)
    except OSError as error:
        pytest.skip(f"cannot run unshare: {error}")
    if done.returncode != 0:
        pytest.skip("cannot mount a private tmpfs here (needs root and unshare -m): "
                    f"{done.stderr.decode(errors='replace').strip()}")


@pytest.fixture
def full_disk(tmp_path: Path, tmpfs_works: None) -> tuple[Path, Path]:
    """A mount point for a private tmpfs and the folder its content is copied to afterwards."""
    mount, copy = tmp_path / "mnt", tmp_path / "copy"
    mount.mkdir()
    copy.mkdir()
    return mount, copy


def _no_temporaries(root: Path) -> None:
    left = [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".tmp")]
    assert not left, left


def test_disk_full_during_prepare(
    cli: Cli, small_source: Path, full_disk: tuple[Path, Path],
) -> None:
    mount, copy = full_disk
    synth = small_source / "synth"
    command = ["prepare", "--scannet", synth / "scannet", "--tapvid3d", synth / "tapvid3d",
               "--cache", mount / "cache"]
    run = cli(*command, wrap=tmpfs_wrapper(mount, "700k", copy))
    assert run.returncode == 1, run.stdout + run.stderr
    problems = [line for line in run.lines if line.strip().startswith(("failed:", "error:"))]
    assert problems and all("no space left on device" in line for line in problems), problems
    _no_temporaries(copy)
    if (copy / "cache" / "manifest.json").exists():
        assert_valid_manifest(copy / "cache" / "manifest.json")
    else:
        assert_one_line_error(run, "manifest.json", "no space left on device")


def test_disk_full_during_generate(
    cli: Cli, small_source: Path, full_disk: tuple[Path, Path],
) -> None:
    mount, copy = full_disk
    command = ["generate", "--cache", small_source / "cache", "--out", mount / "dataset",
               "--max-per-subtask", "20"]
    run = cli(*command, wrap=tmpfs_wrapper(mount, "300k", copy))
    assert run.returncode == 1, run.stdout + run.stderr
    problems = [line for line in run.lines if line.strip().startswith(("failed:", "error:"))]
    assert problems and all("no space left on device" in line for line in problems), problems
    _no_temporaries(copy)
    assert not (copy / "dataset" / "_work" / "tmp").exists() or not any(
        (copy / "dataset" / "_work" / "tmp").iterdir())


def test_disk_full_during_eval(
    cli: Cli, small_bench: Path, full_disk: tuple[Path, Path],
) -> None:
    mount, copy = full_disk
    command = ["eval", "--bench", small_bench, "--model", "baseline:chance", "--out",
               mount / "run"]
    run = cli(*command, wrap=tmpfs_wrapper(mount, "8k", copy))
    assert_one_line_error(run, mount / "run", "no space left on device")
    _no_temporaries(copy)

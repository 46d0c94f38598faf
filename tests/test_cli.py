"""The command line: synth → inspect → prepare on small data, and one-line errors on bad input."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from click.testing import CliRunner

from multispa import __version__
from multispa.cli import main


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli_synth")
    result = CliRunner().invoke(
        main, ["synth", str(out), "--scenes", "2", "--clips", "2", "--small", "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    return out


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_synth_writes_real_layouts(synthetic: Path) -> None:
    scene = synthetic / "scannet" / "scans" / "scene0000_00"
    for name in (
        "scene0000_00.sens",
        "scene0000_00_vh_clean_2.ply",
        "scene0000_00.aggregation.json",
        "scene0000_00_vh_clean_2.0.010000.segs.json",
        "scene0000_00.txt",
    ):
        assert (scene / name).is_file(), name
    train = (synthetic / "scannet" / "scannetv2_train.txt").read_text().split()
    assert train == ["scene0000_00", "scene0000_01"]  # room 0 and its rescan
    assert (synthetic / "scannet" / "scannetv2_val.txt").read_text().split() == ["scene0001_00"]
    assert len(list((synthetic / "tapvid3d").rglob("*.npz"))) == 2


def test_inspect_reports_what_readers_see(synthetic: Path) -> None:
    result = CliRunner().invoke(
        main,
        [
            "inspect",
            "--scannet",
            str(synthetic / "scannet"),
            "--tapvid3d",
            str(synthetic / "tapvid3d"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ScanNet: 3 scenes (splits from lists)" in result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line.strip()}
    row = lines["scene0000_00"]
    assert row[1:3] == ["train", "raw"]
    # 60 hand-held frames and a 90-frame room tour; every 5th kept
    assert int(row[3]) == 150 and int(row[4]) + int(row[5]) == 30
    assert row[6] == "0"  # no frame with an unusable colour image
    assert row[7:9] == ["160x120", "80x60"]
    assert "TAPVid-3D: 2 clips" in result.output


def test_prepare_reports_a_bad_scene_and_keeps_going(synthetic: Path, tmp_path: Path) -> None:
    scans = tmp_path / "scannet" / "scans"
    for scene in ("scene0000_00", "scene0001_00"):
        (scans / scene).mkdir(parents=True)
        for path in (synthetic / "scannet" / "scans" / scene).iterdir():
            (scans / scene / path.name).write_bytes(path.read_bytes())
    sens = scans / "scene0001_00" / "scene0001_00.sens"
    data = bytearray(sens.read_bytes())
    data[:4] = struct.pack("<I", 3)
    sens.write_bytes(bytes(data))
    result = CliRunner().invoke(
        main, ["prepare", "--scannet", str(tmp_path / "scannet"), "--cache", str(tmp_path / "c")]
    )
    assert result.exit_code == 1
    assert "1 built" in result.output and "1 failed" in result.output
    failure = next(
        line for line in result.output.splitlines() if line.strip().startswith("failed:")
    )
    assert "scene0001_00.sens" in failure and "version 3, expected 4" in failure
    assert (tmp_path / "c" / "scannet" / "scene0000_00" / "meta.json").is_file()
    assert not (tmp_path / "c" / "scannet" / "scene0001_00").exists()


def test_missing_input_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["inspect", "--tapvid3d", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "nowhere" in result.output


def test_prepare_needs_an_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["prepare", "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    assert "nothing to prepare" in result.output

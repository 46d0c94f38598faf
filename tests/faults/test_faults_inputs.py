"""Fault cases on the inputs of ``inspect`` and ``prepare``: unreadable files and folders,
non-finite geometry, degenerate alignment and intrinsics, undecodable JPEGs, file names that
are not UTF-8, folders where files are expected, and a folder with no dataset in it.

Each case copies the shared synthetic source, breaks one thing, and checks: the exit status,
one line naming the path, no traceback, the other units built and a valid manifest."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from fault_kit import (
    Cli,
    Run,
    assert_one_line_error,
    assert_valid_manifest,
    copy_source,
    cut_clip_jpeg,
    rename_scene_bytes,
    scene_dir,
    set_ply_vertex,
    set_sens_fx,
    zero_sens_colour,
)


@pytest.fixture
def data(small_source: Path, tmp_path: Path) -> Path:
    """A writable copy of the shared synthetic ScanNet and TAPVid-3D source."""
    return copy_source(small_source / "synth", tmp_path / "data")


def _scenes(data: Path) -> list[str]:
    """The raw scenes (with a ``.sens``), which the cases mutate; the synthetic rescan is a
    ``posed_images`` export and has none."""
    scans = data / "scannet" / "scans"
    return sorted(p.name for p in scans.iterdir() if (p / f"{p.name}.sens").is_file())


def _clips(data: Path) -> list[str]:
    return sorted(f"{p.parent.name}/{p.stem}" for p in (data / "tapvid3d").glob("*/*.npz"))


def _prepare(cli: Cli, data: Path, cache: Path, *, no_dac: bool = False,
             tapvid: bool = True) -> Run:
    args = ["prepare", "--scannet", data / "scannet", "--cache", cache]
    if tapvid:
        args += ["--tapvid3d", data / "tapvid3d"]
    return cli(*args, no_dac=no_dac)


def _inspect(cli: Cli, data: Path, *, no_dac: bool = False) -> Run:
    return cli("inspect", "--scannet", data / "scannet", "--tapvid3d", data / "tapvid3d",
               no_dac=no_dac)


def _unit_failed(run: Run, cache: Path, unit: str, *needles: str | Path) -> dict:
    """``unit`` failed with one line naming ``needles``; every other unit was built; the
    manifest is valid JSON and records the failure."""
    assert run.returncode == 1, run.stderr
    line = run.failed_line(unit)
    for needle in needles:
        assert str(needle) in line, (needle, line)
    manifest = assert_valid_manifest(cache / "manifest.json")
    units = manifest["units"]
    assert units[unit]["status"] == "failed" and units[unit]["error"] in line
    others = [name for name in units if name != unit]
    assert others and all(units[name]["status"] == "done" for name in others), units
    for name in others:
        assert (cache / name / "meta.json").is_file()
    assert not (cache / unit).exists()
    return manifest


def _inspect_row(run: Run, name: str) -> str:
    return next(line for line in run.stdout.splitlines() if line.strip().startswith(name))


# ----------------------------------------------------------------------- unreadable inputs


@pytest.mark.parametrize("suffix", [".aggregation.json", "_vh_clean_2.0.010000.segs.json",
                                    ".txt", "_vh_clean_2.ply", ".sens"])
def test_unreadable_scene_file_fails_that_scene_only(
    cli: Cli, data: Path, tmp_path: Path, suffix: str, permissions_apply: None,
) -> None:
    scene = _scenes(data)[1]
    path = scene_dir(data, scene) / f"{scene}{suffix}"
    path.chmod(0)
    cache = tmp_path / "cache"
    run = _prepare(cli, data, cache, no_dac=True)
    _unit_failed(run, cache, f"scannet/{scene}", path, "permission denied")
    if suffix not in (".aggregation.json", ".sens"):
        return  # inspect reads through the same loader: two file kinds show it
    seen = _inspect(cli, data, no_dac=True)
    assert_one_line_error(seen, "1 scene(s)/clip(s) could not be read")
    row = _inspect_row(seen, scene)
    assert "ERROR" in row and str(path) in row and "permission denied" in row
    assert sum("ERROR" in line for line in seen.stdout.splitlines()) == 1


def test_unreadable_scene_folder_fails_that_scene_only(
    cli: Cli, data: Path, tmp_path: Path, permissions_apply: None,
) -> None:
    scene = _scenes(data)[0]
    scene_dir(data, scene).chmod(0)
    cache = tmp_path / "cache"
    run = _prepare(cli, data, cache, no_dac=True)
    _unit_failed(run, cache, f"scannet/{scene}", scene_dir(data, scene), "permission denied")


def test_unreadable_clip_is_permission_denied_not_a_bad_archive(
    cli: Cli, data: Path, tmp_path: Path, permissions_apply: None,
) -> None:
    clip = _clips(data)[0]
    path = data / "tapvid3d" / f"{clip}.npz"
    path.chmod(0)
    cache = tmp_path / "cache"
    run = _prepare(cli, data, cache, no_dac=True)
    _unit_failed(run, cache, f"tapvid3d/{clip}", path, "permission denied")
    assert "not a valid npz" not in run.stdout


@pytest.mark.parametrize("what", ["subset folder", "split list"])
def test_unreadable_dataset_level_input_is_one_line_error(
    cli: Cli, data: Path, tmp_path: Path, what: str, permissions_apply: None,
) -> None:
    path = (data / "tapvid3d" / "adt" if what == "subset folder"
            else data / "scannet" / "scannetv2_train.txt")
    path.chmod(0)
    cache = tmp_path / "new" / "cache"
    assert_one_line_error(_prepare(cli, data, cache, no_dac=True), path, "permission denied")
    assert not (tmp_path / "new").exists()  # nothing created by the failed command
    assert_one_line_error(_inspect(cli, data, no_dac=True), path, "permission denied")


def test_unwritable_cache_is_one_line_error(
    cli: Cli, data: Path, tmp_path: Path, permissions_apply: None,
) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    run = _prepare(cli, data, parent / "cache", no_dac=True)
    assert_one_line_error(run, parent / "cache", "permission denied", "--cache")


# ----------------------------------------------------------------------- bad geometry


def test_nan_vertex_fails_its_scene_naming_the_mesh(cli: Cli, data: Path, tmp_path: Path) -> None:
    scene = _scenes(data)[2]
    ply = scene_dir(data, scene) / f"{scene}_vh_clean_2.ply"
    set_ply_vertex(ply, 7, (float("nan"), 0.0, 1.0))
    cache = tmp_path / "cache"
    _unit_failed(_prepare(cli, data, cache), cache, f"scannet/{scene}", ply,
                 "1 vertex position(s) are not finite", "first vertex 7")
    row = _inspect_row(_inspect(cli, data), scene)
    assert "ERROR" in row and str(ply) in row


def test_zero_axis_alignment_fails_its_scene(cli: Cli, data: Path, tmp_path: Path) -> None:
    scene = _scenes(data)[0]
    txt = scene_dir(data, scene) / f"{scene}.txt"
    lines = [("axisAlignment = " + " ".join(["0"] * 16)) if line.startswith("axisAlignment")
             else line for line in txt.read_text().splitlines()]
    txt.write_text("\n".join(lines) + "\n")
    cache = tmp_path / "cache"
    _unit_failed(_prepare(cli, data, cache), cache, f"scannet/{scene}", txt,
                 "axisAlignment is not a rigid transform")
    row = _inspect_row(_inspect(cli, data), scene)
    assert "ERROR" in row and "axisAlignment" in row


def test_nan_intrinsics_never_reach_meta_json(cli: Cli, data: Path, tmp_path: Path) -> None:
    scene = _scenes(data)[3]
    sens = scene_dir(data, scene) / f"{scene}.sens"
    set_sens_fx(sens, float("nan"))
    cache = tmp_path / "cache"
    _unit_failed(_prepare(cli, data, cache), cache, f"scannet/{scene}", sens,
                 "colour intrinsics are fx=nan")
    for meta in cache.rglob("meta.json"):
        assert_valid_manifest(meta)


# ----------------------------------------------------------------------- undecodable images


def test_undecodable_colour_frames_are_dropped_and_counted(
    cli: Cli, data: Path, tmp_path: Path,
) -> None:
    scenes = _scenes(data)
    one, every = scenes[0], scenes[1]
    zero_sens_colour(scene_dir(data, one) / f"{one}.sens", [5])  # one kept frame (stride 5)
    sens = scene_dir(data, every) / f"{every}.sens"
    from multispa.scenes.sens import SensFile

    with SensFile(sens) as reader:
        count = reader.num_frames
    zero_sens_colour(sens, list(range(count)))
    clip = _clips(data)[0]
    cut_clip_jpeg(data / "tapvid3d" / f"{clip}.npz", 3)

    cache = tmp_path / "cache"
    run = _prepare(cli, data, cache)
    assert run.returncode == 0, run.stdout + run.stderr
    manifest = assert_valid_manifest(cache / "manifest.json")
    unusable = manifest["units"][f"scannet/{every}"]
    assert unusable["status"] == "unusable"
    assert "frames have unusable colour images" in unusable["error"]
    assert f"unusable: scannet/{every}:" in run.stdout

    meta = json.loads((cache / "scannet" / one / "meta.json").read_text())
    assert meta["bad_images"] == [{"frame": 5, "problem": "not a JPEG (starts with 00 00 00, "
                                                         "expected ff d8 ff)"}]
    assert 5 not in meta["frames"] and 0 in meta["frames"]
    assert not (cache / "scannet" / one / "images" / "00005.jpg").exists()
    assert manifest["units"][f"scannet/{one}"]["counts"]["bad_images"] == 1

    clip_cache = cache / "tapvid3d" / clip
    clip_meta = json.loads((clip_cache / "meta.json").read_text())
    assert [entry["frame"] for entry in clip_meta["bad_images"]] == [3]
    assert "truncated JPEG" in clip_meta["bad_images"][0]["problem"]
    assert not (clip_cache / "images" / "00003.jpg").exists()
    visible = np.load(clip_cache / "visible.npy")
    assert not visible[3].any() and visible[2].any()

    seen = _inspect(cli, data)
    assert seen.returncode == 0, seen.stderr
    assert _inspect_row(seen, one).split()[6] == "1"  # the 'bad img' column
    assert "UNUSABLE" in _inspect_row(seen, every)
    subset, name = clip.split("/")
    clip_row = next(line.split() for line in seen.stdout.splitlines()
                    if line.split()[:2] == [subset, name])
    assert clip_row[4] == "1"

    dataset = tmp_path / "dataset"
    generated = cli("generate", "--cache", cache, "--out", dataset, "--max-per-subtask", "10")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    assert_valid_manifest(dataset / "manifest.json")
    records = [json.loads(line) for path in dataset.glob("*/*/*.jsonl")
               for line in path.read_text().splitlines()]
    assert records
    dropped = f"scannet/{one}/00005.jpg"
    assert not any(dropped in image for record in records for image in record["image"])


# ----------------------------------------------------------------------- names and types


def test_names_that_are_not_utf8_fail_their_unit_and_keep_the_manifest(
    cli: Cli, data: Path, tmp_path: Path,
) -> None:
    scene = _scenes(data)[1]
    rename_scene_bytes(data, scene, b"scene\xff" + scene[6:].encode())
    clip = _clips(data)[1]
    subset, name = clip.split("/")
    old = os.fsencode(data / "tapvid3d" / subset / f"{name}.npz")
    os.rename(old, os.fsencode(data / "tapvid3d" / subset) + b"/clip\xfe.npz")

    cache = tmp_path / "cache"
    run = _prepare(cli, data, cache)
    assert run.returncode == 1
    shown = f"scene\\xff{scene[6:]}"
    assert "not valid UTF-8" in run.failed_line(f"scannet/{shown}")
    assert "not valid UTF-8" in run.failed_line(f"tapvid3d/{subset}/clip\\xfe")
    manifest = assert_valid_manifest(cache / "manifest.json")
    failed = sorted(u for u, info in manifest["units"].items() if info["status"] == "failed")
    assert failed == sorted([f"scannet/{shown}", f"tapvid3d/{subset}/clip\\xfe"])
    units = len(list((data / "scannet" / "scans").iterdir()))
    units += len(list((data / "tapvid3d").glob("*/*.npz")))
    assert sum(info["status"] == "done" for info in manifest["units"].values()) == units - 2

    generated = cli("generate", "--cache", cache, "--out", tmp_path / "dataset",
                    "--max-per-subtask", "5")
    assert generated.returncode == 0, generated.stderr
    seen = _inspect(cli, data)
    assert_one_line_error(seen, "2 scene(s)/clip(s) could not be read")
    assert "not valid UTF-8" in _inspect_row(seen, shown)


@pytest.mark.parametrize("which", ["clip", "aggregation", "scene txt"])
def test_folder_where_a_file_is_expected_is_an_error_not_absent(
    cli: Cli, data: Path, tmp_path: Path, which: str,
) -> None:
    scene, clip = _scenes(data)[0], _clips(data)[0]
    if which == "clip":
        path, unit = data / "tapvid3d" / f"{clip}.npz", f"tapvid3d/{clip}"
    else:
        name = f"{scene}.aggregation.json" if which == "aggregation" else f"{scene}.txt"
        path, unit = scene_dir(data, scene) / name, f"scannet/{scene}"
    path.unlink()
    path.mkdir()
    cache = tmp_path / "cache"
    _unit_failed(_prepare(cli, data, cache), cache, unit, path, "is a folder, expected a file")


@pytest.mark.parametrize("option", ["--scannet", "--tapvid3d"])
def test_inspect_of_a_folder_without_a_dataset_is_an_error(
    cli: Cli, tmp_path: Path, option: str,
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    what = "no ScanNet scene found" if option == "--scannet" else "no TAPVid-3D subset folder"
    assert_one_line_error(cli("inspect", option, empty), empty, what)
    assert_one_line_error(cli("prepare", option, empty, "--cache", tmp_path / "c"), empty)
    assert not (tmp_path / "c").exists()

"""Rules (m) (bench build refuses shared rooms), (q) (easy distractors in val) and (r) (yaw only
at moderate pitch), on the shared synthetic dataset and small hand-edited copies of it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from multispa.cli import main
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.correspondence import CorrespondenceFamily


def _records(dataset: Path, split: str, pattern: str = "*/*.jsonl") -> list[dict]:
    return [
        json.loads(line)
        for path in sorted((dataset / split).glob(pattern))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _pitch_deg(world_from_cam: np.ndarray) -> float:
    forward = np.asarray(world_from_cam, dtype=np.float64)[:3, 2]
    return math.degrees(math.asin(forward[2] / np.linalg.norm(forward)))


def test_no_val_record_has_hard_distractors(small_dataset: Path) -> None:
    records = _records(small_dataset, "val", "correspondence/correspondence_mcq_dot.jsonl")
    assert records and {r["meta"]["difficulty"] for r in records} == {"easy"}


def test_val_is_easy_even_when_hard_distractors_are_asked(
    small_dataset: Path, tmp_path: Path
) -> None:
    cache = small_dataset.parent / "cache"
    manifest = json.loads((cache / "manifest.json").read_text())
    entries = sorted(manifest["units"].items())
    units = {
        split: [CacheUnit(uid, cache / uid, split) for uid, entry in entries
                if entry["split"] == split and uid.startswith("scannet/")]
        for split in ("train", "val")
    }
    family = CorrespondenceFamily()
    hard = GenerateSettings(mcq_difficulty="hard")
    seen = {}
    for split, split_units in units.items():
        selections, _ = family.plan(split, split_units, {"correspondence_mcq_dot": 12}, 0, hard)
        difficulties = set()
        for unit in split_units:
            mine = [s for s in selections if s.unit_id == unit.unit_id]
            ctx = UnitContext(unit, 0, tmp_path / split, hard)
            difficulties |= {r["meta"]["difficulty"] for r in family.generate(ctx, mine)}
        seen[split] = difficulties
    assert seen == {"train": {"hard"}, "val": {"easy"}}


def test_no_yaw_record_has_a_steep_camera(small_dataset: Path) -> None:
    cache = small_dataset.parent / "cache" / "scannet"
    checked = 0
    for split in ("train", "val"):
        for record in _records(small_dataset, split, "camera_movement/camera_yaw_*.jsonl"):
            folder = cache / record["meta"]["scene"]
            index = {int(f): i for i, f in enumerate(np.load(folder / "frame_index.npy"))}
            poses = np.load(folder / "world_from_cam.npy")
            for frame in record["meta"]["frames"]:
                assert abs(_pitch_deg(poses[index[frame]])) <= 50.0, record["id"]
                checked += 1
    assert checked > 100
    # the rule has something to remove: steep frames exist and yaw pairs were dropped
    steep = sum(
        abs(_pitch_deg(pose)) > 50.0
        for folder in cache.iterdir()
        for pose in np.load(folder / "world_from_cam.npy")
    )
    manifest = json.loads((small_dataset / "manifest.json").read_text())
    assert steep > 0
    assert manifest["skipped"]["train"]["camera_yaw_direction:steep_pitch"] > 0
    assert manifest["skipped"]["train"]["camera_yaw_degree:steep_pitch"] > 0
    assert not any("steep_pitch" in reason and "yaw" not in reason
                   for split in ("train", "val") for reason in manifest["skipped"][split])


def _jsonl_copy(dataset: Path, dst: Path) -> Path:
    for path in dataset.glob("*/*/*.jsonl"):
        target = dst / path.relative_to(dataset)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return dst


def _rewrite_first(path: Path, change: dict) -> dict:
    lines = path.read_text(encoding="utf-8").splitlines()
    record = json.loads(lines[0])
    old = record["meta"]["scene"]
    record["meta"].update(change)
    record["id"] = record["id"].replace(old, record["meta"]["scene"])
    lines[0] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return record


def test_bench_build_exits_1_on_a_room_shared_with_training(
    small_dataset: Path, tmp_path: Path
) -> None:
    fake = _jsonl_copy(small_dataset, tmp_path / "fake")
    val_scene = next(r for r in _records(small_dataset, "val") if r["meta"]["source"] == "scannet")
    room = val_scene["meta"]["scene"][:9]
    rescan = f"{room}_07"  # another scan of a benchmark room, used for training
    _rewrite_first(fake / "train" / "depth" / "depth_estimation_dot.jsonl", {"scene": rescan})
    result = CliRunner().invoke(main, ["bench", "build", "--dataset", str(fake), "--out",
                                       str(tmp_path / "bench"), "--per-subtask", "300"])
    assert result.exit_code == 1
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("error: ") and f"scannet:{room}" in error and "train split" in error
    assert not (tmp_path / "bench").exists()


def test_bench_build_refuses_hard_distractors(small_dataset: Path, tmp_path: Path) -> None:
    fake = _jsonl_copy(small_dataset, tmp_path / "fake")
    path = fake / "val" / "correspondence" / "correspondence_mcq_dot.jsonl"
    record = _rewrite_first(path, {"difficulty": "hard"})
    result = CliRunner().invoke(main, ["bench", "build", "--dataset", str(fake), "--out",
                                       str(tmp_path / "bench")])
    assert result.exit_code == 1
    assert record["id"] in result.output and "'hard'" in result.output
    assert "easy distractors" in result.output


def test_generate_manifest_records_how_scenes_were_split(small_dataset: Path) -> None:
    manifest = json.loads((small_dataset / "manifest.json").read_text())
    splits = manifest["cache"]["splits"]
    assert splits["scannet"]["source"] == "lists" and splits["scannet"]["warning"] is None
    assert set(splits["tapvid3d"]["source"].values()) == {"lists"}


def test_generate_cli_notes_that_val_stays_easy(small_dataset: Path, tmp_path: Path) -> None:
    cache = small_dataset.parent / "cache"
    result = CliRunner().invoke(main, [
        "generate", "--cache", str(cache), "--out", str(tmp_path / "d"), "--split", "val",
        "--tasks", "correspondence_mcq_dot", "--max-per-subtask", "4", "--mcq-difficulty", "hard",
    ])
    assert result.exit_code == 0, result.output
    assert "val split (benchmark pool) uses easy MCQ distractors" in result.output
    assert {r["meta"]["difficulty"] for r in _records(tmp_path / "d", "val")} == {"easy"}

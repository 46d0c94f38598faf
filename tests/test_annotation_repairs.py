"""Rule (n): duplicate ``segGroups`` are dropped, objects without vertex do not count towards label
repetition, and with a label map object size asks only objects whose NYU40 class is unshared."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from multispa.cli import main
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.scenes.scannet import ScanNetDataset, load_scannet_scene
from multispa.scenes.scannet_annotations import SegGroup, drop_duplicate_groups
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.base import CacheUnit, GenerateSettings
from multispa.tasks.object_size import ObjectSizeFamily, eligibility_problem

SUBTASKS = ("object_size_height", "object_size_width", "object_size_length")


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("repairs")
    write_synthetic_dataset(out, SynthConfig(scenes=2, clips=0, seed=3, small=True, workers=1))
    return out


def _group(object_id: int, label: str, segments: list[int]) -> SegGroup:
    return SegGroup(object_id, label, np.array(segments, dtype=np.int64))


def test_drop_duplicate_groups_compares_label_and_segment_set() -> None:
    groups = [
        _group(0, "chair", [3, 1]),
        _group(1, "table", [2]),
        _group(2, "chair", [1, 3, 3]),  # same label, same set: dropped
        _group(3, "Chair", [1, 3]),  # another label: kept
        _group(4, "table", [2, 5]),  # another set: kept
    ]
    kept, dropped = drop_duplicate_groups(groups)
    assert [g.object_id for g in kept] == [0, 1, 3, 4] and dropped == 1


def test_duplicated_list_gives_the_objects_of_the_deduplicated_file(
    synthetic: Path, tmp_path: Path
) -> None:
    scan = "scene0000_01"
    aggregation = json.loads(
        (synthetic / "scannet" / "scans" / scan / f"{scan}.aggregation.json").read_text()
    )
    groups = aggregation["segGroups"]
    half = len(groups) // 2
    assert half and groups[:half] == [
        {**g, "id": g["id"] - half, "objectId": g["objectId"] - half} for g in groups[half:]
    ]
    root = tmp_path / "scannet"
    shutil.copytree(synthetic / "scannet", root)
    path = root / "scans" / scan / f"{scan}.aggregation.json"
    path.write_text(json.dumps({**aggregation, "segGroups": groups[:half]}))
    repaired = load_scannet_scene(synthetic / "scannet" / "scans", scan)
    plain = load_scannet_scene(root / "scans", scan)
    assert repaired.notes.duplicate_groups == half and plain.notes.duplicate_groups == 0
    assert repaired.notes.empty_objects == ()
    np.testing.assert_array_equal(repaired.instance_ids, plain.instance_ids)
    assert [(o.object_id, o.label) for o in repaired.objects] == [
        (o.object_id, o.label) for o in plain.objects
    ]
    for a, b in zip(repaired.objects, plain.objects, strict=True):
        np.testing.assert_array_equal(a.vertex_indices, b.vertex_indices)
    # the rescan shows room 0: the same objects as scene0000_00
    first = load_scannet_scene(synthetic / "scannet" / "scans", "scene0000_00")
    assert [(o.object_id, o.label, o.vertex_indices.size) for o in first.objects] == [
        (o.object_id, o.label, o.vertex_indices.size) for o in repaired.objects
    ]


def test_objects_without_vertex_do_not_repeat_a_label(synthetic: Path, tmp_path: Path) -> None:
    """An earlier group whose only segment a later group claims is left without vertex."""
    scene = "scene0001_00"
    root = tmp_path / "scannet"
    shutil.copytree(synthetic / "scannet", root)
    path = root / "scans" / scene / f"{scene}.aggregation.json"
    aggregation = json.loads(path.read_text())
    groups = aggregation["segGroups"]
    target = next(g for g in groups if g["label"] not in ("wall", "floor", "ceiling")
                  and len(g["segments"]) > 1
                  and sum(h["label"] == g["label"] for h in groups) == 1)
    ghost_id = max(g["objectId"] for g in groups) + 1
    ghost = {"id": ghost_id, "objectId": ghost_id, "label": target["label"],
             "segments": target["segments"][:1]}
    path.write_text(json.dumps({**aggregation, "segGroups": [ghost, *groups]}))

    result = CliRunner().invoke(main, ["inspect", "--scannet", str(root)])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if line.startswith(f"  {scene}"))
    assert target["label"] not in row.split("  ")[-1]  # not in the repeated column
    assert f"warning: {scene}: 1 object(s) without any vertex (objectId {ghost_id})" in (
        result.output
    )

    prepare(PrepareConfig(cache=tmp_path / "cache", scannet=root, scenes=(scene,)))
    rows = json.loads((tmp_path / "cache" / "scannet" / scene / "objects.json").read_text())
    by_id = {row["object_id"]: row for row in rows}
    assert by_id[ghost_id]["num_vertices"] == 0 and by_id[ghost_id]["label_count"] == 0
    assert by_id[target["objectId"]]["label_count"] == 1
    for subtask in SUBTASKS:
        assert eligibility_problem(by_id[target["objectId"]], subtask) != "repeated_label"
    notes = json.loads((tmp_path / "cache" / "manifest.json").read_text())["units"][
        f"scannet/{scene}"]["notes"]
    assert notes["empty_objects"] == [ghost_id]


def test_eligibility_with_a_shared_nyu40_class() -> None:
    row = {"label": "table", "label_count": 1, "num_vertices": 50, "nyu40_class": "table",
           "box": {"height_m": 0.7, "length_m": 1.2, "width_m": 0.8}}
    assert eligibility_problem(row, "object_size_width") is None
    assert eligibility_problem(row, "object_size_width", 1, 2) == "shared_nyu40_class"
    assert eligibility_problem(row, "object_size_width", 2, 2) == "repeated_label"


def _plan(cache: Path, scene: str) -> tuple[set[int], Counter[str]]:
    unit = CacheUnit(f"scannet/{scene}", cache / "scannet" / scene, "train")
    quotas: dict[str, int | None] = dict.fromkeys(SUBTASKS)
    selections, skipped = ObjectSizeFamily().plan("train", [unit], quotas, 0, GenerateSettings())
    return {int(s.extra["object_id"]) for s in selections}, Counter(skipped)


def test_label_map_excludes_the_ambiguous_pair(synthetic: Path, tmp_path: Path) -> None:
    scene = "scene0000_00"
    dataset = ScanNetDataset(synthetic / "scannet")
    assert dataset.label_map is not None
    assert dataset.label_map["table"] == dataset.label_map["coffee table"] == "table"
    prepare(PrepareConfig(cache=tmp_path / "with", scannet=synthetic / "scannet",
                          scenes=(scene,), frame_skip=1))
    rows = json.loads((tmp_path / "with" / "scannet" / scene / "objects.json").read_text())
    pair = {row["object_id"] for row in rows if row["label"] in ("table", "coffee table")}
    assert len(pair) == 2
    assert {row["nyu40_class"] for row in rows if row["object_id"] in pair} == {"table"}
    chosen, skipped = _plan(tmp_path / "with", scene)
    assert not chosen & pair
    for subtask in SUBTASKS:
        assert skipped[f"{subtask}:shared_nyu40_class"] >= 2

    no_map = tmp_path / "scannet"
    shutil.copytree(synthetic / "scannet", no_map)
    (no_map / "scannetv2-labels.combined.tsv").unlink()
    prepare(PrepareConfig(cache=tmp_path / "without", scannet=no_map, scenes=(scene,),
                          frame_skip=1))
    rows = json.loads((tmp_path / "without" / "scannet" / scene / "objects.json").read_text())
    assert all(row["nyu40_class"] is None for row in rows)
    chosen, skipped = _plan(tmp_path / "without", scene)
    assert chosen & pair  # eligible (and covered) once the classes are unknown
    assert not any(reason.endswith("shared_nyu40_class") for reason in skipped)

"""`multispa bench build` on a small synthetic dataset: selection per key, self-contained and
relocatable folders, the content hash, and the train/benchmark leakage check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from multispa.cli.bench import bench
from multispa.errors import ConfigError, DatasetError, FormatError, MissingFileError
from multispa.evaluate.bench import (
    BENCH_FORMAT,
    bench_content_sha256,
    build_bench,
    item_to_record,
    load_bench,
    load_bench_manifest,
    record_to_item,
    train_units,
    verify_bench,
)
from multispa.evaluate.runner import run_eval
from multispa.metrics.rows import benchmark_key
from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.templates import BENCHMARK_SUBTASKS, NVIEW_SUBTASKS

PER_SUBTASK = 15


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bench_data")
    write_synthetic_dataset(root / "synth",
                            SynthConfig(scenes=4, clips=4, seed=5, small=True, workers=1))
    prepare(PrepareConfig(cache=root / "cache", scannet=root / "synth" / "scannet",
                          tapvid3d=root / "synth" / "tapvid3d", frame_skip=1))
    out = root / "dataset"
    generate(GenerateConfig(cache=root / "cache", out=out, max_per_subtask=40, seed=1))
    return out


@pytest.fixture(scope="module")
def built(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench_out") / "bench"
    build_bench(dataset, out, per_subtask=PER_SUBTASK, seed=3)
    return out


def _split_records(dataset: Path, split: str) -> list[dict]:
    return [json.loads(line) for path in sorted((dataset / split).glob("*/*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _copy_jsonl(dataset: Path, dst: Path, splits: tuple[str, ...] = ("train", "val")) -> None:
    for split in splits:
        for path in (dataset / split).glob("*/*.jsonl"):
            target = dst / path.relative_to(dataset)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


def test_counts_selection_and_item_fields(dataset: Path, built: Path) -> None:
    val = {r["id"]: r for r in _split_records(dataset, "val")}
    pools: dict[str, int] = {}
    for record in val.values():
        pools[benchmark_key(record)] = pools.get(benchmark_key(record), 0) + 1
    items = load_bench(built)
    manifest = load_bench_manifest(built)
    counts = {key: 0 for key in BENCHMARK_SUBTASKS}
    for item in items:
        counts[benchmark_key(item)] += 1
    assert counts == manifest["counts"]
    for key in BENCHMARK_SUBTASKS:
        assert counts[key] == min(PER_SUBTASK, pools.get(key, 0)), key
    assert sum(counts.values()) == manifest["items"] == len(items)
    assert manifest["format"] == BENCH_FORMAT
    assert manifest["per_subtask"] == PER_SUBTASK and manifest["seed"] == 3
    assert manifest["leakage_check"] == "passed"
    assert manifest["missing_keys"] == [k for k in BENCHMARK_SUBTASKS if counts[k] == 0]
    # sorted by (key order, id), each item is its val record, flattened
    order = [(BENCHMARK_SUBTASKS.index(benchmark_key(i)), i["id"]) for i in items]
    assert order == sorted(order)
    for item in items:
        assert item_to_record(item) == val[item["id"]]
        assert set(item) == {"id", "image", "text", "answer", "gt", "answer_type", "task",
                             "subtask", "width_list", "height_list", "meta"}
        assert item["text"].count("<image>") == len(item["image"])
        for rel in item["image"]:
            assert (built / "images" / rel).read_bytes() == (dataset / "images" / rel).read_bytes()


def test_selection_is_seeded_and_uniform_within_key(dataset: Path, tmp_path: Path) -> None:
    a = build_bench(dataset, tmp_path / "a", per_subtask=10, seed=7)
    b = build_bench(dataset, tmp_path / "b", per_subtask=10, seed=7)
    c = build_bench(dataset, tmp_path / "c", per_subtask=10, seed=8)
    ids = {name: [i["id"] for i in load_bench(tmp_path / name)] for name in "abc"}
    assert ids["a"] == ids["b"] and a.content_sha256 == b.content_sha256
    assert ids["a"] != ids["c"] and a.content_sha256 != c.content_sha256
    # keys whose pool is below the cap keep every item, whatever the seed
    small = [k for k in BENCHMARK_SUBTASKS if 0 < a.available[k] <= 10]
    for key in small:
        assert a.counts[key] == c.counts[key] == a.available[key]
    assert all(a.counts[k] == 10 for k in BENCHMARK_SUBTASKS if a.available[k] > 10)
    assert set(a.short_keys) == {k for k in small if a.available[k] < 10}


def test_content_hash_stable_and_sensitive_to_image_bytes(
    dataset: Path, built: Path, tmp_path: Path,
) -> None:
    manifest = load_bench_manifest(built)
    assert verify_bench(built) == manifest["content_sha256"]
    again = build_bench(dataset, tmp_path / "again", per_subtask=PER_SUBTASK, seed=3)
    assert again.content_sha256 == manifest["content_sha256"]
    assert (tmp_path / "again" / "bench.jsonl").read_bytes() == (built / "bench.jsonl").read_bytes()
    # rebuilding over a previous benchmark replaces it
    rebuilt = build_bench(dataset, tmp_path / "again", per_subtask=PER_SUBTASK, seed=3)
    assert rebuilt.content_sha256 == manifest["content_sha256"]
    # a copy (not hard links) with one image byte changed
    copy = tmp_path / "copy"
    shutil.copytree(built, copy)
    image = copy / "images" / load_bench(copy)[0]["image"][0]
    data = bytearray(image.read_bytes())
    data[len(data) // 2] ^= 0x01
    image.write_bytes(bytes(data))
    assert bench_content_sha256(copy) != manifest["content_sha256"]
    with pytest.raises(FormatError, match="content_sha256"):
        verify_bench(copy)
    assert verify_bench(built) == manifest["content_sha256"]  # the original is untouched


def test_bench_is_relocatable(built: Path, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere" / "bench"
    moved.parent.mkdir()
    shutil.copytree(built, tmp_path / "staging")
    shutil.move(tmp_path / "staging", moved)
    assert verify_bench(moved) == load_bench_manifest(built)["content_sha256"]
    scores = run_eval(moved, "baseline:oracle", tmp_path / "run", progress=False, bootstrap=0)
    assert scores["summary"]["records"] == len(load_bench(built))
    assert scores["summary"]["accuracy_pct"] == 100.0


def test_record_item_round_trip() -> None:
    record = {
        "id": "val-camera_x_direction-scannet-scene0001_00-00001_00002-0123456789",
        "image": ["scannet/scene0001_00/00001.jpg", "scannet/scene0001_00/00002.jpg"],
        "conversations": [{"from": "human", "value": "Image-1: <image>\nImage-2: <image>\nQ?"},
                          {"from": "gpt", "value": "It went `left`."}],
        "height_list": [968, 968], "width_list": [1296, 1296], "task": "camera_movement",
        "subtask": "camera_x_direction", "answer_type": "label", "gt": "left",
        "meta": {"source": "scannet", "scene": "scene0001_00", "split": "val"},
    }
    item = record_to_item(record)
    assert item["text"].endswith("Q?") and item["answer"] == "It went `left`."
    assert item_to_record(item) == record
    broken = {**record, "conversations": record["conversations"][:1]}
    with pytest.raises(FormatError, match="conversations"):
        record_to_item(broken, "x.jsonl")


def _leak(dataset: Path, tmp_path: Path, mutate: str) -> tuple[Path, str]:
    """A jsonl-only copy of the dataset with one train record moved onto a val scene or onto
    another clip of a val clip's sequence; returns the copy and the leaked scene or sequence."""
    fake = tmp_path / f"leak_{mutate}"
    _copy_jsonl(dataset, fake)
    val = _split_records(dataset, "val")
    if mutate in ("scene", "scene_no_id"):
        target = next(r for r in val if r["meta"]["source"] == "scannet")["meta"]["scene"]
        path = fake / "train" / "depth" / "depth_estimation_dot.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[0])
        old = record["meta"]["scene"]
        record["meta"]["scene"] = target
        record["id"] = record["id"].replace(old, target) if mutate == "scene" else "custom-1"
        leaked = target[:9]  # reported by room
    else:
        clip = next(r for r in val if r["meta"]["source"] == "tapvid3d/pstudio")["meta"]["clip"]
        target = clip.rsplit("_", 1)[0] + "_99"  # another clip of the same sequence
        path = fake / "train" / "object_movement" / "object_movement_distance_dot.pstudio.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines()
        record = json.loads(lines[0])
        old = record["meta"]["clip"]
        record["meta"]["clip"] = target
        record["id"] = record["id"].replace(old, target)
        leaked = clip.rsplit("_", 1)[0]
    lines[0] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return fake, leaked


@pytest.mark.parametrize("mutate", ["scene", "scene_no_id", "sequence"])
def test_leakage_between_train_and_benchmark_raises(
    dataset: Path, tmp_path: Path, mutate: str,
) -> None:
    fake, leaked = _leak(dataset, tmp_path, mutate)
    with pytest.raises(DatasetError, match=f"train split.*:{leaked}"):
        build_bench(fake, tmp_path / "out", per_subtask=PER_SUBTASK)
    assert not (tmp_path / "out").exists()


def test_train_units_of_the_real_dataset_are_disjoint_from_val(dataset: Path) -> None:
    units = train_units(dataset)
    assert units is not None
    val = _split_records(dataset, "val")
    val_scenes = {r["meta"]["scene"] for r in val if r["meta"]["source"] == "scannet"}
    assert units["scannet"] and not units["scannet"] & val_scenes
    for source in ("tapvid3d/adt", "tapvid3d/pstudio"):
        val_sequences = {r["meta"]["clip"].rsplit("_", 1)[0] for r in val
                         if r["meta"]["source"] == source}
        assert val_sequences and units[source] and not units[source] & val_sequences


def test_no_val_split_fails_clearly(dataset: Path, tmp_path: Path) -> None:
    fake = tmp_path / "train_only"
    _copy_jsonl(dataset, fake, splits=("train",))
    with pytest.raises(MissingFileError, match="no val split"):
        build_bench(fake, tmp_path / "out")


def test_missing_image_and_non_empty_out(dataset: Path, tmp_path: Path) -> None:
    fake = tmp_path / "no_images"
    _copy_jsonl(dataset, fake)
    with pytest.raises(MissingFileError, match="image of record"):
        build_bench(fake, tmp_path / "out", per_subtask=2)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        build_bench(dataset, busy, per_subtask=2)
    assert (busy / "notes.txt").read_text() == "mine"


def test_cli_build_prints_counts_and_warns_about_missing_keys(
    dataset: Path, tmp_path: Path,
) -> None:
    partial = tmp_path / "partial"
    _copy_jsonl(dataset, partial)
    for path in (partial / "val").glob("object_*/*.jsonl"):
        path.unlink()
    (partial / "images").symlink_to(dataset / "images")
    cli = click.Group(commands={"bench": bench})
    result = CliRunner().invoke(cli, ["bench", "build", "--dataset", str(partial), "--out",
                                      str(tmp_path / "b"), "--per-subtask", "40"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert lines["camera_x_direction"][1] == lines["camera_x_direction"][2] != "0"
    assert lines["object_size_height"][1:] == ["0", "0", "MISSING"]
    assert "benchmark key(s) have no val item" in result.output
    manifest = load_bench_manifest(tmp_path / "b")
    # 8 object movement + 3 object size keys, and the N-view keys the val scene lacks
    lacking = [k for k in NVIEW_SUBTASKS
               if not (dataset / "val" / "nview" / f"{k}.jsonl").is_file()]
    assert len(manifest["missing_keys"]) == 11 + len(lacking)
    assert f"content_sha256: {manifest['content_sha256']}" in result.output

"""`multispa generate` end to end on small synthetic data: every subtask, the record contract,
resumability after SIGKILL and identical output whatever the worker count."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from multispa.metrics.rows import PAPER_SUBTASKS
from multispa.pipeline.generate import GenerateConfig, generate, load_quotas_file, write_shard
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.records import record_line, validate_record
from multispa.tasks.templates import BENCHMARK_SUBTASKS, NVIEW_SUBTASKS

MAX = 40  # records per subtask and split in these tests


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("gen_synth")
    write_synthetic_dataset(data, SynthConfig(scenes=6, clips=4, seed=5, small=True, workers=1))
    cache = tmp_path_factory.mktemp("gen_cache")
    summary = prepare(
        PrepareConfig(cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d")
    )
    assert summary.count("failed") == 0
    return cache


@pytest.fixture(scope="module")
def dataset(cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen_out") / "dataset"
    summary = generate(GenerateConfig(cache=cache, out=out, max_per_subtask=MAX, seed=1))
    assert not [r for r in summary.results if r.status == "failed"], summary.results
    return out


def _records(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for path in sorted(out.glob("*/*/*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def _benchmark_key(record: dict) -> str:
    source = record["meta"]["source"]
    return record["subtask"] if source == "scannet" else f"{record['subtask']}:{source[9:]}"


def test_every_subtask_produces_records(dataset: Path) -> None:
    records = _records(dataset)
    keys = {_benchmark_key(r) for r in records}
    assert keys == set(BENCHMARK_SUBTASKS), set(BENCHMARK_SUBTASKS) - keys
    per_split = {
        split: {_benchmark_key(r) for r in records if r["meta"]["split"] == split}
        for split in ("train", "val")
    }
    assert per_split["train"] == set(BENCHMARK_SUBTASKS), (
        set(BENCHMARK_SUBTASKS) - per_split["train"]
    )
    # The one val scene has every paper key; an N-view question needs a view set that allows it
    # (e.g. five nameable objects for relative distance), which one small room may not hold.
    assert per_split["val"] >= set(PAPER_SUBTASKS), set(PAPER_SUBTASKS) - per_split["val"]
    assert len(per_split["val"] & set(NVIEW_SUBTASKS)) >= 5


def test_records_follow_the_contract(dataset: Path, cache: Path) -> None:
    records = _records(dataset)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    manifest = json.loads((cache / "manifest.json").read_text())
    for record in records:
        validate_record(record)
        meta = record["meta"]
        assert record["id"].startswith(f"{meta['split']}-{record['subtask']}-")
        for path in record["image"]:
            assert (dataset / "images" / path).is_file(), path
            assert not Path(path).is_absolute()
        if meta["source"] == "scannet":
            unit = f"scannet/{meta['scene']}"
            frames = np.load(cache / unit / "frame_index.npy").tolist()
            assert set(meta["frames"]) <= set(frames)  # never an invalid or dropped frame
        else:
            unit = f"tapvid3d/{meta['source'].split('/')[1]}/{meta['clip']}"
        assert manifest["units"][unit]["split"] == meta["split"]
    per_file: dict[str, int] = {}
    for record in records:
        key = (record["meta"]["split"], _benchmark_key(record))
        per_file[str(key)] = per_file.get(str(key), 0) + 1
    assert max(per_file.values()) <= MAX


def test_manifest_and_internvl_meta(dataset: Path) -> None:
    manifest = json.loads((dataset / "manifest.json").read_text())
    for split in ("train", "val"):
        meta = json.loads((dataset / f"meta_{split}.json").read_text())
        assert meta
        for entry in meta.values():
            lines = (dataset / entry["annotation"]).read_text().splitlines()
            assert entry["length"] == len(lines) == manifest["counts"][split][entry["annotation"]]
            assert entry["root"] == "images/"
    assert manifest["settings"]["seed"] == 1


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_work" not in p.relative_to(root).parts
    }


def _cli(cache: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "multispa",
        "generate",
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--max-per-subtask",
        str(MAX),
        "--seed",
        "1",
        *extra,
    ]


def test_two_workers_give_identical_output(cache: Path, dataset: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        _cli(cache, tmp_path / "w2", "--workers", "2"), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert _tree(tmp_path / "w2") == _tree(dataset)
    assert any(name.startswith("train/nview/") for name in _tree(dataset))  # N-view included


def test_killed_generate_resumes_to_identical_output(
    cache: Path, dataset: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resumed"
    process = subprocess.Popen(
        _cli(cache, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any((out / "_work" / "done").rglob("*.json")):
            break
        time.sleep(0.01)
    killed = process.poll() is None
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert killed, "generate finished before it could be killed"
    rerun = subprocess.run(_cli(cache, out), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "already done" in rerun.stdout
    assert _tree(out) == _tree(dataset)
    assert any(name.startswith("val/nview/") for name in _tree(out))


def test_nview_views_option_is_recorded_deterministic_and_resumable(
    cache: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    args = ("--tasks", "nview", "--views", "5", "--view-sets-per-scene", "2")
    for out, workers in ((one, "1"), (two, "2")):
        result = subprocess.run(_cli(cache, out, *args, "--workers", workers),
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert _tree(one) == _tree(two)
    records = _records(one)
    assert records and {r["task"] for r in records} == {"nview"}
    assert all(len(r["image"]) == len(r["meta"]["views"]) == 5 for r in records)
    settings = json.loads((one / "manifest.json").read_text())["settings"]["settings"]
    assert settings["views"] == 5 and settings["view_sets_per_scene"] == 2
    # a finished unit is not redone; a different view count is refused for the same folder
    shutil.rmtree(one / "train")
    (next((one / "_work" / "done").rglob("*.json"))).unlink()
    rerun = subprocess.run(_cli(cache, one, *args), capture_output=True, text=True)
    assert rerun.returncode == 0 and "already done" in rerun.stdout, rerun.stderr
    assert _tree(one) == _tree(two)
    refused = subprocess.run(_cli(cache, one, "--tasks", "nview", "--views", "6"),
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "other settings" in refused.stderr


def test_quotas_file_and_refusal_of_other_settings(
    cache: Path, dataset: Path, tmp_path: Path
) -> None:
    quotas = tmp_path / "q.yaml"
    quotas.write_text("train:\n  camera_x_direction: 3\nval:\n  camera_x_direction: 2\n")
    assert load_quotas_file(quotas) == {
        "train": {"camera_x_direction": 3},
        "val": {"camera_x_direction": 2},
    }
    out = tmp_path / "small"
    generate(
        GenerateConfig(
            cache=cache, out=out, tasks=("camera_x_direction",), quotas=load_quotas_file(quotas)
        )
    )
    assert (
        len((out / "train/camera_movement/camera_x_direction.jsonl").read_text().splitlines()) == 3
    )
    assert len((out / "val/camera_movement/camera_x_direction.jsonl").read_text().splitlines()) == 2
    result = subprocess.run(_cli(cache, out), capture_output=True, text=True)
    assert result.returncode == 1 and "other settings" in result.stderr


class _Family:
    """A stand-in family: two records, and optionally their lines made another way."""

    family = "camera_movement"

    def __init__(self, lines: list[bytes] | None = None, fail_after: int | None = None) -> None:
        self.lines, self.fail_after = lines, fail_after

    def generate(self, ctx: object, selections: object) -> Iterator[dict]:
        for k in range(2):
            if self.fail_after == k:
                raise RuntimeError("generator bug")
            yield {"id": f"r{k}", "meta": {"x": k / 3}}


class _LinesFamily(_Family):
    def generate_lines(self, ctx: object, selections: object) -> Iterator[bytes]:
        yield from self.lines or []


def test_write_shard_writes_lines_atomically(tmp_path: Path) -> None:
    shard = tmp_path / "shards" / "train" / "x.jsonl"
    assert write_shard(_Family(), None, [], shard) == 2  # type: ignore[arg-type]
    assert shard.read_bytes() == b"".join(
        record_line({"id": f"r{k}", "meta": {"x": k / 3}}) for k in range(2)
    )
    # A family with generate_lines: its lines are written (the pipeline's fast path).
    family = _LinesFamily(lines=[b'{"id":"a"}\n', b'{"id":"b"}\n', b'{"id":"c"}\n'])
    assert write_shard(family, None, [], shard) == 3  # type: ignore[arg-type]
    assert shard.read_bytes() == b'{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n'
    # An error leaves the previous shard and no temporary file.
    with pytest.raises(RuntimeError, match="generator bug"):
        write_shard(_Family(fail_after=1), None, [], shard)  # type: ignore[arg-type]
    assert shard.read_bytes() == b'{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n'
    assert sorted(p.name for p in shard.parent.iterdir()) == ["x.jsonl"]

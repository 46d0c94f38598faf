"""Rule (m): splits by room, split lists in upstream layouts, explicit split folders, and the
hash fallback reported by ``inspect`` and ``prepare`` and recorded in the manifests."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from multispa.cli import main
from multispa.errors import MissingFileError
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.scenes.scannet import ScanNetDataset
from multispa.scenes.splits import room_of, scannet_hash_split
from multispa.scenes.tapvid3d import TapVid3DDataset
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset


def _own_hash_split(name: str) -> str:
    """The documented rule, recomputed: SHA-256, first 8 bytes big-endian / 2**64 < 0.2."""
    value = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2.0**64
    return "val" if value < 0.2 else "train"


def _scans(root: Path, scene_ids: list[str]) -> Path:
    scans = root / "scans"
    for scene_id in scene_ids:
        (scans / scene_id).mkdir(parents=True)
        (scans / scene_id / f"{scene_id}_vh_clean_2.ply").write_bytes(b"ply\n")
    return scans


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rooms")
    write_synthetic_dataset(out, SynthConfig(scenes=2, clips=2, seed=3, small=True, workers=1))
    return out


def test_room_of() -> None:
    assert room_of("scene0011_01") == "scene0011"
    assert room_of("scene0707_00") == "scene0707"
    assert room_of("my_scan") == "my_scan"


def test_hash_fallback_puts_every_rescan_of_a_room_in_one_split(tmp_path: Path) -> None:
    ids = [f"scene{room:04d}_{scan:02d}" for room in range(40) for scan in range(3)]
    dataset = ScanNetDataset(_scans(tmp_path, ids))
    assert dataset.split_source == "hash"
    for scene_id in ids:
        expected = _own_hash_split(scene_id[:9])
        assert dataset.split_of(scene_id) == scannet_hash_split(scene_id) == expected
    val = dataset.scenes_in_split("val")
    train = dataset.scenes_in_split("train")
    assert sorted(val + train) == ids and val and train
    assert not {room_of(s) for s in val} & {room_of(s) for s in train}
    assert "hash of their room id" in dataset.split_warning
    info = dataset.split_info()
    assert info["source"] == "hash" and info["files"] is None and "room" in info["warning"]


def test_split_lists_in_upstream_meta_data_and_explicit_folders(tmp_path: Path) -> None:
    scans = _scans(tmp_path / "ScanNet", ["scene0000_00", "scene0000_01", "scene0001_00"])
    meta = tmp_path / "ScanNet" / "meta_data"
    meta.mkdir()
    (meta / "scannetv2_train.txt").write_text("scene0000_00\nscene0000_01\n")
    (meta / "scannetv2_val.txt").write_text("scene0001_00\n")
    (meta / "scannetv2-labels.combined.tsv").write_text("raw_category\tnyu40class\nlamp\tlamp\n")
    dataset = ScanNetDataset(scans)
    assert dataset.split_source == "lists"
    assert dataset.split_files == (meta / "scannetv2_train.txt", meta / "scannetv2_val.txt")
    assert dataset.split_of("scene0001_00") == "val" and dataset.split_warning is None
    assert dataset.labels_tsv == meta / "scannetv2-labels.combined.tsv"

    elsewhere = tmp_path / "lists"
    elsewhere.mkdir()
    (elsewhere / "scannetv2_train.txt").write_text("scene0001_00\n")
    (elsewhere / "scannetv2_val.txt").write_text("scene0000_00\nscene0000_01\n")
    explicit = ScanNetDataset(scans, splits_dir=elsewhere)
    assert explicit.split_of("scene0000_01") == "val"
    with pytest.raises(MissingFileError, match=r"scannetv2_train\.txt"):
        ScanNetDataset(scans, splits_dir=tmp_path / "ScanNet")


def test_label_map_in_the_folder_holding_the_scannet_root(tmp_path: Path) -> None:
    scans = _scans(tmp_path / "data" / "ScanNet", ["scene0000_00"])
    tsv = tmp_path / "data" / "scannetv2-labels.combined.tsv"
    tsv.write_text("raw_category\tnyu40class\nlamp\tlamp\n")
    assert ScanNetDataset(scans).labels_tsv == tsv


def test_lists_that_split_a_room_are_reported(tmp_path: Path) -> None:
    scans = _scans(tmp_path, ["scene0000_00", "scene0000_01"])
    (tmp_path / "scannetv2_train.txt").write_text("scene0000_00\n")
    (tmp_path / "scannetv2_val.txt").write_text("scene0000_01\n")
    dataset = ScanNetDataset(scans)
    assert dataset.shared_rooms == ["scene0000"]
    assert "scene0000" in dataset.shared_rooms_warning


def test_tapvid3d_lists_in_meta_data_and_explicit_folder(synthetic: Path, tmp_path: Path) -> None:
    root = tmp_path / "tapvid3d"
    shutil.copytree(synthetic / "tapvid3d", root)
    moved = root / "meta_data" / "adt"
    moved.mkdir(parents=True)
    for split in ("train", "val"):
        (root / "adt" / f"{split}.txt").rename(moved / f"{split}.txt")
    (root / "pstudio" / "train.txt").unlink()
    (root / "pstudio" / "val.txt").unlink()
    dataset = TapVid3DDataset(root)
    assert dataset.split_source("adt") == "lists"
    assert "meta_data/adt/train.txt" in dataset.split_checksums
    assert dataset.split_source("pstudio") == "hash"
    assert "pstudio" in dataset.split_warning("pstudio")
    explicit = TapVid3DDataset(root, splits_dir=root / "meta_data")
    assert explicit.split_source("adt") == "lists"
    assert explicit.split_source("pstudio") == "hash"
    assert explicit.split_warning("adt") is None


def test_synthetic_rescan_shares_its_rooms_split(synthetic: Path, tmp_path: Path) -> None:
    train = (synthetic / "scannet" / "scannetv2_train.txt").read_text().split()
    val = (synthetic / "scannet" / "scannetv2_val.txt").read_text().split()
    assert train == ["scene0000_00", "scene0000_01"] and val == ["scene0001_00"]
    # without the lists, the room hash keeps them together too
    root = tmp_path / "scannet"
    shutil.copytree(synthetic / "scannet", root)
    for split in ("train", "val"):
        (root / f"scannetv2_{split}.txt").unlink()
    dataset = ScanNetDataset(root)
    assert dataset.split_of("scene0000_00") == dataset.split_of("scene0000_01")


def test_inspect_and_prepare_warn_about_the_hash_and_the_manifest_records_it(
    synthetic: Path, tmp_path: Path
) -> None:
    root = tmp_path / "scannet"
    shutil.copytree(synthetic / "scannet", root)
    lists = tmp_path / "lists"
    lists.mkdir()
    for split in ("train", "val"):
        (root / f"scannetv2_{split}.txt").rename(lists / f"scannetv2_{split}.txt")
    runner = CliRunner()
    result = runner.invoke(main, ["inspect", "--scannet", str(root)])
    assert result.exit_code == 0, result.output
    assert "splits from hash" in result.output
    warnings = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert any("hash of their room id" in line for line in warnings)
    result = runner.invoke(main, ["inspect", "--scannet", str(root), "--scannet-splits",
                                  str(lists)])
    assert result.exit_code == 0, result.output
    assert "splits from lists" in result.output and "hash of their room id" not in result.output

    result = runner.invoke(main, ["prepare", "--scannet", str(root), "--cache",
                                  str(tmp_path / "cache"), "--scenes", "scene0001_00"])
    assert result.exit_code == 0, result.output
    assert any(line.startswith("warning:") and "hash of their room id" in line
               for line in result.output.splitlines())
    manifest = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    assert manifest["splits"]["scannet"]["source"] == "hash"
    assert "hash of their room id" in manifest["splits"]["scannet"]["warning"]

    summary = prepare(PrepareConfig(cache=tmp_path / "cache2", scannet=root,
                                    scannet_splits=lists, scenes=("scene0001_00",)))
    assert summary.warnings == []
    manifest = json.loads((tmp_path / "cache2" / "manifest.json").read_text())
    assert manifest["splits"]["scannet"]["source"] == "lists"
    assert manifest["units"]["scannet/scene0001_00"]["split"] == "val"

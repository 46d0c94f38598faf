"""`multispa prepare` on synthetic scenes: values against the synthetic ground truth, resumability
after SIGKILL, and identical caches whatever the worker count or executor."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from multispa.cache.scannet_cache import load_scannet_cache
from multispa.cache.tapvid_cache import load_tapvid_cache
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_synthetic_dataset(out, SynthConfig(scenes=3, clips=2, seed=11, small=True, workers=1))
    return out


@pytest.fixture(scope="module")
def cache(synthetic: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    summary = prepare(
        PrepareConfig(cache=cache, scannet=synthetic / "scannet", tapvid3d=synthetic / "tapvid3d")
    )
    assert summary.count("failed") == 0, [r.error for r in summary.reports]
    return cache


def _truth(synthetic: Path, scene_id: str) -> dict:
    return json.loads((synthetic / "synthetic_truth" / "scannet" / f"{scene_id}.json").read_text())


def _ray_depth(origin: np.ndarray, directions: np.ndarray, truth: dict) -> np.ndarray:
    """Camera z of the first surface hit by rays ``origin + t·d`` (``d`` has camera z = 1).

    An independent slab-method ray cast of the true boxes and the room, written for this test:
    returns ``(N,)`` t values (= z-depths).
    """
    room_min, room_max = np.array(truth["room_min"]), np.array(truth["room_max"])
    with np.errstate(divide="ignore", invalid="ignore"):
        exits = np.where(directions > 0, room_max - origin, room_min - origin) / directions
    depth = np.nanmin(np.where(np.isfinite(exits), exits, np.inf), axis=1)
    for obj in truth["objects"]:
        for part in obj["parts"]:
            box_from_world = np.linalg.inv(np.array(part["world_from_part"]))
            half = np.array(part["half_extents"])
            o = box_from_world[:3, :3] @ origin + box_from_world[:3, 3]
            d = directions @ box_from_world[:3, :3].T
            with np.errstate(divide="ignore", invalid="ignore"):
                t1 = (-half - o) / d
                t2 = (half - o) / d
            t_near = np.nanmax(np.minimum(t1, t2), axis=1)
            t_far = np.nanmin(np.maximum(t1, t2), axis=1)
            hit = (t_near <= t_far) & (t_near > 0)
            depth = np.where(hit & (t_near < depth), t_near, depth)
    return depth


def _truth_visibility(truth: dict, vertices: np.ndarray, frame: int) -> np.ndarray:
    """Visibility (docs/labels.md#visibility) of one frame, with the depth taken from the true
    geometry.

    The depth "sensor" is an exact ray cast through the centre of the depth pixel
    (round(u_d), round(v_d)); everything else follows the four documented conditions.
    """
    pose = np.array(truth["frames"][frame]["world_from_cam"])
    cam_from_world = np.linalg.inv(pose)
    points = vertices.astype(np.float64) @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
    z = points[:, 2]
    ok = z > 0
    color, depth = truth["color_intrinsics"], truth["depth_intrinsics"]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = color["fx"] * points[:, 0] / z + color["cx"]
        v = color["fy"] * points[:, 1] / z + color["cy"]
        u_d = depth["fx"] * points[:, 0] / z + depth["cx"]
        v_d = depth["fy"] * points[:, 1] / z + depth["cy"]
    ok &= (u >= 0) & (u < color["width"]) & (v >= 0) & (v < color["height"])
    col, row = np.floor(u_d + 0.5), np.floor(v_d + 0.5)
    ok &= (col >= 0) & (col < depth["width"]) & (row >= 0) & (row < depth["height"])
    candidates = np.flatnonzero(ok)
    directions_cam = np.column_stack(
        [
            (col[candidates] - depth["cx"]) / depth["fx"],
            (row[candidates] - depth["cy"]) / depth["fy"],
            np.ones(candidates.size),
        ]
    )
    sensed = _ray_depth(pose[:3, 3], directions_cam @ pose[:3, :3].T, truth)
    near = np.abs(z[candidates] - sensed) <= np.maximum(0.05, 0.05 * z[candidates])
    mask = np.zeros(vertices.shape[0], dtype=bool)
    mask[candidates[near]] = True
    return mask


def _on_depth_holes(truth: dict, vertices: np.ndarray, frame: int, scene_cache: Path
                    ) -> np.ndarray:
    """``(P,)`` bool: vertices in front of the camera whose depth pixel is a sensor hole (0)."""
    from PIL import Image

    depth_mm = np.asarray(Image.open(scene_cache / "depth" / f"{frame:05d}.png"))
    pose = np.array(truth["frames"][frame]["world_from_cam"])
    points = (vertices.astype(np.float64) - pose[:3, 3]) @ pose[:3, :3]
    depth = truth["depth_intrinsics"]
    with np.errstate(divide="ignore", invalid="ignore"):
        col = np.floor(depth["fx"] * points[:, 0] / points[:, 2] + depth["cx"] + 0.5)
        row = np.floor(depth["fy"] * points[:, 1] / points[:, 2] + depth["cy"] + 0.5)
    inside = (points[:, 2] > 0) & (col >= 0) & (col < depth["width"]) & (row >= 0) & (
        row < depth["height"])
    out = np.zeros(vertices.shape[0], dtype=bool)
    out[inside] = depth_mm[row[inside].astype(int), col[inside].astype(int)] == 0
    return out


def test_cache_frames_and_vertices_match_truth(synthetic: Path, cache: Path) -> None:
    for scene_id in ("scene0000_00", "scene0001_00"):
        truth = _truth(synthetic, scene_id)
        scene = load_scannet_cache(cache / "scannet" / scene_id)
        invalid = set(truth["invalid_frames"])
        expected = [i for i in range(truth["num_frames"]) if i % 5 == 0 and i not in invalid]
        assert scene.frame_index.tolist() == expected
        assert scene.meta["invalid_frames"] == sorted(i for i in invalid if i % 5 == 0)
        for position, frame in enumerate(expected):
            np.testing.assert_allclose(
                scene.world_from_cam[position], truth["frames"][frame]["world_from_cam"], atol=1e-5
            )
            assert scene.image_path(frame).read_bytes()[:2] == b"\xff\xd8"
        assert scene.vertices.shape == (truth["num_vertices"], 3)
        # Every vertex of a single-part object lies on its box surface (aligned world).
        for obj in truth["objects"]:
            if len(obj["parts"]) != 1:
                continue
            part = obj["parts"][0]
            box_from_world = np.linalg.inv(np.array(part["world_from_part"]))
            local = scene.vertices[obj["vertex_start"] : obj["vertex_end"]].astype(np.float64)
            local = local @ box_from_world[:3, :3].T + box_from_world[:3, 3]
            distance_to_surface = np.min(np.abs(np.abs(local) - part["half_extents"]), axis=1)
            assert distance_to_surface.max() < 1e-4
            assert np.all(np.abs(local) <= np.array(part["half_extents"]) + 1e-4)


def test_visibility_and_overlap_match_truth_geometry(synthetic: Path, cache: Path) -> None:
    scene_id = "scene0000_00"
    truth = _truth(synthetic, scene_id)
    scene = load_scannet_cache(cache / "scannet" / scene_id)
    masks = np.array([_truth_visibility(truth, scene.vertices, f) for f in scene.frame_index])
    cached = np.zeros_like(masks)
    for position in range(len(scene.frame_index)):
        cached[position, scene.visible_vertex_indices(position)] = True
    # Per frame the sets agree up to the sensor's depth holes (0.5 % of pixels: the vertices whose
    # depth pixel is a hole are left out; far views, as in the room tour, put many vertices on
    # one pixel) and its millimetre quantisation at the tolerance boundary.
    holes = np.array([_on_depth_holes(truth, scene.vertices, f, cache / "scannet" / scene_id)
                      for f in scene.frame_index])
    inter = (masks & cached & ~holes).sum(axis=1)
    union = ((masks | cached) & ~holes).sum(axis=1)
    assert np.all(union > 0)
    assert np.all(inter / union > 0.98), inter / union
    # Pair overlaps (IoU %) from the cache against the truth sets, computed pair by pair.
    table = scene.pairs().to_pydict()
    position_of = {int(f): p for p, f in enumerate(scene.frame_index)}
    checked = 0
    for f1, f2, overlap in zip(table["frame1"], table["frame2"], table["overlap_pct"], strict=True):
        a, b = masks[position_of[f1]], masks[position_of[f2]]
        truth_overlap = 100.0 * np.count_nonzero(a & b) / max(np.count_nonzero(a | b), 1)
        assert abs(overlap - truth_overlap) < 2.0, (f1, f2, overlap, truth_overlap)
        checked += 1
    assert checked > 10
    # Exact agreement of the stored overlap with a per-pair set computation on the cached sets.
    for f1, f2, overlap in list(
        zip(table["frame1"], table["frame2"], table["overlap_pct"], strict=True)
    )[:50]:
        a, b = cached[position_of[f1]], cached[position_of[f2]]
        assert overlap == pytest.approx(100.0 * np.sum(a & b) / np.sum(a | b), abs=1e-9)


def test_pair_relations_match_truth_poses(synthetic: Path, cache: Path) -> None:
    scene_id = "scene0001_00"
    truth = _truth(synthetic, scene_id)
    table = load_scannet_cache(cache / "scannet" / scene_id).pairs().to_pydict()
    assert len(table["frame1"]) > 0
    for f1, f2, distance, dyaw, dpitch in zip(
        table["frame1"],
        table["frame2"],
        table["distance_m"],
        table["dyaw_deg"],
        table["dpitch_deg"],
        strict=True,
    ):
        assert f1 < f2
        e1 = np.array(truth["frames"][f1]["world_from_cam"])
        e2 = np.array(truth["frames"][f2]["world_from_cam"])
        assert distance == pytest.approx(np.linalg.norm(e2[:3, 3] - e1[:3, 3]), abs=1e-5)
        f1_axis, f2_axis = e1[:3, 2], e2[:3, 2]
        yaw = np.degrees(np.arctan2(f2_axis[1], f2_axis[0]) - np.arctan2(f1_axis[1], f1_axis[0]))
        yaw = (yaw + 180.0) % 360.0 - 180.0
        assert ((dyaw - yaw + 180.0) % 360.0) - 180.0 == pytest.approx(0.0, abs=1e-3)
        pitch = np.degrees(np.arcsin(f2_axis[2]) - np.arcsin(f1_axis[2]))
        assert dpitch == pytest.approx(pitch, abs=1e-3)


def test_object_dimensions_match_truth(synthetic: Path, cache: Path) -> None:
    rotated = 0
    for scene_id in ("scene0000_00", "scene0001_00", "scene0002_00"):
        truth = _truth(synthetic, scene_id)
        cached = load_scannet_cache(cache / "scannet" / scene_id).objects
        objects = {o["object_id"]: o for o in cached}
        for expected in truth["objects"]:
            box = objects[expected["object_id"]]["box"]
            assert objects[expected["object_id"]]["label"] == expected["label"]
            assert box["height_m"] == pytest.approx(expected["height_m"], abs=1e-3)
            assert box["length_m"] == pytest.approx(expected["length_m"], abs=1e-3)
            assert box["width_m"] == pytest.approx(expected["width_m"], abs=1e-3)
            rotated += abs(((expected["yaw_deg"] + 45) % 90) - 45) > 5
    assert rotated > 0
    labels = [o["label"] for o in _truth(synthetic, "scene0000_00")["objects"]]
    cached = load_scannet_cache(cache / "scannet" / "scene0000_00").objects
    counts = {o["label"]: o["label_count"] for o in cached}
    assert any(labels.count(label) >= 2 for label in labels)
    assert all(counts[label] == labels.count(label) for label in labels)


def test_object_visibility_tables(cache: Path) -> None:
    scene = load_scannet_cache(cache / "scannet" / "scene0000_00")
    for position in range(0, len(scene.frame_index), 3):
        visible = scene.visible_vertex_indices(position)
        ids = scene.instance_ids[visible]
        for row, obj in enumerate(scene.objects):
            count = int(np.count_nonzero(ids == obj["object_id"]))
            assert scene.object_visible_counts[row, position] == count
            if count and obj["box"]:
                points = scene.vertices[visible[ids == obj["object_id"]]].astype(np.float64)
                along_length = points @ np.array(obj["box"]["length_axis"])
                assert scene.object_extent_lo[row, position, 0] == pytest.approx(
                    points[:, 2].min(), abs=1e-5
                )
                assert scene.object_extent_hi[row, position, 1] == pytest.approx(
                    along_length.max(), abs=1e-5
                )
            else:
                assert np.isnan(scene.object_extent_lo[row, position]).all()


def test_tapvid_cache_world_tracks_and_groups(synthetic: Path, cache: Path) -> None:
    manifest = json.loads((cache / "manifest.json").read_text())
    clips = [u for u in manifest["units"] if u.startswith("tapvid3d/")]
    assert len(clips) == 2
    for unit in clips:
        clip = load_tapvid_cache(cache / unit)
        subset, clip_id = unit.split("/")[1:]
        truth = json.loads(
            (synthetic / "synthetic_truth" / "tapvid3d" / subset / f"{clip_id}.json").read_text()
        )
        assert clip.tracks_world.shape[0] == clip.meta["num_frames"]
        # A static-object track does not move in the world; grouped tracks share a group.
        assert (clip.group_of_track >= 0).sum() > 0
        assert clip.meta["cache_version"] == 2
        assert clip.meta["pose_source"] == {"adt": "extrinsics", "pstudio": "fixed"}[subset]
        assert clip.meta["poses"]["pose_source"] == clip.meta["pose_source"]
        assert "tracks" in truth or "objects" in truth
    poses = manifest["tapvid3d_poses"]
    assert poses["counts"] == {"extrinsics": 1, "static_scene": 0, "fixed": 1, "warnings": 0}
    assert poses["settings"]["cache_version"] == 2
    assert poses["settings"]["poses"]["max_residual_m"] == 0.005


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] != "logs"
    }


def _prepare_cli(synthetic: Path, cache: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "multispa",
        "prepare",
        "--scannet",
        str(synthetic / "scannet"),
        "--tapvid3d",
        str(synthetic / "tapvid3d"),
        "--cache",
        str(cache),
        *extra,
    ]


def test_killed_prepare_resumes_to_identical_cache(
    synthetic: Path, cache: Path, tmp_path: Path
) -> None:
    reference = _tree_hashes(cache)
    resumed = tmp_path / "resumed"
    process = subprocess.Popen(
        _prepare_cli(synthetic, resumed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if any((resumed / "_done").rglob("*.json")):
            break
        time.sleep(0.02)
    killed = process.poll() is None
    if killed:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert killed, "prepare finished before it could be killed"
    done_before = sorted(p.name for p in (resumed / "_done").rglob("*.json"))
    assert 0 < len(done_before) < 7
    rerun = subprocess.run(_prepare_cli(synthetic, resumed), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done_before)} already done" in rerun.stdout
    assert _tree_hashes(resumed) == reference


def test_two_workers_give_identical_cache(synthetic: Path, cache: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        _prepare_cli(synthetic, tmp_path / "w2", "--workers", "2"), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert _tree_hashes(tmp_path / "w2") == _tree_hashes(cache)


@pytest.mark.ray
def test_ray_executor_gives_identical_cache(synthetic: Path, cache: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="ray is not installed: pip install 'multispa[ray]'")
    summary = prepare(
        PrepareConfig(
            cache=tmp_path / "ray",
            scannet=synthetic / "scannet",
            tapvid3d=synthetic / "tapvid3d",
            workers=2,
            executor="ray",
        )
    )
    assert summary.count("failed") == 0
    assert _tree_hashes(tmp_path / "ray") == _tree_hashes(cache)


def test_changed_settings_are_refused(synthetic: Path, cache: Path) -> None:
    result = subprocess.run(
        _prepare_cli(synthetic, cache, "--frame-skip", "3"), capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "prepared with other settings" in result.stderr
    assert result.stderr.count("\n") == 1

"""Rule (p): depth and correspondence points lie off depth edges.

Every point of a generated depth or correspondence record is checked against the sensor depth
(the cache's 16-bit depth PNGs) by this module's own projection and neighbourhood test, written
from the rule's wording: the vertex's depth pixel ``(round(u_d), round(v_d))`` through K_depth and
its 8 neighbours lie inside the depth image, have a depth ``D > 0`` and ``|z − D| ≤ max(0.05 m,
0.05·z)``, in every image where the point is shown or answered. The same check on random visible
vertices shows that the synthetic data (thin objects in front of walls) does hold edge points.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from multispa.geometry.visibility import depth_neighbourhood_ok, visible_and_off_edge
from multispa.scenes.types import Intrinsics
from multispa.tasks.depth import UniformDraws, VisibleSet

ABS_TOL_M, REL_TOL = 0.05, 0.05


def _records(dataset: Path, family: str) -> list[dict]:
    return [
        json.loads(line)
        for split in ("train", "val")
        for path in sorted((dataset / split / family).glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


class SensorCheck:
    """The rule, computed from the cache files with plain numpy (float64)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self._scenes: dict[str, dict] = {}

    def _scene(self, scene: str) -> dict:
        if scene not in self._scenes:
            folder = self.cache / "scannet" / scene
            meta = json.loads((folder / "meta.json").read_text())
            self._scenes[scene] = {
                "folder": folder,
                "k": meta["depth_intrinsics"],
                "frames": {int(f): i for i, f in enumerate(np.load(folder / "frame_index.npy"))},
                "poses": np.load(folder / "world_from_cam.npy").astype(np.float64),
                "vertices": np.load(folder / "vertices.npy").astype(np.float64),
            }
        return self._scenes[scene]

    def off_edge(self, scene: str, frame: int, vertices: np.ndarray) -> np.ndarray:
        """``(N,)`` bool: each vertex passes the 3×3 sensor-depth test in ``frame``."""
        data = self._scene(scene)
        pose = data["poses"][data["frames"][int(frame)]]
        depth_mm = np.asarray(Image.open(data["folder"] / "depth" / f"{int(frame):05d}.png"))
        sensed = depth_mm.astype(np.float64) / 1000.0
        height, width = sensed.shape
        k = data["k"]
        rotation, centre = pose[:3, :3], pose[:3, 3]
        camera = (data["vertices"][np.asarray(vertices, dtype=np.int64)] - centre) @ rotation
        z = camera[:, 2]
        u = k["fx"] * camera[:, 0] / z + k["cx"]
        v = k["fy"] * camera[:, 1] / z + k["cy"]
        col = np.floor(u + 0.5).astype(np.int64)  # half away from zero (u > -0.5 here)
        row = np.floor(v + 0.5).astype(np.int64)
        ok = z > 0
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                d = np.where(inside, sensed[np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)], 0)
                ok &= inside & (d > 0) & (np.abs(z - d) <= np.maximum(ABS_TOL_M, REL_TOL * z))
        return ok


@pytest.fixture(scope="module")
def check(small_dataset: Path) -> SensorCheck:
    return SensorCheck(small_dataset.parent / "cache")


def test_no_depth_record_point_sits_on_a_depth_edge(
    small_dataset: Path, check: SensorCheck
) -> None:
    records = _records(small_dataset, "depth")
    assert len(records) > 100
    for record in records:
        meta = record["meta"]
        ok = check.off_edge(meta["scene"], meta["frames"][0], np.array(meta["vertex"]))
        assert ok.all(), (record["id"], meta["vertex"])


def test_no_correspondence_point_sits_on_a_depth_edge_in_either_image(
    small_dataset: Path, check: SensorCheck
) -> None:
    records = _records(small_dataset, "correspondence")
    assert len(records) > 50
    for record in records:
        meta = record["meta"]
        for frame in meta["frames"]:  # shown in image 1, answered in image 2
            ok = check.off_edge(meta["scene"], frame, np.array(meta["vertex"]))
            assert ok.all(), (record["id"], frame)


def test_the_data_has_edge_points_and_the_manifest_counts_them(
    small_dataset: Path, check: SensorCheck
) -> None:
    """Without the rule, uniform visible points would hit edges: the check has teeth."""
    cache = small_dataset.parent / "cache" / "scannet" / "scene0000_00"
    visibility = np.load(cache / "visibility.npy")
    frames = np.load(cache / "frame_index.npy")
    num_vertices = np.load(cache / "vertices.npy").shape[0]
    rejected = 0
    for position, frame in enumerate(frames[:4]):
        visible = VisibleSet(visibility[position], num_vertices).vertices()
        rejected += int(np.count_nonzero(~check.off_edge("scene0000_00", int(frame), visible)))
    assert rejected > 100
    manifest = json.loads((small_dataset / "manifest.json").read_text())
    for split in ("train", "val"):
        for subtask in ("depth_estimation_dot", "depth_comparison_coord", "correspondence_coord"):
            assert manifest["skipped"][split].get(f"{subtask}:depth_edge", 0) > 0, (split, subtask)


def test_off_edge_bits_are_the_rule_on_the_sensor_depth(
    small_dataset: Path, check: SensorCheck
) -> None:
    cache = small_dataset.parent / "cache" / "scannet" / "scene0000_00"
    visibility = np.load(cache / "visibility.npy")
    off_edge = np.load(cache / "visibility_off_edge.npy")
    frames = np.load(cache / "frame_index.npy")
    num_vertices = np.load(cache / "vertices.npy").shape[0]
    for position, frame in enumerate(frames):
        visible = VisibleSet(visibility[position], num_vertices)
        flagged = VisibleSet(off_edge[position], num_vertices).vertices()
        assert visible.contains(flagged).all()  # a subset of V_i
        every = visible.vertices()
        expected = every[check.off_edge("scene0000_00", int(frame), every)]
        np.testing.assert_array_equal(flagged, expected)


def test_neighbourhood_rule_on_a_hand_built_depth_image() -> None:
    depth = np.full((6, 7), 2.0)
    depth[0, :] = 0.0  # no measurement in the top row
    depth[3, 5] = 2.2  # a 20-cm step (tolerance at z = 2 m is 0.1 m)
    depth[4, 1] = 2.09  # within the tolerance
    row = np.array([2, 1, 4, 2, 3, 4, 5])
    col = np.array([2, 3, 4, 4, 2, 6, 3])
    ok = depth_neighbourhood_ok(depth, row, col, np.full(7, 2.0))
    # (2,2) clean; (1,3) touches row 0; (4,4) and (2,4) touch (3,5); (3,2) sees (4,1) in
    # tolerance; (4,6) and (5,3) have neighbours outside the image.
    assert ok.tolist() == [True, False, False, False, True, False, False]


def test_visible_and_off_edge_matches_a_brute_force_loop() -> None:
    rng = np.random.default_rng(3)
    color = Intrinsics(40.0, 40.0, 31.5, 23.5, 64, 48)
    depth_k = Intrinsics(20.0, 20.0, 15.25, 11.25, 32, 24)
    depth = np.full((24, 32), 3.0)
    depth[8:16, 10:20] = 1.5  # a box in front of the wall
    depth[rng.integers(0, 24, 12), rng.integers(0, 32, 12)] = 0.0
    points = np.column_stack(
        [rng.uniform(-1.5, 1.5, 4000), rng.uniform(-1.2, 1.2, 4000), rng.choice([1.5, 3.0], 4000)]
    )
    visible, off_edge = visible_and_off_edge(points, np.eye(4), color, depth, depth_k)
    expected = []
    for index in visible:
        x, y, z = points[index]
        col = int(np.floor(depth_k.fx * x / z + depth_k.cx + 0.5))
        row = int(np.floor(depth_k.fy * y / z + depth_k.cy + 0.5))
        good = True
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                r, c = row + dr, col + dc
                if not (0 <= r < 24 and 0 <= c < 32):
                    good = False
                    continue
                good &= bool(depth[r, c] > 0 and abs(z - depth[r, c]) <= max(0.05, 0.05 * z))
        expected.append(good)
    assert visible.size > 1000 and 0 < np.count_nonzero(off_edge) < visible.size
    assert off_edge.tolist() == expected


def test_uniform_draws_count_the_edge_rejections_as_if_tried_one_by_one() -> None:
    words = np.array([np.uint64(2**64 - 1)])  # vertices 0..63
    base = VisibleSet(words, 64)
    edge_free = set(range(0, 64, 4))  # 3 of 4 vertices are on an edge

    def edge(vertex: np.ndarray) -> np.ndarray:
        return np.isin(vertex, sorted(edge_free))

    rng = np.random.default_rng(0)
    draws = UniformDraws(rng, base, edge=edge, batch=16)
    first = draws.take(1)
    replay = base.vertices_at(np.random.default_rng(0).integers(64, size=16))
    position = int(np.flatnonzero(np.isin(replay, sorted(edge_free)))[0])
    assert first.tolist() == [int(replay[position])]
    assert draws.edge_rejections == position  # the draws before the first accepted one
    more = draws.take(5)
    assert set(more.tolist()) <= edge_free

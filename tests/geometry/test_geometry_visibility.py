"""Tests of multispa.geometry.visibility against a per-vertex reference of
docs/labels.md#visibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multispa.errors import ShapeError
from multispa.geometry.transforms import apply_transform, rigid_transform
from multispa.geometry.visibility import visible_vertex_indices, visible_vertices
from multispa.scenes.types import Intrinsics

# Colour: 100 × 80, half field of view tan = 0.5. Depth: 50 × 40, narrower (tan = 25/64).
COLOR = Intrinsics(fx=100.0, fy=100.0, cx=50.0, cy=40.0, width=100, height=80)
DEPTH = Intrinsics(fx=64.0, fy=64.0, cx=25.0, cy=20.0, width=50, height=40)


def reference_visible(
    points_world: np.ndarray,
    world_from_cam: np.ndarray,
    color: Intrinsics,
    depth_m: np.ndarray,
    depth: Intrinsics,
    abs_tol_m: float = 0.05,
    rel_tol: float = 0.05,
) -> np.ndarray:
    """docs/labels.md#visibility written out per vertex, float64, with r(x) = sign(x)·floor(|x| +
    0.5)."""
    cam_from_world = np.linalg.inv(world_from_cam)
    out = []
    for p in points_world.astype(np.float64):
        x, y, z = (cam_from_world @ np.append(p, 1.0))[:3]
        if not z > 0:
            out.append(False)
            continue
        u, v = color.fx * x / z + color.cx, color.fy * y / z + color.cy
        if not (0 <= u < color.width and 0 <= v < color.height):
            out.append(False)
            continue
        u_d, v_d = depth.fx * x / z + depth.cx, depth.fy * y / z + depth.cy
        col = int(math.copysign(math.floor(abs(u_d) + 0.5), u_d))
        row = int(math.copysign(math.floor(abs(v_d) + 0.5), v_d))
        if not (0 <= col < depth.width and 0 <= row < depth.height):
            out.append(False)
            continue
        sensed = float(depth_m[row, col])
        out.append(sensed > 0 and abs(z - sensed) <= max(abs_tol_m, rel_tol * z))
    return np.array(out, dtype=bool)


def check_both(points_cam: np.ndarray, depth_m: np.ndarray) -> np.ndarray:
    """Visibility with an identity pose and, after moving the world, with a general pose."""
    identity = np.eye(4)
    mask = visible_vertices(points_cam, identity, COLOR, depth_m, DEPTH)
    angle = 0.7
    rotation = np.array(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0.0, 0.0, 1.0],
        ]
    )
    world_from_cam = rigid_transform(rotation, np.array([1.0, -2.0, 0.5]))
    points_world = apply_transform(world_from_cam, points_cam)
    moved = visible_vertices(points_world, world_from_cam, COLOR, depth_m, DEPTH)
    np.testing.assert_array_equal(moved, mask)
    return mask


def test_two_sided_tolerance_absolute_and_relative() -> None:
    depth_m = np.full((40, 50), 0.8, dtype=np.float32)
    depth_m[:, 30:] = 3.0  # right part of the image is 3 m away
    left = [0.849, 0.851, 0.751, 0.749, 0.8]  # abs tolerance 0.05 (0.05·z < 0.05 below 1 m)
    right = [3.14, 3.16, 2.86, 2.84]  # rel tolerance 0.05·z near 3 m
    points = [[-0.1 * z, 0.0, z] for z in left] + [[0.2 * z, 0.0, z] for z in right]
    mask = check_both(np.array(points), depth_m)
    assert mask.tolist() == [True, False, True, False, True, True, False, True, False]


def test_hole_behind_camera_and_depth_field_of_view() -> None:
    depth_m = np.full((40, 50), 2.0, dtype=np.float32)
    depth_m[20, 25] = 0.0  # hole at the principal point
    points = np.array(
        [
            [0.0, 0.0, 2.0],  # on the hole: invalid depth
            [0.1, 0.0, 2.0],  # visible
            [0.0, 0.0, -2.0],  # behind the camera
            [0.9, 0.0, 2.0],  # x/z = 0.45: inside colour (tan 0.5), outside depth (tan 0.39)
            [1.1, 0.0, 2.0],  # outside colour
            [0.0, 0.79, 2.0],  # v = 79.5 < 80 in colour, v_d = 45.3 outside depth
        ]
    )
    assert check_both(points, depth_m).tolist() == [False, True, False, False, False, False]


def test_depth_pixel_uses_depth_intrinsics_not_resolution_ratio() -> None:
    depth_m = np.ones((40, 50), dtype=np.float32)
    depth_m[20, 44] = 2.0  # u_d = 64·0.3 + 25 = 44.2 → 44; the ratio would read 80·0.5 = 40
    point = np.array([[0.6, 0.0, 2.0]])
    assert check_both(point, depth_m).tolist() == [True]
    depth_m[20, 44] = 1.0
    depth_m[20, 40] = 2.0
    assert check_both(point, depth_m).tolist() == [False]


def test_depth_pixel_rounds_half_away_from_zero() -> None:
    depth_m = np.ones((40, 50), dtype=np.float32)
    depth_m[20, 11] = 2.0  # u_d = 10.5 exactly must read column 11
    depth_m[20, 0] = 2.0
    depth_m[20, 49] = 2.0
    points = np.array(
        [
            [-14.5 / 64 * 2.0, 0.0, 2.0],  # u_d = 10.5 → 11: visible
            [-25.5 / 64 * 2.0, 0.0, 2.0],  # u_d = -0.5 → -1: outside the depth image
            [24.5 / 64 * 2.0, 0.0, 2.0],  # u_d = 49.5 → 50: outside the depth image
            [-25.4 / 64 * 2.0, 0.0, 2.0],  # u_d = -0.4 → 0: visible
        ]
    )
    assert check_both(points, depth_m).tolist() == [True, False, False, True]


def room_depth(world_from_cam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ray-cast depth of an axis-aligned 6 × 5 × 3 m room, 1 cm noise, 5 % holes."""
    cols, rows = np.meshgrid(np.arange(DEPTH.width), np.arange(DEPTH.height))
    dirs_cam = np.stack(
        [(cols - DEPTH.cx) / DEPTH.fx, (rows - DEPTH.cy) / DEPTH.fy, np.ones(cols.shape)], axis=-1
    )
    dirs = dirs_cam @ world_from_cam[:3, :3].T
    origin = world_from_cam[:3, 3]
    bound = np.where(dirs > 0, [6.0, 5.0, 3.0], [0.0, 0.0, 0.0])
    safe = np.where(dirs != 0, dirs, 1.0)
    t = np.where(dirs != 0, (bound - origin) / safe, np.inf)
    depth_m = t.min(axis=-1) + rng.normal(0, 0.01, cols.shape)
    depth_m[rng.random(cols.shape) < 0.05] = 0.0
    return depth_m.astype(np.float32)


def test_matches_reference_on_random_room_views() -> None:
    rng = np.random.default_rng(0)
    n = 1500
    face = rng.integers(0, 6, n)
    points = rng.random((n, 3)) * [6.0, 5.0, 3.0]
    axis = face % 3
    points[np.arange(n), axis] = np.where(face >= 3, np.array([6.0, 5.0, 3.0])[axis], 0.0)
    points += rng.normal(0, 0.04, points.shape)  # off-surface noise exercises the tolerance
    points_world = np.concatenate([points, rng.random((300, 3)) * [6.0, 5.0, 3.0]])
    points_world = points_world.astype(np.float32)
    total = 0
    for _ in range(6):
        yaw = rng.uniform(-np.pi, np.pi)
        forward = np.array([np.cos(yaw), np.sin(yaw), rng.uniform(-0.3, 0.2)])
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        world_from_cam = rigid_transform(
            np.stack([right, np.cross(forward, right), forward], axis=1),
            np.array([rng.uniform(1, 5), rng.uniform(1, 4), 1.5]),
        )
        depth_m = room_depth(world_from_cam, rng)
        expected = reference_visible(points_world, world_from_cam, COLOR, depth_m, DEPTH)
        mask = visible_vertices(points_world, world_from_cam, COLOR, depth_m, DEPTH)
        np.testing.assert_array_equal(mask, expected)
        index = visible_vertex_indices(points_world, world_from_cam, COLOR, depth_m, DEPTH)
        assert index.dtype == np.int32
        np.testing.assert_array_equal(index, np.flatnonzero(expected))
        loose = visible_vertices(
            points_world, world_from_cam, COLOR, depth_m, DEPTH, abs_tol_m=0.2, rel_tol=0.0
        )
        np.testing.assert_array_equal(
            loose,
            reference_visible(points_world, world_from_cam, COLOR, depth_m, DEPTH, 0.2, 0.0),
        )
        total += int(expected.sum())
    assert total > 150  # the views do see a good share of the walls


def test_shape_checks() -> None:
    depth_m = np.ones((40, 50), dtype=np.float32)
    with pytest.raises(ShapeError, match=r"depth_m: expected shape \(40, 50\), found \(50, 40\)"):
        visible_vertices(np.zeros((3, 3)), np.eye(4), COLOR, depth_m.T, DEPTH)
    with pytest.raises(ShapeError, match="points_world"):
        visible_vertices(np.zeros((3, 2)), np.eye(4), COLOR, depth_m, DEPTH)
    with pytest.raises(ShapeError, match="world_from_cam"):
        visible_vertices(np.zeros((3, 3)), np.eye(3), COLOR, depth_m, DEPTH)
    assert visible_vertex_indices(
        np.zeros((0, 3), np.float32), np.eye(4), COLOR, depth_m, DEPTH
    ).shape == (0,)

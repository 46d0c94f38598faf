"""Tests of multispa.geometry.rigid on synthetic rigid bodies (docs/labels.md#rigid-groups)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multispa.geometry.rigid import accumulated_distance_change, rigid_groups
from multispa.geometry.transforms import apply_transform, invert_rigid, rigid_transform


def rotation_z(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_x(angle_rad: float) -> np.ndarray:
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def synthetic_scene(
    rng: np.random.Generator, frames: int = 24
) -> tuple[np.ndarray, list[list[int]]]:
    """World tracks ``(T, N, 3)``: static background, two boxes in different rigid motions, a
    small 4-track body and 3 independently drifting tracks. Track order is shuffled."""
    background = rng.uniform([-3, -3, 0], [3, 3, 0.1], (25, 3))
    box_a = rng.uniform(-0.3, 0.3, (12, 3))
    box_b = rng.uniform(-0.2, 0.2, (9, 3))
    small = rng.uniform(-0.1, 0.1, (4, 3))
    drifters = rng.uniform(-1, 1, (3, 3))
    tracks = []
    for t in range(frames):
        # curved paths: no static track can stay perpendicular to a body's motion throughout
        pose_a = rigid_transform(
            rotation_z(0.08 * t), np.array([1.0 + 0.05 * t, 0.4 * math.sin(0.5 * t), 0.5])
        )
        pose_b = rigid_transform(
            rotation_x(0.1 * t) @ rotation_z(-0.05 * t),
            np.array([-1.0 + 0.3 * math.cos(0.4 * t), 0.04 * t, 0.8]),
        )
        pose_s = rigid_transform(
            rotation_z(0.2 * t),
            np.array([0.3 * math.sin(0.6 * t), -1.0 - 0.06 * t, 1.0 + 0.3 * math.cos(0.5 * t)]),
        )
        frame = np.concatenate(
            [
                background,
                apply_transform(pose_a, box_a),
                apply_transform(pose_b, box_b),
                apply_transform(pose_s, small),
                drifters + rng.normal(0, 0.05, drifters.shape) * t,
            ]
        )
        tracks.append(frame)
    world = np.stack(tracks)
    order = rng.permutation(world.shape[1])  # tracks of a body are not contiguous
    world = world[:, order]
    where = np.argsort(order)  # new index of each original track
    bodies = [range(0, 25), range(25, 37), range(37, 46)]
    groups = sorted(sorted(int(where[k]) for k in body) for body in bodies)
    return world, groups


def test_finds_the_rigid_bodies_in_world_tracks() -> None:
    world, expected = synthetic_scene(np.random.default_rng(0))
    groups = rigid_groups(world.astype(np.float32))
    assert [g.tolist() for g in groups] == expected
    assert all(g.dtype == np.int64 for g in groups)


def test_camera_frame_tracks_give_the_same_groups() -> None:
    rng = np.random.default_rng(1)
    world, expected = synthetic_scene(rng)
    frames = world.shape[0]
    world_from_cam = rigid_transform(
        np.stack([rotation_z(0.3 * t) @ rotation_x(0.1 * t) for t in range(frames)]),
        np.stack([[0.2 * t, -0.1 * t, 1.5] for t in range(frames)]),
    )
    tracks_cam = apply_transform(invert_rigid(world_from_cam), world).astype(np.float32)
    groups_cam = rigid_groups(tracks_cam)
    assert [g.tolist() for g in groups_cam] == expected
    assert [g.tolist() for g in rigid_groups(world)] == expected


def test_accumulated_change_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    tracks = rng.normal(size=(5, 7, 3))
    tracks[:, :3] = tracks[0, :3]  # three static tracks: no change between them
    condensed = accumulated_distance_change(tracks, motion_eps_m=0.05)
    expected = []
    for a in range(7):
        for b in range(a + 1, 7):
            dist = np.linalg.norm(tracks[:, a] - tracks[:, b], axis=1)
            change = np.abs(np.diff(dist))
            expected.append(change[change > 0.05].sum())
    np.testing.assert_allclose(condensed, expected, rtol=1e-5, atol=1e-5)
    assert condensed[0] == 0.0  # pair (0, 1)


def test_small_groups_thresholds_and_edge_cases() -> None:
    world, _ = synthetic_scene(np.random.default_rng(3))
    groups = rigid_groups(world, min_size=4)
    assert sorted(g.size for g in groups) == [4, 9, 12, 25]  # the 4-track body is now kept
    assert [int(g[0]) for g in groups] == sorted(int(g[0]) for g in groups)
    # a huge motion threshold hides every motion: one group of all tracks
    assert [g.size for g in rigid_groups(world, motion_eps_m=100.0)] == [world.shape[1]]
    # one frame: no motion information, everything together
    assert [g.tolist() for g in rigid_groups(world[:1, :6])] == [list(range(6))]
    assert rigid_groups(np.zeros((0, 10, 3))) == []
    assert rigid_groups(np.zeros((5, 1, 3))) == []
    assert rigid_groups(np.zeros((5, 0, 3))) == []
    assert [g.tolist() for g in rigid_groups(np.zeros((5, 1, 3)), min_size=1)] == [[0]]
    assert rigid_groups(world[:, :5]) == []  # fewer tracks than min_size
    bad = world.copy()
    bad[2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        rigid_groups(bad)

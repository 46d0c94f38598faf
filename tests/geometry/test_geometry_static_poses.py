"""Camera poses from the static scene (multispa.geometry.static_poses) on analytic scenes with
known cameras, against independent computations (scipy rotations, a per-frame Kabsch loop)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from multispa.geometry.static_poses import (
    align_rigid,
    dominant_group,
    static_drift,
    static_scene_poses,
)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle of ``aᵀ·b`` per frame, degrees (scipy, independent of the module)."""
    return np.degrees(Rotation.from_matrix(np.swapaxes(a, -1, -2) @ b).magnitude())


def _scene(
    rng: np.random.Generator, frames: int = 40, static: int = 120, movers: int = 24,
    noise_m: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Camera-frame tracks ``(T, N, 3)`` of a room (``static`` points) and one box moving 2 m
    through it (``movers`` points, the last tracks), seen by a camera that walks and turns.

    Returns the tracks, the true ``world_from_cam`` ``(T, 4, 4)`` and the static mask ``(N,)``.
    """
    room = rng.uniform([-3.0, -3.0, 0.0], [3.0, 3.0, 2.7], (static, 3))
    box = rng.uniform(-0.2, 0.2, (movers, 3))
    t = np.linspace(0.0, 1.0, frames)
    box_centres = np.column_stack([2.0 * t - 1.0, 0.3 * np.sin(3 * t), 1.0 + 0.0 * t])
    box_turns = Rotation.from_euler("z", 90.0 * t[:, None], degrees=True).as_matrix()
    world = np.concatenate(
        [np.broadcast_to(room, (frames, static, 3)),
         np.einsum("tij,nj->tni", box_turns, box) + box_centres[:, None]],
        axis=1,
    )
    rotations = Rotation.from_euler(
        "zyx", np.column_stack([120 * t, 15 * np.sin(4 * t), 5 * t]), degrees=True
    ).as_matrix()
    centres = np.column_stack([1.5 * np.cos(2 * t), 1.5 * np.sin(2 * t), 1.6 + 0.1 * t])
    world_from_cam = np.tile(np.eye(4), (frames, 1, 1))
    world_from_cam[:, :3, :3], world_from_cam[:, :3, 3] = rotations, centres
    cam = np.einsum("tji,tnj->tni", rotations, world - centres[:, None])  # Rᵀ·(X − c)
    cam = cam + rng.normal(0.0, noise_m, cam.shape) if noise_m else cam
    mask = np.r_[np.ones(static, bool), np.zeros(movers, bool)]
    return cam.astype(np.float32), world_from_cam, mask


def _relative(world_from_cam: np.ndarray) -> np.ndarray:
    """``cam0_from_cam_t``: the true poses with frame 0's camera as the world."""
    return np.linalg.inv(world_from_cam[0]) @ world_from_cam


def _kabsch_loop(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Textbook per-frame Kabsch (the reference): ``target ≈ R·source + t``."""
    rotations, translations = [], []
    for points in source:
        p_mean, q_mean = points.mean(axis=0), target.mean(axis=0)
        u, _, vt = np.linalg.svd((points - p_mean).T @ (target - q_mean))
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rotation = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        rotations.append(rotation)
        translations.append(q_mean - rotation @ p_mean)
    return np.array(rotations), np.array(translations)


def test_align_rigid_recovers_known_transforms_and_matches_a_loop() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(50, 3))
    rotations = Rotation.random(7, random_state=1).as_matrix()
    shifts = rng.normal(size=(7, 3))
    # source = Rᵀ·(target − t), so target = R·source + t exactly.
    source = np.einsum("fji,fnj->fni", rotations, target[None] - shifts[:, None])
    got_r, got_t = align_rigid(source, target)
    np.testing.assert_allclose(got_r, rotations, atol=1e-12)
    np.testing.assert_allclose(got_t, shifts, atol=1e-12)
    noisy = source + rng.normal(0, 0.05, source.shape)
    loop_r, loop_t = _kabsch_loop(noisy, target)
    got_r, got_t = align_rigid(noisy, target)
    np.testing.assert_allclose(got_r, loop_r, atol=1e-12)
    np.testing.assert_allclose(got_t, loop_t, atol=1e-12)


def test_align_rigid_never_returns_a_reflection() -> None:
    square = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 0.2, 0]])
    mirrored = square * [1.0, 1.0, -1.0]  # planar points: a mirror image is also a rotation
    rotation, _ = align_rigid(square[None], mirrored)
    assert np.linalg.det(rotation[0]) == pytest.approx(1.0)
    cloud = np.random.default_rng(2).normal(size=(30, 3))
    rotation, _ = align_rigid(cloud[None], cloud * [-1.0, 1.0, 1.0])  # a true reflection
    assert np.linalg.det(rotation[0]) == pytest.approx(1.0)


def test_dominant_group_rule() -> None:
    groups = [np.arange(60, 90), np.arange(0, 60), np.arange(90, 96)]
    found = dominant_group(groups)
    assert found.found and found.members.tolist() == list(range(60))
    assert (found.largest, found.runner_up) == (60, 30)
    tie = dominant_group([np.arange(59), np.arange(59, 89)])  # 59 < 2 × 30
    assert tie.reason == "no_static_scene" and "not 2x" in tie.message
    assert tie.members.size == 0 and (tie.largest, tie.runner_up) == (59, 30)
    small = dominant_group([np.arange(29)])
    assert small.reason == "no_static_scene" and "fewer than 30" in small.message
    assert dominant_group([]).reason == "no_static_scene"
    assert dominant_group([np.arange(10)], min_tracks=10, dominance=3.0).found


def test_exact_tracks_give_exact_poses_and_world_is_frame_0_camera() -> None:
    cam, world_from_cam, _ = _scene(np.random.default_rng(3), movers=0)
    poses = static_scene_poses(cam, [np.arange(cam.shape[1])])
    assert poses.usable and poses.reason == ""
    assert poses.world_from_cam is not None and poses.residual_m is not None
    np.testing.assert_array_equal(poses.world_from_cam[0], np.eye(4))
    truth = _relative(world_from_cam)
    assert _angle_deg(poses.world_from_cam[:, :3, :3], truth[:, :3, :3]).max() < 1e-4
    np.testing.assert_allclose(poses.world_from_cam[:, :3, 3], truth[:, :3, 3], atol=2e-6)
    assert poses.worst_residual_m is not None and poses.worst_residual_m < 1e-5


def test_slow_mover_merged_into_the_static_group_is_left_out() -> None:
    """The segmentation can merge a slowly moving object with the room: its tracks are
    trimmed, and the poses come from the room alone."""
    cam, world_from_cam, static = _scene(np.random.default_rng(4), noise_m=0.002)
    merged = [np.arange(cam.shape[1])]  # room and box as one "rigid" group
    poses = static_scene_poses(cam, merged)
    assert poses.usable, poses.message
    assert poses.inliers.tolist() == np.flatnonzero(static).tolist()
    assert poses.world_from_cam is not None
    truth = _relative(world_from_cam)
    assert _angle_deg(poses.world_from_cam[:, :3, :3], truth[:, :3, :3]).max() < 0.1
    error_m = np.linalg.norm(poses.world_from_cam[:, :3, 3] - truth[:, :3, 3], axis=1)
    assert error_m.max() < 0.003
    # Residual: RMS 3-D distance over the inliers, about √3·σ for σ per coordinate.
    assert poses.residual_m is not None
    assert 0.002 * np.sqrt(3) * 0.8 < float(np.median(poses.residual_m)) < 0.002 * np.sqrt(3) * 1.2


def test_large_noise_is_refused_with_frame_and_residual() -> None:
    cam, _, _ = _scene(np.random.default_rng(5), movers=0, noise_m=0.004)
    poses = static_scene_poses(cam, [np.arange(cam.shape[1])])
    assert not poses.usable and poses.reason == "pose_residual"
    assert poses.worst_frame is not None and poses.worst_residual_m is not None
    assert f"at frame {poses.worst_frame}" in poses.message
    assert f"{1000 * poses.worst_residual_m:.2f} mm" in poses.message
    assert poses.worst_residual_m > 0.005


def test_non_finite_collinear_and_too_few_rigid_tracks() -> None:
    cam, _, _ = _scene(np.random.default_rng(6), movers=0)
    group = [np.arange(cam.shape[1])]
    broken = cam.copy()
    broken[7, 3, 1] = np.nan
    poses = static_scene_poses(broken, group)
    assert poses.reason == "pose_residual" and "first at frame 7" in poses.message
    line = np.zeros_like(cam)
    line[..., 2] = np.linspace(1.0, 4.0, cam.shape[1])  # every point on the optical axis
    assert static_scene_poses(line, group).reason == "no_static_scene"
    # 40 room tracks and 30 tracks of a moving box in one group: after trimming, 40 >= 30 stay;
    # asking for 50 refuses the clip.
    cam, _, _ = _scene(np.random.default_rng(7), static=40, movers=30)
    group = [np.arange(70)]
    assert static_scene_poses(cam, group).usable
    refused = static_scene_poses(cam, group, min_tracks=50)
    assert refused.reason == "no_static_scene" and "only 40 of" in refused.message


def test_no_dominant_group_is_reported_before_any_fit() -> None:
    cam, _, _ = _scene(np.random.default_rng(8))
    poses = static_scene_poses(cam, [np.arange(70), np.arange(70, 144)])
    assert poses.reason == "no_static_scene" and poses.world_from_cam is None


def test_static_drift_of_true_and_turned_extrinsics() -> None:
    cam, world_from_cam, _ = _scene(np.random.default_rng(9), movers=0, noise_m=0.001)
    cam_from_world = np.linalg.inv(world_from_cam)
    members = np.arange(cam.shape[1])
    drift = static_drift(cam, cam_from_world, members)
    assert drift.shape == (cam.shape[0],)
    assert drift.max() < 0.003  # √3·σ plus the spread of the median
    turned = np.eye(4)
    turned[:3, :3] = [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    assert static_drift(cam, turned @ cam_from_world, members).max() > 0.5

"""Tests of multispa.geometry.transforms against explicit homogeneous algebra."""

from __future__ import annotations

import numpy as np
import pytest

from multispa.errors import ShapeError
from multispa.geometry.transforms import (
    apply_transform,
    expect_shape,
    invert_rigid,
    relative_pose,
    rigid_transform,
    rigidity_defect,
)


def random_rotations(rng: np.random.Generator, count: int) -> np.ndarray:
    """``(count, 3, 3)`` proper rotations from QR of Gaussian matrices."""
    q, r = np.linalg.qr(rng.normal(size=(count, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1
    return q


def random_poses(rng: np.random.Generator, count: int) -> np.ndarray:
    return rigid_transform(random_rotations(rng, count), rng.normal(0, 3, (count, 3)))


def test_random_rotations_are_proper() -> None:
    rotations = random_rotations(np.random.default_rng(0), 10)
    identity = np.broadcast_to(np.eye(3), (10, 3, 3))
    np.testing.assert_allclose(rotations @ np.swapaxes(rotations, 1, 2), identity, atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-12)


def test_invert_rigid_matches_linalg_inv_and_composes_to_identity() -> None:
    poses = random_poses(np.random.default_rng(1), 7)
    inverse = invert_rigid(poses)
    assert inverse.shape == (7, 4, 4)
    assert inverse.dtype == np.float64
    np.testing.assert_allclose(inverse, np.linalg.inv(poses), atol=1e-12)
    np.testing.assert_allclose(inverse @ poses, np.broadcast_to(np.eye(4), (7, 4, 4)), atol=1e-12)
    np.testing.assert_array_equal(inverse[:, 3], np.broadcast_to([0.0, 0.0, 0.0, 1.0], (7, 4)))


def test_apply_transform_matches_homogeneous_product() -> None:
    rng = np.random.default_rng(2)
    pose = random_poses(rng, 1)[0]
    points = rng.normal(size=(11, 3)).astype(np.float32)
    expected = np.array([(pose @ np.append(p.astype(np.float64), 1.0))[:3] for p in points])
    out = apply_transform(pose, points)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, expected, atol=1e-12)


def test_apply_transform_broadcasts_over_leading_dims() -> None:
    rng = np.random.default_rng(3)
    poses = random_poses(rng, 4)
    points = rng.normal(size=(4, 5, 3))
    out = apply_transform(poses, points)
    assert out.shape == (4, 5, 3)
    for f in range(4):
        np.testing.assert_allclose(out[f], apply_transform(poses[f], points[f]), atol=1e-12)
    # one transform for a stack of point sets
    shared = apply_transform(poses[0], points)
    np.testing.assert_allclose(shared[2], apply_transform(poses[0], points[2]), atol=1e-12)


def test_relative_pose_translation_is_camera2_centre_in_camera1_axes() -> None:
    rng = np.random.default_rng(4)
    world_from_cam1, world_from_cam2 = random_poses(rng, 2)
    cam1_from_cam2 = relative_pose(world_from_cam1, world_from_cam2)
    centre1, centre2 = world_from_cam1[:3, 3], world_from_cam2[:3, 3]
    expected = world_from_cam1[:3, :3].T @ (centre2 - centre1)
    np.testing.assert_allclose(cam1_from_cam2[:3, 3], expected, atol=1e-12)
    # p_cam1 = cam1_from_cam2 · p_cam2 for any point
    point_cam2 = np.array([[0.3, -0.2, 1.5]])
    point_world = apply_transform(world_from_cam2, point_cam2)
    np.testing.assert_allclose(
        apply_transform(cam1_from_cam2, point_cam2),
        apply_transform(invert_rigid(world_from_cam1), point_world),
        atol=1e-12,
    )


def test_relative_pose_is_invariant_to_world_alignment() -> None:
    rng = np.random.default_rng(5)
    world_from_cam1, world_from_cam2 = random_poses(rng, 2)
    aligned_from_world = random_poses(rng, 1)[0]
    np.testing.assert_allclose(
        relative_pose(aligned_from_world @ world_from_cam1, aligned_from_world @ world_from_cam2),
        relative_pose(world_from_cam1, world_from_cam2),
        atol=1e-12,
    )


def test_expect_shape_accepts_and_rejects() -> None:
    array = np.zeros((2, 5, 3))
    assert expect_shape(array, "(..., N, 3)", "points") is array
    assert expect_shape(np.zeros((5, 3)), "(..., N, 3)", "points").shape == (5, 3)
    expect_shape(np.zeros(4), "(P,)", "ids")
    with pytest.raises(ShapeError, match=r"points: expected shape \(N, 3\), found \(5, 2\)"):
        expect_shape(np.zeros((5, 2)), "(N, 3)", "points")
    with pytest.raises(ShapeError, match=r"found \(3,\)"):
        expect_shape(np.zeros(3), "(..., N, 3)", "points")
    with pytest.raises(ShapeError):
        invert_rigid(np.eye(3))
    with pytest.raises(ValueError, match="bad shape spec"):
        expect_shape(array, "N, 3", "points")


def test_rigidity_defect_of_rigid_scaled_reflected_and_broken_matrices() -> None:
    rng = np.random.default_rng(4)
    poses = random_poses(rng, 5)
    assert rigidity_defect(poses).max() < 1e-12
    assert rigidity_defect(poses.astype(np.float32)).max() < 1e-6  # float32 storage
    scaled = poses[0].copy()
    scaled[:3, :3] *= 1.01  # R^T R = 1.0201 I: defect 0.0201 on the diagonal
    assert rigidity_defect(scaled) == pytest.approx(0.0201, abs=1e-9)
    sheared = np.eye(4)
    sheared[3, 0] = 0.5  # bottom row [0.5, 0, 0, 1]
    assert rigidity_defect(sheared) == pytest.approx(0.5)
    reflected = np.diag([1.0, 1.0, -1.0, 1.0])  # orthonormal but det -1
    not_finite = np.eye(4)
    not_finite[0, 3] = np.nan
    broken = np.stack([np.zeros((4, 4)), reflected, not_finite])
    assert np.isinf(rigidity_defect(broken)).all()
    with pytest.raises(ShapeError):
        rigidity_defect(np.eye(3))

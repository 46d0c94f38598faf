"""Convention pins and properties of multispa.geometry.angles (docs/labels.md#yaw-pitch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multispa.geometry.angles import (
    relative_translation_m,
    relative_yaw_pitch_deg,
    rotation_labels,
    translation_labels,
    wrap_deg,
    yaw_pitch_deg,
)
from multispa.geometry.transforms import rigid_transform


def camera(
    yaw_deg: float,
    pitch_deg: float = 0.0,
    roll_deg: float = 0.0,
    centre: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> np.ndarray:
    """``world_from_cam`` (z-up world) looking at azimuth ``yaw_deg``, tilted up ``pitch_deg``.

    Built from explicit forward/right/down vectors, independently of the code under test.
    """
    yaw, pitch, roll = (math.radians(a) for a in (yaw_deg, pitch_deg, roll_deg))
    forward = np.array(
        [math.cos(pitch) * math.cos(yaw), math.cos(pitch) * math.sin(yaw), math.sin(pitch)]
    )
    right = np.array([math.sin(yaw), -math.cos(yaw), 0.0])  # horizontal, forward × up
    down = np.cross(forward, right)
    # roll: rotate right/down about forward
    right, down = (
        math.cos(roll) * right + math.sin(roll) * down,
        -math.sin(roll) * right + math.cos(roll) * down,
    )
    return rigid_transform(np.stack([right, down, forward], axis=1), np.array(centre))


def test_convention_reference_camera_axes() -> None:
    # looking along +x world with image-up = +z: right is −y, down is −z
    pose = camera(0.0)
    np.testing.assert_allclose(pose[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]], atol=1e-15)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    yaw, pitch = yaw_pitch_deg(pose)
    assert float(yaw) == 0.0 and float(pitch) == 0.0


def test_convention_turn_left_is_positive_yaw() -> None:
    start = camera(0.0)
    # turn counter-clockwise seen from above by 30°: rotate the camera about world +z
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    turn = rigid_transform(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), np.zeros(3))
    dyaw, dpitch = relative_yaw_pitch_deg(start, turn @ start)
    assert float(dyaw) == pytest.approx(30.0, abs=1e-9)
    assert float(dpitch) == pytest.approx(0.0, abs=1e-9)
    assert rotation_labels(float(dyaw), float(dpitch)) == ("left", "down")
    # the new optical axis points to +x+y, i.e. to the left of the first camera
    assert (turn @ start)[1, 2] > 0
    dyaw_back, _ = relative_yaw_pitch_deg(turn @ start, start)
    assert float(dyaw_back) == pytest.approx(-30.0, abs=1e-9)
    assert rotation_labels(float(dyaw_back), 0.0)[0] == "right"


def test_convention_tilt_up_is_positive_pitch() -> None:
    start = camera(0.0)
    # rotate about the camera's own x axis (right) so that the optical axis rises
    a = math.radians(10)
    tilt_cam = rigid_transform(
        np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]]),
        np.zeros(3),
    )
    tilted = start @ tilt_cam
    assert tilted[2, 2] > 0  # forward now has a +z component: looking up
    dyaw, dpitch = relative_yaw_pitch_deg(start, tilted)
    assert float(dpitch) == pytest.approx(10.0, abs=1e-9)
    assert float(dyaw) == pytest.approx(0.0, abs=1e-9)
    assert rotation_labels(float(dyaw), float(dpitch))[1] == "up"


def test_convention_translation_axes() -> None:
    start = camera(40.0, 5.0, centre=(1.0, 2.0, 1.5))
    right, down, forward = (start[:3, i] for i in range(3))
    for direction, axis, labels in [
        (right, 0, ("right", "up", "backward")),
        (down, 1, ("left", "down", "backward")),
        (forward, 2, ("left", "up", "forward")),
    ]:
        moved = start.copy()
        moved[:3, 3] += 0.5 * direction
        t = relative_translation_m(start, moved)
        expected = np.zeros(3)
        expected[axis] = 0.5
        np.testing.assert_allclose(t, expected, atol=1e-12)
        assert translation_labels(t) == labels
    moved = start.copy()
    moved[:3, 3] -= 0.3 * right
    assert translation_labels(relative_translation_m(start, moved))[0] == "left"
    assert translation_labels(np.zeros(3)) == ("left", "up", "backward")


def test_yaw_wraps_across_180() -> None:
    dyaw, _ = relative_yaw_pitch_deg(camera(170.0), camera(-170.0))
    assert float(dyaw) == pytest.approx(20.0, abs=1e-9)
    dyaw, _ = relative_yaw_pitch_deg(camera(-170.0), camera(170.0))
    assert float(dyaw) == pytest.approx(-20.0, abs=1e-9)
    dyaw, _ = relative_yaw_pitch_deg(camera(0.0), camera(180.0))
    assert float(dyaw) == pytest.approx(180.0, abs=1e-9)
    yaw, _ = yaw_pitch_deg(camera(180.0))
    assert float(yaw) == pytest.approx(180.0, abs=1e-9)


def test_yaw_pitch_match_construction_and_ignore_roll_and_position() -> None:
    rng = np.random.default_rng(0)
    yaws = rng.uniform(-179.0, 179.0, 40)
    pitches = rng.uniform(-80.0, 80.0, 40)
    poses = np.stack(
        [
            camera(y, p, roll_deg=r, centre=tuple(c))
            for y, p, r, c in zip(
                yaws, pitches, rng.uniform(-60, 60, 40), rng.normal(size=(40, 3)), strict=True
            )
        ]
    )
    yaw, pitch = yaw_pitch_deg(poses)  # batched over the leading dimension
    assert yaw.shape == (40,)
    np.testing.assert_allclose(yaw, yaws, atol=1e-9)
    np.testing.assert_allclose(pitch, pitches, atol=1e-9)
    yaw3, pitch3 = yaw_pitch_deg(poses[:, :3, :3])
    np.testing.assert_array_equal(yaw3, yaw)
    np.testing.assert_array_equal(pitch3, pitch)
    dyaw, dpitch = relative_yaw_pitch_deg(poses[:-1], poses[1:])
    np.testing.assert_allclose(dpitch, np.diff(pitches), atol=1e-9)
    np.testing.assert_allclose(np.abs(wrap_deg(dyaw - np.diff(yaws))), 0.0, atol=1e-9)


def test_wrap_deg_interval_and_congruence() -> None:
    rng = np.random.default_rng(1)
    angles = np.concatenate(
        [
            rng.uniform(-1000, 1000, 1000),
            [
                -180.0,
                180.0,
                540.0,
                -540.0,
                0.0,
                360.0,
                -360.0,
                180.0 + 1e-14,
                -180.0 - 1e-14,
                -180.0 + 1e-13,
            ],
        ]
    )
    wrapped = wrap_deg(angles)
    assert np.all(wrapped > -180.0) and np.all(wrapped <= 180.0)
    turns = (angles - wrapped) / 360.0
    np.testing.assert_allclose(turns, np.round(turns), atol=1e-12)
    assert wrap_deg(-180.0) == 180.0
    assert wrap_deg(np.array([-540.0, 180.0])).tolist() == [180.0, 180.0]

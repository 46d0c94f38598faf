"""Tests of multispa.geometry.boxes: known boxes, brute-force rotation search, degenerate input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from multispa.geometry.boxes import OrientedBox, gravity_aligned_obb, min_area_rectangle


def yawed_box_points(
    dims: tuple[float, float, float],
    yaw_deg: float,
    centre: np.ndarray,
    surface_samples: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Corners (and optional surface samples) of a box ``dims`` = (along x', along y', z)."""
    half = np.array(dims) / 2
    corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
    local = [corners]
    if surface_samples:
        samples = rng.uniform(-1, 1, (surface_samples, 3)) * half
        axis = rng.integers(0, 3, surface_samples)
        side = np.sign(rng.uniform(-1, 1, surface_samples))
        samples[np.arange(surface_samples), axis] = side * half[axis]
        local.append(samples)
    points = np.concatenate(local)
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return points @ rotation.T + centre


def axis_angle_mod_180(axis: np.ndarray) -> float:
    return math.degrees(math.atan2(axis[1], axis[0])) % 180.0


@pytest.mark.parametrize("surface_samples", [0, 3000])
@pytest.mark.parametrize("yaw_deg", [37.0, -61.3, 123.4])
def test_recovers_known_rotated_box(surface_samples: int, yaw_deg: float) -> None:
    rng = np.random.default_rng(surface_samples)
    centre = np.array([2.0, -1.0, 0.9])
    points = yawed_box_points((1.2, 0.5, 0.8), yaw_deg, centre, surface_samples, rng)
    box = gravity_aligned_obb(points.astype(np.float32))
    assert isinstance(box, OrientedBox)
    assert box.length == pytest.approx(1.2, abs=1e-3)
    assert box.width == pytest.approx(0.5, abs=1e-3)
    assert box.height == pytest.approx(0.8, abs=1e-3)
    np.testing.assert_allclose(box.centre, centre, atol=1e-3)
    assert box.z_min == pytest.approx(0.5, abs=1e-6) and box.z_max == pytest.approx(1.3, abs=1e-6)
    assert axis_angle_mod_180(box.length_axis) == pytest.approx(yaw_deg % 180.0, abs=0.01)
    # axes: unit, horizontal, orthogonal, right-handed with +z, canonical sign
    for axis in (box.length_axis, box.width_axis):
        assert axis[2] == 0.0
        assert np.linalg.norm(axis) == pytest.approx(1.0)
    assert float(box.length_axis @ box.width_axis) == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(np.cross(box.length_axis, box.width_axis), [0, 0, 1], atol=1e-12)
    assert box.length_axis[0] > 0 or (box.length_axis[0] == 0 and box.length_axis[1] > 0)
    corners = box.corners()
    np.testing.assert_allclose(np.sort(corners[:, 2]), [0.5] * 4 + [1.3] * 4, atol=1e-6)
    np.testing.assert_allclose(
        sorted(np.linalg.norm(corners[:4, :2] - centre[:2], axis=1)),
        [math.hypot(0.6, 0.25)] * 4,
        atol=1e-3,
    )


def brute_force_min_area(points_xy: np.ndarray, step_deg: float = 0.01) -> float:
    angles = np.radians(np.arange(0.0, 90.0, step_deg))
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    normals = np.stack([-np.sin(angles), np.cos(angles)], axis=1)
    along = directions @ points_xy.T
    across = normals @ points_xy.T
    areas = (along.max(1) - along.min(1)) * (across.max(1) - across.min(1))
    return float(areas.min())


@pytest.mark.parametrize("seed", range(4))
def test_calipers_area_never_beaten_by_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stretch = np.array([[rng.uniform(0.5, 3.0), 0.0], [rng.uniform(-1, 1), rng.uniform(0.2, 1.0)]])
    points_xy = rng.normal(size=(int(rng.integers(5, 400)), 2)) @ stretch
    centre, sides, axis = min_area_rectangle(points_xy)
    area = float(sides[0] * sides[1])
    brute = brute_force_min_area(points_xy)
    assert brute >= area - 1e-12
    assert brute <= area * (1 + 1e-3) + 1e-12  # the 0.01° grid gets close to the optimum
    assert sides[0] >= sides[1]
    # every point lies inside the returned rectangle
    normal = np.array([-axis[1], axis[0]])
    along = (points_xy - centre) @ axis
    across = (points_xy - centre) @ normal
    assert np.all(np.abs(along) <= sides[0] / 2 + 1e-9)
    assert np.all(np.abs(across) <= sides[1] / 2 + 1e-9)


def test_degenerate_inputs() -> None:
    single = gravity_aligned_obb(np.array([[1.0, 2.0, 3.0]]))
    assert (single.length, single.width, single.height) == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(single.centre, [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(single.length_axis, [1.0, 0.0, 0.0])

    repeated = gravity_aligned_obb(np.array([[1.0, 2.0, 0.0]] * 5 + [[1.0, 2.0, 1.0]]))
    assert (repeated.length, repeated.width, repeated.height) == (0.0, 0.0, 1.0)

    two = gravity_aligned_obb(np.array([[0.0, 0.0, 0.0], [3.0, 4.0, 1.0]]))
    assert two.length == pytest.approx(5.0) and two.width == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(two.length_axis, [0.6, 0.8, 0.0])
    np.testing.assert_allclose(two.centre, [1.5, 2.0, 0.5], atol=1e-12)

    t = np.linspace(0, 1, 7)
    collinear = np.stack([1 - 2 * t, 2 * t, t], axis=1)  # along (−1, 1): canonical axis (1, −1)/√2
    line = gravity_aligned_obb(collinear)
    assert line.length == pytest.approx(2 * math.sqrt(2))
    assert line.width == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(line.length_axis, [math.sqrt(0.5), -math.sqrt(0.5), 0.0])

    vertical = gravity_aligned_obb(np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 1.0]]))
    np.testing.assert_allclose(vertical.length_axis, [0.0, 1.0, 0.0])

    with pytest.raises(ValueError, match="no points"):
        gravity_aligned_obb(np.zeros((0, 3)))


def test_square_footprint_and_large_hull() -> None:
    angles = np.linspace(0, 2 * np.pi, 5000, endpoint=False)
    circle = np.column_stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)])
    box = gravity_aligned_obb(circle)
    assert box.length == pytest.approx(2.0, abs=1e-5) and box.width == pytest.approx(2.0, abs=1e-5)
    assert box.length >= box.width

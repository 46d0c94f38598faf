"""Tests of multispa.geometry.camera: formulas, bounds, round trips and axis conventions."""

from __future__ import annotations

import numpy as np
import pytest

from multispa.errors import ShapeError
from multispa.geometry.camera import (
    in_bounds,
    project_in_bounds,
    project_points,
    unproject_depth,
    unproject_points,
)
from multispa.scenes.types import Intrinsics

COLOR = Intrinsics(fx=1170.2, fy=1169.8, cx=647.8, cy=483.8, width=1296, height=968)
DEPTH = Intrinsics(fx=577.6, fy=578.1, cx=318.9, cy=238.4, width=64, height=48)


def test_project_points_matches_pinhole_formula() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(50, 3)) + np.array([0.0, 0.0, 3.0])
    points[:, 2] = np.abs(points[:, 2]) + 0.1
    uv_px, z = project_points(points.astype(np.float32), COLOR)
    p64 = points.astype(np.float32).astype(np.float64)
    for (u, v), depth, (x, y, zz) in zip(uv_px, z, p64, strict=True):
        assert u == pytest.approx(COLOR.fx * x / zz + COLOR.cx, abs=1e-9)
        assert v == pytest.approx(COLOR.fy * y / zz + COLOR.cy, abs=1e-9)
        assert depth == zz


def test_project_points_behind_camera_gives_nan_without_warning() -> None:
    points = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, -2.0], [0.1, 0.0, 1.0]])
    uv_px, z = project_points(points, COLOR)  # filterwarnings=error: a warning would fail
    assert np.isnan(uv_px[:2]).all()
    assert np.isfinite(uv_px[2]).all()
    np.testing.assert_array_equal(z, [0.0, -2.0, 1.0])
    mask = in_bounds(uv_px, z, COLOR.width, COLOR.height)
    np.testing.assert_array_equal(mask, [False, False, True])


def test_project_points_broadcasts() -> None:
    points = np.random.default_rng(1).normal(size=(2, 4, 3)) + np.array([0, 0, 5])
    uv_px, z = project_points(points, COLOR)
    assert uv_px.shape == (2, 4, 2)
    assert z.shape == (2, 4)
    np.testing.assert_array_equal(uv_px[1], project_points(points[1], COLOR)[0])


def test_in_bounds_edges_are_half_open() -> None:
    uv = np.array([[0.0, 0.0], [99.999, 79.999], [100.0, 10.0], [10.0, 80.0], [-1e-9, 5.0]])
    z = np.ones(5)
    np.testing.assert_array_equal(in_bounds(uv, z, 100, 80), [True, True, False, False, False])
    np.testing.assert_array_equal(in_bounds(uv[:2], np.array([0.0, -1.0]), 100, 80), [False, False])


def test_convention_x_right_y_down_z_forward() -> None:
    k = Intrinsics(fx=100.0, fy=100.0, cx=50.0, cy=40.0, width=100, height=80)
    uv_px, mask = project_in_bounds(np.array([[0.1, 0.0, 1.0], [0.0, 0.1, 1.0]]), k)
    assert uv_px[0, 0] > k.cx and uv_px[0, 1] == k.cy  # +x is to the right
    assert uv_px[1, 1] > k.cy and uv_px[1, 0] == k.cx  # +y is down
    assert mask.all()


def test_unproject_depth_round_trips_through_projection() -> None:
    rng = np.random.default_rng(2)
    depth_m = rng.uniform(0.3, 6.0, (DEPTH.height, DEPTH.width)).astype(np.float32)
    depth_m[3, 5] = 0.0
    points = unproject_depth(depth_m, DEPTH)
    assert points.shape == (48, 64, 3)
    assert points.dtype == np.float32
    np.testing.assert_array_equal(points[..., 2], depth_m)
    np.testing.assert_array_equal(points[3, 5], [0.0, 0.0, 0.0])
    valid = depth_m > 0
    uv_px, z = project_points(points[valid], DEPTH)
    rows, cols = np.nonzero(valid)
    np.testing.assert_allclose(uv_px[:, 0], cols, atol=1e-4)
    np.testing.assert_allclose(uv_px[:, 1], rows, atol=1e-4)
    np.testing.assert_allclose(z, depth_m[valid], rtol=0)


def test_unproject_points_inverts_project_points() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(20, 3)) + np.array([0.0, 0.0, 4.0])
    uv_px, z = project_points(points, COLOR)
    np.testing.assert_allclose(unproject_points(uv_px, z, COLOR), points, atol=1e-12)
    # pixel centre values, one depth for all
    back = unproject_points(
        np.array([[COLOR.cx, COLOR.cy], [COLOR.cx + COLOR.fx, COLOR.cy]]), np.array(2.0), COLOR
    )
    np.testing.assert_allclose(back, [[0.0, 0.0, 2.0], [2.0, 0.0, 2.0]], atol=1e-12)


def test_unproject_depth_rejects_size_mismatch() -> None:
    with pytest.raises(ShapeError, match=r"depth_m: expected shape \(48, 64\), found \(64, 48\)"):
        unproject_depth(np.ones((64, 48), dtype=np.float32), DEPTH)
    with pytest.raises(ShapeError):
        project_points(np.ones((5, 2)), DEPTH)

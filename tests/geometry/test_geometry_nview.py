"""Greedy view coverage, closest-point distances and the floor-plan angle against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from multispa.geometry.angles import floor_angle_deg
from multispa.geometry.overlap import pack_visibility
from multispa.geometry.proximity import (
    closest_point_distance,
    closest_point_distances,
    index_points,
    indexed_distance,
)
from multispa.geometry.view_coverage import greedy_cover, min_view_gain, min_view_gap


def _naive_greedy(masks: np.ndarray, start: int, count: int, gap: int, gain: int) -> list[int]:
    covered, chosen = masks[start].copy(), [start]
    while len(chosen) < count:
        best, best_gain = None, -1
        for row in range(masks.shape[0]):
            if any(abs(row - c) < gap for c in chosen):
                continue
            new = int(np.count_nonzero(masks[row] & ~covered))
            if new > best_gain:
                best, best_gain = row, new
        if best is None or best_gain < max(gain, 1):
            break
        chosen.append(best)
        covered |= masks[best]
    return chosen


def test_greedy_cover_equals_the_plain_greedy_with_ties_to_the_lowest_row() -> None:
    rng = np.random.default_rng(3)
    for trial in range(300):
        rows, points = int(rng.integers(2, 40)), int(rng.integers(1, 400))
        masks = rng.random((rows, points)) < rng.uniform(0.02, 0.5)
        if trial % 3 == 0:  # whole columns alike: many equal gains
            masks = np.repeat(rng.random((rows, 1)) < 0.5, points, axis=1)
        start, count = int(rng.integers(rows)), int(rng.integers(1, 10))
        gap, gain = int(rng.integers(1, 4)), int(rng.integers(0, 30))
        got = greedy_cover(pack_visibility(masks), start, count, min_gap=gap, min_gain=gain)
        assert got.tolist() == _naive_greedy(masks, start, count, gap, gain), trial


def test_greedy_cover_stops_when_gains_run_out_and_refuses_bad_starts() -> None:
    masks = np.zeros((4, 100), dtype=bool)
    masks[0, :50] = masks[1, :51] = masks[2, 50:52] = True
    # row 1 adds 1 vertex, row 2 adds 2: with a minimum gain of 2 only row 2 joins
    assert greedy_cover(pack_visibility(masks), 0, 4, min_gain=2).tolist() == [0, 2]
    with pytest.raises(ValueError, match="start"):
        greedy_cover(pack_visibility(masks), 4, 2)
    assert min_view_gap(400, 8) == 10 and min_view_gap(20, 8) == 1
    assert min_view_gain(150_000) == 1500 and min_view_gain(150_001) == 1501


def test_closest_point_distances_are_exact() -> None:
    rng = np.random.default_rng(5)
    for trial in range(300):
        a = rng.normal(size=(int(rng.integers(1, 500)), 3)) * rng.uniform(0.01, 2.0)
        b = rng.normal(size=(int(rng.integers(1, 500)), 3)) * rng.uniform(0.01, 2.0)
        b += rng.normal(size=3) * rng.uniform(0.0, 3.0)
        if trial % 4 == 0:  # interleaved sets on a grid: many equal distances
            a, b = np.round(a, 1), np.round(b, 1) + 0.05
        expected = float(cdist(a, b).min())
        assert closest_point_distance(a, b) == pytest.approx(expected, abs=1e-12), trial
        cell = float(rng.uniform(0.02, 0.5))
        assert indexed_distance(index_points(a, cell), index_points(b, cell)) == pytest.approx(
            expected, abs=1e-12)
    sets = [rng.normal(size=(50, 3)) + shift for shift in (0.0, 3.0, 7.0)]
    matrix = closest_point_distances(sets)
    assert matrix.shape == (3, 3) and np.allclose(matrix, matrix.T) and not matrix.diagonal().any()
    assert matrix[0, 2] == pytest.approx(cdist(sets[0], sets[2]).min(), abs=1e-12)
    queries = rng.normal(size=(8, 3))
    nearest = index_points(sets[1]).point_tree.query(queries, k=1)[0]
    assert nearest == pytest.approx(cdist(queries, sets[1]).min(axis=1))
    with pytest.raises(ValueError, match="empty"):
        closest_point_distance(np.zeros((0, 3)), sets[0])


def test_convention_floor_angle_is_positive_to_the_left() -> None:
    # at the origin facing +y (north): +x (east) is to the right, −x to the left
    origin, ahead = np.array([0.0, 0.0]), np.array([0.0, 1.0])
    assert float(floor_angle_deg(origin, ahead, np.array([-1.0, 0.0]))) == pytest.approx(90.0)
    assert float(floor_angle_deg(origin, ahead, np.array([1.0, 0.0]))) == pytest.approx(-90.0)
    assert float(floor_angle_deg(origin, ahead, np.array([0.0, 2.0]))) == 0.0
    assert abs(float(floor_angle_deg(origin, ahead, np.array([0.0, -2.0])))) == 180.0
    rng = np.random.default_rng(1)
    a, b, c = rng.normal(size=(3, 100, 2))
    theta = floor_angle_deg(a, b, c)
    f, w = b - a, c - a
    cross_z = f[:, 0] * w[:, 1] - f[:, 1] * w[:, 0]  # z of the 3-D cross product
    expected = np.degrees(np.arctan2(cross_z, np.sum(f * w, axis=1)))
    assert np.allclose(theta, expected)

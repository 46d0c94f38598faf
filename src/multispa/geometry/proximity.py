"""Exact closest-point distances between point sets and from query points (k-d trees).

- :func:`closest_point_distance` of two sets ``P``, ``Q`` is ``min ‖x − y‖`` over ``x ∈ P``,
  ``y ∈ Q``, metres, exact: the smaller set's points are queried against a k-d tree of the
  larger one, but only those that can still beat an upper bound (the best distance of a strided
  subsample): a point ``x`` with ``dist(x, Q) ≤ u`` also lies within ``u`` of ``Q``'s bounding
  box, so the points farther than ``u`` from that box are left out without changing the result.
- :func:`closest_point_distances`: the symmetric ``(n, n)`` matrix over ``n`` sets.
- :func:`distances_to_set`: per query point, the distance to its nearest point of a set.

Trees come from ``scipy.spatial.cKDTree``; callers may pass prebuilt trees to share them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.spatial import cKDTree

from multispa.geometry.transforms import expect_shape

__all__ = ["closest_point_distance", "closest_point_distances", "distances_to_set"]

_PROBE_POINTS = 64  # points of the smaller set queried first, for the upper bound


def _points(points: np.ndarray, name: str) -> np.ndarray:
    expect_shape(points, "(N, 3)", name)
    array = np.asarray(points, dtype=np.float64)
    if array.shape[0] == 0:
        raise ValueError(f"{name}: empty point set")
    return array


def closest_point_distance(
    points_a: np.ndarray, points_b: np.ndarray, tree_a: cKDTree | None = None,
    tree_b: cKDTree | None = None,
) -> float:
    """``min ‖x − y‖`` over ``x ∈ points_a``, ``y ∈ points_b`` (module docstring), metres.

    Args:
        points_a, points_b: ``(N, 3)`` and ``(M, 3)`` points, metres (non-empty).
        tree_a, tree_b: optional ``cKDTree`` of each set (built when needed and not given).

    >>> closest_point_distance(np.array([[0.0, 0, 0], [5, 0, 0]]), np.array([[0.0, 3, 4]]))
    5.0
    """
    a, b = _points(points_a, "points_a"), _points(points_b, "points_b")
    if a.shape[0] > b.shape[0]:
        a, b, tree_b = b, a, tree_a
    tree = tree_b if tree_b is not None else cKDTree(b)
    step = max(1, a.shape[0] // _PROBE_POINTS)
    bound = float(tree.query(a[::step], k=1)[0].min())
    low, high = b.min(axis=0), b.max(axis=0)
    outside = np.maximum(np.maximum(low - a, a - high), 0.0)
    near = a[np.einsum("ij,ij->i", outside, outside) <= bound * bound]
    if near.shape[0] == 0:
        return bound
    found = tree.query(near, k=1, distance_upper_bound=bound)[0]  # inf beyond the bound
    return float(min(bound, float(found.min())))


def closest_point_distances(
    point_sets: Sequence[np.ndarray], trees: Sequence[cKDTree] | None = None,
) -> np.ndarray:
    """All pairwise :func:`closest_point_distance` values of ``n`` point sets.

    Args:
        point_sets: ``n`` arrays ``(N_i, 3)``, metres (non-empty).
        trees: optional ``cKDTree`` per set.

    Returns:
        ``(n, n)`` float64, symmetric, zero diagonal, metres.

    >>> sets = [np.array([[0.0, 0, 0]]), np.array([[3.0, 4, 0]]), np.array([[0.0, 0, 2]])]
    >>> closest_point_distances(sets).tolist()
    [[0.0, 5.0, 2.0], [5.0, 0.0, 5.385164807134504], [2.0, 5.385164807134504, 0.0]]
    """
    count = len(point_sets)
    if trees is not None and len(trees) != count:
        raise ValueError(f"closest_point_distances: {len(trees)} trees for {count} point sets")
    arrays = [_points(points, f"point_sets[{i}]") for i, points in enumerate(point_sets)]
    built = list(trees) if trees is not None else [cKDTree(points) for points in arrays]
    out = np.zeros((count, count), dtype=np.float64)
    for i in range(count):
        for j in range(i + 1, count):
            value = closest_point_distance(arrays[i], arrays[j], built[i], built[j])
            out[i, j] = out[j, i] = value
    return out


def distances_to_set(
    queries: np.ndarray, points: np.ndarray, tree: cKDTree | None = None,
) -> np.ndarray:
    """Distance from each query point to its nearest point of ``points``.

    Args:
        queries: ``(M, 3)`` query points, metres.
        points: ``(N, 3)`` the set, metres (non-empty).
        tree: optional ``cKDTree`` of ``points``.

    Returns:
        ``(M,)`` float64, metres.

    >>> distances_to_set(np.array([[0.0, 0, 0], [0, 0, 10]]), np.array([[0.0, 3, 4]])).tolist()
    [5.0, 6.708203932499369]
    """
    expect_shape(queries, "(M, 3)", "queries")
    built = tree if tree is not None else cKDTree(_points(points, "points"))
    return np.asarray(built.query(np.asarray(queries, dtype=np.float64), k=1)[0],
                      dtype=np.float64)

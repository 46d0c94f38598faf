"""Exact closest-point distances between point sets and from query points (k-d trees).

- :func:`closest_point_distance` of two sets ``P``, ``Q`` is ``min ‖x − y‖`` over ``x ∈ P``,
  ``y ∈ Q``, metres, exact. Each set is first indexed (:func:`index_points`): its points are
  binned in cubic cells of side ``h``, the first point of each cell is the cell's
  representative, and the representatives go in a k-d tree (``scipy.spatial.cKDTree``). The
  least distance between representatives is an upper bound ``u`` (they are real points). A point
  lies within ``s = h·√3`` of its cell's representative, so a pair ``x, y`` at distance ``≤ u``
  has representatives at most ``u + 2s`` apart: only the cells whose representative is that
  close to the other set's representatives are kept, and the exact minimum comes from querying
  the kept points of one set against the k-d tree of all points of the other, bounded by ``u``.
  Index a set once with :func:`index_points` and pass the indexes to :func:`indexed_distance`
  to compare it with many others.
- :func:`closest_point_distances`: the symmetric ``(n, n)`` matrix over ``n`` sets.

The distance from a few query points (camera centres) to a set is one query of the set's
``PointIndex.point_tree``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from multispa.geometry.transforms import expect_shape

__all__ = [
    "DEFAULT_CELL_M",
    "PointIndex",
    "closest_point_distance",
    "closest_point_distances",
    "index_points",
    "indexed_distance",
]

DEFAULT_CELL_M = 0.1  # cell side of the coarse index, metres


def _points(points: np.ndarray, name: str) -> np.ndarray:
    expect_shape(points, "(N, 3)", name)
    array = np.asarray(points, dtype=np.float64)
    if array.shape[0] == 0:
        raise ValueError(f"{name}: empty point set")
    return array


@dataclass(frozen=True)
class PointIndex:
    """A point set with its coarse cell index (module docstring).

    Attributes:
        points: ``(N, 3)`` float64, metres.
        cell_m: cell side ``h``, metres.
        cell_of_point: ``(N,)`` int64 cell of each point (index into ``representatives``).
        representatives: ``(V, 3)`` float64, the first point of each occupied cell.
        tree: ``cKDTree`` of the representatives.
        point_tree: ``cKDTree`` of all the points.
    """

    points: np.ndarray
    cell_m: float
    cell_of_point: np.ndarray
    representatives: np.ndarray
    tree: cKDTree
    point_tree: cKDTree


def index_points(points: np.ndarray, cell_m: float = DEFAULT_CELL_M) -> PointIndex:
    """Index a non-empty ``(N, 3)`` point set (metres) in cubic cells of side ``cell_m``."""
    array = _points(points, "points")
    if not cell_m > 0:
        raise ValueError(f"index_points: cell_m must be positive, got {cell_m}")
    if float(np.ptp(array, axis=0).max()) / cell_m >= 1 << 21:
        raise ValueError(f"index_points: the points span more than {1 << 21} cells of {cell_m} m")
    cells = np.floor((array - array.min(axis=0)) / cell_m).astype(np.int64)
    keys = (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]  # < 2**21 cells per axis
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    representatives = array[first]
    return PointIndex(array, float(cell_m), inverse.reshape(-1), representatives,
                      cKDTree(representatives), cKDTree(array))


def indexed_distance(a: PointIndex, b: PointIndex) -> float:
    """:func:`closest_point_distance` of two indexed sets (module docstring), metres."""
    to_b = b.tree.query(a.representatives, k=1)[0]
    to_a = a.tree.query(b.representatives, k=1)[0]
    bound = float(to_b.min())
    reach = bound + 2.0 * math.sqrt(3.0) * max(a.cell_m, b.cell_m)
    near_a = a.points[(to_b <= reach)[a.cell_of_point]]
    near_b = b.points[(to_a <= reach)[b.cell_of_point]]
    if near_a.shape[0] <= near_b.shape[0]:
        found = b.point_tree.query(near_a, k=1, distance_upper_bound=bound)[0]
    else:
        found = a.point_tree.query(near_b, k=1, distance_upper_bound=bound)[0]
    return float(min(bound, float(found.min())))


def closest_point_distance(points_a: np.ndarray, points_b: np.ndarray) -> float:
    """``min ‖x − y‖`` over ``x ∈ points_a``, ``y ∈ points_b`` (module docstring), metres.

    Args:
        points_a, points_b: ``(N, 3)`` and ``(M, 3)`` points, metres (non-empty).

    >>> closest_point_distance(np.array([[0.0, 0, 0], [5, 0, 0]]), np.array([[0.0, 3, 4]]))
    5.0
    """
    return indexed_distance(index_points(points_a), index_points(points_b))


def closest_point_distances(point_sets: Sequence[np.ndarray]) -> np.ndarray:
    """All pairwise :func:`closest_point_distance` values of ``n`` point sets.

    Args:
        point_sets: ``n`` arrays ``(N_i, 3)``, metres (non-empty).

    Returns:
        ``(n, n)`` float64, symmetric, zero diagonal, metres.

    >>> sets = [np.array([[0.0, 0, 0]]), np.array([[3.0, 4, 0]]), np.array([[0.0, 0, 2]])]
    >>> closest_point_distances(sets).tolist()
    [[0.0, 5.0, 2.0], [5.0, 0.0, 5.385164807134504], [2.0, 5.385164807134504, 0.0]]
    """
    count = len(point_sets)
    arrays = [_points(points, f"point_sets[{i}]") for i, points in enumerate(point_sets)]
    out = np.zeros((count, count), dtype=np.float64)
    for i in range(count):
        for j in range(i + 1, count):
            out[i, j] = out[j, i] = closest_point_distance(arrays[i], arrays[j])
    return out

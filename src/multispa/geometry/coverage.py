"""Exact minimal frame sets covering an object dimension (docs/labels.md#coverage, rule (h)).

For each frame ``i`` that sees the object, ``[lo_i, hi_i]`` is the extent of the object vertices
visible in ``i`` along the dimension's axis. A frame set ``S`` covers the dimension iff
``max_S hi − min_S lo >= fraction·L``. Since ``{argmin lo, argmax hi}`` spans as much as ``S``,
every minimal covering set has one or two frames, so an O(m²) pass finds them all.

Comparisons are exact float64 comparisons against the single threshold ``fraction * length``
(computed once, in that order); no tolerance is added.
"""

from __future__ import annotations

import numpy as np

from multispa.geometry.transforms import expect_shape

__all__ = ["axis_extents", "minimal_covering_sets"]


def axis_extents(points: np.ndarray, axis: np.ndarray) -> tuple[float, float]:
    """Extent of points along an axis: ``(min p·a, max p·a)``.

    Args:
        points: ``(N, 3)`` points, metres (N >= 1).
        axis: ``(3,)`` direction (used as given; pass a unit vector to get metres).

    Returns:
        ``(lo, hi)`` as Python floats, metres.

    >>> axis_extents(np.array([[0.0, 1.0, 2.0], [3.0, -1.0, 5.0]]), np.array([0.0, 0.0, 1.0]))
    (2.0, 5.0)
    """
    expect_shape(points, "(N, 3)", "points")
    expect_shape(axis, "(3,)", "axis")
    if np.shape(points)[0] == 0:
        raise ValueError("axis_extents: no points")
    projected = np.asarray(points, dtype=np.float64) @ np.asarray(axis, dtype=np.float64)
    return float(projected.min()), float(projected.max())


def minimal_covering_sets(
    lo: np.ndarray, hi: np.ndarray, length: float, fraction: float = 0.9
) -> tuple[np.ndarray, np.ndarray]:
    """All minimal frame sets whose union of extents covers ``fraction`` of ``length``.

    Args:
        lo: ``(m,)`` lower extent per frame, metres.
        hi: ``(m,)`` upper extent per frame, metres (``hi >= lo``).
        length: the box extent ``L`` along the axis, metres.
        fraction: the covered fraction required (spec: 0.9).

    Returns:
        ``singletons``: ``(s,)`` int64 ascending frame positions with ``hi − lo >= fraction·L``;
        ``pairs``: ``(k, 2)`` int64 positions ``i < j`` (lexicographic) where neither frame
        covers alone and ``max(hi_i, hi_j) − min(lo_i, lo_j) >= fraction·L``.

    >>> singletons, pairs = minimal_covering_sets(
    ...     np.array([0.0, 0.5, 0.0, 0.2]), np.array([0.6, 1.0, 1.0, 0.7]), 1.0)
    >>> singletons.tolist(), pairs.tolist()
    ([2], [[0, 1]])
    """
    expect_shape(lo, "(M,)", "lo")
    expect_shape(hi, f"({np.shape(lo)[0]},)", "hi")
    low = np.asarray(lo, dtype=np.float64)
    high = np.asarray(hi, dtype=np.float64)
    threshold = fraction * length
    alone = high - low >= threshold
    singletons = np.flatnonzero(alone)
    rest = np.flatnonzero(~alone)
    i, j = np.triu_indices(rest.size, k=1)
    i, j = rest[i], rest[j]
    span = np.maximum(high[i], high[j]) - np.minimum(low[i], low[j])
    covers = span >= threshold
    pairs = np.column_stack([i[covers], j[covers]]).astype(np.int64)
    return singletons.astype(np.int64), pairs.reshape(-1, 2)

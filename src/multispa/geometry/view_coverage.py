"""Greedy coverage of a scene by a few views, over bit-packed vertex visibility.

Packed layout (as in :mod:`multispa.geometry.overlap`): a frame's visible set over ``P`` vertices
is a row of ``ceil(P/64)`` uint64 words, vertex ``p`` is bit ``p % 64`` of word ``p // 64``.

:func:`greedy_cover` grows a view set from a start row: it repeatedly adds the candidate row that
adds the most vertices not yet covered (ties: the lowest row), never a row closer than
``min_gap`` rows to a chosen one, until ``num_views`` rows are chosen or no allowed row adds at
least ``min_gain`` vertices. Gains are exact popcounts of whole rows (``row & ~covered``), never
a Python loop over vertices; coverage gains only shrink as the cover grows, so most rows are
never re-counted (lazy greedy).
"""

from __future__ import annotations

import heapq

import numpy as np

from multispa.geometry.transforms import expect_shape

__all__ = ["greedy_cover", "min_view_gain", "min_view_gap"]


def min_view_gap(num_candidates: int, num_views: int) -> int:
    """The least row distance between two views of a set: ``max(1, min(10, ⌊K / (2N)⌋))``.

    >>> min_view_gap(400, 8), min_view_gap(60, 8), min_view_gap(10, 8)
    (10, 3, 1)
    """
    if num_views < 1:
        raise ValueError(f"min_view_gap: num_views must be >= 1, got {num_views}")
    return max(1, min(10, int(num_candidates) // (2 * int(num_views))))


def min_view_gain(num_vertices: int, fraction_pct: int = 1) -> int:
    """Fewest new vertices that count as adding ``fraction_pct`` % of ``num_vertices``.

    A gain ``g`` qualifies iff ``100·g ≥ fraction_pct·P``, i.e. ``g ≥ ceil(fraction_pct·P/100)``
    (integers, exact).

    >>> min_view_gain(14334), min_view_gain(100), min_view_gain(0)
    (144, 1, 0)
    """
    return -(-int(fraction_pct) * int(num_vertices) // 100)


def greedy_cover(
    packed: np.ndarray, start: int, num_views: int, *, min_gap: int = 1, min_gain: int = 1,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Rows of a greedy coverage set grown from ``start`` (module docstring).

    The greedy choice is evaluated lazily: a row's gain can only shrink as the cover grows, so
    rows wait in a heap ordered by ``(−last known gain, row)`` and only the row on top is
    re-counted; it is taken when its fresh gain still beats (or ties with a higher row than)
    the next row's last known gain. This picks exactly the row a full recount would (the largest
    gain, ties to the lowest row) while counting a handful of rows per step.

    Args:
        packed: ``(K, W)`` uint64 packed visibility of the candidate frames, in frame order.
        start: the first row.
        num_views: the most rows to choose.
        min_gap: a row ``r`` may be added only if ``|r − c| ≥ min_gap`` for every chosen ``c``.
        min_gain: stop when no allowed row adds at least this many uncovered vertices.
        counts: ``(K,)`` int64 popcount of each row (computed when not given).

    Returns:
        ``(n,)`` int64 chosen rows in the order they were picked (``start`` first), ``n ≤
        num_views``; ``n < num_views`` when the gains ran out.

    >>> packed = np.array([[0b0011], [0b0110], [0b1100], [0b1000]], dtype=np.uint64)
    >>> greedy_cover(packed, 0, 3).tolist()
    [0, 2]
    """
    expect_shape(packed, "(K, W)", "packed")
    words = np.asarray(packed, dtype=np.uint64)
    num_rows = words.shape[0]
    if not 0 <= start < num_rows:
        raise ValueError(f"greedy_cover: start {start} is not a row of {num_rows}")
    if counts is None:
        counts = np.bitwise_count(words).sum(axis=1, dtype=np.int64)
    covered = words[start].copy()
    chosen = [int(start)]
    threshold = max(int(min_gain), 1)

    def allowed(row: int) -> bool:
        return all(abs(row - c) >= min_gap for c in chosen)

    heap = [(-int(c), row) for row, c in enumerate(np.asarray(counts).tolist())
            if allowed(row) and int(c) >= threshold]
    heapq.heapify(heap)
    while len(chosen) < num_views and heap:
        _, row = heapq.heappop(heap)
        if not allowed(row):
            continue
        gain = int(np.bitwise_count(words[row] & ~covered).sum(dtype=np.int64))
        if gain < threshold:
            continue  # it can only shrink: never a candidate again
        if heap and (-heap[0][0], -heap[0][1]) > (gain, -row):
            heapq.heappush(heap, (-gain, row))  # another row may still do better
            continue
        chosen.append(row)
        covered |= words[row]
    return np.asarray(chosen, dtype=np.int64)

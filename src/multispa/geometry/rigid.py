"""Rigid-body segmentation of 3-D point tracks (docs/labels.md#rigid-groups, the paper's
listing).

1. For t = 1 … T−1, ``Δ = |D_t − D_{t−1}|`` over all pairwise track distances (condensed,
   float32); entries with ``Δ <= motion_eps_m`` are set to 0; ``S = ΣΔ``.
2. Average-linkage clustering with ``S`` as a precomputed distance, cut at ``cut_distance``.
3. Clusters with at least ``min_size`` tracks are kept (the paper: more than 5).

Pairwise distances do not change under a rigid change of frame, so tracks in each frame's own
camera coordinates give the same groups as world tracks; every track is used whatever its
visibility. One ``pdist`` is computed per frame and the previous one is reused.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import pdist

from multispa.geometry.transforms import expect_shape

__all__ = ["accumulated_distance_change", "rigid_groups"]


def accumulated_distance_change(tracks: np.ndarray, *, motion_eps_m: float = 0.01) -> np.ndarray:
    """``S = Σ_t Δ_t`` with ``Δ_t = |D_t − D_{t−1}|`` zeroed where ``<= motion_eps_m``.

    Args:
        tracks: ``(T, N, 3)`` track positions per frame, metres (finite).
        motion_eps_m: changes at or below this are treated as noise, metres.

    Returns:
        ``(N·(N−1)/2,)`` float64 condensed distance (``scipy.spatial.distance`` order).

    Raises:
        ValueError: when ``tracks`` holds NaN or infinite values.
    """
    expect_shape(tracks, "(T, N, 3)", "tracks")
    positions = np.asarray(tracks)
    if not np.all(np.isfinite(positions)):
        raise ValueError("tracks: expected finite positions, found NaN or infinite values")
    num_frames, num_tracks, _ = positions.shape
    total = np.zeros(num_tracks * (num_tracks - 1) // 2, dtype=np.float64)
    if num_frames < 2 or num_tracks < 2:
        return total
    previous = pdist(positions[0].astype(np.float64)).astype(np.float32)
    for t in range(1, num_frames):
        current = pdist(positions[t].astype(np.float64)).astype(np.float32)
        change = np.abs(current - previous)
        change[change <= motion_eps_m] = 0.0
        total += change
        previous = current
    return total


def rigid_groups(
    tracks: np.ndarray,
    *,
    motion_eps_m: float = 0.01,
    cut_distance: float = 0.1,
    min_size: int = 6,
) -> list[np.ndarray]:
    """Groups of tracks that move rigidly together.

    Args:
        tracks: ``(T, N, 3)`` track positions, metres, in any per-frame rigid frame (camera or
            world).
        motion_eps_m: per-step distance change treated as noise, metres (spec: 0.01).
        cut_distance: average-linkage cut height on the accumulated change ``S`` (spec: 0.1).
        min_size: smallest group kept (spec: more than 5 tracks, i.e. 6).

    Returns:
        Groups as ascending int64 arrays of track indices, ordered by their smallest index.
        With no frame or fewer than ``min_size`` tracks the list is empty; with a single frame
        ``S`` is zero and all tracks form one group.

    >>> static = np.zeros((3, 6, 3)) + np.arange(6)[None, :, None]
    >>> [g.tolist() for g in rigid_groups(static)]
    [[0, 1, 2, 3, 4, 5]]
    """
    condensed = accumulated_distance_change(tracks, motion_eps_m=motion_eps_m)
    num_frames, num_tracks = np.shape(tracks)[:2]
    if num_frames == 0 or num_tracks < max(min_size, 1):
        return []
    if num_tracks == 1:
        labels = np.ones(1, dtype=np.int64)
    else:
        tree = linkage(condensed, method="average")
        labels = fcluster(tree, t=cut_distance, criterion="distance")
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    groups = [g.astype(np.int64) for g in np.split(order, starts[1:])]
    kept = [np.sort(g) for g in groups if g.size >= min_size]
    kept.sort(key=lambda g: int(g[0]))
    return kept

"""View sets of the N-view family: N kept frames that together cover much of a scene.

Selection, per scene, with the scene's own generator (``rng_for(seed, "nview", "views", split,
unit id)``, so the sets do not depend on which N-view subtasks are asked):

1. the candidates are the **valid** kept frames (at least one visible vertex), in frame order;
   ``K`` of them;
2. up to :func:`view_sets_per_scene` start frames (or a configured number) are drawn uniformly
   without replacement;
3. from each start, :func:`multispa.geometry.view_coverage.greedy_cover` adds the candidate that
   adds the most vertices not yet covered (ties: the lowest frame index), skipping candidates
   fewer than ``min_gap = max(1, min(10, ⌊K / (2N)⌋))`` candidate positions from a chosen one,
   until N frames or until no candidate adds at least 1 % of the scene's vertices; a set with
   fewer than N frames is dropped (``nview:short_view_set``), and so is a set equal to an
   earlier one (``nview:duplicate_view_set``);
4. each set is sorted by frame index: ``Image-1 … Image-N`` in capture order.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from multispa.geometry.transforms import expect_shape
from multispa.geometry.view_coverage import greedy_cover, min_view_gain, min_view_gap

__all__ = [
    "FRAMES_PER_VIEW_SET",
    "MIN_GAIN_PCT",
    "ViewSet",
    "select_view_sets",
    "view_sets_per_scene",
]

FRAMES_PER_VIEW_SET = 200  # one view set per 200 kept frames, at least one
MIN_GAIN_PCT = 1  # a frame joins a set only if it adds >= 1 % of the scene's vertices


@dataclass(frozen=True)
class ViewSet:
    """One view set.

    Attributes:
        positions: kept-frame positions (rows of ``frame_index.npy``), in frame order.
        frames: original frame indices, ascending (``Image-1`` first).
    """

    positions: tuple[int, ...]
    frames: tuple[int, ...]


def view_sets_per_scene(kept_frames: int) -> int:
    """How many view sets a scene is asked for: one per 200 kept frames, at least one.

    >>> view_sets_per_scene(10), view_sets_per_scene(399), view_sets_per_scene(1000)
    (1, 1, 5)
    """
    return max(1, int(kept_frames) // FRAMES_PER_VIEW_SET)


def select_view_sets(
    visibility: np.ndarray, visible_counts: np.ndarray, frame_index: np.ndarray,
    num_vertices: int, num_views: int, rng: np.random.Generator,
    sets_per_scene: int | None = None,
) -> tuple[list[ViewSet], Counter[str]]:
    """The view sets of one scene (module docstring).

    Args:
        visibility: ``(F, W)`` uint64 packed visible vertices per kept frame (may be a memory
            map: only the valid rows are read).
        visible_counts: ``(F,)`` int ``|V_f|`` per kept frame.
        frame_index: ``(F,)`` original frame index per kept frame.
        num_vertices: ``P``, the scene's vertex count (the 1 % rule).
        num_views: N.
        rng: the scene's view-set generator.
        sets_per_scene: how many sets to draw (None: :func:`view_sets_per_scene`).

    Returns:
        The sets in the order their starts were drawn, and reason-coded counts of dropped sets.
    """
    expect_shape(visibility, "(F, W)", "visibility")
    counts = np.asarray(visible_counts, dtype=np.int64)
    frames = np.asarray(frame_index, dtype=np.int64)
    skipped: Counter[str] = Counter()
    valid = np.flatnonzero(counts > 0)
    valid = valid[np.argsort(frames[valid], kind="stable")]
    wanted = view_sets_per_scene(frames.size) if sets_per_scene is None else int(sets_per_scene)
    if valid.size < num_views:
        skipped["nview:too_few_frames"] += 1
        return [], skipped
    packed = np.ascontiguousarray(np.asarray(visibility)[valid], dtype=np.uint64)
    gap = min_view_gap(valid.size, num_views)
    gain = max(1, min_view_gain(num_vertices, MIN_GAIN_PCT))
    starts = rng.choice(valid.size, size=min(wanted, valid.size), replace=False)
    sets: list[ViewSet] = []
    known: set[tuple[int, ...]] = set()
    for start in starts.tolist():
        rows = greedy_cover(packed, start, num_views, min_gap=gap, min_gain=gain,
                            counts=counts[valid])
        if rows.size < num_views:
            skipped["nview:short_view_set"] += 1
            continue
        positions = tuple(sorted(valid[rows].tolist(), key=lambda p: (frames[p], p)))
        if positions in known:
            skipped["nview:duplicate_view_set"] += 1
            continue
        known.add(positions)
        sets.append(ViewSet(positions, tuple(int(frames[p]) for p in positions)))
    return sets, skipped

"""One scene's objects for the N-view family, and their states in a view set.

Objects are the rows of ``objects.json`` not excluded by rule 8g
(:func:`multispa.tasks.object_size.excluded_problem`: structural labels, no vertex, largest box
dimension under 0.1 m). An object is **nameable** when its label is unique in the scene, by the
rule object size uses (:func:`multispa.tasks.object_size.naming_problem`, with
:func:`~multispa.tasks.object_size.scene_label_counts` over all rows). Labels are shown as
:func:`~multispa.tasks.object_size.label_key` gives them: the raw label, stripped, lower-cased.

States (from the cached per-frame visible counts ``c`` of an object of ``n`` vertices, exact
integer tests):

- **seen** in a view when ``c ≥ max(50, 0.05·n)``: ``c ≥ 50`` and ``20·c ≥ n``;
- **absent** from a view when ``c < 0.005·n``: ``200·c < n``;
- **glimpsed** otherwise. In a view set, an object is seen if seen in some view, absent if absent
  from every view, and glimpsed if neither.

Geometry (aligned world, metres): ``P_o`` the object's mesh vertices, ``c_o`` its oriented-box
centre. Closest-point distances between nameable objects are computed once per scene, when first
needed (:meth:`NViewScene.distances`), with k-d trees (:mod:`multispa.geometry.proximity`), and
kept for the life of the object (one scene of a plan, or one generate unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from multispa.cache.scannet_cache import ScanNetCache, load_scannet_cache
from multispa.errors import CacheError
from multispa.geometry.proximity import closest_point_distances, distances_to_set
from multispa.tasks.object_size import (
    excluded_problem,
    label_key,
    naming_problem,
    scene_label_counts,
)

__all__ = [
    "SEEN_MIN_VERTICES",
    "NViewScene",
    "ViewSetState",
    "object_states",
]

SEEN_MIN_VERTICES = 50  # seen: at least max(50, 5 %) of the object's vertices visible
_SEEN_PER = 20  # 20·c ≥ n  ⟺  c ≥ 0.05·n
_ABSENT_PER = 200  # 200·c < n  ⟺  c < 0.005·n
#: Characters that would make a label ambiguous in a list of options (``A. x; B. y, z``).
_OPTION_SEPARATORS = (",", ";")


def object_states(counts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seen and absent masks of objects in views (module docstring).

    Args:
        counts: ``(n, N)`` int visible vertices of each object in each view.
        sizes: ``(n,)`` int vertices of each object.

    Returns:
        ``seen``, ``absent``: ``(n, N)`` bool.

    >>> seen, absent = object_states(np.array([[50, 4, 5], [60, 0, 1]]), np.array([1000, 1300]))
    >>> seen.tolist(), absent.tolist()
    ([[True, False, False], [False, False, False]], [[False, True, False], [False, True, True]])
    """
    c = np.asarray(counts, dtype=np.int64)
    n = np.asarray(sizes, dtype=np.int64)[:, None]
    return (c >= SEEN_MIN_VERTICES) & (_SEEN_PER * c >= n), _ABSENT_PER * c < n


@dataclass
class NViewScene:
    """The objects of one prepared ScanNet scene (module docstring).

    Attributes:
        path: the scene's cache folder.
        frame_index: ``(F,)`` int64 original index of each kept frame.
        world_from_cam: ``(F, 4, 4)`` float64 aligned camera poses.
        width, height: colour image size, pixels.
        ids: ``(n,)`` int64 ``objectId`` of each object (rule 8g exclusions removed).
        labels: the shown label of each object.
        nameable: ``(n,)`` bool.
        listable: ``(n,)`` bool, nameable with a label that can stand in a list of options
            (no ``,`` or ``;``).
        sizes: ``(n,)`` int64 vertex count of each object.
        centres: ``(n, 3)`` float64 oriented-box centres, metres.
        counts: ``(n, F)`` int32 visible vertices of each object per kept frame.
    """

    path: Path
    frame_index: np.ndarray
    world_from_cam: np.ndarray
    width: int
    height: int
    ids: np.ndarray
    labels: list[str]
    nameable: np.ndarray
    listable: np.ndarray
    sizes: np.ndarray
    centres: np.ndarray
    counts: np.ndarray
    _cache: ScanNetCache | None = field(default=None, repr=False)
    _trees: dict[int, cKDTree] = field(default_factory=dict, repr=False)
    _distances: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def load(cls, path: Path, cache: ScanNetCache | None = None) -> NViewScene:
        """Read the scene's cache (arrays memory-mapped; vertices read when first needed)."""
        cache = cache if cache is not None else load_scannet_cache(Path(path))
        rows = cache.objects
        same = scene_label_counts(rows)
        kept = [r for r, obj in enumerate(rows) if excluded_problem(obj) is None]
        labels = [label_key(rows[r]) for r in kept]
        nameable = np.array(
            [naming_problem(rows[r], same[label_key(rows[r])]) is None for r in kept], dtype=bool
        )
        listable = nameable & np.array(
            [not any(sep in label for sep in _OPTION_SEPARATORS) for label in labels], dtype=bool
        )
        counts = np.asarray(cache.object_visible_counts)
        frames = np.asarray(cache.frame_index, dtype=np.int64)
        if counts.shape != (len(rows), frames.size):
            raise CacheError(f"{cache.path}: object_visible_counts.npy has shape {counts.shape}, "
                             f"expected ({len(rows)}, {frames.size})")
        intrinsics = cache.meta["color_intrinsics"]
        return cls(
            path=Path(cache.path),
            frame_index=frames,
            world_from_cam=np.asarray(cache.world_from_cam, dtype=np.float64),
            width=int(intrinsics["width"]),
            height=int(intrinsics["height"]),
            ids=np.array([int(rows[r]["object_id"]) for r in kept], dtype=np.int64),
            labels=labels,
            nameable=nameable,
            listable=listable,
            sizes=np.array([int(rows[r]["num_vertices"]) for r in kept], dtype=np.int64),
            centres=np.array([rows[r]["box"]["centre"] for r in kept],
                             dtype=np.float64).reshape(-1, 3),
            counts=np.asarray(counts[kept] if kept else counts[:0], dtype=np.int32),
            _cache=cache,
        )

    # ---------------------------------------------------------------------------- look-ups

    @cached_property
    def index_of_id(self) -> dict[int, int]:
        """``objectId`` → position in :attr:`ids`."""
        return {int(i): k for k, i in enumerate(self.ids.tolist())}

    @cached_property
    def by_label(self) -> dict[str, list[int]]:
        """Shown label → positions of its objects, in id order."""
        groups: dict[str, list[int]] = {}
        for k, label in enumerate(self.labels):
            groups.setdefault(label, []).append(k)
        return groups

    def positions_of(self, frames: Sequence[int]) -> np.ndarray:
        """Kept-frame positions ``(N,)`` of original frame indices.

        Raises:
            CacheError: a frame is not a kept frame of this scene.
        """
        lookup = {int(f): p for p, f in enumerate(self.frame_index.tolist())}
        missing = [int(f) for f in frames if int(f) not in lookup]
        if missing:
            raise CacheError(f"{self.path}: frame {missing[0]} is not a kept frame")
        return np.array([lookup[int(f)] for f in frames], dtype=np.int64)

    def state(self, frames: Sequence[int]) -> ViewSetState:
        """The objects' states in the view set of original ``frames`` (capture order)."""
        positions = self.positions_of(frames)
        seen, absent = object_states(self.counts[:, positions], self.sizes)
        return ViewSetState(self, tuple(int(f) for f in frames), positions, seen, absent)

    # ---------------------------------------------------------------------------- geometry

    @cached_property
    def _vertex_slices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices grouped by object id: ``(order, ids in that order, all vertices)``."""
        if self._cache is None:
            raise CacheError(f"{self.path}: scene loaded without its cache arrays")
        instance = np.asarray(self._cache.instance_ids, dtype=np.int64)
        order = np.argsort(instance, kind="stable")
        return order, instance[order], np.asarray(self._cache.vertices)

    def points(self, k: int) -> np.ndarray:
        """``(n_k, 3)`` float64 mesh vertices of object ``k`` (aligned world, metres)."""
        order, sorted_ids, vertices = self._vertex_slices
        object_id = int(self.ids[k])
        start = int(np.searchsorted(sorted_ids, object_id, side="left"))
        stop = int(np.searchsorted(sorted_ids, object_id, side="right"))
        if stop == start:
            raise CacheError(f"{self.path}: object {object_id} has no vertex in instance_ids.npy")
        return np.asarray(vertices[np.sort(order[start:stop])], dtype=np.float64)

    def tree(self, k: int) -> cKDTree:
        """k-d tree of :meth:`points` ``(k)`` (built once)."""
        tree = self._trees.get(k)
        if tree is None:
            tree = self._trees[k] = cKDTree(self.points(k))
        return tree

    def distances(self) -> np.ndarray:
        """``(n, n)`` closest-point distances between nameable objects, metres (NaN where an
        object is not nameable); computed on first use, then kept."""
        if self._distances is None:
            count = self.ids.size
            out = np.full((count, count), np.nan, dtype=np.float64)
            named = np.flatnonzero(self.nameable).tolist()
            if named:
                sets = [self.points(k) for k in named]
                trees = [self.tree(k) for k in named]
                out[np.ix_(named, named)] = closest_point_distances(sets, trees)
            self._distances = out
        return self._distances

    def camera_distances(self, k: int, positions: np.ndarray) -> np.ndarray:
        """``(N,)`` distance from each view's camera centre to the nearest point of object
        ``k``, metres."""
        centres = self.world_from_cam[np.asarray(positions), :3, 3]
        return distances_to_set(centres, self.points(k), self.tree(k))


@dataclass(frozen=True)
class ViewSetState:
    """The objects of a scene in one view set.

    Attributes:
        scene: the scene.
        frames: original frame indices of the views, capture order (``Image-1`` first).
        positions: ``(N,)`` kept-frame positions of the views.
        seen, absent: ``(n, N)`` bool per object and view.
    """

    scene: NViewScene
    frames: tuple[int, ...]
    positions: np.ndarray
    seen: np.ndarray
    absent: np.ndarray

    @cached_property
    def seen_any(self) -> np.ndarray:
        """``(n,)`` bool: seen in at least one view."""
        return self.seen.any(axis=1)

    @cached_property
    def absent_all(self) -> np.ndarray:
        """``(n,)`` bool: absent from every view."""
        return self.absent.all(axis=1)

    @cached_property
    def first_seen(self) -> np.ndarray:
        """``(n,)`` int64 0-based first view where each object is seen (−1: never)."""
        first = np.argmax(self.seen, axis=1)
        return np.where(self.seen_any, first, -1).astype(np.int64)

    @cached_property
    def absent_before_first(self) -> np.ndarray:
        """``(n,)`` bool: seen, and absent from every view before its first-seen view."""
        views = np.arange(self.seen.shape[1])
        before = views[None, :] < self.first_seen[:, None]
        return self.seen_any & np.all(self.absent | ~before, axis=1)

    @cached_property
    def named_seen(self) -> np.ndarray:
        """``(m,)`` int64 positions of the nameable objects seen in the view set (id order)."""
        return np.flatnonzero(self.scene.nameable & self.seen_any)

    @cached_property
    def camera_centres(self) -> np.ndarray:
        """``(N, 3)`` float64 camera centres of the views, aligned world, metres."""
        return self.scene.world_from_cam[self.positions, :3, 3]


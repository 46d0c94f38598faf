"""One scene's objects for the N-view family, and their states in a view set.

Objects are the rows of ``objects.json`` not excluded by rule (g)
(:func:`multispa.tasks.object_size.excluded_problem`: structural labels, no vertex, largest box
dimension under 0.1 m). An object is **nameable** when its label is unique in the scene, by the
rule object size uses (:func:`multispa.tasks.object_size.naming_problem`, with
:func:`~multispa.tasks.object_size.scene_label_counts` and, with a label map, the NYU40 class
counts of :func:`~multispa.tasks.object_size.scene_class_counts`; rule (n)). Labels are shown as
:func:`~multispa.tasks.object_size.label_key` gives them: the raw label, stripped, lower-cased.

States (from the cached per-frame visible counts ``c`` of an object of ``n`` vertices, exact
integer tests):

- **seen** in a view when ``c ≥ max(50, 0.05·n)``: ``c ≥ 50`` and ``20·c ≥ n``;
- **absent** from a view when ``c < 0.005·n``: ``200·c < n``;
- **glimpsed** otherwise. In a view set, an object is seen if seen in some view, absent if absent
  from every view, and glimpsed if neither.

Geometry (aligned world, metres): ``P_o`` the object's mesh vertices, ``c_o`` its oriented-box
centre. Closest-point distances between objects are computed once per pair and scene, when first
needed (:meth:`NViewScene.distance`, with a k-d tree, :mod:`multispa.geometry.proximity`), and
kept in memory for the life of the scene object (one scene of a plan, or one generate unit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from multispa.cache.files import read_json, read_npy
from multispa.cache.scannet_cache import ScanNetCache
from multispa.errors import CacheError
from multispa.geometry.proximity import PointIndex, index_points, indexed_distance
from multispa.tasks.object_size import (
    excluded_problem,
    label_key,
    naming_problem,
    same_class_count,
    scene_class_counts,
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


class NViewScene:
    """The objects and cameras of one prepared ScanNet scene (module docstring).

    Only the poses, frame index and image size are read up front; the object table and its
    per-frame visible counts when first needed, the mesh vertices when a distance is first asked,
    and each distance once. ``cache``, when given, is the scene's already opened cache (the
    planner has it for the view sets).

    Attributes:
        path: the scene's cache folder.
        frame_index: ``(F,)`` int64 original index of each kept frame.
        world_from_cam: ``(F, 4, 4)`` float64 aligned camera poses.
        width, height: colour image size, pixels.
    """

    def __init__(self, path: Path, cache: ScanNetCache | None = None) -> None:
        self.path = Path(path)
        self._cache = cache
        if cache is not None:
            frames, poses, meta = cache.frame_index, cache.world_from_cam, cache.meta
        else:
            frames = read_npy(self.path / "frame_index.npy", mmap=False)
            poses = read_npy(self.path / "world_from_cam.npy", mmap=False)
            meta = read_json(self.path / "meta.json")
        self.frame_index = np.asarray(frames, dtype=np.int64)
        self.world_from_cam = np.asarray(poses, dtype=np.float64)
        self.width = int(meta["color_intrinsics"]["width"])
        self.height = int(meta["color_intrinsics"]["height"])
        self._distances: dict[tuple[int, int], float] = {}

    @classmethod
    def load(cls, path: Path, cache: ScanNetCache | None = None) -> NViewScene:
        """The scene of cache folder ``path`` (``cache``: its already opened arrays)."""
        return cls(path, cache)

    def _array(self, name: str) -> np.ndarray:
        """A cache array: from the opened cache when given, else memory-mapped from its file."""
        if self._cache is not None:
            return np.asarray(getattr(self._cache, name))
        return read_npy(self.path / f"{name}.npy")

    # ---------------------------------------------------------------------------- objects

    @cached_property
    def _table(self) -> dict[str, Any]:
        rows = (self._cache.objects if self._cache is not None
                else read_json(self.path / "objects.json"))
        same = scene_label_counts(rows)
        classes = scene_class_counts(rows)
        kept = [r for r, obj in enumerate(rows) if excluded_problem(obj) is None]
        labels = [label_key(rows[r]) for r in kept]
        nameable = np.array(
            [
                naming_problem(
                    rows[r], same[label_key(rows[r])], same_class_count(rows[r], classes)
                ) is None
                for r in kept
            ],
            dtype=bool,
        )
        listable = nameable & np.array(
            [not any(sep in label for sep in _OPTION_SEPARATORS) for label in labels], dtype=bool
        )
        counts = self._array("object_visible_counts")
        if counts.shape != (len(rows), self.frame_index.size):
            raise CacheError(f"{self.path}: object_visible_counts.npy has shape {counts.shape}, "
                             f"expected ({len(rows)}, {self.frame_index.size})")
        return {
            "ids": np.array([int(rows[r]["object_id"]) for r in kept], dtype=np.int64),
            "labels": labels,
            "nameable": nameable,
            "listable": listable,
            "sizes": np.array([int(rows[r]["num_vertices"]) for r in kept], dtype=np.int64),
            "centres": np.array([rows[r]["box"]["centre"] for r in kept],
                                dtype=np.float64).reshape(-1, 3),
            "counts": np.asarray(counts[kept] if kept else counts[:0], dtype=np.int32),
        }

    @property
    def ids(self) -> np.ndarray:
        """``(n,)`` int64 ``objectId`` of each object (rule (g) exclusions removed)."""
        return self._table["ids"]

    @property
    def labels(self) -> list[str]:
        """The shown label of each object."""
        return self._table["labels"]

    @property
    def nameable(self) -> np.ndarray:
        """``(n,)`` bool: the label is unique in the scene."""
        return self._table["nameable"]

    @property
    def listable(self) -> np.ndarray:
        """``(n,)`` bool: nameable with a label that can stand in a list of options (no ``,``
        or ``;``)."""
        return self._table["listable"]

    @property
    def sizes(self) -> np.ndarray:
        """``(n,)`` int64 vertex count of each object."""
        return self._table["sizes"]

    @property
    def centres(self) -> np.ndarray:
        """``(n, 3)`` float64 oriented-box centres, metres."""
        return self._table["centres"]

    @property
    def counts(self) -> np.ndarray:
        """``(n, F)`` int32 visible vertices of each object per kept frame."""
        return self._table["counts"]

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

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {int(f): p for p, f in enumerate(self.frame_index.tolist())}

    def positions_of(self, frames: Sequence[int]) -> np.ndarray:
        """Kept-frame positions ``(N,)`` of original frame indices.

        Raises:
            CacheError: a frame is not a kept frame of this scene.
        """
        lookup = self._positions
        missing = [int(f) for f in frames if int(f) not in lookup]
        if missing:
            raise CacheError(f"{self.path}: frame {missing[0]} is not a kept frame")
        return np.array([lookup[int(f)] for f in frames], dtype=np.int64)

    def state(self, frames: Sequence[int]) -> ViewSetState:
        """The view set of original ``frames`` (capture order); object states on first use."""
        return ViewSetState(self, tuple(int(f) for f in frames), self.positions_of(frames))

    # ---------------------------------------------------------------------------- geometry

    @cached_property
    def _vertex_slices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Vertices grouped by object id: ``(order, ids in that order, all vertices)``."""
        instance = np.asarray(self._array("instance_ids"), dtype=np.int64)
        order = np.argsort(instance, kind="stable")
        return order, instance[order], self._array("vertices")

    @cached_property
    def _points(self) -> dict[int, np.ndarray]:
        return {}

    @cached_property
    def _indexes(self) -> dict[int, PointIndex]:
        return {}

    def index(self, k: int) -> PointIndex:
        """The cell index of object ``k``'s vertices (built once)."""
        found = self._indexes.get(k)
        if found is None:
            found = self._indexes[k] = index_points(self.points(k))
        return found

    def points(self, k: int) -> np.ndarray:
        """``(n_k, 3)`` float64 mesh vertices of object ``k`` (aligned world, metres)."""
        found = self._points.get(k)
        if found is not None:
            return found
        order, sorted_ids, vertices = self._vertex_slices
        object_id = int(self.ids[k])
        start = int(np.searchsorted(sorted_ids, object_id, side="left"))
        stop = int(np.searchsorted(sorted_ids, object_id, side="right"))
        if stop == start:
            raise CacheError(f"{self.path}: object {object_id} has no vertex in instance_ids.npy")
        found = self._points[k] = np.asarray(vertices[np.sort(order[start:stop])],
                                             dtype=np.float64)
        return found

    def distance(self, a: int, b: int) -> float:
        """Closest-point distance between objects ``a`` and ``b`` (positions), metres; each
        pair is computed once."""
        key = (a, b) if a < b else (b, a)
        value = self._distances.get(key)
        if value is None:
            value = self._distances[key] = indexed_distance(self.index(a), self.index(b))
        return value

    def precompute_distances(self) -> None:
        """Compute the closest-point distance of every pair of nameable objects now (the
        scene-level cost a plan pays once, before the questions of its view sets)."""
        named = np.flatnonzero(self.nameable).tolist()
        for i, a in enumerate(named):
            for b in named[i + 1:]:
                self.distance(a, b)

    def distances(self, rows: Sequence[int], columns: Sequence[int]) -> np.ndarray:
        """``(len(rows), len(columns))`` closest-point distances, metres (0 on ``a == b``)."""
        out = np.zeros((len(rows), len(columns)), dtype=np.float64)
        for i, a in enumerate(rows):
            for j, b in enumerate(columns):
                if a != b:
                    out[i, j] = self.distance(int(a), int(b))
        return out

    def camera_distances(self, k: int, positions: np.ndarray) -> np.ndarray:
        """``(N,)`` distance from each view's camera centre to the nearest point of object
        ``k``, metres."""
        centres = self.world_from_cam[np.asarray(positions), :3, 3]
        return np.asarray(self.index(k).point_tree.query(centres, k=1)[0], dtype=np.float64)


@dataclass(frozen=True)
class ViewSetState:
    """The objects of a scene in one view set.

    Attributes:
        scene: the scene.
        frames: original frame indices of the views, capture order (``Image-1`` first).
        positions: ``(N,)`` kept-frame positions of the views.
    """

    scene: NViewScene
    frames: tuple[int, ...]
    positions: np.ndarray

    @cached_property
    def _states(self) -> tuple[np.ndarray, np.ndarray]:
        return object_states(self.scene.counts[:, self.positions], self.scene.sizes)

    @property
    def seen(self) -> np.ndarray:
        """``(n, N)`` bool: object seen in view."""
        return self._states[0]

    @property
    def absent(self) -> np.ndarray:
        """``(n, N)`` bool: object absent from view."""
        return self._states[1]

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

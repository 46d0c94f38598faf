"""The walkable floor of a furnished room: clearances, a grid graph and shortest routes.

Distances are horizontal (world xy, metres, aligned world with +z up); an object's footprint is
its box's length × width in its own horizontal frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from multispa.synth.world import PlacedObject

GRID_STEP_M = 0.1
"""Spacing of the free-space grid that routes are planned on."""
ROUTE_CLEARANCE_M = 0.42
"""Horizontal clearance of route cells and standpoints from every footprint and wall."""


def to_local(obj: PlacedObject, points_xy: np.ndarray) -> np.ndarray:
    """Points ``(n, 2)`` (world xy) in the object's horizontal frame ``(n, 2)``."""
    return (points_xy - obj.world_from_object[:2, 3]) @ obj.world_from_object[:2, :2]


def half_xy(obj: PlacedObject) -> np.ndarray:
    """Half length and half width ``(2,)`` of the object's footprint, metres."""
    return np.array([obj.model.length_m, obj.model.width_m]) / 2


def footprint_distance(obj: PlacedObject, points_xy: np.ndarray) -> np.ndarray:
    """Horizontal distance ``(n,)`` from points ``(n, 2)`` to the object's footprint (0 inside)."""
    outside = np.maximum(np.abs(to_local(obj, points_xy)) - half_xy(obj), 0.0)
    return np.hypot(outside[:, 0], outside[:, 1])


def clearance(
    points_xy: np.ndarray, objects: Sequence[PlacedObject], room_max: np.ndarray
) -> np.ndarray:
    """Horizontal distance ``(n,)`` from points ``(n, 2)`` to the nearest footprint or wall."""
    distance = np.minimum.reduce(
        [points_xy[:, 0], points_xy[:, 1], room_max[0] - points_xy[:, 0],
         room_max[1] - points_xy[:, 1]]
    )  # fmt: skip
    for obj in objects:
        distance = np.minimum(distance, footprint_distance(obj, points_xy))
    return distance


@dataclass(frozen=True)
class FreeSpace:
    """The room floor as a grid of cells, with the walkable ones linked into a graph.

    Attributes:
        points: ``(n, 2)`` float64 cell centres (world xy, metres).
        clear: ``(n,)`` float64 horizontal clearance of each cell (``clearance``), metres.
        walkable: ``(n,)`` bool, clearance ≥ ``ROUTE_CLEARANCE_M``.
        graph: ``(n, n)`` sparse 8-neighbour edges between walkable cells, weights in metres.
    """

    points: np.ndarray
    clear: np.ndarray
    walkable: np.ndarray
    graph: csr_matrix

    def distances(self, cell: int) -> tuple[np.ndarray, np.ndarray]:
        """Route lengths ``(n,)`` (metres, inf where unreachable) from ``cell`` and the
        predecessor of every cell on its shortest route ``(n,)`` (−9999 for none)."""
        distance, predecessor = dijkstra(
            self.graph, directed=False, indices=cell, return_predecessors=True
        )
        return distance, predecessor

    def nearest_walkable(self, point_xy: np.ndarray) -> int:
        """Index of the walkable cell nearest to ``point_xy`` (``(2,)``)."""
        distance = np.linalg.norm(self.points - point_xy, axis=1)
        distance[~self.walkable] = np.inf
        return int(np.argmin(distance))


def free_space(objects: Sequence[PlacedObject], room_max: np.ndarray) -> FreeSpace:
    """Grid cells of the room and the walking graph between cells ≥ 0.42 m from everything."""
    xs = np.arange(GRID_STEP_M / 2, room_max[0], GRID_STEP_M)
    ys = np.arange(GRID_STEP_M / 2, room_max[1], GRID_STEP_M)
    nx, ny = xs.size, ys.size
    points = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
    clear = clearance(points, objects, room_max)
    walkable = clear >= ROUTE_CLEARANCE_M
    ok = walkable.reshape(nx, ny)
    ids = np.arange(nx * ny).reshape(nx, ny)
    sources, targets, weights = [], [], []
    for di, dj in ((1, 0), (0, 1), (1, 1), (1, -1)):
        j0, j1 = max(0, -dj), ny - max(0, dj)
        both = ok[: nx - di, j0:j1] & ok[di:, j0 + dj : j1 + dj]
        sources.append(ids[: nx - di, j0:j1][both])
        targets.append(ids[di:, j0 + dj : j1 + dj][both])
        weights.append(np.full(int(both.sum()), GRID_STEP_M * float(np.hypot(di, dj))))
    graph = coo_matrix(
        (np.concatenate(weights), (np.concatenate(sources), np.concatenate(targets))),
        shape=(nx * ny, nx * ny),
    ).tocsr()
    return FreeSpace(points, clear, walkable, graph)


def segment_clear(
    a: np.ndarray, b: np.ndarray, objects: Sequence[PlacedObject], room_max: np.ndarray
) -> bool:
    """Whether the straight segment a→b keeps ``ROUTE_CLEARANCE_M`` (sampled every 5 cm)."""
    count = max(2, int(np.ceil(np.linalg.norm(b - a) / 0.05)) + 1)
    samples = a + np.linspace(0.0, 1.0, count)[:, None] * (b - a)
    return bool(clearance(samples, objects, room_max).min() >= ROUTE_CLEARANCE_M - 1e-9)


def route_polyline(
    space: FreeSpace,
    predecessor: np.ndarray,
    goal: int,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
) -> np.ndarray:
    """The shortest route ``(k, 2)`` to cell ``goal`` from the source of ``predecessor``
    (source first), with grid zig-zags cut short where a straight segment stays clear."""
    cells = [goal]
    while predecessor[cells[-1]] >= 0:
        cells.append(int(predecessor[cells[-1]]))
    points = space.points[np.array(cells[::-1])]
    kept = [0]
    while kept[-1] < len(points) - 1:
        far = len(points) - 1
        while far > kept[-1] + 1 and not segment_clear(
            points[kept[-1]], points[far], objects, room_max
        ):
            far -= 1
        kept.append(far)
    return points[np.array(kept)]

"""A room tour: the camera crosses the room while turning once around.

The hand-held scan (:mod:`multispa.synth.camera`) visits a few objects up close; the N-view
questions ask about the whole room, which needs views of every part of it from places far apart.
After the scan, each synthetic scene therefore adds a tour: the camera walks the shortest free
route (:mod:`multispa.synth.free_space`, at least 0.42 m from every footprint and wall) from the
freest spot of the floor to the walkable spot farthest from it along that route, at constant
speed, while its yaw turns steadily through 360° at eye height with a slight downward pitch.
Objects come into view one after another, every wall is seen, and views of one object come from
camera centres metres apart. A room without walkable floor gets a turn on the spot at its freest
point.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multispa.synth.camera_pose import look_rotation, poses_from
from multispa.synth.free_space import clearance, free_space, route_polyline
from multispa.synth.world import PlacedObject

__all__ = ["room_tour", "tour_route"]

_SPOTS = 400  # random floor points tried for a turn on the spot


def tour_route(objects: Sequence[PlacedObject], room_max: np.ndarray,
               rng: np.random.Generator) -> np.ndarray:
    """The tour's walking route ``(k, 2)`` (world xy, metres; ``k = 1`` for a turn on the spot).

    From the walkable cell of largest clearance to the walkable cell farthest from it along the
    free-space graph; the freest of ``_SPOTS`` random points when nothing is walkable.
    """
    room = np.asarray(room_max, dtype=np.float64)
    space = free_space(objects, room)
    if not space.walkable.any():
        spots = rng.uniform([0.3, 0.3], room[:2] - 0.3, (_SPOTS, 2))
        return spots[int(np.argmax(clearance(spots, objects, room)))][None, :]
    start = int(np.argmax(np.where(space.walkable, space.clear, -np.inf)))
    distance, predecessor = space.distances(start)
    reach = np.where(space.walkable & np.isfinite(distance), distance, -np.inf)
    end = int(np.argmax(reach))
    if end == start:
        return space.points[start][None, :]
    return route_polyline(space, predecessor, end, objects, room)


def room_tour(
    rng: np.random.Generator, objects: Sequence[PlacedObject], room_max: np.ndarray,
    num_frames: int, height_m: float,
) -> np.ndarray:
    """Camera poses ``(num_frames, 4, 4)`` float64 (aligned world) of the tour (module docstring).

    Args:
        rng: the tour's generator (the starting yaw; the fallback spot).
        objects: the placed objects (their footprints bound the free floor).
        room_max: ``(3,)`` the room spans ``[0, room_max]``, metres.
        num_frames: frames of the tour (0 gives an empty array).
        height_m: camera height, metres.
    """
    if num_frames <= 0:
        return np.zeros((0, 4, 4), dtype=np.float64)
    route = tour_route(objects, room_max, rng)
    steps = np.linalg.norm(np.diff(route, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    where = np.linspace(0.0, float(along[-1]), num_frames)
    centre = np.column_stack([np.interp(where, along, route[:, k]) for k in range(2)])
    start = float(rng.uniform(0.0, 360.0))
    yaw = start + np.linspace(0.0, 360.0, num_frames, endpoint=False)
    pitch = -24.0 + 6.0 * np.sin(np.radians(2.0 * (yaw - start)))
    centres = np.column_stack([centre, np.full(num_frames, height_m)])
    return poses_from(look_rotation(yaw, pitch, np.zeros(num_frames)), centres)

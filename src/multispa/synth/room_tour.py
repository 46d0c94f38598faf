"""A room tour: after the hand-held scan, the camera walks on across the room while turning round.

The hand-held scan (:mod:`multispa.synth.camera`) visits a few objects up close; the N-view
questions ask about the whole room, which needs views of every part of it from places apart. Each
synthetic scene therefore continues its scan with a tour: from where the scan ended, the camera
walks at 0.8 m/s along the shortest free route (:mod:`multispa.synth.free_space`, at least 0.42 m
from every footprint and wall) towards the walkable spot farthest from there, while its yaw turns
steadily through a full 360° from the scan's last heading and its pitch eases into a slow nod
between −26° (the floor and the furniture) and +2° (the walls). Objects come into view one after
another and every wall is seen. The motion stays hand-held-like: the centre moves under 3 cm per
frame at 30 fps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from multispa.synth.camera_pose import look_rotation, poses_from
from multispa.synth.free_space import free_space, route_polyline
from multispa.synth.world import PlacedObject

__all__ = ["TOUR_SPEED_M_S", "room_tour", "tour_route"]

TOUR_SPEED_M_S = 0.8
"""Walking speed of the tour, metres per second."""
_EASE_FRAMES = 15  # frames over which the pitch eases from the scan's last pitch


def tour_route(objects: Sequence[PlacedObject], room_max: np.ndarray,
               start_xy: np.ndarray) -> np.ndarray:
    """The tour's route ``(k, 2)`` (world xy, metres), starting at ``start_xy``.

    From ``start_xy`` to the nearest walkable cell, then along the free-space graph to the
    walkable cell farthest from that one; just ``start_xy`` when nothing is walkable.
    """
    room = np.asarray(room_max, dtype=np.float64)
    start = np.asarray(start_xy, dtype=np.float64).reshape(1, 2)
    space = free_space(objects, room)
    if not space.walkable.any():
        return start
    first = space.nearest_walkable(start[0])
    distance, predecessor = space.distances(first)
    end = int(np.argmax(np.where(space.walkable & np.isfinite(distance), distance, -np.inf)))
    route = route_polyline(space, predecessor, end, objects, room)
    return np.concatenate([start, route])


def room_tour(
    objects: Sequence[PlacedObject], room_max: np.ndarray, num_frames: int, fps: float,
    last_pose: np.ndarray,
) -> np.ndarray:
    """Camera poses ``(num_frames, 4, 4)`` float64 (aligned world) of the tour.

    Args:
        objects: the placed objects (their footprints bound the free floor).
        room_max: ``(3,)`` the room spans ``[0, room_max]``, metres.
        num_frames: frames of the tour (0 gives an empty array).
        fps: frame rate, frames per second.
        last_pose: ``(4, 4)`` the scan's last pose, where the tour starts.
    """
    if num_frames <= 0:
        return np.zeros((0, 4, 4), dtype=np.float64)
    pose = np.asarray(last_pose, dtype=np.float64)
    forward = pose[:3, 2]
    start_yaw = float(np.degrees(np.arctan2(forward[1], forward[0])))
    start_pitch = float(np.degrees(np.arcsin(np.clip(forward[2], -1.0, 1.0))))
    route = tour_route(objects, room_max, pose[:2, 3])
    along = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(route, axis=0), axis=1))])
    steps = np.arange(1, num_frames + 1, dtype=np.float64)
    where = np.minimum(steps * TOUR_SPEED_M_S / fps, along[-1])
    xy = np.column_stack([np.interp(where, along, route[:, k]) for k in range(2)])
    yaw = start_yaw + 360.0 * steps / num_frames
    settle = -12.0 + 14.0 * np.sin(np.radians(3.0 * 360.0 * steps / num_frames))
    blend = np.minimum(steps / _EASE_FRAMES, 1.0)
    pitch = (1.0 - blend) * start_pitch + blend * settle
    centres = np.column_stack([xy, np.full(num_frames, pose[2, 3])])
    return poses_from(look_rotation(yaw, pitch, np.zeros(num_frames)), centres)

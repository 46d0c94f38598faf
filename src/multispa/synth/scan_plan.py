"""Planning one hand-held scan of a room as a sequence of visits to its objects.

A visit walks a shortest route through free space to a standpoint near its target, sidesteps
along it and looks at it (``multispa.synth.gaze``); ``plan_scan`` fills a scan's duration with
visits and returns its centre waypoints and look-at keyframes (a ``ScanPlan``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.synth.free_space import (
    FreeSpace,
    footprint_distance,
    free_space,
    half_xy,
    route_polyline,
    segment_clear,
    to_local,
)
from multispa.synth.gaze import (
    PITCH_RATE_DEG_S,
    YAW_RATE_DEG_S,
    Look,
    Side,
    view_angles,
    visit_looks,
)
from multispa.synth.world import PlacedObject

STAND_DISTANCE_M = (0.55, 0.95)
"""Distance range of a visit's standpoint from its target's footprint."""
DWELL_S = 0.25
"""Shortest time between two look-at keyframes."""
INSPECT_S = 1.3
"""Time spent sidestepping along a visit's target (the last visit takes what is left)."""
PIVOT_PROBABILITY = 0.5
"""Chance that a visit, after one or two looks at its target, turns to a neighbouring object."""
STRUCTURAL_TARGETS = frozenset({"window"})
"""Labels never chosen as visit targets."""


def target_weights(objects: Sequence[PlacedObject]) -> np.ndarray:
    """Preference ``(n,)`` of each object as a visit target: the square root of its box volume
    (bulkier pieces get more attention), less for objects sharing a label, 0 for windows."""
    counts = Counter(obj.model.label for obj in objects)
    weights = np.zeros(len(objects))
    for k, obj in enumerate(objects):
        model = obj.model
        if model.label in STRUCTURAL_TARGETS:
            continue
        weights[k] = float(np.sqrt(model.length_m * max(model.width_m, 0.1) * model.height_m))
        if counts[model.label] > 1:
            weights[k] *= 0.3
    return weights


@dataclass
class ScanPlan:
    """A scan being planned: centre waypoints with times and look-at keyframes."""

    times: list[float]
    points: list[np.ndarray]
    gaze_times: list[float]
    gaze_points: list[np.ndarray]
    gaze_pitch: list[float]

    def add_walk(self, polyline: np.ndarray, start_s: float, end_s: float) -> None:
        """Walk ``polyline`` ``(k, 2)`` at constant speed from ``start_s`` to ``end_s``."""
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(polyline, axis=0), axis=1))])
        fraction = arc / arc[-1] if arc[-1] > 0 else np.linspace(0.0, 1.0, len(arc))
        for point, f in zip(polyline[1:], fraction[1:], strict=True):
            self.times.append(start_s + f * (end_s - start_s))
            self.points.append(point)

    def add_look(self, time_s: float, look: Look, eye: np.ndarray) -> tuple[float, float]:
        """Make ``look`` from ``eye`` ``(3,)`` at ``time_s``; returns its yaw and pitch."""
        point, pitch = look.resolve(eye)
        self.gaze_times.append(time_s)
        self.gaze_points.append(point)
        self.gaze_pitch.append(pitch)
        return view_angles(eye, look)

    def eye(self, time_s: float, eye_height_m: float) -> np.ndarray:
        """Planned eye position ``(3,)`` at ``time_s``."""
        return np.array([*self.position(time_s), eye_height_m])

    def position(self, time_s: float) -> np.ndarray:
        """Planned centre ``(2,)`` at ``time_s`` (piecewise linear)."""
        times = np.asarray(self.times)
        points = np.asarray(self.points)
        return np.array([np.interp(time_s, times, points[:, k]) for k in range(2)])


def _standpoints(
    space: FreeSpace, obj: PlacedObject, reach: np.ndarray, reach_range: tuple[float, float]
) -> np.ndarray:
    """Walkable cells ``(m,)`` 0.55–0.95 m from ``obj`` whose route length from the current
    position (``reach``, metres) lies in ``reach_range``."""
    distance = footprint_distance(obj, space.points)
    ok = (
        space.walkable
        & (distance >= STAND_DISTANCE_M[0])
        & (distance <= STAND_DISTANCE_M[1])
        & (reach >= reach_range[0])
        & (reach <= reach_range[1])
    )
    return np.flatnonzero(ok)


def _pick_standpoint(
    rng: np.random.Generator,
    space: FreeSpace,
    obj: PlacedObject,
    cells: np.ndarray,
    depth_axis: int | None = None,
) -> int:
    """One of ``cells``, favouring a distance near 0.7 m in front of one of the faces (across
    a long side, ``depth_axis`` 1, or a short end, 0, if given and possible)."""
    distance = footprint_distance(obj, space.points[cells])
    beyond = np.abs(to_local(obj, space.points[cells])) > half_xy(obj)
    facing = beyond[:, 0] != beyond[:, 1]  # in front of a face, not off a corner
    # Off a narrow end, too little of the target is in view to show it in part.
    end_weight = 1.0 if obj.model.width_m >= 0.45 else 0.1
    weight = (
        np.exp(-(((distance - 0.7) / 0.15) ** 2))
        * np.where(facing, 1.0, 0.05)
        * np.where(beyond[:, 0] & ~beyond[:, 1], end_weight, 1.0)
    )
    if depth_axis is not None and np.any(facing & beyond[:, depth_axis]):
        weight = weight * (facing & beyond[:, depth_axis])
    return int(cells[rng.choice(cells.size, p=weight / weight.sum())])


def first_visits(
    objects: Sequence[PlacedObject], rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(object position, depth axis) of first visits to try, in a random order weighted by
    ``target_weights`` (across a short end only for targets at least 0.45 m wide)."""
    weights = target_weights(objects)
    choices = [
        (k, axis, weights[k] * (1.0 if axis == 1 else 0.6))
        for k in range(len(objects))
        for axis in (1, 0)
        if weights[k] > 0 and (axis == 1 or objects[k].model.width_m >= 0.45)
    ]
    if not choices:
        return []
    keys = rng.uniform(size=len(choices)) ** (1.0 / np.array([c[2] for c in choices]))
    return [(choices[i][0], choices[i][1]) for i in np.argsort(-keys, kind="stable")]


def _side(
    rng: np.random.Generator,
    obj: PlacedObject,
    stand_xy: np.ndarray,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    step_m: float,
) -> tuple[Side, np.ndarray]:
    """How ``stand_xy`` faces ``obj`` and the end of a clear sidestep of up to ``step_m``."""
    local = to_local(obj, stand_xy[None])[0]
    excess = np.abs(local) - half_xy(obj)
    depth_axis = int(np.argmax(excess))
    tangent_world = obj.world_from_object[:2, 1 - depth_axis]
    signs = [1.0, -1.0] if rng.uniform() < 0.5 else [-1.0, 1.0]
    # Step towards the middle of the target when standing beyond one of its ends.
    if abs(local[1 - depth_axis]) > 0.5 * half_xy(obj)[1 - depth_axis]:
        signs = [-float(np.sign(local[1 - depth_axis])), float(np.sign(local[1 - depth_axis]))]
    for sign in signs:
        for length in (step_m, 0.6 * step_m, 0.3 * step_m):
            end = stand_xy + sign * length * tangent_world
            if segment_clear(stand_xy, end, objects, room_max):
                return Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), sign), end
    return Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), signs[0]), stand_xy


def _neighbour_looks(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    target: int,
    weights: np.ndarray,
    position_xy: np.ndarray,
    eye_height_m: float,
) -> list[Look]:
    """Looks at another object 0.4–1.8 m from ``position_xy`` (none if there is none), seen
    from there."""
    distance = np.array(
        [float(footprint_distance(obj, position_xy[None])[0]) for obj in objects]
    )
    near = (distance >= 0.4) & (distance <= 1.8) & (weights > 0)
    near[target] = False
    if not near.any():
        return []
    chance = np.where(near, weights, 0.0)
    other = objects[int(rng.choice(len(objects), p=chance / chance.sum()))]
    local = to_local(other, position_xy[None])[0]
    depth_axis = int(np.argmax(np.abs(local) - half_xy(other)))
    side = Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), 1.0)
    return visit_looks(other, side, eye_height_m)[1]


def plan_scan(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    duration_s: float,
    walk_speed: float,
    eye_height_m: float,
    first_visit: tuple[int, int] | None = None,
) -> ScanPlan | None:
    """Visits filling ``duration_s``: walks, sidesteps and look-at keyframes, or None. The
    first visit goes to ``first_visit`` = (object position, depth axis) if given."""
    space = free_space(objects, room_max)
    weights = target_weights(objects)
    if not space.walkable.any() or weights.sum() == 0:
        return None
    visits = np.zeros(len(objects))
    plan = ScanPlan([], [], [], [], [])
    time_s = 0.0
    position: np.ndarray | None = None
    while time_s < duration_s:
        first = position is None
        left_s = duration_s - time_s
        if first:
            walk_s = min(1.6, 0.55 * duration_s)
            reach = np.zeros(space.points.shape[0])
            reach_range = (0.0, 0.0)
        else:
            assert position is not None
            reach, predecessor = space.distances(space.nearest_walkable(position))
            walk_s = min(2.2, left_s - 0.9)
            reach_range = (0.3, walk_speed * walk_s)
        chosen: tuple[int, int] | None = None
        if walk_s > 0.4:
            order = np.argsort(rng.uniform(size=len(objects)) ** (1.0 / np.maximum(
                weights / (1.0 + visits), 1e-12)))[::-1]  # weighted order, visited ones later
            if first and first_visit is not None:
                order = np.array([first_visit[0]])
            for k in order.tolist():
                if weights[k] == 0:
                    continue
                if first:
                    cells = np.flatnonzero(
                        space.walkable
                        & (footprint_distance(objects[k], space.points) >= STAND_DISTANCE_M[0])
                        & (footprint_distance(objects[k], space.points) <= STAND_DISTANCE_M[1])
                    )
                else:
                    cells = _standpoints(space, objects[k], reach, reach_range)
                if cells.size:
                    axis = first_visit[1] if first and first_visit is not None else None
                    chosen = (k, _pick_standpoint(rng, space, objects[k], cells, axis))
                    break
        if chosen is None:
            if first:
                return None
            # No reachable target in the time left: stay and look around the last target.
            plan.times.append(duration_s)
            plan.points.append(plan.points[-1])
            break
        k, stand = chosen
        target = objects[k]
        visits[k] += 1
        stand_xy = space.points[stand]
        if first:
            polyline = _first_approach(rng, space, target, stand, walk_speed * walk_s, objects,
                                       room_max)
            walk_s = max(0.5, min(walk_s, _length(polyline) / walk_speed))
            plan.times.append(0.0)
            plan.points.append(polyline[0])
        else:
            polyline = route_polyline(space, predecessor, stand, objects, room_max)
            polyline = np.concatenate([plan.points[-1][None], polyline[1:]])
            walk_s = max(0.6, _length(polyline) / walk_speed)
        plan.add_walk(polyline, time_s, time_s + walk_s)
        inspect_s = INSPECT_S if left_s - walk_s - INSPECT_S > 2.0 else left_s - walk_s
        inspect_s = max(inspect_s, 0.3)
        side, step_end = _side(rng, target, stand_xy, objects, room_max,
                               min(0.3, 0.25 * inspect_s, 0.2 * target.model.length_m))
        visit_end = time_s + walk_s + inspect_s
        plan.add_walk(np.stack([stand_xy, step_end]), time_s + walk_s, visit_end)
        # Look at the target's lower part while approaching it ...
        approach, looks = visit_looks(target, side, eye_height_m)
        floor_times = [time_s + f * walk_s for f in ((0.0, 0.2) if first else (0.15, 0.3))]
        for key_s in floor_times:
            plan.add_look(key_s, approach, plan.eye(key_s, eye_height_m))
        # ... then turn from one look to the next as fast as comfortable; half the time, after
        # one or two of them, on to a neighbouring object seen from the same place.
        if rng.uniform() < PIVOT_PROBABILITY:
            looks = looks[: int(rng.integers(1, 3))] + _neighbour_looks(
                rng, objects, k, weights, step_end, eye_height_m
            )
        key_s = floor_times[-1]
        yaw, pitch = view_angles(plan.eye(key_s, eye_height_m), approach)
        for look in looks:
            new_yaw, new_pitch = view_angles(plan.eye(key_s + DWELL_S, eye_height_m), look)
            turn = abs((new_yaw - yaw + 180.0) % 360.0 - 180.0)
            needed = max(DWELL_S, turn / (0.8 * YAW_RATE_DEG_S),
                         abs(new_pitch - pitch) / (0.8 * PITCH_RATE_DEG_S))
            if key_s + needed > visit_end:
                break
            key_s += needed
            yaw, pitch = plan.add_look(key_s, look, plan.eye(key_s, eye_height_m))
        time_s = visit_end
        position = step_end
    return plan


def _length(polyline: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(polyline, axis=0), axis=1).sum())


def _first_approach(
    rng: np.random.Generator,
    space: FreeSpace,
    target: PlacedObject,
    stand: int,
    length_m: float,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
) -> np.ndarray:
    """A route ``(k, 2)`` of about ``length_m`` that ends at ``stand`` coming from further away
    from ``target`` (the scan's start)."""
    reach, predecessor = space.distances(stand)
    away = footprint_distance(target, space.points) - footprint_distance(
        target, space.points[stand][None]
    )[0]
    cells = np.flatnonzero(
        space.walkable
        & (reach >= 0.7 * length_m)
        & (reach <= 1.2 * length_m)
        & (away >= 0.8 * length_m)
    )
    if cells.size == 0:
        cells = np.flatnonzero(
            space.walkable & (reach <= 1.2 * length_m) & (away >= 0.5 * length_m)
        )
    if cells.size == 0:
        cells = np.flatnonzero(np.isfinite(reach) & (reach <= 1.2 * length_m))
        cells = cells[away[cells] >= away[cells].max() - 1e-9]
    start = int(cells[rng.integers(cells.size)])
    return route_polyline(space, predecessor, start, objects, room_max)[::-1]

"""Camera poses: handheld-like scans of a furnished room (aligned world, +z up).

A pose is ``world_from_cam`` with OpenCV camera axes (+x right, +y down, +z forward). Its yaw is
the azimuth of the optical axis about +z, its pitch the elevation (positive looking up) and its
roll a rotation about the optical axis, all in degrees, as in spec §3.3.

``handheld_path`` scans a room as a sequence of *visits*, like a person with a hand-held sensor
going from one piece of furniture to the next, passing close to it and panning and tilting over
it as real ScanNet scans do. A visit walks through free space (a shortest route on a 0.1 m grid,
≥ 0.42 m from every footprint and wall) to a standpoint 0.55–0.95 m from its target object, then
sidesteps slowly along it. While approaching, the view looks down at the floor in front of a low
target (from afar its top is above the image) or at the base of a tall one; at the standpoint it
turns to one end of the target and then the other, far enough that the other end leaves the
view, tilts up past a tall target's top and down to its base, and pitches over a low one so that
only its near part, or only its far part, is in view (``_visit_looks``); half the visits end
with a look at a neighbouring object. Most frames therefore show objects only in part, and many
pairs of frames together cover an object's height, length or width while neither frame does
alone: the minimal covering pairs that object size questions are asked about (spec §5.4).

Several such scans are planned per scene and the best is kept (``partial_view_score``): the
frames that ``multispa prepare`` keeps (every fifth, valid pose) are checked against the scene's
mesh as the pipeline would, favouring minimal covering pairs for every dimension, a share of
pairs of frames in the 6–35 % overlap band of camera movement questions, and few steep views.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import dijkstra

from multispa.scenes.types import Intrinsics
from multispa.synth.raycast import BoxSet, render_view
from multispa.synth.world import ObjectModel, PlacedObject, assemble_boxes, index_parts

GRID_STEP_M = 0.1
"""Spacing of the free-space grid that routes are planned on."""
ROUTE_CLEARANCE_M = 0.42
"""Horizontal clearance of route cells and standpoints from every footprint and wall."""
MIN_CLEARANCE_M = 0.32
"""Smallest horizontal clearance the final (smoothed) path may have; else the plan is redrawn."""
STAND_DISTANCE_M = (0.55, 0.95)
"""Distance range of a visit's standpoint from its target's footprint."""
PITCH_LIMITS_DEG = (-55.0, 10.0)
"""Gaze pitch range before jitter: below −35° only to look down at the floor or a base, or
past a low object's far edge."""
YAW_RATE_DEG_S = 100.0
PITCH_RATE_DEG_S = 90.0
"""Fastest turn and tilt of the view (keyframes are spaced for 80 % of these)."""
DWELL_S = 0.25
"""Shortest time between two look-at keyframes."""
INSPECT_S = 1.3
"""Time spent sidestepping along a visit's target (the last visit takes what is left)."""
PIVOT_PROBABILITY = 0.5
"""Chance that a visit, after one or two looks at its target, turns to a neighbouring object."""
HALF_HFOV_DEG = 29.0
"""Half the horizontal field of view (ScanNet colour camera: about 29°)."""
HALF_VFOV_DEG = 22.0
"""Half the vertical field of view assumed when aiming partial views (ScanNet: about 22.5°)."""
STRUCTURAL_TARGETS = frozenset({"window"})
"""Labels never chosen as visit targets."""


def quantise_pixels(value: float) -> float:
    """Round an intrinsic (pixels) to a multiple of 1/64: exact in float32 and 6-decimal text."""
    return float(np.floor(value * 64.0 + 0.5) / 64.0)


def look_rotation(yaw_deg: np.ndarray, pitch_deg: np.ndarray, roll_deg: np.ndarray) -> np.ndarray:
    """Camera-to-world rotations ``(T, 3, 3)`` from yaw, pitch and roll ``(T,)`` (degrees)."""
    yaw, pitch, roll = np.radians(yaw_deg), np.radians(pitch_deg), np.radians(roll_deg)
    forward = np.stack(
        [np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], axis=-1
    )
    right = np.stack([np.sin(yaw), -np.cos(yaw), np.zeros_like(yaw)], axis=-1)  # forward × up
    down = np.cross(forward, right)
    c, s = np.cos(roll)[:, None], np.sin(roll)[:, None]
    rotation = np.empty((yaw.shape[0], 3, 3))
    rotation[:, :, 0] = c * right + s * down
    rotation[:, :, 1] = -s * right + c * down
    rotation[:, :, 2] = forward
    return rotation


def poses_from(rotations: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(T, 4, 4)`` float64 poses from rotations ``(T, 3, 3)`` and centres ``(T, 3)``."""
    poses = np.tile(np.eye(4), (rotations.shape[0], 1, 1))
    poses[:, :3, :3] = rotations
    poses[:, :3, 3] = centres
    return poses


def _to_local(obj: PlacedObject, points_xy: np.ndarray) -> np.ndarray:
    """Points ``(n, 2)`` (world xy) in the object's horizontal frame ``(n, 2)``."""
    return (points_xy - obj.world_from_object[:2, 3]) @ obj.world_from_object[:2, :2]


def _half_xy(obj: PlacedObject) -> np.ndarray:
    """Half length and half width ``(2,)`` of the object's footprint, metres."""
    return np.array([obj.model.length_m, obj.model.width_m]) / 2


def footprint_distance(obj: PlacedObject, points_xy: np.ndarray) -> np.ndarray:
    """Horizontal distance ``(n,)`` from points ``(n, 2)`` to the object's footprint (0 inside)."""
    outside = np.maximum(np.abs(_to_local(obj, points_xy)) - _half_xy(obj), 0.0)
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


def smooth_keyframes(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Monotone cubic (no overshoot) interpolation of keyframes ``values`` at ``times``."""
    return PchipInterpolator(times, values)(t)


def _jitter(rng: np.random.Generator, t: np.ndarray, amplitude: float, count: int) -> np.ndarray:
    """Sum of a few sinusoids (1–5 Hz) per column: ``(T, count)`` with RMS ≈ ``amplitude``."""
    out = np.zeros((t.shape[0], count))
    for _ in range(3):
        frequency = rng.uniform(1.0, 5.0, count)
        phase = rng.uniform(0.0, 2 * np.pi, count)
        out += np.sin(2 * np.pi * frequency * t[:, None] + phase) * amplitude / np.sqrt(1.5)
    return out


# --- free space and routes -------------------------------------------------------------------


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


def _segment_clear(
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
        while far > kept[-1] + 1 and not _segment_clear(
            points[kept[-1]], points[far], objects, room_max
        ):
            far -= 1
        kept.append(far)
    return points[np.array(kept)]


# --- visits ----------------------------------------------------------------------------------


def _target_weights(objects: Sequence[PlacedObject]) -> np.ndarray:
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


@dataclass(frozen=True)
class _Side:
    """How a standpoint faces its target, in the target's horizontal frame.

    Attributes:
        depth_axis: object axis (0 = length, 1 = width) pointing from the target to the camera.
        near_sign: ±1, the side of the target the camera stands on along ``depth_axis``.
        step_sign: ±1, the direction of the sidestep along the other (tangent) axis.
    """

    depth_axis: int
    near_sign: float
    step_sign: float


@dataclass(frozen=True)
class _Look:
    """One look at a visit's target, resolved from wherever the camera is at that moment.

    Attributes:
        target: the object looked at.
        side: how the visit faces it.
        kind: ``"floor"`` (down at the floor just in front of it), ``"up"`` (past the top of a
            tall target), ``"base"`` (at its base), ``"near"`` (pitched so that only the near
            part of a low target is in view) or ``"far"`` (only its far part).
        turn: −1, 0 or +1: towards one end, the centre or the other end (+1: the sidestep's
            end), turned far enough that the opposite end leaves the view (``_turn_deg``).
    """

    target: PlacedObject
    side: _Side
    kind: str
    turn: float = 0.0

    def resolve(self, eye: np.ndarray) -> tuple[np.ndarray, float]:
        """The look-at point ``(3,)`` and pitch override (degrees, NaN: look at the point) from
        ``eye`` ``(3,)``."""
        obj, model = self.target, self.target.model
        if self.kind == "floor":
            return _floor_in_front(obj, eye[:2]), float("nan")
        base, top = model.base_m, model.base_m + model.height_m
        if self.kind in ("near", "far"):
            top = surface_top(model)
        distance = max(float(footprint_distance(obj, eye[None, :2])[0]), 0.3)
        depth = 2 * _half_xy(obj)[self.side.depth_axis]
        drop = eye[2] - top
        pitch = float("nan")
        if self.kind == "up":
            z, aim = top + 0.4, 10.0
        elif self.kind == "base":
            z, aim = base, -50.0
        elif self.kind == "near":  # the far edge above the image
            z = top
            pitch = aim = -np.degrees(np.arctan2(drop, distance + depth)) - HALF_VFOV_DEG - 10.0
        else:  # the near edge (also off to the side) below the image, the far edge in it
            z = top
            lowest = -np.degrees(np.arctan2(drop, 1.15 * distance)) + HALF_VFOV_DEG
            highest = -np.degrees(np.arctan2(drop, distance + depth)) + HALF_VFOV_DEG
            pitch = aim = 0.5 * (lowest + highest) if lowest < highest else highest - 2.0
        angle = self.turn * _turn_deg(obj, self.side, distance, aim)
        return _turn_point(obj, self.side, eye[:2], angle, z), pitch


def surface_top(model: ObjectModel) -> float:
    """Height (metres) of the object's main upper surface: the highest top of a part covering
    at least half its footprint (a bed's mattress rather than its headboard)."""
    area = model.length_m * model.width_m
    tops = [
        part.centre[2] + part.half[2]
        for part in model.parts
        if 4.0 * part.half[0] * part.half[1] >= 0.5 * area
    ]
    return max(tops) if tops else model.base_m + model.height_m


def _turn_point(
    obj: PlacedObject, side: _Side, eye_xy: np.ndarray, angle_deg: float, z: float
) -> np.ndarray:
    """World point ``(3,)`` at height ``z``, ``angle_deg`` away (positive: towards the
    sidestep's end) from the direction from ``eye_xy`` to the target's centre."""
    towards = obj.world_from_object[:2, 3] - eye_xy
    reach = float(np.linalg.norm(towards))
    towards = towards / max(reach, 1e-9)
    step = side.step_sign * obj.world_from_object[:2, 1 - side.depth_axis]
    sign = 1.0 if towards[0] * step[1] - towards[1] * step[0] >= 0 else -1.0
    angle = sign * np.radians(angle_deg)
    direction = np.array(
        [np.cos(angle) * towards[0] - np.sin(angle) * towards[1],
         np.sin(angle) * towards[0] + np.cos(angle) * towards[1]]
    )  # fmt: skip
    return np.array([*(eye_xy + reach * direction), z])


def _turn_deg(obj: PlacedObject, side: _Side, distance_m: float, pitch_deg: float) -> float:
    """How far to turn from the target's centre so that its far end (across a long side) or
    far side (across a short end) leaves a view pitched ``pitch_deg``, whose horizontal
    half-width grows as the view tilts."""
    half_fov = np.degrees(
        np.arctan(np.tan(np.radians(HALF_HFOV_DEG)) / np.cos(np.radians(pitch_deg)))
    )
    if side.depth_axis == 0:
        return float(half_fov + 8.0)
    end = np.degrees(np.arctan2(_half_xy(obj)[0], distance_m))
    return float(np.clip(half_fov + 8.0 - end, 20.0, 45.0))


def is_tall(obj: PlacedObject, eye_height_m: float) -> bool:
    """Whether the object's top is above or near eye level (looked up at, not down on)."""
    return obj.model.base_m + obj.model.height_m >= eye_height_m - 0.25


def _visit_looks(obj: PlacedObject, side: _Side, eye_height_m: float) -> tuple[_Look, list[_Look]]:
    """Where a visit looks while approaching its target, and then in order at its standpoint
    (as many looks as time allows).

    Approaching, the view looks down at the floor in front of a low target (its top above the
    image from afar) or at the base of a tall one. Then it turns towards one end of the target
    and the other. Over a tall target it looks up past the top at both ends, then down to the
    base. Over a low one, across a long side, it looks so steeply down at the ends that only
    the near part of the target is in view, and in between pitches so that only the far part is
    (straight ahead: turned, the near edge would show off to the side); across a short end it
    turns to both sides at the latter pitch.
    """
    if is_tall(obj, eye_height_m):
        return _Look(obj, side, "base", -1.0), [
            _Look(obj, side, "up", 1.0),
            _Look(obj, side, "up", -1.0),
            _Look(obj, side, "base", 1.0),
            _Look(obj, side, "up", 0.0),
        ]
    if side.depth_axis == 0:
        return _Look(obj, side, "floor"), [
            _Look(obj, side, "far", -1.0),
            _Look(obj, side, "far", 1.0),
            _Look(obj, side, "near", 0.0),
            _Look(obj, side, "far", 0.0),
        ]
    return _Look(obj, side, "floor"), [
        _Look(obj, side, "near", -1.0),
        _Look(obj, side, "far", 0.0),
        _Look(obj, side, "near", 1.0),
        _Look(obj, side, "far", 0.0),
    ]


def _view_angles(eye: np.ndarray, look: _Look) -> tuple[float, float]:
    """Yaw and clipped pitch (degrees) of ``look`` from ``eye`` ``(3,)``."""
    point, pitch = look.resolve(eye)
    delta = point - eye
    yaw = float(np.degrees(np.arctan2(delta[1], delta[0])))
    if np.isnan(pitch):
        pitch = float(np.degrees(np.arctan2(delta[2], np.hypot(delta[0], delta[1]))))
    return yaw, float(np.clip(pitch, *PITCH_LIMITS_DEG))


def _floor_in_front(obj: PlacedObject, camera_xy: np.ndarray) -> np.ndarray:
    """World point ``(3,)`` on the floor 40 % of the way from the target to the camera."""
    local = _to_local(obj, camera_xy[None])[0]
    nearest_local = np.clip(local, -_half_xy(obj), _half_xy(obj))
    nearest = obj.world_from_object[:2, :2] @ nearest_local + obj.world_from_object[:2, 3]
    return np.array([*(nearest + 0.4 * (camera_xy - nearest)), 0.0])


@dataclass
class _Plan:
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

    def add_look(self, time_s: float, look: _Look, eye: np.ndarray) -> tuple[float, float]:
        """Make ``look`` from ``eye`` ``(3,)`` at ``time_s``; returns its yaw and pitch."""
        point, pitch = look.resolve(eye)
        self.gaze_times.append(time_s)
        self.gaze_points.append(point)
        self.gaze_pitch.append(pitch)
        return _view_angles(eye, look)

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
    beyond = np.abs(_to_local(obj, space.points[cells])) > _half_xy(obj)
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
    ``_target_weights`` (across a short end only for targets at least 0.45 m wide)."""
    weights = _target_weights(objects)
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
) -> tuple[_Side, np.ndarray]:
    """How ``stand_xy`` faces ``obj`` and the end of a clear sidestep of up to ``step_m``."""
    local = _to_local(obj, stand_xy[None])[0]
    excess = np.abs(local) - _half_xy(obj)
    depth_axis = int(np.argmax(excess))
    tangent_world = obj.world_from_object[:2, 1 - depth_axis]
    signs = [1.0, -1.0] if rng.uniform() < 0.5 else [-1.0, 1.0]
    # Step towards the middle of the target when standing beyond one of its ends.
    if abs(local[1 - depth_axis]) > 0.5 * _half_xy(obj)[1 - depth_axis]:
        signs = [-float(np.sign(local[1 - depth_axis])), float(np.sign(local[1 - depth_axis]))]
    for sign in signs:
        for length in (step_m, 0.6 * step_m, 0.3 * step_m):
            end = stand_xy + sign * length * tangent_world
            if _segment_clear(stand_xy, end, objects, room_max):
                return _Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), sign), end
    return _Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), signs[0]), stand_xy


def _neighbour_looks(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    target: int,
    weights: np.ndarray,
    position_xy: np.ndarray,
    eye_height_m: float,
) -> list[_Look]:
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
    local = _to_local(other, position_xy[None])[0]
    depth_axis = int(np.argmax(np.abs(local) - _half_xy(other)))
    side = _Side(depth_axis, float(np.sign(local[depth_axis]) or 1.0), 1.0)
    return _visit_looks(other, side, eye_height_m)[1]


def _plan_scan(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    duration_s: float,
    walk_speed: float,
    eye_height_m: float,
    first_visit: tuple[int, int] | None = None,
) -> _Plan | None:
    """Visits filling ``duration_s``: walks, sidesteps and look-at keyframes, or None. The
    first visit goes to ``first_visit`` = (object position, depth axis) if given."""
    space = free_space(objects, room_max)
    weights = _target_weights(objects)
    if not space.walkable.any() or weights.sum() == 0:
        return None
    visits = np.zeros(len(objects))
    plan = _Plan([], [], [], [], [])
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
        approach, looks = _visit_looks(target, side, eye_height_m)
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
        yaw, pitch = _view_angles(plan.eye(key_s, eye_height_m), approach)
        for look in looks:
            new_yaw, new_pitch = _view_angles(plan.eye(key_s + DWELL_S, eye_height_m), look)
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


def _gaze_angles(
    times: np.ndarray, eyes: np.ndarray, points: np.ndarray, pitch_override: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch keyframes ``(K,)`` (degrees) looking from ``eyes`` ``(K, 3)`` at ``points``
    ``(K, 3)`` (or with the pitch ``pitch_override`` ``(K,)`` where not NaN): pitch clipped to
    ``PITCH_LIMITS_DEG``, yaw unwrapped, and both rate-limited."""
    delta = points - eyes
    yaw = np.degrees(np.arctan2(delta[:, 1], delta[:, 0]))
    pitch = np.degrees(np.arctan2(delta[:, 2], np.hypot(delta[:, 0], delta[:, 1])))
    pitch = np.clip(np.where(np.isnan(pitch_override), pitch, pitch_override), *PITCH_LIMITS_DEG)
    for k in range(1, times.size):
        dt = times[k] - times[k - 1]
        step = (yaw[k] - yaw[k - 1] + 180.0) % 360.0 - 180.0
        yaw[k] = yaw[k - 1] + np.clip(step, -YAW_RATE_DEG_S * dt, YAW_RATE_DEG_S * dt)
        pitch[k] = pitch[k - 1] + np.clip(
            pitch[k] - pitch[k - 1], -PITCH_RATE_DEG_S * dt, PITCH_RATE_DEG_S * dt
        )
    return yaw, pitch


def _spin_in_place(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fallback for a room with no free standpoint: centre ``(T, 2)``, yaw and pitch ``(T,)``
    turning on the spot at the freest point."""
    candidates = rng.uniform([0.3, 0.3], room_max[:2] - 0.3, (400, 2))
    best = candidates[int(np.argmax(clearance(candidates, objects, room_max)))]
    key_times = np.arange(0.0, t[-1] + 1.2, 1.2)
    yaw = smooth_keyframes(key_times, np.cumsum(rng.uniform(15.0, 45.0, key_times.size)), t)
    pitch = smooth_keyframes(key_times, rng.uniform(-30.0, 0.0, key_times.size), t)
    return np.tile(best, (t.size, 1)), yaw, pitch


def _candidate_path(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    t: np.ndarray,
    height: np.ndarray,
    walk_speed: float,
    first_visit: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """One planned scan at frame times ``t`` ``(T,)``: centre ``(T, 2)``, yaw and pitch
    ``(T,)`` degrees (no jitter), or None if the plan fails or passes too close to something."""
    duration = max(float(t[-1]), 1e-6)
    fps = (t.size - 1) / duration if t.size > 1 else 1.0
    plan = _plan_scan(
        rng, objects, room_max, duration, walk_speed, float(height[0]), first_visit
    )
    if plan is None:
        return None
    times, points = np.asarray(plan.times), np.asarray(plan.points)
    xy = np.stack([np.interp(t, times, points[:, k]) for k in range(2)], axis=1)
    xy = gaussian_filter1d(xy, sigma=0.2 * fps, axis=0, mode="nearest")
    if clearance(xy, objects, room_max).min() < MIN_CLEARANCE_M:
        return None
    order = np.argsort(np.asarray(plan.gaze_times), kind="stable")
    key_times = np.asarray(plan.gaze_times)[order]
    keep = np.concatenate([[True], np.diff(key_times) > 1e-3])
    key_times = key_times[keep]
    key_points = np.asarray(plan.gaze_points)[order][keep]
    key_override = np.asarray(plan.gaze_pitch)[order][keep]
    frame = np.clip(np.rint(key_times * fps).astype(int), 0, t.size - 1)
    eyes = np.column_stack([xy[frame], height[frame]])
    key_yaw, key_pitch = _gaze_angles(key_times, eyes, key_points, key_override)
    # Hold the first and last gaze over the whole clip.
    key_times = np.concatenate([[min(0.0, key_times[0] - 1e-3)], key_times, [duration + 1.0]])
    key_yaw = np.concatenate([key_yaw[:1], key_yaw, key_yaw[-1:]])
    key_pitch = np.concatenate([key_pitch[:1], key_pitch, key_pitch[-1:]])
    return xy, smooth_keyframes(key_times, key_yaw, t), smooth_keyframes(key_times, key_pitch, t)


# --- choosing among candidate scans ----------------------------------------------------------


@dataclass(frozen=True)
class ScoreWorld:
    """What ``partial_view_score`` needs about the room's objects.

    Attributes:
        boxes: every object part as a box (``BoxSet``), for depth images.
        points: ``(P, 3)`` float64 mesh vertices (an even subsample of the objects' and of the
            room's), world, metres.
        owner: ``(P,)`` int64 position of each point's object in the object list, −1 for the
            room.
        along: ``(P, 3)`` float64 each point's coordinate along world z and its object's
            length and width axes (0 for the room), metres.
        need: ``(O,)`` int64 points that must be visible for the object to count as seen (the
            5 % rule of spec §5.4 on the subsample).
        sizes: ``(O, 3)`` float64 height, length and width, metres.
        askable: ``(O, 3)`` bool, whether a size question could be asked about that dimension
            (the label is unique, not a window, and both the dimension and the largest one are
            at least 0.1 m).
    """

    boxes: BoxSet
    points: np.ndarray
    owner: np.ndarray
    along: np.ndarray
    need: np.ndarray
    sizes: np.ndarray
    askable: np.ndarray


SCORE_POINTS = 30000
"""Most object mesh vertices used to score a candidate scan (as many again of the room's)."""


def score_world(
    objects: Sequence[PlacedObject], vertices: np.ndarray, vertex_object: np.ndarray
) -> ScoreWorld:
    """The ``ScoreWorld`` of placed objects whose mesh vertices ``(V, 3)`` belong to the
    objects at positions ``vertex_object`` ``(V,)`` (−1: the room)."""
    models = [obj.model for obj in objects]
    index = index_parts(models)
    world_from_objects = np.stack([obj.world_from_object for obj in objects])
    boxes = assemble_boxes(models, world_from_objects, index)
    own = np.flatnonzero(vertex_object >= 0)
    own = own[:: max(1, int(np.ceil(own.size / SCORE_POINTS)))]
    room = np.flatnonzero(vertex_object < 0)
    room = room[:: max(1, int(np.ceil(room.size / SCORE_POINTS)))]
    picked = np.concatenate([own, room])
    owner = np.where(vertex_object[picked] >= 0, vertex_object[picked], -1).astype(np.int64)
    points = np.asarray(vertices[picked], dtype=np.float64)
    axes = np.stack(
        [
            np.stack([np.array([0.0, 0.0, 1.0]), obj.world_from_object[:3, 0],
                      obj.world_from_object[:3, 1]])
            for obj in objects
        ]
    )  # fmt: skip
    along = np.einsum("pai,pi->pa", axes[np.maximum(owner, 0)], points) * (owner >= 0)[:, None]
    need = np.maximum(1, np.bincount(owner[owner >= 0], minlength=len(objects)) // 20)
    sizes = np.array([[o.model.height_m, o.model.length_m, o.model.width_m] for o in objects])
    counts = Counter(obj.model.label for obj in objects)
    unique = np.array(
        [counts[o.model.label] == 1 and o.model.label not in STRUCTURAL_TARGETS for o in objects]
    )
    askable = unique[:, None] & (sizes >= 0.1) & (sizes.max(axis=1, keepdims=True) >= 0.1)
    return ScoreWorld(boxes, points, owner, along, need, sizes, askable)


SCORE_DEPTH_SIZE = (80, 60)
"""Resolution of the depth images candidate scans are scored with (nominal ScanNet cameras)."""


def _score_cameras() -> tuple[Intrinsics, Intrinsics]:
    """Nominal ScanNet colour and depth cameras, at the scoring resolution."""
    width, height = SCORE_DEPTH_SIZE
    sx, sy = width / 640, height / 480
    depth = Intrinsics(577.6 * sx, 578.7 * sy, 319.0 * sx, 242.0 * sy, width, height)
    sx, sy = width / 1296, height / 968
    color = Intrinsics(1170.0 * sx, 1167.0 * sy, 647.0 * sx, 484.0 * sy, width, height)
    return color, depth


def view_extents(
    world: ScoreWorld, poses: np.ndarray, room_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Which objects each view sees and how far along each axis, as ``multispa prepare``
    would find them (spec §3.2 visibility, §5.4) on a low-resolution depth image.

    Args:
        world: the objects (``score_world``).
        poses: ``(K, 4, 4)`` world_from_cam.
        room_max: ``(3,)`` room corner.

    Returns:
        ``seen`` ``(O, K)`` bool and ``lo``, ``hi`` ``(O, K, 3)`` float64 extents (metres,
        along z and each object's length and width axes; NaN where not seen), and the visible
        points ``(K, P)`` bool.
    """
    color, depth = _score_cameras()
    count = world.sizes.shape[0]
    visible = np.zeros((poses.shape[0], world.points.shape[0]), dtype=bool)
    seen = np.zeros((count, poses.shape[0]), dtype=bool)
    lo = np.full((count, poses.shape[0], 3), np.nan)
    hi = np.full((count, poses.shape[0], 3), np.nan)
    for k, pose in enumerate(poses):
        depth_m = render_view(pose, depth, world.boxes, np.zeros(3), room_max).depth_m
        cam = (world.points - pose[:3, 3]) @ pose[:3, :3]
        z = cam[:, 2]
        front = z > 1e-6
        x = np.where(front, cam[:, 0] / np.where(front, z, 1.0), 0.0)
        y = np.where(front, cam[:, 1] / np.where(front, z, 1.0), 0.0)
        u, v = x * color.fx + color.cx, y * color.fy + color.cy
        ok = front & (u >= 0) & (u < color.width) & (v >= 0) & (v < color.height)
        ud = np.floor(x * depth.fx + depth.cx + 0.5).astype(np.int64)
        vd = np.floor(y * depth.fy + depth.cy + 0.5).astype(np.int64)
        ok &= (ud >= 0) & (ud < depth.width) & (vd >= 0) & (vd < depth.height)
        index = np.flatnonzero(ok)
        measured = depth_m[vd[index], ud[index]].astype(np.float64)
        near = (measured > 0) & (
            np.abs(z[index] - measured) <= np.maximum(0.05, 0.05 * z[index])
        )
        index = index[near]
        visible[k, index] = True
        index = index[world.owner[index] >= 0]
        owner = world.owner[index]
        seen[:, k] = np.bincount(owner, minlength=count) >= world.need
        low = np.full((count, 3), np.inf)
        high = np.full((count, 3), -np.inf)
        np.minimum.at(low, owner, world.along[index])
        np.maximum.at(high, owner, world.along[index])
        lo[seen[:, k], k] = low[seen[:, k]]
        hi[seen[:, k], k] = high[seen[:, k]]
    return seen, lo, hi, visible


def covering_pair_counts(
    seen: np.ndarray, lo: np.ndarray, hi: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """Minimal covering pairs (spec §5.4, 90 %) per object and axis: ``(O, 3)`` int64.

    Args:
        seen: ``(O, K)`` bool; lo, hi: ``(O, K, 3)`` extents; sizes: ``(O, 3)`` box extents.
    """
    counts = np.zeros(sizes.shape, dtype=np.int64)
    for o in range(sizes.shape[0]):
        frames = np.flatnonzero(seen[o])
        if frames.size < 2:
            continue
        for a in range(3):
            low, high = lo[o, frames, a], hi[o, frames, a]
            need = 0.9 * sizes[o, a]
            alone = high - low >= need
            low, high = low[~alone], high[~alone]
            span = np.maximum(high[:, None], high[None]) - np.minimum(low[:, None], low[None])
            counts[o, a] = int(np.count_nonzero(np.triu(span >= need, 1)))
    return counts


BAND_SHARE = (0.3, 0.2)
"""Share of pairs of kept frames wanted in the 6–35 % overlap band (camera movement pairs), for
scans of 4 s or less and longer ones: about what the random walks this path replaced had."""


@dataclass(frozen=True)
class ScanScore:
    """How well the kept frames of a candidate scan suit the benchmark.

    Attributes:
        objects: ``(3,)`` int64 askable objects with a minimal covering pair, per dimension
            (height, length, width).
        pairs: ``(3,)`` int64 minimal covering pairs per dimension (at most 10 per object).
        band: share of the pairs of frames whose overlap (IoU of visible points, spec §3.2) is
            in 6–35 %.
    """

    objects: np.ndarray
    pairs: np.ndarray
    band: float

    def value(self, band_share: float) -> float:
        """Above all (100 points each), every dimension having some object with a minimal
        covering pair; then up to 50 points for the band (full at ``band_share``), and up to 3
        such objects (2 points each) and 10 pairs (0.4 points each) per dimension."""
        return float(
            100.0 * np.count_nonzero(self.objects) + 2.0 * np.minimum(self.objects, 3).sum()
            + 0.4 * np.minimum(self.pairs, 10).sum() + 50.0 * min(self.band / band_share, 1.0)
        )  # fmt: skip

    def enough(self, objects: int, pairs: int, band_share: float) -> bool:
        """Whether every dimension has ``objects`` objects and ``pairs`` pairs, and the band
        ``band_share``."""
        return bool(
            np.all(self.objects >= objects) and np.all(self.pairs >= pairs)
            and self.band >= band_share
        )  # fmt: skip


def partial_view_score(world: ScoreWorld, poses: np.ndarray, room_max: np.ndarray) -> ScanScore:
    """Score views ``(K, 4, 4)`` (``ScanScore``)."""
    seen, lo, hi, visible = view_extents(world, poses, room_max)
    pairs = np.minimum(covering_pair_counts(seen, lo, hi, world.sizes), 10) * world.askable
    counts = visible.astype(np.float64)
    shared = counts @ counts.T
    sizes = counts.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - shared
    upper = np.triu(np.ones_like(shared, dtype=bool), 1) & (union > 0)
    overlap = 100.0 * shared[upper] / union[upper]
    band = np.count_nonzero((overlap >= 6.0) & (overlap <= 35.0)) / max(1, overlap.size)
    return ScanScore(np.count_nonzero(pairs, axis=0), pairs.sum(axis=0), float(band))


STEEP_SHARE = 0.35
"""Share of frames pitched below −35° beyond which a candidate scan loses points."""
CANDIDATE_SCANS = (24, 6)
"""Most planned scans drawn per scene, for scans of 4 s or less and longer ones (whose several
visits make most plans good); the one scoring best (``partial_view_score``) is kept."""
PATIENCE = 6
"""Further scans drawn, once one has enough objects and pairs, for a better band share and
fewer steep frames."""
ENOUGH = (2, 8)
"""Drawing stops early once every dimension has this many objects and minimal covering pairs
(one and one in scans of 4 s or less), the band its share and few frames are steep."""


def handheld_path(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    num_frames: int,
    fps: float,
    speed_m_s: float,
    *,
    mesh: tuple[np.ndarray, np.ndarray] | None = None,
    frame_stride: int = 5,
    skip_frames: Sequence[int] = (),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A smooth handheld scan of the room as visits to its objects (module docstring).

    The centre walks at about ``1.6 · speed_m_s`` (0.4–0.7 m/s) between standpoints, smoothed,
    and stays ≥ 0.32 m from every footprint and wall, at 1.25–1.5 m height (±5 cm); pitch stays
    in −55…+10° (below −35° only while looking down at a floor or base), roll within a few
    degrees, plus millimetre/sub-degree jitter.

    With ``mesh`` = (vertices ``(V, 3)``, object position of each vertex ``(V,)``, −1 for the
    room), up to ``CANDIDATE_SCANS`` scans are planned and the one whose every
    ``frame_stride``-th frame (less ``skip_frames``) best shows objects in part
    (``partial_view_score``) is kept; without it, the first plan.

    Returns:
        Poses ``(T, 4, 4)`` float64 (aligned world) and the per-frame ``yaw_deg``, ``pitch_deg``,
        ``roll_deg`` and ``centre`` arrays used to build them.
    """
    t = np.arange(num_frames) / fps
    key_times = np.arange(0.0, max(float(t[-1]), 1e-6) + 1.2, 1.2)
    height = float(rng.uniform(1.3, 1.5)) + smooth_keyframes(
        key_times, rng.uniform(-0.05, 0.05, key_times.size), t
    )
    walk_speed = float(np.clip(1.6 * speed_m_s, 0.4, 0.6))
    roll = smooth_keyframes(key_times, np.clip(rng.normal(0.0, 1.5, key_times.size), -4, 4), t)
    angles = _jitter(rng, t, 0.15, 3)
    shake = _jitter(rng, t, 0.0015, 3)
    world = score_world(objects, *mesh) if mesh is not None and objects else None
    kept = np.setdiff1d(np.arange(0, num_frames, frame_stride), np.asarray(skip_frames, int))
    long_scan = int(t[-1] > 4.0)
    enough = (*(ENOUGH if long_scan else (1, 1)), BAND_SHARE[long_scan])
    most = CANDIDATE_SCANS[long_scan]
    best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    best_score = -np.inf
    found = 0
    covered: int | None = None
    visits = first_visits(objects, rng)
    for attempt in range(3 * most):
        first = visits[attempt % len(visits)] if visits else None
        candidate = _candidate_path(rng, objects, room_max, t, height, walk_speed, first)
        if candidate is None:
            continue
        found += 1
        if world is None:
            best = candidate
            break
        xy, yaw, pitch = candidate
        rotations = look_rotation(
            yaw[kept] + angles[kept, 0], pitch[kept] + angles[kept, 1], roll[kept] + angles[kept, 2]
        )
        poses = poses_from(rotations, np.column_stack([xy[kept], height[kept]]) + shake[kept])
        scored = partial_view_score(world, poses, room_max)
        steep = float(np.mean(pitch < -35.0))
        score = scored.value(enough[2]) - 30.0 * max(0.0, steep - STEEP_SHARE)
        if score > best_score:
            best, best_score = candidate, score
        if covered is None and scored.enough(*enough[:2], 0.0) and steep <= 0.5:
            covered = found  # the objects are fine: a few more tries for band and steepness
        if (
            found == most
            or (covered is not None and found >= covered + PATIENCE)
            or (scored.enough(*enough) and steep <= STEEP_SHARE)
        ):
            break
    xy, yaw, pitch = best if best is not None else _spin_in_place(rng, objects, room_max, t)
    yaw, pitch, roll = yaw + angles[:, 0], pitch + angles[:, 1], roll + angles[:, 2]
    centre = np.column_stack([xy, height]) + shake
    poses = poses_from(look_rotation(yaw, pitch, roll), centre)
    return poses, {"yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll, "centre": centre}

"""Where a hand-held camera looks during a visit to an object, and how fast its view turns.

A visit's looks (``visit_looks``) are resolved from wherever the camera is at that moment into
a look-at point and an optional pitch; ``gaze_angles`` turns look-at keyframes into yaw and
pitch keyframes within the pitch limits and turn rates. Angles in degrees
(docs/labels.md#yaw-pitch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispa.synth.free_space import footprint_distance, half_xy, to_local
from multispa.synth.world import ObjectModel, PlacedObject

PITCH_LIMITS_DEG = (-55.0, 10.0)
"""Gaze pitch range before jitter: below −35° only to look down at the floor or a base, or
past a low object's far edge."""
YAW_RATE_DEG_S = 100.0
PITCH_RATE_DEG_S = 90.0
"""Fastest turn and tilt of the view (keyframes are spaced for 80 % of these)."""
HALF_HFOV_DEG = 29.0
"""Half the horizontal field of view (ScanNet colour camera: about 29°)."""
HALF_VFOV_DEG = 22.0
"""Half the vertical field of view assumed when aiming partial views (ScanNet: about 22.5°)."""


@dataclass(frozen=True)
class Side:
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
class Look:
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
    side: Side
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
        depth = 2 * half_xy(obj)[self.side.depth_axis]
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
    obj: PlacedObject, side: Side, eye_xy: np.ndarray, angle_deg: float, z: float
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


def _turn_deg(obj: PlacedObject, side: Side, distance_m: float, pitch_deg: float) -> float:
    """How far to turn from the target's centre so that its far end (across a long side) or
    far side (across a short end) leaves a view pitched ``pitch_deg``, whose horizontal
    half-width grows as the view tilts."""
    half_fov = np.degrees(
        np.arctan(np.tan(np.radians(HALF_HFOV_DEG)) / np.cos(np.radians(pitch_deg)))
    )
    if side.depth_axis == 0:
        return float(half_fov + 8.0)
    end = np.degrees(np.arctan2(half_xy(obj)[0], distance_m))
    return float(np.clip(half_fov + 8.0 - end, 20.0, 45.0))


def is_tall(obj: PlacedObject, eye_height_m: float) -> bool:
    """Whether the object's top is above or near eye level (looked up at, not down on)."""
    return obj.model.base_m + obj.model.height_m >= eye_height_m - 0.25


def visit_looks(obj: PlacedObject, side: Side, eye_height_m: float) -> tuple[Look, list[Look]]:
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
        return Look(obj, side, "base", -1.0), [
            Look(obj, side, "up", 1.0),
            Look(obj, side, "up", -1.0),
            Look(obj, side, "base", 1.0),
            Look(obj, side, "up", 0.0),
        ]
    if side.depth_axis == 0:
        return Look(obj, side, "floor"), [
            Look(obj, side, "far", -1.0),
            Look(obj, side, "far", 1.0),
            Look(obj, side, "near", 0.0),
            Look(obj, side, "far", 0.0),
        ]
    return Look(obj, side, "floor"), [
        Look(obj, side, "near", -1.0),
        Look(obj, side, "far", 0.0),
        Look(obj, side, "near", 1.0),
        Look(obj, side, "far", 0.0),
    ]


def view_angles(eye: np.ndarray, look: Look) -> tuple[float, float]:
    """Yaw and clipped pitch (degrees) of ``look`` from ``eye`` ``(3,)``."""
    point, pitch = look.resolve(eye)
    delta = point - eye
    yaw = float(np.degrees(np.arctan2(delta[1], delta[0])))
    if np.isnan(pitch):
        pitch = float(np.degrees(np.arctan2(delta[2], np.hypot(delta[0], delta[1]))))
    return yaw, float(np.clip(pitch, *PITCH_LIMITS_DEG))


def _floor_in_front(obj: PlacedObject, camera_xy: np.ndarray) -> np.ndarray:
    """World point ``(3,)`` on the floor 40 % of the way from the target to the camera."""
    local = to_local(obj, camera_xy[None])[0]
    nearest_local = np.clip(local, -half_xy(obj), half_xy(obj))
    nearest = obj.world_from_object[:2, :2] @ nearest_local + obj.world_from_object[:2, 3]
    return np.array([*(nearest + 0.4 * (camera_xy - nearest)), 0.0])


def gaze_angles(
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

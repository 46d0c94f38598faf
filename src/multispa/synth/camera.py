"""Camera poses: handheld-like trajectories through a furnished room (aligned world, +z up).

A pose is ``world_from_cam`` with OpenCV camera axes (+x right, +y down, +z forward). Its yaw is
the azimuth of the optical axis about +z, its pitch the elevation (positive looking up) and its
roll a rotation about the optical axis, all in degrees, as in spec §3.3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.ndimage import gaussian_filter1d

from multispa.synth.world import PlacedObject


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


def clearance(
    points_xy: np.ndarray, objects: Sequence[PlacedObject], room_max: np.ndarray
) -> np.ndarray:
    """Horizontal distance ``(n,)`` from points ``(n, 2)`` to the nearest footprint or wall."""
    distance = np.minimum.reduce(
        [points_xy[:, 0], points_xy[:, 1], room_max[0] - points_xy[:, 0],
         room_max[1] - points_xy[:, 1]]
    )  # fmt: skip
    for obj in objects:
        rotation = obj.world_from_object[:2, :2]
        local = (points_xy - obj.world_from_object[:2, 3]) @ rotation
        outside = np.maximum(
            np.abs(local) - np.array([obj.model.length_m, obj.model.width_m]) / 2, 0.0
        )
        distance = np.minimum(distance, np.hypot(outside[:, 0], outside[:, 1]))
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


def _waypoints(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    length_m: float,
    free_clearance: float,
) -> np.ndarray | None:
    """A polyline ``(k, 2)`` through free space at least ``length_m`` long, or None."""
    step = 0.1
    xs = np.arange(step / 2, room_max[0], step)
    ys = np.arange(step / 2, room_max[1], step)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
    free = grid[clearance(grid, objects, room_max) >= free_clearance]
    if free.shape[0] == 0:
        return None
    points = [free[int(rng.integers(free.shape[0]))]]
    total = 0.0
    for _ in range(60):
        if total >= length_m:
            break
        distance = np.linalg.norm(free - points[-1], axis=1)
        candidates = np.flatnonzero((distance > 0.5) & (distance < 1.6))
        if candidates.size == 0:
            return None
        rng.shuffle(candidates)
        for candidate in candidates[:40]:
            target = free[candidate]
            samples = points[-1] + np.linspace(0, 1, 25)[:, None] * (target - points[-1])
            if clearance(samples, objects, room_max).min() >= 0.8 * free_clearance:
                total += float(np.linalg.norm(target - points[-1]))
                points.append(target)
                break
        else:
            return None
    return np.asarray(points) if total >= length_m else None


def handheld_path(
    rng: np.random.Generator,
    objects: Sequence[PlacedObject],
    room_max: np.ndarray,
    num_frames: int,
    fps: float,
    speed_m_s: float,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A smooth handheld scan of the room.

    The centre follows a smoothed polyline through free space (≥ 0.3 m from every footprint
    and wall) at about ``speed_m_s`` and 1.2–1.7 m height; yaw sweeps 15–55° per 1.2 s, pitch
    stays in −30…+5°, roll within a few degrees, plus millimetre/sub-degree jitter.

    Returns:
        Poses ``(T, 4, 4)`` float64 (aligned world) and the per-frame ``yaw_deg``, ``pitch_deg``,
        ``roll_deg`` and ``centre`` arrays used to build them.
    """
    t = np.arange(num_frames) / fps
    duration = max(t[-1], 1e-6)
    length = speed_m_s * duration
    polyline = None
    for attempt in range(40):
        polyline = _waypoints(rng, objects, room_max, length, 0.55 if attempt < 20 else 0.35)
        if polyline is not None:
            break
    if polyline is None:  # crowded room: turn on the spot at the freest point
        xs = rng.uniform([0.3, 0.3], room_max[:2] - 0.3, (400, 2))
        best = xs[int(np.argmax(clearance(xs, objects, room_max)))]
        polyline = np.stack([best, best + 1e-3])
    segment = np.linalg.norm(np.diff(polyline, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segment)])
    along = np.minimum(t / duration * min(length, arc[-1]), arc[-1])
    xy = np.stack([np.interp(along, arc, polyline[:, k]) for k in range(2)], axis=1)
    xy = gaussian_filter1d(xy, sigma=0.4 * fps, axis=0, mode="nearest")

    key_times = np.arange(0.0, duration + 1.2, 1.2)
    to_centre = room_max[:2] / 2 - xy[0]
    start_yaw = np.degrees(np.arctan2(to_centre[1], to_centre[0]))
    steps = rng.uniform(15.0, 55.0, key_times.size) * np.where(
        np.cumsum(rng.uniform(size=key_times.size) < 0.2) % 2 == 0, 1.0, -1.0
    )
    steps[0] = 0.0
    yaw = smooth_keyframes(key_times, start_yaw + np.cumsum(steps), t)
    pitch = smooth_keyframes(
        key_times, np.clip(rng.normal(-14.0, 8.0, key_times.size), -30.0, 5.0), t
    )
    roll = smooth_keyframes(key_times, np.clip(rng.normal(0.0, 1.5, key_times.size), -4, 4), t)
    height = float(rng.uniform(1.25, 1.6)) + smooth_keyframes(
        key_times, rng.uniform(-0.05, 0.05, key_times.size), t
    )
    angles = _jitter(rng, t, 0.15, 3)
    yaw, pitch, roll = yaw + angles[:, 0], pitch + angles[:, 1], roll + angles[:, 2]
    centre = np.column_stack([xy, height]) + _jitter(rng, t, 0.0015, 3)
    poses = poses_from(look_rotation(yaw, pitch, roll), centre)
    return poses, {"yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll, "centre": centre}

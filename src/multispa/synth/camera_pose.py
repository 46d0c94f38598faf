"""Camera poses from view angles and centres, and the smooth motion of a hand-held camera.

A pose is ``world_from_cam`` with OpenCV camera axes (+x right, +y down, +z forward). Its yaw is
the azimuth of the optical axis about +z, its pitch the elevation (positive looking up) and its
roll a rotation about the optical axis, all in degrees, as in docs/labels.md#yaw-pitch.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator


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


def smooth_keyframes(times: np.ndarray, values: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Monotone cubic (no overshoot) interpolation of keyframes ``values`` at ``times``."""
    return PchipInterpolator(times, values)(t)


def jitter(rng: np.random.Generator, t: np.ndarray, amplitude: float, count: int) -> np.ndarray:
    """Sum of a few sinusoids (1–5 Hz) per column: ``(T, count)`` with RMS ≈ ``amplitude``."""
    out = np.zeros((t.shape[0], count))
    for _ in range(3):
        frequency = rng.uniform(1.0, 5.0, count)
        phase = rng.uniform(0.0, 2 * np.pi, count)
        out += np.sin(2 * np.pi * frequency * t[:, None] + phase) * amplitude / np.sqrt(1.5)
    return out

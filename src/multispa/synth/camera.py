"""Camera poses: handheld-like scans of a furnished room (aligned world, +z up).

A pose is ``world_from_cam`` with OpenCV camera axes (+x right, +y down, +z forward). Its yaw is
the azimuth of the optical axis about +z, its pitch the elevation (positive looking up) and its
roll a rotation about the optical axis, all in degrees, as in docs/labels.md#yaw-pitch.

``handheld_path`` scans a room as a sequence of *visits*, like a person with a hand-held sensor
going from one piece of furniture to the next, passing close to it and panning and tilting over
it as real ScanNet scans do. A visit walks through free space (a shortest route on a 0.1 m grid,
≥ 0.42 m from every footprint and wall) to a standpoint 0.55–0.95 m from its target object, then
sidesteps slowly along it. While approaching, the view looks down at the floor in front of a low
target (from afar its top is above the image) or at the base of a tall one; at the standpoint it
turns to one end of the target and then the other, far enough that the other end leaves the
view, tilts up past a tall target's top and down to its base, and pitches over a low one so that
only its near part, or only its far part, is in view (``visit_looks``); half the visits end
with a look at a neighbouring object. Most frames therefore show objects only in part, and many
pairs of frames together cover an object's height, length or width while neither frame does
alone: the minimal covering pairs that object size questions are asked about
(docs/labels.md#coverage).

Several such scans are planned per scene and the best is kept (``partial_view_score``): the
frames that ``multispa prepare`` keeps (every fifth, valid pose) are checked against the scene's
mesh as the pipeline would, favouring minimal covering pairs for every dimension, a share of
pairs of frames in the 6–35 % overlap band of camera movement questions, and few steep views.

Modules: ``camera_pose`` (angles to poses, smooth keyframes, jitter), ``free_space`` (clearance,
walking grid, routes), ``gaze`` (a visit's looks, view angles and turn rates), ``scan_plan``
(visits filling a scan), ``scan_score`` (scoring candidate scans); this module draws candidate
scans and keeps the best (``handheld_path``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from multispa.synth.camera_pose import (
    jitter,
    look_rotation,
    poses_from,
    quantise_pixels,
    smooth_keyframes,
)
from multispa.synth.free_space import clearance
from multispa.synth.gaze import gaze_angles
from multispa.synth.scan_plan import first_visits, plan_scan
from multispa.synth.scan_score import BAND_SHARE, partial_view_score, score_world
from multispa.synth.world import PlacedObject

# Imported from here by the synthesizers (scannet_synth, tapvid_synth).
__all__ = ["handheld_path", "look_rotation", "poses_from", "quantise_pixels"]

MIN_CLEARANCE_M = 0.32
"""Smallest horizontal clearance the final (smoothed) path may have; else the plan is redrawn."""


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
    plan = plan_scan(
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
    key_yaw, key_pitch = gaze_angles(key_times, eyes, key_points, key_override)
    # Hold the first and last gaze over the whole clip.
    key_times = np.concatenate([[min(0.0, key_times[0] - 1e-3)], key_times, [duration + 1.0]])
    key_yaw = np.concatenate([key_yaw[:1], key_yaw, key_yaw[-1:]])
    key_pitch = np.concatenate([key_pitch[:1], key_pitch, key_pitch[-1:]])
    return xy, smooth_keyframes(key_times, key_yaw, t), smooth_keyframes(key_times, key_pitch, t)


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
    angles = jitter(rng, t, 0.15, 3)
    shake = jitter(rng, t, 0.0015, 3)
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

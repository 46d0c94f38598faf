"""Benchmark: camera poses from the static scene for a 300-frame × 1,000-track clip, one core.

Clip: a 6 m × 6 m × 2.7 m room seen by a camera that walks a circle and turns (yaw 150°, pitch
and roll waves) over 300 frames; 850 tracks on the static room, 150 on three boxes that move
about 1 m and turn. Tracks are given in each frame's camera, with Gaussian noise of 1.5 mm per
coordinate (ADT-like), stored as float32.

Two cases, each timed for ``multispa.geometry.static_poses.static_scene_poses`` (CPU time,
median of 15 runs, numpy single-threaded):

1. **clean**: the rigid segmentation separated the room (850 tracks) from the boxes;
2. **merged**: all 1,000 tracks in one group (what the segmentation does with slowly moving
   objects, here exaggerated), so the fit runs over every track and trims the 150 that do not
   stay rigid: the worst case.

Reference: the same estimate written as a per-frame Python loop (one ``np.linalg.svd`` and one
residual per frame, two passes), timed in the same run on the clean case; its poses are compared
with the vectorised ones. The time of the rigid segmentation itself (``rigid_groups``, one
``pdist`` per frame) is printed for context. Target: clean case < 50 ms.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_poses.py [--json PATH]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from multispa.geometry.rigid import rigid_groups  # noqa: E402
from multispa.geometry.static_poses import static_scene_poses  # noqa: E402
from report import add_json_option, write_results  # noqa: E402

FRAMES = 300
STATIC_TRACKS = 850
BOX_TRACKS = 150
NOISE_M = 0.0015
REPEATS = 15


def make_clip(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame tracks ``(T, N, 3)`` float32 (room first) and true ``world_from_cam``."""
    t = np.linspace(0.0, 1.0, FRAMES)
    room = rng.uniform([-3.0, -3.0, 0.0], [3.0, 3.0, 2.7], (STATIC_TRACKS, 3))
    boxes = []
    for k in range(3):
        local = rng.uniform(-0.25, 0.25, (BOX_TRACKS // 3, 3))
        turn = Rotation.from_euler("z", (60.0 + 30 * k) * t[:, None], degrees=True).as_matrix()
        path = np.column_stack(
            [np.cos(2.1 * k) + 0.8 * t, np.sin(2.1 * k) + 0.3 * np.sin(5 * t), 0.8 + 0.2 * t]
        )
        boxes.append(np.einsum("tij,nj->tni", turn, local) + path[:, None])
    world = np.concatenate([np.broadcast_to(room, (FRAMES, STATIC_TRACKS, 3)), *boxes], axis=1)
    angles = np.column_stack([150 * t, 10 * np.sin(7 * t), 4 * np.sin(11 * t)])
    rotation = Rotation.from_euler("zyx", angles, degrees=True).as_matrix()
    centre = np.column_stack([2.0 * np.cos(3 * t), 2.0 * np.sin(3 * t), 1.6 + 0.05 * t])
    world_from_cam = np.tile(np.eye(4), (FRAMES, 1, 1))
    world_from_cam[:, :3, :3], world_from_cam[:, :3, 3] = rotation, centre
    cam = np.einsum("tji,tnj->tni", rotation, world - centre[:, None])
    cam += rng.normal(0.0, NOISE_M, cam.shape)
    return cam.astype(np.float32), world_from_cam


def _kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One frame: ``target ≈ R·source + t`` for ``(M, 3)`` points (textbook Kabsch)."""
    p_mean, q_mean = source.mean(axis=0), target.mean(axis=0)
    u, _, vt = np.linalg.svd((source - p_mean).T @ (target - q_mean))
    sign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    rotation = vt.T @ np.diag([1.0, 1.0, sign]) @ u.T
    return rotation, q_mean - rotation @ p_mean


def naive_poses(tracks: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two-pass estimate as a per-frame loop: ``world_from_cam`` and residuals."""
    points = tracks[:, members].astype(np.float64)
    aligned = []
    for frame in points:
        rotation, shift = _kabsch(frame, points[0])
        aligned.append(frame @ rotation.T + shift)
    structure = np.mean(aligned, axis=0)
    poses, residuals = [], []
    for frame in points:
        rotation, shift = _kabsch(frame, structure)
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = rotation, shift
        poses.append(pose)
        offsets = frame @ rotation.T + shift - structure
        residuals.append(np.sqrt(np.mean(np.sum(offsets**2, axis=1))))
    first = np.linalg.inv(poses[0])
    return np.array([first @ pose for pose in poses]), np.array(residuals)


def cpu_ms(function: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median CPU time of ``function`` over ``repeats`` runs, milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(1000.0 * (time.process_time() - start))
    return float(np.median(times))


def errors(world_from_cam: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Worst rotation (degrees) and position (mm) error against the truth, frame 0 as world."""
    relative = np.linalg.inv(truth[0]) @ truth
    delta = np.swapaxes(world_from_cam[:, :3, :3], 1, 2) @ relative[:, :3, :3]
    angle = np.degrees(Rotation.from_matrix(delta).magnitude()).max()
    shift = np.linalg.norm(world_from_cam[:, :3, 3] - relative[:, :3, 3], axis=1).max()
    return float(angle), 1000.0 * float(shift)


def main() -> None:
    """Build the clip, time both cases and the loop reference, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_json_option(parser)
    args = parser.parse_args()
    summary: list[str] = []
    tracks, truth = make_clip(np.random.default_rng(0))
    room = np.arange(STATIC_TRACKS)
    clean = [room, *np.split(np.arange(STATIC_TRACKS, STATIC_TRACKS + BOX_TRACKS), 3)]
    merged = [np.arange(STATIC_TRACKS + BOX_TRACKS)]
    print(f"clip: {FRAMES} frames × {tracks.shape[1]} tracks ({STATIC_TRACKS} static), "
          f"noise {1000 * NOISE_M:g} mm per coordinate; numpy threads: 1; CPU time, median of "
          f"{REPEATS}")
    for name, groups in (("clean", clean), ("merged", merged)):
        poses = static_scene_poses(tracks, groups)
        assert poses.usable and poses.world_from_cam is not None, poses.message
        angle, shift_mm = errors(poses.world_from_cam, truth)
        milliseconds = cpu_ms(lambda groups=groups: static_scene_poses(tracks, groups))
        print(f"static_scene_poses ({name}: {poses.inliers.size} of {groups[0].size} group "
              f"tracks kept): {milliseconds:.1f} ms (target < 50 ms); worst residual "
              f"{1000 * (poses.worst_residual_m or 0.0):.2f} mm; error vs truth "
              f"{angle:.4f}°, {shift_mm:.3f} mm")
        summary.append(f"{name} static group ({poses.inliers.size} of {groups[0].size} tracks "
                       f"kept): {milliseconds:.1f} ms per clip (target < 50 ms), error vs truth "
                       f"{angle:.4f}°, {shift_mm:.3f} mm")
    reference, residuals = naive_poses(tracks, room)
    vectorised = static_scene_poses(tracks, clean)
    assert vectorised.world_from_cam is not None and vectorised.residual_m is not None
    loop_ms = cpu_ms(lambda: naive_poses(tracks, room), repeats=5)
    fast_ms = cpu_ms(lambda: static_scene_poses(tracks, clean))
    print(f"per-frame loop reference (clean): {loop_ms:.1f} ms -> vectorised {fast_ms:.1f} ms "
          f"({loop_ms / fast_ms:.1f}x); max |pose difference| "
          f"{np.abs(reference - vectorised.world_from_cam).max():.2e}, max |residual "
          f"difference| {np.abs(residuals - vectorised.residual_m).max():.2e} m")
    summary.append(f"per-frame loop reference {loop_ms:.1f} ms, vectorised {fast_ms:.1f} ms "
                   f"({loop_ms / fast_ms:.1f}x)")
    start = time.process_time()
    rigid_groups(tracks)
    segmentation_s = time.process_time() - start
    print(f"context: rigid_groups (segmentation, one pdist per frame): {segmentation_s:.2f} s")
    write_results(
        args.json,
        title=f"Camera poses from the static scene, {FRAMES} frames × {tracks.shape[1]} tracks, "
              "one core",
        summary=summary,
        notes=[f"CPU time, median of {REPEATS} runs, numpy single-threaded; track noise "
               f"{1000 * NOISE_M:g} mm per coordinate; the rigid segmentation before it takes "
               f"{segmentation_s:.2f} s (context)"],
    )


if __name__ == "__main__":
    main()

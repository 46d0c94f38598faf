"""Benchmark: per-frame vertex visibility for 150,000 vertices on one core.

Scene: a 8 m × 6 m × 3 m box room whose walls, floor and ceiling carry 150,000 vertices, with a
free-standing cabinet that occludes part of the walls. Depth images (640×480, ScanNet-like
intrinsics) are ray-cast analytically with 5 mm noise and 3 % holes; colour intrinsics are
ScanNet's 1296×968. Cameras walk around the room at 1.5 m height with random yaw and small pitch.

Prints the median and 90th-percentile time per frame over 50 frames and the mean visible
fraction. Target: median <= 10 ms. Also times ``visible_and_off_edge`` (what ``prepare`` calls:
visibility plus the off-depth-edge test of each visible vertex's 3×3 depth neighbourhood,
docs/labels.md#depth-edges), alternating with the plain call frame by frame, and prints the share
of visible vertices off depth edges.

Run: ``.venv/bin/python benchmarks/bench_visibility.py [--json PATH]``
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from multispa.geometry.transforms import rigid_transform  # noqa: E402
from multispa.geometry.visibility import (  # noqa: E402
    visible_and_off_edge,
    visible_vertex_indices,
)
from multispa.scenes.types import Intrinsics  # noqa: E402
from report import add_json_option, write_results  # noqa: E402

ROOM_MIN = np.array([0.0, 0.0, 0.0])
ROOM_MAX = np.array([8.0, 6.0, 3.0])
CABINET_MIN = np.array([3.0, 2.5, 0.0])
CABINET_MAX = np.array([4.0, 3.5, 2.0])
COLOR = Intrinsics(fx=1170.2, fy=1170.2, cx=647.8, cy=483.8, width=1296, height=968)
DEPTH = Intrinsics(fx=577.6, fy=577.6, cx=318.9, cy=238.4, width=640, height=480)


def sample_box_surface(
    rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, n: int
) -> np.ndarray:
    """``(n, 3)`` float32 points uniformly on the surface of an axis-aligned box."""
    size = hi - lo
    areas = np.array([size[1] * size[2], size[0] * size[2], size[0] * size[1]] * 2)
    face = rng.choice(6, size=n, p=areas / areas.sum())
    points = lo + rng.random((n, 3)) * size
    axis = face % 3
    at_max = face >= 3
    points[np.arange(n), axis] = np.where(at_max, hi[axis], lo[axis])
    return points.astype(np.float32)


def look(yaw_deg: float, pitch_deg: float, centre: np.ndarray) -> np.ndarray:
    """``world_from_cam`` (4, 4) for a camera at ``centre`` with the given yaw/pitch, z up."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    forward = np.array([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return rigid_transform(np.stack([right, down, forward], axis=1), centre)


def ray_cast_depth(world_from_cam: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Analytic depth image ``(480, 640)`` float32 of the room and cabinet, with noise and holes."""
    cols, rows = np.meshgrid(np.arange(DEPTH.width), np.arange(DEPTH.height))
    dirs_cam = np.stack(
        [(cols - DEPTH.cx) / DEPTH.fx, (rows - DEPTH.cy) / DEPTH.fy, np.ones(cols.shape)], axis=-1
    )  # z component 1: the ray parameter is the depth
    rotation = world_from_cam[:3, :3]
    origin = world_from_cam[:3, 3]
    dirs = dirs_cam @ rotation.T
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        bound = np.where(dirs > 0, ROOM_MAX, ROOM_MIN)
        t_wall = np.min(np.where(dirs != 0, (bound - origin) * inv, np.inf), axis=-1)
        t1 = (CABINET_MIN - origin) * inv
        t2 = (CABINET_MAX - origin) * inv
    t_near = np.max(np.minimum(t1, t2), -1)
    t_far = np.min(np.maximum(t1, t2), -1)
    hit = (t_near <= t_far) & (t_near > 0)
    depth = np.where(hit, np.minimum(t_near, t_wall), t_wall)
    depth = depth + rng.normal(0.0, 0.005, depth.shape)
    depth[rng.random(depth.shape) < 0.03] = 0.0
    return depth.astype(np.float32)


def main() -> None:
    """Build the scene, time 50 frames, print (and optionally write) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_json_option(parser)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    num_vertices = 150_000
    walls = sample_box_surface(rng, ROOM_MIN, ROOM_MAX, 130_000)
    cabinet = sample_box_surface(rng, CABINET_MIN, CABINET_MAX, num_vertices - 130_000)
    points_world = np.concatenate([walls, cabinet])
    frames = []
    for _ in range(50):
        centre = np.array([rng.uniform(1.0, 7.0), rng.uniform(0.7, 2.0), 1.5])
        pose = look(rng.uniform(-180, 180), rng.uniform(-20, 10), centre)
        frames.append((pose, ray_cast_depth(pose, rng)))

    visible_vertex_indices(points_world, frames[0][0], COLOR, frames[0][1], DEPTH)  # warm-up
    times_ms = []
    edge_times_ms = []
    fractions = []
    off_edge_fractions = []
    for pose, depth_m in frames:
        start = time.perf_counter()
        index = visible_vertex_indices(points_world, pose, COLOR, depth_m, DEPTH)
        times_ms.append(1000.0 * (time.perf_counter() - start))
        fractions.append(index.size / num_vertices)
        start = time.perf_counter()
        _, off_edge = visible_and_off_edge(points_world, pose, COLOR, depth_m, DEPTH)
        edge_times_ms.append(1000.0 * (time.perf_counter() - start))
        off_edge_fractions.append(float(np.mean(off_edge)) if off_edge.size else 0.0)
    times = np.array(times_ms)
    edge_times = np.array(edge_times_ms)
    print(f"vertices: {num_vertices:,}  frames: {len(frames)}  threads: 1")
    print(f"mean visible fraction: {100 * np.mean(fractions):.1f} %")
    median, p90 = f"{np.median(times):.2f}", f"{np.percentile(times, 90):.2f}"
    print(
        f"visibility per frame: median {median} ms, "
        f"p90 {p90} ms, min {times.min():.2f} ms (target <= 10 ms)"
    )
    write_results(
        args.json,
        title=f"Per-frame vertex visibility, {num_vertices:,} vertices, one core",
        summary=[
            f"visibility of {num_vertices:,} vertices: median {median} ms per frame, p90 {p90} "
            f"ms ({len(frames)} frames, one thread)",
        ],
        notes=[
            f"Wall clock; mean visible fraction {100 * np.mean(fractions):.1f} %; target: "
            "median <= 10 ms.",
        ],
    )
    print(
        f"visibility + off-edge test per frame: median {np.median(edge_times):.2f} ms, "
        f"p90 {np.percentile(edge_times, 90):.2f} ms, min {edge_times.min():.2f} ms; "
        f"{100 * np.mean(off_edge_fractions):.1f} % of visible vertices off depth edges"
    )


if __name__ == "__main__":
    main()

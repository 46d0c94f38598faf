"""Pinhole projection and back-projection (docs/labels.md#projection).

Convention: OpenCV camera axes (+x right, +y down, +z forward); depth is camera-frame z in metres.
A pixel coordinate ``u`` runs along the width and ``v`` along the height, both from the top-left;
the pixel with integer index ``(col, row)`` sits at ``(u, v) = (col, row)`` (no half-pixel shift:
the intrinsics are used exactly as stored, and a continuous coordinate maps to the pixel
``round(u)``).
"""

from __future__ import annotations

import numpy as np

from multispa.geometry.transforms import expect_shape
from multispa.scenes.types import Intrinsics

__all__ = [
    "in_bounds",
    "project_in_bounds",
    "project_points",
    "unproject_depth",
    "unproject_points",
]


def project_points(points_cam: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points to pixels: ``u = fx·x/z + cx``, ``v = fy·y/z + cy``.

    Args:
        points_cam: ``(..., N, 3)`` points in the camera frame, metres.
        intrinsics: the camera's pinhole intrinsics.

    Returns:
        ``uv_px``: ``(..., N, 2)`` float64 pixel coordinates; NaN where ``z <= 0`` (no warning is
        raised; use :func:`in_bounds` for the validity mask).
        ``z``: ``(..., N)`` float64 camera-frame depth, metres.

    >>> from multispa.scenes.types import Intrinsics
    >>> k = Intrinsics(fx=100.0, fy=100.0, cx=50.0, cy=40.0, width=100, height=80)
    >>> uv_px, z = project_points(np.array([[0.5, -0.2, 2.0]]), k)
    >>> uv_px.astype(int).tolist(), z.tolist()
    ([[75, 30]], [2.0])
    """
    expect_shape(points_cam, "(..., N, 3)", "points_cam")
    pts = np.asarray(points_cam, dtype=np.float64)
    z = pts[..., 2]
    front = z > 0
    xy_over_z = np.full((*pts.shape[:-1], 2), np.nan, dtype=np.float64)
    np.divide(pts[..., :2], z[..., None], out=xy_over_z, where=front[..., None])
    uv_px = xy_over_z * np.array([intrinsics.fx, intrinsics.fy]) + np.array(
        [intrinsics.cx, intrinsics.cy]
    )
    return uv_px, z.copy()


def in_bounds(uv_px: np.ndarray, z: np.ndarray, width: int, height: int) -> np.ndarray:
    """Mask of projections that are in bounds: ``z > 0``, ``0 <= u < W`` and ``0 <= v < H``.

    Args:
        uv_px: ``(..., N, 2)`` pixel coordinates (NaN allowed, then False).
        z: ``(..., N)`` camera-frame depth, metres.
        width, height: image size, pixels.

    Returns:
        ``(..., N)`` bool.

    >>> in_bounds(np.array([[0.0, 0.0], [100.0, 5.0], [3.0, 4.0]]), np.array([1.0, 1.0, -1.0]),
    ...           100, 80).tolist()
    [True, False, False]
    """
    expect_shape(uv_px, "(..., N, 2)", "uv_px")
    uv = np.asarray(uv_px)
    u = uv[..., 0]
    v = uv[..., 1]
    return (np.asarray(z) > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def project_in_bounds(
    points_cam: np.ndarray, intrinsics: Intrinsics
) -> tuple[np.ndarray, np.ndarray]:
    """Project and test bounds in one call.

    Args:
        points_cam: ``(..., N, 3)`` camera-frame points, metres.
        intrinsics: intrinsics whose ``width``/``height`` define the image.

    Returns:
        ``uv_px``: ``(..., N, 2)`` float64 pixels (NaN behind the camera);
        ``in_front_and_inside``: ``(..., N)`` bool.
    """
    uv_px, z = project_points(points_cam, intrinsics)
    return uv_px, in_bounds(uv_px, z, intrinsics.width, intrinsics.height)


def unproject_points(uv_px: np.ndarray, depth_m: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Back-project pixels with known depth: ``x = (u − cx)·z/fx``, ``y = (v − cy)·z/fy``.

    Args:
        uv_px: ``(..., 2)`` pixel coordinates.
        depth_m: ``(...)`` camera-frame z, metres (broadcast with ``uv_px[..., 0]``).
        intrinsics: the camera's intrinsics.

    Returns:
        ``(..., 3)`` float64 points in the camera frame, metres.

    >>> from multispa.scenes.types import Intrinsics
    >>> k = Intrinsics(fx=100.0, fy=100.0, cx=50.0, cy=40.0, width=100, height=80)
    >>> unproject_points(np.array([75.0, 30.0]), np.array(2.0), k).tolist()
    [0.5, -0.2, 2.0]
    """
    expect_shape(uv_px, "(..., 2)", "uv_px")
    uv = np.asarray(uv_px, dtype=np.float64)
    z = np.asarray(depth_m, dtype=np.float64)
    x = (uv[..., 0] - intrinsics.cx) / intrinsics.fx * z
    y = (uv[..., 1] - intrinsics.cy) / intrinsics.fy * z
    x, y, z = np.broadcast_arrays(x, y, z)
    return np.stack([x, y, z], axis=-1)


def unproject_depth(depth_m: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Back-project a depth image: pixel ``(col, row)`` at ``(u, v) = (col, row)``.

    Args:
        depth_m: ``(H, W)`` depth in metres (0 = no measurement; such pixels give the origin).
        intrinsics: intrinsics of the depth camera; ``(height, width)`` must equal ``(H, W)``.

    Returns:
        ``(H, W, 3)`` float32 points in the camera frame, metres.

    Raises:
        ShapeError: when the image is not ``(intrinsics.height, intrinsics.width)``.
    """
    expect_shape(depth_m, f"({intrinsics.height}, {intrinsics.width})", "depth_m")
    height, width = np.shape(depth_m)
    z = np.asarray(depth_m, dtype=np.float64)
    u = np.arange(width, dtype=np.float64)
    v = np.arange(height, dtype=np.float64)
    out = np.empty((height, width, 3), dtype=np.float32)
    out[..., 0] = ((u - intrinsics.cx) / intrinsics.fx)[None, :] * z
    out[..., 1] = ((v - intrinsics.cy) / intrinsics.fy)[:, None] * z
    out[..., 2] = z
    return out

"""Rigid transforms: inversion, application to points, relative poses, shape checks.

Convention: a transform is named ``dst_from_src`` and maps homogeneous points of frame ``src`` to
frame ``dst``: ``p_dst = dst_from_src @ [p_src; 1]``. Composition reads right to left:
``cam1_from_cam2 = invert_rigid(world_from_cam1) @ world_from_cam2``. All transform maths is done
in float64; translations are in metres.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from multispa.errors import ShapeError

__all__ = [
    "apply_transform",
    "expect_shape",
    "invert_rigid",
    "relative_pose",
    "rigid_transform",
    "rigidity_defect",
]

_DIM = re.compile(r"^(\d+|[A-Za-z_][A-Za-z0-9_]*)$")


def expect_shape(array: np.ndarray, spec: str, name: str) -> np.ndarray:
    """Check ``array`` against a shape written as in the docstrings and return it unchanged.

    ``spec`` is a tuple of comma-separated dimensions: integers must match exactly, names
    (``N``, ``P``...) match any size, and a leading ``...`` matches any number of leading
    dimensions, e.g. ``"(..., N, 3)"``, ``"(4, 4)"``, ``"(P,)"``.

    Raises:
        ShapeError: naming ``name``, the expected shape and the shape found.
    """
    leading, dims = _shape_spec(spec)
    shape = np.shape(array)
    ok = len(shape) >= len(dims) if leading else len(shape) == len(dims)
    if ok:
        tail = shape[len(shape) - len(dims) :]
        ok = all(d is None or d == s for d, s in zip(dims, tail, strict=True))
    if not ok:
        raise ShapeError(f"{name}: expected shape {spec}, found {tuple(shape)}")
    return array


@functools.lru_cache(maxsize=256)
def _shape_spec(spec: str) -> tuple[bool, tuple[int | None, ...]]:
    """Parsed :func:`expect_shape` spec: (leading ``...``, each dimension's size or None)."""
    inner = spec.strip()
    if not (inner.startswith("(") and inner.endswith(")")):
        raise ValueError(f"bad shape spec {spec!r}")
    parts = [p.strip() for p in inner[1:-1].split(",") if p.strip()]
    leading = bool(parts) and parts[0] == "..."
    dims = parts[1:] if leading else parts
    if any(not _DIM.match(d) for d in dims):
        raise ValueError(f"bad shape spec {spec!r}")
    return leading, tuple(int(d) if d.isdigit() else None for d in dims)


def rigid_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Assemble ``dst_from_src`` from a rotation and a translation.

    Args:
        rotation: ``(..., 3, 3)`` rotation matrix (columns are the src axes in dst).
        translation: ``(..., 3)`` src origin expressed in dst, metres.

    Returns:
        ``(..., 4, 4)`` float64 homogeneous transform with last row ``[0, 0, 0, 1]``.

    >>> rigid_transform(np.eye(3), np.array([1, 2, 3]))[:3, 3].astype(int).tolist()
    [1, 2, 3]
    """
    expect_shape(rotation, "(..., 3, 3)", "rotation")
    expect_shape(translation, "(..., 3)", "translation")
    rotation = np.asarray(rotation, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    lead = np.broadcast_shapes(rotation.shape[:-2], translation.shape[:-1])
    out = np.zeros((*lead, 4, 4), dtype=np.float64)
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1.0
    return out


def invert_rigid(dst_from_src: np.ndarray) -> np.ndarray:
    """Invert rigid transforms exactly: ``src_from_dst = [Rᵀ, −Rᵀt; 0, 1]``.

    Args:
        dst_from_src: ``(..., 4, 4)`` rigid transforms (orthonormal rotation, not checked).

    Returns:
        ``(..., 4, 4)`` float64 ``src_from_dst``.

    Convention: for a camera pose ``world_from_cam`` this returns ``cam_from_world``.

    >>> world_from_cam = rigid_transform(np.eye(3), np.array([1.0, 2.0, 3.0]))
    >>> invert_rigid(world_from_cam)[:3, 3].astype(int).tolist()
    [-1, -2, -3]
    """
    expect_shape(dst_from_src, "(..., 4, 4)", "dst_from_src")
    matrix = np.asarray(dst_from_src, dtype=np.float64)
    rotation_t = np.swapaxes(matrix[..., :3, :3], -1, -2)
    translation = matrix[..., :3, 3]
    return rigid_transform(rotation_t, -np.einsum("...ij,...j->...i", rotation_t, translation))


def apply_transform(dst_from_src: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points from ``src`` to ``dst``: ``p_dst = R·p_src + t``.

    Args:
        dst_from_src: ``(..., 4, 4)`` rigid (or affine) transforms.
        points: ``(..., N, 3)`` points in ``src``, metres; leading dimensions broadcast with the
            transform's.

    Returns:
        ``(..., N, 3)`` float64 points in ``dst``.

    >>> shift = rigid_transform(np.eye(3), np.array([0.0, 0.0, 2.0]))
    >>> apply_transform(shift, np.array([[1.0, 0.0, 0.0]])).astype(int).tolist()
    [[1, 0, 2]]
    """
    expect_shape(dst_from_src, "(..., 4, 4)", "dst_from_src")
    expect_shape(points, "(..., N, 3)", "points")
    matrix = np.asarray(dst_from_src, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    rotation_t = np.swapaxes(matrix[..., :3, :3], -1, -2)
    return pts @ rotation_t + matrix[..., None, :3, 3]


def relative_pose(world_from_cam1: np.ndarray, world_from_cam2: np.ndarray) -> np.ndarray:
    """Pose of camera 2 in camera 1: ``cam1_from_cam2 = inv(world_from_cam1) · world_from_cam2``.

    Args:
        world_from_cam1: ``(..., 4, 4)`` camera-to-world pose of camera 1.
        world_from_cam2: ``(..., 4, 4)`` camera-to-world pose of camera 2.

    Returns:
        ``(..., 4, 4)`` float64 ``cam1_from_cam2``.

    Convention (docs/labels.md#relative-motion): ``cam1_from_cam2[:3, 3]`` is camera 2's centre in
    camera-1 axes (OpenCV: +x right, +y down, +z forward), metres. A common world alignment cancels
    out.

    >>> cam1 = rigid_transform(np.eye(3), np.array([1.0, 0.0, 0.0]))
    >>> cam2 = rigid_transform(np.eye(3), np.array([1.0, 0.0, 5.0]))
    >>> relative_pose(cam1, cam2)[:3, 3].astype(int).tolist()
    [0, 0, 5]
    """
    expect_shape(world_from_cam1, "(..., 4, 4)", "world_from_cam1")
    expect_shape(world_from_cam2, "(..., 4, 4)", "world_from_cam2")
    return invert_rigid(world_from_cam1) @ np.asarray(world_from_cam2, dtype=np.float64)


def rigidity_defect(matrices: np.ndarray) -> np.ndarray:
    """How far ``(..., 4, 4)`` matrices are from rigid transforms: ``(...,)`` float64.

    The defect is the largest absolute entry of ``RᵀR − I`` (R the top-left 3×3) and of
    ``bottom row − [0, 0, 0, 1]``; it is ``inf`` where an entry is not finite or ``det R ≤ 0``
    (a reflection, or a singular matrix such as all zeros). A rigid transform stored in float32
    has a defect around 1e-7.
    """
    matrices = np.asarray(matrices, dtype=np.float64)
    expect_shape(matrices, "(..., 4, 4)", "matrices")
    finite = np.isfinite(matrices).all(axis=(-2, -1))
    safe = np.where(finite[..., None, None], matrices, 0.0)
    rotation = safe[..., :3, :3]
    gram = np.einsum("...ji,...jk->...ik", rotation, rotation) - np.eye(3)
    bottom = safe[..., 3, :] - np.array([0.0, 0.0, 0.0, 1.0])
    defect = np.maximum(np.abs(gram).max(axis=(-2, -1)), np.abs(bottom).max(axis=-1))
    return np.where(finite & (np.linalg.det(rotation) > 0), defect, np.inf)

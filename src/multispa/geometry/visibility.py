"""Depth-tested vertex visibility per frame (docs/labels.md#visibility, rule (a)).

A vertex ``p`` (aligned world) is visible in a frame iff, with ``(x, y, z) = cam_from_world·p``:

1. it is in bounds in the colour image: ``z > 0``, ``0 <= u < W``, ``0 <= v < H`` with
   ``u = fx·x/z + cx`` and ``v = fy·y/z + cy`` (colour intrinsics);
2. its depth pixel ``(round(u_d), round(v_d))``, projected through the **depth** intrinsics, lies
   inside the depth image. ``round`` is half away from zero, as everywhere in the project
   (docs/labels.md#rounding); it is computed as ``floor(u_d + 0.5)`` for ``u_d > −0.5``, and ``u_d
   <= −0.5`` (which rounds to −1 or less) is outside;
3. the depth there is valid, ``D > 0``;
4. ``|z − D| <= max(abs_tol_m, rel_tol·z)`` (defaults 0.05 m and 0.05).

All arithmetic is float64 (the points are float32 on input). The world-to-camera transform is
applied once, as three matrix-vector products over all vertices; every later step works only on
the vertices that survived the previous one (depth pixels are computed only for vertices in the
colour image).

Rule (p) (points off depth edges): a visible vertex is **off depth edges** when, besides, the
depth pixel and its 8 neighbours all lie inside the depth image, all have a valid depth
``D > 0``, and each satisfies ``|z − D| <= max(abs_tol_m, rel_tol·z)`` with ``z`` the vertex's
depth (:func:`depth_neighbourhood_ok`, :func:`visible_and_off_edge`).
"""

from __future__ import annotations

import numpy as np

from multispa.geometry.transforms import expect_shape, invert_rigid
from multispa.scenes.types import Intrinsics

__all__ = [
    "depth_neighbourhood_ok",
    "visible_and_off_edge",
    "visible_vertex_indices",
    "visible_vertices",
]

#: Row and column offsets of a depth pixel and its 8 neighbours (rule (p)).
_NEIGHBOURHOOD = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0))


def _visible_points(
    points_world: np.ndarray,
    world_from_cam: np.ndarray,
    color: Intrinsics,
    depth_m: np.ndarray,
    depth: Intrinsics,
    abs_tol_m: float,
    rel_tol: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Conditions 1–4 of the module docstring.

    Returns:
        ``index`` ``(K,)`` int64 ascending visible vertices, their depth ``z`` ``(K,)`` float64
        metres and their depth pixel's ``row`` and ``col`` ``(K,)`` intp.
    """
    expect_shape(points_world, "(P, 3)", "points_world")
    expect_shape(world_from_cam, "(4, 4)", "world_from_cam")
    expect_shape(depth_m, f"({depth.height}, {depth.width})", "depth_m")
    cam_from_world = invert_rigid(world_from_cam)
    rotation = cam_from_world[:3, :3]
    translation = cam_from_world[:3, 3]

    # Camera coordinates of every vertex: three matrix-vector products (no (P, 3) temporary).
    z = points_world @ rotation[2]
    z += translation[2]
    x = points_world @ rotation[0]
    x += translation[0]
    y = points_world @ rotation[1]
    y += translation[1]
    index = np.flatnonzero(z > 0)
    z = z[index]
    x_over_z = x[index]
    x_over_z /= z
    y_over_z = y[index]
    y_over_z /= z

    # 1. in bounds in the colour image.
    u = x_over_z * color.fx
    u += color.cx
    v = y_over_z * color.fy
    v += color.cy
    selected = np.flatnonzero((u >= 0) & (u < color.width) & (v >= 0) & (v < color.height))
    index = index[selected]
    z = z[selected]

    # 2. depth pixel inside the depth image (round half away from zero), candidates only.
    u_d = x_over_z[selected]
    u_d *= depth.fx
    u_d += depth.cx
    v_d = y_over_z[selected]
    v_d *= depth.fy
    v_d += depth.cy
    selected = np.flatnonzero(
        (u_d > -0.5) & (u_d < depth.width - 0.5) & (v_d > -0.5) & (v_d < depth.height - 0.5)
    )
    index = index[selected]
    z = z[selected]
    col = (u_d[selected] + 0.5).astype(np.intp)  # truncation == floor: the argument is > 0
    row = (v_d[selected] + 0.5).astype(np.intp)

    # 3-4. valid depth and two-sided tolerance.
    flat = np.ravel(np.asarray(depth_m))
    sensed = flat[row * depth.width + col]
    tolerance = np.maximum(rel_tol * z, abs_tol_m)
    visible = np.flatnonzero((sensed > 0) & (np.abs(z - sensed) <= tolerance))
    return index[visible], z[visible], row[visible], col[visible]


def visible_vertex_indices(
    points_world: np.ndarray,
    world_from_cam: np.ndarray,
    color: Intrinsics,
    depth_m: np.ndarray,
    depth: Intrinsics,
    *,
    abs_tol_m: float = 0.05,
    rel_tol: float = 0.05,
) -> np.ndarray:
    """Indices of the vertices visible in one frame, ascending.

    Args:
        points_world: ``(P, 3)`` float32 (or float64) vertices, metres, in the world of the pose.
        world_from_cam: ``(4, 4)`` camera-to-world pose of the frame.
        color: colour-camera intrinsics (their ``width``/``height`` bound the projection).
        depth_m: ``(Hd, Wd)`` depth image, metres, 0 = no measurement.
        depth: depth-camera intrinsics; ``(height, width)`` must equal ``(Hd, Wd)``.
        abs_tol_m: absolute depth tolerance, metres.
        rel_tol: relative depth tolerance (fraction of ``z``).

    Returns:
        ``(K,)`` int32 ascending vertex indices (a CSR row).

    Raises:
        ShapeError: when an array has the wrong shape or the depth image does not match ``depth``.
    """
    index, _, _, _ = _visible_points(
        points_world, world_from_cam, color, depth_m, depth, abs_tol_m, rel_tol
    )
    return index.astype(np.int32)


def depth_neighbourhood_ok(
    depth_m: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    z_m: np.ndarray,
    *,
    abs_tol_m: float = 0.05,
    rel_tol: float = 0.05,
) -> np.ndarray:
    """Rule (p) for points whose own depth pixel already passed the depth test (rule (a)).

    Args:
        depth_m: ``(Hd, Wd)`` depth image, metres, 0 = no measurement.
        row, col: ``(N,)`` integer depth pixel of each point (inside the image).
        z_m: ``(N,)`` each point's camera-frame depth, metres.
        abs_tol_m, rel_tol: the visibility tolerance ``max(abs_tol_m, rel_tol·z)``.

    Returns:
        ``(N,)`` bool: the 8 neighbours of the pixel are inside the image, have ``D > 0`` and
        lie within the tolerance of ``z``.
    """
    depth_m = np.asarray(depth_m)
    height, width = depth_m.shape
    row = np.asarray(row, dtype=np.intp)
    col = np.asarray(col, dtype=np.intp)
    z = np.asarray(z_m, dtype=np.float64)
    ok = (row >= 1) & (row <= height - 2) & (col >= 1) & (col <= width - 2)
    inner = np.flatnonzero(ok)
    flat = np.ravel(depth_m)
    centre = row[inner] * width + col[inner]
    z_inner = z[inner]
    tolerance = np.maximum(rel_tol * z_inner, abs_tol_m)
    good = np.ones(inner.size, dtype=bool)
    for dr, dc in _NEIGHBOURHOOD:
        sensed = flat[centre + (dr * width + dc)]
        good &= (sensed > 0) & (np.abs(z_inner - sensed) <= tolerance)
    ok[inner] = good
    return ok


def visible_and_off_edge(
    points_world: np.ndarray,
    world_from_cam: np.ndarray,
    color: Intrinsics,
    depth_m: np.ndarray,
    depth: Intrinsics,
    *,
    abs_tol_m: float = 0.05,
    rel_tol: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """The visible vertices of one frame (rule (a)) and which of them are off depth edges
    (rule (p)).

    Same arguments as :func:`visible_vertex_indices`.

    Returns:
        ``visible`` ``(K,)`` int32 ascending vertex indices (equal to
        :func:`visible_vertex_indices`) and ``off_edge`` ``(K,)`` bool.
    """
    index, z, row, col = _visible_points(
        points_world, world_from_cam, color, depth_m, depth, abs_tol_m, rel_tol
    )
    off_edge = depth_neighbourhood_ok(depth_m, row, col, z, abs_tol_m=abs_tol_m, rel_tol=rel_tol)
    return index.astype(np.int32), off_edge


def visible_vertices(
    points_world: np.ndarray,
    world_from_cam: np.ndarray,
    color: Intrinsics,
    depth_m: np.ndarray,
    depth: Intrinsics,
    *,
    abs_tol_m: float = 0.05,
    rel_tol: float = 0.05,
) -> np.ndarray:
    """Visibility mask of all vertices in one frame.

    Same arguments as :func:`visible_vertex_indices`.

    Returns:
        ``(P,)`` bool, True where the vertex is visible.
    """
    index = visible_vertex_indices(
        points_world, world_from_cam, color, depth_m, depth, abs_tol_m=abs_tol_m, rel_tol=rel_tol
    )
    mask = np.zeros(np.shape(points_world)[0], dtype=bool)
    mask[index] = True
    return mask

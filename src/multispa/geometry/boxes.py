"""Gravity-aligned minimum-area oriented boxes (docs/labels.md#object-boxes, rule (g)).

Convention: points are in the aligned world (+z up, metres). The box is vertical: its height is
the z extent, and its horizontal footprint is the minimum-area rectangle enclosing the xy
projection (rotating calipers: one side of an optimal rectangle lies on a convex-hull edge).
``length`` is the longer horizontal side and ``width`` the shorter; ``length_axis`` and
``width_axis`` are unit vectors in the xy plane (z = 0) with ``width_axis = z × length_axis``
(so ``(length_axis, width_axis, +z)`` is right-handed) and ``length_axis`` pointing to x > 0
(or +y when it is parallel to y).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from multispa.geometry.transforms import expect_shape

__all__ = ["OrientedBox", "gravity_aligned_obb", "min_area_rectangle"]

# Edges are processed in chunks so that the (edges × hull vertices) products stay small.
_CHUNK_ELEMENTS = 1 << 20


@dataclass(frozen=True, eq=False)
class OrientedBox:
    """A vertical box: a rotated rectangle in xy extruded over ``[z_min, z_max]``.

    Attributes:
        centre: ``(3,)`` float64 box centre, metres.
        length: longer horizontal side, metres.
        width: shorter horizontal side, metres (0 for collinear footprints).
        height: ``z_max − z_min``, metres.
        length_axis: ``(3,)`` float64 unit vector along ``length`` (z = 0).
        width_axis: ``(3,)`` float64 unit vector along ``width`` (z = 0).
        z_min, z_max: vertical extent, metres.
    """

    centre: np.ndarray
    length: float
    width: float
    height: float
    length_axis: np.ndarray
    width_axis: np.ndarray
    z_min: float
    z_max: float

    def corners(self) -> np.ndarray:
        """The 8 corners, ``(8, 3)`` float64, metres (bottom four first)."""
        half_l = 0.5 * self.length * self.length_axis
        half_w = 0.5 * self.width * self.width_axis
        signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64)
        ring = self.centre[:2] + signs[:, :1] * half_l[:2] + signs[:, 1:] * half_w[:2]
        bottom = np.column_stack([ring, np.full(4, self.z_min)])
        top = np.column_stack([ring, np.full(4, self.z_max)])
        return np.concatenate([bottom, top])


def _hull_xy(points_xy: np.ndarray) -> np.ndarray | None:
    """Convex-hull vertices ``(H, 2)`` in counter-clockwise order, or None when degenerate."""
    if points_xy.shape[0] < 3:
        return None
    try:
        hull = ConvexHull(points_xy)
    except QhullError:
        return None
    return points_xy[hull.vertices]


def _canonical_axis(axis_xy: np.ndarray) -> np.ndarray:
    """Unit 2-D direction flipped to x > 0 (or +y when x == 0)."""
    axis = axis_xy / np.linalg.norm(axis_xy)
    if axis[0] < 0 or (axis[0] == 0 and axis[1] < 0):
        axis = -axis
    return axis


def min_area_rectangle(points_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-area rectangle enclosing 2-D points.

    Args:
        points_xy: ``(N, 2)`` points, N >= 1.

    Returns:
        ``centre``: ``(2,)`` float64; ``sides``: ``(2,)`` float64 ``[length, width]`` with
        ``length >= width``; ``length_axis``: ``(2,)`` float64 unit vector (x > 0, or +y).

    Degenerate inputs: a single (repeated) point gives sides 0 and axis +x; collinear points
    give width 0 and the axis along the line.
    """
    expect_shape(points_xy, "(N, 2)", "points_xy")
    xy = np.asarray(points_xy, dtype=np.float64)
    if xy.shape[0] == 0:
        raise ValueError("min_area_rectangle: no points")
    hull = _hull_xy(xy)
    if hull is None:
        # Fewer than three points or all collinear: measure along the principal direction.
        centred = xy - xy.mean(axis=0)
        if not np.any(centred):
            return xy[0].copy(), np.zeros(2), np.array([1.0, 0.0])
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        axis = _canonical_axis(vt[0])
        normal = np.array([-axis[1], axis[0]])
        along = xy @ axis
        across = xy @ normal
        lo = np.array([along.min(), across.min()])
        hi = np.array([along.max(), across.max()])
        mid = 0.5 * (lo + hi)
        return mid[0] * axis + mid[1] * normal, hi - lo, axis

    edges = np.roll(hull, -1, axis=0) - hull
    lengths = np.linalg.norm(edges, axis=1)
    edges = edges[lengths > 0] / lengths[lengths > 0, None]
    normals = np.column_stack([-edges[:, 1], edges[:, 0]])
    chunk = max(1, _CHUNK_ELEMENTS // hull.shape[0])
    best = (np.inf, 0, np.zeros(2), np.zeros(2))  # area, edge, lo, hi
    for start in range(0, edges.shape[0], chunk):
        e = edges[start : start + chunk]
        n = normals[start : start + chunk]
        along = e @ hull.T  # (chunk, H)
        across = n @ hull.T
        lo = np.stack([along.min(axis=1), across.min(axis=1)], axis=1)
        hi = np.stack([along.max(axis=1), across.max(axis=1)], axis=1)
        areas = np.prod(hi - lo, axis=1)
        k = int(np.argmin(areas))
        if areas[k] < best[0]:
            best = (float(areas[k]), start + k, lo[k], hi[k])
    _, k, lo, hi = best
    edge, normal = edges[k], normals[k]
    mid = 0.5 * (lo + hi)
    centre = mid[0] * edge + mid[1] * normal
    sides = hi - lo
    axis = edge if sides[0] >= sides[1] else normal
    return centre, np.sort(sides)[::-1].copy(), _canonical_axis(axis)


def gravity_aligned_obb(points: np.ndarray) -> OrientedBox:
    """Gravity-aligned minimum-area oriented box of a point set.

    Args:
        points: ``(N, 3)`` points (float32 or float64), aligned world, metres; N >= 1.

    Returns:
        The :class:`OrientedBox` (see the module docstring for the axis conventions).

    >>> corners = np.array([[x, y, z] for x in (0, 2) for y in (0, 1) for z in (0, 3)], float)
    >>> box = gravity_aligned_obb(corners)
    >>> [float(box.length), float(box.width), float(box.height)], box.length_axis.tolist()
    ([2.0, 1.0, 3.0], [1.0, 0.0, 0.0])
    """
    expect_shape(points, "(N, 3)", "points")
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] == 0:
        raise ValueError("gravity_aligned_obb: no points")
    centre_xy, sides, axis_xy = min_area_rectangle(pts[:, :2])
    z_min = float(pts[:, 2].min())
    z_max = float(pts[:, 2].max())
    length_axis = np.array([axis_xy[0], axis_xy[1], 0.0])
    width_axis = np.array([-axis_xy[1], axis_xy[0], 0.0])
    return OrientedBox(
        centre=np.array([centre_xy[0], centre_xy[1], 0.5 * (z_min + z_max)]),
        length=float(sides[0]),
        width=float(sides[1]),
        height=z_max - z_min,
        length_axis=length_axis,
        width_axis=width_axis,
        z_min=z_min,
        z_max=z_max,
    )

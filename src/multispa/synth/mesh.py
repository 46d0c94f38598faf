"""Tessellation of box faces into vertex grids, triangles and over-segmentation patches.

Every box face (room floor/walls/ceiling seen from inside, object parts seen from outside) is a
regular grid of vertices with at most ``spacing`` metres between neighbours, including its edges,
so every vertex lies exactly on a rendered surface. Each grid cell is two triangles wound so that
their normal points out of the surface (into the room for walls). Segments are rectangular
patches of about ``segment_size`` metres per face, numbered consecutively per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLOOR_FACE = 4
"""Face code ``2·axis + positive`` of a box's bottom face (and of the room floor)."""


@dataclass
class FaceGrid:
    """The tessellation of some faces of one box.

    Attributes:
        points: ``(n, 3)`` float64 vertices in the box's own frame, metres.
        faces: ``(n,)`` int8 face code of each vertex.
        triangles: ``(m, 3)`` int64 indices into ``points``.
        segments: ``(n,)`` int64 patch number, 0-based and consecutive within this grid.
    """

    points: np.ndarray
    faces: np.ndarray
    triangles: np.ndarray
    segments: np.ndarray

    def subset(self, keep: np.ndarray) -> FaceGrid:
        """Keep the vertices where ``keep`` ``(n,)`` is true and the triangles among them.

        Segment numbers are renumbered to stay consecutive.
        """
        new_index = np.cumsum(keep) - 1
        triangles = self.triangles[keep[self.triangles].all(axis=1)]
        _, segments = np.unique(self.segments[keep], return_inverse=True)
        return FaceGrid(
            points=self.points[keep],
            faces=self.faces[keep],
            triangles=new_index[triangles],
            segments=segments.astype(np.int64),
        )


def _axis_samples(half: float, spacing: float) -> np.ndarray:
    count = max(2, int(np.ceil(2.0 * half / spacing - 1e-9)) + 1)
    return np.linspace(-half, half, count)


def tessellate_box(
    half: np.ndarray,
    face_codes: list[int],
    spacing: float,
    segment_size: float,
    *,
    inward: bool = False,
) -> FaceGrid:
    """Grid the faces ``face_codes`` of the box [−half, half].

    Args:
        half: ``(3,)`` half extents, metres.
        face_codes: faces to tessellate, each ``2·axis + (1 if on the + side)``.
        spacing: maximum distance between neighbouring grid vertices, metres.
        segment_size: approximate side of a segment patch, metres.
        inward: wind triangles so that normals point into the box (a room seen from inside).
    """
    all_points, all_faces, all_triangles, all_segments = [], [], [], []
    vertex_offset = 0
    segment_offset = 0
    for code in face_codes:
        axis, positive = divmod(code, 2)
        first, second = [b for b in range(3) if b != axis]
        s1 = _axis_samples(half[first], spacing)
        s2 = _axis_samples(half[second], spacing)
        g1, g2 = np.meshgrid(s1, s2, indexing="ij")
        points = np.empty((g1.size, 3))
        points[:, axis] = half[axis] if positive else -half[axis]
        points[:, first] = g1.reshape(-1)
        points[:, second] = g2.reshape(-1)

        n1, n2 = s1.size, s2.size
        corner = (np.arange(n1 - 1)[:, None] * n2 + np.arange(n2 - 1)[None, :]).reshape(-1)
        a, b, c, d = corner, corner + n2, corner + n2 + 1, corner + 1
        # (first, second, axis) is right-handed up to a sign: + side and outward → a, b, c.
        outward_is_ccw = ((second - first) % 3 == 1) == bool(positive)
        if outward_is_ccw != inward:
            triangles = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
        else:
            triangles = np.concatenate([np.stack([a, c, b], 1), np.stack([a, d, c], 1)])

        cells1 = max(1, int(np.floor(2.0 * half[first] / segment_size + 0.5)))
        cells2 = max(1, int(np.floor(2.0 * half[second] / segment_size + 0.5)))
        i1 = np.minimum(
            ((g1 + half[first]) / (2 * half[first]) * cells1).astype(np.int64), cells1 - 1
        )
        i2 = np.minimum(
            ((g2 + half[second]) / (2 * half[second]) * cells2).astype(np.int64), cells2 - 1
        )
        segments = (i1 * cells2 + i2).reshape(-1) + segment_offset

        all_points.append(points)
        all_faces.append(np.full(points.shape[0], code, dtype=np.int8))
        all_triangles.append(triangles + vertex_offset)
        all_segments.append(segments)
        vertex_offset += points.shape[0]
        segment_offset += cells1 * cells2
    return FaceGrid(
        points=np.concatenate(all_points),
        faces=np.concatenate(all_faces),
        triangles=np.concatenate(all_triangles).astype(np.int64),
        segments=np.concatenate(all_segments),
    )


def inside_footprints(
    points_xy: np.ndarray, box_from_world: np.ndarray, halves: np.ndarray
) -> np.ndarray:
    """Whether floor points ``(n, 2)`` lie strictly inside any box footprint.

    Args:
        points_xy: ``(n, 2)`` world x, y.
        box_from_world: ``(B, 4, 4)`` world-to-box transforms of floor-standing boxes.
        halves: ``(B, 3)`` their half extents.

    Returns:
        ``(n,)`` bool.
    """
    inside = np.zeros(points_xy.shape[0], dtype=bool)
    for transform, half in zip(box_from_world, halves, strict=True):
        local = points_xy @ transform[:2, :2].T + transform[:2, 3]
        inside |= (np.abs(local[:, 0]) < half[0]) & (np.abs(local[:, 1]) < half[1])
    return inside

"""The annotated mesh of a synthetic scene: vertices, colours, triangles, segments, instances.

Vertex order is instance by instance: the furniture objects in ``object_id`` order, then the
structure (four walls, floor, ceiling), each instance's vertices contiguous. Object parts are
tessellated on all faces except bottoms resting on the floor; floor vertices strictly inside the
footprint of a floor-standing part are removed (nothing could see them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.synth.mesh import FLOOR_FACE, FaceGrid, inside_footprints, tessellate_box
from multispa.synth.raycast import ROOM_PART, BoxSet
from multispa.synth.shading import SurfaceTable, shade_points
from multispa.synth.world import PartIndex, RoomWorld, invert_rigid

STRUCTURE: tuple[tuple[str, int], ...] = (
    ("wall", 0),
    ("wall", 1),
    ("wall", 2),
    ("wall", 3),
    ("floor", 4),
    ("ceiling", 5),
)
"""Structural instances after the furniture: (label, room face code)."""


@dataclass(frozen=True)
class MeshGroup:
    """One annotated instance: ``objectId``, raw label, vertex range and segment ids."""

    object_id: int
    label: str
    vertex_start: int
    vertex_end: int
    segments: tuple[int, ...]
    room_face: int | None = None


@dataclass
class SceneMesh:
    """The scene mesh in the aligned world.

    Attributes:
        vertices: ``(n, 3)`` float64, metres, aligned world.
        colors: ``(n, 4)`` uint8 RGBA.
        triangles: ``(m, 3)`` int64.
        seg_indices: ``(n,)`` int64 segment id per vertex.
        groups: the instances, furniture first (``object_id`` order), then the structure.
    """

    vertices: np.ndarray
    colors: np.ndarray
    triangles: np.ndarray
    seg_indices: np.ndarray
    groups: list[MeshGroup]


def _on_floor(index: PartIndex, boxes: BoxSet) -> np.ndarray:
    """``(B,)`` bool: the box's bottom face lies on the floor (z = 0)."""
    bottom = boxes.world_from_box[:, 2, 3] - boxes.half_extents[:, 2]
    return np.abs(bottom) < 1e-9


def build_scene_mesh(
    world: RoomWorld,
    index: PartIndex,
    boxes: BoxSet,
    table: SurfaceTable,
    spacing: float,
    segment_size: float,
) -> SceneMesh:
    """Tessellate every object part and the room, colour the vertices, number the segments."""
    vertices, colors, triangles, segments = [], [], [], []
    groups: list[MeshGroup] = []
    counts = {"vertices": 0, "segments": 0}
    on_floor = _on_floor(index, boxes)

    def add(grids: Sequence[tuple[FaceGrid, np.ndarray, np.ndarray]], object_id: int,
            label: str, room_face: int | None = None) -> None:  # fmt: skip
        start, first_segment = counts["vertices"], counts["segments"]
        for grid, world_points, rgb in grids:
            vertices.append(world_points)
            colors.append(rgb)
            triangles.append(grid.triangles + counts["vertices"])
            segments.append(grid.segments + counts["segments"])
            counts["vertices"] += grid.points.shape[0]
            counts["segments"] += int(grid.segments.max()) + 1 if grid.segments.size else 0
        group_segments = tuple(range(first_segment, counts["segments"]))
        groups.append(
            MeshGroup(object_id, label, start, counts["vertices"], group_segments, room_face)
        )

    for position, obj in enumerate(world.objects):
        grids = []
        for box in np.flatnonzero(index.object_index == position):
            faces = [code for code in range(6) if not (on_floor[box] and code == FLOOR_FACE)]
            grid = tessellate_box(boxes.half_extents[box], faces, spacing, segment_size)
            transform = boxes.world_from_box[box]
            world_points = grid.points @ transform[:3, :3].T + transform[:3, 3]
            rgb = shade_points(
                np.full(grid.faces.shape[0], box), grid.faces, grid.points.astype(np.float32), table
            )
            grids.append((grid, world_points, rgb))
        add(grids, obj.object_id, obj.model.label)

    half = world.room_max / 2
    floor_boxes = np.flatnonzero(on_floor)
    box_from_world = invert_rigid(boxes.world_from_box[floor_boxes])
    for offset, (label, code) in enumerate(STRUCTURE):
        grid = tessellate_box(half, [code], spacing, segment_size, inward=True)
        world_points = grid.points + half
        if code == FLOOR_FACE and floor_boxes.size:
            keep = ~inside_footprints(
                world_points[:, :2], box_from_world, boxes.half_extents[floor_boxes]
            )
            grid = grid.subset(keep)
            world_points = world_points[keep]
        rgb = shade_points(
            np.full(grid.faces.shape[0], ROOM_PART),
            grid.faces,
            world_points.astype(np.float32),
            table,
        )
        add([(grid, world_points, rgb)], len(world.objects) + offset, label, room_face=code)

    rgb_all = np.concatenate(colors)
    rgba = np.concatenate([rgb_all, np.full((rgb_all.shape[0], 1), 255, np.uint8)], axis=1)
    return SceneMesh(
        vertices=np.concatenate(vertices),
        colors=rgba,
        triangles=np.concatenate(triangles),
        seg_indices=np.concatenate(segments),
        groups=groups,
    )


def aggregation_json(scene_id: str, groups: Sequence[MeshGroup]) -> dict[str, object]:
    """The ``<scene>.aggregation.json`` payload (keys as in ScanNet's files)."""
    return {
        "sceneId": f"scannet.{scene_id}",
        "appId": "Annotator.synthetic.1",
        "segGroups": [
            {
                "id": group.object_id,
                "objectId": group.object_id,
                "segments": list(group.segments),
                "label": group.label,
            }
            for group in groups
        ],
        "segmentsFile": f"scannet.{scene_id}_vh_clean_2.0.010000.segs.json",
    }


def segs_json(scene_id: str, seg_indices: np.ndarray, params: dict[str, str]) -> dict[str, object]:
    """The ``<scene>_vh_clean_2.0.010000.segs.json`` payload."""
    return {"params": params, "sceneId": scene_id, "segIndices": seg_indices.tolist()}

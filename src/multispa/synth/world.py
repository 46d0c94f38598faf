"""Procedural indoor worlds: a room [0, Lx]×[0, Ly]×[0, Lz] (+z up, metres) and furniture.

An object is a rigid set of axis-aligned boxes ("parts") in the object's own frame, whose origin
is the centre of its footprint on the floor, +x along its length (the longer horizontal side),
+y along its width and +z up. Every part lies inside the footprint rectangle
[−L/2, L/2]×[−W/2, W/2] and the vertical range [base, base + H], and one part spans the
footprint fully, so the gravity-aligned minimum-area box of the object is exactly L × W × H with
its axes along the object's x and y (its yaw). Shapes and looks come from ``catalogue``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.synth.raycast import BoxSet
from multispa.synth.shading import Material


@dataclass(frozen=True)
class Part:
    """One box of an object: ``centre`` and ``half`` extents in the object frame, metres."""

    centre: tuple[float, float, float]
    half: tuple[float, float, float]
    accent: bool = False
    """Whether the part uses the object's trim material instead of its main one."""


@dataclass(frozen=True)
class ObjectModel:
    """A rigid object: its parts and true oriented-box dimensions (metres)."""

    label: str
    parts: tuple[Part, ...]
    length_m: float
    width_m: float
    height_m: float
    materials: tuple[Material, Material]
    """Main and trim materials, evaluated in the object frame."""
    base_m: float = 0.0
    """Height of the object's lowest point above the floor (0 for floor-standing objects)."""


@dataclass(frozen=True)
class PlacedObject:
    """An object instance in the world.

    Attributes:
        object_id: 0-based instance id (ScanNet ``objectId``).
        model: shape and materials.
        world_from_object: ``(4, 4)`` float64; rotation about +z by ``yaw_rad``, origin at the
            footprint centre on the floor.
        yaw_rad: angle of the object's +x (length) axis from world +x, in [0, 2π).
    """

    object_id: int
    model: ObjectModel
    world_from_object: np.ndarray
    yaw_rad: float


@dataclass(frozen=True)
class RoomWorld:
    """A furnished room. ``room_max`` ``(3,)``: the room spans [0, room_max]."""

    room_max: np.ndarray
    objects: tuple[PlacedObject, ...]
    room_materials: tuple[Material, ...]
    """Six materials indexed by room face ``2·axis + (1 if max side)``: x walls, y walls,
    floor (4), ceiling (5)."""


def rotation_z(angle_rad: float) -> np.ndarray:
    """``(3, 3)`` rotation about +z by ``angle_rad``."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def invert_rigid(dst_from_src: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``(..., 4, 4)`` (transpose the rotation; exact)."""
    rotation_t = np.swapaxes(dst_from_src[..., :3, :3], -1, -2)
    out = np.zeros_like(dst_from_src, dtype=np.float64)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, dst_from_src[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def rigid(rotation: np.ndarray, translation: Sequence[float]) -> np.ndarray:
    """``(4, 4)`` float64 rigid transform from a ``(3, 3)`` rotation and a translation."""
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = translation
    return out


# --- placement -------------------------------------------------------------------------------


def footprint_corners(centre_xy: np.ndarray, yaw_rad: float, half_xy: np.ndarray) -> np.ndarray:
    """Corners ``(4, 2)`` of a rectangle with half sizes ``half_xy`` rotated by ``yaw_rad``."""
    signs = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return (signs * half_xy) @ rotation_z(yaw_rad)[:2, :2].T + centre_xy


def rectangles_overlap(corners_a: np.ndarray, corners_b: np.ndarray) -> bool:
    """Separating-axis test of two convex quadrilaterals ``(4, 2)`` (touching counts)."""
    for corners in (corners_a, corners_b):
        for k in range(2):
            edge = corners[k + 1] - corners[k]
            normal = np.array([-edge[1], edge[0]])
            pa, pb = corners_a @ normal, corners_b @ normal
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


Footprint = tuple[np.ndarray, float, np.ndarray]
"""A placed rectangle: centre ``(2,)``, yaw (radians) and half sizes ``(2,)``, metres."""


def place_objects(
    rng: np.random.Generator,
    room_max: np.ndarray,
    models: Sequence[ObjectModel],
    *,
    obstacles: Sequence[Footprint] = (),
    wall_margin: float = 0.08,
    clearance: float = 0.25,
    tries: int = 300,
) -> list[tuple[ObjectModel, np.ndarray, float]]:
    """Place models on the floor without overlap (largest first), by rejection sampling.

    Footprints keep ``wall_margin`` from the walls and ``clearance`` from each other and from
    ``obstacles``. Returns ``(model, centre_xy (2,), yaw_rad)`` for every model that found a
    place, in the order of ``models``; a model with no place after ``tries`` draws is dropped.
    """
    order = sorted(range(len(models)), key=lambda i: -models[i].length_m * models[i].width_m)
    placed: dict[int, Footprint] = {}
    for index in order:
        model = models[index]
        half = np.array([model.length_m, model.width_m]) / 2
        for _ in range(tries):
            yaw = float(rng.uniform(0.0, 2.0 * np.pi))
            centre = rng.uniform([0.0, 0.0], room_max[:2])
            corners = footprint_corners(centre, yaw, half)
            if np.any(corners < wall_margin) or np.any(corners > room_max[:2] - wall_margin):
                continue
            grown = footprint_corners(centre, yaw, half + clearance / 2)
            if any(
                rectangles_overlap(grown, footprint_corners(c, y, h + clearance / 2))
                for c, y, h in [*obstacles, *placed.values()]
            ):
                continue
            placed[index] = (centre, yaw, half)
            break
    return [(models[i], placed[i][0], placed[i][1]) for i in range(len(models)) if i in placed]


def place_wall_items(
    rng: np.random.Generator,
    room_max: np.ndarray,
    models: Sequence[ObjectModel],
    *,
    gap: float = 0.002,
    corner_margin: float = 0.25,
    tries: int = 100,
) -> list[tuple[ObjectModel, np.ndarray, float]]:
    """Put thin items flat against random walls (``gap`` metres off), not overlapping.

    The item's length runs along the wall (yaw 90° on the x walls, 0° on the y walls) and its
    width is its thickness. Returns ``(model, centre_xy, yaw_rad)`` for each placed item.
    """
    used: list[tuple[int, float, float]] = []  # (wall, start, end) along the wall
    out = []
    for model in models:
        for _ in range(tries):
            wall = int(rng.integers(0, 4))
            axis = wall // 2  # the world axis the wall is perpendicular to
            along = room_max[1 - axis]
            if along - 2 * corner_margin < model.length_m:
                continue
            low = corner_margin + model.length_m / 2
            position = float(rng.uniform(low, along - low))
            start, end = position - model.length_m / 2, position + model.length_m / 2
            if any(w == wall and start < e + 0.2 and s < end + 0.2 for w, s, e in used):
                continue
            offset = gap + model.width_m / 2
            across = offset if wall % 2 == 0 else room_max[axis] - offset
            centre = np.array([across, position]) if axis == 0 else np.array([position, across])
            used.append((wall, start, end))
            out.append((model, centre, np.pi / 2 if axis == 0 else 0.0))
            break
    return out


# --- assembly --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartIndex:
    """Where each box of an assembled ``BoxSet`` comes from.

    Attributes:
        object_index: ``(B,)`` int32 position of the owning object in the object list.
        part_index: ``(B,)`` int32 position of the part in its object's ``parts``.
        object_from_box: ``(B, 4, 4)`` float64 (a pure translation to the part centre).
        materials: one ``Material`` per box.
    """

    object_index: np.ndarray
    part_index: np.ndarray
    object_from_box: np.ndarray
    materials: tuple[Material, ...]

    @property
    def pattern_offsets(self) -> np.ndarray:
        """``(B, 3)``: object-frame point = box-local point + offset (parts are unrotated)."""
        return self.object_from_box[:, :3, 3]


def index_parts(models: Sequence[ObjectModel]) -> PartIndex:
    """Flatten the parts of ``models`` into box order (object by object, part by part)."""
    object_index, part_index, transforms, materials = [], [], [], []
    for i, model in enumerate(models):
        for j, part in enumerate(model.parts):
            object_index.append(i)
            part_index.append(j)
            transforms.append(rigid(np.eye(3), part.centre))
            materials.append(model.materials[1 if part.accent else 0])
    return PartIndex(
        object_index=np.asarray(object_index, dtype=np.int32),
        part_index=np.asarray(part_index, dtype=np.int32),
        object_from_box=np.asarray(transforms, dtype=np.float64).reshape(-1, 4, 4),
        materials=tuple(materials),
    )


def assemble_boxes(
    models: Sequence[ObjectModel], world_from_objects: np.ndarray, index: PartIndex
) -> BoxSet:
    """The ``BoxSet`` of objects at poses ``world_from_objects`` ``(O, 4, 4)``."""
    halves = [part.half for model in models for part in model.parts]
    world_from_box = world_from_objects[index.object_index] @ index.object_from_box
    return BoxSet(world_from_box, np.asarray(halves, dtype=np.float64).reshape(-1, 3))

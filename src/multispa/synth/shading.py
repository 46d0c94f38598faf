"""Procedural textures and Lambert shading of ray-cast hits and mesh vertices.

A surface's colour is ``albedo(pattern coordinates) · shade(face normal)``:

- the albedo mixes a base and an accent colour with a pattern (plain, stripes, 3-D checker or a
  noise-free triangle-wave gradient) evaluated from the hit point in the **pattern frame**: the
  owning object's frame for object parts (so a pattern runs continuously across its parts), the
  world frame for the room;
- the shade is ``AMBIENT + DIFFUSE · max(0, n · L)`` for one fixed directional light ``L``, with
  ``n`` the outward normal of the hit face (for the room: the normal pointing into the room).

Everything is a pure function of its inputs, so images and vertex colours are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispa.synth.raycast import NO_HIT, ROOM_PART, RayHits

PLAIN, STRIPES, CHECKER, GRADIENT = 0, 1, 2, 3
PATTERN_NAMES = ("plain", "stripes", "checker", "gradient")

AMBIENT = 0.42
DIFFUSE = 0.58
LIGHT_DIRECTION = np.array([0.36, 0.24, 0.90]) / np.linalg.norm([0.36, 0.24, 0.90])
"""Unit vector towards the light, world frame (+z up)."""

BACKGROUND_RGB = (0, 0, 0)
"""Colour of pixels whose ray hits nothing."""


@dataclass(frozen=True)
class Material:
    """A procedural texture.

    Attributes:
        base_rgb: base colour, three floats in [0, 1].
        accent_rgb: second colour mixed in by the pattern.
        pattern: ``PLAIN``, ``STRIPES``, ``CHECKER`` or ``GRADIENT``.
        period_m: stripe/gradient period or checker cell size, metres.
        axis: unit 3-vector (pattern frame) along which stripes and gradients vary.
    """

    base_rgb: tuple[float, float, float]
    accent_rgb: tuple[float, float, float]
    pattern: int
    period_m: float
    axis: tuple[float, float, float]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready description (for the ground-truth sidecars)."""
        return {
            "base_rgb": list(self.base_rgb),
            "accent_rgb": list(self.accent_rgb),
            "pattern": PATTERN_NAMES[self.pattern],
            "period_m": self.period_m,
            "axis": list(self.axis),
        }


def pattern_mix(material: Material, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Accent weight of the pattern at points (x, y, z) ``(n,)`` each: ``(n,)`` float32 in [0, 1].

    Computed in float32 with element-wise operations only (no BLAS), so it never depends on
    threading or on how the points are batched.
    """
    if material.pattern == PLAIN:
        return np.zeros(x.shape, dtype=np.float32)
    scale = np.float32(1.0 / material.period_m)
    if material.pattern == CHECKER:
        cells = np.floor(x * scale)
        cells += np.floor(y * scale)
        cells += np.floor(z * scale)
        return cells - np.float32(2.0) * np.floor(cells * np.float32(0.5))
    ax, ay, az = (np.float32(component) * scale for component in material.axis)
    phase = x * ax
    phase += y * ay
    phase += z * az
    if material.pattern == STRIPES:
        band = np.floor(phase)
        return band - np.float32(2.0) * np.floor(band * np.float32(0.5))
    # GRADIENT: triangle wave, 0 → 1 → 0 over one period.
    phase -= np.floor(phase)
    return np.abs(np.float32(2.0) * phase - np.float32(1.0))


def _shade_into(
    out: np.ndarray, material: Material, mix: np.ndarray, shade: np.ndarray | np.float32
) -> None:
    """Write ``(base + mix·(accent − base))·shade`` as uint8 into the planes ``out`` (3, n)."""
    for channel in range(3):
        base = np.float32(material.base_rgb[channel])
        accent = np.float32(material.accent_rgb[channel])
        value = mix * (accent - base)
        value += base
        value *= shade
        # Albedo and shade are both in [0, 1], so no clipping is needed.
        value *= np.float32(255.0)
        value += np.float32(0.5)
        out[channel] = value


def albedo(material: Material, coords: np.ndarray) -> np.ndarray:
    """Surface colour before lighting: ``(n, 3)`` float32 in [0, 1].

    Args:
        material: the texture.
        coords: ``(n, 3)`` float32 points in the pattern frame, metres.
    """
    coords = np.asarray(coords, dtype=np.float32)
    mix = pattern_mix(material, coords[:, 0], coords[:, 1], coords[:, 2])
    base = np.asarray(material.base_rgb, dtype=np.float32)
    accent = np.asarray(material.accent_rgb, dtype=np.float32)
    return base + mix[:, None] * (accent - base)


def lambert(normals_world: np.ndarray) -> np.ndarray:
    """Shade factor for unit normals ``(..., 3)``: ``(...)`` float64 in [AMBIENT, 1]."""
    return AMBIENT + DIFFUSE * np.maximum(normals_world @ LIGHT_DIRECTION, 0.0)


@dataclass(frozen=True)
class SurfaceTable:
    """How to colour every box of a ``BoxSet`` and the six room faces, for one instant.

    Attributes:
        part_materials: one ``Material`` per box.
        part_offsets: ``(B, 3)`` float32: pattern-frame point = box-local point + offset.
        part_shades: ``(B, 6)`` float32 shade per box face (face index ``2·axis + positive``).
        room_materials: six materials, one per room face (face index as above, world axes).
        room_shades: ``(6,)`` float32 shade per room face.
    """

    part_materials: tuple[Material, ...]
    part_offsets: np.ndarray
    part_shades: np.ndarray
    room_materials: tuple[Material, ...]
    room_shades: np.ndarray


def box_face_shades(box_rotations: np.ndarray) -> np.ndarray:
    """Shade of the six outward faces of boxes with rotations ``(B, 3, 3)``: ``(B, 6)`` float32."""
    normals = np.empty((box_rotations.shape[0], 6, 3))
    for axis in range(3):
        normals[:, 2 * axis] = -box_rotations[:, :, axis]
        normals[:, 2 * axis + 1] = box_rotations[:, :, axis]
    return lambert(normals).astype(np.float32)


def room_face_shades() -> np.ndarray:
    """Shade of the six room faces seen from inside: ``(6,)`` float32."""
    normals = np.zeros((6, 3))
    for axis in range(3):
        normals[2 * axis, axis] = 1.0  # the wall at the minimum faces +axis
        normals[2 * axis + 1, axis] = -1.0
    return lambert(normals).astype(np.float32)


def make_surface_table(
    part_materials: tuple[Material, ...],
    part_offsets: np.ndarray,
    box_rotations: np.ndarray,
    room_materials: tuple[Material, ...],
) -> SurfaceTable:
    """Build the table for boxes with world rotations ``(B, 3, 3)`` (normals follow them)."""
    return SurfaceTable(
        part_materials=part_materials,
        part_offsets=np.asarray(part_offsets, dtype=np.float32).reshape(-1, 3),
        part_shades=box_face_shades(np.asarray(box_rotations, dtype=np.float64).reshape(-1, 3, 3)),
        room_materials=room_materials,
        room_shades=room_face_shades(),
    )


ROOM_KEY_START = 1
"""Group keys: 0 nothing hit, 1–6 room face 0–5, 7 + b box b."""
BOX_KEY_START = 7


def shade_planar(
    part: np.ndarray, face: np.ndarray, planes: np.ndarray, table: SurfaceTable
) -> np.ndarray:
    """Colour of surface points given as coordinate planes: ``(3, n)`` uint8 RGB planes.

    Points are grouped by surface (room face or box) with one radix sort, coloured group by
    group on contiguous slices, then put back in their original order.

    Args:
        part: ``(n,)`` int box index, ``ROOM_PART`` or ``NO_HIT``.
        face: ``(n,)`` int face index ``2·axis + positive`` in the part's frame.
        planes: ``(3, n)`` float32 x, y, z of the points in the part's frame (room: world).
        table: the surface table.
    """
    count = part.shape[0]
    keys = part.astype(np.int16) + np.int16(BOX_KEY_START)
    room = part == ROOM_PART
    keys[room] = face[room].astype(np.int16) + np.int16(ROOM_KEY_START)
    keys[part == NO_HIT] = 0
    order = np.argsort(keys, kind="stable")  # radix sort for 16-bit keys
    bounds = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=BOX_KEY_START))])
    coords = np.take(np.asarray(planes, dtype=np.float32), order, axis=1)
    sorted_face = np.take(face, order).astype(np.intp)
    sorted_rgb = np.empty((3, count), dtype=np.uint8)
    sorted_rgb[:, : bounds[1]] = np.asarray(BACKGROUND_RGB, dtype=np.uint8)[:, None]
    for key in range(ROOM_KEY_START, bounds.shape[0] - 1):
        start, stop = int(bounds[key]), int(bounds[key + 1])
        if start == stop:
            continue
        x, y, z = coords[:, start:stop]
        if key < BOX_KEY_START:
            code = key - ROOM_KEY_START
            material = table.room_materials[code]
            shade: np.ndarray | np.float32 = np.float32(table.room_shades[code])
        else:
            box = key - BOX_KEY_START
            material = table.part_materials[box]
            offset = table.part_offsets[box]
            x, y, z = x + offset[0], y + offset[1], z + offset[2]
            shade = table.part_shades[box][sorted_face[start:stop]]
        mix = pattern_mix(material, x, y, z)
        _shade_into(sorted_rgb[:, start:stop], material, mix, shade)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(count)
    return np.take(sorted_rgb, inverse, axis=1)


def shade_points(
    part: np.ndarray, face: np.ndarray, local: np.ndarray, table: SurfaceTable
) -> np.ndarray:
    """Colour of surface points: ``(n, 3)`` uint8 RGB.

    Args:
        part: ``(n,)`` int box index, ``ROOM_PART`` or ``NO_HIT``.
        face: ``(n,)`` int face index ``2·axis + positive`` in the part's frame.
        local: ``(n, 3)`` float32 points in the part's frame (room: world frame), metres.
        table: the surface table.
    """
    planes = shade_planar(part, face, np.asarray(local, dtype=np.float32).T, table)
    return np.ascontiguousarray(planes.T)


def shade_view(hits: RayHits, table: SurfaceTable) -> np.ndarray:
    """Colour image of one ray-cast view: ``(H, W, 3)`` uint8 RGB."""
    height, width = hits.part.shape
    planes = np.moveaxis(hits.local, -1, 0).reshape(3, -1)  # free when the caster's planes
    rgb = shade_planar(hits.part.reshape(-1), hits.face.reshape(-1), planes, table)
    return np.ascontiguousarray(rgb.T).reshape(height, width, 3)

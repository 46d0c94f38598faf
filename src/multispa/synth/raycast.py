"""Exact, vectorised ray casting of a box world: a room seen from inside plus oriented boxes.

Every pixel's ray passes through the integer pixel coordinate (u, v) = (column, row), the same
point that ``project_points`` maps a 3-D point to, so a mesh vertex that projects to (u, v) lies
on the surface the nearest pixel shows. Ray parameters are camera-frame z-depths: the camera-frame
direction of pixel (u, v) is ((u − cx)/fx, (v − cy)/fy, 1).

Speed: in any frame whose axes are fixed (world, or one box's frame), each component of the ray
direction is an affine function a·x'(u) + b·y'(v) + c of the pixel's normalised coordinates, so
it is one outer sum of a row and a column vector; no ``(H, W, 3)`` matrix product is needed.
The room (seen from inside) is hit where 1/t is largest over its six walls, and 1/t for one wall
is itself affine. A box (seen from outside) is hit through one of its at most three front faces;
each front face is tested only inside the pixel rectangle its four corners project to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispa.scenes.types import Intrinsics

ROOM_PART = -1
"""``part`` value of pixels that hit the room's floor, walls or ceiling."""

NO_HIT = -2
"""``part`` value of pixels whose ray hits nothing (only possible without a room)."""


@dataclass(frozen=True)
class BoxSet:
    """B oriented boxes.

    Attributes:
        world_from_box: ``(B, 4, 4)`` float64 rigid transforms; the box spans
            [−half, +half] along each axis of its own frame.
        half_extents: ``(B, 3)`` float64 half sizes, metres.
    """

    world_from_box: np.ndarray
    half_extents: np.ndarray

    def __len__(self) -> int:
        return int(self.half_extents.shape[0])


@dataclass
class RayHits:
    """What each pixel of one view sees.

    Attributes:
        depth_m: ``(H, W)`` float32 camera-frame z of the hit, metres (0 where nothing is hit).
        part: ``(H, W)`` int32 index of the hit box, ``ROOM_PART`` for the room, ``NO_HIT``.
        face: ``(H, W)`` int8 face index ``2·axis + (1 if the face is on the + side else 0)``
            in the hit part's own frame (room: world axes); −1 where nothing is hit.
        local: ``(H, W, 3)`` float32 hit point in the hit part's own frame (room: world frame);
            0 where nothing is hit. On a box face the coordinate across the face is exactly ±half.
            ``render_view`` returns a view of ``(3, H, W)`` coordinate planes (not C-contiguous).
    """

    depth_m: np.ndarray
    part: np.ndarray
    face: np.ndarray
    local: np.ndarray


def _invert_rigid(dst_from_src: np.ndarray) -> np.ndarray:
    rotation = dst_from_src[..., :3, :3]
    translation = dst_from_src[..., :3, 3]
    out = np.zeros_like(dst_from_src)
    rotation_t = np.swapaxes(rotation, -1, -2)
    out[..., :3, :3] = rotation_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rotation_t, translation)
    out[..., 3, 3] = 1.0
    return out


def pixel_directions(intrinsics: Intrinsics) -> np.ndarray:
    """Camera-frame ray directions with unit z for every pixel: ``(H, W, 3)`` float32."""
    x, y = _normalised_axes(intrinsics)
    directions = np.empty((intrinsics.height, intrinsics.width, 3), dtype=np.float32)
    directions[..., 0] = x[None, :]
    directions[..., 1] = y[:, None]
    directions[..., 2] = 1.0
    return directions


def _normalised_axes(intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """``x'`` per column ``(W,)`` and ``y'`` per row ``(H,)``, float32 (rounded from float64)."""
    x = (np.arange(intrinsics.width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    y = (np.arange(intrinsics.height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    return x.astype(np.float32), y.astype(np.float32)


class _Screen:
    """Normalised pixel axes and the affine-component evaluator over a pixel window."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = x.astype(np.float64)
        self.y = y.astype(np.float64)

    def affine(
        self, coefficients: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)
    ) -> np.ndarray:
        """``a·x'(u) + b·y'(v) + c`` over the window, ``(h, w)`` float32."""
        a, b, c = coefficients
        column = (a * self.x[cols]).astype(np.float32)
        row = (b * self.y[rows] + c).astype(np.float32)
        return np.add.outer(row, column)


def _cast_room(
    screen: _Screen,
    rotation: np.ndarray,
    origin: np.ndarray,
    room_min: np.ndarray,
    room_max: np.ndarray,
    depth: np.ndarray,
    part: np.ndarray,
    face: np.ndarray,
    local: np.ndarray,
) -> None:
    """Fill every pixel with the wall its ray leaves the room through (camera inside)."""
    best: np.ndarray | None = None
    for axis in range(3):
        for positive in (False, True):
            wall = room_max[axis] if positive else room_min[axis]
            # 1/t of this wall: D_axis / (wall − o_axis); positive only for rays heading to it.
            inverse_t = screen.affine(rotation[axis] / (wall - origin[axis]))
            code = 2 * axis + int(positive)
            if best is None:
                best = inverse_t
                face[:] = code
                continue
            closer = inverse_t > best
            np.copyto(best, inverse_t, where=closer)
            np.copyto(face, np.int8(code), where=closer)
    assert best is not None
    with np.errstate(divide="ignore"):
        np.divide(np.float32(1.0), best, out=depth)
    part[:] = ROOM_PART
    for axis in range(3):
        component = screen.affine(rotation[axis])
        np.multiply(component, depth, out=local[axis])
        local[axis] += np.float32(origin[axis])


def _front_faces(
    cam_from_boxes: np.ndarray, halves: np.ndarray, intrinsics: Intrinsics, near: float
) -> list[tuple[int, int, float, slice, slice]]:
    """The box faces that face the camera, with the pixel window each can cover.

    Returns ``(box, axis, sign, rows, cols)`` in box order; ``sign`` is +1 for the face at
    +half. A face behind the camera is dropped; one crossing the near plane gets the full image.
    """
    box_from_cams = _invert_rigid(cam_from_boxes)
    origins = box_from_cams[:, :3, 3]
    outside = np.abs(origins) > halves  # (B, 3): this axis has a face towards the camera
    signs = np.where(origins > 0, 1.0, -1.0)
    # Four corners of each (box, axis) front face, in the box frame: (B, 3, 4, 3).
    pattern = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    corners = np.empty((halves.shape[0], 3, 4, 3))
    for axis in range(3):
        first, second = [b for b in range(3) if b != axis]
        corners[:, axis, :, axis] = (signs[:, axis] * halves[:, axis])[:, None]
        corners[:, axis, :, first] = pattern[None, :, 0] * halves[:, first, None]
        corners[:, axis, :, second] = pattern[None, :, 1] * halves[:, second, None]
    rotation = cam_from_boxes[:, None, :3, :3]
    cam = np.einsum(
        "bfkj,bfij->bfki", corners, np.broadcast_to(rotation, (*corners.shape[:2], 3, 3))
    )
    cam += cam_from_boxes[:, None, None, :3, 3]
    z = cam[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * cam[..., 0] / z + intrinsics.cx
        v = intrinsics.fy * cam[..., 1] / z + intrinsics.cy
    in_front = z > near
    faces = []
    full = (slice(0, intrinsics.height), slice(0, intrinsics.width))
    inside = np.all(~outside, axis=1)
    for box, axis in zip(*np.nonzero(outside & ~inside[:, None]), strict=True):
        front = in_front[box, axis]
        if not front.any():
            continue
        if not front.all():
            rows, cols = full
        else:
            u0 = max(int(np.floor(u[box, axis].min())), 0)
            u1 = min(int(np.ceil(u[box, axis].max())) + 1, intrinsics.width)
            v0 = max(int(np.floor(v[box, axis].min())), 0)
            v1 = min(int(np.ceil(v[box, axis].max())) + 1, intrinsics.height)
            if u0 >= u1 or v0 >= v1:
                continue
            rows, cols = slice(v0, v1), slice(u0, u1)
        faces.append((int(box), int(axis), float(signs[box, axis]), rows, cols))
    return faces


def _cast_face(
    screen: _Screen,
    index: int,
    box_from_cam: np.ndarray,
    half: np.ndarray,
    axis: int,
    sign: float,
    rows: slice,
    cols: slice,
    near: float,
    depth: np.ndarray,
    part: np.ndarray,
    face: np.ndarray,
    local: np.ndarray,
) -> None:
    """Overwrite the pixels of the window where this front face is the nearest hit so far."""
    rotation = box_from_cam[:3, :3]
    origin = box_from_cam[:3, 3]
    plane = sign * half[axis]
    t = np.float32(plane - origin[axis]) / screen.affine(rotation[axis], rows, cols)
    hit = t > near
    hit &= t < depth[rows, cols]
    in_plane = []
    for other in range(3):
        if other == axis:
            continue
        coordinate = screen.affine(rotation[other], rows, cols)
        coordinate *= t
        coordinate += np.float32(origin[other])
        hit &= np.abs(coordinate) <= np.float32(half[other])
        in_plane.append((other, coordinate))
    if not hit.any():
        return
    np.copyto(depth[rows, cols], t, where=hit)
    np.copyto(part[rows, cols], np.int32(index), where=hit)
    np.copyto(face[rows, cols], np.int8(2 * axis + (sign > 0)), where=hit)
    np.copyto(local[axis][rows, cols], np.float32(plane), where=hit)
    for other, coordinate in in_plane:
        np.copyto(local[other][rows, cols], coordinate, where=hit)


def render_view(
    world_from_cam: np.ndarray,
    intrinsics: Intrinsics,
    boxes: BoxSet,
    room_min: np.ndarray | None = None,
    room_max: np.ndarray | None = None,
    *,
    near: float = 1e-3,
    directions: np.ndarray | None = None,
) -> RayHits:
    """Ray cast one view of the box world.

    Args:
        world_from_cam: ``(4, 4)`` camera-to-world pose (OpenCV camera axes).
        intrinsics: the camera; the output has its resolution.
        boxes: the oriented boxes; the camera must be outside every box.
        room_min, room_max: ``(3,)`` corners of the axis-aligned room (world frame); the camera
            must be inside it. Without a room, rays that miss every box have depth 0.
        near: hits closer than this z-depth are ignored, metres.
        directions: ``pixel_directions(intrinsics)``, optional (only its per-column x' and
            per-row y' are used; the caster never needs the full array).

    Returns:
        The per-pixel hits (``RayHits``).
    """
    if directions is not None:
        screen = _Screen(directions[0, :, 0], directions[:, 0, 1])
    else:
        screen = _Screen(*_normalised_axes(intrinsics))
    height, width = intrinsics.height, intrinsics.width
    world_from_cam = np.asarray(world_from_cam, dtype=np.float64)
    cam_from_world = _invert_rigid(world_from_cam)

    depth = np.full((height, width), np.inf, dtype=np.float32)
    part = np.full((height, width), NO_HIT, dtype=np.int32)
    face = np.full((height, width), -1, dtype=np.int8)
    local = np.zeros((3, height, width), dtype=np.float32)

    if room_min is not None and room_max is not None:
        _cast_room(
            screen,
            world_from_cam[:3, :3],
            world_from_cam[:3, 3],
            np.asarray(room_min, dtype=np.float64),
            np.asarray(room_max, dtype=np.float64),
            depth,
            part,
            face,
            local,
        )

    if len(boxes):
        cam_from_boxes = cam_from_world[None] @ np.asarray(boxes.world_from_box, np.float64)
        box_from_cams = _invert_rigid(cam_from_boxes)
        half_extents = np.asarray(boxes.half_extents, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for index, axis, sign, rows, cols in _front_faces(
                cam_from_boxes, half_extents, intrinsics, near
            ):
                _cast_face(
                    screen,
                    index,
                    box_from_cams[index],
                    half_extents[index],
                    axis,
                    sign,
                    rows,
                    cols,
                    near,
                    depth,
                    part,
                    face,
                    local,
                )

    missed = ~np.isfinite(depth)
    if missed.any():
        depth[missed] = 0.0
        part[missed] = NO_HIT
        face[missed] = -1
        local[:, missed] = 0.0
    # (H, W, 3) view of the (3, H, W) planes: no copy, and shading reads the planes directly.
    return RayHits(depth_m=depth, part=part, face=face, local=np.moveaxis(local, 0, -1))

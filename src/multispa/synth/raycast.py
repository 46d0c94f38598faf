"""Exact, vectorised ray casting of a box world: a room seen from inside plus oriented boxes.

Every pixel's ray passes through the integer pixel coordinate (u, v) = (column, row), the same
point that ``project_points`` maps a 3-D point to, so a mesh vertex that projects to (u, v) lies
on the surface the nearest pixel shows. Ray parameters are camera-frame z-depths: the camera-frame
direction of pixel (u, v) is ((u − cx)/fx, (v − cy)/fy, 1).

Boxes are culled in screen space (the pixel rectangle their corners project to) so a box costs
only the pixels it can cover.
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
        local: ``(H, W, 3)`` float32 hit point in the hit part's own frame (room: world frame).
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
    u = (np.arange(intrinsics.width, dtype=np.float64) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(intrinsics.height, dtype=np.float64) - intrinsics.cy) / intrinsics.fy
    directions = np.empty((intrinsics.height, intrinsics.width, 3), dtype=np.float32)
    directions[..., 0] = u[None, :]
    directions[..., 1] = v[:, None]
    directions[..., 2] = 1.0
    return directions


def _slab_entry(
    origin: np.ndarray, directions: np.ndarray, half: np.ndarray, near: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entry parameter of rays into an axis-aligned box [−half, half] seen from outside.

    Args:
        origin: ``(3,)`` ray origin in the box frame.
        directions: ``(n, 3)`` float32 ray directions in the box frame.
        half: ``(3,)`` half extents.
        near: minimum accepted parameter.

    Returns:
        ``(t (n,), hit (n,) bool, face (n,) int8)``.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inverse = 1.0 / directions
        t_low = (-half - origin).astype(np.float32) * inverse
        t_high = (half - origin).astype(np.float32) * inverse
    t_min = np.minimum(t_low, t_high)
    t_max = np.maximum(t_low, t_high)
    axis = np.argmax(np.nan_to_num(t_min, nan=-np.inf), axis=1)
    rows = np.arange(t_min.shape[0])
    t_near = t_min[rows, axis]
    t_far = np.min(np.nan_to_num(t_max, nan=np.inf), axis=1)
    hit = (t_near <= t_far) & (t_near > near)
    # The ray enters through the face on the side it comes from: the + face when it travels −.
    positive_face = directions[rows, axis] < 0
    face = (2 * axis + positive_face).astype(np.int8)
    return t_near, hit, face


def _room_exit(
    origin: np.ndarray, directions: np.ndarray, room_min: np.ndarray, room_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Exit parameter ``(...,)`` and face ``(...,)`` int8 of rays leaving a room from inside.

    Args:
        origin: ``(3,)`` ray origin, world frame, inside the room.
        directions: ``(..., 3)`` float32 world-frame directions.
        room_min, room_max: ``(3,)`` room corners.
    """
    t_exit = np.full(directions.shape[:-1], np.inf, dtype=np.float32)
    face = np.full(directions.shape[:-1], -1, dtype=np.int8)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for axis in range(3):
            component = directions[..., axis]
            positive = component > 0
            wall = np.where(positive, np.float32(room_max[axis]), np.float32(room_min[axis]))
            t_axis = (wall - np.float32(origin[axis])) / component
            t_axis[component == 0] = np.inf
            closer = t_axis < t_exit
            t_exit[closer] = t_axis[closer]
            face[closer] = 2 * axis + positive[closer]
    return t_exit, face


def _screen_window(
    cam_from_box: np.ndarray, half: np.ndarray, intrinsics: Intrinsics, near: float
) -> tuple[int, int, int, int] | None:
    """Pixel rectangle (u0, u1, v0, v1), end-exclusive, that a box can cover; None if none."""
    signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing="ij")).reshape(3, 8).T
    corners = (signs * half) @ cam_from_box[:3, :3].T + cam_from_box[:3, 3]
    z = corners[:, 2]
    if np.all(z <= near):
        return None
    if np.any(z <= near):
        return 0, intrinsics.width, 0, intrinsics.height
    u = intrinsics.fx * corners[:, 0] / z + intrinsics.cx
    v = intrinsics.fy * corners[:, 1] / z + intrinsics.cy
    u0 = max(int(np.floor(u.min())), 0)
    u1 = min(int(np.ceil(u.max())) + 1, intrinsics.width)
    v0 = max(int(np.floor(v.min())), 0)
    v1 = min(int(np.ceil(v.max())) + 1, intrinsics.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return u0, u1, v0, v1


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
        boxes: the oriented boxes.
        room_min, room_max: ``(3,)`` corners of the axis-aligned room (world frame); the camera
            must be inside it. Without a room, rays that miss every box have depth 0.
        near: hits closer than this z-depth are ignored, metres.
        directions: ``pixel_directions(intrinsics)``, to reuse across views.

    Returns:
        The per-pixel hits (``RayHits``).
    """
    if directions is None:
        directions = pixel_directions(intrinsics)
    height, width = intrinsics.height, intrinsics.width
    cam_from_world = _invert_rigid(world_from_cam)
    rotation_world_from_cam = world_from_cam[:3, :3].astype(np.float32)
    origin_world = world_from_cam[:3, 3]

    depth = np.full((height, width), np.inf, dtype=np.float32)
    part = np.full((height, width), NO_HIT, dtype=np.int32)
    face = np.full((height, width), -1, dtype=np.int8)

    if room_min is not None and room_max is not None:
        directions_world = directions @ rotation_world_from_cam.T
        t_exit, room_face = _room_exit(origin_world, directions_world, room_min, room_max)
        depth[:] = t_exit
        part[:] = ROOM_PART
        face[:] = room_face

    cam_from_boxes = cam_from_world[None] @ boxes.world_from_box
    for index in range(len(boxes)):
        cam_from_box = cam_from_boxes[index]
        half = boxes.half_extents[index]
        window = _screen_window(cam_from_box, half, intrinsics, near)
        if window is None:
            continue
        u0, u1, v0, v1 = window
        box_from_cam = _invert_rigid(cam_from_box)
        ray_dirs = directions[v0:v1, u0:u1].reshape(-1, 3) @ box_from_cam[:3, :3].T.astype(
            np.float32
        )
        t_near, hit, box_face = _slab_entry(box_from_cam[:3, 3], ray_dirs, half, near)
        window_depth = depth[v0:v1, u0:u1].reshape(-1)
        closer = hit & (t_near < window_depth)
        if not np.any(closer):
            continue
        window_depth[closer] = t_near[closer]
        depth[v0:v1, u0:u1] = window_depth.reshape(v1 - v0, u1 - u0)
        window_part = part[v0:v1, u0:u1].reshape(-1)
        window_part[closer] = index
        part[v0:v1, u0:u1] = window_part.reshape(v1 - v0, u1 - u0)
        window_face = face[v0:v1, u0:u1].reshape(-1)
        window_face[closer] = box_face[closer]
        face[v0:v1, u0:u1] = window_face.reshape(v1 - v0, u1 - u0)

    missed = ~np.isfinite(depth)
    depth[missed] = 0.0
    part[missed] = NO_HIT
    face[missed] = -1

    points_cam = directions * depth[..., None]
    local = (points_cam @ rotation_world_from_cam.T + origin_world.astype(np.float32)).astype(
        np.float32
    )
    for index in np.unique(part[part >= 0]):
        selected = part == index
        box_from_world = _invert_rigid(boxes.world_from_box[index]).astype(np.float32)
        local[selected] = local[selected] @ box_from_world[:3, :3].T + box_from_world[:3, 3]
    return RayHits(depth_m=depth, part=part, face=face, local=local)

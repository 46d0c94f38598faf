"""One synthetic TAPVid-3D clip: rigid objects moving over a static room.

Two kinds, like the real subsets:

- ``adt`` (Aria Digital Twin-like): 512×512, a walking camera circling the action; the file
  carries ``extrinsics_w2c`` or not (see :mod:`multispa.synth.tapvid_tracks`), and readers
  then take the poses from the static scene;
- ``pstudio`` (Panoptic Studio-like): 640×360, a fixed camera, file **without** extrinsics, so
  the clip's world is the camera frame (readers then use identity, as for the real files).

The world is a room with static furniture and 2–3 props that fly along smooth paths while
turning about +z (30–115°/s) and tilting by up to ~12°. Tracks are sampled from rendered pixels
of a few query frames (on moving props, static objects and the room itself), so each is visible
at least once. A track is visible in frame t iff its projection is in bounds, the pixel nearest
to it shows the track's own part, and the rendered depth there is within
``max(0.02 m, 0.02·z)`` of the track's z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multispa.scenes.types import Intrinsics
from multispa.synth.camera import look_rotation, poses_from, quantise_pixels
from multispa.synth.catalogue import build_object, distinct_hues, room_materials
from multispa.synth.config import SynthSettings
from multispa.synth.shading import Material
from multispa.synth.world import (
    ObjectModel,
    PartIndex,
    index_parts,
    rigid,
    rotation_z,
)

VISIBILITY_TOLERANCE_M = 0.02
VISIBILITY_TOLERANCE_REL = 0.02
MOVER_LABELS = ("box", "book", "cushion", "suitcase")
SIDE_LABELS = ("chair", "cabinet", "nightstand", "trash can", "coffee table")


@dataclass(frozen=True)
class ClipModel:
    """A clip's world and motion (clip world frame, +z up).

    Attributes:
        subset: ``"adt"`` or ``"pstudio"``.
        room_max: ``(3,)`` room corner (the room spans [0, room_max]).
        models: the objects, static first.
        moves: ``(O,)`` bool, whether each object moves.
        world_from_objects: ``(T, O, 4, 4)`` float64 object poses.
        world_from_cams: ``(T, 4, 4)`` float64 camera poses (OpenCV axes).
        intrinsics: the camera.
        index: the parts of ``models`` in box order.
        room_materials: the six room face materials.
    """

    subset: str
    room_max: np.ndarray
    models: tuple[ObjectModel, ...]
    moves: np.ndarray
    world_from_objects: np.ndarray
    world_from_cams: np.ndarray
    intrinsics: Intrinsics
    index: PartIndex
    room_materials: tuple[Material, ...]


def _rotation_x(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*np.shape(angle), 3, 3))
    out[..., 0, 0] = 1.0
    out[..., 1, 1], out[..., 1, 2], out[..., 2, 1], out[..., 2, 2] = c, -s, s, c
    return out


def _rotation_y(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros((*np.shape(angle), 3, 3))
    out[..., 1, 1] = 1.0
    out[..., 0, 0], out[..., 0, 2], out[..., 2, 0], out[..., 2, 2] = c, s, -s, c
    return out


def _wave(
    rng: np.random.Generator, t: np.ndarray, amplitude: float, low: float, high: float
) -> np.ndarray:
    """``amplitude · sin(2π f t + φ)`` with f uniform in [low, high] Hz and a random phase."""
    return amplitude * np.sin(2 * np.pi * rng.uniform(low, high) * t + rng.uniform(0, 2 * np.pi))


def _mover_poses(
    rng: np.random.Generator, model: ObjectModel, t: np.ndarray, anchor: np.ndarray
) -> np.ndarray:
    """``(T, 4, 4)``: the object's centre follows ``anchor`` ``(3,)`` plus smooth waves while it
    turns about +z and tilts; the rotation is about the object's own centre."""
    centre = anchor + np.stack(
        [_wave(rng, t, rng.uniform(0.1, 0.25), 0.15, 0.45) for _ in range(2)]
        + [_wave(rng, t, 0.08, 0.2, 0.6)],
        axis=1,
    )
    spin = rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0])
    yaw = rng.uniform(0, 2 * np.pi) + spin * t
    roll = _wave(rng, t, np.radians(rng.uniform(3, 12)), 0.2, 0.6)
    pitch = _wave(rng, t, np.radians(rng.uniform(3, 12)), 0.2, 0.6)
    rotation = np.stack([rotation_z(a) for a in yaw]) @ _rotation_x(roll) @ _rotation_y(pitch)
    offset = np.array([0.0, 0.0, model.height_m / 2])
    poses = np.tile(np.eye(4), (t.shape[0], 1, 1))
    poses[:, :3, :3] = rotation
    poses[:, :3, 3] = centre - np.einsum("tij,j->ti", rotation, offset)
    return poses


def _radius(model: ObjectModel) -> float:
    return 0.5 * float(np.linalg.norm([model.length_m, model.width_m, model.height_m]))


def _camera(
    rng: np.random.Generator, adt: bool, focus: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Camera centres ``(T, 3)`` and rotations ``(T, 3, 3)``: a walk around ``focus`` (adt)
    or a fixed tripod 2.5–2.8 m away (pstudio), looking at the action about 1.2 m high."""
    count = t.shape[0]
    if adt:
        angle = rng.uniform(0, 2 * np.pi) + rng.uniform(0.15, 0.35) * rng.choice([-1, 1]) * t
        radius = rng.uniform(2.2, 2.4) + _wave(rng, t, 0.1, 0.1, 0.3)
        height = rng.uniform(1.5, 1.7) + _wave(rng, t, 0.02, 1.6, 2.0)
    else:
        angle = np.full(count, rng.uniform(0, 2 * np.pi))
        radius = np.full(count, rng.uniform(2.5, 2.8))
        height = np.full(count, rng.uniform(1.5, 1.8))
    centres = np.column_stack(
        [focus[0] + radius * np.cos(angle), focus[1] + radius * np.sin(angle), height]
    )
    target = np.array([*focus, 1.2])
    if adt:
        target = target + np.stack([_wave(rng, t, 0.25, 0.05, 0.2) for _ in range(3)], axis=1)
    look = target - centres
    yaw = np.degrees(np.arctan2(look[:, 1], look[:, 0]))
    pitch = np.degrees(np.arcsin(look[:, 2] / np.linalg.norm(look, axis=1)))
    roll = _wave(rng, t, 2.0, 0.1, 0.4) if adt else np.zeros(count)
    return centres, look_rotation(yaw, pitch, roll)


def _geometric_centres(poses: np.ndarray, model: ObjectModel) -> np.ndarray:
    offset = np.array([0.0, 0.0, model.base_m + model.height_m / 2])
    return np.einsum("tij,j->ti", poses[:, :3, :3], offset) + poses[:, :3, 3]


def build_clip(
    rng: np.random.Generator, subset: str, settings: SynthSettings, num_frames: int
) -> ClipModel:
    """Draw the room, objects, motions and camera of one clip.

    Props fly above the static objects; their bounding spheres (plus 12 cm) never meet each
    other and stay 0.3 m from the camera (paths are redrawn until they do).
    """
    t = np.arange(num_frames) / settings.clip_fps
    adt = subset == "adt"
    if adt:
        room_max = np.round(rng.uniform([6.0, 6.0, 2.7], [7.0, 7.0, 3.0]), 2)
    else:
        room_max = np.array([7.0, 7.0, 3.5])
    focus = room_max[:2] / 2 + rng.uniform(-0.2, 0.2, 2)
    statics = ["table", str(rng.choice(SIDE_LABELS))] if adt else ["box"]
    count = int(rng.integers(2, 4))
    movers = [str(label) for label in rng.choice(MOVER_LABELS, count, replace=False)]
    hues = distinct_hues(rng, len(statics) + count)
    labels = statics + movers
    models = [build_object(label, rng, hue) for label, hue in zip(labels, hues, strict=True)]
    cam_centres, cam_rotations = _camera(rng, adt, focus, t)

    static_poses = []
    footprint_radius = [np.hypot(m.length_m, m.width_m) / 2 for m in models[: len(statics)]]
    for k in range(len(statics)):
        angle = rng.uniform(0, 2 * np.pi)
        distance = rng.uniform(0.7, 0.9)  # pstudio: a box on the floor beside the action
        if adt:  # the table under the action, a second object beside the table
            distance = 0.0 if k == 0 else sum(footprint_radius) + rng.uniform(0.1, 0.25)
        position = focus + distance * np.array([np.cos(angle), np.sin(angle)])
        static_poses.append(rigid(rotation_z(rng.uniform(0, 2 * np.pi)), [*position, 0.0]))
    lowest = max(0.6, max(model.height_m for model in models[: len(statics)]) + 0.05)
    radii = np.array([_radius(model) for model in models[len(statics) :]]) + 0.12
    mover_poses: list[np.ndarray] = []
    for _ in range(200):
        start = rng.uniform(0, 2 * np.pi)
        mover_poses = []
        for k, model in enumerate(models[len(statics) :]):
            angle = start + 2 * np.pi * k / count
            height = lowest + radii[k] + rng.uniform(0.0, 0.5)
            ring = focus + 0.75 * np.array([np.cos(angle), np.sin(angle)])
            mover_poses.append(_mover_poses(rng, model, t, np.array([*ring, height])))
        centres = np.stack(
            [
                _geometric_centres(p, m)
                for p, m in zip(mover_poses, models[len(statics) :], strict=True)
            ],
            axis=1,
        )
        gaps = np.linalg.norm(centres[:, :, None] - centres[:, None, :], axis=-1)
        apart = np.all(gaps + np.eye(count) * 1e3 > radii[:, None] + radii[None, :])
        to_camera = np.linalg.norm(centres - cam_centres[:, None], axis=-1)
        if apart and np.all(to_camera > radii + 0.3):
            break
    static_block = np.broadcast_to(np.stack(static_poses), (num_frames, len(statics), 4, 4))
    focal_ranges = {"adt": (270.0, 300.0, 512), "pstudio": (430.0, 470.0, 640)}
    low, high, reference = focal_ranges[subset]
    size = settings.adt_size if adt else settings.pstudio_size
    focal = rng.uniform(low, high) * size[0] / reference
    intrinsics = Intrinsics(
        quantise_pixels(focal),
        quantise_pixels(focal * rng.uniform(0.998, 1.002)),
        quantise_pixels(size[0] / 2 - 0.5 + rng.uniform(-1.0, 1.0)),
        quantise_pixels(size[1] / 2 - 0.5 + rng.uniform(-1.0, 1.0)),
        *size,
    )
    return ClipModel(
        subset=subset,
        room_max=room_max,
        models=tuple(models),
        moves=np.array([False] * len(statics) + [True] * count),
        world_from_objects=np.concatenate([static_block, np.stack(mover_poses, axis=1)], axis=1),
        world_from_cams=poses_from(cam_rotations, cam_centres),
        intrinsics=intrinsics,
        index=index_parts(models),
        room_materials=room_materials(rng),
    )

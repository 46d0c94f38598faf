"""Rendering, point tracks, visibility and files of one synthetic TAPVid-3D clip.

Output frame: for ``adt`` the clip world (``world_from_cam`` in the truth maps each camera to
it); for ``pstudio`` the (fixed) camera frame, since the file has no extrinsics and readers use
identity. Ground truth in ``<clip>.json`` is expressed in that same output frame.

ADT clips come in three kinds (``extrinsics``): ``"written"`` (``extrinsics_w2c`` = the true
world-to-camera poses), ``"absent"`` (exactly the official conversion's keys:
``images_jpeg_bytes``, ``queries_xyt``, ``tracks_XYZ``, ``visibility``, ``fx_fy_cx_cy``) and
``"inconsistent"`` (``extrinsics_w2c`` whose camera axes are turned 90° about the optical axis,
as when a conversion forgets the image rotation tapnet applies to ADT). ADT tracks carry seeded
Gaussian noise (``SynthSettings.adt_track_noise_m`` per coordinate, like ADT's ground-truth
error); visibility is decided on the noise-free points.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispa.synth.config import SynthSettings
from multispa.synth.raycast import NO_HIT, ROOM_PART, BoxSet, RayHits, render_view
from multispa.synth.scannet_writer import encode_jpeg, write_json_atomic
from multispa.synth.shading import make_surface_table, shade_view
from multispa.synth.tapvid_synth import (
    VISIBILITY_TOLERANCE_M,
    VISIBILITY_TOLERANCE_REL,
    ClipModel,
    build_clip,
)
from multispa.synth.tapvid_writer import jpeg_array, write_npz
from multispa.synth.world import invert_rigid

TRACK_MIX = {"adt": (0.35, 0.15, 0.50), "pstudio": (0.55, 0.20, 0.25)}
"""Share of tracks sampled on moving objects, static objects and the room, per subset (ADT: a
dominant static scene, the apartment, as in the real clips)."""
ADT_EXTRINSICS = ("written", "absent", "inconsistent")
"""What an ADT clip's file carries as ``extrinsics_w2c`` (see the module docstring)."""
AXES_TURNED = np.array(
    [[0.0, 1.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""``wrong_from_cam``: camera axes turned 90° about the optical axis (inconsistent clips)."""


@dataclass(frozen=True)
class Tracks:
    """N surface points.

    Attributes:
        box: ``(N,)`` int64 box index, or ``ROOM_PART`` for points on the room.
        local: ``(N, 3)`` float64 point in the box frame (room: clip world), metres.
        query_frame: ``(N,)`` int64 frame whose rendered pixel the point was sampled from.
    """

    box: np.ndarray
    local: np.ndarray
    query_frame: np.ndarray


def box_transforms(clip: ClipModel) -> np.ndarray:
    """``(T, B, 4, 4)`` world_from_box of every part in every frame."""
    return clip.world_from_objects[:, clip.index.object_index] @ clip.index.object_from_box


def _halves(clip: ClipModel) -> np.ndarray:
    return np.array([part.half for model in clip.models for part in model.parts])


def render_frame(clip: ClipModel, transforms: np.ndarray, t: int) -> RayHits:
    """Ray cast frame ``t`` of the clip."""
    boxes = BoxSet(transforms[t], _halves(clip))
    return render_view(clip.world_from_cams[t], clip.intrinsics, boxes, np.zeros(3), clip.room_max)


def sample_tracks(
    rng: np.random.Generator, clip: ClipModel, transforms: np.ndarray, count: int
) -> Tracks:
    """Sample ``count`` tracks from rendered pixels of three query frames (``TRACK_MIX``)."""
    mix = np.array(TRACK_MIX[clip.subset])
    num_frames = clip.world_from_cams.shape[0]
    frames = sorted({0, num_frames // 3, 2 * num_frames // 3})
    quotas = np.full(len(frames), count // len(frames))
    quotas[: count - quotas.sum()] += 1
    moving_box = clip.moves[clip.index.object_index]
    boxes, locals_, queries = [], [], []
    for frame, quota in zip(frames, quotas, strict=True):
        hits = render_frame(clip, transforms, frame)
        part = hits.part.copy()
        part[:2], part[-2:], part[:, :2], part[:, -2:] = NO_HIT, NO_HIT, NO_HIT, NO_HIT
        part = part.reshape(-1)  # (no tracks from the 2-pixel border: they could round outside)
        on_box = part >= 0
        moving = on_box & moving_box[np.maximum(part, 0)]
        groups = [np.flatnonzero(moving), np.flatnonzero(on_box & ~moving)]
        groups.append(np.flatnonzero(part == ROOM_PART))
        wanted = np.floor(mix * quota).astype(int)
        wanted[2] += quota - wanted.sum()
        taken = np.minimum(wanted, [g.size for g in groups])
        for k in range(3):  # give any shortfall to the groups that still have pixels
            spare = np.array([g.size for g in groups]) - taken
            taken[k] += min(quota - taken.sum(), spare[k])
        for group, amount in zip(groups, taken, strict=True):
            pixels = np.sort(rng.choice(group, int(amount), replace=False))
            boxes.append(part[pixels])
            locals_.append(hits.local.reshape(-1, 3)[pixels].astype(np.float64))
            queries.append(np.full(pixels.size, frame))
    order = rng.permutation(sum(b.size for b in boxes))
    return Tracks(
        box=np.concatenate(boxes).astype(np.int64)[order],
        local=np.concatenate(locals_)[order],
        query_frame=np.concatenate(queries).astype(np.int64)[order],
    )


def track_positions(tracks: Tracks, transforms: np.ndarray) -> np.ndarray:
    """World positions ``(T, N, 3)`` float64 of the tracks in every frame."""
    num_frames = transforms.shape[0]
    positions = np.broadcast_to(tracks.local, (num_frames, *tracks.local.shape)).copy()
    on_box = tracks.box >= 0
    moved = transforms[:, tracks.box[on_box]]  # (T, n, 4, 4)
    positions[:, on_box] = (
        np.einsum("tnij,nj->tni", moved[..., :3, :3], tracks.local[on_box]) + moved[..., :3, 3]
    )
    return positions


def frame_visibility(
    points_cam: np.ndarray, track_box: np.ndarray, hits: RayHits, clip: ClipModel
) -> np.ndarray:
    """``(N,)`` bool: in bounds, nearest pixel shows the track's part, depth within tolerance."""
    k = clip.intrinsics
    z = points_cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k.fx * points_cam[:, 0] / z + k.cx
        v = k.fy * points_cam[:, 1] / z + k.cy
    column, row = np.floor(u + 0.5), np.floor(v + 0.5)
    visible = (z > 0) & (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    visible &= (column < k.width) & (row < k.height)
    index = np.flatnonzero(visible)
    rows, columns = row[index].astype(np.int64), column[index].astype(np.int64)
    depth = hits.depth_m[rows, columns]
    tolerance = np.maximum(VISIBILITY_TOLERANCE_M, VISIBILITY_TOLERANCE_REL * z[index])
    same = (hits.part[rows, columns] == track_box[index]) & (np.abs(z[index] - depth) <= tolerance)
    visible[index] = same
    return visible


def _matrix_json(matrix: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in matrix]


def _truth(
    clip: ClipModel,
    clip_id: str,
    tracks: Tracks,
    out_from_world: np.ndarray,
    settings: SynthSettings,
    extrinsics: str,
    noise_m: float,
) -> dict[str, object]:
    index = clip.index
    out_from_objects = out_from_world[:, None] @ clip.world_from_objects
    objects = []
    for o, model in enumerate(clip.models):
        objects.append(
            {
                "object_id": o,
                "label": model.label,
                "moves": bool(clip.moves[o]),
                "length_m": model.length_m,
                "width_m": model.width_m,
                "height_m": model.height_m,
                "parts": [
                    {"centre_object": list(part.centre), "half_extents": list(part.half)}
                    for part in model.parts
                ],
                "world_from_object": [_matrix_json(m) for m in out_from_objects[:, o]],
            }
        )
    on_box = tracks.box >= 0
    box = np.maximum(tracks.box, 0)
    local = tracks.local + np.where(on_box[:, None], index.object_from_box[box, :3, 3], 0.0)
    static_world = out_from_world[0, :3, :3] @ tracks.local.T + out_from_world[0, :3, 3, None]
    local = np.where(on_box[:, None], local, static_world.T)
    out_from_cams = out_from_world @ clip.world_from_cams
    centres = out_from_cams[:, :3, 3]
    k = clip.intrinsics
    return {
        "format": "multispa synthetic truth, tapvid3d, v2",
        "conventions": (
            "All poses and points are in the clip's output frame: 'world' (adt; "
            "world_from_cam maps each camera to it, and extrinsics_w2c, when 'written', is its "
            "inverse) or 'camera' (pstudio; the fixed camera, as readers use identity "
            "extrinsics). 'extrinsics' says what the file carries: 'written' (the true poses), "
            "'absent' (the official key set) or 'inconsistent' (camera axes turned 90 degrees "
            "about the optical axis: wrong_from_cam = [[0,1,0],[-1,0,0],[0,0,1]]). tracks_XYZ "
            "hold the true camera-frame points plus Gaussian noise of track_noise_m per "
            "coordinate (visibility is decided without it). Object frame: origin at the "
            "footprint centre "
            "below the object, +x length, +y width, +z up; a track of object o is at "
            "world_from_object[t] @ local in frame t; a room track (object_id -1) is fixed at "
            "local. Visibility: projection in bounds, nearest pixel shows the same part and "
            "|z - depth| <= max(tolerance_m, tolerance_rel * z). The clip was modelled in a "
            "world with the room [0, room_max] (+z up); out_from_world maps it to the output "
            "frame (identity for adt)."
        ),
        "clip_id": clip_id,
        "subset": clip.subset,
        "frame": "world" if clip.subset == "adt" else "camera",
        "num_frames": int(clip.world_from_cams.shape[0]),
        "fps": settings.clip_fps,
        "intrinsics": {"fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy},
        "image_size": [k.width, k.height],
        "visibility_tolerance_m": VISIBILITY_TOLERANCE_M,
        "visibility_tolerance_rel": VISIBILITY_TOLERANCE_REL,
        "camera_centres": centres.tolist(),
        "world_from_cam": [_matrix_json(m) for m in out_from_cams],
        "extrinsics": extrinsics,
        "track_noise_m": noise_m,
        "room_max": clip.room_max.tolist(),
        "out_from_world": _matrix_json(out_from_world[0]),
        "objects": objects,
        "tracks": {
            "object_id": np.where(on_box, index.object_index[box], -1).tolist(),
            "part_id": np.where(on_box, index.part_index[box], -1).tolist(),
            "moves": (on_box & clip.moves[index.object_index[box]]).tolist(),
            "query_frame": tracks.query_frame.tolist(),
            "local": local.tolist(),
        },
    }


def write_clip(
    npz_path: Path,
    truth_path: Path,
    subset: str,
    rng: np.random.Generator,
    settings: SynthSettings,
    extrinsics: str = "written",
) -> list[Path]:
    """Build, render and write one clip and its truth; returns the written paths.

    ``extrinsics`` (ADT only) is one of :data:`ADT_EXTRINSICS`; PStudio files never carry them.
    """
    if subset == "adt" and extrinsics not in ADT_EXTRINSICS:
        raise ValueError(f"extrinsics must be one of {ADT_EXTRINSICS}, got {extrinsics!r}")
    num_frames = settings.clip_frames
    clip = build_clip(rng, subset, settings, num_frames)
    transforms = box_transforms(clip)
    tracks = sample_tracks(rng, clip, transforms, settings.tracks_per_clip)
    world = track_positions(tracks, transforms)
    cam_from_world = invert_rigid(clip.world_from_cams)
    points_cam = np.einsum("tij,tnj->tni", cam_from_world[:, :3, :3], world)
    points_cam += cam_from_world[:, None, :3, 3]
    # Visibility uses the float32 values of the noise-free points (exactly reproducible).
    points_cam = points_cam.astype(np.float32).astype(np.float64)
    visibility = np.zeros((num_frames, tracks.box.size), dtype=bool)
    jpegs = []
    for t in range(num_frames):
        hits = render_frame(clip, transforms, t)
        table = make_surface_table(
            clip.index.materials,
            clip.index.pattern_offsets,
            transforms[t, :, :3, :3],
            clip.room_materials,
        )
        jpegs.append(encode_jpeg(shade_view(hits, table), settings.jpeg_quality))
        visibility[t] = frame_visibility(points_cam[t], tracks.box, hits, clip)
    noise_m = settings.adt_track_noise_m if subset == "adt" else 0.0
    if noise_m > 0:
        points_cam = points_cam + rng.normal(0.0, noise_m, points_cam.shape)
    written = points_cam.astype(np.float32)
    # Queries come from the written tracks, as a reader would recompute them.
    first = np.argmax(visibility, axis=0)
    first = np.where(visibility.any(axis=0), first, tracks.query_frame)
    k = clip.intrinsics
    at_first = written.astype(np.float64)[first, np.arange(first.size)]
    queries = np.column_stack(
        [
            k.fx * at_first[:, 0] / at_first[:, 2] + k.cx,
            k.fy * at_first[:, 1] / at_first[:, 2] + k.cy,
            first,
        ]
    )
    arrays = {
        "images_jpeg_bytes": jpeg_array(jpegs),
        "tracks_XYZ": written,
        "visibility": visibility,
        "queries_xyt": queries.astype(np.float32),
        "fx_fy_cx_cy": np.array([k.fx, k.fy, k.cx, k.cy], dtype=np.float32),
    }
    if subset == "adt":
        if extrinsics == "written":
            arrays["extrinsics_w2c"] = cam_from_world.astype(np.float32)
        elif extrinsics == "inconsistent":
            arrays["extrinsics_w2c"] = (AXES_TURNED @ cam_from_world).astype(np.float32)
        out_from_world = np.broadcast_to(np.eye(4), cam_from_world.shape)
    else:
        extrinsics = "absent"
        out_from_world = cam_from_world
    write_npz(npz_path, arrays)
    truth = _truth(clip, npz_path.stem, tracks, out_from_world, settings, extrinsics, noise_m)
    write_json_atomic(truth_path, truth, compact=False)
    return [npz_path, truth_path]

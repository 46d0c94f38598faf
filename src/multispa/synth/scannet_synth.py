"""One synthetic ScanNet scene in the raw layout (docs/data-formats.md#scannet-raw) plus its
ground-truth sidecar.

The world is modelled in the **aligned** frame (+z up, room [0, room_max]); the files hold the raw
frame ``raw = inverse(A) · aligned`` for mesh vertices and poses, with A written as
``axisAlignment`` in ``<scene>.txt``. The camera makes a hand-held scan of a few objects, then a
room tour (:mod:`multispa.synth.room_tour`) that views the whole room. Colour (JPEG) and depth
(uint16 mm, zlib) are ray cast from the same pose through their own intrinsics; a few frames get
all −inf poses (their images are still written). See ``write_scene`` for the sidecar's content.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispa.scenes.types import Intrinsics
from multispa.synth.camera import handheld_path, quantise_pixels
from multispa.synth.catalogue import (
    build_object,
    distinct_hues,
    room_materials,
    sample_labels,
    sample_wall_labels,
)
from multispa.synth.config import SynthSettings
from multispa.synth.raycast import BoxSet, render_view
from multispa.synth.room_tour import room_tour
from multispa.synth.scannet_mesh import SceneMesh, aggregation_json, build_scene_mesh, segs_json
from multispa.synth.scannet_variants import room_variant
from multispa.synth.scannet_writer import (
    SensWriter,
    depth_to_mm,
    encode_jpeg,
    format_float,
    format_matrix,
    ply_bytes,
    scene_txt,
    write_bytes_atomic,
    write_json_atomic,
)
from multispa.synth.shading import SurfaceTable, make_surface_table, shade_view
from multispa.synth.world import (
    PartIndex,
    PlacedObject,
    RoomWorld,
    assemble_boxes,
    index_parts,
    invert_rigid,
    place_objects,
    place_wall_items,
    rigid,
    rotation_z,
)

DEFAULT_FRAME_SKIP = 5
"""The frame stride of ``multispa prepare``, whose frames the camera path favours."""

SEGS_PARAMS = {
    "kThresh": "0.0001",
    "segMinVerts": "20",
    "minPoints": "750",
    "maxPoints": "5000",
    "thinThresh": "0.05",
    "flatThresh": "0.001",
    "minLength": "0.02",
    "maxLength": "1",
}


@dataclass(frozen=True)
class SceneModel:
    """Everything needed to render and write one scene (aligned world)."""

    world: RoomWorld
    index: PartIndex
    boxes: BoxSet
    table: SurfaceTable
    poses: np.ndarray
    color: Intrinsics
    depth: Intrinsics
    axis_alignment: np.ndarray
    invalid_frames: tuple[int, ...]
    mesh: SceneMesh


def scannet_intrinsics(
    rng: np.random.Generator, color_size: tuple[int, int], depth_size: tuple[int, int]
) -> tuple[Intrinsics, Intrinsics]:
    """ScanNet-like colour and depth intrinsics, slightly perturbed, scaled to the sizes."""
    sx, sy = color_size[0] / 1296, color_size[1] / 968
    fx = 1170.0 + rng.uniform(-6.0, 6.0)
    color = Intrinsics(
        quantise_pixels(fx * sx),
        quantise_pixels((fx - rng.uniform(1.0, 5.0)) * sy),
        quantise_pixels((647.0 + rng.uniform(-2.0, 2.0)) * sx),
        quantise_pixels((484.0 + rng.uniform(-2.0, 2.0)) * sy),
        *color_size,
    )
    sx, sy = depth_size[0] / 640, depth_size[1] / 480
    depth = Intrinsics(
        quantise_pixels((577.6 + rng.uniform(-3.0, 3.0)) * sx),
        quantise_pixels((578.7 + rng.uniform(-3.0, 3.0)) * sy),
        quantise_pixels((319.0 + rng.uniform(-1.5, 1.5)) * sx),
        quantise_pixels((242.0 + rng.uniform(-1.5, 1.5)) * sy),
        *depth_size,
    )
    return color, depth


def _has_duplicate(labels: list[str]) -> bool:
    return len(set(labels)) < len(labels)


def sample_room_world(
    rng: np.random.Generator,
    settings: SynthSettings,
    force_duplicate: bool,
    required_labels: Sequence[str] = (),
    thin_items: Sequence[str] = (),
) -> RoomWorld:
    """A furnished room: ``objects_per_scene`` furniture objects placed without overlap and
    ``wall_items_per_scene`` wall-mounted items, in a random object-id order.

    ``required_labels`` are among the furniture; ``thin_items`` (``THIN_WALL_ITEMS`` labels) are
    placed like wall items and kept clear of the furniture.
    """
    low, high = settings.objects_per_scene
    placed: list[PlacedObject] = []
    room_max = np.zeros(3)
    for attempt in range(100):
        room_max = np.round(rng.uniform([4.0, 3.5, 2.5], [7.0, 6.0, 3.0]), 2)
        count = int(rng.integers(low, high + 1))
        labels = sample_labels(rng, count, force_duplicate, required_labels)
        wall_labels = sample_wall_labels(
            rng, int(rng.integers(*settings.wall_items_per_scene, endpoint=True))
        ) + list(thin_items)
        hues = distinct_hues(rng, count + len(wall_labels))
        models = [
            build_object(label, rng, hue)
            for label, hue in zip(labels + wall_labels, hues, strict=True)
        ]
        on_walls = place_wall_items(rng, room_max, models[count:])
        obstacles = [
            (centre, yaw, np.array([model.length_m, model.width_m]) / 2)
            for model, centre, yaw in on_walls
            if model.base_m == 0.0 or model.label in thin_items
        ]
        found = place_objects(rng, room_max, models[:count], obstacles=obstacles)
        duplicate = _has_duplicate([model.label for model, _, _ in found])
        missing = {*required_labels, *thin_items} - {m.label for m, _, _ in found + on_walls}
        if (len(found) < low or (force_duplicate and not duplicate) or missing) and attempt < 99:
            continue  # (the last attempt is kept whatever it holds)
        found += on_walls
        order = rng.permutation(len(found))
        placed = [
            PlacedObject(
                object_id=object_id,
                model=found[k][0],
                world_from_object=rigid(rotation_z(found[k][2]), [*found[k][1], 0.0]),
                yaw_rad=found[k][2],
            )
            for object_id, k in enumerate(order)
        ]
        break
    return RoomWorld(room_max=room_max, objects=tuple(placed), room_materials=room_materials(rng))


def axis_alignment(rng: np.random.Generator) -> np.ndarray:
    """A: rotation about z by a non-multiple of 90° plus a translation (aligned = A · raw)."""
    angle = np.radians(rng.uniform(8.0, 82.0) + 90.0 * int(rng.integers(0, 4)))
    translation = [rng.uniform(-4.5, -1.0), rng.uniform(-4.5, -1.0), rng.uniform(-0.08, 0.08)]
    return rigid(rotation_z(angle), np.round(translation, 6))


def invalid_frame_indices(
    rng: np.random.Generator, num_frames: int, bounds: tuple[int, int]
) -> tuple[int, ...]:
    """3–6 (``bounds``) frame indices with −inf poses, about half at multiples of 5 (never 0)."""
    count = int(rng.integers(bounds[0], bounds[1] + 1))
    strided = np.arange(5, num_frames, 5)
    others = np.setdiff1d(np.arange(1, num_frames), strided)
    on_stride = min((count + 1) // 2, strided.size)
    chosen = np.concatenate(
        [
            rng.choice(strided, on_stride, replace=False),
            rng.choice(others, min(count - on_stride, others.size), replace=False),
        ]
    )
    return tuple(sorted(int(i) for i in chosen))


@dataclass(frozen=True)
class RoomModel:
    """A furnished room and its annotated mesh (aligned world), shared by the scans of a room."""

    world: RoomWorld
    index: PartIndex
    boxes: BoxSet
    table: SurfaceTable
    mesh: SceneMesh


def build_room(rng: np.random.Generator, scene_index: int, settings: SynthSettings) -> RoomModel:
    """Draw the world of room ``scene_index`` and build its boxes, surfaces and mesh."""
    required, thin = room_variant(scene_index) if settings.scene_variants else ((), ())
    world = sample_room_world(rng, settings, scene_index == 0, required, thin)
    models = [obj.model for obj in world.objects]
    index = index_parts(models)
    world_from_objects = np.stack([obj.world_from_object for obj in world.objects])
    boxes = assemble_boxes(models, world_from_objects, index)
    table = make_surface_table(
        index.materials,
        index.pattern_offsets,
        boxes.world_from_box[:, :3, :3],
        world.room_materials,
    )
    mesh = build_scene_mesh(
        world, index, boxes, table, settings.mesh_spacing_m, settings.segment_size_m
    )
    return RoomModel(world, index, boxes, table, mesh)


def build_scan(
    rng: np.random.Generator,
    room: RoomModel,
    settings: SynthSettings,
    *,
    depth_from_color: bool = False,
) -> SceneModel:
    """Draw one scan of ``room``: invalid frames, camera path, intrinsics and alignment.

    With ``depth_from_color``, K_depth is K_color rescaled to the depth size with pixel centres
    kept (then quantised), as an export without ``.sens`` is read (rule (o)).
    """
    world, mesh = room.world, room.mesh
    invalid = invalid_frame_indices(rng, settings.frames_per_scene, settings.invalid_poses)
    # The camera path is chosen to show objects in part in the frames `prepare` keeps by default.
    vertex_object = np.full(mesh.vertices.shape[0], -1, dtype=np.int64)
    for position, group in enumerate(mesh.groups[: len(world.objects)]):
        vertex_object[group.vertex_start : group.vertex_end] = position
    poses, _ = handheld_path(
        rng,
        world.objects,
        world.room_max,
        settings.frames_per_scene,
        settings.fps,
        settings.camera_speed_m_s,
        mesh=(mesh.vertices, vertex_object),
        frame_stride=DEFAULT_FRAME_SKIP,
        skip_frames=invalid,
    )
    color, depth = scannet_intrinsics(rng, settings.color_size, settings.depth_size)
    if depth_from_color:
        exact = color.rescaled_to(*settings.depth_size)
        depth = Intrinsics(
            *(quantise_pixels(v) for v in (exact.fx, exact.fy, exact.cx, exact.cy)),
            *settings.depth_size,
        )
    # The room tour (for the N-view questions) continues the scan; it draws no random numbers,
    # so the scan, the intrinsics and the alignment are the same with or without it.
    tour = room_tour(world.objects, world.room_max, settings.tour_frames_per_scene,
                     settings.fps, poses[-1])
    poses = np.concatenate([poses, tour])
    return SceneModel(
        world=world,
        index=room.index,
        boxes=room.boxes,
        table=room.table,
        poses=poses,
        color=color,
        depth=depth,
        axis_alignment=axis_alignment(rng),
        invalid_frames=invalid,
        mesh=mesh,
    )


def build_scene(rng: np.random.Generator, scene_index: int, settings: SynthSettings) -> SceneModel:
    """Draw the world, camera path, intrinsics, alignment and invalid frames of one scene."""
    return build_scan(rng, build_room(rng, scene_index, settings), settings)


def _scene_type(labels: list[str]) -> str:
    if "bed" in labels:
        return "Bedroom / Hotel"
    if "desk" in labels or "office chair" in labels:
        return "Office"
    if "sofa" in labels or "tv stand" in labels:
        return "Living room / Lounge"
    return "Apartment"


def _matrix_json(matrix: np.ndarray) -> list[list[float]]:
    return [[float(v) for v in row] for row in np.asarray(matrix, dtype=np.float64)]


def _txt_entries(model: SceneModel, labels: list[str]) -> dict[str, str]:
    color, depth = model.color, model.depth
    frames = str(model.poses.shape[0])
    return {
        "axisAlignment": format_matrix(model.axis_alignment),
        "colorHeight": str(color.height),
        "colorWidth": str(color.width),
        "depthHeight": str(depth.height),
        "depthWidth": str(depth.width),
        "fx_color": format_float(color.fx),
        "fy_color": format_float(color.fy),
        "mx_color": format_float(color.cx),
        "my_color": format_float(color.cy),
        "fx_depth": format_float(depth.fx),
        "fy_depth": format_float(depth.fy),
        "mx_depth": format_float(depth.cx),
        "my_depth": format_float(depth.cy),
        "numColorFrames": frames,
        "numDepthFrames": frames,
        "numIMUmeasurements": "0",
        "sceneType": _scene_type(labels),
    }


def render_frame(
    model: SceneModel, pose: np.ndarray, settings: SynthSettings, rng: np.random.Generator
) -> tuple[bytes, np.ndarray]:
    """Colour JPEG bytes and ``(Hd, Wd)`` uint16 depth in mm (with random holes) of one pose."""
    room_min = np.zeros(3)
    depth_pixels = model.depth.width * model.depth.height
    holes_per_frame = int(np.floor(settings.depth_hole_fraction * depth_pixels + 0.5))
    hits = render_view(pose, model.color, model.boxes, room_min, model.world.room_max)
    jpeg = encode_jpeg(shade_view(hits, model.table), settings.jpeg_quality)
    depth_hits = render_view(pose, model.depth, model.boxes, room_min, model.world.room_max)
    depth_mm = depth_to_mm(depth_hits.depth_m).reshape(-1)
    depth_mm[rng.integers(0, depth_pixels, holes_per_frame)] = 0
    return jpeg, depth_mm.reshape(model.depth.height, model.depth.width)


def write_sens(
    path: Path, model: SceneModel, settings: SynthSettings, rng: np.random.Generator
) -> None:
    """Render and stream every frame of the scene into ``path``."""
    raw_from_aligned = invert_rigid(model.axis_alignment)
    invalid = set(model.invalid_frames)
    with SensWriter(path, model.color, model.depth, model.poses.shape[0]) as writer:
        for frame, pose in enumerate(model.poses):
            jpeg, depth_mm = render_frame(model, pose, settings, rng)
            payload = zlib.compress(depth_mm.astype("<u2").tobytes(), settings.depth_zlib_level)
            raw_pose = np.full((4, 4), -np.inf) if frame in invalid else raw_from_aligned @ pose
            timestamp = int(np.floor(frame * 1e6 / settings.fps + 0.5))
            writer.add_frame(raw_pose, jpeg, payload, timestamp, timestamp)


def _truth(
    scene_id: str, model: SceneModel, mesh: SceneMesh, settings: SynthSettings
) -> dict[str, object]:
    objects = []
    for position, (obj, group) in enumerate(zip(model.world.objects, mesh.groups, strict=False)):
        transform = obj.world_from_object
        parts = np.flatnonzero(model.index.object_index == position)
        objects.append(
            {
                "object_id": obj.object_id,
                "label": obj.model.label,
                "centre": [*transform[:2, 3].tolist(), obj.model.base_m + obj.model.height_m / 2],
                "yaw_deg": float(np.degrees(obj.yaw_rad)),
                "height_m": obj.model.height_m,
                "length_m": obj.model.length_m,
                "width_m": obj.model.width_m,
                "world_from_object": _matrix_json(transform),
                "vertex_start": group.vertex_start,
                "vertex_end": group.vertex_end,
                "parts": [
                    {
                        "world_from_part": _matrix_json(model.boxes.world_from_box[box]),
                        "half_extents": model.boxes.half_extents[box].tolist(),
                    }
                    for box in parts
                ],
                "materials": [material.to_json() for material in obj.model.materials],
            }
        )
    structure = [
        {
            "object_id": group.object_id,
            "label": group.label,
            "room_face": group.room_face,
            "vertex_start": group.vertex_start,
            "vertex_end": group.vertex_end,
        }
        for group in mesh.groups[len(model.world.objects) :]
    ]
    invalid = set(model.invalid_frames)
    return {
        "format": "multispa synthetic truth, scannet, v1",
        "conventions": (
            "Aligned world: +z up, metres, room [room_min, room_max]. world_from_cam is the "
            "aligned camera-to-world pose (OpenCV camera axes) used to render the frame, also "
            "for frames whose stored pose is -inf (valid: false). Files hold raw = "
            "inverse(axis_alignment) @ aligned. Object frame: origin at the footprint centre on "
            "the floor, +x along length_m, +y along width_m, +z up; yaw_deg is the angle of +x "
            "from world +x; centre is the oriented box centre. Depth: uint16 mm = "
            "floor(1000 z + 0.5), z the camera-frame depth of the exact ray-cast hit; about "
            "depth_hole_fraction of the pixels are set to 0."
        ),
        "scene_id": scene_id,
        "fps": settings.fps,
        "num_frames": int(model.poses.shape[0]),
        "room_min": [0.0, 0.0, 0.0],
        "room_max": model.world.room_max.tolist(),
        "axis_alignment": _matrix_json(model.axis_alignment),
        "color_intrinsics": model.color.to_json(),
        "depth_intrinsics": model.depth.to_json(),
        "depth_hole_fraction": settings.depth_hole_fraction,
        "invalid_frames": list(model.invalid_frames),
        "num_vertices": int(mesh.vertices.shape[0]),
        "objects": objects,
        "structure": structure,
        "frames": [
            {"index": i, "valid": i not in invalid, "world_from_cam": _matrix_json(pose)}
            for i, pose in enumerate(model.poses)
        ],
    }


def write_annotations(
    folder: Path, scene_id: str, model: SceneModel, aggregation: dict[str, object]
) -> list[Path]:
    """Write ``<scene>_vh_clean_2.ply`` (raw frame), the aggregation payload, the segments and
    ``<scene>.txt`` into ``folder``; returns their paths."""
    mesh = model.mesh
    raw_from_aligned = invert_rigid(model.axis_alignment)
    raw_vertices = mesh.vertices @ raw_from_aligned[:3, :3].T + raw_from_aligned[:3, 3]
    labels = [obj.model.label for obj in model.world.objects]
    paths = [
        folder / f"{scene_id}_vh_clean_2.ply",
        folder / f"{scene_id}.aggregation.json",
        folder / f"{scene_id}_vh_clean_2.0.010000.segs.json",
        folder / f"{scene_id}.txt",
    ]
    write_bytes_atomic(paths[0], ply_bytes(raw_vertices, mesh.colors, mesh.triangles))
    write_json_atomic(paths[1], aggregation, compact=True)
    write_json_atomic(paths[2], segs_json(scene_id, mesh.seg_indices, SEGS_PARAMS), compact=True)
    write_bytes_atomic(paths[3], scene_txt(_txt_entries(model, labels)).encode("ascii"))
    return paths


def write_scene(
    scans_root: Path,
    truth_root: Path,
    scene_id: str,
    scene_index: int,
    rng: np.random.Generator,
    settings: SynthSettings,
) -> list[Path]:
    """Write ``scans_root/<scene>/`` (sens, ply, aggregation, segs, txt) and the truth json.

    Returns the written paths.
    """
    model = build_scene(rng, scene_index, settings)
    folder = scans_root / scene_id
    aggregation = aggregation_json(scene_id, model.mesh.groups)
    paths = write_annotations(folder, scene_id, model, aggregation)
    sens, truth = folder / f"{scene_id}.sens", truth_root / f"{scene_id}.json"
    write_sens(sens, model, settings, rng)
    write_json_atomic(truth, _truth(scene_id, model, model.mesh, settings))
    return [*paths, sens, truth]

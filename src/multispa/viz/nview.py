"""What a sample card adds for an N-view record: object boxes per view and a floor-plan sketch.

An N-view record names objects by their scene ids (``meta``); to draw them the card reads the
scene's prepared cache (:func:`find_scene_cache`: the ``--cache`` given, else the cache named by
the dataset's ``manifest.json``, or for a BENCH folder by the manifest of the dataset it was
built from). Without a cache the card still shows the images and the text, and says so.

- **Object boxes**: in every view where a referred object is *seen* (the N-view rule:
  ``c ≥ max(50, 0.05·n)`` of its ``n`` vertices visible), the rectangle around the projections
  of its visible vertices, in the object's colour, with its label. Referred objects: the counted
  objects (count), the two objects (absolute distance), the reference and the four options
  (relative distance), A, B and C (relative direction), the four objects (appearance order), X
  (nearest view).
- **Answer view**: for the nearest view, the image the answer names gets a thick border in the
  answer colour.
- **Floor plan** (relative direction, camera path length, nearest view): the room seen from
  above (world x to the right, y up, metres): every object's footprint, the views' camera
  centres numbered 1…N with their viewing directions, and for a direction question the stand at
  A, the arrow towards B and the line to C with the angle θ (positive = left).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from multispa.cache.scannet_cache import ScanNetCache, load_scannet_cache
from multispa.tasks.nview_scene import object_states
from multispa.viz.canvas import figure_to_image, new_figure

__all__ = [
    "OBJECT_COLOURS",
    "NViewOverlay",
    "ObjectBox",
    "find_scene_cache",
    "nview_overlay",
    "referred_objects",
]

#: Distinct outline colours of the referred objects, in the order they are named.
OBJECT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (37, 99, 235), (234, 88, 12), (5, 150, 105), (147, 51, 234), (219, 39, 119),
    (8, 145, 178), (202, 138, 4), (79, 70, 229), (220, 38, 38), (101, 163, 13),
    (14, 116, 144), (190, 24, 93),
)
_ROLE_NAMES = {"nview_object_rel_distance": ("reference", "A", "B", "C", "D"),
               "nview_rel_direction_easy": ("A: stand", "B: face", "C: asked"),
               "nview_rel_direction_medium": ("A: stand", "B: face", "C: asked"),
               "nview_rel_direction_hard": ("A: stand", "B: face", "C: asked")}
_PLAN_SUBTASKS = ("nview_rel_direction_easy", "nview_rel_direction_medium",
                  "nview_rel_direction_hard", "nview_camera_path_length", "nview_nearest_view")


@dataclass(frozen=True)
class ObjectBox:
    """One referred object's box in one view.

    Attributes:
        image: 0-based view (panel) index.
        object_id: the scene's ``objectId``.
        colour: outline colour.
        text: label drawn with the box.
        box_px: ``(u0, v0, u1, v1)`` source pixels (pixel centres), inclusive.
    """

    image: int
    object_id: int
    colour: tuple[int, int, int]
    text: str
    box_px: tuple[float, float, float, float]


@dataclass
class NViewOverlay:
    """Everything the card adds to an N-view record (module docstring).

    Attributes:
        boxes: the object boxes, view by view.
        legend: ``(colour, text)`` per referred object.
        answer_image: the view index the answer names (nearest view), else None.
        plan: the floor-plan sketch, or None.
        note: a line for the card when something could not be drawn (no cache...).
    """

    boxes: list[ObjectBox] = field(default_factory=list)
    legend: list[tuple[tuple[int, int, int], str]] = field(default_factory=list)
    answer_image: int | None = None
    plan: Image.Image | None = None
    note: str | None = None


def referred_objects(record: Mapping[str, Any]) -> list[int]:
    """The object ids an N-view record refers to, in the order the card names them."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    subtask = record.get("subtask")
    if subtask == "nview_object_count":
        ids = meta.get("count_ids")
    elif subtask == "nview_object_rel_distance":
        ids = [*(meta.get("objects") or []), *(meta.get("options") or [])]
    else:
        ids = meta.get("objects")
    if not isinstance(ids, list):
        return []
    return [int(i) for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def _manifest(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, Mapping) else {}


def _cache_of_dataset(dataset: Path) -> Path | None:
    cache = (_manifest(dataset).get("cache") or {}).get("path")
    if not isinstance(cache, str):
        return None
    path = Path(cache)
    for candidate in (path, dataset.parent / path, dataset / path):
        if (candidate / "manifest.json").is_file():
            return candidate
    return None


def find_scene_cache(root: Path, scene: str, cache: Path | None = None) -> Path | None:
    """The cache folder of ``scene`` for a record of the DATASET or BENCH folder ``root``.

    Looks in ``cache`` when given, else in the cache the dataset's manifest names (a BENCH
    folder: the dataset its manifest's ``source`` names); None when none holds the scene.
    """
    roots: list[Path] = []
    if cache is not None:
        roots.append(Path(cache))
    else:
        manifest = _manifest(Path(root))
        datasets = [Path(root)]
        source = manifest.get("source")
        if isinstance(source, str):
            datasets.append(Path(source))
        roots += [found for found in map(_cache_of_dataset, datasets) if found is not None]
    for candidate in roots:
        folder = candidate / "scannet" / scene
        if (folder / "meta.json").is_file():
            return folder
    return None


def _role_texts(subtask: str, ids: Sequence[int], labels: Mapping[int, str]) -> list[str]:
    roles = _ROLE_NAMES.get(subtask)
    texts = []
    for k, object_id in enumerate(ids):
        label = labels.get(object_id, f"object {object_id}")
        texts.append(f"{roles[k]}: {label}" if roles and k < len(roles) else label)
    return texts


def _boxes(cache: ScanNetCache, positions: Sequence[int], ids: Sequence[int],
           texts: Sequence[str]) -> list[ObjectBox]:
    rows = {int(obj["object_id"]): r for r, obj in enumerate(cache.objects)}
    intrinsics = cache.color_intrinsics
    instance = np.asarray(cache.instance_ids)
    counts = np.asarray(cache.object_visible_counts)
    boxes = []
    for image, position in enumerate(positions):
        visible = cache.visible_vertex_indices(int(position))
        cam_from_world = np.linalg.inv(np.asarray(cache.world_from_cam[position], np.float64))
        for k, object_id in enumerate(ids):
            row = rows.get(object_id)
            if row is None:
                continue
            size = np.array([int(cache.objects[row]["num_vertices"])])
            seen, _ = object_states(counts[row : row + 1, [position]], size)
            if not bool(seen[0, 0]):
                continue
            mine = visible[instance[visible] == object_id]
            points = np.asarray(cache.vertices[mine], dtype=np.float64)
            camera = points @ cam_from_world[:3, :3].T + cam_from_world[:3, 3]
            front = camera[:, 2] > 0
            if not np.any(front):
                continue
            z = camera[front, 2]
            u = intrinsics.fx * camera[front, 0] / z + intrinsics.cx
            v = intrinsics.fy * camera[front, 1] / z + intrinsics.cy
            box = (float(u.min()), float(v.min()), float(u.max()), float(v.max()))
            boxes.append(ObjectBox(image, object_id, OBJECT_COLOURS[k % len(OBJECT_COLOURS)],
                                   texts[k], box))
    return boxes


def _footprint(box: Mapping[str, Any]) -> np.ndarray:
    """``(5, 2)`` closed outline of an object's oriented footprint (world xy, metres)."""
    centre = np.asarray(box["centre"], dtype=np.float64)[:2]
    length = np.asarray(box["length_axis"], dtype=np.float64)[:2] * float(box["length_m"]) / 2
    width = np.asarray(box["width_axis"], dtype=np.float64)[:2] * float(box["width_m"]) / 2
    corners = [centre - length - width, centre + length - width, centre + length + width,
               centre - length + width]
    return np.array([*corners, corners[0]])


def _plan(cache: ScanNetCache, record: Mapping[str, Any], positions: Sequence[int],
          ids: Sequence[int], size_px: int) -> Image.Image:
    """The floor-plan sketch (module docstring)."""
    figure = new_figure(size_px, size_px)
    axes = figure.add_axes((0.14, 0.12, 0.82, 0.78))
    axes.set_aspect("equal", adjustable="box")
    axes.grid(True, color="#e5e7eb", linewidth=0.6)
    axes.tick_params(labelsize=7)
    axes.set_xlabel("x (m)", fontsize=8)
    axes.set_ylabel("y (m)", fontsize=8)
    colour_of = {object_id: OBJECT_COLOURS[k % len(OBJECT_COLOURS)]
                 for k, object_id in enumerate(ids)}
    xy_all: list[np.ndarray] = []
    centres: dict[int, np.ndarray] = {}
    for obj in cache.objects:
        box = obj.get("box")
        if box is None or str(obj["label"]).strip().lower() in ("wall", "floor", "ceiling"):
            continue
        outline = _footprint(box)
        xy_all.append(outline)
        object_id = int(obj["object_id"])
        centres[object_id] = np.asarray(box["centre"], dtype=np.float64)[:2]
        rgb = colour_of.get(object_id)
        colour = "#9ca3af" if rgb is None else "#{:02x}{:02x}{:02x}".format(*rgb)
        axes.plot(outline[:, 0], outline[:, 1], color=colour, linewidth=2.0 if rgb else 0.8)
        if rgb is not None:
            axes.text(*centres[object_id], str(obj["label"]).strip().lower(), fontsize=7,
                      color=colour, ha="center", va="center")
    poses = np.asarray(cache.world_from_cam, dtype=np.float64)[list(positions)]
    cameras = poses[:, :2, 3]
    forward = poses[:, :2, 2]
    norms = np.maximum(np.linalg.norm(forward, axis=1, keepdims=True), 1e-9)
    forward = forward / norms * 0.35
    xy_all.append(cameras)
    axes.plot(cameras[:, 0], cameras[:, 1], "-", color="#111827", linewidth=0.8, alpha=0.5)
    answer = str(record.get("gt")) if record.get("subtask") == "nview_nearest_view" else None
    for k, (camera, ahead) in enumerate(zip(cameras, forward, strict=True), start=1):
        colour = "#ff1493" if answer == str(k) else "#111827"
        axes.annotate("", xy=camera + ahead, xytext=camera,
                      arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.0})
        axes.plot([camera[0]], [camera[1]], "o", color=colour, markersize=4)
        axes.text(camera[0], camera[1], f" {k}", fontsize=7, color=colour, va="bottom")
    title = "Floor plan seen from above (not model input)"
    meta = record.get("meta") or {}
    if str(record.get("subtask", "")).startswith("nview_rel_direction_") and len(ids) == 3 \
            and all(i in centres for i in ids):
        a, b, c = (centres[i] for i in ids)
        axes.annotate("", xy=b, xytext=a,
                      arrowprops={"arrowstyle": "-|>", "color": "#111827", "linewidth": 1.6})
        axes.plot([a[0], c[0]], [a[1], c[1]], "--", color="#ff1493", linewidth=1.4)
        axes.plot([a[0]], [a[1]], "s", color="#111827", markersize=6)
        theta = meta.get("theta_deg")
        if isinstance(theta, int | float) and math.isfinite(theta):
            title = f"Floor plan: at A facing B, C at θ = {theta:+.0f}° (+ = left)"
    span = np.concatenate(xy_all) if xy_all else np.zeros((1, 2))
    low, high = span.min(axis=0) - 0.4, span.max(axis=0) + 0.4
    axes.set_xlim(low[0], high[0])
    axes.set_ylim(low[1], high[1])
    figure.suptitle(title, fontsize=8.5, y=0.975)
    return figure_to_image(figure)


def nview_overlay(record: Mapping[str, Any], root: Path, *, cache: Path | None = None,
                  plan_px: int = 300) -> NViewOverlay | None:
    """The overlay of an N-view record (None for other records); see the module docstring."""
    if record.get("task") != "nview":
        return None
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    overlay = NViewOverlay()
    if record.get("subtask") == "nview_nearest_view":
        gt = str(record.get("gt", ""))
        overlay.answer_image = int(gt) - 1 if gt.isdigit() else None
    scene = meta.get("scene")
    folder = find_scene_cache(Path(root), str(scene), cache) if isinstance(scene, str) else None
    if folder is None:
        overlay.note = ("object boxes and floor plan need the prepared cache of this scene "
                        "(multispa show --cache DIR)")
        return overlay
    scene_cache = load_scannet_cache(folder)
    frames = [int(f) for f in meta.get("frames") or []]
    lookup = {int(f): p for p, f in enumerate(np.asarray(scene_cache.frame_index).tolist())}
    if not frames or any(f not in lookup for f in frames):
        overlay.note = f"the cache at {folder} does not hold this record's frames"
        return overlay
    positions = [lookup[f] for f in frames]
    ids = referred_objects(record)
    labels = {int(obj["object_id"]): str(obj["label"]).strip().lower()
              for obj in scene_cache.objects}
    texts = _role_texts(str(record.get("subtask")), ids, labels)
    overlay.boxes = _boxes(scene_cache, positions, ids, texts)
    overlay.legend = [(OBJECT_COLOURS[k % len(OBJECT_COLOURS)], text)
                      for k, text in enumerate(texts)]
    if record.get("subtask") in _PLAN_SUBTASKS:
        overlay.plan = _plan(scene_cache, record, positions, ids, plan_px)
    return overlay

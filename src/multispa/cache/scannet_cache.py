"""Per-scene ScanNet cache: what every question generator needs, computed once per scene.

Folder ``<cache>/scannet/<scene>/`` (all arrays ``.npy``, memory-mappable; no pickle):

- ``meta.json``: scene id, split, layout, intrinsics, axis alignment, kept/invalid frames, frames
  dropped for an unusable colour image (``bad_images``), inputs.
- ``images/<frame:05d>.jpg``: colour frames, the original JPEG bytes (PNG/raw: encoded once).
- ``depth/<frame:05d>.png``: sensor depth, 16-bit PNG in millimetres (optional).
- ``frame_index.npy``: ``(F,)`` int32 original ``.sens`` index of each kept frame.
- ``world_from_cam.npy``: ``(F, 4, 4)`` float64 aligned camera-to-world poses.
- ``vertices.npy``: ``(P, 3)`` float32 aligned mesh vertices, metres.
- ``instance_ids.npy``: ``(P,)`` int32 ``objectId`` per vertex, −1 unannotated.
- ``visibility.npy``: ``(F, ceil(P/64))`` uint64 bit-packed visible vertices per frame.
- ``visibility_off_edge.npy``: ``(F, ceil(P/64))`` uint64, the subset of each frame's visible
  vertices that are also off depth edges (rule (p): the depth pixel's 8 neighbours are valid and
  within the visibility tolerance), the only points the depth and correspondence families use.
- ``visible_counts.npy``: ``(F,)`` int64 ``|V_i|``.
- ``pairs.parquet``: frame pairs with overlap > 0: scene, frame1 < frame2 (original indices),
  overlap_pct, distance_m, dyaw_deg and dpitch_deg (from frame1 to frame2).
- ``objects.json``: per object: id, label, label_count (objects with at least one vertex and the
  same lower-cased label; 0 for an object without vertex), nyu40_class, vertex count, box.
- ``object_visible_counts.npy``: ``(O, F)`` int32 ``|V_i ∩ O_o|``.
- ``object_extent_lo.npy`` / ``object_extent_hi.npy``: ``(O, F, 3)`` float32 min/max of the
  visible object vertices along (z, length axis, width axis), metres; NaN where none is visible.

Definitions: visibility docs/labels.md#visibility, overlap #overlap and #pair-table, boxes
#object-boxes, extents #coverage (all in docs/labels.md); files and fields in
docs/data-formats.md#scannet-cache. ``meta.json`` also records the scene's load notes (duplicate
groups dropped, objects without vertex, thinned exports, where K_depth came from).
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from multispa.cache.files import (
    read_json,
    read_npy,
    write_file,
    write_json,
    write_npy,
    write_parquet,
)
from multispa.errors import CacheError
from multispa.geometry.angles import relative_yaw_pitch_deg
from multispa.geometry.boxes import gravity_aligned_obb
from multispa.geometry.overlap import (
    overlapping_pairs,
    pack_visibility_csr,
    pairwise_intersections,
    spatial_order,
    visible_counts,
)
from multispa.geometry.visibility import visible_and_off_edge
from multispa.scenes.image_check import image_defect, too_many_bad
from multispa.scenes.types import Intrinsics, ScanNetScene

#: 2: ``visibility_off_edge.npy`` (rule (p)), label counts without vertex-less objects (rule (n)).
CACHE_VERSION = 2


@dataclass(frozen=True)
class VisibilityConfig:
    """Depth-test tolerances of rule (a): visible iff |z − D| ≤ max(abs_tol_m, rel_tol·z)."""

    abs_tol_m: float = 0.05
    rel_tol: float = 0.05


@dataclass(frozen=True)
class SceneCacheSummary:
    """Counts of one built scene cache (for the run summary)."""

    scene_id: str
    kept_frames: int
    invalid_frames: int
    empty_frames: int
    vertices: int
    pairs: int
    objects: int
    bad_images: int = 0
    unusable: str | None = None


def _depth_png(depth_m: np.ndarray) -> bytes:
    """16-bit PNG of depth in millimetres (round half away; 0 stays 0)."""
    millimetres = np.floor(np.asarray(depth_m, dtype=np.float64) * 1000.0 + 0.5)
    stored = np.clip(millimetres, 0, 65535).astype(np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(stored).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _object_tables(
    scene: ScanNetScene,
) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Objects' JSON rows, vertex → object row ``(P,)`` int32 (−1 none), per-vertex axis values.

    The axis values are ``(P, 3)`` float32: z, projection on the object's length axis and on its
    width axis (NaN for unannotated vertices).
    """
    num_vertices = scene.vertices.shape[0]
    row_of_vertex = np.full(num_vertices, -1, dtype=np.int32)
    axis_values = np.full((num_vertices, 3), np.nan, dtype=np.float32)
    label_counts = Counter(
        obj.label.strip().lower() for obj in scene.objects if obj.vertex_indices.size
    )
    rows: list[dict[str, Any]] = []
    for row, obj in enumerate(scene.objects):
        indices = np.asarray(obj.vertex_indices, dtype=np.int64)
        entry: dict[str, Any] = {
            "object_id": obj.object_id,
            "label": obj.label,
            "label_count": label_counts[obj.label.strip().lower()] if indices.size else 0,
            "nyu40_class": obj.nyu40_class,
            "num_vertices": int(indices.size),
            "box": None,
        }
        if indices.size:
            points = scene.vertices[indices].astype(np.float64)
            box = gravity_aligned_obb(points)
            entry["box"] = {
                "centre": box.centre.tolist(),
                "height_m": box.height,
                "length_m": box.length,
                "width_m": box.width,
                "length_axis": box.length_axis.tolist(),
                "width_axis": box.width_axis.tolist(),
                "z_min": box.z_min,
                "z_max": box.z_max,
            }
            row_of_vertex[indices] = row
            axis_values[indices, 0] = points[:, 2]
            axis_values[indices, 1] = points @ box.length_axis
            axis_values[indices, 2] = points @ box.width_axis
        rows.append(entry)
    return rows, row_of_vertex, axis_values


def build_scannet_cache(
    scene: ScanNetScene,
    out_dir: Path,
    *,
    split: str | None,
    visibility: VisibilityConfig = VisibilityConfig(),
    keep_depth: bool = True,
    inputs: dict[str, Any] | None = None,
    on_frame: Any = None,
) -> SceneCacheSummary:
    """Compute and write the cache of one scene into ``out_dir`` (which must be empty or new).

    Frames are streamed one at a time from the scene's frame source; memory holds the mesh, the
    bit-packed visibility and per-object tables, not the images. A frame whose colour image
    fails :func:`~multispa.scenes.image_check.image_defect` is dropped (listed in
    ``meta.json`` under ``bad_images``); when too many do, nothing is written and the summary's
    ``unusable`` says why.

    Args:
        scene: the loaded scene (aligned world).
        out_dir: destination folder (the caller renames it into place atomically).
        split: ``"train"``, ``"val"`` or None, recorded in ``meta.json``.
        visibility: depth-test tolerances.
        keep_depth: also write the depth frames as 16-bit PNGs.
        inputs: input-file fingerprints to record.
        on_frame: optional callable called once per processed frame (progress).
    """
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    if keep_depth:
        (out_dir / "depth").mkdir(exist_ok=True)

    vertices = np.ascontiguousarray(scene.vertices, dtype=np.float32)
    num_vertices = vertices.shape[0]
    objects, row_of_vertex, axis_values = _object_tables(scene)
    num_objects = len(objects)
    frame_ids = [info.index for info in scene.frames]
    num_frames = len(frame_ids)

    offsets = np.zeros(num_frames + 1, dtype=np.int64)
    visible_chunks: list[np.ndarray] = []
    off_edge_offsets = np.zeros(num_frames + 1, dtype=np.int64)
    off_edge_chunks: list[np.ndarray] = []
    object_counts = np.zeros((num_objects, num_frames), dtype=np.int32)
    extent_lo = np.full((num_objects, num_frames, 3), np.nan, dtype=np.float32)
    extent_hi = np.full((num_objects, num_frames, 3), np.nan, dtype=np.float32)
    good: list[int] = []  # positions (in scene.frames) of the frames kept
    bad: dict[int, str] = {}  # original index -> why its colour image is unusable

    for position, frame in enumerate(scene.frames_source.iter_frames(frame_ids)):
        if frame.info.index != frame_ids[position]:
            raise RuntimeError(
                f"frame source returned frame {frame.info.index}, expected {frame_ids[position]}"
            )
        defect = image_defect(frame.color_bytes, frame.color_format, frame.color_size)
        if defect is not None:
            bad[frame.info.index] = defect
            continue
        slot = len(good)
        good.append(position)
        color_bytes = frame.color_bytes
        if frame.color_format != "jpeg":
            buffer = io.BytesIO()
            Image.fromarray(frame.color_rgb()).save(buffer, format="JPEG", quality=95)
            color_bytes = buffer.getvalue()
        write_file(out_dir / "images" / f"{frame.info.index:05d}.jpg", color_bytes)
        if keep_depth:
            write_file(out_dir / "depth" / f"{frame.info.index:05d}.png", _depth_png(frame.depth_m))
        visible, off_edge = visible_and_off_edge(
            vertices,
            frame.info.world_from_cam,
            scene.color_intrinsics,
            frame.depth_m,
            scene.depth_intrinsics,
            abs_tol_m=visibility.abs_tol_m,
            rel_tol=visibility.rel_tol,
        )
        visible_chunks.append(visible)
        offsets[slot + 1] = offsets[slot] + visible.size
        off_edge_chunks.append(visible[off_edge])
        off_edge_offsets[slot + 1] = off_edge_offsets[slot] + off_edge_chunks[-1].size
        if num_objects:
            rows = row_of_vertex[visible]
            annotated = rows >= 0
            rows = rows[annotated]
            values = axis_values[visible[annotated]]
            object_counts[:, slot] = np.bincount(rows, minlength=num_objects)
            seen = np.flatnonzero(object_counts[:, slot])
            lo = np.full((num_objects, 3), np.inf, dtype=np.float32)
            hi = np.full((num_objects, 3), -np.inf, dtype=np.float32)
            np.minimum.at(lo, rows, values)
            np.maximum.at(hi, rows, values)
            extent_lo[seen, slot] = lo[seen]
            extent_hi[seen, slot] = hi[seen]
        if on_frame is not None:
            on_frame()

    unusable = too_many_bad(bad, num_frames)
    if unusable is not None:
        return SceneCacheSummary(scene.scene_id, num_frames, len(scene.invalid_frames), 0,
                                 num_vertices, 0, num_objects, len(bad), unusable)
    if bad:
        num_frames = len(good)
        frame_ids = [frame_ids[position] for position in good]
        offsets = offsets[: num_frames + 1]
        off_edge_offsets = off_edge_offsets[: num_frames + 1]
        object_counts = np.ascontiguousarray(object_counts[:, :num_frames])
        extent_lo = np.ascontiguousarray(extent_lo[:, :num_frames])
        extent_hi = np.ascontiguousarray(extent_hi[:, :num_frames])

    indices = np.concatenate(visible_chunks) if visible_chunks else np.zeros(0, np.int32)
    packed = pack_visibility_csr(offsets, indices, num_vertices)
    off_edge_indices = (
        np.concatenate(off_edge_chunks) if off_edge_chunks else np.zeros(0, np.int32)
    )
    packed_off_edge = pack_visibility_csr(off_edge_offsets, off_edge_indices, num_vertices)
    del off_edge_chunks, off_edge_indices
    # Intersections are counted on columns in a spatial (Morton) order, where each frame's
    # visible set is contiguous and the blocked popcount skips what two frames cannot share.
    rank = np.empty(num_vertices, dtype=np.int64)
    rank[spatial_order(vertices)] = np.arange(num_vertices)
    spatial_packed = pack_visibility_csr(offsets, rank[indices], num_vertices)
    intersections = pairwise_intersections(spatial_packed)
    del indices, visible_chunks, rank, spatial_packed
    counts = visible_counts(packed)

    poses = (
        np.stack([scene.frames[position].world_from_cam for position in good])
        if num_frames
        else np.zeros((0, 4, 4))
    ).astype(np.float64)
    first, second, overlap_pct = overlapping_pairs(packed, intersections)
    centres = poses[:, :3, 3]
    distance_m = np.linalg.norm(centres[second] - centres[first], axis=1)
    dyaw_deg, dpitch_deg = relative_yaw_pitch_deg(poses[first], poses[second])
    frame_index = np.asarray(frame_ids, dtype=np.int32)
    write_parquet(
        out_dir / "pairs.parquet",
        {
            "scene": [scene.scene_id] * int(first.size),
            "frame1": frame_index[first],
            "frame2": frame_index[second],
            "overlap_pct": overlap_pct.astype(np.float64),
            "distance_m": distance_m.astype(np.float64),
            "dyaw_deg": np.asarray(dyaw_deg, dtype=np.float64),
            "dpitch_deg": np.asarray(dpitch_deg, dtype=np.float64),
        },
    )

    write_npy(out_dir / "frame_index.npy", frame_index)
    write_npy(out_dir / "world_from_cam.npy", poses)
    write_npy(out_dir / "vertices.npy", vertices)
    write_npy(out_dir / "instance_ids.npy", np.asarray(scene.instance_ids, dtype=np.int32))
    write_npy(out_dir / "visibility.npy", packed)
    write_npy(out_dir / "visibility_off_edge.npy", packed_off_edge)
    write_npy(out_dir / "visible_counts.npy", counts)
    write_npy(out_dir / "object_visible_counts.npy", object_counts)
    write_npy(out_dir / "object_extent_lo.npy", extent_lo)
    write_npy(out_dir / "object_extent_hi.npy", extent_hi)
    write_json(out_dir / "objects.json", objects)
    empty_frames = int(np.count_nonzero(counts == 0))
    write_json(
        out_dir / "meta.json",
        {
            "cache_version": CACHE_VERSION,
            "dataset": "scannet",
            "scene_id": scene.scene_id,
            "split": split,
            "layout": scene.layout,
            "frame_skip": scene.frame_skip,
            "total_frames": scene.total_frames,
            "frames": frame_ids,
            "invalid_frames": list(scene.invalid_frames),
            "bad_images": [{"frame": index, "problem": problem}
                           for index, problem in sorted(bad.items())],
            "empty_frames": [frame_ids[i] for i in np.flatnonzero(counts == 0)],
            "color_intrinsics": scene.color_intrinsics.to_json(),
            "depth_intrinsics": scene.depth_intrinsics.to_json(),
            "axis_alignment": np.asarray(scene.axis_alignment, dtype=np.float64).tolist(),
            "num_vertices": num_vertices,
            "num_objects": num_objects,
            "num_pairs": int(first.size),
            "has_depth": keep_depth,
            "visibility": {"abs_tol_m": visibility.abs_tol_m, "rel_tol": visibility.rel_tol},
            "warnings": list(scene.warnings),
            "notes": scene.notes.to_json(),
            "inputs": inputs or {},
        },
    )
    return SceneCacheSummary(
        scene_id=scene.scene_id,
        kept_frames=num_frames,
        invalid_frames=len(scene.invalid_frames),
        empty_frames=empty_frames,
        vertices=num_vertices,
        pairs=int(first.size),
        objects=num_objects,
        bad_images=len(bad),
    )


@dataclass
class ScanNetCache:
    """Read access to one scene cache (arrays memory-mapped).

    Attributes:
        path: the scene's cache folder.
        meta: ``meta.json`` content.
        frame_index: ``(F,)`` original frame indices.
        world_from_cam: ``(F, 4, 4)`` aligned poses.
        vertices: ``(P, 3)`` float32 aligned vertices.
        instance_ids: ``(P,)`` int32.
        visibility: ``(F, W)`` uint64 packed visibility.
        visibility_off_edge: ``(F, W)`` uint64 packed visible vertices off depth edges (rule (p)).
        visible_counts: ``(F,)`` int64.
        objects: ``objects.json`` rows.
        object_visible_counts: ``(O, F)`` int32.
        object_extent_lo, object_extent_hi: ``(O, F, 3)`` float32.
    """

    path: Path
    meta: dict[str, Any]
    frame_index: np.ndarray
    world_from_cam: np.ndarray
    vertices: np.ndarray
    instance_ids: np.ndarray
    visibility: np.ndarray
    visibility_off_edge: np.ndarray
    visible_counts: np.ndarray
    objects: list[dict[str, Any]]
    object_visible_counts: np.ndarray
    object_extent_lo: np.ndarray
    object_extent_hi: np.ndarray

    @property
    def color_intrinsics(self) -> Intrinsics:
        """Colour camera intrinsics."""
        return Intrinsics.from_json(self.meta["color_intrinsics"])

    @property
    def depth_intrinsics(self) -> Intrinsics:
        """Depth camera intrinsics."""
        return Intrinsics.from_json(self.meta["depth_intrinsics"])

    def visible_vertex_indices(self, position: int) -> np.ndarray:
        """Visible vertex indices of kept frame ``position`` (row, not original index): ``(K,)``."""
        bits = np.unpackbits(
            np.ascontiguousarray(self.visibility[position]).view(np.uint8), bitorder="little"
        )
        return np.flatnonzero(bits[: self.vertices.shape[0]]).astype(np.int32)

    def image_path(self, frame: int) -> Path:
        """Colour image of an original frame index."""
        return self.path / "images" / f"{frame:05d}.jpg"

    def pairs(self) -> Any:
        """The pair table as a ``pyarrow.Table``."""
        import pyarrow.parquet as pq

        return pq.read_table(self.path / "pairs.parquet")


def load_scannet_cache(path: Path) -> ScanNetCache:
    """Open a scene cache written by :func:`build_scannet_cache`.

    Raises:
        CacheError: the cache was written by a version of ``multispa prepare`` with another
            cache format.
    """
    path = Path(path)
    meta = read_json(path / "meta.json")
    if meta.get("cache_version") != CACHE_VERSION:
        raise CacheError(
            f"{path / 'meta.json'}: cache version {meta.get('cache_version')!r}, this multispa "
            f"reads version {CACHE_VERSION}; rebuild the cache with multispa prepare --force"
        )
    return ScanNetCache(
        path=path,
        meta=meta,
        frame_index=read_npy(path / "frame_index.npy"),
        world_from_cam=read_npy(path / "world_from_cam.npy"),
        vertices=read_npy(path / "vertices.npy"),
        instance_ids=read_npy(path / "instance_ids.npy"),
        visibility=read_npy(path / "visibility.npy"),
        visibility_off_edge=read_npy(path / "visibility_off_edge.npy"),
        visible_counts=read_npy(path / "visible_counts.npy"),
        objects=read_json(path / "objects.json"),
        object_visible_counts=read_npy(path / "object_visible_counts.npy"),
        object_extent_lo=read_npy(path / "object_extent_lo.npy"),
        object_extent_hi=read_npy(path / "object_extent_hi.npy"),
    )

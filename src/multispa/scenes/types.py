"""In-memory types shared by every scene reader and the synthetic writer.

Conventions (docs/labels.md#conventions):
- Camera frame is OpenCV: +x right, +y down, +z forward; depth is camera-frame z, metres.
- Transforms are named ``dst_from_src``; a ScanNet pose is ``world_from_cam`` (camera-to-world).
- ScanNet geometry is held in the **aligned** world (``aligned = axis_alignment @ raw``), which is
  gravity-aligned with +z up; the raw matrices stay available for traceability.
- TAPVid-3D tracks are in each frame's **camera** coordinates; ``cam_from_world`` is
  world-to-camera.
- Poses and intrinsics are float64; large point arrays are float32.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from PIL import Image

from multispa.errors import ShapeError

ScanNetLayout = Literal["raw", "sensreader", "posed_images"]


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one camera at one resolution.

    Attributes:
        fx, fy: focal lengths, pixels.
        cx, cy: principal point, pixels (origin at the top-left pixel's corner convention of the
            source data; no half-pixel shift is applied anywhere).
        width, height: image size in pixels.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def to_json(self) -> dict[str, float | int]:
        """``{"fx", "fy", "cx", "cy", "width", "height"}`` (pixels) for JSON files."""
        return {"fx": self.fx, "fy": self.fy, "cx": self.cx, "cy": self.cy,
                "width": self.width, "height": self.height}

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> Intrinsics:
        """Inverse of :meth:`to_json`."""
        return cls(float(values["fx"]), float(values["fy"]), float(values["cx"]),
                   float(values["cy"]), int(values["width"]), int(values["height"]))

    def matrix(self) -> np.ndarray:
        """Return K, ``(3, 3)`` float64."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    def rescaled_to(self, width: int, height: int) -> Intrinsics:
        """The same camera resampled to ``width`` × ``height``, pixel centres kept (rule (o)).

        Focal lengths scale with the size ratio ``s``; the principal point maps as
        ``c' = (c + 0.5)·s − 0.5`` (pixel ``i`` covers ``[i − 0.5, i + 0.5]``), unlike
        :meth:`scaled_to`, which scales ``c`` like the focal lengths.
        """
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(
            self.fx * sx,
            self.fy * sy,
            (self.cx + 0.5) * sx - 0.5,
            (self.cy + 0.5) * sy - 0.5,
            width,
            height,
        )

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """Intrinsics for the same camera resized to ``width`` × ``height`` pixels.

        fx and cx scale with the width ratio, fy and cy with the height ratio
        (docs/data-formats.md#scannet-sensreader).
        """
        sx = width / self.width
        sy = height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


@dataclass(frozen=True)
class FrameInfo:
    """Pose and identity of one kept ScanNet frame.

    Attributes:
        index: original frame index in the stream (the ``.sens`` index); ``meta.frames`` stores it.
        world_from_cam: ``(4, 4)`` float64 camera-to-world pose in the **aligned** world.
        raw_world_from_cam: ``(4, 4)`` float64 pose as stored in the file (raw ScanNet world).
    """

    index: int
    world_from_cam: np.ndarray
    raw_world_from_cam: np.ndarray


@dataclass
class FrameData:
    """Decoded content of one frame.

    Attributes:
        info: pose and index.
        color_bytes: the colour image exactly as stored (JPEG bytes for ScanNet); never re-encoded.
        color_format: ``"jpeg"``, ``"png"`` or ``"raw"`` (raw = ``H*W*3`` uint8 RGB bytes).
        depth_m: ``(Hd, Wd)`` float32 depth in metres; 0 means no measurement.
        color_size: ``(width, height)`` of the colour image, pixels.
    """

    info: FrameInfo
    color_bytes: bytes
    color_format: str
    depth_m: np.ndarray
    color_size: tuple[int, int]

    def color_rgb(self) -> np.ndarray:
        """Decode the colour image: ``(H, W, 3)`` uint8 RGB."""
        if self.color_format == "raw":
            width, height = self.color_size
            return np.frombuffer(self.color_bytes, dtype=np.uint8).reshape(height, width, 3)
        with Image.open(io.BytesIO(self.color_bytes)) as image:
            return np.asarray(image.convert("RGB"))


class FrameSource(Protocol):
    """Streaming access to the frames of one scene, whatever the on-disk layout."""

    def read(self, index: int) -> FrameData:
        """Decode one kept frame by its original index."""
        ...

    def iter_frames(self, indices: Sequence[int] | None = None) -> Iterator[FrameData]:
        """Decode kept frames in ascending index order (all kept valid frames when ``None``).

        Implementations read sequentially and hold one frame in memory at a time.
        """
        ...


@dataclass(frozen=True)
class SceneObject:
    """One annotated object instance of a ScanNet scene.

    Attributes:
        object_id: ScanNet ``objectId`` (0-based) from the aggregation file.
        label: raw ScanNet category, e.g. ``"office chair"``.
        vertex_indices: ``(n,)`` int64 indices into the scene's vertices (after segment
            conflicts are resolved: a vertex belongs to exactly one object).
        nyu40_class: NYU40 class name from ``scannetv2-labels.combined.tsv`` when available.
    """

    object_id: int
    label: str
    vertex_indices: np.ndarray
    nyu40_class: str | None = None


#: An export holding fewer than this fraction of ``numColorFrames`` is already thinned (rule (o)).
THINNED_EXPORT_FRACTION = 0.9


@dataclass(frozen=True)
class SceneNotes:
    """What loading a scene repaired or chose that its user should know (rules (n), (o)).

    Reported by ``multispa inspect``, printed by ``prepare`` and recorded in the cache's
    ``meta.json`` and the prepare manifest.

    Attributes:
        duplicate_groups: exact duplicate ``segGroups`` dropped (same label and segment set).
        empty_objects: ``objectId`` of the objects left without any vertex (their segments
            all went to later groups); they do not count towards label repetition.
        exported_frames: frames (pose files) of a ``posed_images`` export, else None.
        num_color_frames: ``numColorFrames`` of ``<scene>.txt``, or None.
        depth_intrinsics_source: where K_depth came from: ``"sens"`` (the ``.sens`` header),
            ``"intrinsic_depth.txt"`` (SensReader export), ``"scene_txt"`` (the ``*_depth`` keys
            of ``<scene>.txt``) or ``"rescaled_color"`` (K_color rescaled, pixel centres kept).
        depth_intrinsics_note: why ``rescaled_color`` was chosen, or ``""``.
    """

    duplicate_groups: int = 0
    empty_objects: tuple[int, ...] = ()
    exported_frames: int | None = None
    num_color_frames: int | None = None
    depth_intrinsics_source: str = ""
    depth_intrinsics_note: str = ""

    @property
    def thinned(self) -> bool:
        """True when a ``posed_images`` export holds < 90 % of ``numColorFrames``."""
        if self.exported_frames is None or not self.num_color_frames:
            return False
        return self.exported_frames < THINNED_EXPORT_FRACTION * self.num_color_frames

    def lines(self) -> list[str]:
        """One readable line per note worth a warning (empty when there is nothing to say)."""
        lines = []
        if self.duplicate_groups:
            lines.append(
                f"{self.duplicate_groups} duplicate segGroups (same label and segments as an "
                f"earlier group) dropped"
            )
        if self.empty_objects:
            shown = ", ".join(map(str, self.empty_objects[:8]))
            more = " ..." if len(self.empty_objects) > 8 else ""
            lines.append(
                f"{len(self.empty_objects)} object(s) without any vertex (objectId {shown}{more}):"
                f" not counted as labels"
            )
        if self.thinned:
            lines.append(
                f"posed_images export holds {self.exported_frames} of {self.num_color_frames} "
                f"frames (numColorFrames): already thinned, its file numbers are positions "
                f"among the exported frames; consider --frame-skip 1"
            )
        if self.depth_intrinsics_note:
            lines.append(self.depth_intrinsics_note)
        return lines

    def to_json(self) -> dict[str, Any]:
        """The notes as JSON (``thinned`` included)."""
        return {
            "duplicate_groups": self.duplicate_groups,
            "empty_objects": list(self.empty_objects),
            "exported_frames": self.exported_frames,
            "num_color_frames": self.num_color_frames,
            "thinned": self.thinned,
            "depth_intrinsics_source": self.depth_intrinsics_source,
        }


@dataclass
class ScanNetScene:
    """A static indoor scan: frames with poses, the mesh and its instance labels.

    Attributes:
        scene_id: e.g. ``"scene0000_00"``.
        layout: which on-disk layout the frames came from.
        color_intrinsics: intrinsics of the colour camera (its real image size).
        depth_intrinsics: intrinsics of the depth camera (its real image size).
        axis_alignment: ``(4, 4)`` float64 A with aligned = A @ raw (identity when absent).
        frame_skip: stride over original indices that was kept (default 5).
        frames: kept frames whose pose is entirely finite, ascending index.
        invalid_frames: original indices of stride-kept frames dropped for a non-finite pose.
        total_frames: number of frames in the source stream before the stride.
        vertices: ``(P, 3)`` float32 mesh vertices, metres, aligned world.
        vertex_colors: ``(P, 3)`` uint8 RGB of each vertex.
        instance_ids: ``(P,)`` int32 ``objectId`` per vertex, -1 when unannotated.
        objects: annotated objects in ascending ``object_id``.
        frames_source: streaming access to colour and depth.
        warnings: human-readable notes raised while loading (resized images, conflicts...).
        files: the files the scene was read from (for fingerprints), by role.
        notes: repairs and choices made while loading (rules (n), (o)).
    """

    scene_id: str
    layout: ScanNetLayout
    color_intrinsics: Intrinsics
    depth_intrinsics: Intrinsics
    axis_alignment: np.ndarray
    frame_skip: int
    frames: tuple[FrameInfo, ...]
    invalid_frames: tuple[int, ...]
    total_frames: int
    vertices: np.ndarray
    vertex_colors: np.ndarray
    instance_ids: np.ndarray
    objects: tuple[SceneObject, ...]
    frames_source: FrameSource
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    notes: SceneNotes = field(default_factory=SceneNotes)


@dataclass
class TapVidClip:
    """A TAPVid-3D clip: video frames and 3-D point tracks in camera coordinates.

    Attributes:
        clip_id: file stem, e.g. ``"basketball_1"``.
        subset: ``"adt"``, ``"pstudio"`` (or another subset name, reported as such).
        path: the ``.npz`` it was read from.
        images_jpeg: ``T`` JPEG byte strings, one per frame, as stored.
        image_size: ``(width, height)`` in pixels, from decoding frame 0.
        intrinsics: pinhole intrinsics at the original resolution (``fx_fy_cx_cy``).
        tracks_cam: ``(T, N, 3)`` float32 track positions in that frame's camera frame, metres.
        visibility: ``(T, N)`` bool, track visible in frame t.
        queries_xyt: ``(N, 3)`` float32 query pixel x, y and frame t (kept, unused), or None.
        cam_from_world: ``(T, 4, 4)`` float64 world-to-camera per frame, the poses in use:
            the file's ``extrinsics_w2c`` as read, identity without them until resolved (see
            :func:`multispa.scenes.tapvid_poses.resolve_clip_poses` and :meth:`with_poses`).
        has_extrinsics: whether the file carries ``extrinsics_w2c``.
        pose_source: where ``cam_from_world`` comes from: ``"extrinsics"`` (the file's),
            ``"static_scene"`` (estimated from the tracks), ``"fixed"`` (identity, a fixed
            camera); ``None`` while a moving camera's poses are unknown (world tracks and camera
            centres are then refused).
    """

    clip_id: str
    subset: str
    path: Path
    images_jpeg: list[bytes]
    image_size: tuple[int, int]
    intrinsics: Intrinsics
    tracks_cam: np.ndarray
    visibility: np.ndarray
    queries_xyt: np.ndarray | None
    cam_from_world: np.ndarray
    has_extrinsics: bool
    pose_source: str | None

    @property
    def num_frames(self) -> int:
        """T, the number of frames."""
        return self.tracks_cam.shape[0]

    @property
    def num_tracks(self) -> int:
        """N, the number of tracks."""
        return self.tracks_cam.shape[1]

    def frame_rgb(self, t: int) -> np.ndarray:
        """Decode frame ``t``: ``(H, W, 3)`` uint8 RGB."""
        with Image.open(io.BytesIO(self.images_jpeg[t])) as image:
            return np.asarray(image.convert("RGB"))

    def with_poses(self, cam_from_world: np.ndarray, pose_source: str) -> TapVidClip:
        """A copy using ``(T, 4, 4)`` world-to-camera poses from ``pose_source``."""
        poses = np.asarray(cam_from_world, dtype=np.float64)
        if poses.shape != (self.num_frames, 4, 4):
            raise ShapeError(
                f"{self.path}: poses of shape {poses.shape}, expected ({self.num_frames}, 4, 4)"
            )
        return replace(self, cam_from_world=poses, pose_source=pose_source)

    def _check_poses(self) -> None:
        if self.pose_source is None:
            raise ValueError(
                f"{self.path}: camera poses not resolved (no extrinsics_w2c); "
                "use multispa.scenes.tapvid_poses.resolve_clip_poses first"
            )

    def tracks_world(self) -> np.ndarray:
        """Track positions in the world frame, ``(T, N, 3)`` float64, metres.

        X_world[t] = inverse(cam_from_world[t]) · [X_cam[t]; 1] (docs/labels.md#tapvid-world).

        Raises:
            ValueError: the poses are not resolved (``pose_source`` is ``None``).
        """
        self._check_poses()
        rotation = self.cam_from_world[:, :3, :3]
        translation = self.cam_from_world[:, :3, 3]
        centred = self.tracks_cam.astype(np.float64) - translation[:, None, :]
        # inverse rigid: R^T (x - t); batched as x @ R per frame.
        return np.einsum("tnj,tjk->tnk", centred, rotation)

    def camera_centres(self) -> np.ndarray:
        """Camera centre in the world per frame, ``(T, 3)`` float64: −Rᵀ·t.

        Raises:
            ValueError: the poses are not resolved (``pose_source`` is ``None``).
        """
        self._check_poses()
        rotation = self.cam_from_world[:, :3, :3]
        translation = self.cam_from_world[:, :3, 3]
        return -np.einsum("tji,tj->ti", rotation, translation)

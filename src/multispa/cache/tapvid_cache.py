"""Per-clip TAPVid-3D cache: frames, world tracks, camera poses, visibility in bounds and rigid
groups.

Folder ``<cache>/tapvid3d/<subset>/<clip>/``:

- ``meta.json``: ``cache_version`` (:data:`TAPVID_CACHE_VERSION`), clip id, subset, split,
  intrinsics, image size, rigid-group settings, ``pose_source`` (``extrinsics``,
  ``static_scene`` or ``fixed``), ``poses`` (static group size, worst residual or drift,
  warning; see :class:`multispa.scenes.tapvid_poses.ClipPoses`) and ``bad_images``.
- ``images/<t:05d>.jpg``: frames, the original JPEG bytes (absent for a frame whose JPEG fails
  :func:`~multispa.scenes.image_check.jpeg_defect`: listed under ``bad_images`` in
  ``meta.json``, no track is visible in it).
- ``tracks_world.npy``: ``(T, N, 3)`` float32 world positions, metres (docs/labels.md#tapvid-world).
- ``uv.npy``: ``(T, N, 2)`` float32 pixel projection of each track in its frame.
- ``visible.npy``: ``(T, N)`` bool: the file's visibility AND in bounds (z > 0, inside image)
  AND the frame's image usable.
- ``cam_from_world.npy``: ``(T, 4, 4)`` float64 world-to-camera per frame, the poses in use
  (for ``static_scene`` the world is frame 0's camera).
- ``camera_centres.npy``: ``(T, 3)`` float64 camera centres, world frame.
- ``group_of_track.npy``: ``(N,)`` int32 rigid group index per track (−1: in no group); groups
  follow docs/labels.md#rigid-groups and are numbered by their smallest track index.

Caches of an older format (version 1 had no pose source) are refused with a
:class:`~multispa.errors.CacheError`; ``multispa prepare`` rebuilds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multispa.cache.files import read_json, read_npy, write_file, write_json, write_npy
from multispa.errors import CacheError
from multispa.geometry.camera import in_bounds, project_points
from multispa.geometry.rigid import rigid_groups
from multispa.scenes.image_check import jpeg_defect, too_many_bad
from multispa.scenes.tapvid_poses import (
    DEFAULT_POSE_CHECK,
    ClipPoses,
    PoseCheckConfig,
    resolve_clip_poses,
)
from multispa.scenes.types import Intrinsics, TapVidClip

#: Format of the clip caches; 2 added the pose source (static-scene poses for ADT).
TAPVID_CACHE_VERSION = 2


@dataclass(frozen=True)
class RigidGroupConfig:
    """Rigid-body segmentation parameters (docs/labels.md#rigid-groups)."""

    motion_eps_m: float = 0.01
    cut_distance: float = 0.1
    min_size: int = 6


@dataclass(frozen=True)
class ClipCacheSummary:
    """Counts of one built clip cache."""

    clip_id: str
    subset: str
    frames: int
    tracks: int
    groups: int
    grouped_tracks: int
    pose_source: str | None
    bad_images: int = 0
    unusable: str | None = None


@dataclass(frozen=True)
class ClipAnalysis:
    """A clip's rigid groups and the poses it will use (computed before anything is written).

    Attributes:
        groups: rigid groups as ascending track-index arrays, numbered by smallest index.
        poses: the pose decision; ``poses.usable`` is False for a clip that must be skipped.
    """

    groups: list[np.ndarray]
    poses: ClipPoses


def analyse_clip(
    clip: TapVidClip,
    groups: RigidGroupConfig = RigidGroupConfig(),
    poses: PoseCheckConfig = DEFAULT_POSE_CHECK,
) -> ClipAnalysis:
    """Rigid-body segmentation and pose decision of one clip."""
    group_list = rigid_groups(
        clip.tracks_cam,
        motion_eps_m=groups.motion_eps_m,
        cut_distance=groups.cut_distance,
        min_size=groups.min_size,
    )
    return ClipAnalysis(group_list, resolve_clip_poses(clip, group_list, poses))


def build_tapvid_cache(
    clip: TapVidClip,
    out_dir: Path,
    *,
    split: str | None,
    groups: RigidGroupConfig = RigidGroupConfig(),
    analysis: ClipAnalysis | None = None,
    inputs: dict[str, Any] | None = None,
) -> ClipCacheSummary:
    """Compute and write the cache of one usable clip into ``out_dir``.

    Args:
        clip: the clip as loaded.
        out_dir: the cache folder.
        split: ``"train"``, ``"val"`` or ``None``.
        groups: the segmentation settings (recorded; used when ``analysis`` is ``None``).
        analysis: :func:`analyse_clip`'s result, when already computed.
        inputs: input fingerprints to record.

    Raises:
        ValueError: the clip is unusable (check ``analysis.poses.usable`` first).
    """
    if analysis is None:
        analysis = analyse_clip(clip, groups)
    poses = analysis.poses
    if poses.source is None or poses.cam_from_world is None:
        raise ValueError(f"{clip.path}: unusable clip ({poses.explain()})")
    clip = clip.with_poses(poses.cam_from_world, poses.source)
    out_dir = Path(out_dir)
    tracks_cam = np.asarray(clip.tracks_cam, dtype=np.float64)
    num_frames, num_tracks = tracks_cam.shape[:2]
    bad = {t: defect for t, jpeg in enumerate(clip.images_jpeg)
           if (defect := jpeg_defect(jpeg, clip.image_size)) is not None}
    unusable = too_many_bad(bad, num_frames)
    if unusable is not None:
        return ClipCacheSummary(clip.clip_id, clip.subset, int(num_frames), int(num_tracks), 0, 0,
                                poses.source, bad_images=len(bad), unusable=unusable)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    for t, jpeg in enumerate(clip.images_jpeg):
        if t not in bad:
            write_file(out_dir / "images" / f"{t:05d}.jpg", jpeg)

    uv, z = project_points(tracks_cam, clip.intrinsics)
    width, height = clip.image_size
    visible = np.asarray(clip.visibility, dtype=bool) & in_bounds(uv, z, width, height)
    visible[sorted(bad)] = False  # a frame without a usable image shows no track

    group_list = analysis.groups
    group_of_track = np.full(num_tracks, -1, dtype=np.int32)
    for index, members in enumerate(group_list):
        group_of_track[members] = index

    write_npy(out_dir / "tracks_world.npy", clip.tracks_world().astype(np.float32))
    write_npy(out_dir / "uv.npy", uv.astype(np.float32))
    write_npy(out_dir / "visible.npy", visible)
    write_npy(out_dir / "cam_from_world.npy", np.asarray(clip.cam_from_world, dtype=np.float64))
    write_npy(out_dir / "camera_centres.npy", clip.camera_centres())
    write_npy(out_dir / "group_of_track.npy", group_of_track)
    intrinsics = clip.intrinsics
    write_json(
        out_dir / "meta.json",
        {
            "cache_version": TAPVID_CACHE_VERSION,
            "dataset": "tapvid3d",
            "clip_id": clip.clip_id,
            "subset": clip.subset,
            "split": split,
            "num_frames": int(num_frames),
            "num_tracks": int(num_tracks),
            "image_size": list(clip.image_size),
            "intrinsics": intrinsics.to_json(),
            "pose_source": poses.source,
            "poses": poses.to_json(),
            "num_groups": len(group_list),
            "bad_images": [{"frame": t, "problem": problem} for t, problem in sorted(bad.items())],
            "rigid_groups": {
                "motion_eps_m": groups.motion_eps_m,
                "cut_distance": groups.cut_distance,
                "min_size": groups.min_size,
            },
            "inputs": inputs or {},
        },
    )
    return ClipCacheSummary(
        clip_id=clip.clip_id,
        subset=clip.subset,
        frames=int(num_frames),
        tracks=int(num_tracks),
        groups=len(group_list),
        grouped_tracks=int(np.count_nonzero(group_of_track >= 0)),
        pose_source=poses.source,
        bad_images=len(bad),
    )


@dataclass
class TapVidCache:
    """Read access to one clip cache (arrays memory-mapped)."""

    path: Path
    meta: dict[str, Any]
    tracks_world: np.ndarray
    uv: np.ndarray
    visible: np.ndarray
    cam_from_world: np.ndarray
    camera_centres: np.ndarray
    group_of_track: np.ndarray

    @property
    def intrinsics(self) -> Intrinsics:
        """Camera intrinsics of the clip."""
        return Intrinsics.from_json(self.meta["intrinsics"])

    def image_path(self, t: int) -> Path:
        """Frame ``t``'s JPEG."""
        return self.path / "images" / f"{t:05d}.jpg"


def load_tapvid_cache(path: Path) -> TapVidCache:
    """Open a clip cache written by :func:`build_tapvid_cache`.

    Raises:
        CacheError: the cache has no ``meta.json`` or was written in another format version.
    """
    path = Path(path)
    meta_path = path / "meta.json"
    if not meta_path.is_file():
        raise CacheError(f"{path}: not a TAPVid-3D clip cache (no meta.json)")
    meta = read_json(meta_path)
    version = meta.get("cache_version")
    if version != TAPVID_CACHE_VERSION:
        raise CacheError(
            f"{path}: TAPVid-3D clip cache format {version}, expected {TAPVID_CACHE_VERSION} "
            "(older caches have no camera pose source); run `multispa prepare` again on this "
            "cache to rebuild its clips"
        )
    return TapVidCache(
        path=path,
        meta=meta,
        tracks_world=read_npy(path / "tracks_world.npy"),
        uv=read_npy(path / "uv.npy"),
        visible=read_npy(path / "visible.npy"),
        cam_from_world=read_npy(path / "cam_from_world.npy"),
        camera_centres=read_npy(path / "camera_centres.npy"),
        group_of_track=read_npy(path / "group_of_track.npy"),
    )

"""What the readers see in a dataset folder: one summary row per ScanNet scene or TAPVid-3D clip.

Used by ``multispa inspect`` (and the demo) to check a download before running the pipeline.
Loading errors are caught per scene or clip and reported in the row, so one bad file does not hide
the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multispa.errors import MultispaError
from multispa.scenes.scannet import ScanNetDataset
from multispa.scenes.tapvid3d import DEFAULT_SUBSETS, TapVid3DDataset

STRUCTURAL_LABELS = frozenset({"wall", "floor", "ceiling", "window", "object"})


@dataclass(frozen=True)
class SceneSummary:
    """One ScanNet scene as read (counts; ``notes``: the readable lines of its load notes, such
    as duplicate groups dropped or a thinned export; ``error`` set when it could not be read).

    Labels count only objects with at least one vertex (rule 8n).
    """

    scene_id: str
    split: str | None
    layout: str = ""
    total_frames: int = 0
    kept_frames: int = 0
    invalid_frames: int = 0
    color_size: tuple[int, int] = (0, 0)
    depth_size: tuple[int, int] = (0, 0)
    vertices: int = 0
    annotated_vertices: int = 0
    objects: int = 0
    unique_labels: int = 0
    repeated_labels: tuple[str, ...] = ()
    warnings: int = 0
    notes: tuple[str, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class ClipSummary:
    """One TAPVid-3D clip as read (``error`` set when it could not be read).

    ``pose_source`` is the poses the clip will use (``None`` when unusable, with ``reason``);
    ``static_tracks`` the size of its largest rigid group and ``rigid_tracks`` how many of them
    stay rigid with it (the static scene the poses rest on); ``worst_residual_m`` the worst
    per-frame residual of the poses in use (static-scene fit, or drift under the file's
    extrinsics), or of the failed static-scene fit; ``warning`` a note on a usable clip.
    """

    subset: str
    clip_id: str
    split: str | None
    frames: int = 0
    tracks: int = 0
    image_size: tuple[int, int] = (0, 0)
    extrinsics: bool = False
    usable: bool = False
    reason: str = ""
    error: str | None = None
    pose_source: str | None = None
    static_tracks: int = 0
    rigid_tracks: int = 0
    worst_residual_m: float | None = None
    warning: str = ""


def summarize_scannet(
    root: Path, *, frame_skip: int = 5, splits_dir: Path | None = None
) -> tuple[ScanNetDataset, list[SceneSummary]]:
    """Read every scene under ``root`` (a ``scans/`` folder or the ScanNet root).

    ``splits_dir`` holds the split lists when they are not beside the scans.
    """
    dataset = ScanNetDataset(root, splits_dir=splits_dir)
    rows = []
    for scene_id in dataset.scene_ids():
        split = dataset.split_of(scene_id)
        try:
            scene = dataset.load(scene_id, frame_skip=frame_skip)
        except MultispaError as error:
            rows.append(SceneSummary(scene_id, split, error=str(error)))
            continue
        labels = [
            obj.label
            for obj in scene.objects
            if obj.label.lower() not in STRUCTURAL_LABELS and obj.vertex_indices.size
        ]
        names, counts = np.unique(np.array(labels, dtype=str), return_counts=True)
        rows.append(
            SceneSummary(
                scene_id=scene_id,
                split=split,
                layout=scene.layout,
                total_frames=scene.total_frames,
                kept_frames=len(scene.frames),
                invalid_frames=len(scene.invalid_frames),
                color_size=(scene.color_intrinsics.width, scene.color_intrinsics.height),
                depth_size=(scene.depth_intrinsics.width, scene.depth_intrinsics.height),
                vertices=int(scene.vertices.shape[0]),
                annotated_vertices=int(np.count_nonzero(scene.instance_ids >= 0)),
                objects=len(scene.objects),
                unique_labels=int(np.count_nonzero(counts == 1)),
                repeated_labels=tuple(str(n) for n in names[counts > 1]),
                warnings=len(scene.warnings),
                notes=tuple(scene.notes.lines()),
            )
        )
    return dataset, rows


def present_subsets(root: Path) -> list[str]:
    """The default subsets (``adt``, ``pstudio``) that have a folder under ``root``."""
    return [subset for subset in DEFAULT_SUBSETS if (Path(root) / subset).is_dir()]


def summarize_tapvid3d(
    root: Path, *, splits_dir: Path | None = None
) -> tuple[TapVid3DDataset, list[ClipSummary]]:
    """Read every ADT and PStudio clip under ``root`` (split lists in ``splits_dir`` if given)
    and decide its camera poses (rigid groups with the default segmentation)."""
    dataset = TapVid3DDataset(root, subsets=present_subsets(root), splits_dir=splits_dir)
    rows = []
    for subset in dataset.subsets:
        for clip_id in dataset.clip_ids(subset):
            split = dataset.split_of(subset, clip_id)
            try:
                clip = dataset.load(subset, clip_id)
            except MultispaError as error:
                rows.append(ClipSummary(subset, clip_id, split, error=str(error)))
                continue
            poses = dataset.poses(clip)
            worst = poses.worst_m if poses.usable else poses.residual_m
            if worst is None and not poses.usable:
                worst = poses.drift_m
            rows.append(
                ClipSummary(
                    subset=subset,
                    clip_id=clip_id,
                    split=split,
                    frames=clip.num_frames,
                    tracks=clip.num_tracks,
                    image_size=clip.image_size,
                    extrinsics=clip.has_extrinsics,
                    usable=poses.usable,
                    reason=poses.explain(),
                    pose_source=poses.source,
                    static_tracks=poses.static_tracks,
                    rigid_tracks=poses.rigid_tracks,
                    worst_residual_m=worst,
                    warning=poses.warning,
                )
            )
    return dataset, rows

"""Which camera poses a TAPVid-3D clip uses, and whether it is usable at all.

The official ADT conversion writes no ``extrinsics_w2c``; the tracks themselves carry the camera
motion (:mod:`multispa.geometry.static_poses`). The rule, per clip:

- **excluded subset** (DriveTrack): unusable, ``excluded_subset``.
- **``extrinsics_w2c`` present** (any subset): checked against the static scene (the dominant
  rigid group): its world positions may not drift more than ``max_drift_m`` (per-frame RMS)
  over the clip. Passing: pose source ``extrinsics``. Drifting (e.g. a conversion that forgot
  the −90° image rotation tapnet applies to ADT): the static-scene poses are used when they pass,
  with a warning (source ``static_scene``), else the clip is unusable, ``extrinsics_drift``.
  Without a dominant static group the check cannot run: the extrinsics are used, with a warning.
- **fixed-camera subset** (PStudio) without extrinsics: identity, source ``fixed``.
- **ADT** without extrinsics: static-scene poses (source ``static_scene``, world = frame 0's
  camera), or unusable with ``no_static_scene`` / ``pose_residual``.
- **other subsets** without extrinsics: unusable, ``no_extrinsics`` (the camera may move).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multispa.geometry.rigid import rigid_groups
from multispa.geometry.static_poses import (
    NO_STATIC_SCENE,
    StaticScenePoses,
    dominant_group,
    static_drift,
    static_scene_poses,
)
from multispa.geometry.transforms import invert_rigid
from multispa.scenes.types import TapVidClip

__all__ = [
    "DEFAULT_POSE_CHECK",
    "EXCLUDED_SUBSETS",
    "POSE_SOURCES",
    "STATIC_CAMERA_SUBSETS",
    "ClipPoses",
    "PoseCheckConfig",
    "resolve_clip_poses",
]

#: Values of ``meta.track.pose_source``.
POSE_SOURCES: tuple[str, ...] = ("extrinsics", "static_scene", "fixed")
#: Subsets whose cameras are fixed, so identity extrinsics (world = camera) are valid.
STATIC_CAMERA_SUBSETS = frozenset({"pstudio"})
#: Subsets never used (their camera poses are not accurate enough).
EXCLUDED_SUBSETS = frozenset({"drivetrack"})
#: Subsets whose clips without extrinsics get poses from their static scene.
STATIC_SCENE_SUBSETS = frozenset({"adt"})


@dataclass(frozen=True)
class PoseCheckConfig:
    """Thresholds of the static-scene poses and of the extrinsics check.

    Attributes:
        min_static_tracks: fewest tracks of the static group.
        dominance: the static group needs this many times the tracks of the next rigid group.
        max_residual_m: largest per-frame RMS residual of static-scene poses, metres.
        max_drift_m: largest per-frame RMS drift of the static group under given extrinsics,
            metres.
    """

    min_static_tracks: int = 30
    dominance: float = 2.0
    max_residual_m: float = 0.005
    max_drift_m: float = 0.01


#: The default thresholds (a shared immutable instance, usable as an argument default).
DEFAULT_POSE_CHECK = PoseCheckConfig()


@dataclass(frozen=True)
class ClipPoses:
    """The poses a clip will use, or why it is unusable.

    Attributes:
        source: ``"extrinsics"``, ``"static_scene"`` or ``"fixed"``; ``None`` when unusable.
        cam_from_world: ``(T, 4, 4)`` float64 world-to-camera poses (``None`` when unusable).
        reason: ``""`` or a reason code (``no_static_scene``, ``pose_residual``,
            ``extrinsics_drift``, ``no_extrinsics``, ``excluded_subset``).
        message: details of the reason, in words.
        warning: a note for a usable clip (drifting or unchecked extrinsics), or ``""``.
        static_tracks: tracks in the largest rigid group (the static group when it dominates).
        next_tracks: tracks in the second largest rigid group.
        rigid_tracks: tracks of the static group that stay rigid with it (those the static-scene
            poses are fitted to and the extrinsics are checked on; 0 when not computed).
        residual_m: worst per-frame RMS residual of the static-scene fit, metres, if computed.
        residual_frame: the frame of ``residual_m``.
        drift_m: worst per-frame RMS drift of the static group under the file's extrinsics,
            metres, if checked.
        drift_frame: the frame of ``drift_m``.
    """

    source: str | None
    cam_from_world: np.ndarray | None
    reason: str = ""
    message: str = ""
    warning: str = ""
    static_tracks: int = 0
    next_tracks: int = 0
    rigid_tracks: int = 0
    residual_m: float | None = None
    residual_frame: int | None = None
    drift_m: float | None = None
    drift_frame: int | None = None

    @property
    def usable(self) -> bool:
        """Whether the clip may be used."""
        return self.source is not None

    @property
    def worst_m(self) -> float | None:
        """The residual of the poses in use: the fit residual for ``static_scene``, the drift
        for ``extrinsics``, ``None`` otherwise (metres)."""
        if self.source == "static_scene":
            return self.residual_m
        if self.source == "extrinsics":
            return self.drift_m
        return None

    def explain(self) -> str:
        """``"<reason>: <message>"`` for an unusable clip, else ``""``."""
        return f"{self.reason}: {self.message}" if self.reason else ""

    def to_json(self) -> dict[str, Any]:
        """Everything but the poses, JSON-ready (recorded in the clip cache)."""
        return {
            "pose_source": self.source,
            "reason": self.reason,
            "message": self.message,
            "warning": self.warning,
            "static_tracks": self.static_tracks,
            "next_tracks": self.next_tracks,
            "rigid_tracks": self.rigid_tracks,
            "residual_m": self.residual_m,
            "residual_frame": self.residual_frame,
            "drift_m": self.drift_m,
            "drift_frame": self.drift_frame,
        }


def _unusable(reason: str, message: str, **fields: Any) -> ClipPoses:
    return ClipPoses(None, None, reason, message, **fields)


def resolve_clip_poses(
    clip: TapVidClip,
    groups: Sequence[np.ndarray] | None = None,
    config: PoseCheckConfig = PoseCheckConfig(),
) -> ClipPoses:
    """Decide the clip's poses (see the module docstring).

    Args:
        clip: a loaded clip (``tracks_cam`` finite, as the reader guarantees).
        groups: its rigid groups; computed with the default segmentation when ``None``.
        config: thresholds.
    """
    subset = clip.subset
    if subset in EXCLUDED_SUBSETS:
        return _unusable(
            "excluded_subset", f"{subset} clip: subset excluded (camera poses not accurate enough)"
        )
    if groups is None:
        groups = rigid_groups(clip.tracks_cam)
    if not clip.has_extrinsics and subset in STATIC_CAMERA_SUBSETS:
        group = dominant_group(
            groups, min_tracks=config.min_static_tracks, dominance=config.dominance
        )
        identity = np.tile(np.eye(4), (clip.num_frames, 1, 1))
        return ClipPoses(
            "fixed", identity, static_tracks=group.largest, next_tracks=group.runner_up
        )
    if not clip.has_extrinsics and subset not in STATIC_SCENE_SUBSETS:
        return _unusable(
            "no_extrinsics", f"{subset} clip without extrinsics_w2c: the camera may move"
        )
    estimated = static_scene_poses(
        clip.tracks_cam,
        groups,
        min_tracks=config.min_static_tracks,
        dominance=config.dominance,
        max_residual_m=config.max_residual_m,
    )
    fit: dict[str, Any] = {
        "static_tracks": estimated.group.largest,
        "next_tracks": estimated.group.runner_up,
        "rigid_tracks": int(estimated.inliers.size),
        "residual_m": estimated.worst_residual_m,
        "residual_frame": estimated.worst_frame,
    }
    if clip.has_extrinsics:
        return _checked_extrinsics(clip, estimated, fit, config)
    if estimated.world_from_cam is None or not estimated.usable:
        return _unusable(estimated.reason, estimated.message, **fit)
    return ClipPoses("static_scene", invert_rigid(estimated.world_from_cam), **fit)


def _checked_extrinsics(
    clip: TapVidClip, estimated: StaticScenePoses, fit: dict[str, Any], config: PoseCheckConfig
) -> ClipPoses:
    """The file's extrinsics if the static scene stays put under them, else the fallback."""
    given = np.asarray(clip.cam_from_world, dtype=np.float64)
    if estimated.reason == NO_STATIC_SCENE or estimated.inliers.size == 0:
        warning = f"extrinsics_w2c not checked: no dominant static scene ({estimated.message})"
        return ClipPoses("extrinsics", given, warning=warning, **fit)
    drift = static_drift(clip.tracks_cam, given, estimated.inliers)
    finite = np.isfinite(drift)
    frame = int(np.argmax(np.where(finite, drift, np.inf)))
    worst = float(drift[frame])
    fit = {**fit, "drift_m": worst, "drift_frame": frame}
    if finite.all() and worst <= config.max_drift_m:
        return ClipPoses("extrinsics", given, **fit)
    problem = (
        f"extrinsics_w2c disagree with the tracks: the {estimated.inliers.size} static-scene "
        f"tracks drift {1000 * worst:.1f} mm (RMS) at frame {frame}, limit "
        f"{1000 * config.max_drift_m:g} mm"
    )
    if estimated.world_from_cam is not None and estimated.usable:
        return ClipPoses(
            "static_scene",
            invert_rigid(estimated.world_from_cam),
            warning=f"{problem}; static-scene poses used instead",
            **fit,
        )
    return _unusable(
        "extrinsics_drift",
        f"{problem}; static-scene poses unusable too ({estimated.reason}: {estimated.message})",
        **fit,
    )

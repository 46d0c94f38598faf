"""Camera poses of a moving camera from the static scene seen in its 3-D point tracks.

Tracks ``(T, N, 3)`` given in each frame's own camera coordinates carry the camera motion: the
tracks of the static scene (one rigid group, see :mod:`multispa.geometry.rigid`) keep their world
positions, so aligning them frame to frame gives every camera's pose.

1. **Static group**: the largest rigid group, if it has at least ``min_tracks`` tracks and at
   least ``dominance`` times the tracks of the next group; otherwise there is no dominant static
   scene (reason ``no_static_scene``). A group whose points are nearly collinear cannot fix a
   rotation and counts as none.
2. **Poses**: for each frame t the rigid transform (rotation and translation, no scale;
   Kabsch/Umeyama through one batched SVD of ``(T, 3, 3)`` cross-covariances, with a reflection
   guard) from camera t to a common frame. A first pass aligns every frame to frame 0; the mean of
   the aligned points is the group's denoised structure; a second pass aligns every frame to that
   structure. The segmentation zeroes per-frame distance changes up to 1 cm, so an object moving
   slowly can end up in the static group: tracks whose RMS distance to the structure exceeds
   twice the residual limit are left out and the fit is repeated (starting from the better half
   of the tracks) until the kept set is stable; at least ``min_tracks`` must remain. The poses
   are re-anchored so that the **world is frame 0's camera**: ``world_from_cam[0]`` is the
   identity and ``world_from_cam[t]`` is ``cam0_from_cam_t``.
3. **Residual** of frame t: the RMS over the kept tracks of the 3-D distance between the
   aligned point and the structure, metres. A frame above ``max_residual_m``, or any non-finite
   position in the group, makes the poses unusable (reason ``pose_residual``).

:func:`static_drift` measures the same residual for poses given from elsewhere (a file's
``extrinsics_w2c``): per frame the RMS distance of the static tracks' world positions from each
track's median world position over the clip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from multispa.geometry.transforms import expect_shape, invert_rigid, rigid_transform

__all__ = [
    "NO_STATIC_SCENE",
    "POSE_RESIDUAL",
    "StaticGroup",
    "StaticScenePoses",
    "align_rigid",
    "dominant_group",
    "static_drift",
    "static_scene_poses",
]

NO_STATIC_SCENE = "no_static_scene"
POSE_RESIDUAL = "pose_residual"
#: Smallest RMS spread (metres) of the static points about their principal line; below it the
#: points are (nearly) collinear and do not fix the rotation about that line.
MIN_SPREAD_M = 0.01


@dataclass(frozen=True)
class StaticGroup:
    """The dominant rigid group of a clip, or why there is none.

    Attributes:
        members: ``(M,)`` int64 ascending track indices; empty when there is no dominant group.
        largest: tracks in the largest rigid group (0 without groups).
        runner_up: tracks in the second largest group (0 when there is only one).
        reason: ``""`` or ``"no_static_scene"``.
        message: why the group was refused, in words (``""`` when accepted).
    """

    members: np.ndarray
    largest: int
    runner_up: int
    reason: str = ""
    message: str = ""

    @property
    def found(self) -> bool:
        """Whether a dominant static group was found."""
        return not self.reason


def dominant_group(
    groups: Sequence[np.ndarray], *, min_tracks: int = 30, dominance: float = 2.0
) -> StaticGroup:
    """Pick the static group among rigid groups: the largest, if it dominates.

    Args:
        groups: rigid groups as arrays of track indices (any order).
        min_tracks: fewest tracks the static group may have.
        dominance: the static group needs at least this many times the next group's tracks.

    Returns:
        The group (``members`` sorted) or, when the largest group is too small or does not
        dominate (ties included), an empty one with reason ``no_static_scene``.

    >>> g = dominant_group([np.arange(40), np.arange(40, 50)])
    >>> (g.found, g.largest, g.runner_up)
    (True, 40, 10)
    >>> dominant_group([np.arange(40), np.arange(40, 61)]).reason
    'no_static_scene'
    """
    sizes = sorted((int(np.size(g)) for g in groups), reverse=True)
    largest = sizes[0] if sizes else 0
    runner_up = sizes[1] if len(sizes) > 1 else 0
    empty = np.zeros(0, dtype=np.int64)
    if largest < min_tracks:
        message = (
            f"largest rigid group has {largest} track(s), fewer than {min_tracks}"
            if sizes
            else "no rigid group of tracks"
        )
        return StaticGroup(empty, largest, runner_up, NO_STATIC_SCENE, message)
    if largest < dominance * runner_up:
        return StaticGroup(
            empty,
            largest,
            runner_up,
            NO_STATIC_SCENE,
            f"largest rigid group ({largest} tracks) is not {dominance:g}x the next "
            f"({runner_up} tracks)",
        )
    index = next(i for i, g in enumerate(groups) if int(np.size(g)) == largest)
    members = np.sort(np.asarray(groups[index], dtype=np.int64).reshape(-1))
    return StaticGroup(members, largest, runner_up)


def _rotations(cross: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best rotations for ``(T, 3, 3)`` cross-covariances ``H = Σ p_c·q_cᵀ`` (Kabsch).

    Returns ``R`` ``(T, 3, 3)`` with ``q_c ≈ R·p_c`` and det +1 (reflection guard: the weakest
    singular direction is flipped when the best orthogonal fit is a reflection), and the
    ``(T,)`` trace ``tr(R·H)`` (the singular values summed with that sign).
    """
    u, singular, vt = np.linalg.svd(cross)
    v = np.swapaxes(vt, 1, 2)
    u_t = np.swapaxes(u, 1, 2)
    sign = np.sign(np.linalg.det(v @ u_t))
    sign[sign == 0] = 1.0
    v[:, :, 2] *= sign[:, None]
    singular[:, 2] *= sign
    return v @ u_t, singular.sum(axis=1)


def align_rigid(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid transforms ``target ≈ R·source + t`` per frame (Kabsch, no scale).

    Args:
        source: ``(T, M, 3)`` points per frame, metres.
        target: ``(T, M, 3)`` or ``(M, 3)`` corresponding points, metres.

    Returns:
        ``R`` ``(T, 3, 3)`` float64 proper rotations (det +1, also when the best orthogonal fit
        is a reflection) and ``t`` ``(T, 3)`` float64, metres. One batched SVD, no frame loop.

    >>> square = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    >>> R, t = align_rigid(square[None], square + [0.0, 0.0, 2.0])
    >>> np.round(R[0], 9).tolist() == np.eye(3).tolist(), np.round(t[0], 9).tolist()
    (True, [0.0, 0.0, 2.0])
    """
    expect_shape(source, "(T, M, 3)", "source")
    expect_shape(target, "(..., M, 3)", "target")
    src = np.asarray(source, dtype=np.float64)
    dst = np.broadcast_to(np.asarray(target, dtype=np.float64), src.shape)
    src_mean = src.mean(axis=1)
    dst_mean = dst.mean(axis=1)
    cross = np.swapaxes(src - src_mean[:, None], 1, 2) @ (dst - dst_mean[:, None])
    rotation, _ = _rotations(cross)
    translation = dst_mean - np.einsum("tij,tj->ti", rotation, src_mean)
    return rotation, translation


@dataclass(frozen=True)
class StaticScenePoses:
    """Camera poses from the static scene, or why there are none.

    Attributes:
        group: the static group from the segmentation (its sizes also when refused).
        inliers: ``(K,)`` int64 track indices of the group that the poses were fitted to (the
            group minus the tracks that do not stay rigid with it); empty without a fit.
        world_from_cam: ``(T, 4, 4)`` float64 camera-to-world poses, world = frame 0's camera
            (``None`` without a fit).
        residual_m: ``(T,)`` float64 RMS residual per frame over the inliers, metres (``None``
            without a fit).
        reason: ``""``, ``"no_static_scene"`` or ``"pose_residual"``.
        message: details in words (frame and residual for ``pose_residual``).
    """

    group: StaticGroup
    inliers: np.ndarray
    world_from_cam: np.ndarray | None
    residual_m: np.ndarray | None
    reason: str = ""
    message: str = ""

    @property
    def usable(self) -> bool:
        """Whether the poses may be used."""
        return not self.reason

    @property
    def worst_frame(self) -> int | None:
        """Frame with the largest residual (``None`` without residuals)."""
        return None if self.residual_m is None else int(np.argmax(self.residual_m))

    @property
    def worst_residual_m(self) -> float | None:
        """Largest per-frame residual, metres (``None`` without residuals)."""
        return None if self.residual_m is None else float(np.max(self.residual_m))


def _spread_m(points: np.ndarray) -> float:
    """RMS distance (metres) of ``(M, 3)`` points from their best-fitting line."""
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return float(np.sqrt(np.sum(singular[1:] ** 2) / max(points.shape[0], 1)))


@dataclass(frozen=True)
class _Tracks:
    """A group's tracks in coordinates-major layout with the sums every fit reuses.

    ``stacked`` ``(3T, M)``: row ``3t + k`` holds coordinate k of every track in frame t;
    ``squares`` ``(T, M)``: ``‖p_tn‖²``; ``track_squares`` ``(M,)``: ``Σ_t ‖p_tn‖²``.
    """

    stacked: np.ndarray
    squares: np.ndarray
    track_squares: np.ndarray

    @classmethod
    def of(cls, points: np.ndarray) -> _Tracks:
        """From ``(T, M, 3)`` positions."""
        columns = np.ascontiguousarray(np.swapaxes(points, 1, 2), dtype=np.float64)
        squares = np.einsum("tkm,tkm->tm", columns, columns)
        frames, _, count = columns.shape
        return cls(columns.reshape(3 * frames, count), squares, squares.sum(axis=0))


@dataclass(frozen=True)
class _Fit:
    """One alignment of every frame onto a target structure.

    ``keep`` ``(M,)`` bool: the tracks fitted; ``rotation`` ``(T, 3, 3)`` and ``translation``
    ``(T, 3)`` map camera t onto the target; ``structure`` ``(3, M)`` the mean aligned position
    of every track; ``frame_residual_m`` ``(T,)`` RMS over the kept tracks and
    ``track_residual_m`` ``(M,)`` RMS over the frames of the distance to the structure.
    """

    keep: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    structure: np.ndarray
    frame_residual_m: np.ndarray
    track_residual_m: np.ndarray


def _fit(tracks: _Tracks, keep: np.ndarray, target: np.ndarray) -> _Fit:
    """Align every frame onto ``target`` ``(3, M)`` over the ``keep`` tracks.

    Every step is a BLAS product over the ``(3T, M)`` points or works on small arrays: the
    residuals come from the identities ``Σ_t ‖R_t·a_t − m‖² = Σ_t ‖a_t‖² − T·‖m‖²`` (m the mean
    of the rotated ``a_t``, rotations keeping lengths) and
    ``Σ_n w_n·‖R·a_n − m_n‖² = Σ w‖a‖² + Σ w‖m‖² − 2·tr(R·Σ w·a·mᵀ)``, never forming the
    aligned points.
    """
    stacked = tracks.stacked
    frames = stacked.shape[0] // 3
    weights = keep.astype(np.float64)
    total = weights.sum()
    centroids = (stacked @ weights / total).reshape(frames, 3)  # c_t over the kept tracks
    target_centroid = target @ weights / total
    # H_t = Σ_n w_n·(p_tn − c_t)(s_n − s̄)ᵀ; the weighted target is centred, so p needs no centring.
    weighted_target = (target - target_centroid[:, None]) * weights
    rotation, _ = _rotations((stacked @ weighted_target.T).reshape(frames, 3, 3))
    # m_n = mean_t R_t·(p_tn − c_t): the structure about the target's centroid.
    rotated_centroid = np.einsum("tij,tj->i", rotation, centroids)
    mean = np.swapaxes(rotation, 0, 1).reshape(3, 3 * frames) @ stacked
    mean -= rotated_centroid[:, None]
    mean /= frames
    # Per track: mean_t ‖p_tn − c_t‖² − ‖m_n‖².
    centred_squares = (
        tracks.track_squares - 2.0 * (centroids.reshape(-1) @ stacked) + np.sum(centroids**2)
    )
    track_squares = centred_squares / frames - np.sum(mean * mean, axis=0)
    # Per frame over the kept tracks.
    weighted_mean = mean * weights
    spread = tracks.squares @ weights - total * np.sum(centroids**2, axis=1)
    cross = (stacked @ weighted_mean.T).reshape(frames, 3, 3)
    cross -= centroids[:, :, None] * weighted_mean.sum(axis=1)[None, None, :]
    trace = np.einsum("tij,tji->t", rotation, cross)
    frame_squares = (spread + np.sum(weighted_mean * mean) - 2.0 * trace) / total
    return _Fit(
        keep=keep,
        rotation=rotation,
        translation=target_centroid - np.einsum("tij,tj->ti", rotation, centroids),
        structure=mean + target_centroid[:, None],
        frame_residual_m=np.sqrt(np.maximum(frame_squares, 0.0)),
        track_residual_m=np.sqrt(np.maximum(track_squares, 0.0)),
    )


#: Most refits while trimming the tracks that do not stay rigid with the static group.
MAX_REFITS = 8


def _robust_fit(tracks: _Tracks, outlier_m: float) -> _Fit:
    """Fit every frame onto the group's mean structure, without its non-rigid tracks.

    Two passes over all tracks (onto frame 0, then onto the mean aligned structure). When some
    track's RMS distance to the structure exceeds ``outlier_m``, the fit restarts from the
    better half of the tracks and is repeated with the tracks within
    ``max(outlier_m, 3 × median inlier residual)`` until that set is stable.
    """
    keep = np.ones(tracks.stacked.shape[1], dtype=bool)
    fit = _fit(tracks, keep, tracks.stacked[:3])
    fit = _fit(tracks, keep, fit.structure)
    if np.all(fit.track_residual_m <= outlier_m):
        return fit
    keep = fit.track_residual_m <= np.median(fit.track_residual_m)
    for _ in range(MAX_REFITS):
        fit = _fit(tracks, keep, fit.structure)
        limit = max(outlier_m, 3.0 * float(np.median(fit.track_residual_m[keep])))
        keep = fit.track_residual_m <= limit
        if np.array_equal(keep, fit.keep):
            break
    return fit


def static_scene_poses(
    tracks_cam: np.ndarray,
    groups: Sequence[np.ndarray],
    *,
    min_tracks: int = 30,
    dominance: float = 2.0,
    max_residual_m: float = 0.005,
) -> StaticScenePoses:
    """Every frame's camera pose from the clip's static scene, world = frame 0's camera.

    Args:
        tracks_cam: ``(T, N, 3)`` track positions in each frame's camera, metres.
        groups: the clip's rigid groups (track index arrays).
        min_tracks, dominance: the static-group rule (:func:`dominant_group`); ``min_tracks``
            also bounds the inliers.
        max_residual_m: largest allowed per-frame RMS residual, metres; tracks whose RMS
            distance to the structure exceeds twice this are left out of the fit.

    Returns:
        The poses and residuals; ``reason`` says why they are unusable (a dominant group that
        is collinear, or keeps fewer than ``min_tracks`` rigid tracks, is ``no_static_scene``).
    """
    expect_shape(tracks_cam, "(T, N, 3)", "tracks_cam")
    group = dominant_group(groups, min_tracks=min_tracks, dominance=dominance)
    none = np.zeros(0, dtype=np.int64)
    if not group.found:
        return StaticScenePoses(group, none, None, None, group.reason, group.message)
    points = np.asarray(tracks_cam)[:, group.members]
    finite = np.isfinite(points).all(axis=(1, 2))
    if not finite.all():
        t = int(np.flatnonzero(~finite)[0])
        message = (
            f"non-finite static-scene track positions in {int(np.count_nonzero(~finite))} "
            f"frame(s), first at frame {t}"
        )
        return StaticScenePoses(group, none, None, None, POSE_RESIDUAL, message)
    tracks = _Tracks.of(points)
    fit = _robust_fit(tracks, 2.0 * max_residual_m)
    inliers = group.members[fit.keep]
    if inliers.size < min_tracks:
        message = (
            f"only {inliers.size} of the static group's {group.largest} tracks stay rigid with "
            f"it (need {min_tracks})"
        )
        return StaticScenePoses(group, inliers, None, None, NO_STATIC_SCENE, message)
    spread = _spread_m(tracks.stacked[:3].T[fit.keep])
    if spread < MIN_SPREAD_M:
        message = (
            f"static group ({inliers.size} tracks) is nearly collinear: {1000 * spread:.1f} mm "
            f"RMS off its line (need {1000 * MIN_SPREAD_M:g} mm)"
        )
        return StaticScenePoses(group, inliers, None, None, NO_STATIC_SCENE, message)
    structure_from_cam = rigid_transform(fit.rotation, fit.translation)
    world_from_cam = invert_rigid(structure_from_cam[0]) @ structure_from_cam
    world_from_cam[0] = np.eye(4)
    residual = fit.frame_residual_m
    worst = int(np.argmax(residual))
    if residual[worst] > max_residual_m:
        over = int(np.count_nonzero(residual > max_residual_m))
        message = (
            f"static-scene fit residual {1000 * residual[worst]:.2f} mm at frame {worst} exceeds "
            f"{1000 * max_residual_m:g} mm ({over} frame(s) over)"
        )
        return StaticScenePoses(
            group, inliers, world_from_cam, residual, POSE_RESIDUAL, message
        )
    return StaticScenePoses(group, inliers, world_from_cam, residual)


def static_drift(
    tracks_cam: np.ndarray, cam_from_world: np.ndarray, members: np.ndarray
) -> np.ndarray:
    """How far given poses let the static group wander: per frame, metres.

    Args:
        tracks_cam: ``(T, N, 3)`` track positions in each frame's camera, metres.
        cam_from_world: ``(T, 4, 4)`` world-to-camera poses to check.
        members: ``(M,)`` track indices of the static group (M >= 1).

    Returns:
        ``(T,)`` float64: the RMS over the group of the distance between a track's world position
        in frame t and its median world position over the clip (NaN where positions are not
        finite).
    """
    expect_shape(tracks_cam, "(T, N, 3)", "tracks_cam")
    expect_shape(cam_from_world, "(T, 4, 4)", "cam_from_world")
    points = np.asarray(tracks_cam, dtype=np.float64)[:, np.asarray(members, dtype=np.int64)]
    poses = np.asarray(cam_from_world, dtype=np.float64)
    # X_world = Rᵀ·(X_cam − t), computed as (X_cam − t)·R row-wise.
    world = (points - poses[:, None, :3, 3]) @ poses[:, :3, :3]
    offsets = world - np.median(world, axis=0)
    return np.sqrt(np.mean(np.einsum("tnk,tnk->tn", offsets, offsets), axis=1))

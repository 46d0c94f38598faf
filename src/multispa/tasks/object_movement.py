"""Object movement on TAPVid-3D clips (docs/labels.md#object-movement; rules (i), (j)).

Four subtasks ask how far (``distance``, mm) or by which vector (``vector``, mm in the first
camera's axes) one scene point moved between two frames; the point is referenced by its
normalised coordinate (``coord``) or by a dot drawn on frame 1 only (``dot``).

Planning (per subtask, split and clip): for each rigid group of the clip (``group_of_track``,
computed at prepare time), its tracks are shuffled and the first ``k`` kept (15 train, 1 val);
each kept track yields distance-binned frame pairs (docs/labels.md#track-pairs, ``pairs_per_bin`` P
= 30 train, 1 val, a run constant: rule (i)); in training a random 5 % of each track's pairs are
added reversed. Dot candidates whose point lies within one marker radius of the border in the first
prompt frame are dropped. The ``quotas`` value of a subtask applies to each source
(``tapvid3d/adt``, ``tapvid3d/pstudio``) separately: a uniform draw without replacement (the val
pool: 300).

Selection ``extra``: ``{"track": n, "group": g, "reversed": bool}``; ``frames`` = (f1, f2) in
prompt order (a reversed copy has f1 > f2).

Answers for (f1, f2): ``d = X_world[f2] − X_world[f1]`` (float64 from the float32 cache);
``‖d‖ < 0.01 m`` is static and ``d := 0`` (rule (j), ``"static"`` answer variant). Distance:
``r(1000·‖d‖)`` mm; vector: ``r(1000·R_cam1_from_world·d)`` mm componentwise.

Skip reasons (``<subtask>:<reason>``): plan — ``marker_margin`` (dot point too close to the
border), ``not_drawn`` (pooled candidates beyond the per-source quota); generate —
``not_visible`` (track not visible in a frame of the pair), ``marker_margin``.

Generation gathers the tracks, poses and pixels of all the clip's selections at once and
computes answers, coordinates and flags in one vectorised pass; per record it only formats text
(:class:`multispa.tasks.records.RecordMaker`: template indices from a hash of the seed and the
record id) and, for dot subtasks, draws the marker with the record's ``ctx.rng`` (colour choice)
on the decoded frame, shared by the clip's dot records that mark it
(:class:`multispa.tasks.markers.DecodedFrames`: decoded once, drawn on in place).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from multispa.cache.tapvid_cache import TapVidCache, load_tapvid_cache
from multispa.errors import CacheError
from multispa.geometry.coords import pixels_to_norm1000, round_half_away
from multispa.tasks.answers import format_coord, format_scalar, format_vector
from multispa.tasks.base import Selection, UnitContext, rng_for
from multispa.tasks.markers import DecodedFrames, inside_margin, marker_radius
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import FrameImages, RecordMaker
from multispa.tasks.sampling import distance_binned_pairs, reversed_copies
from multispa.tasks.templates import SUBTASKS

__all__ = [
    "OBJECT_MOVEMENT_SUBTASKS",
    "STATIC_EPS_M",
    "MovementAnswers",
    "MovementParams",
    "ObjectMovementFamily",
    "movement_answer",
    "movement_answers",
    "params_for_split",
]

OBJECT_MOVEMENT_SUBTASKS: tuple[str, ...] = (
    "object_movement_distance_coord",
    "object_movement_distance_dot",
    "object_movement_vector_coord",
    "object_movement_vector_dot",
)
#: Displacement below which a point (or the camera) counts as not moving, metres (rule (j)).
STATIC_EPS_M = 0.01
#: ``k`` of the annotated (dotted) image: 0-based prompt position, the first image.
DOT_IMAGE_K = 0
_DECODED_FRAMES = 32  # decoded frames kept per unit while drawing dots


@dataclass(frozen=True)
class MovementParams:
    """Sampling parameters of one split (docs/labels.md#track-pairs, #benchmark-pool).

    Attributes:
        tracks_per_group: k, tracks kept per rigid group.
        pairs_per_bin: P, the run-constant per-bin pair cap of the track pairs.
        reverse_fraction: share of each track's pairs added as reversed copies.
    """

    tracks_per_group: int
    pairs_per_bin: int
    reverse_fraction: float


TRAIN_PARAMS = MovementParams(tracks_per_group=15, pairs_per_bin=30, reverse_fraction=0.05)
VAL_PARAMS = MovementParams(tracks_per_group=1, pairs_per_bin=1, reverse_fraction=0.0)


def params_for_split(split: str) -> MovementParams:
    """Training parameters for ``"train"``, benchmark-pool parameters for ``"val"``."""
    return VAL_PARAMS if split == "val" else TRAIN_PARAMS


@dataclass(frozen=True)
class MovementAnswers:
    """Answers for ``K`` (point, frame pair) cases (rule (j)).

    Attributes:
        distance_mm: ``(K,)`` int64, ``r(1000·‖d‖)`` (0 when static).
        vector_mm: ``(K, 3)`` int64, ``r(1000·R_cam1_from_world·d)`` (0 when static).
        moving: ``(K,)`` bool, ``‖d‖ >= 0.01 m``.
        distance_m: ``(K,)`` float64 unrounded ``‖d‖`` before the static rule, metres.
    """

    distance_mm: np.ndarray
    vector_mm: np.ndarray
    moving: np.ndarray
    distance_m: np.ndarray


def movement_answers(
    world_1: np.ndarray, world_2: np.ndarray, cam1_from_world: np.ndarray
) -> MovementAnswers:
    """Answers for ``K`` points that moved from ``world_1`` (frame 1) to ``world_2`` (frame 2).

    Args:
        world_1, world_2: ``(K, 3)`` world positions, metres (float64 from the float32 cache).
        cam1_from_world: ``(K, 4, 4)`` world-to-camera poses of frame 1 (only rotations used).
    """
    d_world_m = np.asarray(world_2, np.float64) - np.asarray(world_1, np.float64)
    distance_m = np.linalg.norm(d_world_m, axis=-1)
    moving = distance_m >= STATIC_EPS_M
    d_world_m = np.where(moving[:, None], d_world_m, 0.0)
    rotation = np.asarray(cam1_from_world, np.float64)[:, :3, :3]
    d_cam1_m = np.einsum("kij,kj->ki", rotation, d_world_m)
    return MovementAnswers(
        distance_mm=round_half_away(1000.0 * np.linalg.norm(d_world_m, axis=-1)),
        vector_mm=round_half_away(1000.0 * d_cam1_m),
        moving=moving,
        distance_m=distance_m,
    )


def movement_answer(
    world_1: np.ndarray, world_2: np.ndarray, cam1_from_world: np.ndarray
) -> tuple[int, list[int], bool, float]:
    """Answers for a point that moved from ``world_1`` (frame 1) to ``world_2`` (frame 2).

    Args:
        world_1, world_2: ``(3,)`` world positions, metres.
        cam1_from_world: ``(4, 4)`` world-to-camera pose of frame 1 (only the rotation is used).

    Returns:
        distance in mm, ``[x, y, z]`` displacement in camera-1 axes in mm (both 0 when static),
        whether the point moved (``‖d‖ >= 0.01 m``), and the unrounded ``‖d‖`` in metres.
    """
    one = movement_answers(
        np.asarray(world_1, np.float64).reshape(1, 3),
        np.asarray(world_2, np.float64).reshape(1, 3),
        np.asarray(cam1_from_world, np.float64).reshape(1, 4, 4),
    )
    return (
        int(one.distance_mm[0]),
        one.vector_mm[0].tolist(),
        bool(one.moving[0]),
        float(one.distance_m[0]),
    )


def _image_size(cache: TapVidCache) -> tuple[int, int]:
    width, height = cache.meta["image_size"]
    return int(width), int(height)


def _clip_candidates(
    cache: TapVidCache, unit_id: str, split: str, subtask: str, seed: int
) -> list[tuple[int, int, int, int, bool]]:
    """Distance-binned track pairs of one clip and subtask: ``(f1, f2, track, group, reversed)`` in
    prompt order.

    The clip's generator is keyed by (seed, "plan", split, subtask, unit id).
    """
    params = params_for_split(split)
    rng = rng_for(seed, "plan", split, subtask, unit_id)
    groups = np.asarray(cache.group_of_track)
    visible = np.asarray(cache.visible, dtype=bool)
    candidates: list[tuple[int, int, int, int, bool]] = []
    for group in np.unique(groups[groups >= 0]).tolist():
        members = rng.permutation(np.flatnonzero(groups == group))
        for track in members[: params.tracks_per_group].tolist():
            positions = np.asarray(cache.tracks_world[:, track], dtype=np.float64)
            pairs = distance_binned_pairs(
                visible[:, track],
                positions,
                rng,
                pairs_per_bin=params.pairs_per_bin,
                static_eps_m=STATIC_EPS_M,
            )
            candidates += [(f1, f2, track, group, False) for f1, f2 in pairs]
            if params.reverse_fraction > 0 and pairs:
                extra = reversed_copies(pairs, params.reverse_fraction, rng)
                candidates += [(f1, f2, track, group, True) for f1, f2 in extra]
    return candidates


def _inside_marker_margin(
    cache: TapVidCache, source: str, frames: np.ndarray, tracks: np.ndarray
) -> np.ndarray:
    """``(M,)`` bool: the track's pixel in ``frames`` lies one marker radius inside the image."""
    width, height = _image_size(cache)
    uv = np.asarray(cache.uv[frames, tracks], dtype=np.float64).reshape(-1, 2)
    return np.asarray(inside_margin(uv, width, height, marker_radius(width, source)), dtype=bool)


class ObjectMovementFamily(PlannedFamily):
    """The object-movement family (TAPVid-3D ADT and PStudio)."""

    family: ClassVar[str] = "object_movement"
    subtasks: ClassVar[tuple[str, ...]] = OBJECT_MOVEMENT_SUBTASKS
    dataset: ClassVar[str] = "tapvid3d"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """Candidates of every clip (track pairs), then a per-(subtask, source) quota draw."""
        wanted, split, seed = request.subtasks, request.split, request.seed
        dropped: dict[str, int] = {}
        pools: dict[tuple[str, str], list[Selection]] = {}
        for unit in request.units:
            cache = load_tapvid_cache(unit.path)
            for subtask in wanted:
                rows = _clip_candidates(cache, unit.unit_id, split, subtask, seed)
                if subtask.endswith("_dot") and rows:
                    inside = _inside_marker_margin(
                        cache, unit.source, np.array([r[0] for r in rows]),
                        np.array([r[2] for r in rows]),
                    )
                    _count(dropped, f"{subtask}:marker_margin", int(np.count_nonzero(~inside)))
                    rows = [row for row, ok in zip(rows, inside.tolist(), strict=True) if ok]
                pool = pools.setdefault((subtask, unit.source), [])
                pool += [
                    Selection(
                        subtask,
                        unit.unit_id,
                        (f1, f2),
                        {"track": track, "group": group, "reversed": flipped},
                    )
                    for f1, f2, track, group, flipped in rows
                ]
        selections: list[Selection] = []
        for subtask in wanted:
            rng = request.rng(subtask)
            quota = request.quotas[subtask]
            for source in sorted(src for sub, src in pools if sub == subtask):
                pool = pools[(subtask, source)]
                if quota is not None and len(pool) > quota:
                    keep = np.sort(rng.choice(len(pool), size=quota, replace=False))
                    _count(dropped, f"{subtask}:not_drawn", len(pool) - quota)
                    pool = [pool[i] for i in keep.tolist()]
                selections += pool
        return selections, dropped

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one clip's selections, in their order."""
        if not selections:
            return
        cache = load_tapvid_cache(ctx.unit.path)
        width, height = _image_size(cache)
        frames = DecodedFrames(
            cache.image_path, (width, height), marker_radius(width, ctx.unit.source),
            slots=_DECODED_FRAMES,
        )
        yield from _generate(ctx, cache, selections, frames)


@dataclass(frozen=True)
class _Gathered:
    """Per-selection quantities of one clip, as Python lists (index = selection number).

    Attributes:
        visible: both frames show the track in bounds.
        uv1, uv2: ``[u, v]`` pixels in frames 1 and 2, 2 decimals (``meta.points`` form).
        uv1_raw: ``[u, v]`` unrounded pixels in frame 1 (marker drawing).
        coord_text: ``[ x , y ]`` normalised coordinate of ``uv1``.
        gt: the answer of the selection's subtask (mm, or ``[x, y, z]`` mm; rule (j)).
        answer: ``gt`` formatted and backticked.
        moving, camera_moving: the point's and the camera's motion flags.
    """

    visible: list[bool]
    uv1: list[list[float]]
    uv2: list[list[float]]
    uv1_raw: list[list[float]]
    coord_text: list[str]
    gt: list[Any]
    answer: list[str]
    moving: list[bool]
    camera_moving: list[bool]


def _gather(cache: TapVidCache, selections: Sequence[Selection]) -> _Gathered:
    """Everything per selection that needs no image, in one vectorised pass."""
    count = len(selections)
    frames = np.array([tuple(s.frames) for s in selections], dtype=np.int64).reshape(count, -1)
    tracks = np.array([int(s.extra["track"]) for s in selections], dtype=np.int64)
    num_frames, num_tracks = cache.visible.shape
    if frames.shape[1] != 2:
        raise ValueError(f"{cache.path}: object movement selections need two frames each")
    bad = (frames < 0) | (frames >= num_frames)
    if np.any(bad) or np.any((tracks < 0) | (tracks >= num_tracks)):
        raise CacheError(
            f"{cache.path}: a selection's frame or track lies outside the cached "
            f"{num_frames} frames × {num_tracks} tracks"
        )
    f1, f2 = frames[:, 0], frames[:, 1]
    visible = np.asarray(cache.visible[f1, tracks] & cache.visible[f2, tracks], dtype=bool)
    uv1 = np.asarray(cache.uv[f1, tracks], dtype=np.float64)
    uv2 = np.asarray(cache.uv[f2, tracks], dtype=np.float64)
    answers = movement_answers(
        cache.tracks_world[f1, tracks], cache.tracks_world[f2, tracks], cache.cam_from_world[f1]
    )
    scalar = np.array([SUBTASKS[s.subtask].answer_type == "scalar" for s in selections])
    gt: list[Any] = [None] * count
    answer: list[str] = [""] * count
    rows = np.flatnonzero(scalar)
    for k, value in zip(rows.tolist(), answers.distance_mm[rows].tolist(), strict=True):
        gt[k], answer[k] = value, f"`{format_scalar(value)}`"
    rows = np.flatnonzero(~scalar)
    for k, vector in zip(rows.tolist(), answers.vector_mm[rows].tolist(), strict=True):
        gt[k], answer[k] = vector, f"`{format_vector(vector)}`"
    centres = np.asarray(cache.camera_centres, dtype=np.float64)
    camera_moving = np.linalg.norm(centres[f2] - centres[f1], axis=-1) >= STATIC_EPS_M
    width, height = _image_size(cache)
    # Coordinates only matter for visible tracks; others are skipped (and may be off-image).
    safe_uv1 = np.where(np.isfinite(uv1), uv1, 0.0)
    coords = pixels_to_norm1000(safe_uv1, width, height).tolist()
    uv1_raw = uv1.tolist()
    return _Gathered(
        visible=visible.tolist(),
        uv1=[[round(u, 2), round(v, 2)] for u, v in uv1_raw],
        uv2=[[round(u, 2), round(v, 2)] for u, v in uv2.tolist()],
        uv1_raw=uv1_raw,
        coord_text=[format_coord(x, y) for x, y in coords],
        gt=gt,
        answer=answer,
        moving=answers.moving.tolist(),
        camera_moving=camera_moving.tolist(),
    )


def _generate(
    ctx: UnitContext,
    cache: TapVidCache,
    selections: Sequence[Selection],
    frames: DecodedFrames,
) -> Iterator[dict[str, Any]]:
    """Records of one clip, in the order of ``selections``; a selection whose track is hidden,
    or whose dot would touch the border, is skipped with ``ctx.skip``.

    The work is done coordinate records first, then dot records sorted by their first frame, so
    each marked frame is decoded once and drawn on in place
    (:class:`~multispa.tasks.markers.DecodedFrames`, told the order for its eviction). Every
    record depends on its own selection only, so the order of work changes no byte.
    """
    source = ctx.unit.source
    width, height = _image_size(cache)
    radius = frames.radius
    pose_source = str(cache.meta["pose_source"])
    gathered = _gather(cache, selections)
    uv1_all = np.array(gathered.uv1_raw, dtype=np.float64).reshape(-1, 2)
    inside = inside_margin(
        np.where(np.isfinite(uv1_all), uv1_all, -1.0), width, height, radius
    ).tolist()
    frame_image = FrameImages(ctx)
    makers: dict[str, tuple[RecordMaker, bool]] = {}
    for subtask in {selection.subtask for selection in selections}:
        if subtask not in OBJECT_MOVEMENT_SUBTASKS:
            raise ValueError(f"not an object movement subtask: {subtask!r}")
        maker = RecordMaker(
            seed=ctx.seed, split=ctx.split, subtask=subtask, source=source,
            scene_or_clip=ctx.unit.name,
        )
        makers[subtask] = (maker, subtask.endswith("_dot"))
    first_frames = [int(selection.frames[0]) for selection in selections]
    marks = [makers[s.subtask][1] for s in selections]
    order = sorted(
        range(len(selections)), key=lambda k: (first_frames[k] if marks[k] else -1, k)
    )
    frames.schedule([(first_frames[k],) if marks[k] else () for k in order])
    # The raw frames the records will show, linked at once: both frames of a coordinate record,
    # the second one of a dot record (whose first image is drawn), for the records not skipped.
    raw_frames: list[int] = []
    for k, selection in enumerate(selections):
        if gathered.visible[k] and (inside[k] or not marks[k]):
            if not marks[k]:
                raw_frames.append(first_frames[k])
            raw_frames.append(int(selection.frames[1]))
    frame_image.link_all(raw_frames)
    made: dict[int, dict[str, Any]] = {}
    for step, k in enumerate(order):
        selection = selections[k]
        subtask = selection.subtask
        if not gathered.visible[k]:
            ctx.skip(f"{subtask}:not_visible")
            continue
        make, dot = makers[subtask]
        uv1, uv2 = gathered.uv1[k], gathered.uv2[k]
        moving = gathered.moving[k]
        f1, f2 = pair = (first_frames[k], int(selection.frames[1]))
        extra = selection.extra
        track = int(extra["track"])
        flipped = bool(extra.get("reversed", False))
        rid = make.ids(pair, [[uv1], []], track=track, reversed_pair=flipped)
        if dot:
            if not inside[k]:
                ctx.skip(f"{subtask}:marker_margin")
                continue
            frames.advance(step)
            with frames.annotated(f1, [gathered.uv1_raw[k]], ctx.rng(selection)) as (
                colour_name,
                drawn,
            ):
                first = ctx.write_annotated(rid, subtask, DOT_IMAGE_K, drawn)
            fields = {"marker": colour_name, "answer": gathered.answer[k]}
        else:
            first = frame_image(f1)
            fields = {"point": gathered.coord_text[k], "answer": gathered.answer[k]}
        made[k] = make(
            rid,
            frames=[f1, f2],
            images=[first, frame_image(f2)],
            width_list=[width, width],
            height_list=[height, height],
            fields=fields,
            gt=gathered.gt[k],
            points=[[uv1], []],
            meta={
                "track": {
                    "index": track,
                    "group": int(extra["group"]),
                    "point_moving": moving,
                    "camera_moving": gathered.camera_moving[k],
                    "reversed": flipped,
                    "uv": [uv1.copy(), uv2],
                    "pose_source": pose_source,
                },
                "referencing": "dot" if dot else "coord",
            },
            variant=None if moving else "static",
        )
    for k in range(len(selections)):
        record = made.get(k)
        if record is not None:
            yield record


def _count(counts: dict[str, int], reason: str, n: int) -> None:
    if n:
        counts[reason] = counts.get(reason, 0) + n

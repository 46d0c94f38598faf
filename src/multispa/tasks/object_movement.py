"""Object movement on TAPVid-3D clips (spec §4.4, §5.5–5.7; rules 8i, 8j).

Four subtasks ask how far (``distance``, mm) or by which vector (``vector``, mm in the first
camera's axes) one scene point moved between two frames; the point is referenced by its
normalised coordinate (``coord``) or by a dot drawn on frame 1 only (``dot``).

Planning (per subtask, split and clip): for each rigid group of the clip (``group_of_track``,
computed at prepare time), its tracks are shuffled and the first ``k`` kept (15 train, 1 val);
each kept track yields distance-binned frame pairs (§5.6, ``pairs_per_bin`` P = 30 train, 1 val,
a run constant: rule 8i); in training a random 5 % of each track's pairs are added reversed. Dot
candidates whose point lies within one marker radius of the border in the first prompt frame are
dropped. The ``quotas`` value of a subtask applies to each source (``tapvid3d/adt``,
``tapvid3d/pstudio``) separately: a uniform draw without replacement (the val pool: 300).

Selection ``extra``: ``{"track": n, "group": g, "reversed": bool}``; ``frames`` = (f1, f2) in
prompt order (a reversed copy has f1 > f2).

Answers for (f1, f2): ``d = X_world[f2] − X_world[f1]`` (float64 from the float32 cache);
``‖d‖ < 0.01 m`` is static and ``d := 0`` (rule 8j, ``"static"`` answer variant). Distance:
``r(1000·‖d‖)`` mm; vector: ``r(1000·R_cam1_from_world·d)`` mm componentwise.

Skip reasons (``<subtask>:<reason>``): plan — ``marker_margin`` (dot point too close to the
border), ``not_drawn`` (pooled candidates beyond the per-source quota); generate —
``not_visible`` (track not visible in a frame of the pair), ``marker_margin``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from multispa.cache.tapvid_cache import TapVidCache, load_tapvid_cache
from multispa.geometry.coords import pixels_to_norm1000
from multispa.tasks.answers import format_answer, format_coord, metres_to_mm, metres_to_mm_vector
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext, rng_for
from multispa.tasks.markers import choose_marker_colour, draw_dots, inside_margin, marker_radius
from multispa.tasks.records import build_record, pixel_points, record_id
from multispa.tasks.sampling import distance_binned_pairs, reversed_copies
from multispa.tasks.templates import SUBTASKS, render_prompt

__all__ = [
    "OBJECT_MOVEMENT_SUBTASKS",
    "STATIC_EPS_M",
    "MovementParams",
    "ObjectMovementFamily",
    "movement_answer",
    "params_for_split",
]

OBJECT_MOVEMENT_SUBTASKS: tuple[str, ...] = (
    "object_movement_distance_coord",
    "object_movement_distance_dot",
    "object_movement_vector_coord",
    "object_movement_vector_dot",
)
#: Displacement below which a point (or the camera) counts as not moving, metres (rule 8j).
STATIC_EPS_M = 0.01
#: ``k`` of the annotated (dotted) image: 0-based prompt position, the first image.
DOT_IMAGE_K = 0
_DECODED_FRAMES = 32  # decoded frames kept per unit while drawing dots


@dataclass(frozen=True)
class MovementParams:
    """Sampling parameters of one split (spec §4.4, §5.6, §5.7).

    Attributes:
        tracks_per_group: k, tracks kept per rigid group.
        pairs_per_bin: P, the run-constant per-bin pair cap of §5.6.
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
    d_world_m = np.asarray(world_2, np.float64) - np.asarray(world_1, np.float64)
    distance_m = float(np.linalg.norm(d_world_m))
    moving = distance_m >= STATIC_EPS_M
    if not moving:
        d_world_m = np.zeros(3)
    d_cam1_m = np.asarray(cam1_from_world, np.float64)[:3, :3] @ d_world_m
    distance_mm = metres_to_mm(float(np.linalg.norm(d_world_m)))
    return distance_mm, metres_to_mm_vector(d_cam1_m), moving, distance_m


def _image_size(cache: TapVidCache) -> tuple[int, int]:
    width, height = cache.meta["image_size"]
    return int(width), int(height)


def _clip_candidates(
    cache: TapVidCache, unit_id: str, split: str, subtask: str, seed: int
) -> list[tuple[int, int, int, int, bool]]:
    """§5.6 for one clip and subtask: ``(f1, f2, track, group, reversed)`` in prompt order.

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


class ObjectMovementFamily:
    """The object-movement family (TAPVid-3D ADT and PStudio)."""

    family: ClassVar[str] = "object_movement"
    subtasks: ClassVar[tuple[str, ...]] = OBJECT_MOVEMENT_SUBTASKS
    dataset: ClassVar[str] = "tapvid3d"

    def plan(
        self,
        split: str,
        units: Sequence[CacheUnit],
        quotas: Mapping[str, int | None],
        seed: int,
        settings: GenerateSettings,
    ) -> tuple[list[Selection], dict[str, int]]:
        """Candidates of every clip (§5.6), then a per-(subtask, source) quota draw (§5.7)."""
        wanted = [s for s in OBJECT_MOVEMENT_SUBTASKS if s in quotas]
        dropped: dict[str, int] = {}
        pools: dict[tuple[str, str], list[Selection]] = {}
        for unit in sorted(units, key=lambda u: u.unit_id):
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
            rng = rng_for(seed, "plan", split, subtask)
            quota = quotas[subtask]
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
        cache = load_tapvid_cache(ctx.unit.path)

        @functools.lru_cache(maxsize=_DECODED_FRAMES)
        def frame_rgb(frame: int) -> np.ndarray:
            with Image.open(cache.image_path(frame)) as image:
                return np.asarray(image.convert("RGB"))

        for selection in selections:
            record = self._record(ctx, cache, selection, frame_rgb)
            if record is not None:
                yield record

    def _record(
        self,
        ctx: UnitContext,
        cache: TapVidCache,
        selection: Selection,
        frame_rgb: Callable[[int], np.ndarray],
    ) -> dict[str, Any] | None:
        """One record, or None after ``ctx.skip`` (track not visible, dot too near the border)."""
        subtask = selection.subtask
        f1, f2 = (int(f) for f in selection.frames)
        track = int(selection.extra["track"])
        if not (cache.visible[f1, track] and cache.visible[f2, track]):
            ctx.skip(f"{subtask}:not_visible")
            return None
        source, clip = ctx.unit.source, ctx.unit.name
        width, height = _image_size(cache)
        flipped = bool(selection.extra.get("reversed", False))
        uv1 = [float(v) for v in cache.uv[f1, track]]
        uv2 = [float(v) for v in cache.uv[f2, track]]
        distance_mm, vector_mm, moving, _ = movement_answer(
            cache.tracks_world[f1, track], cache.tracks_world[f2, track], cache.cam_from_world[f1]
        )
        camera_shift_m = np.asarray(cache.camera_centres[f2]) - np.asarray(cache.camera_centres[f1])
        camera_moving = bool(np.linalg.norm(camera_shift_m) >= STATIC_EPS_M)
        rng = ctx.rng(selection)
        rid = record_id(
            split=ctx.split, subtask=subtask, source=source, scene_or_clip=clip,
            frames=(f1, f2), points=[[uv1], []], track=track, reversed_pair=flipped,
        )
        referencing = "dot" if subtask.endswith("_dot") else "coord"
        if referencing == "dot":
            radius = marker_radius(width, source)
            if not bool(inside_margin(np.array([uv1]), width, height, radius)[0]):
                ctx.skip(f"{subtask}:marker_margin")
                return None
            pixels = frame_rgb(f1)
            colour_name, colour_rgb = choose_marker_colour(pixels, [uv1], radius, rng)
            annotated = draw_dots(Image.fromarray(pixels), [uv1], colour_rgb, radius)
            first = ctx.write_annotated(rid, subtask, DOT_IMAGE_K, annotated)
            fields = {"marker": colour_name}
        else:
            x, y = pixels_to_norm1000(np.array(uv1), width, height).tolist()
            first = ctx.frame_image(f1)
            fields = {"point": format_coord(x, y)}
        answer_type = SUBTASKS[subtask].answer_type
        gt: int | list[int] = distance_mm if answer_type == "scalar" else vector_mm
        prompt = render_prompt(
            subtask, rng=rng, fields={**fields, "answer": format_answer(answer_type, gt)},
            variant=None if moving else "static", num_images=2,
        )
        return build_record(
            record_id=rid, split=ctx.split, subtask=subtask, source=source, scene_or_clip=clip,
            frames=(f1, f2), images=[first, ctx.frame_image(f2)],
            sizes=[(width, height), (width, height)], prompt=prompt, gt=gt,
            points=[[uv1], []],
            meta={
                "track": {
                    "index": track,
                    "group": int(selection.extra["group"]),
                    "point_moving": moving,
                    "camera_moving": camera_moving,
                    "reversed": flipped,
                    "uv": pixel_points([[uv1, uv2]])[0],
                    "identity_extrinsics": bool(cache.meta.get("identity_extrinsics", False)),
                },
                "referencing": referencing,
            },
        )


def _count(counts: dict[str, int], reason: str, n: int) -> None:
    if n:
        counts[reason] = counts.get(reason, 0) + n

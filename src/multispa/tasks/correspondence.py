"""Visual correspondence family (docs/labels.md#correspondence; rule (f)): two ScanNet frames per
record.

Subtasks:

- ``correspondence_mcq_dot``: a dot on a scene point in image 1; four lettered dots A–D in
  image 2, one of them the point's projection; the answer is its letter.
- ``correspondence_coord``: the point's normalised coordinate in image 1 is given; the answer is
  the normalised coordinate ``[x, y]`` of its projection in image 2.

Planning: candidate pairs are the rows of every scene's pair table (stored pairs have overlap > 0,
i.e. a non-empty co-visible set) with overlap in ``[6, 35]`` %, pooled over the split in unit order
(rows sorted by ``frame1, frame2``), then drawn per subtask by
:func:`multispa.tasks.sampling.stratified_pair_sample` (``None`` quota: every candidate). Each
pair's order is swapped with probability ½ by the planner's generator; ``Selection.frames`` are in
prompt order and ``extra = {"overlap": <percent, 2 decimals>, "swapped": bool}``.

Generation: one vertex uniformly from the co-visible set ``V_1 ∩ V_2`` that is off depth edges in
both frames (rule (p); refusals counted as ``<subtask>:depth_edge``) and whose image-1 projection
(and, for the MCQ, its image-2 projection) lies inside the marker margin. It is drawn by rejection
(:class:`multispa.tasks.depth.UniformDraws`) from the smaller of ``V_1`` and ``V_2``, testing
membership in the other set bit by bit, so the co-visible set is never built (except for hard
distractors, or when rejection keeps failing). MCQ distractors follow rule (f): *easy* (default)
uniform pixels inside the margin, ``>= 0.05·W`` from the answer and from each other (1,000
tries); *hard* (``settings.mcq_difficulty == "hard"``, training split only: ``val`` is the
benchmark pool and always easy, rule (q)) image-2 projections of co-visible vertices
``0.05·W``–``0.15·W`` from the answer and ``>= 0.05·W`` apart, topped up with vertices visible
only in image 2.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pyarrow.parquet as pq

from multispa.errors import CacheError, ConfigError
from multispa.geometry.coords import pixels_to_norm1000
from multispa.tasks.answers import format_answer, format_coord
from multispa.tasks.base import CacheUnit, Selection, UnitContext
from multispa.tasks.depth import (
    MIN_SEPARATION_FRACTION,
    SceneFrames,
    UniformDraws,
    generate_in_frame_order,
)
from multispa.tasks.markers import inside_margin
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import build_record, record_id
from multispa.tasks.sampling import OVERLAP_EDGES, stratified_pair_sample
from multispa.tasks.templates import render_prompt

__all__ = [
    "EASY_TRIES",
    "HARD_MAX_FRACTION",
    "CorrespondenceFamily",
    "PairCandidates",
    "easy_distractors",
    "hard_distractors",
    "mcq_difficulty",
    "pair_candidates",
]

#: Rule (f): random pixels tried before an easy MCQ item is skipped.
EASY_TRIES = 1000
#: Easy tries drawn in a first batch (the rest only if these do not give three distractors).
_EASY_FIRST_BATCH = 32
#: Rule (f) (hard): distractors lie at most this fraction of W from the answer.
HARD_MAX_FRACTION = 0.15
NUM_DISTRACTORS = 3
LETTERS = "ABCD"
_OVERLAP_MIN, _OVERLAP_MAX = float(OVERLAP_EDGES[0]), float(OVERLAP_EDGES[-1])


@dataclass(frozen=True)
class PairCandidates:
    """Eligible frame pairs pooled over a split.

    Attributes:
        unit: ``(K,)`` int64 index into the split's unit list.
        frame1, frame2: ``(K,)`` int64 original frame indices, ``frame1 < frame2``.
        overlap_pct: ``(K,)`` float64 overlap, percent, in ``[6, 35]``.
    """

    unit: np.ndarray
    frame1: np.ndarray
    frame2: np.ndarray
    overlap_pct: np.ndarray


def pair_candidates(units: Sequence[CacheUnit]) -> tuple[PairCandidates, int]:
    """Pool the pairs with overlap in ``[6, 35]`` of every unit, in canonical order.

    Returns:
        the candidates and the number of stored pairs left out (overlap outside ``[6, 35]``).
    """
    parts: list[tuple[np.ndarray, ...]] = []
    outside = 0
    for index, unit in enumerate(units):
        path = unit.path / "pairs.parquet"
        try:
            table = pq.read_table(path, columns=["frame1", "frame2", "overlap_pct"])
        except (OSError, KeyError, ValueError) as error:
            raise CacheError(f"{path}: cannot read the pair table ({error})") from None
        frame1 = table["frame1"].to_numpy().astype(np.int64)
        frame2 = table["frame2"].to_numpy().astype(np.int64)
        overlap = table["overlap_pct"].to_numpy().astype(np.float64)
        keep = (overlap >= _OVERLAP_MIN) & (overlap <= _OVERLAP_MAX)
        outside += int(keep.size - np.count_nonzero(keep))
        order = np.lexsort((frame2[keep], frame1[keep]))
        parts.append(
            (
                np.full(order.size, index, dtype=np.int64),
                frame1[keep][order],
                frame2[keep][order],
                overlap[keep][order],
            )
        )
    if not parts:
        empty_i, empty_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return PairCandidates(empty_i, empty_i, empty_i, empty_f), 0
    columns = [np.concatenate(column) for column in zip(*parts, strict=True)]
    return PairCandidates(*columns), outside


def _spread(pool_uv: np.ndarray, chosen: list[np.ndarray], min_sep_px: float, count: int) -> None:
    """Greedily append pool points (in pool order) to ``chosen`` until it holds ``count``.

    A pool point is taken iff it lies ``>= min_sep_px`` from every point already in ``chosen``.

    Args:
        pool_uv: ``(M, 2)`` candidate pixels, in priority order.
        chosen: ``(2,)`` pixel points, extended in place.
        min_sep_px: minimum distance between any two chosen points, pixels.
        count: target length of ``chosen``.
    """
    pool = np.asarray(pool_uv, dtype=np.float64).reshape(-1, 2)
    for point in chosen:
        pool = pool[np.hypot(*(pool - point).T) >= min_sep_px]
    while len(chosen) < count and pool.shape[0]:
        point = pool[0]
        chosen.append(point)
        pool = pool[1:]
        pool = pool[np.hypot(*(pool - point).T) >= min_sep_px]


def easy_distractors(
    answer_px: np.ndarray, width: int, height: int, radius: float, rng: np.random.Generator
) -> np.ndarray | None:
    """Three uniform pixels inside the margin, ``>= 0.05·W`` from the answer and each other.

    Up to :data:`EASY_TRIES` candidates are drawn, a first batch of 32 then the rest if needed,
    and accepted greedily in draw order (the same result as trying them one by one).

    Args:
        answer_px: ``(2,)`` the correct point, pixels.
        width, height: image size, pixels.
        radius: marker radius, pixels (the margin).
        rng: the record's generator.

    Returns:
        ``(3, 2)`` float64 pixels, or None when the tries run out.
    """
    chosen: list[np.ndarray] = [np.asarray(answer_px, dtype=np.float64)]
    first = min(_EASY_FIRST_BATCH, EASY_TRIES)
    for count in (first, EASY_TRIES - first):
        if len(chosen) == NUM_DISTRACTORS + 1 or count == 0:
            break
        tries = np.column_stack(
            [
                rng.uniform(radius, width - 1 - radius, count),
                rng.uniform(radius, height - 1 - radius, count),
            ]
        )
        tries = tries[inside_margin(tries, width, height, radius)]
        _spread(tries, chosen, MIN_SEPARATION_FRACTION * width, NUM_DISTRACTORS + 1)
    return np.array(chosen[1:]) if len(chosen) == NUM_DISTRACTORS + 1 else None


def hard_distractors(
    answer_px: np.ndarray,
    pools_px: Sequence[np.ndarray],
    width: int,
    height: int,
    radius: float,
    rng: np.random.Generator,
) -> np.ndarray | None:
    """Three surface points ``0.05·W``–``0.15·W`` from the answer, ``>= 0.05·W`` apart.

    Each pool (co-visible vertices first, then vertices visible only in image 2) is filtered to
    the distance band and the margin, shuffled with ``rng`` and picked from greedily.

    Args:
        answer_px: ``(2,)`` the correct point in image 2, pixels.
        pools_px: ``(M_k, 2)`` image-2 projections of each candidate pool, in priority order.
        width, height: image size, pixels.
        radius: marker radius, pixels.
        rng: the record's generator.

    Returns:
        ``(3, 2)`` float64 pixels, or None when the pools hold too few.
    """
    answer = np.asarray(answer_px, dtype=np.float64)
    near, far = MIN_SEPARATION_FRACTION * width, HARD_MAX_FRACTION * width
    chosen: list[np.ndarray] = [answer]
    for pool in pools_px:
        if len(chosen) == NUM_DISTRACTORS + 1:
            break
        pool = np.asarray(pool, dtype=np.float64).reshape(-1, 2)
        distance = np.hypot(*(pool - answer).T)
        ok = (distance >= near) & (distance <= far) & inside_margin(pool, width, height, radius)
        band = pool[ok]
        _spread(band[rng.permutation(band.shape[0])], chosen, near, NUM_DISTRACTORS + 1)
    return np.array(chosen[1:]) if len(chosen) == NUM_DISTRACTORS + 1 else None


class CorrespondenceFamily(PlannedFamily):
    """Point correspondence between two ScanNet frames."""

    family: ClassVar[str] = "correspondence"
    subtasks: ClassVar[tuple[str, ...]] = ("correspondence_mcq_dot", "correspondence_coord")
    dataset: ClassVar[str] = "scannet"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """Overlap-stratified pairs per subtask, each swapped with probability ½."""
        units = request.units
        candidates, outside = pair_candidates(units)
        selections: list[Selection] = []
        dropped: dict[str, int] = {}
        for subtask in request.subtasks:
            rng = request.rng(subtask)
            n = request.quotas[subtask]
            if n is None:
                chosen = rng.permutation(candidates.overlap_pct.size)
            else:
                chosen = stratified_pair_sample(candidates.overlap_pct, int(n), rng)
            swapped = rng.random(chosen.size) < 0.5
            if outside:
                dropped[f"{subtask}:overlap_outside_6_35"] = outside
            for k, swap in zip(chosen.tolist(), swapped.tolist(), strict=True):
                first, second = int(candidates.frame1[k]), int(candidates.frame2[k])
                selections.append(
                    Selection(
                        subtask,
                        units[int(candidates.unit[k])].unit_id,
                        (second, first) if swap else (first, second),
                        {"overlap": round(float(candidates.overlap_pct[k]), 2), "swapped": swap},
                    )
                )
        return selections, dropped

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one unit's selections, in their order (skips counted in ``ctx``)."""
        if ctx.settings.mcq_difficulty not in ("easy", "hard"):
            raise ConfigError(
                f"mcq_difficulty must be 'easy' or 'hard', got {ctx.settings.mcq_difficulty!r}"
            )
        if not selections:
            return iter(())
        scene = SceneFrames(ctx.unit)

        def make(selection: Selection) -> dict[str, Any] | None:
            if selection.subtask not in self.subtasks:
                raise ValueError(f"CorrespondenceFamily: unknown subtask {selection.subtask!r}")
            return _correspondence(ctx, scene, selection)

        return generate_in_frame_order(selections, make, scene)


def _correspondence(
    ctx: UnitContext, scene: SceneFrames, selection: Selection
) -> dict[str, Any] | None:
    """One record of either subtask, or None (skip counted)."""
    subtask = selection.subtask
    mcq = subtask == "correspondence_mcq_dot"
    rng = ctx.rng(selection)
    frame1, frame2 = selection.frames
    visible1, visible2 = scene.visible(frame1), scene.visible(frame2)
    base, other = (visible1, visible2) if visible1.count <= visible2.count else (visible2, visible1)

    off_edge1, off_edge2 = scene.off_edge(frame1), scene.off_edge(frame2)

    def accept(vertex: np.ndarray) -> np.ndarray:
        ok = other.contains(vertex)
        rows = np.flatnonzero(ok)
        inside = scene.inside(frame1, vertex[rows])
        if mcq:
            inside &= scene.inside(frame2, vertex[rows])
        ok[rows] = inside
        return ok

    def edge(vertex: np.ndarray) -> np.ndarray:
        return off_edge1.contains(vertex) & off_edge2.contains(vertex)

    draws = UniformDraws(rng, base, accept, edge=edge, batch=64)
    drawn = draws.take(1)
    ctx.skip(f"{subtask}:depth_edge", draws.edge_rejections)
    if drawn.size == 0:
        empty = visible1.intersection(visible2).count == 0
        ctx.skip(f"{subtask}:no_covisible_point" if empty else f"{subtask}:no_eligible_point")
        return None
    vertex = int(drawn[0])
    query_px = scene.project(frame1, drawn)[0][0]
    answer_px = scene.project(frame2, drawn)[0][0]
    meta: dict[str, Any] = {"vertex": [vertex], "overlap": selection.extra.get("overlap")}
    width, height = scene.size

    if not mcq:
        points = [[query_px.tolist()], [answer_px.tolist()]]
        gt = [int(v) for v in pixels_to_norm1000(answer_px, width, height).tolist()]
        query = pixels_to_norm1000(query_px, width, height).tolist()
        rid = _id(ctx, selection, points)
        images = [ctx.frame_image(frame1), ctx.frame_image(frame2)]
        fields = {"point": format_coord(*query), "answer": format_answer("coord", gt)}
        return _record(ctx, scene, selection, rid, images, fields, gt, points, meta, rng)

    difficulty = mcq_difficulty(ctx)
    if difficulty == "hard":
        covisible = visible1.intersection(visible2).vertices()
        only2 = visible2.difference(visible1).vertices()
        pools = [
            scene.project(frame2, covisible[covisible != vertex])[0],
            scene.project(frame2, only2)[0],
        ]
        distractors = hard_distractors(answer_px, pools, width, height, scene.radius, rng)
    else:
        distractors = easy_distractors(answer_px, width, height, scene.radius, rng)
    if distractors is None:
        ctx.skip(f"{subtask}:no_distractors_{difficulty}")
        return None
    options = np.vstack([answer_px[None, :], distractors])
    order = rng.permutation(options.shape[0])
    options = options[order]
    gt = LETTERS[int(np.flatnonzero(order == 0)[0])]
    points = [[query_px.tolist()], options.tolist()]
    rid = _id(ctx, selection, points)
    with scene.annotated(frame1, query_px[None, :], rng) as (colour, drawn):
        images = [ctx.write_annotated(rid, subtask, 0, drawn)]
    with scene.annotated(frame2, options, rng, labels=list(LETTERS)) as (_, drawn):
        images.append(ctx.write_annotated(rid, subtask, 1, drawn))
    meta["difficulty"] = difficulty
    fields = {"marker": colour, "answer": format_answer("choice", gt)}
    return _record(ctx, scene, selection, rid, images, fields, gt, points, meta, rng)


def mcq_difficulty(ctx: UnitContext) -> str:
    """The distractor policy of a unit: ``easy`` in ``val`` (the benchmark pool, rule (q)),
    else ``settings.mcq_difficulty``."""
    return "easy" if ctx.split == "val" else ctx.settings.mcq_difficulty


def _id(ctx: UnitContext, selection: Selection, points: list) -> str:
    return record_id(
        split=ctx.split,
        subtask=selection.subtask,
        source=ctx.unit.source,
        scene_or_clip=ctx.unit.name,
        frames=selection.frames,
        points=points,
    )


def _record(
    ctx: UnitContext,
    scene: SceneFrames,
    selection: Selection,
    rid: str,
    images: list[str],
    fields: dict[str, str],
    gt: Any,
    points: list,
    meta: dict[str, Any],
    rng: np.random.Generator,
) -> dict[str, Any]:
    prompt = render_prompt(selection.subtask, rng=rng, fields=fields, num_images=2)
    return build_record(
        record_id=rid,
        split=ctx.split,
        subtask=selection.subtask,
        source=ctx.unit.source,
        scene_or_clip=ctx.unit.name,
        frames=selection.frames,
        images=images,
        sizes=[scene.size, scene.size],
        prompt=prompt,
        gt=gt,
        points=points,
        meta=meta,
    )

"""N-view scene tasks: nine questions about a whole scene seen through a view set of N frames.

An extension beyond the paper's 26 subtasks, on ScanNet caches. Each record shows one view set
(``--views N`` frames, default 8, in capture order, :mod:`multispa.tasks.nview_views`) as
``Image-1 … Image-N`` and asks about objects seen in it (:mod:`multispa.tasks.nview_scene`) or
about the cameras, with the eligibility rules and answers of
:mod:`multispa.tasks.nview_questions`.

Planning, per split: every scene's view sets are drawn with the scene's own generator; in each
view set every eligible question of each wanted subtask is enumerated and ordered at random by
the subtask's planning generator (``rng_for(seed, "plan", split, subtask)``; relative distance
alternates "closest" and "farthest" by fair coin flips while both remain). Then:

- **train** keeps the first :data:`TRAIN_CAPS` questions of each view set (the rest count as
  ``over_cap``); an integer quota (``--quotas``) then keeps a uniform random subset of that size
  (``over_quota``); the default quota keeps them all;
- **val** (the benchmark pool) takes rounds over the view sets of all val scenes: each round
  visits, in a fresh random order, the view sets that still have questions and takes the next
  one of each, until the quota (300) is met; so view sets contribute evenly. A quota of None is
  one round.

Selections: ``frames`` = the view set's original frame indices (capture order); ``extra`` =
``{"label": L}`` (count), ``{"objects": [A, B], "distances_m": [d]}`` (absolute distance, in order
of mention), ``{"objects": [X], "options": [four ids, letter order], "ask": "closest"|"farthest",
"distances_m": [four distances]}`` (relative distance; the closest-point distances are computed
once per scene while planning and carried to the generator), ``{"objects": [A, B, C]}`` (relative
direction), ``{"objects": [four ids in appearance order], "options": [four id lists, letter
order]}`` (appearance order), ``{}`` (path length), ``{"objects": [X], "distances_m": [N camera
distances]}`` (nearest view). Object ids are the scene's ``objectId``.

Generation reloads the scene once per unit, recomputes every answer (the distances excepted,
which the selection carries: no mesh is read) and checks it again
(``<subtask>:<reason>`` skips), and writes the raw frames, ``meta.views`` (= ``meta.frames``) and
the subtask's ``meta`` fields. The record id's sample key holds the question's object ids (in the
``object_id`` slot, as a list) and, for relative distance, the ask.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from multispa.cache.scannet_cache import load_scannet_cache
from multispa.tasks.answers import format_value
from multispa.tasks.base import Selection, UnitContext, rng_for
from multispa.tasks.nview_questions import Answer, CandidateSet, candidates
from multispa.tasks.nview_questions import answer_for as question_answer
from multispa.tasks.nview_scene import NViewScene, ViewSetState
from multispa.tasks.nview_views import select_view_sets
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import FrameImages, RecordMaker
from multispa.tasks.templates import NVIEW_SUBTASKS, SUBTASKS

__all__ = ["TRAIN_CAPS", "NViewFamily", "view_set_rng"]

#: Training questions kept per view set and subtask.
TRAIN_CAPS: Mapping[str, int] = {
    "nview_object_count": 3,
    "nview_object_abs_distance": 3,
    "nview_object_rel_distance": 2,
    "nview_rel_direction_easy": 2,
    "nview_rel_direction_medium": 2,
    "nview_rel_direction_hard": 2,
    "nview_appearance_order": 2,
    "nview_camera_path_length": 1,
    "nview_nearest_view": 2,
}


_DISTANCE_SUBTASKS = frozenset({"nview_object_abs_distance", "nview_object_rel_distance"})


def view_set_rng(seed: int, split: str, unit_id: str) -> np.random.Generator:
    """The generator of a scene's view sets (independent of the subtasks asked)."""
    return rng_for(seed, "nview", "views", split, unit_id)


def _ordered(found: CandidateSet, limit: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``limit`` ``(group, row)`` candidates in random order; with two groups (closest,
    farthest) each pick flips a fair coin between those that still have candidates."""
    queues = [rng.permutation(group.shape[0]).tolist() for group in found.groups]
    if len(queues) == 1:
        return [(0, row) for row in queues[0][:limit]]
    picks: list[tuple[int, int]] = []
    heads = [0] * len(queues)
    while len(picks) < limit:
        open_groups = [g for g, queue in enumerate(queues) if heads[g] < len(queue)]
        if not open_groups:
            break
        g = open_groups[int(rng.integers(len(open_groups)))] if len(open_groups) > 1 else \
            open_groups[0]
        picks.append((g, queues[g][heads[g]]))
        heads[g] += 1
    return picks


def _rounds(
    pools: Sequence[list[Selection]], quota: int | None, rng: np.random.Generator
) -> list[Selection]:
    """Benchmark mode: rounds over the view sets, one question of each per round."""
    used = [0] * len(pools)
    limit = len(pools) if quota is None else int(quota)
    chosen: list[Selection] = []
    active = [k for k, pool in enumerate(pools) if pool]
    while active and len(chosen) < limit:
        for index in rng.permutation(len(active)).tolist():
            if len(chosen) >= limit:
                break
            k = active[index]
            chosen.append(pools[k][used[k]])
            used[k] += 1
        if quota is None:
            break
        active = [k for k in active if used[k] < len(pools[k])]
    return chosen


class NViewFamily(PlannedFamily):
    """The nine N-view subtasks (ScanNet, one view set of raw frames per record)."""

    family: ClassVar[str] = "nview"
    subtasks: ClassVar[tuple[str, ...]] = NVIEW_SUBTASKS
    dataset: ClassVar[str] = "scannet"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """View sets, eligible questions and the split's selection (module docstring)."""
        wanted, quotas, benchmark = request.subtasks, request.quotas, request.benchmark
        rngs = {subtask: request.rng(subtask) for subtask in wanted}
        limits = {
            subtask: (max(1, quotas[subtask] or 0) if benchmark else TRAIN_CAPS[subtask])
            for subtask in wanted
        }
        skipped: Counter[str] = Counter()
        pools: dict[str, list[list[Selection]]] = {subtask: [] for subtask in wanted}
        for unit in request.units:
            cache = load_scannet_cache(unit.path)  # one scene's memory maps open at a time
            view_sets, dropped = select_view_sets(
                cache.visibility, cache.visible_counts, cache.frame_index,
                int(cache.vertices.shape[0]), request.settings.views,
                view_set_rng(request.seed, request.split, unit.unit_id),
                request.settings.view_sets_per_scene,
            )
            skipped.update(dropped)
            if not view_sets:
                continue
            scene = NViewScene.load(unit.path, cache)
            if _DISTANCE_SUBTASKS & set(wanted):
                scene.precompute_distances()  # once per scene, kept for all its view sets
            for view_set in view_sets:
                state = scene.state(view_set.frames)
                for subtask in wanted:
                    rng = rngs[subtask]
                    found = candidates(subtask, state, rng)
                    skipped.update(found.skipped)
                    picks = _ordered(found, limits[subtask], rng)
                    if not benchmark and found.size > len(picks):
                        skipped[f"{subtask}:over_cap"] += found.size - len(picks)
                    pools[subtask].append([
                        Selection(subtask, unit.unit_id, view_set.frames,
                                  found.extra(group, row, rng))
                        for group, row in picks
                    ])
            del cache, scene
        selections: list[Selection] = []
        for subtask in wanted:
            rng, quota = rngs[subtask], quotas[subtask]
            if benchmark:
                selections += _rounds(pools[subtask], quota, rng)
                continue
            chosen = [selection for pool in pools[subtask] for selection in pool]
            if quota is not None and len(chosen) > quota:
                skipped[f"{subtask}:over_quota"] += len(chosen) - quota
                keep = np.sort(rng.choice(len(chosen), size=int(quota), replace=False))
                chosen = [chosen[k] for k in keep.tolist()]
            selections += chosen
        return selections, dict(sorted(skipped.items()))

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one scene's selections, in their order (raw frames, no markers)."""
        if not selections:
            return
        scene = NViewScene.load(ctx.unit.path)
        frame_image = FrameImages(ctx)
        makers: dict[str, RecordMaker] = {}
        states: dict[tuple[int, ...], ViewSetState] = {}
        for selection in selections:
            subtask = selection.subtask
            if SUBTASKS.get(subtask) is None or SUBTASKS[subtask].family != self.family:
                raise ValueError(f"not an N-view subtask: {subtask!r}")
            frames = tuple(int(f) for f in selection.frames)
            state = states.get(frames)
            if state is None:
                state = states[frames] = scene.state(frames)
            answer = question_answer(subtask, state, selection.extra)
            if isinstance(answer, str):
                ctx.skip(f"{subtask}:{answer}_at_generate")
                continue
            make = makers.get(subtask)
            if make is None:
                make = makers[subtask] = RecordMaker(
                    seed=ctx.seed, split=ctx.split, subtask=subtask, source=ctx.unit.source,
                    scene_or_clip=ctx.unit.name,
                )
            yield _record(make, frames, answer, frame_image, scene)


def _record(
    make: RecordMaker, frames: tuple[int, ...], answer: Answer, frame_image: FrameImages,
    scene: NViewScene,
) -> dict[str, Any]:
    count = len(frames)
    no_points: list[list[list[float]]] = [[] for _ in range(count)]
    record_id = make.ids(frames, no_points, object_id=answer.key_ids, ask=answer.ask)
    text = format_value(make.spec.answer_type, answer.gt)
    return make(
        record_id,
        frames=list(frames),
        images=[frame_image(frame) for frame in frames],
        width_list=[scene.width] * count,
        height_list=[scene.height] * count,
        fields={"answer": f"`{text}`", **answer.fields},
        gt=answer.gt,
        points=no_points,
        meta={"views": list(frames), **answer.meta},
        variant=answer.variant,
    )

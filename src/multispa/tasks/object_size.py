"""Object size: height, width and length of a named object from two images
(docs/labels.md#object-size).

Eligibility (rule (g)), per object of a scene's ``objects.json``:

- its label (lower-cased, stripped) is unique among the scene's annotated objects that have at
  least one vertex (``label_count == 1``, and no other such row of ``objects.json`` has the same
  normalised label; rule (n): an object left without vertex does not count);
- with a label map (``scannetv2-labels.combined.tsv``, ``nyu40_class`` set), no other object with
  vertices shares its NYU40 class (rule (n): "the chair" is not asked beside an "office chair");
- the label is not structural (``wall``, ``floor``, ``ceiling``, ``window``, ``object``);
- the largest dimension of its gravity-aligned oriented box is at least 0.1 m, and so is the asked
  dimension.

Visibility and coverage (docs/labels.md#coverage): the object is visible in a kept frame iff
``|V_i ∩ O_o| ≥ max(1, floor(0.05·|O_o|))``. Among those frames, the minimal covering **pairs**
(neither frame covers 90 % of the box extent ``L`` along the dimension's axis alone, the two
together do) come from :func:`multispa.geometry.coverage.minimal_covering_sets` on the cached
per-frame extents (axis 0 = z for height, 1 = length axis, 2 = width axis). Only two-image sets
are emitted (the paper's K = 2); single covering frames are not used.

Selection, per dimension subtask with its own ``rng_for(seed, "plan", split, subtask)``:

- **train**: every minimal pair of every eligible object, at most ``settings.object_pairs_cap``
  per (object, dimension), drawn uniformly without replacement when there are more; an integer
  quota then keeps a uniform random subset of that size;
- **val** (benchmark mode): rounds over the eligible val objects of all val scenes; each
  round visits the objects that still have unused pairs in a fresh random order and gives each one
  random unused minimal pair, until the quota (300) is reached or the pairs run out; so objects are
  drawn uniformly, without replacement while possible. A quota of ``None`` is one round.

Each pair is shown in random order (``frames`` are in prompt order). Selection ``extra``:
``{"object_id": int}`` (ScanNet ``objectId``). Skip reasons (per subtask, counted per object
unless stated): ``empty_object``, ``structural``, ``repeated_label``, ``shared_nyu40_class``,
``unusable_label``,
``object_too_small``, ``dimension_too_small``, ``no_covering_pair``; ``pairs_over_cap`` and
``over_quota`` count pairs. Generation skips (per record) ``missing_object`` (no row with a box
for the selected id) and ``unusable_label``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from multispa.cache.files import read_json
from multispa.cache.scannet_cache import ScanNetCache, load_scannet_cache
from multispa.errors import CacheError
from multispa.geometry.coords import round_half_away
from multispa.geometry.coverage import minimal_covering_sets
from multispa.geometry.overlap import object_visibility_threshold
from multispa.tasks.answers import format_scalar
from multispa.tasks.base import CacheUnit, Selection, UnitContext
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import FrameImages, RecordMaker

__all__ = [
    "COVER_FRACTION",
    "DIMENSIONS",
    "MIN_SIZE_M",
    "STRUCTURAL_LABELS",
    "ObjectSizeFamily",
    "eligibility_problem",
    "excluded_problem",
    "label_key",
    "minimal_pairs",
    "naming_problem",
    "scene_label_counts",
    "visible_positions",
]

#: Subtask → (box key in ``objects.json``, axis index in ``object_extent_lo/hi``).
DIMENSIONS: Mapping[str, tuple[str, int]] = {
    "object_size_height": ("height_m", 0),
    "object_size_width": ("width_m", 2),
    "object_size_length": ("length_m", 1),
}
STRUCTURAL_LABELS = frozenset({"wall", "floor", "ceiling", "window", "object"})
MIN_SIZE_M = 0.1  # rule (g): largest dimension and asked dimension
COVER_FRACTION = 0.9  # a set covers when it spans 90 % of the box extent
_BOX_KEYS = ("height_m", "length_m", "width_m")  # meta.dims_mm order


def label_key(obj: Mapping[str, Any]) -> str:
    """The label as compared by rule (g): stripped and lower-cased."""
    return str(obj["label"]).strip().lower()


_label_key = label_key


def scene_label_counts(objects: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """How many of a scene's ``objects.json`` rows with at least one vertex carry each label
    (:func:`label_key`; rule (n)): the ``same_label`` counts that :func:`naming_problem` and
    :func:`eligibility_problem` take."""
    return Counter(label_key(obj) for obj in objects if int(obj.get("num_vertices", 0)) > 0)


def scene_class_counts(objects: Sequence[Mapping[str, Any]]) -> Counter[str]:
    """How many of a scene's rows with at least one vertex share each ``nyu40_class`` (rule (n);
    empty without a label map)."""
    return Counter(
        obj["nyu40_class"] for obj in objects
        if obj.get("nyu40_class") and int(obj.get("num_vertices", 0)) > 0
    )


def same_class_count(obj: Mapping[str, Any], classes: Counter[str]) -> int:
    """The ``same_class`` count of ``obj`` under :func:`scene_class_counts` (1 without a class)."""
    return classes[obj["nyu40_class"]] if obj.get("nyu40_class") else 1


def excluded_problem(obj: Mapping[str, Any]) -> str | None:
    """Why ``obj`` (an ``objects.json`` row) is not an object for the questions at all (rule (g)),
    or None: ``empty_object`` (no vertex or box), ``structural`` (wall, floor, ceiling, window,
    object) or ``object_too_small`` (largest box dimension under 0.1 m)."""
    box = obj.get("box")
    if box is None or int(obj.get("num_vertices", 0)) == 0:
        return "empty_object"
    if label_key(obj) in STRUCTURAL_LABELS:
        return "structural"
    if max(float(box[key]) for key in _BOX_KEYS) < MIN_SIZE_M:
        return "object_too_small"
    return None


def naming_problem(
    obj: Mapping[str, Any], same_label: int = 1, same_class: int = 1
) -> str | None:
    """Why ``obj`` cannot be referred to by its label alone (rules (g), (n)), or None.

    The label must be unique among the scene's annotated objects (and, with a label map, its
    NYU40 class too), usable in a prompt, and the object not excluded
    (:func:`excluded_problem`). Object size and the N-view family ("nameable" objects) share
    this rule.

    Args:
        obj: the object's row (``label``, ``label_count``, ``num_vertices``, ``box``).
        same_label: how many objects of the scene with vertices carry its label (lower-cased,
            stripped), as counted by :func:`scene_label_counts`; the label is repeated if this
            or ``label_count`` exceeds 1.
        same_class: how many objects of the scene with vertices share its ``nyu40_class``
            (:func:`same_class_count`; 1 when it has none, i.e. without a label map).

    Returns:
        One of ``empty_object``, ``structural``, ``repeated_label``, ``shared_nyu40_class``,
        ``unusable_label``, ``object_too_small`` (checked in that order), or None.
    """
    problem = excluded_problem(obj)
    if problem in ("empty_object", "structural"):
        return problem
    label = str(obj["label"])
    if max(int(obj["label_count"]), int(same_label)) > 1:
        return "repeated_label"
    if int(same_class) > 1:
        return "shared_nyu40_class"
    if not label.strip() or any(bad in label for bad in ("`", "\n", "\r", "<image>")):
        return "unusable_label"
    return problem


def eligibility_problem(
    obj: Mapping[str, Any], subtask: str, same_label: int = 1, same_class: int = 1
) -> str | None:
    """Why object ``obj`` (an ``objects.json`` row) may not be asked ``subtask``, or None.

    Args:
        obj: the object's row (``label``, ``label_count``, ``num_vertices``, ``box``).
        subtask: an object size subtask.
        same_label: how many objects of the scene with vertices carry its label (lower-cased,
            stripped), as counted by the caller; the label is repeated if this or
            ``label_count`` exceeds 1.
        same_class: how many objects of the scene with vertices share its ``nyu40_class``
            (1 when it has none, i.e. without a label map).

    Returns:
        One of ``empty_object``, ``structural``, ``repeated_label``, ``shared_nyu40_class``,
        ``unusable_label``, ``object_too_small`` (:func:`naming_problem`),
        ``dimension_too_small`` (checked in that order), or None.
    """
    problem = naming_problem(obj, same_label, same_class)
    if problem is not None:
        return problem
    if float(obj["box"][DIMENSIONS[subtask][0]]) < MIN_SIZE_M:
        return "dimension_too_small"
    return None


def visible_positions(cache: ScanNetCache, row: int) -> np.ndarray:
    """Kept-frame positions ``(m,)`` int64 where object ``row`` is visible
    (docs/labels.md#object-visibility)."""
    size = np.array([int(cache.objects[row]["num_vertices"])], dtype=np.int64)
    threshold = int(object_visibility_threshold(size)[0])
    counts = np.asarray(cache.object_visible_counts[row])
    return np.flatnonzero(counts >= threshold).astype(np.int64)


def minimal_pairs(cache: ScanNetCache, row: int, subtask: str) -> np.ndarray:
    """Minimal covering pairs of object ``row`` for ``subtask``'s dimension.

    Returns:
        ``(k, 2)`` int64 original frame indices, each row in ascending position order, rows in
        lexicographic order of positions.
    """
    key, axis = DIMENSIONS[subtask]
    positions = visible_positions(cache, row)
    lo = np.asarray(cache.object_extent_lo[row, positions, axis], dtype=np.float64)
    hi = np.asarray(cache.object_extent_hi[row, positions, axis], dtype=np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise CacheError(
            f"{cache.path}: object_extent_lo/hi hold NaN for object row {row} in a frame where "
            f"object_visible_counts says it is visible"
        )
    length = float(cache.objects[row]["box"][key])
    _, pairs = minimal_covering_sets(lo, hi, length, COVER_FRACTION)
    frame_index = np.asarray(cache.frame_index, dtype=np.int64)
    return frame_index[positions[pairs]].reshape(-1, 2)


@dataclass(frozen=True)
class _Candidate:
    """An eligible object with its minimal covering pairs for one dimension.

    Attributes:
        unit_id: the scene's cache unit.
        object_id: ScanNet ``objectId``.
        pairs: ``(k, 2)`` int64 original frame indices (k ≥ 1).
    """

    unit_id: str
    object_id: int
    pairs: np.ndarray


def _unit_candidates(
    unit: CacheUnit, cache: ScanNetCache, subtask: str, skipped: Counter[str]
) -> list[_Candidate]:
    """Eligible objects of one scene with at least one minimal pair, in row order."""
    found: list[_Candidate] = []
    counts = scene_label_counts(cache.objects)
    classes = scene_class_counts(cache.objects)
    for row, obj in enumerate(cache.objects):
        problem = eligibility_problem(
            obj, subtask, counts[_label_key(obj)], same_class_count(obj, classes)
        )
        if problem is None:
            pairs = minimal_pairs(cache, row, subtask)
            problem = None if pairs.shape[0] else "no_covering_pair"
        if problem is not None:
            skipped[f"{subtask}:{problem}"] += 1
            continue
        found.append(_Candidate(unit.unit_id, int(obj["object_id"]), pairs))
    return found


def _selection(
    subtask: str, candidate: _Candidate, pair: np.ndarray, swap: bool
) -> Selection:
    first, second = (int(pair[1]), int(pair[0])) if swap else (int(pair[0]), int(pair[1]))
    extra = {"object_id": candidate.object_id}
    return Selection(subtask, candidate.unit_id, (first, second), extra)


def _reduce(
    subtask: str,
    candidate: _Candidate,
    keep: int,
    rng: np.random.Generator,
    skipped: Counter[str] | None,
) -> _Candidate:
    """At most ``keep`` of the candidate's pairs, drawn uniformly without replacement.

    With ``skipped`` (training), the kept pairs stay in enumeration order and the excess is
    counted as ``pairs_over_cap``; without it (benchmark), all pairs are returned in random order
    (the order in which they will be drawn). Reducing while collecting bounds the plan's memory.
    """
    count = candidate.pairs.shape[0]
    if skipped is None:
        order = rng.permutation(count)[:keep]
    elif count > keep:
        skipped[f"{subtask}:pairs_over_cap"] += count - keep
        order = np.sort(rng.choice(count, size=keep, replace=False))
    else:
        return candidate
    return _Candidate(candidate.unit_id, candidate.object_id, candidate.pairs[order])


def _plan_train(
    subtask: str,
    candidates: Sequence[_Candidate],
    quota: int | None,
    rng: np.random.Generator,
    skipped: Counter[str],
) -> list[Selection]:
    """Every (capped) pair with a random presentation order; an int quota keeps a subset."""
    chosen: list[Selection] = []
    for candidate in candidates:
        swaps = rng.random(candidate.pairs.shape[0]) < 0.5
        chosen += [
            _selection(subtask, candidate, pair, bool(swap))
            for pair, swap in zip(candidate.pairs, swaps, strict=True)
        ]
    if quota is not None and len(chosen) > quota:
        skipped[f"{subtask}:over_quota"] += len(chosen) - quota
        keep = np.sort(rng.choice(len(chosen), size=int(quota), replace=False))
        chosen = [chosen[k] for k in keep.tolist()]
    return chosen


def _plan_val(
    subtask: str, candidates: Sequence[_Candidate], quota: int | None, rng: np.random.Generator
) -> list[Selection]:
    """Benchmark mode: rounds of uniformly ordered objects, one unused pair each.

    Each candidate's ``pairs`` are taken in their stored order, which :func:`_reduce` made
    random; a quota of None is a single round.
    """
    used = [0] * len(candidates)
    limit = len(candidates) if quota is None else int(quota)
    chosen: list[Selection] = []
    active = [k for k, candidate in enumerate(candidates) if candidate.pairs.shape[0]]
    while active and len(chosen) < limit:
        for index in rng.permutation(len(active)).tolist():
            if len(chosen) >= limit:
                break
            k = active[index]
            pair = candidates[k].pairs[used[k]]
            used[k] += 1
            chosen.append(_selection(subtask, candidates[k], pair, bool(rng.random() < 0.5)))
        if quota is None:
            break
        active = [k for k in active if used[k] < candidates[k].pairs.shape[0]]
    return chosen


class ObjectSizeFamily(PlannedFamily):
    """The three object size subtasks (ScanNet, two raw images, a named object)."""

    family: ClassVar[str] = "object_size"
    subtasks: ClassVar[tuple[str, ...]] = (
        "object_size_height",
        "object_size_width",
        "object_size_length",
    )
    dataset: ClassVar[str] = "scannet"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """Eligible objects, minimal covering pairs and the split's selection (module docstring)."""
        wanted, quotas, benchmark = request.subtasks, request.quotas, request.benchmark
        rngs = {subtask: request.rng(subtask) for subtask in wanted}
        # Pairs kept per (object, dimension): the training cap, or as many as the benchmark
        # rounds could ever draw from one object.
        cap = request.settings.object_pairs_cap
        keep = {
            subtask: (max(1, quotas[subtask] or 0) if benchmark else cap) for subtask in wanted
        }
        skipped: Counter[str] = Counter()
        found: dict[str, list[_Candidate]] = {subtask: [] for subtask in wanted}
        for unit in request.units:
            cache = load_scannet_cache(unit.path)  # one scene's memory maps open at a time
            for subtask in wanted:
                found[subtask] += [
                    _reduce(subtask, candidate, keep[subtask], rngs[subtask],
                            None if benchmark else skipped)
                    for candidate in _unit_candidates(unit, cache, subtask, skipped)
                ]
            del cache
        selections: list[Selection] = []
        for subtask in wanted:
            if benchmark:
                selections += _plan_val(subtask, found[subtask], quotas[subtask], rngs[subtask])
            else:
                selections += _plan_train(
                    subtask, found[subtask], quotas[subtask], rngs[subtask], skipped
                )
        return selections, dict(sorted(skipped.items()))

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one scene's selections, in their order (raw frames, label in the prompt).

        Reads only ``meta.json`` and ``objects.json``; sizes are rounded once per object.
        Records come from :class:`multispa.tasks.records.RecordMaker` (template indices drawn
        from the seed and the record id).
        """
        if not selections:
            return
        path = ctx.unit.path
        intrinsics = read_json(path / "meta.json")["color_intrinsics"]
        width, height = int(intrinsics["width"]), int(intrinsics["height"])
        wanted = {int(selection.extra["object_id"]) for selection in selections}
        objects = {
            int(obj["object_id"]): obj
            for obj in read_json(path / "objects.json")
            if int(obj["object_id"]) in wanted and obj.get("box") is not None
        }
        dims_mm = _dims_mm(objects)
        makers: dict[str, tuple[RecordMaker, int]] = {}
        for subtask in {selection.subtask for selection in selections}:
            if subtask not in DIMENSIONS:
                raise ValueError(f"not an object size subtask: {subtask!r}")
            maker = RecordMaker(
                seed=ctx.seed, split=ctx.split, subtask=subtask, source=ctx.unit.source,
                scene_or_clip=ctx.unit.name,
            )
            makers[subtask] = (maker, _BOX_KEYS.index(DIMENSIONS[subtask][0]))
        # Per object, once: the label (None if unusable) and each dimension's backticked answer.
        shown_labels: dict[int, str | None] = {}
        answers: dict[int, list[str]] = {}
        for object_id, obj in objects.items():
            label = str(obj["label"])
            shown = label.strip()
            usable = shown and not any(bad in label for bad in _BAD_LABEL_TEXT)
            shown_labels[object_id] = shown if usable else None
            answers[object_id] = [f"`{format_scalar(value)}`" for value in dims_mm[object_id]]
        made: list[tuple[Selection, int, tuple[int, ...]]] = []
        for selection in selections:
            object_id = int(selection.extra["object_id"])
            if object_id not in objects:
                ctx.skip(f"{selection.subtask}:missing_object")
            elif shown_labels[object_id] is None:
                ctx.skip(f"{selection.subtask}:unusable_label")
            else:
                made.append((selection, object_id, tuple(map(int, selection.frames))))
        frame_image = FrameImages(ctx)
        frame_image.link_all(frame for _, _, frames in made for frame in frames)
        image_of = frame_image.known
        for selection, object_id, frames in made:
            make, dimension = makers[selection.subtask]
            first, second = frames
            dims = dims_mm[object_id]
            yield make(
                make.ids.without_points(frames, object_id),
                frames=[first, second],
                images=[image_of[first], image_of[second]],
                width_list=[width, width],
                height_list=[height, height],
                fields={"answer": answers[object_id][dimension], "label": shown_labels[object_id]},
                gt=dims[dimension],
                points=[[], []],
                meta={"object_id": object_id, "label": str(objects[object_id]["label"]),
                      "dims_mm": list(dims)},
            )


_BAD_LABEL_TEXT = ("`", "\n", "\r", "<image>")  # as eligibility_problem's unusable_label


def _dims_mm(objects: Mapping[int, Mapping[str, Any]]) -> dict[int, list[int]]:
    """``[height, length, width]`` mm per object id: ``r(1000·metres)`` over all at once."""
    ids = list(objects)
    if not ids:
        return {}
    metres = np.array(
        [[float(objects[i]["box"][key]) for key in _BOX_KEYS] for i in ids], dtype=np.float64
    )
    return dict(zip(ids, round_half_away(1000.0 * metres).tolist(), strict=True))

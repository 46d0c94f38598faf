"""The nine N-view questions: eligible candidates of a view set, and each question's answer.

Two halves that apply the same rules:

- :func:`candidates` enumerates, vectorised, every eligible question of one subtask in a view set
  (the planner's pool), with reason-coded counts of what it rejected;
- :func:`answer_for` takes one planned question (a selection's ``extra``), checks its eligibility
  again and computes the ground truth, the prompt fields and the record ``meta``; a failed check
  returns the reason instead (the generator skips the selection).

Eligibility (objects are ``NViewScene`` positions; "seen" and "nameable" as defined there):

- ``nview_object_count``: label L shown as its objects' label; every object of L is seen or
  absent in the view set (``glimpsed_object`` otherwise); ``1 ≤ count ≤ 12``
  (``count_out_of_range``); the answer is the number of seen objects of L;
- ``nview_object_abs_distance``: A, B nameable, seen, distinct; ``d(A, B) ≥ 0.2 m``
  (``too_close``); answer ``r(1000·d)`` mm;
- ``nview_object_rel_distance``: X and four options nameable, seen, distinct. "closest": the
  best option's distance ``b`` and the runner-up's ``r`` satisfy ``b ≤ 0.8·r`` and ``r − b ≥
  0.15``; "farthest": ``b ≥ 1.25·r`` and ``b − r ≥ 0.15`` (``no_margin``). The planner picks X and
  the answer A, then three distractors that each satisfy the test against A (so the runner-up
  does), and the letter of A uniformly;
- relative direction (``easy``/``medium``/``hard``): A, B, C nameable, seen, distinct; ``f = c_B −
  c_A``, ``w = c_C − c_A`` on the floor plan with ``‖f‖ ≥ 0.5`` and ``‖w‖ ≥ 0.5``
  (``too_short``); ``θ`` = :func:`multispa.geometry.angles.floor_angle_deg`, positive = left;
  the answer from :func:`direction_labels` (``dead_zone`` where it has none);
- ``nview_appearance_order``: four listable objects seen in the view set, each absent from every
  view before its first-seen view, with pairwise distinct first-seen views; the options are the
  correct order and three other orders of the same objects, in random letter order;
- ``nview_camera_path_length``: ``Σ ‖c_{k+1} − c_k‖ ≥ 0.5 m`` over consecutive views
  (``too_short``); answer ``r(1000·Σ)`` mm;
- ``nview_nearest_view``: X nameable and seen; ``D_k`` the distance from view ``k``'s camera
  centre to ``P_X``; best ``b`` and runner-up ``r`` with ``b ≤ 0.8·r`` and ``r − b ≥ 0.2``
  (``no_margin``); the answer is the image number ``k`` (1-based) as text.

Choice subtasks need listable objects (nameable, without ``,``/``;`` in the label) for X and the
options. Candidates and answers use the same float64 expressions for every threshold.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multispa.geometry.angles import floor_angle_deg
from multispa.tasks.answers import metres_to_mm
from multispa.tasks.nview_scene import ViewSetState

__all__ = [
    "ABS_MIN_M",
    "COUNT_MAX",
    "DIRECTION_LEVELS",
    "NEAREST_MARGIN_M",
    "PATH_MIN_M",
    "REL_MARGIN_M",
    "Answer",
    "CandidateSet",
    "answer_for",
    "candidates",
    "direction_labels",
    "option_text",
]

COUNT_MAX = 12
ABS_MIN_M = 0.2
REL_RATIO, REL_MARGIN_M = 0.8, 0.15  # closest: b ≤ 0.8·r, r − b ≥ 0.15; farthest: b ≥ 1.25·r
FARTHEST_RATIO = 1.25
DIRECTION_MIN_M = 0.5
PATH_MIN_M = 0.5
NEAREST_RATIO, NEAREST_MARGIN_M = 0.8, 0.2
LETTERS = ("A", "B", "C", "D")
ASKS = ("closest", "farthest")
_ORDER_SAMPLE_LIMIT = 20_000  # appearance-order candidates drawn per view set, at most
_PERMUTATIONS = tuple(itertools.permutations(range(4)))

#: Level → the subtask name of each relative-direction difficulty.
DIRECTION_LEVELS: Mapping[str, str] = {
    "nview_rel_direction_easy": "easy",
    "nview_rel_direction_medium": "medium",
    "nview_rel_direction_hard": "hard",
}


def direction_labels(theta_deg: np.ndarray, level: str) -> np.ndarray:
    """The answer word of each angle for a difficulty level (``""``: not asked).

    - ``easy``: ``left`` for θ ∈ [15, 165], ``right`` for θ ∈ [−165, −15];
    - ``medium``: ``left`` for θ ∈ [30, 120], ``right`` for θ ∈ [−120, −30], ``back`` for
      |θ| ≥ 135;
    - ``hard``: ``front-left`` [15, 75], ``back-left`` [105, 165], ``back-right`` [−165, −105],
      ``front-right`` [−75, −15].

    Args:
        theta_deg: ``(...)`` floor-plan angles, degrees, positive = left.
        level: ``easy``, ``medium`` or ``hard``.

    >>> direction_labels(np.array([10.0, 20.0, -150.0, 170.0]), "medium").tolist()
    ['', '', 'back', 'back']
    >>> direction_labels(np.array([15.0, -90.0, 120.0]), "hard").tolist()
    ['front-left', '', 'back-left']
    """
    t = np.asarray(theta_deg, dtype=np.float64)
    a = np.abs(t)
    if level == "easy":
        zones = [((t >= 15) & (t <= 165), "left"), ((t <= -15) & (t >= -165), "right")]
    elif level == "medium":
        zones = [(a >= 135, "back"), ((t >= 30) & (t <= 120), "left"),
                 ((t <= -30) & (t >= -120), "right")]
    elif level == "hard":
        zones = [((t >= 15) & (t <= 75), "front-left"), ((t >= 105) & (t <= 165), "back-left"),
                 ((t <= -105) & (t >= -165), "back-right"),
                 ((t <= -15) & (t >= -75), "front-right")]
    else:
        raise ValueError(f"direction_labels: level must be easy, medium or hard, got {level!r}")
    return np.select([mask for mask, _ in zones], [word for _, word in zones], default="")


def option_text(options: Sequence[str]) -> str:
    """Choice options on one line: ``A. sofa; B. desk; C. bed; D. lamp``."""
    return "; ".join(f"{letter}. {text}" for letter, text in zip(LETTERS, options, strict=True))


@dataclass(frozen=True)
class Answer:
    """One question's ground truth and what its record needs.

    Attributes:
        gt: the record's ``gt`` (int, label word, letter or image number text).
        fields: template fields besides ``answer`` (labels, options).
        meta: the subtask's ``meta`` fields (after ``views``), in their documented order.
        key_ids: object ids for the record id's sample key (``None``: none).
        ask: ``closest``/``farthest`` (relative distance) for the key, else None.
        variant: template variant (``closest``/``farthest``) or None.
    """

    gt: Any
    fields: dict[str, str]
    meta: dict[str, Any]
    key_ids: list[int] | None = None
    ask: str | None = None
    variant: str | None = None


@dataclass
class CandidateSet:
    """The eligible questions of one subtask in one view set.

    ``groups`` holds one integer array per kind of question (two for relative distance:
    closest, farthest; one otherwise), a row per candidate: object positions (pairs, triples,
    ``(X, A)``, a four-tuple in appearance order), a label index (count: into ``labels``) or an
    empty row (path length). ``extra`` turns a row into a selection's ``extra`` (drawing the
    distractors and option orders with the planner's generator).
    """

    subtask: str
    state: ViewSetState
    groups: list[np.ndarray]
    labels: list[str]
    skipped: Counter[str]

    @property
    def size(self) -> int:
        """Number of candidates."""
        return sum(int(group.shape[0]) for group in self.groups)

    def extra(self, group: int, row: int, rng: np.random.Generator) -> dict[str, Any]:
        """The selection ``extra`` of candidate ``row`` of ``groups[group]``."""
        ids = self.state.scene.ids
        values = self.groups[group][row]
        subtask = self.subtask
        if subtask == "nview_object_count":
            return {"label": self.labels[int(values[0])]}
        if subtask == "nview_object_abs_distance":
            pair = values[::-1] if rng.random() < 0.5 else values
            distance = self.state.scene.distance(int(pair[0]), int(pair[1]))
            return {"objects": [int(ids[k]) for k in pair], "distances_m": [distance]}
        if subtask == "nview_object_rel_distance":
            return _rel_distance_extra(self.state, int(values[0]), int(values[1]), ASKS[group],
                                       rng)
        if subtask in DIRECTION_LEVELS:
            return {"objects": [int(ids[k]) for k in values]}
        if subtask == "nview_nearest_view":
            distances = self.state.scene.camera_distances(int(values[0]), self.state.positions)
            return {"objects": [int(ids[values[0]])], "distances_m": distances.tolist()}
        if subtask == "nview_appearance_order":
            order = [int(ids[k]) for k in values]
            wrong = rng.choice(len(_PERMUTATIONS) - 1, size=3, replace=False) + 1
            layouts = [_PERMUTATIONS[0]] + [_PERMUTATIONS[int(i)] for i in wrong]
            shown = rng.permutation(4)
            return {"objects": order,
                    "options": [[order[j] for j in layouts[int(i)]] for i in shown]}
        if subtask == "nview_camera_path_length":
            return {}
        raise ValueError(f"not an N-view subtask: {subtask!r}")


# ----------------------------------------------------------------------------- candidates


def candidates(subtask: str, state: ViewSetState, rng: np.random.Generator) -> CandidateSet:
    """Every eligible question of ``subtask`` in the view set (module docstring).

    ``rng`` is used only by appearance order, which draws at most 20,000 of its candidates
    uniformly when there are more.
    """
    skipped: Counter[str] = Counter()
    labels: list[str] = []
    if subtask == "nview_object_count":
        rows, labels = _count_candidates(state, subtask, skipped)
        groups = [rows]
    elif subtask == "nview_object_abs_distance":
        groups = [_abs_candidates(state, subtask, skipped)]
    elif subtask == "nview_object_rel_distance":
        groups = _rel_candidates(state)
    elif subtask in DIRECTION_LEVELS:
        groups = [_direction_candidates(state, subtask, skipped)]
    elif subtask == "nview_appearance_order":
        groups = [_order_candidates(state, rng)]
    elif subtask == "nview_camera_path_length":
        ok = _path_segments(state)[1] >= PATH_MIN_M
        if not ok:
            skipped[f"{subtask}:too_short"] += 1
        groups = [np.zeros((1 if ok else 0, 0), dtype=np.int64)]
    elif subtask == "nview_nearest_view":
        groups = [_nearest_candidates(state, subtask, skipped)]
    else:
        raise ValueError(f"not an N-view subtask: {subtask!r}")
    found = CandidateSet(subtask, state, groups, labels, +skipped)  # zero counts dropped
    if found.size == 0:
        found.skipped[f"{subtask}:no_candidate"] += 1
    return found


def _count_candidates(
    state: ViewSetState, subtask: str, skipped: Counter[str]
) -> tuple[np.ndarray, list[str]]:
    labels: list[str] = []
    for label, members in sorted(state.scene.by_label.items()):
        if not _usable(label):
            continue
        seen = state.seen_any[members]
        if np.any(~seen & ~state.absent_all[members]):
            skipped[f"{subtask}:glimpsed_object"] += 1
            continue
        if not 1 <= int(np.count_nonzero(seen)) <= COUNT_MAX:
            if np.any(seen):
                skipped[f"{subtask}:count_out_of_range"] += 1
            continue
        labels.append(label)
    return np.arange(len(labels), dtype=np.int64).reshape(-1, 1), labels


def _abs_candidates(state: ViewSetState, subtask: str, skipped: Counter[str]) -> np.ndarray:
    named = state.named_seen
    if named.size < 2:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = np.triu_indices(named.size, k=1)
    pairs = np.stack([named[i], named[j]], axis=1)
    distance = np.array([state.scene.distance(int(a), int(b)) for a, b in pairs.tolist()],
                        dtype=np.float64)
    ok = distance >= ABS_MIN_M
    skipped[f"{subtask}:too_close"] += int(np.count_nonzero(~ok))
    return pairs[ok]


def _rel_tests(best: np.ndarray, other: np.ndarray, ask: str) -> np.ndarray:
    """Whether ``other`` may be an option beside the answer at ``best`` (broadcasting)."""
    if ask == "closest":
        return (best <= REL_RATIO * other) & (other - best >= REL_MARGIN_M)
    return (best >= FARTHEST_RATIO * other) & (best - other >= REL_MARGIN_M)


def _rel_candidates(state: ViewSetState) -> list[np.ndarray]:
    """``(X, A)`` rows per ask, where at least three other options pass the margin against A."""
    scene = state.scene
    listable = np.flatnonzero(scene.listable & state.seen_any)
    found: list[list[tuple[int, int]]] = [[], []]
    if listable.size >= 5:
        for x in listable.tolist():
            others = listable[listable != x]
            d = scene.distances([x], others.tolist())[0]
            for group, ask in enumerate(ASKS):
                passes = _rel_tests(d[:, None], d[None, :], ask)
                np.fill_diagonal(passes, False)
                answers = others[passes.sum(axis=1) >= 3]
                found[group] += [(x, int(a)) for a in answers.tolist()]
    return [np.array(rows, dtype=np.int64).reshape(-1, 2) for rows in found]


def _rel_distance_extra(
    state: ViewSetState, x: int, answer: int, ask: str, rng: np.random.Generator
) -> dict[str, Any]:
    scene = state.scene
    listable = np.flatnonzero(scene.listable & state.seen_any)
    others = listable[(listable != x) & (listable != answer)]
    best = scene.distance(x, answer)
    d = scene.distances([x], others.tolist())[0]
    pool = others[_rel_tests(np.float64(best), d, ask)]
    distractors = pool[np.sort(rng.choice(pool.size, size=3, replace=False))]
    slot = int(rng.integers(4))
    options = [int(k) for k in distractors.tolist()]
    options.insert(slot, answer)
    return {"objects": [int(scene.ids[x])], "options": [int(scene.ids[k]) for k in options],
            "ask": ask, "distances_m": scene.distances([x], options)[0].tolist()}


def _direction_geometry(
    centres: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(θ degrees, both legs ≥ 0.5 m)`` for index arrays ``a, b, c`` into ``centres``."""
    xy = centres[:, :2]
    forward = np.linalg.norm(xy[b] - xy[a], axis=-1)
    toward = np.linalg.norm(xy[c] - xy[a], axis=-1)
    theta = floor_angle_deg(xy[a], xy[b], xy[c])
    return theta, (forward >= DIRECTION_MIN_M) & (toward >= DIRECTION_MIN_M)


def _direction_candidates(
    state: ViewSetState, subtask: str, skipped: Counter[str]
) -> np.ndarray:
    named = state.named_seen
    m = named.size
    if m < 3:
        return np.zeros((0, 3), dtype=np.int64)
    i, j, k = (axis.reshape(-1) for axis in np.meshgrid(*(np.arange(m),) * 3, indexing="ij"))
    distinct = (i != j) & (i != k) & (j != k)
    a, b, c = named[i[distinct]], named[j[distinct]], named[k[distinct]]
    theta, long_enough = _direction_geometry(state.scene.centres, a, b, c)
    words = direction_labels(theta, DIRECTION_LEVELS[subtask])
    ok = long_enough & (words != "")
    skipped[f"{subtask}:too_short"] += int(np.count_nonzero(~long_enough))
    skipped[f"{subtask}:dead_zone"] += int(np.count_nonzero(long_enough & (words == "")))
    return np.stack([a[ok], b[ok], c[ok]], axis=1)


def _order_candidates(state: ViewSetState, rng: np.random.Generator) -> np.ndarray:
    """Four-tuples in appearance order: one object from each of four distinct first-seen views.

    With ``g_v`` usable objects first seen in view ``v``, there are ``Σ Π g_v`` over the
    four-view subsets; each candidate is decoded from its rank in that enumeration (view subsets
    in lexicographic order, then objects in id order, the earliest view most significant), so a
    uniform draw of ranks is a uniform draw of candidates.
    """
    scene = state.scene
    usable = np.flatnonzero(scene.listable & state.absent_before_first)
    first = state.first_seen[usable]
    views = sorted(set(first.tolist()))
    groups = {v: usable[first == v] for v in views}
    subsets = list(itertools.combinations(views, 4))
    sizes = [math.prod(groups[v].size for v in subset) for subset in subsets]
    total = sum(sizes)
    if total == 0:
        return np.zeros((0, 4), dtype=np.int64)
    ranks = (np.arange(total) if total <= _ORDER_SAMPLE_LIMIT
             else np.sort(rng.choice(total, size=_ORDER_SAMPLE_LIMIT, replace=False)))
    bounds = np.cumsum([0, *sizes])
    rows = []
    for rank in ranks.tolist():
        s = int(np.searchsorted(bounds, rank, side="right")) - 1
        offset = rank - int(bounds[s])
        picks = []
        for v in reversed(subsets[s]):
            offset, digit = divmod(offset, groups[v].size)
            picks.append(int(groups[v][digit]))
        rows.append(picks[::-1])
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def _path_segments(state: ViewSetState) -> tuple[np.ndarray, float]:
    centres = state.camera_centres
    segments = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    return segments, float(np.sum(segments))


def _nearest_margin(distances: np.ndarray) -> tuple[int, bool]:
    """The best view and whether it beats the runner-up by the nearest-view margin."""
    order = np.argsort(distances, kind="stable")
    best, runner = float(distances[order[0]]), float(distances[order[1]])
    return int(order[0]), best <= NEAREST_RATIO * runner and runner - best >= NEAREST_MARGIN_M


def _nearest_candidates(
    state: ViewSetState, subtask: str, skipped: Counter[str]
) -> np.ndarray:
    rows = []
    for k in state.named_seen.tolist():
        _, ok = _nearest_margin(state.scene.camera_distances(k, state.positions))
        if ok:
            rows.append(k)
        else:
            skipped[f"{subtask}:no_margin"] += 1
    return np.array(rows, dtype=np.int64).reshape(-1, 1)


def _usable(label: str) -> bool:
    return bool(label) and not any(bad in label for bad in ("`", "\n", "\r", "<image>"))


# -------------------------------------------------------------------------------- answers


def _objects(state: ViewSetState, ids: Sequence[Any], count: int) -> list[int] | str:
    """Positions of ``count`` distinct object ids, or the reason they cannot be used."""
    if not isinstance(ids, list) or len(ids) != count:
        return "bad_selection"
    lookup = state.scene.index_of_id
    positions = [lookup.get(int(i), -1) for i in ids]
    if min(positions) < 0:
        return "missing_object"
    if len(set(positions)) != count:
        return "repeated_object"
    if not all(bool(state.scene.nameable[k]) for k in positions):
        return "not_nameable"
    if not all(bool(state.seen_any[k]) for k in positions):
        return "not_seen"
    return positions


def _carried(extra: Mapping[str, Any], count: int) -> list[float] | None:
    """The distances a planned distance question carries (``extra["distances_m"]``), if valid."""
    values = extra.get("distances_m")
    if (isinstance(values, list) and len(values) == count
            and all(isinstance(v, float) and math.isfinite(v) and v >= 0 for v in values)):
        return [float(v) for v in values]
    return None


def answer_for(subtask: str, state: ViewSetState, extra: Mapping[str, Any]) -> Answer | str:
    """The answer of one planned question, or the reason it is not eligible (module docstring).

    Closest-point distances (between objects, and from the cameras to an object) are computed by
    the planner, once per scene and pair, and carried in the ``extra`` of the distance and
    nearest-view questions (``distances_m``); they are recomputed here only when absent.

    Args:
        subtask: an N-view subtask.
        state: the view set (``frames`` of the selection) in its scene.
        extra: the selection's ``extra`` (:meth:`CandidateSet.extra`).
    """
    scene = state.scene
    if subtask == "nview_camera_path_length":  # cameras only: the object table is not read
        segments, total = _path_segments(state)
        if total < PATH_MIN_M:
            return "too_short"
        return Answer(metres_to_mm(total), {}, {"segments_m": segments.tolist()})
    labels = scene.labels
    if subtask == "nview_object_count":
        label = str(extra.get("label", ""))
        members = scene.by_label.get(label)
        if not members or not _usable(label):
            return "missing_object"
        seen = state.seen_any[members]
        if np.any(~seen & ~state.absent_all[members]):
            return "glimpsed_object"
        ids = sorted(int(scene.ids[k]) for k, s in zip(members, seen.tolist(), strict=True) if s)
        if not 1 <= len(ids) <= COUNT_MAX:
            return "count_out_of_range"
        return Answer(len(ids), {"label": label}, {"label": label, "count_ids": ids}, ids)
    if subtask == "nview_appearance_order":
        return _order_answer(state, extra)
    count = {"nview_object_abs_distance": 2, "nview_object_rel_distance": 1,
             "nview_nearest_view": 1}.get(subtask, 3)
    if subtask not in DIRECTION_LEVELS and subtask not in (
        "nview_object_abs_distance", "nview_object_rel_distance", "nview_nearest_view"
    ):
        raise ValueError(f"not an N-view subtask: {subtask!r}")
    found = _objects(state, extra.get("objects"), count)
    if isinstance(found, str):
        return found
    ids = [int(scene.ids[k]) for k in found]
    if subtask == "nview_object_abs_distance":
        a, b = found
        carried = _carried(extra, 1)
        distance = carried[0] if carried is not None else scene.distance(a, b)
        if distance < ABS_MIN_M:
            return "too_close"
        return Answer(metres_to_mm(distance), {"object_a": labels[a], "object_b": labels[b]},
                      {"objects": ids, "distances_m": [distance]}, ids)
    if subtask == "nview_object_rel_distance":
        return _rel_answer(state, found[0], extra)
    if subtask == "nview_nearest_view":
        (x,) = found
        carried = _carried(extra, len(state.frames))
        distances = (np.asarray(carried, dtype=np.float64) if carried is not None
                     else scene.camera_distances(x, state.positions))
        best, ok = _nearest_margin(distances)
        if not ok:
            return "no_margin"
        return Answer(str(best + 1), {"target": labels[x]},
                      {"objects": ids, "distances_m": distances.tolist()}, ids)
    a, b, c = (np.array([k]) for k in found)
    theta, long_enough = _direction_geometry(scene.centres, a, b, c)
    if not bool(long_enough[0]):
        return "too_short"
    word = str(direction_labels(theta, DIRECTION_LEVELS[subtask])[0])
    if not word:
        return "dead_zone"
    fields = {"object_a": labels[found[0]], "object_b": labels[found[1]],
              "object_c": labels[found[2]]}
    return Answer(word, fields, {"objects": ids, "theta_deg": float(theta[0])}, ids)


def _rel_answer(state: ViewSetState, x: int, extra: Mapping[str, Any]) -> Answer | str:
    scene = state.scene
    ask = extra.get("ask")
    if ask not in ASKS:
        return "bad_selection"
    options = _objects(state, extra.get("options"), 4)
    if isinstance(options, str):
        return options
    if x in options:
        return "repeated_object"
    if not all(bool(scene.listable[k]) for k in [x, *options]):
        return "not_listable"
    carried = _carried(extra, 4)
    distances = (np.asarray(carried, dtype=np.float64) if carried is not None
                 else scene.distances([x], options)[0])
    order = np.argsort(distances if ask == "closest" else -distances, kind="stable")
    best, runner = float(distances[order[0]]), float(distances[order[1]])
    if not bool(_rel_tests(np.float64(best), np.float64(runner), ask)):
        return "no_margin"
    option_ids = [int(scene.ids[k]) for k in options]
    x_id = int(scene.ids[x])
    return Answer(
        LETTERS[int(order[0])],
        {"target": scene.labels[x], "options": option_text([scene.labels[k] for k in options])},
        {"objects": [x_id], "options": option_ids, "ask": ask,
         "distances_m": distances.tolist()},
        [x_id, *option_ids], ask, ask,
    )


def _order_answer(state: ViewSetState, extra: Mapping[str, Any]) -> Answer | str:
    scene = state.scene
    found = _objects(state, extra.get("objects"), 4)
    if isinstance(found, str):
        return found
    if not all(bool(scene.listable[k]) for k in found):
        return "not_listable"
    first = [int(state.first_seen[k]) for k in found]
    if len(set(first)) != 4:
        return "same_first_view"
    if not all(bool(state.absent_before_first[k]) for k in found):
        return "not_absent_before"
    ids = [int(scene.ids[k]) for k in found]
    correct = sorted(ids, key=lambda i: first[ids.index(i)])
    options = extra.get("options")
    if not (isinstance(options, list) and len(options) == 4
            and all(isinstance(o, list) and sorted(map(int, o)) == sorted(ids) for o in options)
            and len({tuple(map(int, o)) for o in options}) == 4):
        return "bad_selection"
    shown = [[int(i) for i in o] for o in options]
    if correct not in shown:
        return "bad_selection"
    letter = LETTERS[shown.index(correct)]
    label = {int(scene.ids[k]): scene.labels[k] for k in found}
    text = option_text([", ".join(label[i] for i in o) for o in shown])
    return Answer(letter, {"options": text},
                  {"objects": ids, "first_seen": [f + 1 for f in first], "options": shown}, ids)

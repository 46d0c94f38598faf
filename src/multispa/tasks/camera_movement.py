"""Camera movement: nine subtasks on overlap-stratified ScanNet frame pairs
(docs/labels.md#camera-movement).

Planning, per subtask independently (its own generator ``rng_for(seed, "plan", split, subtask)``):

1. candidates: every pair of the split's pair tables (``frame1 < frame2``) with overlap in
   [6, 35] %, pooled over all scenes in ``unit_id`` order;
2. orientation: each candidate is swapped with probability ½ (one draw per candidate, in pool
   order) **before** eligibility;
3. eligibility (rule (d)) is tested on the quantities *of that orientation*, computed from the
   cached aligned poses: ``|t_axis| ≥ 0.05 m`` (x/y/z direction), ``|Δyaw| ≥ 3°`` / ``|Δpitch| ≥
   3°`` (yaw/pitch direction and degree), ``‖t‖ ≥ 0.05 m`` (distance and vector); a failing
   candidate counts as ``<subtask>:dead_zone``; yaw subtasks (direction and degree) also need
   both cameras' ``|pitch| ≤ 50°`` (rule (r): near vertical views the azimuth swings wildly), a
   passing candidate that fails it counts as ``<subtask>:steep_pitch``;
4. the eligible pool goes through :func:`multispa.tasks.sampling.stratified_pair_sample` (a quota
   of ``None`` keeps every eligible candidate, shuffled).

This is the project's reading of docs/labels.md#pair-sampler, whose step 5 swaps *after*
stratification: drawing the orientation first and filtering in that orientation guarantees that the
dead zones hold for the record actually emitted (``|t_x|`` of the swapped pair is not ``|t_x|`` of
the original one).

Generation recomputes ``t`` (camera 2's centre in camera-1 axes, metres), ``Δyaw`` and ``Δpitch``
for the emitted orientation with the same functions, checks the dead zone again (a candidate that
fails, which float noise could only cause exactly at a threshold, is skipped as
``<subtask>:dead_zone_at_generate``) and writes the record with the raw frames. For throughput it
reads only the scene's poses, frame index and ``meta.json``, computes the motion, dead zones and
rounded answers of all the unit's selections in one vectorised pass (the same rules and rounding
as :func:`answer_for`), links the frames the records show at once, and per record only formats
text with :class:`multispa.tasks.records.RecordMaker`, in batches per subtask (template indices
from a hash of the seed and the record id, prompts from the compiled templates). The pipeline
takes the records' JSONL lines, made without the dicts (``generate_lines``).

Selection ``extra``: ``{"overlap": float (2 decimals), "swapped": bool}``; ``frames`` are the
original frame indices in prompt order (``swapped`` ⇔ ``frames[0] > frames[1]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from multispa.cache.files import read_json, read_npy
from multispa.cache.scannet_cache import load_scannet_cache
from multispa.errors import CacheError
from multispa.geometry.angles import (
    relative_translation_m,
    relative_yaw_pitch_deg,
    yaw_pitch_deg,
)
from multispa.geometry.coords import round_half_away
from multispa.tasks.answers import (
    degrees_to_int,
    metres_to_mm,
    metres_to_mm_vector,
)
from multispa.tasks.base import CacheUnit, Selection, UnitContext
from multispa.tasks.planning import PlannedFamily, PlanRequest
from multispa.tasks.records import (
    FrameImages,
    MetaLayout,
    RecordMaker,
    json_numbers,
    json_slot,
)
from multispa.tasks.sampling import overlap_bins, stratified_pair_sample

__all__ = [
    "ANGLE_DEAD_ZONE_DEG",
    "MAX_YAW_PITCH_DEG",
    "SUBTASK_NAMES",
    "TRANSLATION_DEAD_ZONE_M",
    "CameraMotion",
    "CameraMovementFamily",
    "answer_for",
    "camera_motion",
    "eligible",
    "level_enough_for_yaw",
]

TRANSLATION_DEAD_ZONE_M = 0.05  # rule (d): |t_axis| (direction) and ‖t‖ (distance, vector)
ANGLE_DEAD_ZONE_DEG = 3.0  # rule (d): |Δyaw|, |Δpitch| (direction and degree)
MAX_YAW_PITCH_DEG = 50.0  # rule (r): yaw subtasks need both cameras' |pitch| <= this

SUBTASK_NAMES: tuple[str, ...] = (
    "camera_x_direction",
    "camera_y_direction",
    "camera_z_direction",
    "camera_yaw_direction",
    "camera_pitch_direction",
    "camera_yaw_degree",
    "camera_pitch_degree",
    "camera_translation_distance",
    "camera_translation_vector",
)
_SUBTASK_SET = frozenset(SUBTASK_NAMES)
_AXIS = {"camera_x_direction": 0, "camera_y_direction": 1, "camera_z_direction": 2}
_TRANSLATION_WORDS = (("right", "left"), ("down", "up"), ("forward", "backward"))  # (>0, ≤0)


@dataclass(frozen=True)
class CameraMotion:
    """Relative motion of camera 2 with respect to camera 1, for ``K`` pairs.

    Attributes:
        t_m: ``(K, 3)`` float64, camera 2's centre in camera-1 axes (x right, y down, z forward),
            metres.
        dyaw_deg: ``(K,)`` float64 in (−180, 180], positive = turned left.
        dpitch_deg: ``(K,)`` float64, positive = tilted up.
    """

    t_m: np.ndarray
    dyaw_deg: np.ndarray
    dpitch_deg: np.ndarray


def camera_motion(world_from_cam1: np.ndarray, world_from_cam2: np.ndarray) -> CameraMotion:
    """Relative motion of ``K`` ordered pairs (docs/labels.md#relative-motion).

    Args:
        world_from_cam1: ``(K, 4, 4)`` float64 aligned pose of the first image's camera.
        world_from_cam2: ``(K, 4, 4)`` float64 aligned pose of the second image's camera.
    """
    dyaw, dpitch = relative_yaw_pitch_deg(world_from_cam1, world_from_cam2)
    return CameraMotion(
        relative_translation_m(world_from_cam1, world_from_cam2),
        np.asarray(dyaw, dtype=np.float64),
        np.asarray(dpitch, dtype=np.float64),
    )


def _magnitude(
    subtask: str, world_from_cam1: np.ndarray, world_from_cam2: np.ndarray
) -> np.ndarray:
    """``(K,)`` float64 quantity whose size the dead zone of ``subtask`` tests (m or degrees)."""
    if subtask in _AXIS:
        return np.abs(relative_translation_m(world_from_cam1, world_from_cam2)[:, _AXIS[subtask]])
    if subtask in ("camera_translation_distance", "camera_translation_vector"):
        return np.linalg.norm(relative_translation_m(world_from_cam1, world_from_cam2), axis=-1)
    dyaw, dpitch = relative_yaw_pitch_deg(world_from_cam1, world_from_cam2)
    return np.abs(np.asarray(dyaw if "yaw" in subtask else dpitch, dtype=np.float64))


def eligible(subtask: str, world_from_cam1: np.ndarray, world_from_cam2: np.ndarray) -> np.ndarray:
    """Rule (d) dead zones for ``K`` ordered pairs: ``(K,)`` bool, True = may be asked.

    Args:
        subtask: one of :data:`SUBTASK_NAMES`.
        world_from_cam1, world_from_cam2: ``(K, 4, 4)`` aligned poses, in prompt order.
    """
    value = _magnitude(subtask, world_from_cam1, world_from_cam2)
    angle = "yaw" in subtask or "pitch" in subtask
    return value >= (ANGLE_DEAD_ZONE_DEG if angle else TRANSLATION_DEAD_ZONE_M)


def level_enough_for_yaw(world_from_cam: np.ndarray) -> np.ndarray:
    """Rule (r): ``(K,)`` bool, True where the camera's ``|pitch| ≤ 50°``.

    Args:
        world_from_cam: ``(K, 4, 4)`` aligned poses.
    """
    _, pitch = yaw_pitch_deg(world_from_cam)
    return np.abs(pitch) <= MAX_YAW_PITCH_DEG


def answer_for(subtask: str, t_m: np.ndarray, dyaw_deg: float, dpitch_deg: float) -> Any:
    """Ground truth of one pair: a label word, int degrees/mm or mm vector.

    Args:
        subtask: one of :data:`SUBTASK_NAMES`.
        t_m: ``(3,)`` camera 2's centre in camera-1 axes, metres.
        dyaw_deg, dpitch_deg: rotation from camera 1 to camera 2, degrees.
    """
    if subtask in _AXIS:
        positive, other = _TRANSLATION_WORDS[_AXIS[subtask]]
        return positive if float(t_m[_AXIS[subtask]]) > 0 else other
    if subtask == "camera_yaw_direction":
        return "left" if dyaw_deg > 0 else "right"
    if subtask == "camera_pitch_direction":
        return "up" if dpitch_deg > 0 else "down"
    if subtask == "camera_yaw_degree":
        return degrees_to_int(abs(dyaw_deg))
    if subtask == "camera_pitch_degree":
        return degrees_to_int(abs(dpitch_deg))
    if subtask == "camera_translation_distance":
        return metres_to_mm(float(np.linalg.norm(t_m)))
    if subtask == "camera_translation_vector":
        return metres_to_mm_vector(t_m)
    raise ValueError(f"not a camera movement subtask: {subtask!r}")


@dataclass(frozen=True)
class _UnitPairs:
    """One scene's candidate pairs (overlap in [6, 35] %), by kept-frame position.

    Attributes:
        unit: the cache unit.
        world_from_cam: ``(F, 4, 4)`` float64 aligned poses.
        frame_index: ``(F,)`` original frame index of each position.
        first, second: ``(K,)`` int32 positions with ``frame1 < frame2``.
        overlap_pct: ``(K,)`` float64.
    """

    unit: CacheUnit
    world_from_cam: np.ndarray
    frame_index: np.ndarray
    first: np.ndarray
    second: np.ndarray
    overlap_pct: np.ndarray


def _positions(
    frame_index: np.ndarray, path: Path, frames: np.ndarray, what: str
) -> np.ndarray:
    """Kept-frame positions (same shape, int64) of original frame indices ``frames``.

    Args:
        frame_index: ``(F,)`` the scene's kept original frame indices.
        path: the scene's cache folder (for messages).
        frames: original frame indices, any shape.

    Raises CacheError naming the cache folder if a frame is not a kept frame.
    """
    kept = np.asarray(frame_index, dtype=np.int64)
    frames = np.asarray(frames, dtype=np.int64)
    order = np.argsort(kept, kind="stable")
    sorted_frames = kept[order]
    if frames.size and sorted_frames.size == 0:
        raise CacheError(f"{path}: {what} frame {int(frames.flat[0])} but no kept frames")
    slot = np.clip(np.searchsorted(sorted_frames, frames), 0, max(sorted_frames.size - 1, 0))
    bad = sorted_frames[slot] != frames if frames.size else np.zeros(frames.shape, dtype=bool)
    if np.any(bad):
        raise CacheError(
            f"{path}: {what} frame {int(frames[bad][0])} is not among the kept frames "
            f"of frame_index.npy"
        )
    return order[slot].astype(np.int64)


def _load_unit_pairs(unit: CacheUnit) -> _UnitPairs:
    cache = load_scannet_cache(unit.path)
    table = cache.pairs()
    overlap = np.asarray(table.column("overlap_pct").to_numpy(), dtype=np.float64)
    keep = overlap_bins(overlap) >= 0
    frame1 = np.asarray(table.column("frame1").to_numpy(), dtype=np.int64)[keep]
    frame2 = np.asarray(table.column("frame2").to_numpy(), dtype=np.int64)[keep]
    return _UnitPairs(
        unit=unit,
        # Copies: keeping memory maps of every scene open would hold one descriptor per array.
        world_from_cam=np.array(cache.world_from_cam, dtype=np.float64, copy=True),
        frame_index=np.array(cache.frame_index, dtype=np.int64, copy=True),
        first=_positions(cache.frame_index, cache.path, frame1, "frame1").astype(np.int32),
        second=_positions(cache.frame_index, cache.path, frame2, "frame2").astype(np.int32),
        overlap_pct=overlap[keep],
    )


class CameraMovementFamily(PlannedFamily):
    """The nine camera movement subtasks (ScanNet, two raw images)."""

    family: ClassVar[str] = "camera_movement"
    subtasks: ClassVar[tuple[str, ...]] = SUBTASK_NAMES
    dataset: ClassVar[str] = "scannet"

    def plan_selections(self, request: PlanRequest) -> tuple[list[Selection], dict[str, int]]:
        """Per subtask: orient, filter by dead zone, stratify by overlap (module docstring)."""
        pools = [_load_unit_pairs(unit) for unit in request.units]
        selections: list[Selection] = []
        skipped: dict[str, int] = {}
        for subtask in request.subtasks:
            chosen, dropped, steep = _plan_subtask(
                subtask, pools, request.quotas[subtask], request.rng(subtask)
            )
            selections += chosen
            if dropped:
                skipped[f"{subtask}:dead_zone"] = dropped
            if steep:
                skipped[f"{subtask}:steep_pitch"] = steep
        return selections, skipped

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Records of one scene's selections, in their order (raw frames, no markers)."""
        if not selections:
            return iter(())
        return _generate(ctx, selections, lines=False)

    def generate_lines(
        self, ctx: UnitContext, selections: Sequence[Selection]
    ) -> Iterator[bytes]:
        """The JSONL lines (``record_line``) of :meth:`generate`'s records, made without dicts."""
        if not selections:
            return iter(())
        return _generate(ctx, selections, lines=True)


def _plan_subtask(
    subtask: str, pools: Sequence[_UnitPairs], quota: int | None, rng: np.random.Generator
) -> tuple[list[Selection], int, int]:
    """Selections of one subtask over all scenes, the number of dead-zone candidates and the
    number of yaw candidates dropped for a steep pitch (rule (r)).

    ``rng`` is the subtask's planning generator. The eligible pool is held as flat arrays
    (scene number int32, two original frame indices int32 in prompt order, overlap float64):
    20 bytes per candidate.
    """
    if not pools:
        return [], 0, 0
    yaw = "yaw" in subtask
    steep = 0
    unit_of: list[np.ndarray] = []
    frames_a: list[np.ndarray] = []
    frames_b: list[np.ndarray] = []
    overlaps: list[np.ndarray] = []
    dropped = 0
    for number, pool in enumerate(pools):
        swap = rng.random(pool.first.size) < 0.5
        first = np.where(swap, pool.second, pool.first)
        second = np.where(swap, pool.first, pool.second)
        ok = eligible(subtask, pool.world_from_cam[first], pool.world_from_cam[second])
        dropped += int(ok.size) - int(np.count_nonzero(ok))
        if yaw:
            level = level_enough_for_yaw(pool.world_from_cam)
            passing = int(np.count_nonzero(ok))
            ok &= level[first] & level[second]
            steep += passing - int(np.count_nonzero(ok))
        kept = int(np.count_nonzero(ok))
        unit_of.append(np.full(kept, number, dtype=np.int32))
        frames_a.append(pool.frame_index[first[ok]].astype(np.int32))
        frames_b.append(pool.frame_index[second[ok]].astype(np.int32))
        overlaps.append(pool.overlap_pct[ok])
    overlap_all = np.concatenate(overlaps)
    if quota is None:
        picked = rng.permutation(overlap_all.size)
    else:
        picked = np.asarray(stratified_pair_sample(overlap_all, int(quota), rng), dtype=np.int64)
    overlap_2dp = (round_half_away(overlap_all[picked] * 100.0) / 100.0).tolist()
    unit_ids = [pool.unit.unit_id for pool in pools]
    columns = zip(
        np.concatenate(unit_of)[picked].tolist(),
        np.concatenate(frames_a)[picked].tolist(),
        np.concatenate(frames_b)[picked].tolist(),
        overlap_2dp,
        strict=True,
    )
    selections = [
        Selection(
            subtask=subtask,
            unit_id=unit_ids[number],
            frames=(frame_a, frame_b),
            extra={"overlap": overlap, "swapped": frame_a > frame_b},
        )
        for number, frame_a, frame_b, overlap in columns
    ]
    return selections, dropped, steep


def _answers(subtask: str, motion: CameraMotion) -> tuple[list[Any], list[str]]:
    """Ground truths of ``K`` pairs of one subtask and their backticked answers.

    Vectorised :func:`answer_for`: the same sign rules and the same rounding
    (``r(1000·metres)``, ``r(|degrees|)``), with :func:`round_half_away` on whole arrays.
    """
    if subtask in _AXIS:
        positive, other = _TRANSLATION_WORDS[_AXIS[subtask]]
        labels = [positive if v > 0 else other for v in motion.t_m[:, _AXIS[subtask]].tolist()]
        return labels, [f"`{label}`" for label in labels]
    if subtask in ("camera_yaw_direction", "camera_pitch_direction"):
        angle = motion.dyaw_deg if "yaw" in subtask else motion.dpitch_deg
        words = ("left", "right") if "yaw" in subtask else ("up", "down")
        labels = [words[0] if v > 0 else words[1] for v in angle.tolist()]
        return labels, [f"`{label}`" for label in labels]
    if subtask == "camera_translation_vector":
        vectors = round_half_away(1000.0 * motion.t_m).tolist()  # Python ints (int64 array)
        return vectors, [f"`[ {x} , {y} , {z} ]`" for x, y, z in vectors]  # format_vector
    if subtask == "camera_translation_distance":
        values = round_half_away(1000.0 * np.linalg.norm(motion.t_m, axis=-1)).tolist()
    elif subtask in ("camera_yaw_degree", "camera_pitch_degree"):
        angle = motion.dyaw_deg if "yaw" in subtask else motion.dpitch_deg
        values = round_half_away(np.abs(angle)).tolist()
    else:
        raise ValueError(f"not a camera movement subtask: {subtask!r}")
    return values, [f"`{v}`" for v in values]  # Python ints: format_scalar


def _dead_zone_ok(subtask: str, motion: CameraMotion) -> np.ndarray:
    """Rule (d) for ``K`` computed motions: ``(K,)`` bool (the test of :func:`eligible`)."""
    if subtask in _AXIS:
        return np.abs(motion.t_m[:, _AXIS[subtask]]) >= TRANSLATION_DEAD_ZONE_M
    if subtask in ("camera_translation_distance", "camera_translation_vector"):
        return np.linalg.norm(motion.t_m, axis=-1) >= TRANSLATION_DEAD_ZONE_M
    angle = motion.dyaw_deg if "yaw" in subtask else motion.dpitch_deg
    return np.abs(angle) >= ANGLE_DEAD_ZONE_DEG


_NPY_V1_HEADER = re.compile(
    rb"\{'descr': '(?P<descr>[<>|][biuf][1248])', 'fortran_order': False, "
    rb"'shape': \((?P<shape>(?:\d+, )*\d*,?)\), \} *\n"
)


def _read_small_npy(path: Path) -> np.ndarray:
    """A small ``.npy`` file read whole (a per-scene table such as the poses).

    The plain version-1 layout that numpy writes (little/big-endian bool, int, uint or float,
    C order) is decoded directly: numpy's own header parser (``ast.literal_eval``) costs more
    than the read. Anything else goes to :func:`multispa.cache.files.read_npy`, which also
    reports bad files.
    """
    data = path.read_bytes()
    if data[:8] == b"\x93NUMPY\x01\x00" and len(data) >= 10:
        end = 10 + int.from_bytes(data[8:10], "little")
        match = _NPY_V1_HEADER.fullmatch(data, 10, end)
        if match:
            shape = tuple(int(v) for v in match["shape"].split(b",") if v.strip())
            dtype = np.dtype(match["descr"].decode("ascii"))
            count = math.prod(shape)
            if len(data) - end == count * dtype.itemsize:
                return np.frombuffer(data, dtype=dtype, count=count, offset=end).reshape(shape)
    return read_npy(path, mmap=False)


def _colour_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a scene's colour images, pixels, from its ``meta.json``."""
    intrinsics = read_json(path / "meta.json")["color_intrinsics"]
    return int(intrinsics["width"]), int(intrinsics["height"])


_CHUNK = 4096  # selections whose records are built together (bounds the records held)


def _record_meta(overlap: Any, t_m: Any, dyaw_deg: Any, dpitch_deg: Any) -> dict[str, Any]:
    """A record's subtask meta: ``{"overlap": %, "camera": {"t_m": [x, y, z] metres,
    "dyaw_deg": degrees, "dpitch_deg": degrees}}`` (also the layout of the lines' meta)."""
    meta = {
        "overlap": overlap,
        "camera": {"t_m": t_m, "dyaw_deg": dyaw_deg, "dpitch_deg": dpitch_deg},
    }
    return meta


_META_SLOTS = ("overlap", "x", "y", "z", "dyaw", "dpitch")  # in JSON order
_META_LAYOUT = MetaLayout(
    _record_meta(json_slot("overlap"), [json_slot(axis) for axis in "xyz"], json_slot("dyaw"),
                 json_slot("dpitch")),
    _META_SLOTS,
)


@dataclass(frozen=True)
class _UnitRecords:
    """One scene's selections ready for text, as per-selection columns (prompt order).

    Attributes:
        subtasks: subtask of each selection.
        frame_pairs: the two original frames of each selection (Python ints).
        ok: whether each selection passes its dead zone again.
        gts, texts: ground truth and backticked answer of each selection.
        metas: each selection's subtask meta, as :func:`_record_meta` makes it (dicts) or as
            the JSON texts of its :data:`_META_LAYOUT` slots.
    """

    subtasks: list[str]
    frame_pairs: list[tuple[int, int]]
    ok: list[bool]
    gts: list[Any]
    texts: list[str]
    metas: list[Any]


def _unit_records(
    ctx: UnitContext, selections: Sequence[Selection], lines: bool
) -> tuple[_UnitRecords, tuple[int, int]]:
    """Geometry, dead zones, answers and metas of one scene's selections in one pass, and the
    colour image size ``(width, height)`` in pixels."""
    path = ctx.unit.path
    size = _colour_size(path)
    frame_index = _read_small_npy(path / "frame_index.npy")
    poses = np.asarray(_read_small_npy(path / "world_from_cam.npy"), dtype=np.float64)
    frames = [selection.frames for selection in selections]
    if {*map(len, frames)} != {2}:
        raise ValueError(f"{ctx.unit.unit_id}: camera selections need two frames each")
    frame_pairs = [(int(a), int(b)) for a, b in frames]
    first, second = _pair_positions(frame_index, path, frame_pairs)
    motion = camera_motion(poses[first], poses[second])

    subtasks = [selection.subtask for selection in selections]
    ok = np.zeros(len(selections), dtype=bool)
    gts: list[Any] = [None] * len(selections)
    texts: list[str] = [""] * len(selections)
    for subtask, rows in _rows_by_subtask(subtasks).items():
        if subtask not in _SUBTASK_SET:
            raise ValueError(f"not a camera movement subtask: {subtask!r}")
        part = _rows(motion, rows)
        ok[rows] = _dead_zone_ok(subtask, part)
        values, value_texts = _answers(subtask, part)
        for k, value, text in zip(rows, values, value_texts, strict=True):
            gts[k], texts[k] = value, text
    overlaps = [float(selection.extra["overlap"]) for selection in selections]
    metas = (_meta_texts if lines else _meta_dicts)(overlaps, motion)
    return _UnitRecords(subtasks, frame_pairs, ok.tolist(), gts, texts, metas), size


def _meta_dicts(overlaps: list[float], motion: CameraMotion) -> list[dict[str, Any]]:
    """Per selection, its meta dict (:func:`_record_meta`)."""
    return [
        _record_meta(overlap, t_m, dyaw, dpitch)
        for overlap, t_m, dyaw, dpitch in zip(
            overlaps, motion.t_m.tolist(), motion.dyaw_deg.tolist(), motion.dpitch_deg.tolist(),
            strict=True,
        )
    ]


def _meta_texts(overlaps: list[float], motion: CameraMotion) -> list[tuple[bytes, ...]]:
    """Per selection, the JSON texts of its :data:`_META_LAYOUT` slots, all written by one
    :func:`json_numbers` call."""
    n = len(overlaps)
    texts = json_numbers(
        overlaps + motion.t_m.ravel().tolist() + motion.dyaw_deg.tolist()
        + motion.dpitch_deg.tolist()
    )
    t_m = texts[n : 4 * n]
    return list(zip(
        texts[:n], t_m[0::3], t_m[1::3], t_m[2::3], texts[4 * n : 5 * n], texts[5 * n :],
        strict=True,
    ))


def _rows_by_subtask(subtasks: Sequence[str]) -> dict[str, list[int]]:
    """Positions of each subtask's selections, in order (subtasks in order of appearance)."""
    rows: dict[str, list[int]] = {}
    for k, subtask in enumerate(subtasks):
        rows.setdefault(subtask, []).append(k)
    return rows


def _generate(
    ctx: UnitContext, selections: Sequence[Selection], lines: bool
) -> Iterator[Any]:
    """Records of one scene (their JSONL lines if ``lines``): geometry and answers per subtask
    in one pass, then text.

    Records are made per subtask in batches (:meth:`RecordMaker.records_without_points`, or
    :meth:`RecordMaker.lines_without_points`) of at most :data:`_CHUNK` consecutive
    selections, and yielded in the order of ``selections``.
    """
    unit, size = _unit_records(ctx, selections, lines)
    frame_image = FrameImages(ctx)
    frame_image.link_all(
        f for pair, good in zip(unit.frame_pairs, unit.ok, strict=True) if good for f in pair
    )
    image_of = dict(frame_image.known)
    makers = {
        subtask: RecordMaker(
            seed=ctx.seed, split=ctx.split, subtask=subtask, source=ctx.unit.source,
            scene_or_clip=ctx.unit.name,
        )
        for subtask in dict.fromkeys(unit.subtasks)
    }
    for start in range(0, len(selections), _CHUNK):
        chunk = range(start, min(start + _CHUNK, len(selections)))
        batches: dict[str, list[int]] = {}
        for k in chunk:
            if unit.ok[k]:
                batches.setdefault(unit.subtasks[k], []).append(k)
        made: list[Any] = [None] * len(chunk)
        for subtask, rows in batches.items():
            pairs = _take(unit.frame_pairs, rows)
            metas = _take(unit.metas, rows)
            maker = makers[subtask]
            make = maker.lines_without_points if lines else maker.records_without_points
            records = make(
                pairs,
                [[image_of[a], image_of[b]] for a, b in pairs],
                size,
                _take(unit.texts, rows),
                _take(unit.gts, rows),
                _META_LAYOUT.members(metas) if lines else metas,
            )
            for k, record in zip(rows, records, strict=True):
                made[k - start] = record
        for k, record in zip(chunk, made, strict=True):
            if record is None:
                ctx.skip(f"{unit.subtasks[k]}:dead_zone_at_generate")
            else:
                yield record


def _take(column: list[Any], rows: list[int]) -> list[Any]:
    """``[column[k] for k in rows]`` (``rows`` ascending: a slice when they are consecutive)."""
    if rows and rows[-1] - rows[0] == len(rows) - 1:
        return column[rows[0] : rows[-1] + 1]
    return [column[k] for k in rows]


def _pair_positions(
    frame_index: np.ndarray, path: Path, frame_pairs: Sequence[tuple[int, ...]]
) -> tuple[list[int], list[int]]:
    """Kept-frame positions of the first and of the second frame of each pair.

    The same positions as :func:`_positions` (the first position holding the frame), looked up
    in a dictionary: cheaper than the array search for one scene's selections.

    Raises CacheError naming the cache folder if a frame is not a kept frame.
    """
    position_of: dict[int, int] = {}
    for position, frame in enumerate(frame_index.tolist()):
        position_of.setdefault(frame, position)
    try:
        return [position_of[a] for a, _ in frame_pairs], [position_of[b] for _, b in frame_pairs]
    except KeyError as missing:
        if not position_of:
            raise CacheError(
                f"{path}: selected frame {missing.args[0]} but no kept frames"
            ) from None
        raise CacheError(
            f"{path}: selected frame {missing.args[0]} is not among the kept frames "
            f"of frame_index.npy"
        ) from None


def _rows(motion: CameraMotion, rows: list[int]) -> CameraMotion:
    """The motions of pairs ``rows``."""
    return CameraMotion(motion.t_m[rows], motion.dyaw_deg[rows], motion.dpitch_deg[rows])

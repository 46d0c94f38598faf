"""ScanNet annotation files: ``<scene>.txt``, aggregation, segments, label map
(docs/data-formats.md#scannet-raw, #label-map).

Each reader takes a path, parses the whole file and raises :class:`~multispa.errors.FormatError`
naming the file (and the key, object or segment) when the content does not follow the format.
:func:`build_instances` turns segment groups into per-vertex instance ids without a per-vertex
Python loop.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multispa.errors import FormatError, MissingFileError
from multispa.scenes.types import Intrinsics, SceneObject

logger = logging.getLogger(__name__)

#: ScanNet's colour and depth sizes, used when ``<scene>.txt`` does not state them.
DEFAULT_COLOR_SIZE = (1296, 968)
DEFAULT_DEPTH_SIZE = (640, 480)

_INTRINSIC_KEYS = ("fx", "fy", "mx", "my")


@dataclass(frozen=True)
class SceneMeta:
    """Content of ``<scene>.txt`` that the loader uses.

    Attributes:
        axis_alignment: ``(4, 4)`` float64 A with aligned = A @ raw; identity when absent.
        has_axis_alignment: whether the file had an ``axisAlignment`` key.
        color_size: ``(width, height)`` from ``colorWidth``/``colorHeight``, pixels, or None.
        depth_size: ``(width, height)`` from ``depthWidth``/``depthHeight``, pixels, or None.
        color_intrinsics: from ``fx_color``, ``fy_color``, ``mx_color``, ``my_color`` at
            ``color_size`` (1296×968 when the size keys are absent), or None.
        depth_intrinsics: the same with ``_depth`` keys (640×480 default size), or None.
        num_color_frames: ``numColorFrames`` (frames of the original stream), or None.
        path: the file read, or None for the defaults of a missing file.
    """

    axis_alignment: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float64))
    has_axis_alignment: bool = False
    color_size: tuple[int, int] | None = None
    depth_size: tuple[int, int] | None = None
    color_intrinsics: Intrinsics | None = None
    depth_intrinsics: Intrinsics | None = None
    num_color_frames: int | None = None
    path: Path | None = None


@dataclass(frozen=True)
class SegGroup:
    """One ``segGroups`` entry of an aggregation file.

    Attributes:
        object_id: ``objectId`` (0-based).
        label: raw ScanNet category.
        segments: ``(s,)`` int64 segment ids of the object's over-segmentation.
    """

    object_id: int
    label: str
    segments: np.ndarray


def _read_text(path: Path) -> str:
    """Read a UTF-8 text file, mapping absence and decoding problems to project errors."""
    if not path.is_file():
        raise MissingFileError(path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _parse_number(path: Path, key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise FormatError(path, f"key {key!r}: expected a number, found {value!r}") from None
    if not math.isfinite(number):
        raise FormatError(path, f"key {key!r}: expected a finite number, found {value!r}")
    return number


def _parse_size(path: Path, entries: Mapping[str, str], prefix: str) -> tuple[int, int] | None:
    width_key, height_key = f"{prefix}Width", f"{prefix}Height"
    present = [k for k in (width_key, height_key) if k in entries]
    if not present:
        return None
    if len(present) == 1:
        missing = height_key if present[0] == width_key else width_key
        raise FormatError(path, f"has {present[0]!r} but no {missing!r}")
    size = []
    for key in (width_key, height_key):
        number = _parse_number(path, key, entries[key])
        if number != int(number) or number <= 0:
            raise FormatError(path, f"key {key!r}: expected a positive integer, found {number!r}")
        size.append(int(number))
    return size[0], size[1]


def _parse_intrinsics(
    path: Path, entries: Mapping[str, str], suffix: str, size: tuple[int, int]
) -> Intrinsics | None:
    keys = [f"{name}_{suffix}" for name in _INTRINSIC_KEYS]
    present = [k for k in keys if k in entries]
    if not present:
        return None
    if len(present) != len(keys):
        missing = [k for k in keys if k not in entries]
        raise FormatError(path, f"has {present} but lacks {missing} (all four are needed)")
    fx, fy, cx, cy = (_parse_number(path, k, entries[k]) for k in keys)
    return Intrinsics(fx, fy, cx, cy, size[0], size[1])


def parse_axis_alignment(path: Path, value: str) -> np.ndarray:
    """Parse the ``axisAlignment`` value: 16 finite numbers, row-major → ``(4, 4)`` float64."""
    tokens = value.split()
    if len(tokens) != 16:
        raise FormatError(path, f"axisAlignment: expected 16 numbers, found {len(tokens)}")
    try:
        numbers = [float(t) for t in tokens]
    except ValueError:
        raise FormatError(path, f"axisAlignment: non-numeric value in {value.strip()!r}") from None
    matrix = np.array(numbers, dtype=np.float64).reshape(4, 4)
    if not np.isfinite(matrix).all():
        raise FormatError(path, f"axisAlignment: non-finite value in {value.strip()!r}")
    return matrix


def parse_scene_meta(text: str, path: Path) -> SceneMeta:
    """Parse the ``key = value`` lines of a ``<scene>.txt`` (``path`` is used in messages)."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            entries[key.strip()] = value.strip()
    has_alignment = "axisAlignment" in entries
    alignment = (
        parse_axis_alignment(path, entries["axisAlignment"])
        if has_alignment
        else np.eye(4, dtype=np.float64)
    )
    color_size = _parse_size(path, entries, "color")
    depth_size = _parse_size(path, entries, "depth")
    num_color_frames = None
    if "numColorFrames" in entries:
        count = _parse_number(path, "numColorFrames", entries["numColorFrames"])
        if count != int(count) or count < 0:
            raise FormatError(
                path, f"key 'numColorFrames': expected an integer >= 0, found {count!r}"
            )
        num_color_frames = int(count)
    return SceneMeta(
        axis_alignment=alignment,
        has_axis_alignment=has_alignment,
        color_size=color_size,
        depth_size=depth_size,
        color_intrinsics=_parse_intrinsics(
            path, entries, "color", color_size or DEFAULT_COLOR_SIZE
        ),
        depth_intrinsics=_parse_intrinsics(
            path, entries, "depth", depth_size or DEFAULT_DEPTH_SIZE
        ),
        num_color_frames=num_color_frames,
        path=path,
    )


def read_scene_meta(path: Path) -> SceneMeta:
    """Read ``<scene>.txt``; see :class:`SceneMeta`. Missing file → MissingFileError."""
    path = Path(path)
    return parse_scene_meta(_read_text(path), path)


def _load_json(path: Path) -> Any:
    text = _read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(
            path, f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def _int_array(path: Path, what: str, values: Any) -> np.ndarray:
    """A JSON list of integers → ``(n,)`` int64, or FormatError naming ``what``."""
    if not isinstance(values, list):
        found = type(values).__name__
        raise FormatError(path, f"{what}: expected a list of integers, found {found}")
    if not values:
        return np.zeros(0, dtype=np.int64)
    if not all(type(v) is int for v in values):
        bad = next(v for v in values if type(v) is not int)
        raise FormatError(path, f"{what}: expected integers, found {bad!r}")
    try:
        return np.asarray(values, dtype=np.int64)
    except OverflowError:
        raise FormatError(path, f"{what}: integer out of the int64 range") from None


def read_segs(path: Path) -> np.ndarray:
    """Read ``segIndices`` of a ``*.segs.json``: ``(P,)`` int64 segment id per mesh vertex."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or "segIndices" not in data:
        raise FormatError(path, "expected a JSON object with a 'segIndices' key")
    return _int_array(path, "segIndices", data["segIndices"])


def read_aggregation(path: Path) -> list[SegGroup]:
    """Read the ``segGroups`` of ``<scene>.aggregation.json`` in file order.

    Each group needs ``objectId`` (non-negative integer, unique), ``label`` (string) and
    ``segments`` (list of integers).
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("segGroups"), list):
        raise FormatError(path, "expected a JSON object with a 'segGroups' list")
    groups: list[SegGroup] = []
    seen: set[int] = set()
    for position, entry in enumerate(data["segGroups"]):
        where = f"segGroups[{position}]"
        if not isinstance(entry, dict):
            raise FormatError(path, f"{where}: expected an object, found {type(entry).__name__}")
        missing = [k for k in ("objectId", "label", "segments") if k not in entry]
        if missing:
            raise FormatError(path, f"{where}: missing key(s) {missing}")
        object_id, label = entry["objectId"], entry["label"]
        if type(object_id) is not int or object_id < 0:
            raise FormatError(
                path, f"{where}: objectId must be an integer >= 0, found {object_id!r}"
            )
        if not isinstance(label, str):
            raise FormatError(path, f"{where}: label must be a string, found {label!r}")
        if object_id in seen:
            raise FormatError(path, f"{where}: objectId {object_id} appears more than once")
        seen.add(object_id)
        segments = _int_array(path, f"{where} (objectId {object_id}) segments", entry["segments"])
        groups.append(SegGroup(object_id, label, segments))
    return groups


def drop_duplicate_groups(groups: Sequence[SegGroup]) -> tuple[list[SegGroup], int]:
    """Drop exact duplicate segment groups (rule (n)), keeping the first of each, in file order.

    Two groups are duplicates when they have the same label and the same **set** of segments
    (order and repeats ignored); their ``objectId`` differs. Real ``scene0217_00`` repeats its
    whole ``segGroups`` list: without this the later copies win every segment and every label
    looks repeated.

    Returns:
        The groups kept and the number dropped.
    """
    seen: set[tuple[str, bytes]] = set()
    kept: list[SegGroup] = []
    for group in groups:
        key = (group.label, np.unique(group.segments).tobytes())
        if key in seen:
            continue
        seen.add(key)
        kept.append(group)
    return kept, len(groups) - len(kept)


def build_instances(
    seg_indices: np.ndarray,
    groups: Sequence[SegGroup],
    num_vertices: int,
    *,
    label_map: Mapping[str, str] | None = None,
    segs_path: Path | None = None,
    aggregation_path: Path | None = None,
) -> tuple[np.ndarray, tuple[SceneObject, ...], int]:
    """Assign every mesh vertex to the object whose group holds its segment.

    A segment listed by several groups goes to the **later** group in file order (as upstream);
    each such segment counts as one conflict and is logged.

    Args:
        seg_indices: ``(P,)`` int segment id per vertex (from :func:`read_segs`).
        groups: segment groups in file order (from :func:`read_aggregation`).
        num_vertices: P, the mesh's vertex count.
        label_map: raw category → NYU40 class, fills ``SceneObject.nyu40_class``.
        segs_path, aggregation_path: the files, for error messages.

    Returns:
        ``instance_ids`` ``(P,)`` int32 objectId per vertex (-1: unannotated), the objects in
        ascending ``object_id`` with their ``(n,)`` int64 ascending ``vertex_indices`` (possibly
        empty when every segment went to later groups), and the number of conflicting segments.
    """
    segs_path = Path(segs_path) if segs_path is not None else Path("<segs>")
    aggregation_path = Path(aggregation_path) if aggregation_path is not None else Path("<agg>")
    seg_indices = np.asarray(seg_indices, dtype=np.int64)
    if seg_indices.ndim != 1 or seg_indices.shape[0] != num_vertices:
        raise FormatError(
            segs_path,
            f"segIndices has {seg_indices.size} entries but the mesh has {num_vertices} vertices",
        )
    present = np.unique(seg_indices)
    object_ids = np.array([g.object_id for g in groups], dtype=np.int64)
    lengths = np.array([g.segments.size for g in groups], dtype=np.int64)
    claimed = (
        np.concatenate([g.segments for g in groups]) if groups else np.zeros(0, dtype=np.int64)
    )
    owner = np.repeat(np.arange(len(groups), dtype=np.int64), lengths)

    absent = ~np.isin(claimed, present)
    if absent.any():
        first = int(np.flatnonzero(absent)[0])
        group = groups[int(owner[first])]
        raise FormatError(
            aggregation_path,
            f"objectId {group.object_id} ({group.label!r}) lists segment {int(claimed[first])}, "
            f"which no vertex of {segs_path.name} has ({int(absent.sum())} such segment "
            f"reference(s) in all)",
        )

    # Conflicts: segments claimed by two or more distinct groups.
    conflict_segments = np.zeros(0, dtype=np.int64)
    if claimed.size:
        pairs = np.unique(np.stack([claimed, owner], axis=1), axis=0)
        seg_of_pair, pair_counts = np.unique(pairs[:, 0], return_counts=True)
        conflict_segments = seg_of_pair[pair_counts > 1]
    if conflict_segments.size:
        logger.warning(
            "%s: %d segment(s) belong to several objects; the later group wins (e.g. segment %d)",
            aggregation_path,
            conflict_segments.size,
            int(conflict_segments[0]),
        )

    # Last claim wins: take each segment's last occurrence in file order.
    reversed_claims = claimed[::-1]
    table, first_in_reversed = np.unique(reversed_claims, return_index=True)
    winner = owner[::-1][first_in_reversed]
    instance_ids = np.full(num_vertices, -1, dtype=np.int32)
    if table.size:
        pos = np.searchsorted(table, seg_indices)
        pos_clipped = np.minimum(pos, table.size - 1)
        hit = table[pos_clipped] == seg_indices
        instance_ids[hit] = object_ids[winner[pos_clipped[hit]]].astype(np.int32)

    order = np.argsort(instance_ids, kind="stable")
    sorted_ids = instance_ids[order]
    objects: list[SceneObject] = []
    for group in sorted(groups, key=lambda g: g.object_id):
        lo, hi = np.searchsorted(sorted_ids, [group.object_id, group.object_id + 1])
        nyu40 = label_map.get(group.label) if label_map is not None else None
        objects.append(
            SceneObject(group.object_id, group.label, order[lo:hi].astype(np.int64), nyu40)
        )
    return instance_ids, tuple(objects), int(conflict_segments.size)


def read_label_map(path: Path) -> dict[str, str]:
    """Read ``scannetv2-labels.combined.tsv``: raw category → NYU40 class name.

    The file is tab-separated with a header row holding ``raw_category`` and ``nyu40class``.
    """
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(text.splitlines(), delimiter="\t")
    header = next(reader, None)
    if header is None:
        raise FormatError(path, "empty file (expected a header row)")
    columns = [c.strip() for c in header]
    missing = [c for c in ("raw_category", "nyu40class") if c not in columns]
    if missing:
        raise FormatError(path, f"header lacks column(s) {missing}; found {columns}")
    raw_col, nyu_col = columns.index("raw_category"), columns.index("nyu40class")
    needed = max(raw_col, nyu_col) + 1
    mapping: dict[str, str] = {}
    for line_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < needed:
            raise FormatError(
                path, f"line {line_number}: expected at least {needed} columns, found {len(row)}"
            )
        mapping[row[raw_col]] = row[nyu_col]
    return mapping

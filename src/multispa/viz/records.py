"""Records of a DATASET or BENCH folder, found by id, with their image files.

Two folder kinds are read:

- a DATASET (``multispa generate``): ``<split>/<task>/<subtask>[.adt|.pstudio].jsonl`` with
  ``split`` in ``train``/``val``, one record per line, images under ``images/``;
- a BENCH (``multispa bench build``): ``bench.jsonl``, one item per line
  (:func:`multispa.evaluate.bench.item_to_record` maps it back to a record), images under
  ``images/``. Its records are reported under the split name ``"bench"``.

Looking a record up reads the file its id names first (ids are
``{split}-{subtask}-{src}-...``, docs/data-formats.md#record-ids), comparing only the id at the
start of each line before parsing JSON, then every other file. An unknown id raises
:class:`RecordNotFoundError` naming the folder and suggesting the closest ids.
"""

from __future__ import annotations

import difflib
import heapq
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from multispa.errors import DatasetError, FormatError, MissingFileError
from multispa.evaluate.bench import item_to_record
from multispa.jsonl import iter_jsonl_lines, parse_jsonl_object
from multispa.metrics.rows import benchmark_key
from multispa.tasks.templates import BENCHMARK_SUBTASKS, SUBTASKS

__all__ = [
    "BENCH_SPLIT",
    "SPLITS",
    "FoundRecord",
    "RecordNotFoundError",
    "RecordSource",
    "find_record",
    "key_of_file",
]

_log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val")
#: The split name under which a BENCH folder's items are reported.
BENCH_SPLIT = "bench"
_BENCH_ITEMS = "bench.jsonl"
_IMAGES = "images"
_ID_PREFIX = re.compile(r'^\{\s*"id"\s*:\s*"([^"\\]*)"')
_SOURCE_SUFFIX = {"adt": "adt", "pstudio": "pstudio"}
_KEY_ORDER = {key: index for index, key in enumerate(BENCHMARK_SUBTASKS)}
#: Ids compared with difflib when suggesting close ids (prefiltered by common prefix length).
_SUGGESTION_POOL = 400


class RecordNotFoundError(DatasetError):
    """No record with the requested id; ``suggestions`` holds the closest ids (best first)."""

    def __init__(self, folder: Path, record_id: str, searched: int,
                 suggestions: list[str]) -> None:
        self.record_id = record_id
        self.suggestions = suggestions
        hint = (f"; close ids: {', '.join(suggestions)}" if suggestions
                else "; no similar id found")
        super().__init__(folder, f"no record with id {record_id!r} among {searched} records"
                                 f"{hint}")


@dataclass(frozen=True)
class FoundRecord:
    """One record and where it came from.

    Attributes:
        record: the record (a BENCH item is mapped back by ``item_to_record``).
        images: absolute paths of its images, in prompt order.
        path: the JSONL file holding it.
        line: its 1-based line number there.
        split: ``"train"``, ``"val"`` or ``"bench"``.
        root: the DATASET or BENCH folder it was found in (None when built by hand).
    """

    record: dict[str, Any]
    images: tuple[Path, ...]
    path: Path
    line: int
    split: str
    root: Path | None = None

    @property
    def key(self) -> str:
        """The benchmark-subtask key (``subtask`` or ``subtask:adt`` / ``subtask:pstudio``)."""
        return benchmark_key(self.record)


def key_of_file(path: Path) -> str | None:
    """Benchmark key of a dataset file named ``<subtask>[.adt|.pstudio].jsonl``; None if the name
    is not one (e.g. ``camera_x_direction.jsonl`` → ``camera_x_direction``,
    ``object_movement_vector_dot.adt.jsonl`` → ``object_movement_vector_dot:adt``)."""
    if path.suffix != ".jsonl":
        return None
    subtask, _, source = path.name[: -len(".jsonl")].partition(".")
    if subtask not in SUBTASKS:
        return None
    if not source:
        return subtask
    suffix = _SOURCE_SUFFIX.get(source)
    return f"{subtask}:{suffix}" if suffix else None


def _key_rank(key: str) -> int:
    return _KEY_ORDER.get(key, len(_KEY_ORDER))


def _line_id(line: str) -> str | None:
    """The id at the start of a JSONL line (fast path), or None when the line does not start so."""
    match = _ID_PREFIX.match(line)
    return match.group(1) if match else None


class RecordSource:
    """A DATASET or BENCH folder (module docstring).

    Args:
        root: the folder.

    Raises:
        MissingFileError: ``root`` does not exist.
        DatasetError: it is neither kind of folder.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingFileError(self.root, "folder not found (expected a dataset written by "
                                              "multispa generate or a bench folder)")
        self.images_root = self.root / _IMAGES
        if (self.root / _BENCH_ITEMS).is_file():
            self.kind = "bench"
        elif self._dataset_files():
            self.kind = "dataset"
        else:
            raise DatasetError(self.root, "neither a dataset folder (train/<task>/<subtask>.jsonl "
                                          "or val/<task>/<subtask>.jsonl) nor a bench folder "
                                          "(bench.jsonl)")

    # ---------------------------------------------------------------------------- listing

    def _dataset_files(self) -> list[tuple[str, str, Path]]:
        files = []
        for split in SPLITS:
            for path in sorted((self.root / split).glob("*/*.jsonl")):
                key = key_of_file(path)
                if key is None:
                    _log.warning("%s: not a <subtask>[.adt|.pstudio].jsonl file; skipped", path)
                    continue
                files.append((split, key, path))
        files.sort(key=lambda entry: (SPLITS.index(entry[0]), _key_rank(entry[1]), entry[2]))
        return files

    @property
    def splits(self) -> tuple[str, ...]:
        """The split names this folder reports: ``("train", "val")`` or ``("bench",)``."""
        return (BENCH_SPLIT,) if self.kind == "bench" else SPLITS

    def files(self) -> list[tuple[str, str, Path]]:
        """``(split, key, path)`` per dataset file (split, then benchmark-key order); for a BENCH
        one entry ``("bench", "*", bench.jsonl)``."""
        if self.kind == "bench":
            return [(BENCH_SPLIT, "*", self.root / _BENCH_ITEMS)]
        return self._dataset_files()

    def _to_record(self, path: Path, number: int, obj: dict[str, Any]) -> dict[str, Any]:
        if self.kind != "bench":
            return obj
        try:
            return item_to_record(obj)
        except (KeyError, TypeError):
            raise FormatError(path, f"line {number}: not a benchmark item (needs id, image, text, "
                                    "answer, gt, answer_type, task, subtask, width_list, "
                                    "height_list, meta)") from None

    def _key_of(self, path: Path, number: int, record: Mapping[str, Any]) -> str:
        try:
            return benchmark_key(record)
        except (KeyError, ValueError) as exc:
            raise FormatError(path, f"line {number}: no benchmark key ({exc})") from None

    def iter_records(self, *, limit_per_key: int | None = None
                     ) -> Iterator[tuple[str, str, Path, int, dict[str, Any]]]:
        """``(split, key, path, line, record)`` for every record (or the first ``limit_per_key``
        of each (split, key)), files in :meth:`files` order.

        Raises:
            FormatError: a line is not JSON or not a record.
        """
        for split, file_key, path in self.files():
            seen: dict[str, int] = {}
            for number, line in iter_jsonl_lines(path):
                record = self._to_record(path, number, parse_jsonl_object(path, number, line))
                key = file_key if file_key != "*" else self._key_of(path, number, record)
                if limit_per_key is not None and seen.get(key, 0) >= limit_per_key:
                    if file_key != "*":
                        break
                    continue
                seen[key] = seen.get(key, 0) + 1
                yield split, key, path, number, record

    def counts(self) -> dict[str, dict[str, int]]:
        """Records per split and benchmark key (non-blank lines of each dataset file; for a BENCH,
        items per key). Keys in benchmark order; only keys with a file or an item appear."""
        counts: dict[str, dict[str, int]] = {split: {} for split in self.splits}
        if self.kind == "bench":
            for split, key, *_ in self.iter_records():
                counts[split][key] = counts[split].get(key, 0) + 1
        else:
            for split, key, path in self.files():
                lines = sum(1 for _ in iter_jsonl_lines(path))
                counts[split][key] = counts[split].get(key, 0) + lines
        return {split: dict(sorted(by_key.items(), key=lambda kv: _key_rank(kv[0])))
                for split, by_key in counts.items()}

    def ids(self, split: str) -> dict[str, list[str]]:
        """Record ids per benchmark key of ``split`` (file order), keys in benchmark order."""
        by_key: dict[str, list[str]] = {}
        for file_split, file_key, path in self.files():
            if file_split != split:
                continue
            if file_key == "*":
                for _, key, _, _, record in self.iter_records():
                    by_key.setdefault(key, []).append(str(record.get("id")))
                continue
            ids = by_key.setdefault(file_key, [])
            for number, line in iter_jsonl_lines(path):
                rid = _line_id(line)
                ids.append(rid if rid is not None
                           else str(parse_jsonl_object(path, number, line).get("id")))
        return dict(sorted(by_key.items(), key=lambda kv: _key_rank(kv[0])))

    # ---------------------------------------------------------------------------- look-up

    def _candidate_files(self, record_id: str) -> list[tuple[str, str, Path]]:
        """All files, the one the id names first (from the id layout)."""
        files = self.files()
        parts = record_id.split("-")
        if self.kind == "bench" or len(parts) < 3 or parts[1] not in SUBTASKS:
            return files
        subtask = parts[1]
        key = f"{subtask}:{parts[2]}" if parts[2] in _SOURCE_SUFFIX else subtask
        preferred = [f for f in files if f[0] == parts[0] and f[1] == key]
        return preferred + [f for f in files if f not in preferred]

    def find_many(self, record_ids: set[str] | frozenset[str]) -> dict[str, FoundRecord]:
        """The records with these ids that exist (missing ones are left out)."""
        wanted = set(record_ids)
        found: dict[str, FoundRecord] = {}
        for split, _, path in self.files():
            if not wanted:
                break
            for number, line in iter_jsonl_lines(path):
                rid = _line_id(line)
                if rid is not None and rid not in wanted:
                    continue
                record = self._to_record(path, number, parse_jsonl_object(path, number, line))
                rid = record.get("id")
                if isinstance(rid, str) and rid in wanted:
                    wanted.discard(rid)
                    found[rid] = self._found(record, path, number, split)
        return found

    def find(self, record_id: str) -> FoundRecord:
        """The record with id ``record_id``.

        Raises:
            RecordNotFoundError: no such id (the message suggests close ids).
            FormatError: a file read on the way is malformed, or the record's image paths are.
            MissingFileError: one of its images is missing.
        """
        searched = 0
        for split, _, path in self._candidate_files(record_id):
            for number, line in iter_jsonl_lines(path):
                searched += 1
                rid = _line_id(line)
                if rid is not None and rid != record_id:
                    continue
                record = self._to_record(path, number, parse_jsonl_object(path, number, line))
                if record.get("id") == record_id:
                    return self._found(record, path, number, split)
        raise RecordNotFoundError(self.root, record_id, searched, self.suggest(record_id))

    def suggest(self, record_id: str, count: int = 5) -> list[str]:
        """Up to ``count`` ids closest to ``record_id`` (difflib ratio ≥ 0.5, best first)."""

        def common_prefix(other: str) -> int:
            n = 0
            for a, b in zip(record_id, other, strict=False):
                if a != b:
                    break
                n += 1
            return n

        pool: list[tuple[int, str]] = []
        for split in self.splits:
            for ids in self.ids(split).values():
                for rid in ids:
                    entry = (common_prefix(rid), rid)
                    if len(pool) < _SUGGESTION_POOL:
                        heapq.heappush(pool, entry)
                    elif entry > pool[0]:
                        heapq.heapreplace(pool, entry)
        candidates = sorted(rid for _, rid in pool)
        return difflib.get_close_matches(record_id, candidates, n=count, cutoff=0.5)

    def _found(self, record: dict[str, Any], path: Path, number: int, split: str) -> FoundRecord:
        rid = record.get("id")
        images = record.get("image")
        if isinstance(images, str):
            images = [images]
        if not (isinstance(images, list) and images and all(isinstance(p, str) for p in images)):
            raise FormatError(path, f"line {number}: record {rid}: 'image' must be a non-empty "
                                    f"list of paths, found {images!r}")
        paths = []
        for k, relative in enumerate(images):
            pure = PurePosixPath(relative)
            if pure.is_absolute() or ".." in pure.parts or not pure.parts:
                raise FormatError(path, f"line {number}: record {rid}: image path {relative!r} "
                                        "must be relative to images/ without '..'")
            image = self.images_root.joinpath(*pure.parts)
            if not image.is_file():
                raise MissingFileError(image, f"image {k + 1} of record {rid} not found")
            paths.append(image)
        return FoundRecord(record=record, images=tuple(paths), path=path, line=number,
                           split=split, root=self.root)


def find_record(source: str | Path, record_id: str) -> FoundRecord:
    """The record ``record_id`` of the DATASET or BENCH folder ``source`` (see
    :meth:`RecordSource.find`)."""
    return RecordSource(source).find(record_id)

"""The frozen benchmark: ``multispa bench build`` and the loader every evaluation reads.

A BENCH folder is self-contained and relocatable::

    BENCH/manifest.json   format, content_sha256, counts per benchmark-subtask key, source, seed,
                          per_subtask, multispa_version
    BENCH/bench.jsonl     one item per line, sorted by (key in BENCHMARK_SUBTASKS order, id)
    BENCH/images/...      the items' images, same relative paths as in the dataset

An item is a record (docs/data-formats.md#records) with the two conversation turns flattened into
``text`` (the human turn, ``<image>`` tokens included) and ``answer`` (the gpt turn);
:func:`item_to_record` maps it back. Items come only from the dataset's ``val`` split: per key, up
to ``per_subtask`` items drawn uniformly without replacement (from the pool sorted by id, with
``rng_for(seed, "bench", key)``).

``content_sha256`` (:func:`bench_content_sha256`) is SHA-256 over ``bench.jsonl`` and then every
referenced image in sorted path order, each entry fed as ``<name>\\n<byte length>\\n<bytes>``, so it
changes when any item or any image byte changes and not when the folder moves.

Images are hard-linked when the file system allows it (else copied): a hard link shares its
bytes with the dataset's file, so edit neither in place.

Leakage: building fails when the room of a benchmark ScanNet scan (``scene0011`` for
``scene0011_01``: rescans of a room show the same place), or the sequence of a benchmark
TAPVid-3D clip (clip id minus its trailing ``_k``, per subset), also appears in the dataset's
``train`` split; the error names them.

Distractors: building fails when a val record's ``meta.difficulty`` (correspondence MCQ) is not
``easy``: the benchmark is defined with easy distractors.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from multispa import __version__
from multispa.errors import ConfigError, DatasetError, FormatError, MissingFileError
from multispa.fs import check_output_dir, naming, output_folder
from multispa.jsonl import iter_jsonl_objects, parse_jsonl_object
from multispa.lock import LOCK_NAME
from multispa.metrics.rows import benchmark_key
from multispa.scenes.splits import room_of
from multispa.scenes.tapvid3d import sequence_of
from multispa.tasks.base import rng_for
from multispa.tasks.templates import BENCHMARK_SUBTASKS, SUBTASKS

__all__ = [
    "BENCH_FORMAT",
    "DEFAULT_PER_SUBTASK",
    "BenchBuildSummary",
    "bench_content_sha256",
    "build_bench",
    "item_to_record",
    "load_bench",
    "load_bench_manifest",
    "record_to_item",
    "train_units",
    "verify_bench",
]

BENCH_FORMAT = "multispa-bench/1"
DEFAULT_PER_SUBTASK = 300
MANIFEST_NAME = "manifest.json"
ITEMS_NAME = "bench.jsonl"
IMAGES_NAME = "images"
_ID_PREFIX = re.compile(r'^\{\s*"id"\s*:\s*"([^"\\]+)"')
_SOURCE_OF_CODE = {"scannet": "scannet", "adt": "tapvid3d/adt", "pstudio": "tapvid3d/pstudio"}
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class BenchBuildSummary:
    """What :func:`build_bench` wrote.

    Attributes:
        out: the BENCH folder.
        counts: items selected per benchmark-subtask key (all 26 keys, in order; 0 if missing).
        available: val items found per key (the pool sizes).
        per_subtask: the cap per key.
        missing_keys: keys without any val item.
        short_keys: keys with fewer than ``per_subtask`` items (missing keys excluded).
        content_sha256: the manifest's content hash.
        images: distinct image files; ``linked`` of them hard-linked, ``copied`` copied.
        warnings: human-readable warnings (short and missing keys, no train split).
    """

    out: Path
    counts: dict[str, int]
    available: dict[str, int]
    per_subtask: int
    missing_keys: tuple[str, ...]
    short_keys: tuple[str, ...]
    content_sha256: str
    images: int
    linked: int
    copied: int
    warnings: tuple[str, ...] = field(default=())

    @property
    def items(self) -> int:
        """Total items in the benchmark."""
        return sum(self.counts.values())


# ------------------------------------------------------------------------------ item <-> record


def record_to_item(record: Mapping[str, Any], source: str | Path = "<record>") -> dict[str, Any]:
    """A record as a benchmark item (the two turns become ``text`` and ``answer``).

    Raises:
        FormatError: the record lacks a field or its conversations are not human then gpt.
    """
    rid = record.get("id")
    missing = [name for name in ("id", "image", "conversations", "height_list", "width_list",
                                 "task", "subtask", "answer_type", "gt", "meta")
               if name not in record]
    if missing:
        raise FormatError(source, f"record {rid!r}: missing fields {missing}")
    turns = record["conversations"]
    if not (isinstance(turns, list) and len(turns) == 2
            and all(isinstance(t, Mapping) for t in turns)
            and [t.get("from") for t in turns] == ["human", "gpt"]
            and all(isinstance(t.get("value"), str) for t in turns)):
        raise FormatError(source, f"record {rid}: conversations must be a human turn then a gpt "
                                  "turn with string values")
    images = record["image"]
    if isinstance(images, str):
        images = [images]
    if not (isinstance(images, list) and images and all(isinstance(p, str) for p in images)):
        raise FormatError(source, f"record {rid}: 'image' must be a non-empty list of paths, "
                                  f"found {record['image']!r}")
    return {
        "id": rid,
        "image": list(images),
        "text": turns[0]["value"],
        "answer": turns[1]["value"],
        "gt": record["gt"],
        "answer_type": record["answer_type"],
        "task": record["task"],
        "subtask": record["subtask"],
        "width_list": record["width_list"],
        "height_list": record["height_list"],
        "meta": record["meta"],
    }


def item_to_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """The record form of a benchmark item, as the scorer expects it."""
    return {
        "id": item["id"],
        "image": list(item["image"]),
        "conversations": [
            {"from": "human", "value": item["text"]},
            {"from": "gpt", "value": item["answer"]},
        ],
        "height_list": item["height_list"],
        "width_list": item["width_list"],
        "task": item["task"],
        "subtask": item["subtask"],
        "answer_type": item["answer_type"],
        "gt": item["gt"],
        "meta": item["meta"],
    }


# ------------------------------------------------------------------------------------ reading


def _split_files(dataset: Path, split: str) -> list[Path]:
    return sorted((dataset / split).glob("*/*.jsonl"))


def _key_of(record: Mapping[str, Any], path: Path, number: int) -> str:
    subtask = record.get("subtask")
    if subtask not in SUBTASKS:
        raise FormatError(path, f"line {number}: unknown subtask {subtask!r}")
    try:
        return benchmark_key(record)
    except ValueError as exc:
        raise FormatError(path, f"line {number}: {exc}") from None


def _unit_of(record: Mapping[str, Any], path: Path, where: str) -> tuple[str, str]:
    """``(source, scene or clip sequence)`` of a record; ``where`` names it in errors."""
    meta = record.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    source = meta.get("source")
    if source == "scannet":
        scene = meta.get("scene")
        if not isinstance(scene, str):
            raise FormatError(path, f"{where}: ScanNet record without meta.scene")
        return source, scene
    if source in ("tapvid3d/adt", "tapvid3d/pstudio"):
        clip = meta.get("clip")
        if not isinstance(clip, str):
            raise FormatError(path, f"{where}: TAPVid-3D record without meta.clip")
        return source, sequence_of(clip)
    raise FormatError(path, f"{where}: unknown meta.source {source!r}")


def _unit_from_id(rid: str) -> tuple[str, str] | None:
    """``(source, scene or clip sequence)`` from a record id (docs/data-formats.md#record-ids), None
    when it does not parse.

    Ids are ``{split}-{subtask}-{src}-{scene_or_clip}-{frames}-{h}``; only the scene or clip may
    itself hold a ``-``.
    """
    parts = rid.split("-")
    if len(parts) < 6 or parts[1] not in SUBTASKS or parts[2] not in _SOURCE_OF_CODE:
        return None
    unit = "-".join(parts[3:-2])
    source = _SOURCE_OF_CODE[parts[2]]
    return source, unit if source == "scannet" else sequence_of(unit)


def train_units(dataset: str | Path) -> dict[str, set[str]] | None:
    """Scenes and clip sequences of the dataset's ``train`` split, by ``meta.source``.

    Reads ``DATASET/train/*/*.jsonl``; the unit is taken from each record's id (no full JSON
    parse), falling back to its ``meta`` when the id does not follow the record-id layout. Returns
    None when the dataset has no train split.
    """
    files = _split_files(Path(dataset), "train")
    if not files:
        return None
    units: dict[str, set[str]] = {}
    for path in files:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                match = _ID_PREFIX.match(line)
                unit = _unit_from_id(match.group(1)) if match else None
                if unit is None:
                    obj = parse_jsonl_object(path, number, line)
                    unit = _unit_of(obj, path, f"line {number}")
                units.setdefault(unit[0], set()).add(unit[1])
    return units


def _check_leakage(
    items: Sequence[Mapping[str, Any]], train: Mapping[str, set[str]], dataset: Path,
) -> None:
    """Raise when a benchmark ScanNet room or TAPVid-3D sequence also appears in training.

    ScanNet units are compared by room (:func:`~multispa.scenes.splits.room_of`), so a
    benchmark scan whose rescan was trained on counts, as does the same scan.
    """
    def unit_key(source: str, unit: str) -> str:
        return room_of(unit) if source == "scannet" else unit

    seen = {(source, unit_key(source, unit)) for source, units in train.items() for unit in units}
    bench_units = {_unit_of(i, dataset, f"val record {i['id']}") for i in items}
    leaked = sorted({f"{source}:{unit_key(source, unit)}" for source, unit in bench_units
                     if (source, unit_key(source, unit)) in seen})
    if leaked:
        shown = ", ".join(leaked[:10]) + (" ..." if len(leaked) > 10 else "")
        raise DatasetError(dataset, f"{len(leaked)} benchmark ScanNet room(s) or TAPVid-3D "
                                    f"sequence(s) also appear in the train split: {shown}")


def _check_difficulty(record: Mapping[str, Any], path: Path, number: int) -> None:
    """Refuse a val record whose MCQ distractors are not ``easy`` (the benchmark's)."""
    meta = record.get("meta")
    if isinstance(meta, Mapping) and "difficulty" in meta and meta["difficulty"] != "easy":
        raise DatasetError(path, f"line {number}: record {record.get('id')} has "
                                 f"meta.difficulty {meta['difficulty']!r}; the benchmark uses "
                                 "easy distractors only (regenerate the val split)")


# ----------------------------------------------------------------------------------- building


def _safe_relative(path: str, source: Path, rid: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise FormatError(source, f"record {rid}: image path {path!r} must be relative, without "
                                  "'..'")
    return rel


def _place_image(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` at ``dst`` (copy when linking fails); True when linked."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
        return True
    except OSError:
        shutil.copyfile(src, dst)
        return False


def _clear_previous(out: Path) -> None:
    """Make the (locked) ``out`` ready: empty, or a previous benchmark (whose files are
    removed)."""
    entries = [entry for entry in out.iterdir() if entry.name != LOCK_NAME]
    if not entries:
        return
    manifest = out / MANIFEST_NAME
    try:
        previous = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        previous = None
    if not (isinstance(previous, dict) and previous.get("format") == BENCH_FORMAT):
        raise ConfigError(f"--out {out} is not empty and holds no benchmark; choose an empty "
                          "or new folder")
    for entry in entries:
        if entry.name == IMAGES_NAME and entry.is_dir():
            shutil.rmtree(entry)
        elif entry.name in (MANIFEST_NAME, ITEMS_NAME) or entry.name.startswith(".tmp-"):
            entry.unlink()


def _item_line(item: Mapping[str, Any]) -> str:
    return json.dumps(item, ensure_ascii=False, separators=(", ", ": "))


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` through ``.tmp-<name>``, fsynced, then renamed."""
    tmp = path.with_name(f".tmp-{path.name}")
    try:
        with tmp.open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:  # a full disk, an interrupt: leave no temporary
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise naming(error, tmp) from None
        raise


def build_bench(
    dataset: str | Path, out: str | Path, *, per_subtask: int = DEFAULT_PER_SUBTASK, seed: int = 0,
) -> BenchBuildSummary:
    """Freeze a benchmark from the dataset's ``val`` split (see the module docstring).

    Args:
        dataset: a folder written by ``multispa generate`` (``val/<task>/*.jsonl``, ``images/``).
        out: the BENCH folder; created, or rebuilt when it holds a previous benchmark.
        per_subtask: the most items per benchmark-subtask key.
        seed: seeds the per-key uniform selection.

    Raises:
        MissingFileError: no val split, or an image the items reference is missing.
        FormatError: a val record is malformed or duplicated.
        DatasetError: a benchmark ScanNet room or clip sequence appears in the train split, or
            a val record has distractors other than easy.
        ConfigError: bad ``per_subtask`` or an ``out`` that is neither empty nor a benchmark.
        OutputError, LockError: ``out`` cannot be written, or another process writes it.
    """
    dataset, out = Path(dataset), Path(out)
    check_output_dir(out)
    if per_subtask < 1:
        raise ConfigError(f"--per-subtask must be at least 1, got {per_subtask}")
    files = _split_files(dataset, "val")
    if not files:
        raise MissingFileError(dataset / "val", "no val split (expected val/<task>/*.jsonl, "
                                                "written by multispa generate --split val)")
    if dataset.resolve() == out.resolve() or dataset.resolve() in out.resolve().parents:
        raise ConfigError(f"--out {out} must not lie inside the dataset {dataset}")
    pools: dict[str, list[dict[str, Any]]] = {key: [] for key in BENCHMARK_SUBTASKS}
    seen: set[str] = set()
    for path in files:
        for number, record in iter_jsonl_objects(path):
            item = record_to_item(record, f"{path}:{number}")
            rid = item["id"]
            if not isinstance(rid, str) or not rid:
                raise FormatError(path, f"line {number}: 'id' must be a non-empty string")
            if rid in seen:
                raise FormatError(path, f"line {number}: duplicate id {rid}")
            seen.add(rid)
            split = (item["meta"] or {}).get("split") if isinstance(item["meta"], dict) else None
            if split != "val":
                raise FormatError(path, f"line {number}: record {rid} has meta.split {split!r}, "
                                        "expected 'val'")
            _check_difficulty(record, path, number)
            pools[_key_of(record, path, number)].append(item)

    selected: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for key in BENCHMARK_SUBTASKS:
        pool = sorted(pools[key], key=lambda it: it["id"])
        if len(pool) > per_subtask:
            picks = rng_for(seed, "bench", key).choice(len(pool), size=per_subtask, replace=False)
            pool = sorted((pool[int(i)] for i in picks), key=lambda it: it["id"])
        counts[key] = len(pool)
        selected.extend(pool)
    available = {key: len(pools[key]) for key in BENCHMARK_SUBTASKS}
    missing_keys = tuple(k for k in BENCHMARK_SUBTASKS if counts[k] == 0)
    short_keys = tuple(k for k in BENCHMARK_SUBTASKS if 0 < counts[k] < per_subtask)

    warnings: list[str] = []
    train = train_units(dataset)
    if train is None:
        warnings.append(f"{dataset} has no train split: the train/benchmark leakage check "
                        "was skipped")
    else:
        _check_leakage(selected, train, dataset)

    images_src = dataset / IMAGES_NAME
    relpaths: dict[PurePosixPath, str] = {}
    for item in selected:
        for path in item["image"]:
            relpaths.setdefault(_safe_relative(path, dataset, item["id"]), item["id"])
    for rel, rid in relpaths.items():
        if not (images_src / rel).is_file():
            raise MissingFileError(images_src / rel, f"image of record {rid} not found")

    with output_folder(out, "multispa bench build"):
        _clear_previous(out)
        linked = copied = 0
        for rel in sorted(relpaths):
            if _place_image(images_src / rel, out / IMAGES_NAME / rel):
                linked += 1
            else:
                copied += 1
        write_text_atomic(out / ITEMS_NAME, "".join(_item_line(item) + "\n" for item in selected))
        content = bench_content_sha256(out, items=selected)
        for key in short_keys:
            warnings.append(f"{key}: {counts[key]} items, fewer than {per_subtask}")
        if missing_keys:
            warnings.append(f"{len(missing_keys)} benchmark key(s) have no val item: "
                            + ", ".join(missing_keys))
        manifest = {
            "format": BENCH_FORMAT,
            "content_sha256": content,
            "content_sha256_rule": "sha256 over bench.jsonl then images in sorted path order, each "
                                   "fed as <name>\\n<byte length>\\n<bytes>",
            "counts": counts,
            "items": len(selected),
            "images": len(relpaths),
            "available": available,
            "missing_keys": list(missing_keys),
            "short_keys": list(short_keys),
            "source": str(dataset.resolve()),
            "seed": seed,
            "per_subtask": per_subtask,
            "leakage_check": "skipped: no train split" if train is None else "passed",
            "multispa_version": __version__,
        }
        write_text_atomic(out / MANIFEST_NAME,
                          json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
        return BenchBuildSummary(
            out=out, counts=counts, available=available, per_subtask=per_subtask,
            missing_keys=missing_keys, short_keys=short_keys, content_sha256=content,
            images=len(relpaths), linked=linked, copied=copied, warnings=tuple(warnings),
        )


# ------------------------------------------------------------------------------------ loading


def _feed(digest: Any, name: str, path: Path) -> None:
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except FileNotFoundError:
        raise MissingFileError(path, "benchmark file not found") from None
    digest.update(f"{name}\n{size}\n".encode())
    with handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)


def bench_content_sha256(
    bench: str | Path, *, items: Iterable[Mapping[str, Any]] | None = None,
) -> str:
    """Recompute a BENCH folder's content hash (rule in the module docstring).

    Args:
        bench: the BENCH folder.
        items: its items when already in memory (else read from ``bench.jsonl``).
    """
    bench = Path(bench)
    if items is None:
        items = _load_items(bench)
    names = sorted({PurePosixPath(p) for item in items for p in item["image"]})
    digest = hashlib.sha256()
    _feed(digest, ITEMS_NAME, bench / ITEMS_NAME)
    for name in names:
        _feed(digest, f"{IMAGES_NAME}/{name}", bench / IMAGES_NAME / name)
    return digest.hexdigest()


def load_bench_manifest(bench: str | Path) -> dict[str, Any]:
    """``BENCH/manifest.json``, checked for the benchmark format.

    Raises:
        MissingFileError: no manifest (not a BENCH folder).
        FormatError: not JSON, or another format.
    """
    bench = Path(bench)
    if bench.exists() and not bench.is_dir():
        raise FormatError(bench, "is a file, expected a BENCH folder (multispa bench build)")
    path = bench / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(path, "not a benchmark folder (run multispa bench build)") \
            from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(path, f"not JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BENCH_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise FormatError(path, f"format {found!r}, expected {BENCH_FORMAT!r}")
    if not isinstance(manifest.get("content_sha256"), str):
        raise FormatError(path, "no content_sha256")
    return manifest


def _load_items(bench: Path) -> list[dict[str, Any]]:
    path = bench / ITEMS_NAME
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, item in iter_jsonl_objects(path):
        rid = item.get("id")
        for name in ("image", "text", "subtask", "answer_type", "gt"):
            if name not in item:
                raise FormatError(path, f"line {number}: item {rid!r} has no {name!r}")
        if not isinstance(rid, str) or rid in seen:
            raise FormatError(path, f"line {number}: missing or duplicate id {rid!r}")
        seen.add(rid)
        items.append(item)
    return items


def load_bench(bench: str | Path) -> list[dict[str, Any]]:
    """The items of a BENCH folder, in file order (key order, then id).

    Checks the manifest and that the item count matches it; :func:`verify_bench` also checks
    the content hash.

    Raises:
        MissingFileError, FormatError: not a valid BENCH folder.
    """
    bench = Path(bench)
    manifest = load_bench_manifest(bench)
    items = _load_items(bench)
    expected = manifest.get("items")
    if isinstance(expected, int) and expected != len(items):
        raise FormatError(bench / ITEMS_NAME, f"{len(items)} items, the manifest says {expected}")
    return items


def verify_bench(bench: str | Path) -> str:
    """Recompute the content hash and compare it with the manifest; return it.

    Raises:
        FormatError: the hash differs (an item or image changed).
    """
    bench = Path(bench)
    manifest = load_bench_manifest(bench)
    actual = bench_content_sha256(bench, items=load_bench(bench))
    if actual != manifest["content_sha256"]:
        raise FormatError(bench, f"content_sha256 {actual} differs from the manifest's "
                                 f"{manifest['content_sha256']}: the benchmark was modified")
    return actual

"""InternVL export: meta JSON files for the official InternVL2 fine-tuning script.

The dataset's records already are InternVL multi-image conversation lines
(docs/data-formats.md#records), and ``multispa generate`` writes ``DS/meta_<split>.json`` with paths
relative to ``DS``. The official script (``internvl_chat_finetune.py --meta_path META``) opens
``root`` and ``annotation`` relative to its own working directory, so :func:`export_internvl` writes
the same entries with **absolute** paths into ``OUT``::

    OUT/meta_train.json       {name: {"root", "annotation", "data_augment", "repeat_time",
    OUT/meta_val.json                 "length"}} for every non-empty subtask file of the split
    OUT/multispa_export.json  format, options, source dataset, image folder, counts

- names are the dataset's (``train_camera_movement_camera_yaw_degree``,
  ``train_object_movement_object_movement_vector_dot.adt``...);
- ``root`` is ``DS/images/`` (absolute, trailing slash), ``annotation`` the absolute path of the
  subtask's ``.jsonl`` in ``DS`` (the records are used in place, not copied);
- ``data_augment`` is ``false``; ``repeat_time`` is ``repeat_time`` (default 1; InternVL
  repeats an entry ``repeat_time`` times, and samples that fraction of it when below 1);
- ``length`` is the number of records, counted while every record and image is checked.

Re-export after moving the dataset. :func:`read_internvl` reads a meta file and its annotation
files back.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import Any

from multispa.errors import ConfigError, FormatError
from multispa.formats.dataset_export import (
    EXPORT_MANIFEST,
    ExportResult,
    Sample,
    StagedOutput,
    check_out_dir,
    export_manifest,
)
from multispa.formats.dataset_source import SPLITS, DatasetSource, open_dataset
from multispa.jsonl import iter_jsonl_objects, read_json_file

__all__ = ["export_internvl", "internvl_meta", "meta_name", "read_internvl"]


def meta_name(annotation: str) -> str:
    """The entry name of a subtask file: ``train/depth/depth_estimation_dot.jsonl`` →
    ``train_depth_depth_estimation_dot`` (as ``multispa generate`` names it)."""
    return PurePosixPath(annotation).with_suffix("").as_posix().replace("/", "_")


def _repeat_time(value: float) -> int | float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"repeat_time={value!r}: expected a number > 0") from None
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"repeat_time={value!r}: expected a finite number > 0")
    return int(number) if number.is_integer() else number


def internvl_meta(source: DatasetSource, lengths: dict[str, int],
                  repeat_time: int | float = 1) -> dict[str, dict[str, Any]]:
    """Meta entries (module docstring) for ``{file relative to DS: records}``, sorted by file.

    Files with no records are left out.
    """
    root = str(source.images_root) + os.sep
    return {
        meta_name(name): {
            "root": root,
            "annotation": str(source.root / name),
            "data_augment": False,
            "repeat_time": repeat_time,
            "length": length,
        }
        for name, length in sorted(lengths.items())
        if length
    }


def export_internvl(dataset: str | Path, out: str | Path, *, split: str = "all",
                    repeat_time: float = 1) -> ExportResult:
    """Write ``OUT/meta_<split>.json`` for each split, after checking every record and image.

    Raises:
        ConfigError: ``repeat_time`` not a finite number > 0, or a bad ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    repeat = _repeat_time(repeat_time)
    source = open_dataset(dataset)
    splits = source.resolve_splits(split)
    out_dir = check_out_dir(source, out)
    counts: dict[str, int] = {}
    replaces = [f"meta_{name}.json" for name in SPLITS] + [EXPORT_MANIFEST]
    with StagedOutput(out_dir, replaces) as stage:
        for name in splits:
            lengths: Counter[str] = Counter({rel: 0 for rel, _ in source.files(name)})
            for item in source.records(name):
                lengths[item.path.relative_to(source.root).as_posix()] += 1
            counts[name] = sum(lengths.values())
            meta = internvl_meta(source, dict(lengths), repeat)
            stage.path(f"meta_{name}.json").write_text(
                json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        stage.path(EXPORT_MANIFEST).write_text(export_manifest(
            "internvl", source, counts, {name: [f"meta_{name}.json"] for name in splits},
            {"repeat_time": repeat}), encoding="utf-8")
    notes = tuple(f"InternVL: --meta_path {out_dir / f'meta_{name}.json'}" for name in splits)
    return ExportResult("internvl", out_dir, counts, tuple(stage.final), source.images_root,
                        notes)


def read_internvl(meta_path: str | Path) -> list[Sample]:
    """The samples of every entry of a meta file, entry by entry, line order; images absolute.

    Raises:
        MissingFileError: no meta file or annotation file.
        FormatError: a malformed meta file or annotation line, or a ``length`` that differs from
            the annotation's line count.
    """
    meta_path = Path(meta_path)
    meta = read_json_file(meta_path)
    if not isinstance(meta, dict):
        raise FormatError(meta_path, "expected an object of named entries")
    samples: list[Sample] = []
    for name, entry in meta.items():
        try:
            root, annotation = str(entry["root"]), Path(entry["annotation"])
            length = int(entry["length"])
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(meta_path, f"entry {name!r}: bad entry ({exc!r})") from None
        found = 0
        for number, record in iter_jsonl_objects(
                annotation, missing=f"annotation of entry {name!r} not found"):
            try:
                human, gpt = record["conversations"]
                image = record["image"]
                images = [image] if isinstance(image, str) else list(image)
                samples.append(Sample(str(record["id"]), str(human["value"]), str(gpt["value"]),
                                      tuple(os.path.join(root, str(rel)) for rel in images)))
            except (KeyError, TypeError, ValueError) as exc:
                raise FormatError(annotation, f"line {number}: not an InternVL record "
                                              f"({exc!r})") from None
            found += 1
        if found != length:
            raise FormatError(meta_path, f"entry {name!r}: length {length}, but {annotation} "
                                         f"has {found} records")
    return samples

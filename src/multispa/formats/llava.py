"""LLaVA / ShareGPT export: one JSON list per split.

Layout written by :func:`export_llava` (``multispa export --dataset DS --format llava``) into
``OUT``::

    OUT/train.json            a JSON array, one entry per record, dataset order
    OUT/val.json
    OUT/multispa_export.json  format, options, source dataset, image folder, counts

Each entry is ``{"id", "image", "conversations"}``: ``conversations`` is the record's own
``[{"from": "human", "value": ...}, {"from": "gpt", "value": ...}]`` unchanged, so the
``<image>`` placeholders stay where the record has them (``"<image>\\n..."`` for one image,
``"Image-1: <image>\\nImage-2: <image>\\n..."`` for two). ``image`` is a path string for a
one-image record (what LLaVA-1.5 reads) and a list of paths in prompt order for a multi-image
record (what the multi-image LLaVA-NeXT / OneVision training code reads).

Image paths are relative to the dataset's image folder ``DS/images`` by default: pass it to
LLaVA as ``--image_folder DS/images`` (the path is also in ``multispa_export.json``).
``image_paths="absolute"`` writes absolute paths instead (LLaVA joins them unchanged).
:func:`read_llava` reads a split file back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from multispa.errors import FormatError
from multispa.formats.dataset_export import (
    EXPORT_MANIFEST,
    IMAGE_PATH_STYLES,
    ExportResult,
    Sample,
    StagedOutput,
    check_out_dir,
    check_style,
    export_manifest,
    image_reference,
)
from multispa.formats.dataset_source import SPLITS, DatasetSource, SourceRecord, open_dataset
from multispa.jsonl import read_json_file

__all__ = ["export_llava", "llava_entry", "read_llava"]


def llava_entry(source: DatasetSource, item: SourceRecord,
                image_paths: str = "relative") -> dict[str, Any]:
    """The LLaVA entry of one record (module docstring)."""
    images = [image_reference(source, rel, image_paths) for rel in item.images]
    return {
        "id": item.id,
        "image": images[0] if len(images) == 1 else images,
        "conversations": [
            {"from": "human", "value": item.question},
            {"from": "gpt", "value": item.answer},
        ],
    }


def export_llava(dataset: str | Path, out: str | Path, *, split: str = "all",
                 image_paths: str = "relative") -> ExportResult:
    """Write ``OUT/<split>.json`` for each split of ``split`` (``train``, ``val`` or ``all``).

    Raises:
        ConfigError: bad ``image_paths`` or ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    check_style("image_paths", image_paths, IMAGE_PATH_STYLES)
    source = open_dataset(dataset)
    splits = source.resolve_splits(split)
    out_dir = check_out_dir(source, out)
    counts: dict[str, int] = {}
    replaces = [f"{name}.json" for name in SPLITS] + [EXPORT_MANIFEST]
    with StagedOutput(out_dir, replaces) as stage:
        for name in splits:
            counts[name] = 0
            with stage.path(f"{name}.json").open("w", encoding="utf-8") as handle:
                handle.write("[")
                for item in source.records(name):
                    handle.write("\n" if counts[name] == 0 else ",\n")
                    entry = llava_entry(source, item, image_paths)
                    handle.write(json.dumps(entry, ensure_ascii=False))
                    counts[name] += 1
                handle.write("\n]\n" if counts[name] else "]\n")
        stage.path(EXPORT_MANIFEST).write_text(export_manifest(
            "llava", source, counts, {name: [f"{name}.json"] for name in splits},
            {"image_paths": image_paths}), encoding="utf-8")
    note = f"LLaVA: --data_path {out_dir}/<split>.json"
    if image_paths == "relative":
        note += f" --image_folder {source.images_root}"
    return ExportResult("llava", out_dir, counts, tuple(stage.final), source.images_root,
                        (note,))


def read_llava(path: str | Path) -> list[Sample]:
    """The samples of one exported split file, in file order.

    Raises:
        MissingFileError: no such file.
        FormatError: not a JSON list of LLaVA entries (entry number, what is wrong).
    """
    path = Path(path)
    data = read_json_file(path)
    if not isinstance(data, list):
        raise FormatError(path, f"expected a JSON list of entries, found {type(data).__name__}")
    samples = []
    for number, entry in enumerate(data, start=1):
        try:
            image = entry["image"]
            images = (image,) if isinstance(image, str) else tuple(str(p) for p in image)
            human, gpt = entry["conversations"]
            if human["from"] != "human" or gpt["from"] != "gpt":
                raise ValueError("turns are not human then gpt")
            samples.append(Sample(str(entry["id"]), str(human["value"]), str(gpt["value"]),
                                  images))
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(path, f"entry {number}: not a LLaVA entry ({exc!r})") from None
    return samples

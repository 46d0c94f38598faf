"""Hugging Face ``datasets`` Parquet export with the images embedded (written with pyarrow).

Layout written by :func:`export_hf_parquet` (``multispa export --dataset DS --format
hf-parquet``) into ``OUT``::

    OUT/data/train-00000-of-00003.parquet       shards of at most ``max_shard_bytes`` (about;
    OUT/data/train-00001-of-00003.parquet       500 MB by default, at least one record each),
    OUT/data/train-00002-of-00003.parquet       row groups of 100 rows
    OUT/data/validation-00000-of-00001.parquet  the ``val`` split, as HF names it
    OUT/README.md                               dataset card: YAML ``configs``, columns, counts
    OUT/multispa_export.json                    format, options, source dataset, counts

Both ``datasets.load_dataset("OUT")`` (through the card's ``configs``) and
``datasets.load_dataset("parquet", data_dir="OUT/data")`` give the splits ``train`` and
``validation``, with the same features: every file carries the ``huggingface`` schema metadata
(:func:`hf_features`) that declares ``images`` a list of ``Image`` features, so images decode to
``PIL`` images (``cast_column("images", List(Image(decode=False)))`` gives the bytes).

Columns, one row per record, dataset order:

- ``id`` (string); ``images``: list of ``{"bytes", "path"}`` — the original image files'
  bytes (JPEG as generated, not re-encoded) and their path relative to ``DS/images``, prompt
  order;
- ``messages``: ``[{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]``,
  content a string with ``<image>`` tags (default) or TRL's typed parts (``content="parts"``,
  :mod:`multispa.formats.messages`; image parts have ``text`` null);
- ``question`` (the human turn with its ``<image>`` tags) and ``answer`` (the assistant turn);
- ``task``, ``subtask``, ``answer_type`` (strings); ``width_list``, ``height_list`` (int32
  lists, original pixel sizes);
- ``gt`` and ``meta``: JSON text (their shapes vary between records, which one Arrow column
  cannot hold); ``json.loads`` gives the record's values.

:func:`read_hf_parquet` reads a split back with pyarrow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from multispa import __version__
from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.formats.dataset_export import (
    EXPORT_MANIFEST,
    ExportResult,
    Sample,
    StagedOutput,
    check_out_dir,
    check_style,
    export_manifest,
)
from multispa.formats.dataset_source import SPLITS, DatasetSource, SourceRecord, open_dataset
from multispa.formats.messages import CONTENT_STYLES, content_text, to_messages

__all__ = [
    "CARD_NAME",
    "DEFAULT_MAX_SHARD_BYTES",
    "HF_SPLITS",
    "ROW_GROUP_ROWS",
    "ShardWriter",
    "arrow_schema",
    "dataset_card",
    "export_hf_parquet",
    "hf_features",
    "read_hf_parquet",
    "write_parquet_export",
]

#: multispa split → Hugging Face split name (also the shard file prefix).
HF_SPLITS: dict[str, str] = {"train": "train", "val": "validation"}

#: Target shard size in bytes (Hugging Face's default ``max_shard_size``, 500 MB).
DEFAULT_MAX_SHARD_BYTES = 500_000_000

#: Rows per Parquet row group (what ``datasets`` uses for image data).
ROW_GROUP_ROWS = 100

CARD_NAME = "README.md"

_STRING = {"dtype": "string", "_type": "Value"}
_INT32 = {"dtype": "int32", "_type": "Value"}


def hf_features(content: str = "string") -> dict[str, Any]:
    """The ``datasets`` features of the columns (``Features.to_dict`` form), lists written as
    one-element JSON lists, the form every ``datasets`` version reads."""
    message_content: Any = _STRING if content == "string" else [
        {"type": _STRING, "text": _STRING}]
    return {
        "id": _STRING,
        "images": [{"_type": "Image"}],
        "messages": [{"role": _STRING, "content": message_content}],
        "question": _STRING,
        "answer": _STRING,
        "task": _STRING,
        "subtask": _STRING,
        "answer_type": _STRING,
        "width_list": [_INT32],
        "height_list": [_INT32],
        "gt": _STRING,
        "meta": _STRING,
    }


def arrow_schema(content: str = "string") -> pa.Schema:
    """The Arrow schema of the shards, with the ``huggingface`` metadata of :func:`hf_features`."""
    text = pa.string()
    message_content = text if content == "string" else pa.list_(
        pa.struct([("type", text), ("text", text)]))
    fields = [
        ("id", text),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", text)]))),
        ("messages", pa.list_(pa.struct([("role", text), ("content", message_content)]))),
        ("question", text),
        ("answer", text),
        ("task", text),
        ("subtask", text),
        ("answer_type", text),
        ("width_list", pa.list_(pa.int32())),
        ("height_list", pa.list_(pa.int32())),
        ("gt", text),
        ("meta", text),
    ]
    metadata = {"huggingface": json.dumps({"info": {"features": hf_features(content)}})}
    return pa.schema(fields, metadata=metadata)


def _row(source: DatasetSource, item: SourceRecord, content: str) -> tuple[dict[str, Any], int]:
    """One row and its approximate size in bytes."""
    images = [{"bytes": source.image_path(rel).read_bytes(), "path": rel} for rel in item.images]
    record = item.record
    row = {
        "id": item.id,
        "images": images,
        "messages": to_messages(item.question, item.answer, content),
        "question": item.question,
        "answer": item.answer,
        "task": record["task"],
        "subtask": record["subtask"],
        "answer_type": record["answer_type"],
        "width_list": record["width_list"],
        "height_list": record["height_list"],
        "gt": json.dumps(record["gt"], ensure_ascii=False),
        "meta": json.dumps(record["meta"], ensure_ascii=False),
    }
    text_bytes = 2 * (len(item.question) + len(item.answer)) + len(row["meta"]) + 64
    return row, sum(len(image["bytes"]) for image in images) + text_bytes


class ShardWriter:
    """Writes one split's rows into numbered staged shards, renamed ``-of-N`` at the end."""

    def __init__(self, stage: StagedOutput, prefix: str, schema: pa.Schema,
                 max_shard_bytes: int, row_group_rows: int) -> None:
        self.stage, self.prefix, self.schema = stage, prefix, schema
        self.max_shard_bytes, self.row_group_rows = max_shard_bytes, row_group_rows
        self.shards: list[str] = []
        self._writer: pq.ParquetWriter | None = None
        self._rows: list[dict[str, Any]] = []
        self._shard_bytes = 0

    def add(self, row: dict[str, Any], nbytes: int) -> None:
        if self._writer is not None and self._shard_bytes >= self.max_shard_bytes:
            self._close_shard()
        if self._writer is None:
            name = f"data/{self.prefix}-{len(self.shards):05d}.parquet.part"
            self._writer = pq.ParquetWriter(self.stage.path(name), self.schema)
            self.shards.append(name)
            self._shard_bytes = 0
        self._rows.append(row)
        self._shard_bytes += nbytes
        if len(self._rows) >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._rows and self._writer is not None:
            table = pa.Table.from_pylist(self._rows, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.row_group_rows)
            self._rows = []

    def _close_shard(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def finish(self) -> list[str]:
        """Close the last shard; rename all to ``data/<prefix>-KKKKK-of-NNNNN.parquet``."""
        self._close_shard()
        final = []
        for k, name in enumerate(self.shards):
            new = f"data/{self.prefix}-{k:05d}-of-{len(self.shards):05d}.parquet"
            self.stage.rename(name, new)
            final.append(new)
        return final

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def dataset_card(source: DatasetSource, counts: Mapping[str, int],
                 shards: Mapping[str, list[str]], content: str) -> str:
    """The ``README.md`` dataset card: YAML ``configs`` for the splits written, then prose."""
    data_files = "".join(f"  - split: {HF_SPLITS[split]}\n    path: data/{HF_SPLITS[split]}-*\n"
                         for split in counts)
    rows = "".join(f"| {HF_SPLITS[split]} | {counts[split]} | {len(shards[split])} |\n"
                   for split in counts)
    content_note = ("strings with `<image>` tags" if content == "string" else
                    "TRL's typed parts (`{\"type\": \"image\"}` / `{\"type\": \"text\", "
                    "\"text\": ...}`)")
    return f"""---
configs:
- config_name: default
  data_files:
{data_files}task_categories:
- visual-question-answering
tags:
- multispa
- spatial-reasoning
- multi-image
---

# MultiSPA (exported by multispa {__version__})

Multi-frame spatial question answering (depth, visual correspondence, camera movement, object
movement, object size) in the MultiSPA record format, exported from `{source.root}` with
`multispa export --format hf-parquet`.

| split | records | shards |
|---|---|---|
{rows}
```python
from datasets import load_dataset

ds = load_dataset("path/to/this/folder")          # the configs above
ds = load_dataset("parquet", data_dir="path/to/this/folder/data")  # same splits and features
```

## Columns

- `id`: record id; `images`: the record's images in prompt order (embedded JPEG bytes, decoded
  to PIL images by `datasets`), one per `<image>` tag of the question;
- `messages`: user and assistant turns, content as {content_note};
- `question` (with its `<image>` tags) and `answer`: the two turns as text;
- `task`, `subtask`, `answer_type`, `width_list`, `height_list`;
- `gt`, `meta`: JSON text (`json.loads`): the ground truth in the answer's units and the
  record's provenance (source, scene or clip, frames, points, templates...).

## Terms

The images are frames of ScanNet and TAPVid-3D (Aria Digital Twin, Panoptic Studio) and remain
under those datasets' terms of use: check them before publishing this folder.
"""


def export_hf_parquet(dataset: str | Path, out: str | Path, *, split: str = "all",
                      content: str = "string", max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
                      row_group_rows: int = ROW_GROUP_ROWS) -> ExportResult:
    """Write the Parquet shards, ``README.md`` and the export manifest (module docstring).

    Raises:
        ConfigError: bad ``content``, ``max_shard_bytes`` or ``row_group_rows`` (< 1), or
            ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    check_style("content", content, CONTENT_STYLES)
    return write_parquet_export(
        "hf-parquet", dataset, out, split=split, schema=arrow_schema(content),
        row=lambda source, item: _row(source, item, content),
        card=lambda source, counts, shards: dataset_card(source, counts, shards, content),
        options={"content": content}, max_shard_bytes=max_shard_bytes,
        row_group_rows=row_group_rows)


def write_parquet_export(
    format_name: str, dataset: str | Path, out: str | Path, *, split: str, schema: pa.Schema,
    row: Callable[[DatasetSource, SourceRecord], tuple[dict[str, Any], int]],
    card: Callable[[DatasetSource, Mapping[str, int], Mapping[str, list[str]]], str],
    options: Mapping[str, Any], max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> ExportResult:
    """A sharded Parquet export (the layout of the module docstring) with its own columns.

    Args:
        format_name: the export's format name (manifest, result).
        schema: the shards' Arrow schema (with its ``huggingface`` features metadata).
        row: one record → (row, approximate size in bytes).
        card: the ``README.md`` text from the source, records and shards per split written.
        options: the format's own options for the export manifest.

    Raises:
        ConfigError: ``max_shard_bytes`` or ``row_group_rows`` < 1, or a bad ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    if int(max_shard_bytes) < 1 or int(row_group_rows) < 1:
        raise ConfigError(f"max_shard_bytes={max_shard_bytes}, row_group_rows="
                          f"{row_group_rows}: both must be >= 1")
    source = open_dataset(dataset)
    splits = source.resolve_splits(split)
    out_dir = check_out_dir(source, out)
    counts: dict[str, int] = {}
    shards: dict[str, list[str]] = {}
    replaces = [f"data/{HF_SPLITS[name]}-*-of-*.parquet" for name in SPLITS]
    replaces += [CARD_NAME, EXPORT_MANIFEST]
    with StagedOutput(out_dir, replaces) as stage:
        for name in splits:
            writer = ShardWriter(stage, HF_SPLITS[name], schema, int(max_shard_bytes),
                                 int(row_group_rows))
            try:
                counts[name] = 0
                for item in source.records(name):
                    writer.add(*row(source, item))
                    counts[name] += 1
                shards[name] = writer.finish()
            finally:
                writer.abort()
        written = {name: counts[name] for name in splits if counts[name]}
        stage.path(CARD_NAME).write_text(card(source, written, shards), encoding="utf-8")
        stage.path(EXPORT_MANIFEST).write_text(export_manifest(
            format_name, source, counts, shards,
            {**options, "max_shard_bytes": int(max_shard_bytes),
             "row_group_rows": int(row_group_rows)}), encoding="utf-8")
    notes = (f'datasets: load_dataset("{out_dir}") or load_dataset("parquet", '
             f'data_dir="{out_dir / "data"}")',)
    return ExportResult(format_name, out_dir, counts, tuple(stage.final), source.images_root,
                        notes)


def read_hf_parquet(folder: str | Path, split: str) -> list[Sample]:
    """The samples of one split (``train`` or ``val``) of an exported folder, shard order.

    Questions and answers come from the ``messages`` column; images carry their bytes.

    Raises:
        MissingFileError: no shard of that split.
        FormatError: a shard that is not Parquet or lacks a column.
    """
    folder = Path(folder)
    prefix = HF_SPLITS.get(split, split)
    files = sorted((folder / "data").glob(f"{prefix}-*-of-*.parquet"))
    if not files:
        raise MissingFileError(folder / "data" / f"{prefix}-*.parquet", "no shard of this split")
    samples = []
    for path in files:
        try:
            table = pq.read_table(path, columns=["id", "images", "messages"])
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(path, f"not a readable Parquet shard ({exc})") from None
        for row in table.to_pylist():
            user, assistant = row["messages"]
            samples.append(Sample(
                row["id"], content_text(_parts(user["content"])),
                content_text(_parts(assistant["content"])),
                tuple(image["path"] for image in row["images"]),
                tuple(image["bytes"] for image in row["images"])))
    return samples


def _parts(content: Any) -> Any:
    """Typed parts as Arrow gives them back (``text`` None in image parts) → JSON form."""
    if isinstance(content, str):
        return content
    return [{k: v for k, v in part.items() if v is not None} for part in content]

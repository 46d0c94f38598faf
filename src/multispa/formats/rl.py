"""RL export: prompts, embedded images and ground truth for GRPO with a verifiable reward.

Layout written by :func:`export_rl` (``multispa export --dataset DS --format rl``) into ``OUT``,
the sharded Parquet layout of :mod:`multispa.formats.hf_parquet`::

    OUT/data/train-00000-of-00001.parquet       one row per record, dataset order
    OUT/data/validation-00000-of-00001.parquet  the ``val`` split
    OUT/README.md                               dataset card: YAML ``configs``, columns, usage
    OUT/multispa_export.json                    format, options, source dataset, counts

``datasets.load_dataset("parquet", data_dir="OUT/data")`` (or ``load_dataset("OUT")``) gives
rows that TRL's ``GRPOTrainer`` consumes as they are, with
:func:`multispa.metrics.reward.reward` as the reward function:

- ``prompt``: the conversation to complete, one user message whose content is TRL's typed parts:
  the record's question split at its ``<image>`` tags into text and ``{"type": "image"}`` parts
  (the ``Image-k:`` labels stay text), followed by the answer-format instruction ``multispa
  eval`` appends, so the model is trained on the prompts it is evaluated on;
- ``images``: the record's image files in prompt order, embedded (``datasets`` decodes them to
  PIL images; TRL puts them into the image parts in order);
- ``gt`` (JSON text: ``"left"`` → ``'"left"'``, ``[ 12 , -40 , 300 ]`` → ``'[12, -40, 300]'``),
  ``answer_type``, ``subtask``, ``width_list``, ``height_list`` and ``meta`` (JSON text): what the
  scorer needs to judge a completion, passed by TRL to the reward function as keyword lists;
- ``id``: the record id.

No reference answer is included: GRPO samples its own completions and the reward judges them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from multispa import __version__
from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION
from multispa.formats.dataset_export import ExportResult
from multispa.formats.dataset_source import DatasetSource, SourceRecord
from multispa.formats.hf_parquet import (
    DEFAULT_MAX_SHARD_BYTES,
    HF_SPLITS,
    ROW_GROUP_ROWS,
    write_parquet_export,
)
from multispa.formats.messages import content_parts

__all__ = ["export_rl", "rl_arrow_schema", "rl_features", "rl_prompt"]

_STRING = {"dtype": "string", "_type": "Value"}
_INT32 = {"dtype": "int32", "_type": "Value"}


def rl_features() -> dict[str, Any]:
    """The ``datasets`` features of the columns (``Features.to_dict`` form)."""
    return {
        "id": _STRING,
        "prompt": [{"role": _STRING, "content": [{"type": _STRING, "text": _STRING}]}],
        "images": [{"_type": "Image"}],
        "gt": _STRING,
        "answer_type": _STRING,
        "subtask": _STRING,
        "width_list": [_INT32],
        "height_list": [_INT32],
        "meta": _STRING,
    }


def rl_arrow_schema() -> pa.Schema:
    """The shards' Arrow schema, with the ``huggingface`` metadata of :func:`rl_features`."""
    text = pa.string()
    parts = pa.list_(pa.struct([("type", text), ("text", text)]))
    fields = [
        ("id", text),
        ("prompt", pa.list_(pa.struct([("role", text), ("content", parts)]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", text)]))),
        ("gt", text),
        ("answer_type", text),
        ("subtask", text),
        ("width_list", pa.list_(pa.int32())),
        ("height_list", pa.list_(pa.int32())),
        ("meta", text),
    ]
    metadata = {"huggingface": json.dumps({"info": {"features": rl_features()}})}
    return pa.schema(fields, metadata=metadata)


def rl_prompt(question: str, instruction: str | None = DEFAULT_INSTRUCTION) -> list[dict[str, Any]]:
    """The ``prompt`` column of one record: ``[{"role": "user", "content": parts}]`` for the
    question (``<image>`` tags in place) + ``"\\n"`` + instruction."""
    text = f"{question}\n{instruction}" if instruction else question
    return [{"role": "user", "content": content_parts(text)}]


def _row(source: DatasetSource, item: SourceRecord) -> tuple[dict[str, Any], int]:
    """One row and its approximate size in bytes."""
    images = [{"bytes": source.image_path(rel).read_bytes(), "path": rel} for rel in item.images]
    record = item.record
    row = {
        "id": item.id,
        "prompt": rl_prompt(item.question),
        "images": images,
        "gt": json.dumps(record["gt"], ensure_ascii=False),
        "answer_type": record["answer_type"],
        "subtask": record["subtask"],
        "width_list": record["width_list"],
        "height_list": record["height_list"],
        "meta": json.dumps(record["meta"], ensure_ascii=False),
    }
    text_bytes = 2 * len(item.question) + len(row["meta"]) + 256
    return row, sum(len(image["bytes"]) for image in images) + text_bytes


def rl_card(source: DatasetSource, counts: Mapping[str, int],
            shards: Mapping[str, list[str]]) -> str:
    """The ``README.md`` dataset card: YAML ``configs`` for the splits written, then usage."""
    data_files = "".join(f"  - split: {HF_SPLITS[split]}\n    path: data/{HF_SPLITS[split]}-*\n"
                         for split in counts)
    rows = "".join(f"| {HF_SPLITS[split]} | {counts[split]} | {len(shards[split])} |\n"
                   for split in counts)
    return f"""---
configs:
- config_name: default
  data_files:
{data_files}tags:
- multispa
- spatial-reasoning
- reinforcement-learning
---

# MultiSPA prompts for RL fine-tuning (exported by multispa {__version__})

Exported from `{source.root}` with `multispa export --format rl`: prompts, images and ground
truth for GRPO with multispa's verifiable reward (its benchmark scorer: deterministic, no judge
model).

| split | records | shards |
|---|---|---|
{rows}
```python
from datasets import load_dataset
from transformers import AutoModelForImageTextToText
from trl import GRPOConfig, GRPOTrainer
from multispa.metrics.reward import make_reward
from multispa.models import load_processor

train = load_dataset("parquet", data_dir="path/to/this/folder/data", split="train")
trainer = GRPOTrainer(
    model=AutoModelForImageTextToText.from_pretrained("path/to/model"),
    processing_class=load_processor("path/to/model"), train_dataset=train,
    reward_funcs=make_reward(format_weight=0.1), args=GRPOConfig(output_dir="grpo_out"))
trainer.train()
```

## Columns

- `prompt`: one user message, content as TRL's typed parts (`{{"type": "image"}}` /
  `{{"type": "text", "text": ...}}`): the question with the answer-format instruction;
- `images`: the images in prompt order (embedded bytes, decoded to PIL images by `datasets`);
- `gt`, `meta`: JSON text; `answer_type`, `subtask`, `width_list`, `height_list`: what the
  reward needs to judge a completion (TRL passes these columns to it);
- `id`: record id.

## Terms

The images are frames of ScanNet and TAPVid-3D (Aria Digital Twin, Panoptic Studio) and remain
under those datasets' terms of use: check them before publishing this folder.
"""


def export_rl(dataset: str | Path, out: str | Path, *, split: str = "all",
              max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
              row_group_rows: int = ROW_GROUP_ROWS) -> ExportResult:
    """Write the RL Parquet shards, ``README.md`` and the export manifest (module docstring).

    Raises:
        ConfigError: ``max_shard_bytes`` or ``row_group_rows`` < 1, or a bad ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    return write_parquet_export(
        "rl", dataset, out, split=split, schema=rl_arrow_schema(), row=_row, card=rl_card,
        options={"instruction": DEFAULT_INSTRUCTION}, max_shard_bytes=max_shard_bytes,
        row_group_rows=row_group_rows)

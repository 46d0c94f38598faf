"""OpenAI-style chat-messages export: JSONL per split for TRL, LLaMA-Factory and ms-swift.

Layout written by :func:`export_messages` (``multispa export --dataset DS --format
openai-messages``) into ``OUT``::

    OUT/train.jsonl           one line per record, dataset order
    OUT/val.jsonl
    OUT/dataset_info.json     LLaMA-Factory dataset entries (``content="string"`` only)
    OUT/multispa_export.json  format, options, source dataset, image folder, counts

Each line is ``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content":
...}], "images": [...], "id": ...}``; ``images`` lists the image paths in prompt order, absolute
by default (``image_paths="relative"``: relative to ``DS/images``).

Two content styles:

- ``"string"`` (default): each ``content`` is the text itself, the user turn keeping one
  ``<image>`` tag per image where the record has it
  (``"Image-1: <image>\\nImage-2: <image>\\n..."``).
  This is the messages format of ms-swift (``swift sft --dataset OUT/train.jsonl``) and of
  LLaMA-Factory's sharegpt loader with OpenAI tags: ``dataset_info.json`` declares
  ``multispa_train`` / ``multispa_val`` with ``"formatting": "sharegpt"``, columns ``messages``
  and ``images`` and tags ``role``/``content``/``user``/``assistant``; use ``--dataset_dir OUT
  --dataset multispa_train`` (with relative image paths also ``--media_dir DS/images``).
- ``"parts"``: each ``content`` is a list of typed parts, TRL's vision-language format: the user
  turn is split at its ``<image>`` tags into ``{"type": "text", "text": ...}`` and
  ``{"type": "image"}`` parts in order (``Image-1:`` labels stay as text), the assistant turn is
  ``[{"type": "text", "text": answer}]``. TRL fills each image part with the ``images`` entries
  in order (load them, e.g. ``datasets`` ``Image`` features, before training). With string
  content TRL would put every image before the text instead, losing the interleaving.

:func:`read_messages` reads a split file back (either style; parts are joined back into text with
``<image>`` tags, which gives the record's question exactly).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from multispa.errors import FormatError
from multispa.evaluate.backends.base import IMAGE_TOKEN
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
from multispa.formats.dataset_source import SPLITS, open_dataset
from multispa.jsonl import iter_jsonl_objects

__all__ = [
    "CONTENT_STYLES",
    "LLAMA_FACTORY_INFO",
    "content_parts",
    "content_text",
    "export_messages",
    "llama_factory_info",
    "read_messages",
    "to_messages",
]

#: ``content`` styles: plain text with ``<image>`` tags, or TRL's typed parts.
CONTENT_STYLES: tuple[str, ...] = ("string", "parts")

#: The LLaMA-Factory dataset description file written beside the JSONL files.
LLAMA_FACTORY_INFO = "dataset_info.json"


def content_parts(text: str) -> list[dict[str, str]]:
    """``"Image-1: <image>\\nQ"`` → ``[{"type": "text", "text": "Image-1: "}, {"type":
    "image"}, {"type": "text", "text": "\\nQ"}]`` (empty text pieces are left out)."""
    parts: list[dict[str, str]] = []
    for k, piece in enumerate(text.split(IMAGE_TOKEN)):
        if k:
            parts.append({"type": "image"})
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def content_text(content: str | Sequence[Mapping[str, Any]]) -> str:
    """The text of a ``content`` of either style, image parts written as ``<image>``.

    Raises:
        ValueError: a part that is neither ``image`` nor ``text`` with a string ``text``.
    """
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        kind = part.get("type")
        if kind == "image":
            pieces.append(IMAGE_TOKEN)
        elif kind == "text" and isinstance(part.get("text"), str):
            pieces.append(part["text"])
        else:
            raise ValueError(f"unexpected content part {part!r}")
    return "".join(pieces)


def to_messages(question: str, answer: str, content: str = "string") -> list[dict[str, Any]]:
    """The user and assistant messages of one record in a content style (module docstring)."""
    if content == "parts":
        assistant: list[dict[str, str]] = [{"type": "text", "text": answer}] if answer else []
        return [{"role": "user", "content": content_parts(question)},
                {"role": "assistant", "content": assistant}]
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


def llama_factory_info(splits: Sequence[str]) -> dict[str, Any]:
    """LLaMA-Factory ``dataset_info.json`` entries ``multispa_<split>`` for the JSONL files."""
    return {
        f"multispa_{split}": {
            "file_name": f"{split}.jsonl",
            "formatting": "sharegpt",
            "columns": {"messages": "messages", "images": "images"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant"},
        }
        for split in splits
    }


def export_messages(dataset: str | Path, out: str | Path, *, split: str = "all",
                    content: str = "string", image_paths: str = "absolute") -> ExportResult:
    """Write ``OUT/<split>.jsonl`` for each split (and ``dataset_info.json`` for string content).

    Raises:
        ConfigError: bad ``content``, ``image_paths`` or ``out``.
        MissingFileError, FormatError, DatasetError: a bad dataset (nothing is written then).
    """
    check_style("content", content, CONTENT_STYLES)
    check_style("image_paths", image_paths, IMAGE_PATH_STYLES)
    source = open_dataset(dataset)
    splits = source.resolve_splits(split)
    out_dir = check_out_dir(source, out)
    counts: dict[str, int] = {}
    replaces = [f"{name}.jsonl" for name in SPLITS] + [LLAMA_FACTORY_INFO, EXPORT_MANIFEST]
    with StagedOutput(out_dir, replaces) as stage:
        for name in splits:
            counts[name] = 0
            with stage.path(f"{name}.jsonl").open("w", encoding="utf-8") as handle:
                for item in source.records(name):
                    line = {
                        "messages": to_messages(item.question, item.answer, content),
                        "images": [image_reference(source, rel, image_paths)
                                   for rel in item.images],
                        "id": item.id,
                    }
                    handle.write(json.dumps(line, ensure_ascii=False) + "\n")
                    counts[name] += 1
        if content == "string":
            stage.path(LLAMA_FACTORY_INFO).write_text(
                json.dumps(llama_factory_info(splits), indent=2) + "\n", encoding="utf-8")
        stage.path(EXPORT_MANIFEST).write_text(export_manifest(
            "openai-messages", source, counts, {name: [f"{name}.jsonl"] for name in splits},
            {"content": content, "image_paths": image_paths}), encoding="utf-8")
    notes = []
    if content == "string":
        notes.append(f"LLaMA-Factory: --dataset_dir {out_dir} --dataset "
                     + ",".join(f"multispa_{name}" for name in splits))
    if image_paths == "relative":
        notes.append(f"image paths are relative to {source.images_root}")
    return ExportResult("openai-messages", out_dir, counts, tuple(stage.final),
                        source.images_root, tuple(notes))


def read_messages(path: str | Path) -> list[Sample]:
    """The samples of one exported ``.jsonl`` split file (either content style), file order.

    Raises:
        MissingFileError: no such file.
        FormatError: a line that is not a user + assistant messages object (line number).
    """
    path = Path(path)
    samples = []
    for number, obj in iter_jsonl_objects(path):
        try:
            user, assistant = obj["messages"]
            if user["role"] != "user" or assistant["role"] != "assistant":
                raise ValueError("roles are not user then assistant")
            samples.append(Sample(
                str(obj.get("id", f"line-{number}")), content_text(user["content"]),
                content_text(assistant["content"]), tuple(str(p) for p in obj["images"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(path, f"line {number}: not a messages line ({exc!r})") from None
    return samples

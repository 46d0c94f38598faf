"""Record assembly, ids and validation (spec §6.1): the one place that shapes a record.

A record is a plain dict in the InternVL multi-image conversation format, extended with
``task``, ``subtask``, ``answer_type``, ``gt`` and ``meta``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from multispa.errors import MultispaError
from multispa.tasks.answers import format_value
from multispa.tasks.templates import SUBTASKS, RenderedPrompt

_SOURCE_CODES = {"scannet": "scannet", "tapvid3d/adt": "adt", "tapvid3d/pstudio": "pstudio"}
_BACKTICK_SPAN = re.compile(r"`([^`]*)`")


class RecordError(MultispaError):
    """A record breaks the §6.1 contract (a bug in a generator, never bad user input)."""


def source_code(source: str) -> str:
    """``src`` of the id: ``scannet``, ``adt`` or ``pstudio`` (other TAPVid subsets: their name)."""
    return _SOURCE_CODES.get(source, source.rsplit("/", 1)[-1])


def pixel_points(points: Sequence[Sequence[Sequence[float]]]) -> list[list[list[float]]]:
    """``meta.points`` form: per image, ``[u, v]`` pixels as floats with 2 decimals."""
    return [[[round(float(u), 2), round(float(v), 2)] for u, v in image] for image in points]


def record_id(
    *,
    split: str,
    subtask: str,
    source: str,
    scene_or_clip: str,
    frames: Sequence[int],
    points: Sequence[Sequence[Sequence[float]]],
    object_id: int | None = None,
    track: int | None = None,
    ask: str | None = None,
    reversed_pair: bool = False,
) -> str:
    """``{split}-{subtask}-{src}-{scene_or_clip}-{frames}-{h}`` (spec §6.1).

    ``h`` is the first 10 hex digits of SHA-256 over the canonical JSON of the sample key
    (split, subtask, source, scene or clip, frames, points with 2 decimals, object id or track,
    ask, reversal flag).
    """
    key = {
        "split": split,
        "subtask": subtask,
        "source": source,
        "scene_or_clip": scene_or_clip,
        "frames": [int(f) for f in frames],
        "points": pixel_points(points),
        "object_id": object_id,
        "track": track,
        "ask": ask,
        "reversed": bool(reversed_pair),
    }
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    frame_text = "_".join(f"{int(f):05d}" for f in frames)
    return f"{split}-{subtask}-{source_code(source)}-{scene_or_clip}-{frame_text}-{digest}"


def build_record(
    *,
    record_id: str,
    split: str,
    subtask: str,
    source: str,
    scene_or_clip: str,
    frames: Sequence[int],
    images: Sequence[str],
    sizes: Sequence[tuple[int, int]],
    prompt: RenderedPrompt,
    gt: Any,
    points: Sequence[Sequence[Sequence[float]]],
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble and validate one record.

    Args:
        record_id: from :func:`record_id`.
        split, subtask, source, scene_or_clip: identity (``source`` as in ``meta.source``).
        frames: original frame index of each image, prompt order.
        images: image paths relative to the dataset's ``images/`` root, prompt order.
        sizes: ``(width, height)`` of each image, pixels.
        prompt: rendered human and gpt turns with template indices.
        gt: ground truth in the answer's units (int, list of ints, label or letter).
        points: per image, the ``[u, v]`` pixels of every referenced or marked point.
        meta: subtask-specific meta fields (``ask``, ``depth_mm``, ``overlap``, ...).
    """
    spec = SUBTASKS[subtask]
    scene_key = "scene" if source == "scannet" else "clip"
    record = {
        "id": record_id,
        "image": list(images),
        "conversations": [
            {"from": "human", "value": prompt.human},
            {"from": "gpt", "value": prompt.gpt},
        ],
        "height_list": [int(h) for _, h in sizes],
        "width_list": [int(w) for w, _ in sizes],
        "task": spec.family,
        "subtask": subtask,
        "answer_type": spec.answer_type,
        "gt": gt,
        "meta": {
            "source": source,
            scene_key: scene_or_clip,
            "split": split,
            "frames": [int(f) for f in frames],
            "points": pixel_points(points),
            "templates": dict(prompt.indices),
            **(dict(meta) if meta else {}),
        },
    }
    validate_record(record)
    return record


def validate_record(record: Mapping[str, Any]) -> None:
    """Check the §6.1 invariants; raise :class:`RecordError` naming the record and the rule."""
    rid = record.get("id", "<no id>")
    human = record["conversations"][0]["value"]
    answer = record["conversations"][1]["value"]
    count = human.count("<image>")
    lengths = {
        "image": len(record["image"]),
        "height_list": len(record["height_list"]),
        "width_list": len(record["width_list"]),
        "meta.frames": len(record["meta"]["frames"]),
        "meta.points": len(record["meta"]["points"]),
    }
    wrong = {name: n for name, n in lengths.items() if n != count}
    if wrong:
        raise RecordError(f"record {rid}: {count} <image> tokens but lengths {wrong}")
    spans = _BACKTICK_SPAN.findall(answer)
    if len(spans) != 1 or answer.count("`") != 2 or "`" in human:
        raise RecordError(f"record {rid}: the answer must hold exactly one backtick span")
    expected = format_value(record["answer_type"], record["gt"])
    if spans[0] != expected:
        raise RecordError(f"record {rid}: answer span {spans[0]!r} != gt {expected!r}")
    if record["answer_type"] == "coord" and not all(0 <= v <= 999 for v in record["gt"]):
        raise RecordError(f"record {rid}: coordinate gt {record['gt']} outside 0..999")


def dumps_record(record: Mapping[str, Any]) -> str:
    """One JSONL line (no trailing newline): compact, UTF-8, keys in insertion order."""
    return json.dumps(record, ensure_ascii=False, separators=(", ", ": "))

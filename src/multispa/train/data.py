"""Training data: an InternVL-style meta JSON → annotation files → validated samples.

The meta file maps a name to an entry ``{"root": IMAGE_ROOT, "annotation": FILE.jsonl,
"repeat_time": R, "length": N}`` (other keys, such as ``data_augment``, are ignored). Relative
``root`` and ``annotation`` paths are resolved against the meta file's folder (``multispa
generate`` writes them so). Each annotation line is one record in the InternVL conversation
format, which MultiSPA records and general instruction data share::

    {"id": "...", "image": "a.jpg" | ["a.jpg", "b.jpg"] | absent,
     "conversations": [{"from": "system", "value": "..."},          (optional, first)
                       {"from": "human", "value": "Image-1: <image>\\n..."},
                       {"from": "gpt", "value": "..."}, ...]}

Turns alternate human, gpt, human, gpt, …; every ``<image>`` is in a human turn and there is one
per image, in order. A single-image record without a placeholder gets ``<image>\\n`` in front of
its first human turn (the InternVL convention); a record without images is text-only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multispa.errors import FormatError, MissingFileError

__all__ = [
    "IMAGE_PLACEHOLDER",
    "ROLES",
    "MetaEntry",
    "Sample",
    "Turn",
    "iter_annotation",
    "parse_record",
    "read_meta",
    "read_sample",
]

#: The image placeholder of the InternVL conversation format.
IMAGE_PLACEHOLDER = "<image>"
#: ``from`` value → chat role.
ROLES: dict[str, str] = {
    "system": "system", "human": "user", "user": "user", "gpt": "assistant",
    "assistant": "assistant",
}


@dataclass(frozen=True)
class MetaEntry:
    """One entry of a meta file.

    Attributes:
        name: the entry's key.
        root: folder that the records' image paths are relative to.
        annotation: the jsonl file.
        repeat_time: how often each record is used: whole copies plus a seeded random fraction
            (0.5 = a random half, 2 = twice, 1.5 = once plus a random half).
        length: the record count the meta file states (informative), or None.
    """

    name: str
    root: Path
    annotation: Path
    repeat_time: float = 1.0
    length: int | None = None


@dataclass(frozen=True)
class Turn:
    """One conversation turn: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    text: str


@dataclass(frozen=True)
class Sample:
    """One validated training record.

    Attributes:
        id: the record's ``id`` (``<entry>:<line>`` when it has none).
        images: absolute image paths, in placeholder order.
        turns: the conversation; ``<image>`` placeholders are in user turns only, one per image.
        annotation: the jsonl file the record comes from.
        line: its 1-based line number there.
    """

    id: str
    images: tuple[Path, ...]
    turns: tuple[Turn, ...]
    annotation: Path
    line: int

    @property
    def origin(self) -> str:
        """``FILE:LINE``, for messages."""
        return f"{self.annotation}:{self.line}"


def _resolve(base: Path, value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else base / path


def read_meta(path: str | Path) -> list[MetaEntry]:
    """The entries of a meta file, in file order.

    Raises:
        MissingFileError: the meta file or an entry's annotation file does not exist.
        FormatError: the file is not a JSON object of entries, or an entry lacks ``annotation``
            or has a bad ``root``, ``repeat_time`` or ``length``.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "meta file not found (expected an InternVL-style meta JSON)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(path, f"not valid JSON: {error}") from None
    if not isinstance(data, dict) or not data:
        raise FormatError(path, "expected a non-empty JSON object {name: {root, annotation, "
                                f"repeat_time}}, found {type(data).__name__}")
    base = path.parent
    entries = []
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise FormatError(path, f"entry {name!r}: expected an object, found "
                                    f"{type(entry).__name__}")
        annotation = entry.get("annotation")
        root = entry.get("root", "")
        if not isinstance(annotation, str) or not annotation:
            raise FormatError(path, f"entry {name!r}: 'annotation' must be a jsonl path, found "
                                    f"{annotation!r}")
        if not isinstance(root, str):
            raise FormatError(path, f"entry {name!r}: 'root' must be a folder path, found "
                                    f"{root!r}")
        repeat_time = entry.get("repeat_time", 1)
        if isinstance(repeat_time, bool) or not isinstance(repeat_time, int | float) or not (
                repeat_time > 0):
            raise FormatError(path, f"entry {name!r}: 'repeat_time' must be a number > 0, "
                                    f"found {repeat_time!r}")
        length = entry.get("length")
        if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
            raise FormatError(path, f"entry {name!r}: 'length' must be an integer, found "
                                    f"{length!r}")
        annotation_path = _resolve(base, annotation)
        if not annotation_path.is_file():
            raise MissingFileError(annotation_path, f"annotation of entry {name!r} in {path} "
                                                    "not found (relative paths are resolved "
                                                    "against the meta file's folder)")
        entries.append(MetaEntry(name, _resolve(base, root), annotation_path,
                                 float(repeat_time), length))
    return entries


def iter_annotation(entry: MetaEntry) -> Iterator[tuple[int, int, Sample]]:
    """``(line number, byte offset, sample)`` for every non-blank line of ``entry``'s file.

    Raises:
        FormatError: a line is not valid UTF-8 JSON or not a valid record (see
            :func:`parse_record`); the message names the file and the line.
    """
    offset = 0
    with entry.annotation.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            start, offset = offset, offset + len(raw)
            if raw.strip():
                yield number, start, parse_record(_decode(raw, entry.annotation, number),
                                                  entry, number)


def read_sample(entry: MetaEntry, line: int, offset: int) -> Sample:
    """The sample at ``offset`` (bytes) of ``entry``'s file, which is line ``line``."""
    with entry.annotation.open("rb") as handle:
        handle.seek(offset)
        raw = handle.readline()
    return parse_record(_decode(raw, entry.annotation, line), entry, line)


def _decode(raw: bytes, path: Path, line: int) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(path, f"line {line}: not a JSON record ({error})") from None


def parse_record(record: Any, entry: MetaEntry, line: int) -> Sample:
    """Validate one record of ``entry``'s file (line ``line``) into a :class:`Sample`.

    Raises:
        FormatError: not an object; ``conversations`` missing, with an unknown role, not
            alternating user/assistant or not ending with an assistant turn; ``image`` not a
            path or list of paths; placeholders that do not match the images, or in a non-user
            turn.
    """
    path = entry.annotation

    def fail(problem: str) -> FormatError:
        return FormatError(path, f"line {line}: {problem}")

    if not isinstance(record, dict):
        raise fail(f"expected a JSON object, found {type(record).__name__}")
    turns = _turns(record.get("conversations"), fail)
    images = _image_paths(record.get("image"), fail)
    placeholders = sum(t.text.count(IMAGE_PLACEHOLDER) for t in turns)
    if any(IMAGE_PLACEHOLDER in t.text for t in turns if t.role != "user"):
        raise fail(f"{IMAGE_PLACEHOLDER} placeholders are allowed in human turns only")
    if placeholders == 0 and len(images) == 1:
        first = next(i for i, t in enumerate(turns) if t.role == "user")
        turns[first] = Turn("user", f"{IMAGE_PLACEHOLDER}\n{turns[first].text}")
        placeholders = 1
    if placeholders != len(images):
        raise fail(f"{placeholders} {IMAGE_PLACEHOLDER} placeholders but {len(images)} images")
    record_id = record.get("id")
    return Sample(
        id=str(record_id) if record_id is not None else f"{entry.name}:{line}",
        images=tuple(_resolve(entry.root, p) for p in images),
        turns=tuple(turns), annotation=path, line=line,
    )


def _turns(conversations: Any, fail: Any) -> list[Turn]:
    if not isinstance(conversations, list) or not conversations:
        raise fail("'conversations' must be a non-empty list of {from, value} turns")
    turns: list[Turn] = []
    for index, turn in enumerate(conversations):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise fail(f"conversations[{index}] must be an object with a string 'value'")
        role = ROLES.get(str(turn.get("from")))
        if role is None:
            raise fail(f"conversations[{index}]: unknown 'from' {turn.get('from')!r}; expected "
                       f"one of {sorted(ROLES)}")
        turns.append(Turn(role, turn["value"]))
    body = turns[1:] if turns[0].role == "system" else turns
    expected = ["user", "assistant"] * (len(body) // 2)
    if not body or [t.role for t in body] != expected:
        raise fail("turns must alternate human, gpt, … and end with a gpt turn; found "
                   f"{[t.role for t in turns]}")
    return turns


def _image_paths(image: Any, fail: Any) -> list[str]:
    if image is None:
        return []
    values = [image] if isinstance(image, str) else image
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise fail(f"'image' must be a path or a list of paths, found {image!r}")
    return values

"""Read a generated MultiSPA dataset folder, split by split, for the dataset exports.

A dataset folder (``multispa generate --out DS``) holds::

    DS/manifest.json                                   record counts per split and file
    DS/<split>/<task>/<subtask>[.adt|.pstudio].jsonl   one record per line
    DS/images/...                                      image root of every record's ``image``

:func:`open_dataset` checks the folder and its manifest. :meth:`DatasetSource.records` yields the
records of one split: files in sorted order of their names (as listed in the manifest's
``counts``), lines in file order. Every record is checked for what the exports rely on, and a
problem raises a project error naming the file and line (expected versus found):

- :class:`~multispa.errors.FormatError`: a line that is not a JSON object; a missing or mistyped
  field (``id``, ``image``, ``conversations``, ``height_list``, ``width_list``, ``task``,
  ``subtask``, ``answer_type``, ``gt``, ``meta``); a conversation that is not one ``human`` turn
  then one ``gpt`` turn; a number of ``<image>`` placeholders in the human turn that differs from
  the number of images; an image path that is absolute or climbs out of ``images/``; a file whose
  record count differs from the manifest's;
- :class:`~multispa.errors.MissingFileError`: no dataset folder, no ``manifest.json``, no
  ``images/`` folder, a listed ``.jsonl`` file or an image file that does not exist.

``image`` may be a list of paths (as generated) or, as InternVL also accepts, one path string; it is
returned as a tuple either way (:attr:`SourceRecord.images`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from multispa.errors import DatasetError, FormatError, MissingFileError
from multispa.evaluate.backends.base import IMAGE_TOKEN
from multispa.jsonl import iter_jsonl_objects

__all__ = [
    "SPLITS",
    "DatasetSource",
    "SourceRecord",
    "check_record",
    "open_dataset",
]

#: The dataset splits, in export order.
SPLITS: tuple[str, ...] = ("train", "val")

_TEXT_FIELDS = ("task", "subtask", "answer_type")


@dataclass(frozen=True)
class SourceRecord:
    """One checked dataset record and where it was read.

    Attributes:
        split: ``train`` or ``val``.
        path: the ``.jsonl`` file; ``line``: its 1-based line number.
        record: the record as parsed.
        images: the image paths, relative to the dataset's ``images/`` folder, in prompt order.
    """

    split: str
    path: Path
    line: int
    record: dict[str, Any]
    images: tuple[str, ...]

    @property
    def id(self) -> str:
        """The record id."""
        return str(self.record["id"])

    @property
    def question(self) -> str:
        """The human turn, ``<image>`` placeholders in place (one per image, in order)."""
        return str(self.record["conversations"][0]["value"])

    @property
    def answer(self) -> str:
        """The assistant (``gpt``) turn."""
        return str(self.record["conversations"][1]["value"])


def _image_paths(value: object, path: Path, line: int) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise FormatError(path, f"line {line}: 'image' must be a non-empty list of paths, found "
                                f"{json.dumps(value)[:80]}")
    images = []
    for rel in value:
        if not isinstance(rel, str) or not rel:
            raise FormatError(path, f"line {line}: 'image' holds {json.dumps(rel)[:80]}, "
                                    "expected a non-empty path string")
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or "\\" in rel:
            raise FormatError(path, f"line {line}: image path {rel!r} must be relative to "
                                    "images/ and stay inside it")
        images.append(rel)
    return tuple(images)


def _check_conversations(value: object, n_images: int, path: Path, line: int) -> None:
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(turn, dict) for turn in value)):
        raise FormatError(path, f"line {line}: 'conversations' must be two turns (human, gpt), "
                                f"found {json.dumps(value)[:80]}")
    for turn, speaker in zip(value, ("human", "gpt"), strict=True):
        if turn.get("from") != speaker or not isinstance(turn.get("value"), str):
            raise FormatError(path, f"line {line}: expected a {speaker!r} turn with a string "
                                    f"'value', found {json.dumps(turn)[:80]}")
    found = value[0]["value"].count(IMAGE_TOKEN)
    if found != n_images:
        raise FormatError(path, f"line {line}: the human turn has {found} {IMAGE_TOKEN} "
                                f"placeholders for {n_images} images")
    if IMAGE_TOKEN in value[1]["value"]:
        raise FormatError(path, f"line {line}: the gpt turn contains {IMAGE_TOKEN}")


def check_record(obj: object, path: Path, line: int) -> tuple[str, ...]:
    """Check one parsed line; return its image paths (relative to ``images/``).

    Raises:
        FormatError: naming ``path`` and ``line``, with what was expected and found.
    """
    if not isinstance(obj, dict):
        raise FormatError(path, f"line {line}: expected a JSON object, found "
                                f"{type(obj).__name__}")
    rid = obj.get("id")
    if not isinstance(rid, str) or not rid:
        raise FormatError(path, f"line {line}: 'id' must be a non-empty string, found "
                                f"{json.dumps(rid)[:80]}")
    images = _image_paths(obj.get("image"), path, line)
    _check_conversations(obj.get("conversations"), len(images), path, line)
    for name in ("height_list", "width_list"):
        sizes = obj.get(name)
        if not (isinstance(sizes, list) and len(sizes) == len(images)
                and all(isinstance(v, int) and not isinstance(v, bool) for v in sizes)):
            raise FormatError(path, f"line {line}: {name!r} must be {len(images)} integers (one "
                                    f"per image), found {json.dumps(sizes)[:80]}")
    for name in _TEXT_FIELDS:
        if not isinstance(obj.get(name), str):
            raise FormatError(path, f"line {line}: {name!r} must be a string, found "
                                    f"{json.dumps(obj.get(name))[:80]}")
    if "gt" not in obj:
        raise FormatError(path, f"line {line}: no 'gt' field")
    if not isinstance(obj.get("meta"), dict):
        raise FormatError(path, f"line {line}: 'meta' must be an object, found "
                                f"{json.dumps(obj.get('meta'))[:80]}")
    return images


@dataclass(frozen=True)
class DatasetSource:
    """A checked dataset folder (see the module docstring).

    Attributes:
        root: the dataset folder (absolute).
        manifest: ``manifest.json`` as parsed.
    """

    root: Path
    manifest: Mapping[str, Any]

    @property
    def images_root(self) -> Path:
        """The folder every record's ``image`` path is relative to (``DS/images``)."""
        return self.root / "images"

    def splits(self) -> tuple[str, ...]:
        """The splits the manifest lists, in :data:`SPLITS` order."""
        counts = self.manifest.get("counts") or {}
        return tuple(split for split in SPLITS if split in counts)

    def resolve_splits(self, split: str) -> tuple[str, ...]:
        """``"all"`` → every split present; ``"train"``/``"val"`` → that one, checked present.

        Raises:
            DatasetError: an unknown split name, or a split the dataset does not have.
        """
        present = self.splits()
        if split == "all":
            if not present:
                raise DatasetError(self.root / "manifest.json",
                                   f"no split listed under 'counts' (expected {SPLITS})")
            return present
        if split not in SPLITS:
            raise DatasetError(self.root, f"unknown split {split!r}: expected train, val or all")
        if split not in present:
            raise DatasetError(self.root / "manifest.json",
                               f"the dataset has no {split!r} split (it has: "
                               f"{', '.join(present) or 'none'})")
        return (split,)

    def files(self, split: str) -> list[tuple[str, int]]:
        """``(path relative to the dataset, record count)`` for every file of ``split``, sorted.

        Raises:
            FormatError: the manifest's ``counts`` entry is malformed.
        """
        counts = (self.manifest.get("counts") or {}).get(split) or {}
        manifest = self.root / "manifest.json"
        if not isinstance(counts, dict):
            raise FormatError(manifest, f"counts.{split} must be an object of file: count")
        files = []
        for name, count in sorted(counts.items()):
            pure = PurePosixPath(name)
            if (pure.is_absolute() or ".." in pure.parts or pure.suffix != ".jsonl"
                    or not isinstance(count, int) or isinstance(count, bool) or count < 0):
                raise FormatError(manifest, f"counts.{split}: bad entry {name!r}: {count!r} "
                                            "(expected a relative .jsonl path and a count >= 0)")
            files.append((name, count))
        return files

    def count(self, split: str) -> int:
        """Records of ``split`` according to the manifest."""
        return sum(count for _, count in self.files(split))

    def image_path(self, rel: str) -> Path:
        """The absolute path of an image given relative to ``images/``."""
        return self.images_root / rel

    def records(self, split: str, *, check_images: bool = True) -> Iterator[SourceRecord]:
        """Yield every record of ``split``, checked (module docstring), in file and line order.

        ``check_images``: also check that every image file exists (one ``stat`` per image).

        Raises:
            MissingFileError: a listed file or an image is missing.
            FormatError: a malformed line or a record count that differs from the manifest's.
        """
        images_root = str(self.images_root)
        for name, expected in self.files(split):
            path = self.root / name
            found = 0
            for line, obj in iter_jsonl_objects(
                    path, missing="file listed in manifest.json not found"):
                images = check_record(obj, path, line)
                if check_images:
                    for k, rel in enumerate(images):
                        image = os.path.join(images_root, rel)
                        if not os.path.isfile(image):
                            raise MissingFileError(
                                image, f"image {k + 1} of record {obj['id']} ({path}, line "
                                       f"{line}) not found")
                found += 1
                yield SourceRecord(split, path, line, obj, images)
            if found != expected:
                raise FormatError(path, f"{found} records, manifest.json says {expected} "
                                        "(truncated or edited after generation?)")


def open_dataset(dataset: str | Path) -> DatasetSource:
    """Open a dataset folder written by ``multispa generate``.

    Raises:
        MissingFileError: no such folder, no ``manifest.json`` or no ``images/`` folder.
        FormatError: ``manifest.json`` is not a JSON object with a ``counts`` object.
    """
    root = Path(dataset).resolve()
    if not root.is_dir():
        raise MissingFileError(root, "dataset folder not found")
    manifest_path = root / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingFileError(manifest_path, "not a multispa dataset folder (no manifest.json; "
                                              "write one with `multispa generate`)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(manifest_path, f"invalid JSON ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("counts"), dict):
        raise FormatError(manifest_path, "expected an object with a 'counts' object "
                                         "(split -> file -> records)")
    source = DatasetSource(root, manifest)
    if not source.images_root.is_dir():
        raise MissingFileError(source.images_root, "the dataset has no images/ folder")
    return source

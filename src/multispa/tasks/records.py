"""Record assembly, ids and validation (docs/data-formats.md#records): the one place that shapes a
record.

A record is a plain dict in the InternVL multi-image conversation format, extended with
``task``, ``subtask``, ``answer_type``, ``gt`` and ``meta``.

Two ways to build one:

- :func:`build_record` takes a :class:`~multispa.tasks.templates.RenderedPrompt` and runs the full
  :func:`validate_record` (regex span check, ``gt`` re-formatted): the simple, checked path.
- :class:`RecordMaker` (and the lower-level :func:`assemble_record`) is the fast path for
  generators that build the answer span *from* the formatted ``gt`` (so span = ``gt`` holds by
  construction): ids from prepared key parts, template indices from :func:`record_draws`, prompts
  from :class:`~multispa.tasks.templates.CompiledTemplates`. For raw-image records whose only
  field is the answer it also makes a unit's records, or directly their JSONL lines, in batches
  (:meth:`RecordMaker.records_without_points`, :meth:`RecordMaker.lines_without_points`). It
  keeps cheap always-on checks of the invariants a generator bug could still break (list
  lengths = number of images, exactly one backtick pair, in the answer only). Tests run
  :func:`validate_record` on every record.

Per-record randomness that needs no ``numpy`` generator (template indices) comes from
:func:`record_draws`: BLAKE2b of (tag, seed, record id), so it is deterministic, independent of
order and worker count, and costs about a microsecond instead of a ``SeedSequence``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from json.encoder import encode_basestring_ascii
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from multispa.errors import MultispaError
from multispa.tasks.answers import format_value
from multispa.tasks.templates import (
    SUBTASKS,
    RenderedPrompt,
    SubtaskSpec,
    compiled_templates,
    fill_template,
    image_prefix,
)

if TYPE_CHECKING:
    from multispa.tasks.base import UnitContext

__all__ = [
    "FrameImages",
    "MetaLayout",
    "MetaMembers",
    "RecordError",
    "RecordIds",
    "RecordMaker",
    "assemble_record",
    "build_record",
    "dumps_record",
    "json_numbers",
    "json_slot",
    "many_record_draws",
    "pixel_points",
    "record_draws",
    "record_id",
    "record_line",
    "source_code",
    "validate_record",
]

_SOURCE_CODES = {"scannet": "scannet", "tapvid3d/adt": "adt", "tapvid3d/pstudio": "pstudio"}
_BACKTICK_SPAN = re.compile(r"`([^`]*)`")
_DRAW_BYTES = 8  # one uniform 64-bit integer per draw
_MAX_DRAWS = 64 // _DRAW_BYTES  # BLAKE2b digests are at most 64 bytes
_WORD_MASK = (1 << 64) - 1


class RecordError(MultispaError):
    """A record breaks the record contract (a bug in a generator, never bad user input)."""


def source_code(source: str) -> str:
    """``src`` of the id: ``scannet``, ``adt`` or ``pstudio`` (other TAPVid subsets: their name)."""
    return _SOURCE_CODES.get(source, source.rsplit("/", 1)[-1])


def pixel_points(points: Sequence[Sequence[Sequence[float]]]) -> list[list[list[float]]]:
    """``meta.points`` form: per image, ``[u, v]`` pixels as floats with 2 decimals."""
    return [[[round(float(u), 2), round(float(v), 2)] for u, v in image] for image in points]


# ------------------------------------------------------------------------------------------ ids


def _json_scalar(value: object) -> str:
    """Compact JSON of an id-key scalar, exactly as ``json.dumps`` writes it."""
    if type(value) is float and math.isfinite(value):  # points: the most frequent
        return float.__repr__(value)
    if type(value) is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is str:
        return encode_basestring_ascii(value)
    if isinstance(value, list | tuple):  # N-view records key on several object ids
        return "[" + ",".join([_json_scalar(item) for item in value]) + "]"
    return json.dumps(value)


def _image_points_json(image: Sequence[Sequence[float]]) -> str:
    if not image:
        return "[]"
    if len(image) == 1:
        (u, v), = image
        return f"[[{_json_scalar(u)},{_json_scalar(v)}]]"
    return "[" + ",".join([f"[{_json_scalar(u)},{_json_scalar(v)}]" for u, v in image]) + "]"


def _points_json(points: Sequence[Sequence[Sequence[float]]]) -> str:
    """Compact JSON of 2-decimal ``points`` (the output of :func:`pixel_points`)."""
    return "[" + ",".join(map(_image_points_json, points)) + "]"


class RecordIds:
    """:func:`record_id` for the records of one (split, subtask, source, scene or clip).

    The canonical JSON of the sample key is written directly (sorted keys, compact separators,
    ASCII escapes: byte-identical to ``json.dumps(key, sort_keys=True, separators=(",", ":"))``),
    with the constant part prepared once; a call costs a string join and one SHA-256.
    """

    def __init__(self, split: str, subtask: str, source: str, scene_or_clip: str) -> None:
        self.prefix = f"{split}-{subtask}-{source_code(source)}-{scene_or_clip}-"
        self._tail = (
            ',"scene_or_clip":' + encode_basestring_ascii(scene_or_clip)
            + ',"source":' + encode_basestring_ascii(source)
            + ',"split":' + encode_basestring_ascii(split)
            + ',"subtask":' + encode_basestring_ascii(subtask)
            + ',"track":'
        )
        self._frames: dict[Any, tuple[str, str]] = {}  # frame → (JSON text, 5-digit text)
        self._no_points: dict[int, str] = {}  # image count → key JSON after the object id

    def _frame_texts(self, frame: Any) -> tuple[str, str]:
        value = int(frame)
        texts = self._frames[frame] = (str(value), f"{value:05d}")
        return texts

    def _frame_parts(self, frames: Sequence[int]) -> tuple[str, str]:
        """The frames as in the key JSON (``1,2``) and as in the id (``00001_00002``)."""
        known = self._frames
        if len(frames) == 2:  # the common case, without the joins
            first, second = frames
            a = known.get(first) or self._frame_texts(first)
            b = known.get(second) or self._frame_texts(second)
            return f"{a[0]},{b[0]}", f"{a[1]}_{b[1]}"
        texts = [known.get(f) or self._frame_texts(f) for f in frames]
        return ",".join([text[0] for text in texts]), "_".join([text[1] for text in texts])

    def _after_object_id(self, count: int) -> str:
        """The key JSON after the object id of a ``count``-image key without points."""
        after = self._no_points[count] = (
            ',"points":['
            + ",".join(["[]"] * count)
            + '],"reversed":false'
            + self._tail
            + "null}"
        )
        return after

    def __call__(
        self,
        frames: Sequence[int],
        points_2dp: Sequence[Sequence[Sequence[float]]],
        object_id: int | Sequence[int] | None = None,
        track: int | None = None,
        ask: str | None = None,
        reversed_pair: bool = False,
    ) -> str:
        """The record id; ``points_2dp`` already in :func:`pixel_points` form.

        ``object_id`` is one ScanNet ``objectId``, or for N-view records the list of the ids a
        question refers to (written as a compact JSON list in the key).
        """
        frames_json, frames_id = self._frame_parts(frames)
        key = (
            f'{{"ask":{"null" if ask is None else _json_scalar(ask)},'
            f'"frames":[{frames_json}],'
            f'"object_id":{"null" if object_id is None else _json_scalar(object_id)},'
            f'"points":{_points_json(points_2dp)},'
            f'"reversed":{"true" if reversed_pair else "false"}{self._tail}'
            f'{"null" if track is None else _json_scalar(track)}}}'
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}{frames_id}-{digest[:10]}"

    def without_points(self, frames: Sequence[int], object_id: int | None = None) -> str:
        """The id of a sample key with no points (``[]`` per image), at most an object id set.

        Equal to ``self(frames, [[]] * len(frames), object_id)``: the key of raw-image records
        such as camera movement and object size, with the constant parts of its JSON prepared
        once per image count.
        """
        frames_json, frames_id = self._frame_parts(frames)
        after = self._no_points.get(len(frames)) or self._after_object_id(len(frames))
        key = (
            f'{{"ask":null,"frames":[{frames_json}],"object_id":'
            f'{"null" if object_id is None else _json_scalar(object_id)}{after}'
        )
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{self.prefix}{frames_id}-{digest[:10]}"

    def many_without_points(self, frames: Sequence[Sequence[int]]) -> list[str]:
        """:meth:`without_points` (no object id) of every frame list of ``frames``, in order.

        The batch form for one unit's records; frames are Python or numpy integers.
        """
        sha256 = hashlib.sha256
        prefix = self.prefix
        known = self._frames
        pair_after = self._no_points.get(2) or self._after_object_id(2)
        ids = []
        for row in frames:
            if len(row) == 2:  # the common case, without the joins
                first, second = row
                a = known.get(first) or self._frame_texts(first)
                b = known.get(second) or self._frame_texts(second)
                digest = sha256(
                    f'{{"ask":null,"frames":[{a[0]},{b[0]}],"object_id":null{pair_after}'.encode()
                ).hexdigest()
                ids.append(f"{prefix}{a[1]}_{b[1]}-{digest[:10]}")
            else:
                ids.append(self.without_points(row))
        return ids


@functools.lru_cache(maxsize=1024)
def _record_ids(split: str, subtask: str, source: str, scene_or_clip: str) -> RecordIds:
    return RecordIds(split, subtask, source, scene_or_clip)


def record_id(
    *,
    split: str,
    subtask: str,
    source: str,
    scene_or_clip: str,
    frames: Sequence[int],
    points: Sequence[Sequence[Sequence[float]]],
    object_id: int | Sequence[int] | None = None,
    track: int | None = None,
    ask: str | None = None,
    reversed_pair: bool = False,
) -> str:
    """``{split}-{subtask}-{src}-{scene_or_clip}-{frames}-{h}`` (docs/data-formats.md#record-ids).

    ``h`` is the first 10 hex digits of SHA-256 over the canonical JSON of the sample key
    (split, subtask, source, scene or clip, frames, points with 2 decimals, object id or track,
    ask, reversal flag).
    """
    ids = _record_ids(split, subtask, source, scene_or_clip)
    return ids(frames, pixel_points(points), object_id, track, ask, bool(reversed_pair))


def record_draws(seed: int, rid: str, sizes: Sequence[int], tag: str = "templates") -> list[int]:
    """Uniform indices in ``range(n)`` for each ``n`` of ``sizes``, fixed by (tag, seed, id).

    BLAKE2b of ``"{tag}\\0{seed}\\0{rid}"`` gives one 64-bit integer per draw (little-endian
    8-byte words of the digest, in order); the index is that integer modulo ``n`` (bias below
    ``n / 2**64``, under 1e-15 for template lists). Records are identified by their (globally
    unique) id, so draws do not depend on order or workers, and different tags give independent
    draws. At most 8 draws per call.
    """
    count = _draw_count(sizes)
    digest = hashlib.blake2b(
        f"{tag}\0{seed}\0{rid}".encode(), digest_size=_DRAW_BYTES * count
    ).digest()
    words = int.from_bytes(digest, "little")
    draws = []
    for n in sizes:
        draws.append((words & _WORD_MASK) % n)
        words >>= 64
    return draws


def many_record_draws(
    seed: int, record_ids: Sequence[str], sizes: Sequence[int], tag: str = "templates"
) -> list[list[int]]:
    """:func:`record_draws` of every id of ``record_ids`` (same ``sizes`` and ``tag``), in order.

    One BLAKE2b digest per id as there; the 64-bit words of all digests are reduced modulo
    ``sizes`` at once (``numpy`` unsigned integers: exact).
    """
    count = _draw_count(sizes)
    if not record_ids:
        return []
    prefix, blake2b, digest_size = f"{tag}\0{seed}\0".encode(), hashlib.blake2b, _DRAW_BYTES * count
    digests = b"".join([
        blake2b(prefix + rid.encode(), digest_size=digest_size).digest() for rid in record_ids
    ])
    words = np.frombuffer(digests, dtype="<u8").reshape(len(record_ids), count)
    return (words % np.asarray(sizes, dtype=np.uint64)).tolist()


def _draw_count(sizes: Sequence[int]) -> int:
    """The number of draws for ``sizes``; ValueError unless 1..8 positive sizes."""
    count = len(sizes)
    if not 0 < count <= _MAX_DRAWS or min(sizes) < 1:
        raise ValueError(f"record_draws: 1..{_MAX_DRAWS} positive sizes, got {list(sizes)}")
    return count


# -------------------------------------------------------------------------------------- images


class FrameImages:
    """Per-unit memo of :meth:`UnitContext.frame_image`: the same relative paths, fewer syscalls.

    The unit's output image folder is listed once; a frame already there costs no file system
    call. A missing frame is hard-linked from the cache with one ``os.link`` into the folder
    (created once): a hard link appears atomically, and a concurrent worker having linked it
    first (``FileExistsError``) is success. Where linking fails (another file system, a missing
    source...), ``ctx.frame_image`` does the work (copy, or its error). This mirrors
    ``UnitContext.frame_image``; the per-frame ``mkdir``/temporary/``replace`` there cost about
    four system calls per new frame.
    """

    def __init__(self, ctx: UnitContext) -> None:
        parts = ctx.unit.unit_id.split("/")
        self._ctx = ctx
        self._prefix = "/".join(parts) + "/"
        self._folder = os.path.join(ctx.out, "images", *parts)
        self._source = os.path.join(ctx.unit.path, "images")
        try:
            self._present = set(os.listdir(self._folder))
            self._folder_ready = True
        except (FileNotFoundError, NotADirectoryError):
            self._present = set()
            self._folder_ready = False
        self._known: dict[int, str] = {}

    def __call__(self, frame: int) -> str:
        """Relative path of original frame ``frame`` under ``images/`` (linked if needed)."""
        relative = self._known.get(frame)
        if relative is None:
            name = f"{int(frame):05d}.jpg"
            if name not in self._present and not self._link(name):
                self._ctx.frame_image(int(frame))
            relative = self._known[frame] = self._prefix + name
        return relative

    @property
    def known(self) -> Mapping[int, str]:
        """Relative path of every frame made available so far, by frame (read-only view)."""
        return MappingProxyType(self._known)

    def link_all(self, frames: Iterable[int]) -> None:
        """Make every frame of ``frames`` available at once (then each call is a lookup).

        The batch form of calling the memo on each frame, with the same files: each missing
        frame costs one ``link`` between the cache's and the output's image folders, both
        opened once (no path resolution per frame) where the platform links relative to
        folder descriptors.
        """
        missing: dict[int, str] = {}
        for frame in frames:
            if frame in self._known or frame in missing:
                continue
            name = f"{int(frame):05d}.jpg"
            if name in self._present:
                self._known[frame] = self._prefix + name
            else:
                missing[frame] = name
        if not missing:
            return
        failed = self._link_many(missing.values())
        for frame, name in missing.items():
            if name in failed:
                self._ctx.frame_image(int(frame))
            self._known[frame] = self._prefix + name

    def _link_many(self, names: Iterable[str]) -> set[str]:
        """Hard-link cached frames ``names`` into the output folder; the names that failed."""
        if not self._folder_ready:
            os.makedirs(self._folder, exist_ok=True)
            self._folder_ready = True
        if os.link not in os.supports_dir_fd:
            return {name for name in names if not self._link(name)}
        failed: set[str] = set()
        try:
            source = os.open(self._source, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return set(names)  # no cache folder: the context reports the missing frames
        try:
            target = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                for name in names:
                    try:
                        os.link(name, name, src_dir_fd=source, dst_dir_fd=target)
                    except FileExistsError:
                        pass
                    except OSError:
                        failed.add(name)
            finally:
                os.close(target)
        finally:
            os.close(source)
        return failed

    def _link(self, name: str) -> bool:
        """Hard-link cached frame ``name`` into the output folder; False if that is impossible."""
        if not self._folder_ready:
            os.makedirs(self._folder, exist_ok=True)
            self._folder_ready = True
        try:
            os.link(os.path.join(self._source, name), os.path.join(self._folder, name))
        except FileExistsError:
            return True
        except OSError:
            return False
        return True


# ------------------------------------------------------------------------------------- records


@functools.cache
def _fieldless_humans_json(subtask: str) -> tuple[tuple[bytes, ...], ...]:
    """:func:`_fieldless_humans` as JSON strings (``orjson``), for lines written directly."""
    return tuple(tuple(orjson.dumps(human) for human in row) for row in _fieldless_humans(subtask))


@functools.cache
def _fieldless_humans(subtask: str) -> tuple[tuple[str, ...], ...]:
    """Human turns of a subtask without fields, by [description][question] (checked once)."""
    templates = compiled_templates(subtask)
    descriptions, questions, _ = templates.lists[None]
    table = tuple(
        tuple(
            f"{templates.prefix}{fill_template(d, {})}\n{fill_template(q, {})}" for q in questions
        )
        for d in descriptions
    )
    if any("`" in human for row in table for human in row):
        raise RecordError(f"subtask {subtask}: a template holds a backtick")
    return table


def _assemble(
    spec: SubtaskSpec,
    record_id: str,
    split: str,
    source: str,
    scene_or_clip: str,
    frames: list[int],
    images: list[str],
    width_list: list[int],
    height_list: list[int],
    human: str,
    gpt: str,
    templates: dict[str, int],
    gt: Any,
    points: list[list[list[float]]],
    meta: Mapping[str, Any] | None,
    check: bool = True,
) -> dict[str, Any]:
    """The record dict in the record layout (key order included), from parts in record form.

    The one place that lays a record out: :func:`assemble_record`, :class:`RecordMaker` and
    :func:`build_record` all return its dict (:meth:`RecordMaker.lines_without_points` cuts
    the line of one of its records into the bytes around the varying fields). ``meta`` is
    appended after the common meta fields. With ``check``, the cheap checks of
    :func:`assemble_record` run first (:func:`build_record` passes False and runs the full
    :func:`validate_record` instead).
    """
    if check:
        count = len(images)
        low, high = spec.image_range
        if (
            not low <= count <= high
            or len(frames) != count
            or len(points) != count
            or len(width_list) != count
            or len(height_list) != count
        ):
            raise RecordError(
                f"record {record_id}: {low}..{high} images expected, got image {len(images)}, "
                f"frames {len(frames)}, points {len(points)}, sizes "
                f"{len(width_list)}/{len(height_list)}"
            )
        if gpt.count("`") != 2 or "`" in human:
            raise RecordError(
                f"record {record_id}: the answer must hold exactly one backtick span"
            )
    record_meta = {
        "source": source,
        ("scene" if source == "scannet" else "clip"): scene_or_clip,
        "split": split,
        "frames": frames,
        "points": points,
        "templates": templates,
    }
    if meta:
        record_meta.update(meta)
    return {
        "id": record_id,
        "image": images,
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}],
        "height_list": height_list,
        "width_list": width_list,
        "task": spec.family,
        "subtask": spec.name,
        "answer_type": spec.answer_type,
        "gt": gt,
        "meta": record_meta,
    }


def assemble_record(
    *,
    record_id: str,
    split: str,
    subtask: str,
    source: str,
    scene_or_clip: str,
    frames: list[int],
    images: list[str],
    width_list: list[int],
    height_list: list[int],
    human: str,
    gpt: str,
    templates: dict[str, int],
    gt: Any,
    points: list[list[list[float]]],
    meta: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble one record from parts already in record form (the fast path).

    Args:
        record_id: from :func:`record_id` or :class:`RecordIds`.
        split, subtask, source, scene_or_clip: identity (``source`` as in ``meta.source``).
        frames: original frame index of each image (Python ints), prompt order.
        images: image paths relative to the ``images/`` root, prompt order.
        width_list, height_list: pixel size of each image (Python ints).
        human, gpt: rendered turns; ``gpt`` must hold ``gt`` formatted by
            :func:`multispa.tasks.answers.format_value` inside the only backtick pair.
        templates: ``{"description": i, "question": j, "answer": k}``.
        gt: ground truth in the answer's units.
        points: ``meta.points`` already in :func:`pixel_points` form.
        meta: subtask-specific meta fields, appended after the common ones.

    Raises:
        RecordError: list lengths differ from the subtask's image count, or the backticks are
            not exactly one pair in the answer.
    """
    return _assemble(
        SUBTASKS[subtask], record_id, split, source, scene_or_clip, frames, images, width_list,
        height_list, human, gpt, templates, gt, points, meta,
    )


class RecordMaker:
    """Makes the records of one (split, subtask, source, scene or clip) on the fast path.

    Ids come from :attr:`ids` (:class:`RecordIds`), template indices from the seed and the id
    exactly as :func:`record_draws` draws them, prompts from the subtask's compiled templates;
    assembly and the cheap checks are those of :func:`assemble_record`.
    """

    def __init__(
        self, *, seed: int, split: str, subtask: str, source: str, scene_or_clip: str
    ) -> None:
        self.seed = seed
        self.split = split
        self.source = source
        self.scene_or_clip = scene_or_clip
        self.spec: SubtaskSpec = SUBTASKS[subtask]
        self.ids = RecordIds(split, subtask, source, scene_or_clip)
        self.templates = compiled_templates(subtask)
        self._draw_prefix = f"templates\0{seed}\0".encode()
        self._lists = {
            variant: (*self.templates.lists[variant], self.templates.sizes(variant))
            for variant in self.spec.variants
        }
        self._line_chunks: dict[tuple[int, int], tuple[bytes, ...]] = {}  # see _line_chunks
        # Per variant, the human turns (image prefix excluded) already rendered, by (description,
        # question) index, when neither list holds a field (the turn is then the same for every
        # record); else None.
        self._humans: dict[str | None, dict[tuple[int, int], str] | None] = {
            variant: {} if all(len(c) == 1 for c in (*descriptions, *questions)) else None
            for variant, (descriptions, questions, _) in self.templates.lists.items()
        }

    def __call__(
        self,
        record_id: str,
        *,
        frames: list[int],
        images: list[str],
        width_list: list[int],
        height_list: list[int],
        fields: Mapping[str, str],
        gt: Any,
        points: list[list[list[float]]],
        meta: Mapping[str, Any] | None = None,
        variant: str | None = None,
    ) -> dict[str, Any]:
        """One record: draw the templates for ``record_id``, render ``fields``, assemble.

        Args:
            record_id: from :attr:`ids` (same sample key as the record's content).
            frames, images, width_list, height_list, gt, points, meta: as in
                :func:`assemble_record`.
            fields: ``answer`` (backticked ``format_value(answer_type, gt)``) and the subtask's
                fields (see :meth:`~multispa.tasks.templates.CompiledTemplates.render`).
            variant: template variant (``None``, ``"static"``, ``"closer"``...).
        """
        lists = self._lists.get(variant)
        if lists is None:
            raise ValueError(
                f"subtask {self.spec.name}: variant {variant!r} not in {self.spec.variants}"
            )
        descriptions, questions, answers, (n_description, n_question, n_answer) = lists
        # record_draws(seed, record_id, sizes), inlined.
        words = int.from_bytes(
            hashlib.blake2b(
                self._draw_prefix + record_id.encode(), digest_size=3 * _DRAW_BYTES
            ).digest(),
            "little",
        )
        description = (words & _WORD_MASK) % n_description
        question = ((words >> 64) & _WORD_MASK) % n_question
        answer = (words >> 128) % n_answer
        humans = self._humans[variant]
        body = None if humans is None else humans.get((description, question))
        if body is None:
            body = (
                f"{fill_template(descriptions[description], fields)}\n"
                f"{fill_template(questions[question], fields)}"
            )
            if humans is not None:
                humans[description, question] = body
        count = len(images)
        prefix = self.templates.prefix if count == self.spec.num_images else image_prefix(count)
        human = prefix + body
        chunks = answers[answer]
        gpt = (
            f"{chunks[0]}{fields[chunks[1]]}{chunks[2]}"
            if len(chunks) == 3
            else fill_template(chunks, fields)
        )
        return _assemble(
            self.spec, record_id, self.split, self.source, self.scene_or_clip, frames, images,
            width_list, height_list, human, gpt,
            _templates_meta(description, question, answer), gt, points, meta,
        )

    def records_without_points(
        self,
        frames: Sequence[Sequence[int]],
        images: Sequence[list[str]],
        size: tuple[int, int],
        answers: Sequence[str],
        gts: Sequence[Any],
        metas: Sequence[Mapping[str, Any] | None],
    ) -> list[dict[str, Any]]:
        """Records of raw images, without points, whose only template field is the answer.

        The batch form (one unit's records of the subtask) of, for each row ``k``::

            self(self.ids.without_points(frames[k]), frames=list(frames[k]), images=images[k],
                 width_list=[width] * n, height_list=[height] * n,
                 fields={"answer": answers[k]}, gt=gts[k], points=[[]] * n, meta=metas[k])

        with the same records and checks, at less cost per record: ids from
        :meth:`RecordIds.many_without_points`, human turns rendered once per (description,
        question) pair and process.

        Args:
            frames: per record, the original frame of each image (ints), prompt order.
            images: per record, the image paths (``n`` each).
            size: ``(width, height)`` of every image, pixels.
            answers: per record, the backticked answer (``format_value`` of the ``gt``).
            gts: per record, the ground truth.
            metas: per record, the subtask's meta fields (appended after the common ones).

        Raises:
            ValueError: the subtask has template fields besides the answer, or variants.
            RecordError: as :meth:`__call__`.
        """
        record_ids, indices, gpts = self._turns_without_points(frames, images, answers)
        width, height = (int(v) for v in size)
        humans = _fieldless_humans(self.spec.name)
        rows = zip(record_ids, frames, images, gts, metas, indices, gpts, strict=True)
        return [
            self._record_without_points(row, width, height, humans)  # type: ignore[arg-type]
            for row in rows
        ]

    def lines_without_points(
        self,
        frames: Sequence[Sequence[int]],
        images: Sequence[list[str]],
        size: tuple[int, int],
        answers: Sequence[str],
        gts: Sequence[Any],
        metas: Sequence[Mapping[str, Any] | None] | MetaMembers,
    ) -> list[bytes]:
        """The JSONL lines of :meth:`records_without_points` (same arguments), without the dicts.

        Equal to ``[record_line(r) for r in self.records_without_points(...)]``. The bytes
        around the fields that vary are taken once from :func:`record_line` of a record laid
        out by the same code with a placeholder in each varying field (id, images, turns,
        ``gt``, frames, each template index); a line is those bytes joined with ``orjson`` of
        the record's own values, its meta fields written before the closing braces: by one
        ``orjson`` call per record, or already written for all records by a
        :class:`MetaLayout` (``metas`` a :class:`MetaMembers`). That is how ``orjson`` writes
        the dict (compact, in key order). A record whose meta replaces a common meta field is
        written through its dict.

        Raises:
            ValueError, RecordError: as :meth:`records_without_points`; :class:`RecordError`
                also for a value JSON cannot hold (as :func:`record_line`).
        """
        record_ids, indices, gpts = self._turns_without_points(frames, images, answers)
        width, height = (int(v) for v in size)
        chunks = self._line_chunks.get((width, height))
        if chunks is None:
            chunks = self._line_chunks[width, height] = _line_chunks(self, width, height)
        c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, tail = chunks
        humans = _fieldless_humans_json(self.spec.name)
        numbers = _json_counts(max(self.templates.sizes(None)))
        members, via_dict = _meta_members(record_ids, metas)
        dumps, lines = orjson.dumps, []
        rows = zip(record_ids, frames, images, gts, members, indices, gpts, strict=True)
        record_id = ""
        try:
            for record_id, frame_list, image_list, gt, member, (d, q, a), gpt in rows:
                lines.append(b"".join((
                    c0, dumps(record_id), c1, dumps(image_list), c2, humans[d][q], c3,
                    dumps(gpt), c4, dumps(gt), c5, dumps(frame_list), c6, numbers[d], c7,
                    numbers[q], c8, numbers[a], c9, member, tail,
                )))
        except orjson.JSONEncodeError as error:
            raise RecordError(f"record {record_id}: cannot be written as JSON ({error})") from None
        for k in via_dict:  # a meta that replaces a common field: through the dict
            row = (record_ids[k], frames[k], images[k], gts[k], metas[k], indices[k], gpts[k])
            lines[k] = record_line(self._record_without_points(
                row, width, height, _fieldless_humans(self.spec.name)  # type: ignore[arg-type]
            ))
        return lines

    def _record_without_points(
        self,
        row: tuple[str, Sequence[int], list[str], Any, Any, Sequence[int], str],
        width: int,
        height: int,
        humans: tuple[tuple[str, ...], ...],
    ) -> dict[str, Any]:
        """The record of one row (id, frames, images, gt, meta, template indices, gpt turn)."""
        record_id, frame_list, image_list, gt, meta, (description, question, answer), gpt = row
        count = self.spec.num_images
        return _assemble(
            self.spec, record_id, self.split, self.source, self.scene_or_clip, list(frame_list),
            image_list, [width] * count, [height] * count, humans[description][question], gpt,
            _templates_meta(description, question, answer),
            gt, [[] for _ in range(count)], meta, check=False,
        )

    def _turns_without_points(
        self,
        frames: Sequence[Sequence[int]],
        images: Sequence[list[str]],
        answers: Sequence[str],
    ) -> tuple[list[str], list[list[int]], list[str]]:
        """Ids, template indices (description, question, answer) and gpt turns of records
        without points, checked.

        Raises:
            ValueError: the subtask has template fields besides the answer, or variants.
            RecordError: an answer without exactly one backtick span, or list lengths that are
                not the subtask's image count.
        """
        spec = self.spec
        if spec.fields or spec.variants != (None,):
            raise ValueError(f"subtask {spec.name}: records without points need a subtask "
                             "whose only template field is the answer, without variants")
        _, _, answer_chunks, sizes = self._lists[None]
        record_ids = self.ids.many_without_points(frames)
        _check_image_counts(spec.num_images, record_ids, frames, images)
        indices = many_record_draws(self.seed, record_ids, sizes)
        gpts = []
        for record_id, (_, _, answer), answer_text in zip(
            record_ids, indices, answers, strict=True
        ):
            chunks = answer_chunks[answer]
            gpt = (
                f"{chunks[0]}{answer_text}{chunks[2]}"
                if len(chunks) == 3
                else fill_template(chunks, {"answer": answer_text})
            )
            if gpt.count("`") != 2:
                raise RecordError(
                    f"record {record_id}: the answer must hold exactly one backtick span"
                )
            gpts.append(gpt)
        return record_ids, indices, gpts


def _check_image_counts(
    count: int,
    record_ids: Sequence[str],
    frames: Sequence[Sequence[int]],
    images: Sequence[Sequence[str]],
) -> None:
    """RecordError naming the first record whose frames or images are not ``count``."""
    lengths = {*map(len, frames), *map(len, images)}
    if lengths and lengths != {count}:
        for record_id, frame_list, image_list in zip(record_ids, frames, images, strict=True):
            if len(frame_list) != count or len(image_list) != count:
                raise RecordError(
                    f"record {record_id}: {count} images expected, got image "
                    f"{len(image_list)}, frames {len(frame_list)}"
                )


def _templates_meta(description: Any, question: Any, answer: Any) -> dict[str, Any]:
    """``meta.templates``: the indices of the description, question and answer templates."""
    return {"description": description, "question": question, "answer": answer}


@functools.cache
def _json_counts(count: int) -> tuple[bytes, ...]:
    """The JSON text of ``0 .. count - 1`` (template indices in lines written directly)."""
    return tuple(orjson.dumps(n) for n in range(count))


# The varying fields of a records-without-points line, in line order (the last three are the
# template indices of meta.templates).
_SLOTS = ("id", "image", "human", "gpt", "gt", "frames", "description", "question", "answer")
_COMMON_META = frozenset(("source", "scene", "clip", "split", "frames", "points", "templates"))


def json_slot(name: str) -> str:
    """A placeholder for a value whose JSON text is put in later (:class:`MetaLayout`)."""
    return f"\0{name}\0"


def _cut_at_slots(text: bytes, names: Sequence[str], what: str) -> tuple[bytes, ...]:
    """``text`` (``orjson`` bytes holding each :func:`json_slot` of ``names`` once, in that
    order) cut around the placeholders: ``len(names) + 1`` chunks."""
    chunks, start = [], 0
    for name in names:
        marked = orjson.dumps(json_slot(name))
        where = text.find(marked, start)
        if where < 0 or text.find(marked, where + 1) >= 0:
            raise RecordError(f"{what}: slot {name!r} not found once, in order")
        chunks.append(text[start:where])
        start = where + len(marked)
    chunks.append(text[start:])
    return tuple(chunks)


def _line_chunks(maker: RecordMaker, width: int, height: int) -> tuple[bytes, ...]:
    """The bytes of a records-without-points line (no meta) around its varying fields.

    ``len(_SLOTS) + 2`` chunks: the line of a record whose varying fields hold placeholders,
    cut around each placeholder, and its end cut after the brace that closes
    ``meta.templates`` (the last common meta field: the subtask's meta fields go there).
    """
    mark = {name: json_slot(name) for name in _SLOTS}
    count = maker.spec.num_images
    record = _assemble(
        maker.spec, mark["id"], maker.split, maker.source, maker.scene_or_clip,
        mark["frames"], mark["image"], [width] * count, [height] * count,  # type: ignore[arg-type]
        mark["human"], mark["gpt"],
        _templates_meta(mark["description"], mark["question"], mark["answer"]), mark["gt"],
        [[] for _ in range(count)], None, check=False,
    )
    what = f"subtask {maker.spec.name} record layout"
    *chunks, end = _cut_at_slots(record_line(record), _SLOTS, what)
    if not end.startswith(b"}"):
        raise RecordError(f"{what}: meta.templates is not the last common meta field")
    return (*chunks, end[:1], end[1:])


def json_numbers(values: Sequence[Any]) -> list[bytes]:
    """The JSON text of each of ``values`` as :func:`record_line` writes it, from one call.

    ``orjson`` writes a number the same wherever it stands (a float as its shortest round-trip
    text: ``1e-05`` as ``0.00001``, ``1e16`` as ``1e+16``; NaN and infinities as ``null``), so
    its text of the whole list, cut at the commas, holds each number's text in a record. Meant
    for numbers (``tolist()`` of an array): any value whose JSON holds no comma works.

    Raises:
        RecordError: a value JSON cannot hold (an integer beyond 64 bits, a numpy scalar), or
            one whose JSON holds a comma.
    """
    if not values:
        return []
    try:
        texts = orjson.dumps(values if type(values) is list else list(values))[1:-1].split(b",")
    except orjson.JSONEncodeError as error:
        raise RecordError(f"values cannot be written as JSON ({error})") from None
    if len(texts) != len(values):
        raise RecordError("json_numbers: a value's JSON holds a comma; write it with orjson")
    return texts


class MetaMembers:
    """Per record, its subtask meta fields already written as JSON by a :class:`MetaLayout`.

    Attributes:
        texts: per record, the members (``,"key":value...``) that follow the common meta
            fields in its line.
    """

    __slots__ = ("texts",)

    def __init__(self, texts: list[bytes]) -> None:
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)


class MetaLayout:
    """A subtask's meta fields laid out once, for lines whose meta values come as JSON text.

    Built from the meta dict of one record whose varying values are :func:`json_slot`
    placeholders, made by the function that makes the records' meta dicts (so the dict path
    and the lines share one layout: keys, nesting, order). :meth:`members` writes each record's
    values (their JSON text, e.g. from :func:`json_numbers`) into it: the bytes ``orjson``
    writes for the record's meta dict, for :meth:`RecordMaker.lines_without_points`.
    """

    def __init__(self, meta: Mapping[str, Any], slots: Sequence[str]) -> None:
        """``meta``: the placeholder meta; ``slots``: its placeholders' names, in JSON order.

        Raises:
            ValueError: ``meta`` is empty or replaces a common meta field.
        """
        clash = _COMMON_META.intersection(meta)
        if not meta or clash:
            raise ValueError(f"meta layout: needs fields, none of {sorted(_COMMON_META)}; "
                             f"got {sorted(meta)}")
        chunks = _cut_at_slots(orjson.dumps(dict(meta)), slots, "meta layout")
        members = b"%b".join(chunk.replace(b"%", b"%%") for chunk in chunks)[1:-1]
        self.slots = tuple(slots)
        self._format = b"," + members  # after the common fields; the record closes the braces

    def members(self, values: Iterable[tuple[bytes, ...]]) -> MetaMembers:
        """The meta members of each record, from its slot values' JSON texts (slot order)."""
        text = self._format
        return MetaMembers([text % row for row in values])


def _meta_members(
    record_ids: Sequence[str], metas: Sequence[Mapping[str, Any] | None] | MetaMembers
) -> tuple[Sequence[bytes], list[int]]:
    """Per record, its meta members for a line (``b""`` without meta), and the positions of
    the records whose meta replaces a common field (to be written through their dict)."""
    if isinstance(metas, MetaMembers):
        return metas.texts, []
    dumps, common = orjson.dumps, _COMMON_META
    texts: list[bytes] = []
    via_dict: list[int] = []
    for k, (record_id, meta) in enumerate(zip(record_ids, metas, strict=True)):
        if not meta:
            texts.append(b"")
        elif common.isdisjoint(meta):
            try:
                texts.append(b"," + dumps(meta if type(meta) is dict else dict(meta))[1:-1])
            except orjson.JSONEncodeError as error:
                raise RecordError(
                    f"record {record_id}: cannot be written as JSON ({error})"
                ) from None
        else:
            texts.append(b"")
            via_dict.append(k)
    return texts, via_dict


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
    record = _assemble(
        SUBTASKS[subtask],
        record_id,
        split,
        source,
        scene_or_clip,
        frames=[int(f) for f in frames],
        images=list(images),
        width_list=[int(w) for w, _ in sizes],
        height_list=[int(h) for _, h in sizes],
        human=prompt.human,
        gpt=prompt.gpt,
        templates=dict(prompt.indices),
        gt=gt,
        points=pixel_points(points),
        meta=meta,
        check=False,
    )
    validate_record(record)
    return record


def validate_record(record: Mapping[str, Any]) -> None:
    """Check the record invariants (docs/data-formats.md#record-validation); raise
    :class:`RecordError` naming the record and the rule."""
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


_ORJSON_OPTIONS = orjson.OPT_APPEND_NEWLINE


def _encode_error(record: Mapping[str, Any], error: Exception) -> RecordError:
    rid = record.get("id", "<no id>") if isinstance(record, Mapping) else "<not a dict>"
    return RecordError(f"record {rid}: cannot be written as JSON ({error})")


def record_line(record: Mapping[str, Any]) -> bytes:
    """One JSONL line as UTF-8 bytes, newline included (the form the shards are written in).

    ``orjson`` (a pinned dependency, so the bytes are the same everywhere): compact separators
    (``,`` and ``:``, no spaces), keys in insertion order, non-ASCII characters written as UTF-8
    (not escaped), floats as their shortest round-trip text (the value Python's ``repr`` gives,
    spelt differently for some: ``1e-05`` is written ``0.00001``, ``2.5e-07`` ``2.5e-7``).
    Values must be plain JSON types (``dict``/``list``/``str``/``int``/``float``/``bool``/
    ``None``; no numpy scalars): anything else raises :class:`RecordError`.
    """
    try:
        return orjson.dumps(record, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError as error:
        raise _encode_error(record, error) from None


def dumps_record(record: Mapping[str, Any]) -> str:
    """:func:`record_line` as text, without the trailing newline."""
    try:
        return orjson.dumps(record).decode()
    except orjson.JSONEncodeError as error:
        raise _encode_error(record, error) from None

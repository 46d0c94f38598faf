"""The contract between the generate pipeline and the task families.

Generation runs in three stages (``multispa.pipeline.generate``):

1. **plan** (one process, per split): each family's ``plan`` reads the small per-unit tables it
   needs (pair tables, poses, object tables, tracks) from every cache unit of the split, applies
   eligibility rules and the pooled samplers (docs/labels.md#sampling), and returns
   :class:`Selection` rows: *which* frames (and object or track) each record will use.
2. **generate** (parallel, one work unit per (split, cache unit, family)): the family's
   ``generate`` turns that unit's selections into records — sampling points, drawing markers,
   rendering templates — with one RNG per selection from :meth:`UnitContext.rng`, so a record
   does not depend on the order or on the other records.
3. **merge**: shards are concatenated per (split, subtask[, source]) in sorted unit order.

A family module exposes a class implementing :class:`TaskFamily` and registers it in
``multispa.tasks.registry``. The families subclass :class:`multispa.tasks.planning.PlannedFamily`,
whose ``plan`` runs the planning prologue they share (wanted subtasks, template check, unit
order, per-subtask generators) and leaves the family's own rules to ``plan_selections``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from PIL import Image

from multispa.errors import ConfigError
from multispa.tasks.templates import DEFAULT_VIEWS, MAX_VIEWS, MIN_VIEWS

SPLITS = ("train", "val")


def stable_seed(*key: object) -> int:
    """A 64-bit integer from SHA-256 of the canonical JSON of ``key`` (never Python ``hash``)."""
    text = json.dumps(list(key), sort_keys=True, separators=(",", ":"), default=str)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def rng_for(seed: int, *key: object) -> np.random.Generator:
    """Independent generator for ``key`` under the master ``seed`` (docs/labels.md#randomness)."""
    return np.random.default_rng(np.random.SeedSequence([seed, stable_seed(*key)]))


@dataclass(frozen=True)
class CacheUnit:
    """One prepared scene or clip of a split.

    Attributes:
        unit_id: ``"scannet/<scene>"`` or ``"tapvid3d/<subset>/<clip>"``.
        path: its cache folder.
        split: ``"train"`` or ``"val"``.
    """

    unit_id: str
    path: Path
    split: str

    @property
    def dataset(self) -> str:
        """``"scannet"`` or ``"tapvid3d"``."""
        return self.unit_id.split("/", 1)[0]

    @property
    def name(self) -> str:
        """Scene id, or clip id."""
        return self.unit_id.rsplit("/", 1)[1]

    @property
    def source(self) -> str:
        """``meta.source``: ``"scannet"``, ``"tapvid3d/adt"`` or ``"tapvid3d/pstudio"``."""
        parts = self.unit_id.split("/")
        return "scannet" if parts[0] == "scannet" else f"tapvid3d/{parts[1]}"


@dataclass(frozen=True)
class Selection:
    """One planned record.

    Attributes:
        subtask: one of the 22 subtask names.
        unit_id: the cache unit it draws from.
        frames: original frame indices (ScanNet ``.sens`` index, or clip frame) in prompt order.
        extra: JSON-able details fixed by the planner, e.g. ``{"overlap": 17.42}`` for pairs,
            ``{"object_id": 3}`` for object size, ``{"track": 12, "group": 0, "reversed":
            false}`` for object movement. Families document their keys.
    """

    subtask: str
    unit_id: str
    frames: tuple[int, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON form (the plan is stored on disk between stages)."""
        return {
            "subtask": self.subtask,
            "unit_id": self.unit_id,
            "frames": list(self.frames),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Selection:
        """Inverse of :meth:`to_json`."""
        return cls(data["subtask"], data["unit_id"], tuple(data["frames"]), dict(data["extra"]))


@dataclass(frozen=True)
class GenerateSettings:
    """Options of the families (defaults as documented; all reachable from the CLI).

    Attributes:
        mcq_difficulty: ``"easy"`` (default, the benchmark's) or ``"hard"`` distractors (rule (f)).
        jpeg_quality: quality of annotated (dot) images.
        object_pairs_cap: max minimal covering pairs per (object, dimension) in training
            (docs/labels.md#quotas).
        views: images per N-view prompt (the size of a view set), 2–32.
        view_sets_per_scene: view sets drawn per scene for the N-view family (None: one per 200
            kept frames, at least one).
    """

    mcq_difficulty: str = "easy"
    jpeg_quality: int = 90
    object_pairs_cap: int = 300
    views: int = DEFAULT_VIEWS
    view_sets_per_scene: int | None = None

    def __post_init__(self) -> None:
        if (isinstance(self.views, bool) or not isinstance(self.views, int)
                or not MIN_VIEWS <= self.views <= MAX_VIEWS):
            raise ConfigError(
                f"views must be an integer from {MIN_VIEWS} to {MAX_VIEWS}, got {self.views!r}"
            )
        sets = self.view_sets_per_scene
        if sets is not None and (isinstance(sets, bool) or not isinstance(sets, int) or sets < 1):
            raise ConfigError(f"view sets per scene must be a positive integer, got {sets!r}")


@dataclass
class UnitContext:
    """What a family's ``generate`` gets for one (split, cache unit).

    Attributes:
        unit: the cache unit.
        seed: master seed.
        out: output dataset folder (``images/`` lives below it).
        settings: family options.
        skipped: reason → count of candidates dropped while generating (added to the stats).
        scratch: folder for temporary files (a copy in progress), on the file system of
            ``out``; beside their targets when None. The pipeline gives one folder that it
            clears before a rerun, so a killed run leaves no temporary file in the output.
    """

    unit: CacheUnit
    seed: int
    out: Path
    settings: GenerateSettings
    skipped: dict[str, int] = field(default_factory=dict)
    scratch: Path | None = None
    _linked: set[int] = field(default_factory=set, init=False, repr=False, compare=False)
    _annotated_folders: dict[str, str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def split(self) -> str:
        """``"train"`` or ``"val"``."""
        return self.unit.split

    def rng(self, selection: Selection) -> np.random.Generator:
        """The record's own generator: from (seed, split, subtask, unit, frames, extra)."""
        return rng_for(
            self.seed,
            "record",
            self.split,
            selection.subtask,
            selection.unit_id,
            list(selection.frames),
            dict(selection.extra),
        )

    def skip(self, reason: str, count: int = 1) -> None:
        """Count ``count`` dropped candidates, e.g. ``"correspondence_mcq_dot:no_distractors"``
        (nothing is recorded for a count of 0)."""
        if count:
            self.skipped[reason] = self.skipped.get(reason, 0) + count

    def frame_image(self, frame: int) -> str:
        """Make the unit's frame available under ``images/`` and return its relative path.

        ScanNet: ``scannet/<scene>/<frame:05d>.jpg``; TAPVid-3D:
        ``tapvid3d/<subset>/<clip>/<frame:05d>.jpg``. Hard-linked from the cache when possible,
        copied otherwise; idempotent (a frame is checked on disk once per context).
        """
        relative = f"{self.unit.unit_id}/{frame:05d}.jpg"
        if frame in self._linked:
            return relative
        target = self.out / "images" / relative
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            source = self.unit.path / "images" / f"{frame:05d}.jpg"
            folder = target.parent if self.scratch is None else self.scratch
            temporary = folder / f".{target.name}.{os.getpid()}.tmp"
            try:
                os.link(source, temporary)
            except OSError:
                temporary.write_bytes(source.read_bytes())
            os.replace(temporary, target)
            # When another worker linked the same cached file at ``target`` meanwhile, both names
            # are the same inode and rename(2) leaves them both in place: drop the temporary one.
            temporary.unlink(missing_ok=True)
        self._linked.add(frame)
        return relative

    def write_annotated(self, record_id: str, subtask: str, k: int, image: Image.Image) -> str:
        """Save annotated image ``k`` of a record and return its relative path.

        The path is ``annotated/<split>/<subtask>/<id>_<k>.jpg``, encoded with the configured
        JPEG quality (deterministic bytes). The file is written in place, without a temporary
        name: annotated images belong to their unit's shard, which is marked done only after
        all of them are written, and a rerun regenerates an unfinished unit whole, rewriting
        (truncating) each of its images with the same bytes; so an interrupted write never
        survives into a finished output, and no temporary file is ever left behind. (Creating
        a second name and renaming costs a directory operation per image.)
        """
        relative = f"annotated/{self.split}/{subtask}/{record_id}_{k}.jpg"
        folder = self._annotated_folders.get(subtask)
        if folder is None:
            folder = os.path.join(self.out, "images", "annotated", self.split, subtask)
            os.makedirs(folder, exist_ok=True)
            self._annotated_folders[subtask] = folder
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        rgb.save(f"{folder}/{record_id}_{k}.jpg", format="JPEG", quality=self.settings.jpeg_quality)
        return relative


class TaskFamily(Protocol):
    """One task family: pooled planning and per-unit record generation.

    A family may also define ``generate_lines(ctx, selections) -> Iterator[bytes]``: the JSONL
    lines (:func:`multispa.tasks.records.record_line`) of exactly the records ``generate``
    yields, with the same side effects, made without the dicts; the pipeline writes shards
    with it when present (:func:`multispa.pipeline.generate.write_shard`).
    """

    family: ClassVar[str]
    subtasks: ClassVar[tuple[str, ...]]
    dataset: ClassVar[str]  # "scannet" or "tapvid3d": which cache units it reads

    def plan(
        self,
        split: str,
        units: Sequence[CacheUnit],
        quotas: Mapping[str, int | None],
        seed: int,
        settings: GenerateSettings,
    ) -> tuple[list[Selection], dict[str, int]]:
        """Select the records of ``split`` over all its units.

        Args:
            split: ``"train"`` or ``"val"`` (val: the benchmark-mode parameters,
                docs/labels.md#benchmark-pool).
            units: this split's cache units of the family's dataset, sorted by ``unit_id``.
            quotas: per subtask of the family, the number of records wanted (None: no cap,
                e.g. object movement training); subtasks absent from ``quotas`` are not planned.
            seed: master seed; use :func:`rng_for` with keys naming the split and subtask.
            settings: family options.

        Returns:
            The selections (any order; the pipeline groups them by unit) and reason-coded
            counts of dropped candidates (e.g. ``{"camera_x_direction:dead_zone": 1234}``).
        """
        ...

    def generate(self, ctx: UnitContext, selections: Sequence[Selection]) -> Iterator[dict]:
        """Yield the records (docs/data-formats.md#records, as dicts) of one unit's selections, in
        their order.

        A selection that turns out impossible (e.g. no valid distractors) is skipped with
        ``ctx.skip(reason)``.
        """
        ...

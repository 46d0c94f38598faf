"""What the dataset exports share: staged atomic output, results, reloaded samples, dispatch.

``multispa export --dataset DS --format F --out OUT`` writes one of:

- ``llava`` (:mod:`multispa.formats.llava`): LLaVA/ShareGPT JSON per split;
- ``openai-messages`` (:mod:`multispa.formats.messages`): chat-messages JSONL per split for TRL,
  LLaMA-Factory and ms-swift, plus a LLaMA-Factory ``dataset_info.json``;
- ``hf-parquet`` (:mod:`multispa.formats.hf_parquet`): a Hugging Face ``datasets`` Parquet
  folder with the images embedded, and its dataset card;
- ``internvl`` (:mod:`multispa.formats.internvl`): meta JSON files for InternVL's fine-tuning
  script, pointing at the dataset's own ``.jsonl`` files by absolute path;
- ``rl`` (:mod:`multispa.formats.rl`): Parquet rows of prompt, images and ground truth that
  TRL's ``GRPOTrainer`` consumes with :func:`multispa.metrics.reward.reward`.

Every export also writes ``OUT/multispa_export.json`` (format, options, source dataset, image
folder, records and files per split; no timestamps). Output is atomic: files are written under a
hidden ``OUT/.multispa-export-*`` folder and moved into place only once all of them are
complete; on any error the staged files are deleted and ``OUT`` is left as it was. On success,
the files of an earlier export of the same format in ``OUT`` (every split) are replaced, so
``OUT`` holds exactly this export; other files are left alone. Use one ``OUT`` per format.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from multispa import __version__
from multispa.errors import ConfigError
from multispa.formats.dataset_source import DatasetSource
from multispa.fs import check_output_dir, output_folder

__all__ = [
    "DATASET_FORMATS",
    "EXPORT_MANIFEST",
    "IMAGE_PATH_STYLES",
    "ExportResult",
    "Sample",
    "StagedOutput",
    "check_out_dir",
    "check_style",
    "export_dataset",
    "export_manifest",
    "image_reference",
]

#: ``--format`` names of the dataset exports.
DATASET_FORMATS: tuple[str, ...] = ("llava", "openai-messages", "hf-parquet", "internvl", "rl")

#: How image paths are written: relative to the dataset's ``images/`` folder, or absolute.
IMAGE_PATH_STYLES: tuple[str, ...] = ("relative", "absolute")

#: The self-description every dataset export writes into ``OUT``.
EXPORT_MANIFEST = "multispa_export.json"


@dataclass(frozen=True)
class Sample:
    """One exported question as a format's reader gives it back (for round-trip checks).

    Attributes:
        id: the record id.
        question: the user turn with one ``<image>`` placeholder per image, in prompt order.
        answer: the assistant turn.
        images: the image references as the export wrote them (paths; relative or absolute).
        image_bytes: the embedded image files, in the same order (``hf-parquet`` only).
    """

    id: str
    question: str
    answer: str
    images: tuple[str, ...]
    image_bytes: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ExportResult:
    """What a dataset export wrote.

    Attributes:
        format: the format name (:data:`DATASET_FORMATS`).
        out: the output folder (absolute).
        counts: records written per split, in split order.
        files: every file written (absolute paths), :data:`EXPORT_MANIFEST` included.
        image_folder: the folder relative image paths resolve against (``DS/images``).
        notes: one-line hints on how to use the output (printed by the CLI).
    """

    format: str
    out: Path
    counts: dict[str, int]
    files: tuple[Path, ...]
    image_folder: Path | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line: ``llava -> OUT: train 1200, val 300 records (3 files)``."""
        counts = ", ".join(f"{split} {n}" for split, n in self.counts.items())
        return f"{self.format} -> {self.out}: {counts} records ({len(self.files)} files)"


def image_reference(source: DatasetSource, rel: str, style: str) -> str:
    """An image path as written by an export: ``rel`` itself, or its absolute path."""
    return rel if style == "relative" else str(source.image_path(rel))


def check_out_dir(source: DatasetSource, out: str | Path) -> Path:
    """The absolute output folder; refuse the dataset folder itself and existing files.

    Raises:
        ConfigError: ``out`` is the dataset folder (an export would overwrite its meta files).
        OutputError: ``out`` is an existing file, or lies under one.
    """
    path = Path(out).resolve()
    if path == source.root:
        raise ConfigError(f"--out {path} is the dataset folder itself: choose another folder")
    check_output_dir(path)
    return path


def check_style(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise :class:`ConfigError` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(choices)}")


def export_manifest(
    format_name: str,
    source: DatasetSource,
    counts: Mapping[str, int],
    files: Mapping[str, Sequence[str]],
    options: Mapping[str, Any],
) -> str:
    """The text of :data:`EXPORT_MANIFEST` (sorted JSON; paths of ``files`` relative to OUT)."""
    content = {
        "format": format_name,
        "multispa_version": __version__,
        "dataset": str(source.root),
        "image_folder": str(source.images_root),
        "options": dict(options),
        "splits": {split: {"records": counts[split], "files": list(files.get(split, []))}
                   for split in counts},
    }
    return json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


class StagedOutput:
    """Atomic multi-file output into a folder (module docstring).

    Use as a context manager; :meth:`path` gives the staging path of a file to be placed at
    ``out/rel``. A clean exit deletes the earlier files matching ``replaces`` (glob patterns
    relative to ``out``) and moves the staged files into place; an exception deletes the staged
    files (and ``out`` if this export created it and it is empty).
    """

    def __init__(self, out: Path, replaces: Iterable[str]) -> None:
        self.out = out
        self.replaces = tuple(replaces)
        self.final: list[Path] = []
        self._staging: Path | None = None
        self._folder = contextlib.ExitStack()
        self._staged: list[str] = []

    def __enter__(self) -> StagedOutput:
        # checked, created and locked; on failure, removed again if this export created it
        self._folder.enter_context(output_folder(self.out, "multispa export"))
        try:
            self._staging = Path(tempfile.mkdtemp(prefix=".multispa-export-", dir=self.out))
        except BaseException as error:
            self._folder.__exit__(type(error), error, error.__traceback__)
            raise
        return self

    def path(self, rel: str) -> Path:
        """The staging path for the file that will end up at ``out/rel``."""
        if self._staging is None:
            raise RuntimeError("StagedOutput.path() outside its `with` block")
        target = self._staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel not in self._staged:
            self._staged.append(rel)
        return target

    def rename(self, old: str, new: str) -> None:
        """Give the staged file ``old`` its final name ``new`` (both relative to ``out``)."""
        if self._staging is None or old not in self._staged:
            raise RuntimeError(f"StagedOutput.rename(): {old!r} is not staged")
        target = self.path(new)
        os.replace(self._staging / old, target)
        self._staged.remove(old)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        staging = self._staging
        if staging is None:
            return
        try:
            if exc_type is None:
                self._place(staging)
        except BaseException as error:
            shutil.rmtree(staging, ignore_errors=True)
            self._folder.__exit__(type(error), error, error.__traceback__)
            raise
        shutil.rmtree(staging, ignore_errors=True)
        self._folder.__exit__(exc_type, exc, traceback)

    def _place(self, staging: Path) -> None:
        """Delete the replaced files and move the staged ones into place."""
        for pattern in self.replaces:
            for old in self.out.glob(pattern):
                if old.is_file():
                    old.unlink()
        for rel in self._staged:
            target = self.out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, target)
            self.final.append(target)


def export_dataset(
    dataset: str | Path, out: str | Path, format_name: str, *, split: str = "all",
    **options: Any,
) -> ExportResult:
    """Export a dataset folder in ``format_name`` (:data:`DATASET_FORMATS`) into ``out``.

    ``options`` go to the format's writer: ``image_paths`` (llava, openai-messages), ``content``
    (openai-messages, hf-parquet), ``max_shard_bytes`` (hf-parquet, rl), ``repeat_time``
    (internvl).

    Raises:
        ConfigError: unknown format or option value.
        MissingFileError, FormatError, DatasetError: a bad dataset (see
            :mod:`multispa.formats.dataset_source`).
    """
    if format_name == "llava":
        from multispa.formats.llava import export_llava

        return export_llava(dataset, out, split=split, **options)
    if format_name == "openai-messages":
        from multispa.formats.messages import export_messages

        return export_messages(dataset, out, split=split, **options)
    if format_name == "hf-parquet":
        from multispa.formats.hf_parquet import export_hf_parquet

        return export_hf_parquet(dataset, out, split=split, **options)
    if format_name == "internvl":
        from multispa.formats.internvl import export_internvl

        return export_internvl(dataset, out, split=split, **options)
    if format_name == "rl":
        from multispa.formats.rl import export_rl

        return export_rl(dataset, out, split=split, **options)
    raise ConfigError(f"unknown dataset export format {format_name!r}: expected one of "
                      f"{', '.join(DATASET_FORMATS)}")

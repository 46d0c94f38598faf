"""The length scan: every record of a meta file is parsed, validated and measured once before
training; records longer than ``max_length`` are dropped and counted. What remains is a compact
index (annotation file, line, byte offset, tokens per record), expanded by each entry's
``repeat_time`` into the training order's sample list. Records are re-read by offset when a
sample is encoded, so memory does not grow with the text of millions of records.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multispa.errors import FormatError
from multispa.train.data import MetaEntry, Sample, iter_annotation, read_sample

__all__ = [
    "DroppedSample",
    "SampleIndex",
    "ScanReport",
    "expand",
    "load_scan",
    "save_scan",
    "scan",
]

logger = logging.getLogger(__name__)

#: Dropped records listed by id in the summary (all are counted).
_LISTED_DROPS = 100


@dataclass(frozen=True)
class DroppedSample:
    """A record left out of training: id, ``FILE:LINE`` and its length in tokens."""

    id: str
    origin: str
    tokens: int


@dataclass
class ScanReport:
    """What the length scan found.

    Attributes:
        records: records read, per meta entry.
        kept: records within ``max_length``, per meta entry.
        dropped_too_long: count of records over ``max_length``.
        dropped: the first dropped records (at most 100).
        max_tokens: the longest kept record, tokens.
    """

    records: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    dropped_too_long: int = 0
    dropped: list[DroppedSample] = field(default_factory=list)
    max_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "records": dict(self.records), "kept": dict(self.kept),
            "dropped_too_long": self.dropped_too_long,
            "dropped_listed": [vars(d) for d in self.dropped],
            "max_tokens": self.max_tokens,
        }


@dataclass(frozen=True)
class SampleIndex:
    """Kept records: parallel ``(N,)`` arrays.

    Attributes:
        entries: the meta entries (``entry`` indexes this list).
        entry: int32 entry index of each record.
        line: int64 1-based line number in the entry's annotation file.
        offset: int64 byte offset of the line.
        tokens: int32 encoded length, tokens.
    """

    entries: tuple[MetaEntry, ...]
    entry: np.ndarray
    line: np.ndarray
    offset: np.ndarray
    tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.entry.shape[0])

    def sample(self, position: int) -> Sample:
        """Re-read the record at ``position`` from its annotation file."""
        entry = self.entries[int(self.entry[position])]
        return read_sample(entry, int(self.line[position]), int(self.offset[position]))


def scan(
    entries: Sequence[MetaEntry], measure: Callable[[Sample], int], max_length: int, *,
    progress: bool = False,
) -> tuple[SampleIndex, ScanReport]:
    """Parse and measure every record of ``entries``; keep those of at most ``max_length``
    tokens.

    Args:
        entries: meta entries (:func:`multispa.train.data.read_meta`).
        measure: tokens of one sample (:meth:`Encoder.predicted_length`); it raises for a
            missing or unreadable image.
        max_length: token limit.
        progress: show a progress bar.

    Raises:
        FormatError, MissingFileError: from parsing or measuring, naming the file and line.
    """
    from tqdm import tqdm

    report = ScanReport()
    columns: dict[str, list[int]] = {"entry": [], "line": [], "offset": [], "tokens": []}
    total = sum(e.length or 0 for e in entries) or None
    with tqdm(total=total, desc="length scan", unit="rec", disable=not progress) as bar:
        for number, entry in enumerate(entries):
            read = kept = 0
            for line, offset, sample in iter_annotation(entry):
                read += 1
                tokens = measure(sample)
                bar.update(1)
                if tokens > max_length:
                    report.dropped_too_long += 1
                    if len(report.dropped) < _LISTED_DROPS:
                        report.dropped.append(DroppedSample(sample.id, sample.origin, tokens))
                    continue
                kept += 1
                report.max_tokens = max(report.max_tokens, tokens)
                for key, value in (("entry", number), ("line", line), ("offset", offset),
                                   ("tokens", tokens)):
                    columns[key].append(value)
            report.records[entry.name] = read
            report.kept[entry.name] = kept
    if report.dropped_too_long:
        logger.warning("%d records longer than %d tokens dropped", report.dropped_too_long,
                       max_length)
    index = SampleIndex(
        entries=tuple(entries),
        entry=np.asarray(columns["entry"], dtype=np.int32),
        line=np.asarray(columns["line"], dtype=np.int64),
        offset=np.asarray(columns["offset"], dtype=np.int64),
        tokens=np.asarray(columns["tokens"], dtype=np.int32),
    )
    return index, report


_ARRAYS = ("entry", "line", "offset", "tokens")


def save_scan(folder: Path, index: SampleIndex, report: ScanReport, key: str) -> None:
    """Write the scan result to ``folder/scan_index.npz`` and ``folder/scan_report.json``;
    ``key`` fingerprints everything the result depends on (see :func:`load_scan`)."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = folder / "scan_index.npz"
    with arrays.with_suffix(".tmp").open("wb") as handle:
        np.savez(handle, **{name: getattr(index, name) for name in _ARRAYS})
    arrays.with_suffix(".tmp").replace(arrays)
    payload = {"key": key, "report": report.to_dict()}
    tmp = folder / "scan_report.json.tmp"
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(folder / "scan_report.json")


def load_scan(
    folder: Path, entries: Sequence[MetaEntry], key: str,
) -> tuple[SampleIndex, ScanReport] | None:
    """The scan saved by :func:`save_scan` in ``folder`` if its ``key`` equals ``key``, else
    None.

    Raises:
        FormatError: the saved files exist with the right key but are malformed.
    """
    report_path, arrays_path = folder / "scan_report.json", folder / "scan_index.npz"
    if not (report_path.is_file() and arrays_path.is_file()):
        return None
    try:
        payload = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(report_path, f"not a scan report: {error}") from None
    if not isinstance(payload, dict) or payload.get("key") != key:
        return None
    try:
        data = payload["report"]
        report = ScanReport(
            records=dict(data["records"]), kept=dict(data["kept"]),
            dropped_too_long=int(data["dropped_too_long"]),
            dropped=[DroppedSample(**d) for d in data["dropped_listed"]],
            max_tokens=int(data["max_tokens"]),
        )
        with np.load(arrays_path, allow_pickle=False) as arrays:
            columns = {name: arrays[name] for name in _ARRAYS}
    except (KeyError, TypeError, ValueError, OSError) as error:
        raise FormatError(arrays_path, f"malformed scan cache ({error}); delete it") from None
    return SampleIndex(entries=tuple(entries), **columns), report


def expand(index: SampleIndex, *, seed: int, max_samples: int | None = None) -> np.ndarray:
    """Positions into ``index`` forming the training set, ``(S,)`` int64.

    Each entry contributes ``floor(repeat_time)`` copies of its kept records plus a seeded
    random ``repeat_time - floor(repeat_time)`` fraction of them. With ``max_samples``, a seeded
    random subset of that many positions is kept (in order). The trainer shuffles the result.
    """
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    for number, entry in enumerate(index.entries):
        positions = np.flatnonzero(index.entry == number)
        whole = int(np.floor(entry.repeat_time))
        parts.extend([positions] * whole)
        fraction = entry.repeat_time - whole
        if fraction > 0 and positions.size:
            count = round(fraction * positions.size)
            parts.append(np.sort(rng.choice(positions, size=count, replace=False)))
    selected = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    if max_samples is not None and selected.size > max_samples:
        keep = np.sort(rng.choice(selected.size, size=max_samples, replace=False))
        selected = selected[keep]
    return selected.astype(np.int64)

"""Reference baselines: ``baseline:chance``, ``baseline:prior`` and ``baseline:oracle``.

Each answers with a short sentence holding one backticked value (formatted by
:func:`multispa.tasks.answers.format_answer`), so the scorer parses every answer.

- **chance**: a label or choice drawn uniformly from the subtask's options
  (``SUBTASKS[subtask].options``; for the N-view nearest view, the image numbers of the item,
  ``1`` … its image count); a scalar, vector or coordinate drawn uniformly from the
  ground truths of the item's benchmark-subtask key in the statistics source;
  ``depth_comparison_coord`` picks one of the two points the question offers (chance = 1/2).
- **prior**: the most frequent label or choice of the key (ties go to the earlier option), the
  median scalar and the component-wise median vector or coordinate (halves rounded away from
  zero); ``depth_comparison_coord`` answers the point at the position (first or second mention)
  that is most often correct.
- **oracle**: the item's ground truth (must score 100 %).

Statistics source: the ``train`` split of a dataset folder given as ``prior_from`` (every
``train/*/*.jsonl`` record), or else the benchmark itself **leave-one-out**: the item's own
ground truth is excluded from the values its chance draw and its prior median come from. The
prior's most frequent label, choice or comparison position is counted over the whole key,
own item included — one constant answer per key, the usual frequency baseline. Counting it
leave-one-out would answer the *other* label on a balanced key (with ``k`` lefts and ``k``
rights, every left item sees ``k-1`` lefts against ``k`` rights), i.e. score 0 % where any
constant answer scores 50 %. A key without train records falls back to the benchmark and is
listed in :meth:`BaselineBackend.describe`. With no statistics at all the answer is a fixed
neutral value (0, ``[ 0 , 0 , 0 ]``, ``[ 500 , 500 ]``).

Every answer is deterministic: the chance draws come from
``rng_for(seed, "baseline", kind, item id)``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multispa.errors import ConfigError, FormatError
from multispa.evaluate.backends.base import EvalItem, Prediction
from multispa.jsonl import iter_jsonl_objects
from multispa.metrics.rows import benchmark_key
from multispa.tasks.answers import format_answer, round_half_away
from multispa.tasks.base import rng_for
from multispa.tasks.templates import SUBTASKS

__all__ = ["BASELINES", "BaselineBackend", "comparison_candidates"]

BASELINES: tuple[str, ...] = ("chance", "prior", "oracle")
_NEUTRAL: Mapping[str, Any] = {"scalar": 0, "vector": (0, 0, 0), "coord": (500, 500)}
_COMPARISON = "depth_comparison_coord"


def _cell(u: float, v: float, width: int, height: int) -> tuple[int, int]:
    """The normalised ``[x, y]`` of pixel ``(u, v)`` (docs/labels.md#coordinates), as the generator
    computes it."""
    x = min(max(math.floor(float(u) * 1000.0 / width), 0), 999)
    y = min(max(math.floor(float(v) * 1000.0 / height), 0), 999)
    return x, y


def comparison_candidates(record: Mapping[str, Any]) -> tuple[list[tuple[int, int]], int]:
    """The two offered points of a ``depth_comparison_coord`` record and the correct one's index.

    Returns:
        ``([(x, y), (x, y)], correct)``: normalised coordinates in order of mention, from
        ``meta.points[0]`` (pixels) and the last image's size; the correct candidate's entry is
        ``gt`` itself. The correct index is the candidate whose cell equals ``gt``, else the one
        nearer to ``gt`` (the stored pixels are rounded to 2 decimals), as the judge decides.

    Raises:
        ValueError: the record lacks two candidate points or image sizes.
    """
    try:
        (ua, va), (ub, vb) = record["meta"]["points"][0]
        width, height = int(record["width_list"][-1]), int(record["height_list"][-1])
        gx, gy = (int(c) for c in record["gt"])
    except (KeyError, IndexError, TypeError, ValueError):
        raise ValueError(f"record {record.get('id')}: depth_comparison_coord needs gt, "
                         "meta.points[0] with two points and the image size") from None
    cells = [_cell(ua, va, width, height), _cell(ub, vb, width, height)]
    matches = [i for i, c in enumerate(cells) if c == (gx, gy)]
    if len(matches) == 1:
        correct = matches[0]
    else:
        d = [(c[0] - gx) ** 2 + (c[1] - gy) ** 2 for c in cells]
        correct = 0 if d[0] <= d[1] else 1
    cells[correct] = (gx, gy)
    return cells, correct


def _stat_value(record: Mapping[str, Any]) -> Any:
    """The value a record contributes to its key's statistics (hashable)."""
    answer_type, gt = record["answer_type"], record["gt"]
    if record["subtask"] == _COMPARISON:
        return comparison_candidates(record)[1]
    if answer_type == "label":
        return str(gt).strip().lower()
    if answer_type == "choice":
        return str(gt).strip().upper()
    if answer_type == "scalar":
        return int(gt)
    return tuple(int(c) for c in gt)


@dataclass
class _KeyStats:
    """One key's statistics: values, and the index of each benchmark id (leave-one-out)."""

    values: list[Any] = field(default_factory=list)
    index_of: dict[str, int] = field(default_factory=dict)
    leave_one_out: bool = False
    _sorted: np.ndarray | None = None
    _counts: Counter[Any] | None = None
    _median: tuple[int, ...] | None = None

    def add(self, value: Any, rid: str | None) -> None:
        if rid is not None:
            self.index_of[rid] = len(self.values)
        self.values.append(value)
        self._sorted = self._median = self._counts = None

    def own_index(self, rid: str) -> int | None:
        return self.index_of.get(rid) if self.leave_one_out else None

    def count(self, rid: str) -> int:
        return len(self.values) - (self.own_index(rid) is not None)

    def counter(self) -> Counter[Any]:
        """Counts of every value of the key (own item included; module docstring)."""
        if self._counts is None:
            self._counts = Counter(self.values)
        return self._counts

    def draw(self, rid: str, rng: np.random.Generator) -> Any:
        """A uniform draw among the values, the item's own excluded (leave-one-out)."""
        own = self.own_index(rid)
        j = int(rng.integers(self.count(rid)))
        if own is not None and j >= own:
            j += 1
        return self.values[j]

    def median(self, rid: str) -> tuple[int, ...]:
        """Component-wise median (halves rounded away from zero), own value excluded."""
        if self._sorted is None:
            array = np.array([np.atleast_1d(v) for v in self.values], dtype=np.float64)
            self._sorted = np.sort(array, axis=0)
        array = self._sorted
        own = self.own_index(rid)
        if own is None:
            if self._median is None:
                self._median = tuple(round_half_away(float(m)) for m in np.median(array, axis=0))
            return self._median
        value = np.atleast_1d(np.asarray(self.values[own], dtype=np.float64))
        columns = []
        for c in range(array.shape[1]):
            position = int(np.searchsorted(array[:, c], value[c]))
            columns.append(np.delete(array[:, c], position))
        array = np.stack(columns, axis=1)
        return tuple(round_half_away(float(m)) for m in np.median(array, axis=0))


def _train_records(dataset: Path) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    files = sorted((dataset / "train").glob("*/*.jsonl"))
    if not files:
        raise ConfigError(f"--prior-from {dataset}: no train split (expected "
                          "train/<task>/*.jsonl)")
    for path in files:
        for number, record in iter_jsonl_objects(path):
            yield path, number, record


def _checked(record: Mapping[str, Any], where: str) -> tuple[str, Any]:
    """``(benchmark key, statistics value)`` of a record, or a FormatError naming ``where``."""
    subtask = record.get("subtask")
    spec = SUBTASKS.get(subtask)  # type: ignore[arg-type]
    if spec is None or record.get("answer_type") != spec.answer_type or "gt" not in record:
        raise FormatError(where, f"record {record.get('id')!r}: needs a known subtask, its "
                                 f"answer_type and gt (found subtask {subtask!r})")
    try:
        return benchmark_key(record), _stat_value(record)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise FormatError(where, f"record {record.get('id')!r}: bad gt or meta: {exc}") from None


class BaselineBackend:
    """``baseline:<kind>`` (module docstring).

    Args:
        kind: ``"chance"``, ``"prior"`` or ``"oracle"``.
        records: every benchmark item (not only those asked): the leave-one-out statistics,
            so that answers do not depend on which items a (resumed) run asks.
        seed: master seed of the chance draws.
        prior_from: a dataset folder whose ``train`` split gives the statistics.
    """

    def __init__(
        self, kind: str, records: Sequence[Mapping[str, Any]], *, seed: int = 0,
        prior_from: str | Path | None = None,
    ) -> None:
        if kind not in BASELINES:
            raise ConfigError(f"unknown baseline {kind!r}; expected one of {BASELINES}")
        self.kind = kind
        self.name = f"baseline:{kind}"
        self.seed = seed
        self.prior_from = Path(prior_from) if prior_from is not None else None
        self._stats: dict[str, _KeyStats] = {}
        self._fallback_keys: list[str] = []
        self._train_records = 0
        if kind != "oracle":
            self._build_stats(records)

    def _build_stats(self, records: Sequence[Mapping[str, Any]]) -> None:
        bench: dict[str, _KeyStats] = {}
        for record in records:
            key, value = _checked(record, "<benchmark>")
            bench.setdefault(key, _KeyStats(leave_one_out=True)).add(value, str(record["id"]))
        if self.prior_from is None:
            self._stats = bench
            return
        train: dict[str, _KeyStats] = {}
        for path, number, record in _train_records(self.prior_from):
            key, value = _checked(record, f"{path}:{number}")
            train.setdefault(key, _KeyStats()).add(value, None)
            self._train_records += 1
        self._fallback_keys = sorted(set(bench) - set(train))
        self._stats = {**{k: bench[k] for k in self._fallback_keys}, **train}

    def describe(self) -> dict[str, Any]:
        """The settings that shape the answers (recorded in the run's config)."""
        if self.kind == "oracle":
            return {"baseline": "oracle", "statistics": None}
        if self.prior_from is None:
            source = "benchmark, leave-one-out"
        else:
            source = f"train split of {self.prior_from.resolve()}"
        return {
            "baseline": self.kind,
            "seed": self.seed,
            "statistics": source,
            "prior_from": str(self.prior_from.resolve()) if self.prior_from else None,
            "train_records": self._train_records,
            "fallback_keys_leave_one_out": list(self._fallback_keys),
        }

    # ------------------------------------------------------------------------------ answers

    def answer_value(self, item: EvalItem) -> Any:
        """The answer value (in ``gt`` form) for one item."""
        record = item.record
        answer_type, subtask = item.answer_type, item.subtask
        if self.kind == "oracle":
            return record["gt"]
        rng = rng_for(self.seed, "baseline", self.kind, item.id)
        options = SUBTASKS[subtask].options_for(
            len(item.images) or len(record.get("image") or ()) or SUBTASKS[subtask].num_images
        )
        stats = self._stats.get(benchmark_key(record))
        if subtask == _COMPARISON:
            cells, _ = comparison_candidates(record)
            if self.kind == "chance":
                return cells[int(rng.integers(2))]
            counts = stats.counter() if stats else Counter()
            return cells[0 if counts[0] >= counts[1] else 1]
        if answer_type in ("label", "choice"):
            if self.kind == "chance":
                return options[int(rng.integers(len(options)))]
            counts = stats.counter() if stats else Counter()
            best = max(counts[o] for o in options)
            return next(o for o in options if counts[o] == best)
        if stats is None or stats.count(item.id) == 0:
            return _NEUTRAL[answer_type]
        if self.kind == "chance":
            return stats.draw(item.id, rng)
        median = stats.median(item.id)
        return median[0] if answer_type == "scalar" else median

    def answer(self, item: EvalItem) -> str:
        """The response text: a short sentence with the backticked value."""
        value = self.answer_value(item)
        return f"My answer is {format_answer(item.answer_type, value)}."

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        """One prediction per item, in order (instant)."""
        for item in items:
            yield Prediction(item.id, self.answer(item))

    def close(self) -> None:
        """Nothing to release."""

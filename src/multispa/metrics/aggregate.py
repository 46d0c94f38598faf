"""Aggregation of per-item outcomes into subtask, row and Average figures
(docs/metrics.md#aggregation).

- **Benchmark-subtask accuracy** = correct / items of that key (300 per key in the benchmark).
- **Row accuracy** is *pooled*: the summed correct counts of the row's subtasks over their summed
  item counts (so 773/900 = 85.89 % and 485/1200 = 40.42 %, as the paper prints).
- **Average** = the unweighted mean of the row accuracies, over the rows that have items; the
  rows without items are listed (the Average of a partial run is not the paper's Average).
- **N-view average** = the unweighted mean of the nine N-view subtask accuracies that have
  items (:func:`nview_average`); the N-view keys are in no row, so the Average never sees them.
- **MRA** (scalar/vector subtasks) is the mean item MRA per subtask and, pooled over items, per
  row; rows without MRA items have none.
- **Parse failures** count responses that were present but did not parse; missing predictions
  are counted separately (both are wrong).
- **Intervals**: percentile bootstrap over items, stratified by benchmark subtask. One joint set
  of resamples (each subtask's items redrawn with replacement, its size kept) gives the
  subtask, row (pooled) and Average (mean of the resampled rows, i.e. resampled within each row)
  intervals, for accuracy and MRA, from an explicit ``np.random.Generator``.

Every figure is in percent (``*_pct``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from multispa.metrics.rows import NVIEW_SUBTASKS, ROW_OF_SUBTASK, ROWS
from multispa.tasks.templates import BENCHMARK_SUBTASKS

__all__ = [
    "GroupStats",
    "Intervals",
    "ItemOutcome",
    "RowStats",
    "accuracy_pct",
    "bootstrap_intervals",
    "nview_average",
    "object_movement_breakdown",
    "ordered_keys",
    "pool",
    "pooled_accuracy_pct",
    "row_stats",
    "subtask_stats",
    "unweighted_average",
]

_KEY_ORDER = {key: i for i, key in enumerate(BENCHMARK_SUBTASKS)}
_MAX_RESAMPLE_CELLS = 1 << 22  # indices drawn per chunk (32 MiB of int64)


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """What aggregation needs of one judged item.

    Attributes:
        key: benchmark-subtask key (:func:`multispa.metrics.rows.benchmark_key`).
        correct: the judge's verdict.
        mra: item MRA in ``[0, 1]`` (scalar/vector subtasks) or ``None``.
        parse_failed: a response was present but nothing parsed.
        missing: no prediction for the record.
        moving: object movement only, ``meta.track.point_moving``; ``None`` elsewhere.
        extras: optional named metrics (:func:`multispa.metrics.judge.named_metrics`).
    """

    key: str
    correct: bool
    mra: float | None
    parse_failed: bool = False
    missing: bool = False
    moving: bool | None = None
    extras: Mapping[str, bool] | None = None


def accuracy_pct(correct: int, n: int) -> float | None:
    """``100·correct/n`` (``None`` when ``n == 0``)."""
    return 100.0 * correct / n if n else None


def pooled_accuracy_pct(counts: Iterable[tuple[int, int]]) -> float | None:
    """Pooled accuracy of ``(correct, n)`` pairs: ``100·Σcorrect/Σn``.

    >>> round(pooled_accuracy_pct([(260, 300), (255, 300), (258, 300)]), 2)
    85.89
    """
    correct = n = 0
    for c, m in counts:
        correct += c
        n += m
    return accuracy_pct(correct, n)


@dataclass(frozen=True)
class GroupStats:
    """Counts of a group of items (a subtask, a row, a breakdown cell) and derived rates."""

    n: int = 0
    correct: int = 0
    missing: int = 0
    parse_failures: int = 0
    mra_n: int = 0
    mra_sum: float = 0.0
    extras: Mapping[str, int] = field(default_factory=dict)

    @property
    def accuracy_pct(self) -> float | None:
        """``100·correct/n``."""
        return accuracy_pct(self.correct, self.n)

    @property
    def mra_pct(self) -> float | None:
        """Mean item MRA in percent (``None`` without MRA items)."""
        return 100.0 * self.mra_sum / self.mra_n if self.mra_n else None

    @property
    def parse_failure_rate_pct(self) -> float | None:
        """Parse failures over items, in percent."""
        return accuracy_pct(self.parse_failures, self.n)

    def to_json(self) -> dict[str, object]:
        """JSON-able summary (counts and percentages)."""
        out: dict[str, object] = {
            "n": self.n,
            "correct": self.correct,
            "accuracy_pct": self.accuracy_pct,
            "missing": self.missing,
            "parse_failures": self.parse_failures,
            "parse_failure_rate_pct": self.parse_failure_rate_pct,
            "mra_n": self.mra_n,
            "mra_pct": self.mra_pct,
        }
        for name, hits in self.extras.items():
            out[f"{name}_pct"] = accuracy_pct(hits, self.n)
        return out


def _stats_of(items: Iterable[ItemOutcome]) -> GroupStats:
    n = correct = missing = failures = mra_n = 0
    mra_sum = 0.0
    extras: dict[str, int] = {}
    for item in items:
        n += 1
        correct += item.correct
        missing += item.missing
        failures += item.parse_failed
        if item.mra is not None:
            mra_n += 1
            mra_sum += item.mra
        if item.extras:
            for name, hit in item.extras.items():
                extras[name] = extras.get(name, 0) + hit
    return GroupStats(n, correct, missing, failures, mra_n, mra_sum, extras)


def pool(groups: Iterable[GroupStats]) -> GroupStats:
    """Sum the counts of several groups (pooling)."""
    n = correct = missing = failures = mra_n = 0
    mra_sum = 0.0
    extras: dict[str, int] = {}
    for g in groups:
        n += g.n
        correct += g.correct
        missing += g.missing
        failures += g.parse_failures
        mra_n += g.mra_n
        mra_sum += g.mra_sum
        for name, hits in g.extras.items():
            extras[name] = extras.get(name, 0) + hits
    return GroupStats(n, correct, missing, failures, mra_n, mra_sum, extras)


def ordered_keys(keys: Iterable[str]) -> list[str]:
    """Benchmark-subtask keys in the canonical order (the subtask table), unknown keys last,
    sorted."""
    return sorted(set(keys), key=lambda k: (_KEY_ORDER.get(k, len(_KEY_ORDER)), k))


def _by_key(outcomes: Iterable[ItemOutcome]) -> dict[str, list[ItemOutcome]]:
    groups: dict[str, list[ItemOutcome]] = {}
    for item in outcomes:
        groups.setdefault(item.key, []).append(item)
    return {key: groups[key] for key in ordered_keys(groups)}


def subtask_stats(outcomes: Iterable[ItemOutcome]) -> dict[str, GroupStats]:
    """Per benchmark-subtask key (canonical order), the group's counts."""
    return {key: _stats_of(items) for key, items in _by_key(outcomes).items()}


@dataclass(frozen=True)
class RowStats:
    """One Table-2 row: pooled counts of its present subtasks and the ones with no items."""

    key: str
    name: str
    stats: GroupStats | None
    subtasks_present: tuple[str, ...]
    subtasks_missing: tuple[str, ...]


def row_stats(per_subtask: Mapping[str, GroupStats]) -> list[RowStats]:
    """The 12 rows (in Table-2 order), each pooling its subtasks' counts."""
    rows = []
    for row in ROWS:
        present = tuple(k for k in row.subtasks if k in per_subtask and per_subtask[k].n)
        missing = tuple(k for k in row.subtasks if k not in present)
        stats = pool(per_subtask[k] for k in present) if present else None
        rows.append(RowStats(row.key, row.name, stats, present, missing))
    return rows


def unweighted_average(
    row_values: Mapping[str, float | None],
) -> tuple[float | None, tuple[str, ...]]:
    """Mean of the rows' values over the rows that have one, and the keys of the others.

    ``row_values`` maps row keys (all 12 or some) to a percentage or ``None``; rows of
    :data:`multispa.metrics.rows.ROWS` absent from the mapping count as missing.
    """
    present = [row_values[r.key] for r in ROWS if row_values.get(r.key) is not None]
    missing = tuple(r.key for r in ROWS if row_values.get(r.key) is None)
    if not present:
        return None, missing
    return sum(present) / len(present), missing  # type: ignore[arg-type]


def nview_average(
    per_subtask: Mapping[str, GroupStats],
) -> tuple[float | None, tuple[str, ...]]:
    """Unweighted mean accuracy (%) of the N-view subtasks with items, and the keys without."""
    values = {key: per_subtask[key].accuracy_pct if key in per_subtask else None
              for key in NVIEW_SUBTASKS}
    present = [value for value in values.values() if value is not None]
    missing = tuple(key for key, value in values.items() if value is None)
    return (sum(present) / len(present) if present else None), missing


# ------------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Intervals:
    """Percentile-bootstrap intervals, ``(low, high)`` in percent.

    Attributes:
        level: coverage, e.g. 0.95.
        n_resamples: bootstrap resamples.
        subtasks, rows: accuracy intervals per key.
        average: interval of the unweighted Average over the present rows.
        subtask_mra, row_mra: MRA intervals (scalar/vector groups only).
        nview_average: interval of the N-view average over the present N-view keys.
    """

    level: float
    n_resamples: int
    subtasks: Mapping[str, tuple[float, float]]
    rows: Mapping[str, tuple[float, float]]
    average: tuple[float, float] | None
    subtask_mra: Mapping[str, tuple[float, float]]
    row_mra: Mapping[str, tuple[float, float]]
    nview_average: tuple[float, float] | None = None


def _resampled_sums(
    arrays: Sequence[np.ndarray], rng: np.random.Generator, n_resamples: int
) -> list[np.ndarray]:
    """Per array, ``(n_resamples,)`` sums of its values redrawn with replacement.

    ``arrays`` are ``(n,)`` float64 arrays of the same items, resampled with the same indices.
    """
    n = arrays[0].shape[0]
    out = [np.empty(n_resamples, dtype=np.float64) for _ in arrays]
    chunk = max(1, _MAX_RESAMPLE_CELLS // max(n, 1))
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for values, sums in zip(arrays, out, strict=True):
            sums[start:stop] = values[idx].sum(axis=1)
    return out


def bootstrap_intervals(
    outcomes: Sequence[ItemOutcome], rng: np.random.Generator, *, n_resamples: int = 1000,
    level: float = 0.95,
) -> Intervals:
    """Stratified percentile-bootstrap intervals for subtasks, rows and the Average.

    Args:
        outcomes: the judged items (any subset of the 26 keys).
        rng: the only source of randomness (e.g. ``np.random.default_rng(seed)``); keys are
            visited in canonical order, so the result is a function of the seed and the data.
        n_resamples: number of resamples (≥ 1).
        level: two-sided coverage in (0, 1).
    """
    if n_resamples < 1:
        raise ValueError(f"bootstrap_intervals: n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"bootstrap_intervals: level must lie in (0, 1), got {level}")
    tail = 50.0 * (1.0 - level)
    quantiles = (tail, 100.0 - tail)

    def interval(samples: np.ndarray) -> tuple[float, float]:
        low, high = np.percentile(samples, quantiles)
        return float(low), float(high)

    sums: dict[str, np.ndarray] = {}
    mra_sums: dict[str, np.ndarray] = {}
    sizes: dict[str, int] = {}
    for key, items in _by_key(outcomes).items():
        n = len(items)
        sizes[key] = n
        correct = np.fromiter((item.correct for item in items), dtype=np.float64, count=n)
        has_mra = all(item.mra is not None for item in items)
        if has_mra:
            mra = np.array([item.mra for item in items], dtype=np.float64)
            sums[key], mra_sums[key] = _resampled_sums([correct, mra], rng, n_resamples)
        else:
            (sums[key],) = _resampled_sums([correct], rng, n_resamples)

    subtasks = {key: interval(100.0 * s / sizes[key]) for key, s in sums.items()}
    subtask_mra = {key: interval(100.0 * s / sizes[key]) for key, s in mra_sums.items()}
    rows: dict[str, tuple[float, float]] = {}
    row_mra: dict[str, tuple[float, float]] = {}
    row_samples: list[np.ndarray] = []
    for row in ROWS:
        keys = [k for k in row.subtasks if k in sums]
        if not keys:
            continue
        total = sum(sizes[k] for k in keys)
        samples = 100.0 * np.sum([sums[k] for k in keys], axis=0) / total
        rows[row.key] = interval(samples)
        row_samples.append(samples)
        mra_keys = [k for k in keys if k in mra_sums]
        if mra_keys:
            mra_total = sum(sizes[k] for k in mra_keys)
            row_mra[row.key] = interval(
                100.0 * np.sum([mra_sums[k] for k in mra_keys], axis=0) / mra_total
            )
    average = interval(np.mean(row_samples, axis=0)) if row_samples else None
    nview_samples = [100.0 * sums[k] / sizes[k] for k in NVIEW_SUBTASKS if k in sums]
    nview = interval(np.mean(nview_samples, axis=0)) if nview_samples else None
    return Intervals(level, n_resamples, subtasks, rows, average, subtask_mra, row_mra, nview)


# ------------------------------------------------------------------------------- breakdowns


def object_movement_breakdown(outcomes: Iterable[ItemOutcome]) -> dict[str, object]:
    """ADT vs PStudio and static vs moving counts for the object-movement items.

    Returns ``{"by_source": {"adt", "pstudio"}, "by_motion": {"static", "moving"},
    "rows": {row_key: {"adt", "pstudio", "static", "moving"}}}``, each a
    :meth:`GroupStats.to_json` dict (groups without items are omitted). Items whose
    ``moving`` is unknown count in the source cells only.
    """
    cells: dict[tuple[str, str], list[ItemOutcome]] = {}
    for item in outcomes:
        row = ROW_OF_SUBTASK.get(item.key)
        if row not in ("object_movement_distance", "object_movement_vector"):
            continue
        source = item.key.rsplit(":", 1)[1]
        for scope in ("all", row):
            cells.setdefault((scope, source), []).append(item)
            if item.moving is not None:
                cells.setdefault((scope, "moving" if item.moving else "static"), []).append(item)

    def cell(scope: str, name: str) -> dict[str, object] | None:
        items = cells.get((scope, name))
        return _stats_of(items).to_json() if items else None

    def group(scope: str, names: tuple[str, ...]) -> dict[str, object]:
        found = {name: cell(scope, name) for name in names}
        return {name: value for name, value in found.items() if value is not None}

    return {
        "by_source": group("all", ("adt", "pstudio")),
        "by_motion": group("all", ("static", "moving")),
        "rows": {
            row: group(row, ("adt", "pstudio", "static", "moving"))
            for row in ("object_movement_distance", "object_movement_vector")
        },
    }

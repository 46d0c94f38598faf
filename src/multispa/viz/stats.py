"""Dataset statistics and their matplotlib figures (for the gallery).

:func:`collect_stats` reads a DATASET or BENCH folder once:

- **counts**: records per split and benchmark key (non-blank lines of each dataset file, so they
  equal the JSONL line counts; items per key for a BENCH);
- **distributions**, from every record (or the first ``sample_per_file`` of each file, which for a
  merged dataset is a uniform sample because ``generate`` shuffles each file), per split:
  overlap of the sampled image pairs, camera distance ‖t‖ and |Δyaw|, |Δpitch| of the camera pairs
  (each distinct pair once: the same pair can serve several subtasks), depths of the referenced
  points, object dimensions (each object once), object-movement distances (each (clip, frames,
  track) once; from a distance ``gt`` or the norm of a vector ``gt``);
- **answer balance**: how often each label or letter is the answer, per label/choice subtask.

Figures are ``matplotlib.figure.Figure`` objects (:mod:`multispa.viz.canvas`); :func:`stats_figures`
returns them as PNG bytes with a title each.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from multispa.viz.canvas import figure_to_png, new_figure
from multispa.viz.records import RecordSource

__all__ = [
    "DEFAULT_SAMPLE_PER_FILE",
    "SPLIT_COLOURS",
    "DatasetStats",
    "collect_stats",
    "plot_answer_balance",
    "plot_counts",
    "plot_distributions",
    "plot_overlap",
    "stats_figures",
]

DEFAULT_SAMPLE_PER_FILE = 5000
SPLIT_COLOURS: Mapping[str, str] = {"train": "#2563eb", "val": "#ea580c", "bench": "#059669"}


@dataclass
class DatasetStats:
    """What :func:`collect_stats` found; every ``dict[str, ...]`` is keyed by split.

    Attributes:
        counts: records per split and benchmark key (key order of the benchmark).
        sampled: records read for the distributions, per split.
        overlap_pct: overlap of each distinct sampled pair, percent.
        camera_distance_mm: ‖t‖ of each distinct camera pair, mm.
        yaw_deg, pitch_deg: |Δyaw| and |Δpitch| of each distinct camera pair, degrees.
        depth_mm: depth of each referenced point of the depth records, mm.
        object_dims_mm: ``(height, length, width)`` of each distinct object, mm.
        object_movement_mm: displacement length of each distinct tracked pair, mm.
        answers: per split and key, how often each label or letter is the answer.
    """

    counts: dict[str, dict[str, int]]
    sampled: dict[str, int] = field(default_factory=dict)
    overlap_pct: dict[str, list[float]] = field(default_factory=dict)
    camera_distance_mm: dict[str, list[float]] = field(default_factory=dict)
    yaw_deg: dict[str, list[float]] = field(default_factory=dict)
    pitch_deg: dict[str, list[float]] = field(default_factory=dict)
    depth_mm: dict[str, list[float]] = field(default_factory=dict)
    object_dims_mm: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)
    object_movement_mm: dict[str, list[float]] = field(default_factory=dict)
    answers: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        """The splits, in the source's order."""
        return tuple(self.counts)


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _numbers(value: object, count: int) -> list[float] | None:
    if not isinstance(value, list) or len(value) != count:
        return None
    numbers = [n for n in (_number(v) for v in value) if n is not None]
    return numbers if len(numbers) == count else None


def _frames_key(meta: Mapping[str, Any]) -> tuple[Any, ...] | None:
    frames = meta.get("frames")
    if not isinstance(frames, list):
        return None
    unit = meta.get("scene") or meta.get("clip")
    return (meta.get("source"), unit, tuple(sorted(str(f) for f in frames)))


class _Collector:
    """Accumulates one split's distributions with the de-duplication of the module docstring."""

    def __init__(self) -> None:
        self.sampled = 0
        self.pairs: dict[tuple[Any, ...], float] = {}
        self.camera: dict[tuple[Any, ...], tuple[float, float, float]] = {}
        self.depth: list[float] = []
        self.objects: dict[tuple[Any, ...], tuple[float, float, float]] = {}
        self.movement: dict[tuple[Any, ...], float] = {}
        self.answers: dict[str, dict[str, int]] = {}

    def add(self, key: str, record: Mapping[str, Any]) -> None:
        self.sampled += 1
        meta = record.get("meta")
        meta = meta if isinstance(meta, Mapping) else {}
        pair = _frames_key(meta)
        overlap = _number(meta.get("overlap"))
        if pair is not None and overlap is not None:
            self.pairs.setdefault(pair, overlap)
        camera = meta.get("camera")
        if pair is not None and isinstance(camera, Mapping):
            t_m = _numbers(camera.get("t_m"), 3)
            yaw, pitch = _number(camera.get("dyaw_deg")), _number(camera.get("dpitch_deg"))
            if t_m is not None and yaw is not None and pitch is not None:
                distance_mm = 1000.0 * math.sqrt(sum(v * v for v in t_m))
                self.camera.setdefault(pair, (distance_mm, abs(yaw), abs(pitch)))
        if record.get("task") == "depth":
            depths = meta.get("depth_mm")
            if isinstance(depths, list):
                self.depth += [d for d in (_number(v) for v in depths) if d is not None]
        dims = _numbers(meta.get("dims_mm"), 3)
        if dims is not None:
            self.objects.setdefault((meta.get("scene"), meta.get("object_id"), meta.get("label")),
                                    (dims[0], dims[1], dims[2]))
        if record.get("task") == "object_movement" and pair is not None:
            track = meta.get("track")
            index = track.get("index") if isinstance(track, Mapping) else None
            gt = record.get("gt")
            length = _number(gt)
            vector = _numbers(gt, 3)
            if vector is not None:
                length = math.sqrt(sum(v * v for v in vector))
            if length is not None:
                self.movement.setdefault((*pair, index), length)
        if record.get("answer_type") in ("label", "choice") and isinstance(record.get("gt"), str):
            by_answer = self.answers.setdefault(key, {})
            by_answer[record["gt"]] = by_answer.get(record["gt"], 0) + 1


def collect_stats(source: str | Path | RecordSource, *,
                  sample_per_file: int | None = DEFAULT_SAMPLE_PER_FILE) -> DatasetStats:
    """Counts and distributions of a DATASET or BENCH folder (module docstring).

    Args:
        source: the folder (or an opened :class:`RecordSource`).
        sample_per_file: records read per (split, key) for the distributions; None for all.

    Raises:
        DatasetError: not a dataset or bench folder, or a malformed file.
    """
    records = source if isinstance(source, RecordSource) else RecordSource(source)
    collectors = {split: _Collector() for split in records.splits}
    for split, key, _, _, record in records.iter_records(limit_per_key=sample_per_file):
        collectors[split].add(key, record)
    stats = DatasetStats(counts=records.counts())
    for split, c in collectors.items():
        stats.sampled[split] = c.sampled
        stats.overlap_pct[split] = list(c.pairs.values())
        stats.camera_distance_mm[split] = [v[0] for v in c.camera.values()]
        stats.yaw_deg[split] = [v[1] for v in c.camera.values()]
        stats.pitch_deg[split] = [v[2] for v in c.camera.values()]
        stats.depth_mm[split] = c.depth
        stats.object_dims_mm[split] = list(c.objects.values())
        stats.object_movement_mm[split] = list(c.movement.values())
        stats.answers[split] = c.answers
    return stats


# -------------------------------------------------------------------------------- figures


def _style(axes: Any, title: str, xlabel: str, ylabel: str) -> None:
    axes.set_title(title, fontsize=10)
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_ylabel(ylabel, fontsize=9)
    axes.tick_params(labelsize=8)
    axes.grid(True, axis="both", color="#e5e7eb", linewidth=0.6)
    axes.set_axisbelow(True)


def plot_counts(stats: DatasetStats) -> Any:
    """Horizontal grouped bars: records per benchmark key, one bar per split (log scale when
    the counts span more than two decades)."""
    keys: list[str] = []
    for by_key in stats.counts.values():
        keys += [k for k in by_key if k not in keys]
    splits = stats.splits
    figure = new_figure(900, 90 + 13 * max(len(keys), 1) * max(len(splits), 1),
                        layout="constrained")
    axes = figure.add_subplot()
    height = 0.8 / max(len(splits), 1)
    positions = np.arange(len(keys), dtype=np.float64)
    values_all = []
    for index, split in enumerate(splits):
        values = [stats.counts[split].get(k, 0) for k in keys]
        values_all += values
        axes.barh(positions + (index - (len(splits) - 1) / 2) * height, values, height=height,
                  color=SPLIT_COLOURS.get(split, "#6b7280"), label=split)
    positive = [v for v in values_all if v > 0]
    if positive and max(positive) / min(positive) > 100:
        axes.set_xscale("log")
    axes.set_yticks(positions, keys, fontsize=8)
    axes.invert_yaxis()
    _style(axes, "Records per subtask", "records", "")
    axes.legend(fontsize=8, loc="lower right")
    return figure


def _hist(axes: Any, series: Mapping[str, Sequence[float]], bins: Any) -> None:
    """Step histograms of each split's values as fractions of that split."""
    for split, values in series.items():
        if len(values) == 0:
            continue
        weights = np.full(len(values), 1.0 / len(values))
        axes.hist(values, bins=bins, weights=weights, histtype="step", linewidth=1.6,
                  color=SPLIT_COLOURS.get(split, "#6b7280"), label=f"{split} (n={len(values)})")
    if any(len(v) for v in series.values()):
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center",
                  color="#6b7280")


def _bins(series: Mapping[str, Sequence[float]], count: int = 30) -> Any:
    values = [v for vs in series.values() for v in vs]
    if not values:
        return count
    low, high = min(values), max(values)
    if high <= low:
        return np.array([low - 0.5, high + 0.5])
    return np.linspace(low, high, count + 1)


def plot_overlap(stats: DatasetStats) -> Any:
    """Histogram of the sampled pairs' overlap (1-percent bins)."""
    figure = new_figure(900, 300, layout="constrained")
    axes = figure.add_subplot()
    values = [v for vs in stats.overlap_pct.values() for v in vs]
    bins: Any = 30
    if values:
        bins = np.arange(math.floor(min(values)), math.ceil(max(values)) + 1.0, 1.0)
        if len(bins) < 2:
            bins = np.array([math.floor(min(values)), math.floor(min(values)) + 1.0])
    _hist(axes, stats.overlap_pct, bins)
    _style(axes, "Overlap of the sampled image pairs (each pair once)", "overlap (%)",
           "fraction of pairs")
    return figure


def plot_distributions(stats: DatasetStats) -> Any:
    """A 2 × 3 grid: camera distance, |Δyaw|, |Δpitch|, depth, object size, object movement."""
    figure = new_figure(900, 520, layout="constrained")
    grid = figure.subplots(2, 3)
    panels: list[tuple[Any, Mapping[str, Sequence[float]], str, str]] = [
        (grid[0][0], stats.camera_distance_mm, "Camera distance ‖t‖", "mm"),
        (grid[0][1], stats.yaw_deg, "|Δyaw| of camera pairs", "degrees"),
        (grid[0][2], stats.pitch_deg, "|Δpitch| of camera pairs", "degrees"),
        (grid[1][0], stats.depth_mm, "Depth of referenced points", "mm"),
        (grid[1][2], stats.object_movement_mm, "Object movement distance", "mm"),
    ]
    for axes, series, title, unit in panels:
        _hist(axes, series, _bins(series))
        _style(axes, title, unit, "fraction")
    axes = grid[1][1]
    dims_series = {name: [d[i] for vs in stats.object_dims_mm.values() for d in vs]
                   for i, name in enumerate(("height", "length", "width"))}
    bins = _bins(dims_series)
    colours = {"height": "#7c3aed", "length": "#059669", "width": "#ca8a04"}
    for name, values in dims_series.items():
        if values:
            axes.hist(values, bins=bins, histtype="step", linewidth=1.6, color=colours[name],
                      label=f"{name} (n={len(values)})")
    if any(dims_series.values()):
        axes.legend(fontsize=7)
    else:
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center",
                  color="#6b7280")
    _style(axes, "Object sizes (each object once)", "mm", "objects")
    return figure


def plot_answer_balance(stats: DatasetStats) -> Any:
    """Stacked horizontal bars: the share of each answer for every label/choice subtask and
    split (labels inside the segments)."""
    rows: list[tuple[str, dict[str, int]]] = []
    for split in stats.splits:
        for key, by_answer in stats.answers.get(split, {}).items():
            rows.append((f"{key} ({split})", by_answer))
    figure = new_figure(900, 80 + 24 * max(len(rows), 1), layout="constrained")
    axes = figure.add_subplot()
    palette = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#db2777", "#0891b2"]
    for row, (_, by_answer) in enumerate(rows):
        total = sum(by_answer.values())
        left = 0.0
        for index, answer in enumerate(sorted(by_answer)):
            share = by_answer[answer] / total
            axes.barh(row, share, left=left, color=palette[index % len(palette)], height=0.7,
                      edgecolor="white")
            if share >= 0.06:
                axes.text(left + share / 2, row, f"{answer} {100 * share:.0f}%", ha="center",
                          va="center", fontsize=7, color="white")
            left += share
    axes.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    axes.set_xlim(0.0, 1.0)
    axes.invert_yaxis()
    if not rows:
        axes.text(0.5, 0.5, "no label or choice records", transform=axes.transAxes,
                  ha="center", va="center", color="#6b7280")
    _style(axes, "Answer balance of direction and choice subtasks", "share of records", "")
    return figure


def stats_figures(stats: DatasetStats) -> list[tuple[str, bytes]]:
    """``(title, PNG bytes)`` of every statistics figure, in gallery order."""
    return [
        ("Records per subtask", figure_to_png(plot_counts(stats))),
        ("Overlap of sampled pairs", figure_to_png(plot_overlap(stats))),
        ("Distances, angles, depths and sizes", figure_to_png(plot_distributions(stats))),
        ("Answer balance", figure_to_png(plot_answer_balance(stats))),
    ]

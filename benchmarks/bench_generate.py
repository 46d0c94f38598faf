"""Generation throughput per subtask (records/s on one core) at ScanNet resolution.

Builds (or reuses, with --work) realistic synthetic data (colour 1296×968, TAPVid-3D 512×512 and
640×360), prepares it, plans up to --records selections per subtask from the training split and
times, unit by unit, what a ``multispa generate`` worker does with a unit's selections:
:func:`multispa.pipeline.generate.write_shard` runs the family's ``generate`` and writes every
record as its JSONL line to the unit's shard (a temporary file renamed when complete), while the
family links the raw frames and writes the annotated images. All in this process, subtask by
subtask. Printed beside each rate: the rate the upstream engine's stated times imply, the core's
speed just before the subtask ran (``core ns``: CPU time of one pure-Python loop iteration; a
virtual machine's host can slow the core by half for seconds, and every rate with it) and, for
dot subtasks, the codec bound.

**Codec bound.** For every record just generated, each image of it that is an annotated JPEG
(``image`` path under ``annotated/``) costs one decode of its source frame (the cached JPEG of
``meta.frames[k]``, opened and converted to RGB as the generator does) and one JPEG encode of that
decoded frame at the generator's quality (``GenerateSettings.jpeg_quality``) and size, into
memory. The bound is the time of exactly those decodes and encodes, record by record, on the
records' own frames; it is measured right after the unit's generation, with the same clock. It
leaves out what the generator does besides the codec: sampling, colour choice, drawing, record
assembly, JSON and the file writes (of the annotated JPEGs too). A generator that decodes a
frame once for several records (the dot families share decoded frames within a unit) can beat
it: "of bound" below 1.00x.

Rates use ``--clock``: ``wall`` (``time.perf_counter``) or ``cpu`` (``time.process_time``, this
process's CPU time: steadier on a machine shared with other work). ``--repeat N`` runs every
subtask N times, each into a fresh output folder, and prints the median rate and bound.
``--profile TOP`` runs the timed calls under ``cProfile`` timed by the same clock (its overhead
slows them, so the rates printed are lower) and prints per subtask the TOP functions by their own
time per record.

The output folder (``--out``, default ``WORK/out``) is deleted before every run: creating each
unit's image folder, its frame links, annotated files and shard is part of the time, and its cost
depends on the file system (on some virtual disks creating a file costs 0.1–0.6 ms, on tmpfs
about 10 µs; hard links to the cache need the output on the cache's file system). The folders a
whole run shares among its units (the family's shard folder, ``images/<dataset>``, the
subtask's ``annotated`` folder) are made before the clock starts, as a real run makes them once.

Usage: python benchmarks/bench_generate.py [--records 300] [--work DIR] [--out DIR]
       [--clock wall|cpu] [--repeat 1] [--tasks FAMILY_OR_SUBTASK ...] [--profile TOP]
       [--json PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from PIL import Image

from multispa.pipeline.generate import GenerateConfig, GenerateUnit, shard_path, write_shard
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks import registry
from multispa.tasks.base import CacheUnit, GenerateSettings, Selection, UnitContext
from multispa.tasks.templates import SUBTASKS
from report import add_json_option, core_speed_ns, write_results

#: Upstream rates in records/s derived from the times its code states.
UPSTREAM = {
    "depth_estimation_dot": 337_523 / (1.5 * 3600),
    "depth_estimation_coord": 331_295 / (51 * 60),
    "correspondence_mcq_dot": 500_000 / (7 * 3600),
    "correspondence_coord": 1_000_000 / (4 * 3600),
    **{s: 1_000_000 / (4 * 60) for s in SUBTASKS if s.startswith("camera_")},
}

#: How benchmarks/report.py runs this script ({scratch}: a folder kept for the report).
REPORT_ARGS = ["--work", "{scratch}/generate", "--repeat", "3", "--clock", "cpu"]

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
SPLIT = "train"  # the split planned and generated


def annotated_sources(unit: CacheUnit, record: Mapping[str, Any]) -> list[Path]:
    """The cached source frame of each annotated image of ``record`` (one entry per image)."""
    frames = record["meta"]["frames"]
    return [
        unit.path / "images" / f"{int(frames[k]):05d}.jpg"
        for k, image in enumerate(record["image"])
        if image.startswith("annotated/")
    ]


def codec_seconds(sources: Sequence[Path], quality: int, clock: Callable[[], float]) -> float:
    """Time of one decode (to RGB) and one in-memory JPEG encode of each of ``sources``."""
    start = clock()
    for path in sources:
        with Image.open(path) as handle:
            handle.load()
            image = handle if handle.mode == "RGB" else handle.convert("RGB")
            image.save(io.BytesIO(), format="JPEG", quality=quality)
    return clock() - start


def time_subtask(
    family: Any,
    subtask: str,
    units: Sequence[CacheUnit],
    selections: Sequence[Selection],
    out: Path,
    settings: GenerateSettings,
    clock: Callable[[], float],
    profiler: cProfile.Profile | None = None,
) -> tuple[int, float, float, int]:
    """One timed run: (records, generate seconds, codec-bound seconds, annotated images).

    With ``profiler``, it is enabled around exactly the timed calls.
    """
    by_unit: dict[str, list[Selection]] = {}
    for selection in selections:
        by_unit.setdefault(selection.unit_id, []).append(selection)
    count, seconds, bound, images = 0, 0.0, 0.0, 0
    work = [(unit, by_unit[unit.unit_id]) for unit in units if unit.unit_id in by_unit]
    shards = [
        shard_path(out, GenerateUnit(SPLIT, family.family, unit, out, 0, settings).key)
        for unit, _ in work
    ]
    # Folders a real run shares among all its units: made once per run, before the clock.
    for (unit, _), shard in zip(work, shards, strict=True):
        shard.parent.mkdir(parents=True, exist_ok=True)
        (out / "images" / unit.unit_id).parent.mkdir(parents=True, exist_ok=True)
    (out / "images" / "annotated" / SPLIT / subtask).mkdir(parents=True, exist_ok=True)
    for (unit, rows), shard in zip(work, shards, strict=True):
        context = UnitContext(unit, 0, out, settings)
        if profiler is not None:
            profiler.enable()
        start = clock()
        written = write_shard(family, context, rows, shard)
        seconds += clock() - start
        if profiler is not None:
            profiler.disable()
        records = [json.loads(line) for line in shard.read_bytes().splitlines()]
        if len(records) != written:
            raise RuntimeError(f"{shard}: {len(records)} lines, {written} records written")
        count += written
        sources = [path for record in records for path in annotated_sources(unit, record)]
        if sources:
            images += len(sources)
            bound += codec_seconds(sources, settings.jpeg_quality, clock)
    return count, seconds, bound, images


def print_profile(profiler: cProfile.Profile, records: int, top: int) -> None:
    """The ``top`` functions by own time, per record (cProfile's overhead included)."""
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    total = sum(entry[2] for entry in stats.values())
    print(f"  profile: {1e6 * total / records:.1f} µs/record under cProfile; top {top} by own time")
    print(f"  {'own µs/rec':>10}{'incl. µs/rec':>13}{'calls/rec':>10}  function")
    for (path, line, name), (_, calls, own, inclusive, _) in rows:
        where = f"{Path(path).name}:{line}({name})" if line else name
        print(
            f"  {1e6 * own / records:>10.2f}{1e6 * inclusive / records:>13.2f}"
            f"{calls / records:>10.2f}  {where}"
        )


def ensure_data(work: Path) -> Path:
    """The prepared cache under ``work`` (built on first use, about two minutes)."""
    data, cache = work / "data", work / "cache"
    if not (cache / "manifest.json").is_file():
        write_synthetic_dataset(data, SynthConfig(scenes=3, clips=4, workers=2))
        scannet, tapvid3d = data / "scannet", data / "tapvid3d"
        prepare(PrepareConfig(cache=cache, scannet=scannet, tapvid3d=tapvid3d, workers=2))
    return cache


@dataclass(frozen=True)
class SubtaskRate:
    """Median figures of one subtask: records, records/s, codec-bound records/s (dot only)."""

    subtask: str
    records: int
    rate: float
    bound_rate: float | None
    core_ns: float = float("nan")

    @property
    def upstream(self) -> float | None:
        """The upstream engine's stated rate for this subtask, if it states one."""
        return UPSTREAM.get(self.subtask)

    def cells(self) -> list[str]:
        """The printed row: subtask, records, rec/s, upstream, ratio, core ns, bound/s, of
        bound."""
        upstream, bound = self.upstream, self.bound_rate
        return [
            self.subtask, str(self.records), f"{self.rate:.1f}",
            f"{upstream:.1f}" if upstream else "-",
            f"{self.rate / upstream:.1f}x" if upstream else "-", f"{self.core_ns:.0f}",
            f"{bound:.1f}" if bound else "", f"{bound / self.rate:.2f}x" if bound else "",
        ]


def _span(values: Sequence[float], digits: int) -> str:
    """``lo–hi`` (or one value) with ``digits`` decimals and thousands separators."""
    low, high = f"{min(values):,.{digits}f}", f"{max(values):,.{digits}f}"
    return low if low == high else f"{low}–{high}"


def summary_lines(results: Sequence[SubtaskRate]) -> list[str]:
    """One line per family and kind (coordinate, dot or neither): the span of its rates, with
    the span of ratios to upstream and to the codec bound where those exist."""
    groups: dict[str, list[SubtaskRate]] = {}
    for result in results:
        family = SUBTASKS[result.subtask].family.replace("_", " ")
        kind = next((k for k in ("coord", "dot") if result.subtask.endswith(f"_{k}")), "")
        groups.setdefault(f"{family} {kind}".strip(), []).append(result)
    lines = []
    for name, members in groups.items():
        rates = [m.rate for m in members]
        line = f"{name}: {_span(rates, 0 if min(rates) >= 1000 else 1)} records/s per core"
        extras = []
        stated = [m for m in members if m.upstream]
        if stated:
            ratios = [m.rate / m.upstream for m in stated if m.upstream]
            extras.append(f"{_span(ratios, 1)}× upstream" + (
                "" if len(stated) == len(members)
                else f" for {', '.join(m.subtask for m in stated)}"
            ))
        if all(m.bound_rate for m in members):
            ratios = [m.bound_rate / m.rate for m in members if m.bound_rate]
            extras.append(f"{_span(ratios, 2)}× its codec bound")
        if extras:
            line += f" ({'; '.join(extras)})"
        lines.append(f"{line}, {len(members)} subtask{'s' if len(members) > 1 else ''}")
    return lines


COLUMNS = (
    "subtask", "records", "rec/s", "upstream", "ratio", "core ns", "codec bound/s", "of bound"
)
WIDTHS = (-34, 8, 9, 10, 8, 8, 15, 10)  # negative: left-aligned


def _row(cells: Sequence[str]) -> str:
    return "".join(
        f"{cell:<{-width}}" if width < 0 else f"{cell:>{width}}"
        for cell, width in zip(cells, WIDTHS, strict=True)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="selections per subtask")
    parser.add_argument("--work", type=Path, default=None, help="reuse/keep data here")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--repeat", type=int, default=1, help="runs per subtask (median shown)")
    parser.add_argument("--tasks", nargs="*", default=None, help="families or subtasks")
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default WORK/out; emptied first)"
    )
    parser.add_argument(
        "--profile", type=int, default=0, metavar="TOP",
        help="profile the timed calls (cProfile) and print the TOP functions per subtask",
    )
    add_json_option(parser)
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    settings = GenerateSettings()
    repeat = max(1, args.repeat)
    results: list[SubtaskRate] = []
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        cache = ensure_data(work)
        manifest = json.loads((cache / "manifest.json").read_text())
        units = [
            CacheUnit(unit_id, cache / unit_id, SPLIT)
            for unit_id, info in sorted(manifest["units"].items())
            if info["split"] == SPLIT and info["status"] == "done"
        ]
        out = args.out or work / "out"
        config = GenerateConfig(cache=cache, out=out, max_per_subtask=args.records)
        print(_row(COLUMNS))
        for family_name, subtasks in registry.resolve_tasks(args.tasks or None).items():
            family = registry.family(family_name)
            own = [u for u in units if u.dataset == family.dataset]
            for subtask in subtasks:
                quotas = {subtask: config.quota(SPLIT, subtask)}
                selections, _ = family.plan(SPLIT, own, quotas, 0, settings)
                rates, bounds, count, total = [], [], 0, 0
                core_ns = core_speed_ns(200_000)  # the host's phase when this subtask runs
                profiler = cProfile.Profile(clock) if args.profile else None
                for _ in range(repeat):
                    shutil.rmtree(out, ignore_errors=True)  # time fresh writes, not overwrites
                    # Flush earlier runs' dirty pages (and the deletion) off this run's clock.
                    os.sync()
                    count, seconds, bound, images = time_subtask(
                        family, subtask, own, selections, out, settings, clock, profiler
                    )
                    total += count
                    rates.append(count / seconds if seconds else float("nan"))
                    if images:
                        bounds.append(count / bound)
                result = SubtaskRate(
                    subtask, count, statistics.median(rates),
                    statistics.median(bounds) if bounds else None, core_ns,
                )
                results.append(result)
                print(_row(result.cells()), flush=True)
                if profiler is not None and total:
                    print_profile(profiler, total, args.profile)
        note = (
            f"rates on one core, in-process, {args.clock} clock, median of {repeat} run(s); "
            "'of bound' = codec-bound rate / measured rate (1.00x = as fast as the record's JPEG "
            "decodes and encodes alone); 'core ns' = CPU time of one pure-Python loop iteration "
            "just before the subtask's runs (higher: the host is slowing this core, and every "
            "rate with it)"
        )
        print(note)
    write_results(
        args.json,
        title="Generation throughput per subtask, records/s on one core",
        summary=summary_lines(results),
        columns=COLUMNS,
        rows=[result.cells() for result in results],
        notes=[
            f"Records/s per core: each subtask's records generated and written as `multispa "
            f"generate` writes them (records, JSONL shard, linked and annotated images), "
            f"{args.records} selections per subtask, median of {repeat} run(s), {args.clock} "
            "clock. Upstream: the rate the upstream engine's own stated times imply. Codec bound: "
            "the rate allowed by exactly the JPEG decodes and encodes the records' annotated "
            "images need; 'of bound' is that rate over the measured one. Core ns: CPU time of "
            "one iteration of a pure-Python loop measured just before the subtask's runs; on a "
            "virtual machine the host can slow the core for seconds at a time, and every rate "
            "measured then is lower by the same factor.",
        ],
    )


if __name__ == "__main__":
    main()

"""N-view family: view-set selection time, and records/s per subtask after selection (one core).

**1. Selection** on a synthetic visibility matrix of ``--frames`` kept frames (default 400) ×
``--vertices`` vertices (default 150,000): the vertices lie on the walls, floor and furniture-like
blocks of an 8 × 6 × 3 m room; the camera walks a loop through it at eye height while turning,
and a vertex is visible when it is in front of the camera, inside a 58° × 46° field of view and
within 5 m (no occlusion, so every frame sees thousands of vertices, as in a ScanNet scan). The
visibility is bit-packed as in the cache. Printed: the time of one view set (greedy coverage of
``--views`` frames from a random start, :func:`multispa.geometry.view_coverage.greedy_cover`),
median and maximum over ``--starts`` starts, and of
:func:`multispa.tasks.nview_views.select_view_sets` for the whole scene.

**2. Records/s** on prepared synthetic ScanNet scenes (realistic sizes by default, the demo's
preset; ``--small`` for the test preset; ``--work DIR`` keeps and reuses them). As
``bench_generate.py`` does for the other families, the selections are planned first, untimed:
every scene is planned as a benchmark pool (``--view-sets-per-scene`` view sets per scene,
default 5; up to ``--records`` questions per subtask, default 300, taken in rounds over the view
sets); then, for every N-view subtask alone, the family's ``generate`` runs unit by unit and
serialises each record to its JSONL line: **records/s after view-set selection** (one core, the
rate the acceptance asks for). Printed beside it, from the untimed planning pass run again with
the clock: the view-set selection time per view set, the closest-point distances per scene
(distance subtasks only: computed once per scene), and the candidate enumeration per view set.

Rates use ``--clock``: ``cpu`` (``time.process_time``, default: steadier on a shared machine) or
``wall``; ``--repeat N`` runs every measurement N times and prints the median.

Usage: python benchmarks/bench_nview.py [--frames 400] [--vertices 150000] [--views 8]
       [--starts 20] [--work DIR] [--small] [--view-sets-per-scene 5] [--records 300]
       [--repeat 3] [--clock cpu|wall] [--skip-records] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from multispa.geometry.overlap import pack_visibility
from multispa.geometry.view_coverage import greedy_cover, min_view_gain, min_view_gap
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks import nview as nview_module
from multispa.tasks.base import CacheUnit, GenerateSettings, UnitContext
from multispa.tasks.nview import NViewFamily
from multispa.tasks.nview_scene import NViewScene
from multispa.tasks.nview_views import select_view_sets
from multispa.tasks.records import record_line
from multispa.tasks.templates import NVIEW_SUBTASKS
from report import add_json_option, write_results

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
REPORT_ARGS = ["--work", "{scratch}/nview"]  # how benchmarks/report.py runs this script


# -------------------------------------------------------------------------------- selection


def synthetic_visibility(frames: int, vertices: int, seed: int = 0) -> np.ndarray:
    """``(frames, ceil(vertices/64))`` uint64 packed visibility of the room described above."""
    rng = np.random.default_rng(seed)
    room = np.array([8.0, 6.0, 3.0])
    faces = rng.integers(0, 6, vertices)
    points = rng.uniform([0, 0, 0], room, (vertices, 3))
    points[faces < 2, 0] = np.where(faces[faces < 2] == 0, 0.0, room[0])
    points[(faces >= 2) & (faces < 4), 1] = np.where(faces[(faces >= 2) & (faces < 4)] == 2,
                                                     0.0, room[1])
    points[faces == 4, 2] = 0.0
    blocks = faces == 5  # furniture-like blocks standing on the floor
    points[blocks, 2] = rng.uniform(0.0, 1.0, int(blocks.sum()))
    t = np.linspace(0.0, 2.0 * np.pi, frames, endpoint=False)
    centres = np.column_stack([4.0 + 2.5 * np.cos(t), 3.0 + 1.8 * np.sin(2 * t),
                               np.full(frames, 1.4)])
    yaw = 3.0 * t + rng.normal(0.0, 0.05, frames)
    masks = np.zeros((frames, vertices), dtype=bool)
    half_h, half_v = np.radians(29.0), np.radians(23.0)
    for f in range(frames):
        offset = points - centres[f]
        forward = np.array([np.cos(yaw[f]), np.sin(yaw[f]), -0.3])
        forward /= np.linalg.norm(forward)
        right = np.array([np.sin(yaw[f]), -np.cos(yaw[f]), 0.0])
        up = np.cross(right, forward)
        z = offset @ forward
        ok = (z > 0.1) & (z < 5.0)
        ok &= np.abs(np.arctan2(offset @ right, z)) < half_h
        ok &= np.abs(np.arctan2(offset @ up, z)) < half_v
        masks[f] = ok
    return pack_visibility(masks)


def bench_selection(args: argparse.Namespace, clock: Callable[[], float]) -> dict[str, float]:
    """Print the selection times; return them in ms (``one_median``, ``one_max``,
    ``scene_per_set``)."""
    print(f"== view-set selection: {args.frames} frames x {args.vertices} vertices, "
          f"N = {args.views}")
    start = clock()
    packed = synthetic_visibility(args.frames, args.vertices)
    counts = np.bitwise_count(packed).sum(axis=1, dtype=np.int64)
    print(f"synthetic visibility built in {clock() - start:.1f} s; visible per frame: median "
          f"{int(np.median(counts))} of {args.vertices}")
    gap = min_view_gap(args.frames, args.views)
    gain = min_view_gain(args.vertices)
    rng = np.random.default_rng(1)
    times, sizes = [], []
    for _ in range(args.repeat):
        for first in rng.choice(args.frames, size=args.starts, replace=False).tolist():
            began = clock()
            rows = greedy_cover(packed, first, args.views, min_gap=gap, min_gain=gain,
                                counts=counts)
            times.append(clock() - began)
            sizes.append(rows.size)
    print(f"one view set (greedy_cover, {len(times)} starts): median "
          f"{1e3 * statistics.median(times):.1f} ms, max {1e3 * max(times):.1f} ms; "
          f"{sum(s == args.views for s in sizes)}/{len(sizes)} sets complete (min gap {gap}, "
          f"min gain {gain} vertices)")
    whole = []
    for repeat in range(args.repeat):
        began = clock()
        found, _ = select_view_sets(packed, counts, np.arange(args.frames) * 5, args.vertices,
                                    args.views, np.random.default_rng(repeat))
        whole.append((clock() - began, len(found)))
    seconds, count = sorted(whole)[len(whole) // 2]
    print(f"select_view_sets for the scene ({count} sets, counts and packing of the valid "
          f"frames included): median {1e3 * seconds:.1f} ms, "
          f"{1e3 * seconds / max(count, 1):.1f} ms per view set")
    return {"one_median": 1e3 * statistics.median(times), "one_max": 1e3 * max(times),
            "scene_per_set": 1e3 * seconds / max(count, 1)}


# ---------------------------------------------------------------------------------- records


class Timer:
    """Accumulates the clock time spent inside wrapped functions."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = self.clock()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += self.clock() - began
                self.calls += 1
        return timed


def prepared_units(work: Path, small: bool) -> list[CacheUnit]:
    """Every prepared scene of ``work``, as benchmark-pool (val) units."""
    cache = work / "cache"
    if not (cache / "manifest.json").is_file():
        print(f"writing synthetic scenes and preparing them in {work} (once; --work reuses)")
        write_synthetic_dataset(work / "synth", SynthConfig(scenes=4, clips=0, seed=0,
                                                            small=small, workers=1))
        prepare(PrepareConfig(cache=cache, scannet=work / "synth" / "scannet"))
    manifest = json.loads((cache / "manifest.json").read_text())
    return [CacheUnit(unit_id, cache / unit_id, "val")
            for unit_id, info in sorted(manifest["units"].items())
            if info.get("status") == "done" and unit_id.startswith("scannet/")]


def plan_timed(subtask: str, units: list[CacheUnit], settings: GenerateSettings, records: int,
               clock: Callable[[], float]) -> tuple[list[Any], dict[str, float]]:
    """Plan ``subtask``; the selections and the time of its parts (seconds)."""
    selection, distances = Timer(clock), Timer(clock)
    originals = (nview_module.select_view_sets, nview_module.load_scannet_cache,
                 NViewScene.precompute_distances)
    nview_module.select_view_sets = selection.wrap(originals[0])
    nview_module.load_scannet_cache = selection.wrap(originals[1])
    NViewScene.precompute_distances = distances.wrap(originals[2])  # type: ignore[method-assign]
    try:
        began = clock()
        selections, _ = NViewFamily().plan("val", units, {subtask: records}, 0, settings)
        total = clock() - began
    finally:
        nview_module.select_view_sets, nview_module.load_scannet_cache = originals[:2]
        NViewScene.precompute_distances = originals[2]  # type: ignore[method-assign]
    sets = max(selection.calls // 2, 1)
    return selections, {"selection_per_set": selection.seconds / sets,
                        "distances_per_scene": distances.seconds / max(len(units), 1),
                        "candidates_per_set": (total - selection.seconds - distances.seconds)
                        / sets}


def generate_timed(selections: list[Any], units: list[CacheUnit], settings: GenerateSettings,
                   out: Path, clock: Callable[[], float]) -> tuple[int, float]:
    """Generate and serialise the selections unit by unit; records and seconds."""
    family, records, seconds = NViewFamily(), 0, 0.0
    for unit in units:
        own = [s for s in selections if s.unit_id == unit.unit_id]
        if not own:
            continue
        context = UnitContext(unit, 0, out, settings)
        with open(os.devnull, "wb") as sink:
            began = clock()
            for record in family.generate(context, own):
                sink.write(record_line(record))
                records += 1
            seconds += clock() - began
    return records, seconds


def bench_records(args: argparse.Namespace, clock: Callable[[], float]) -> list[list[str]]:
    """Print records/s per subtask and the planning parts; return the printed rows."""
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_nview_"))
    units = prepared_units(work, args.small)
    settings = GenerateSettings(views=args.views, view_sets_per_scene=args.view_sets_per_scene)
    print(f"== records/s after view-set selection: {len(units)} scenes, "
          f"{args.view_sets_per_scene} view sets per scene, N = {args.views}, up to "
          f"{args.records} records per subtask, clock {args.clock}")
    print(f"{'subtask':<28} {'records':>7} {'records/s':>10}   {'planning: selection/set':>23} "
          f"{'distances/scene':>15} {'candidates/set':>14}")
    rows = []
    for subtask in NVIEW_SUBTASKS:
        rates, parts = [], []
        for _ in range(args.repeat):
            selections, timing = plan_timed(subtask, units, settings, args.records, clock)
            count, seconds = generate_timed(selections, units, settings, work / "out", clock)
            rates.append(count / max(seconds, 1e-12))
            parts.append(timing)
        middle = {key: statistics.median(p[key] for p in parts) for key in parts[0]}
        print(f"{subtask:<28} {count:>7} {statistics.median(rates):>8.0f}/s   "
              f"{1e3 * middle['selection_per_set']:>21.1f}ms "
              f"{1e3 * middle['distances_per_scene']:>13.1f}ms "
              f"{1e3 * middle['candidates_per_set']:>12.2f}ms")
        rows.append([subtask, str(count), f"{statistics.median(rates):,.0f}",
                     f"{1e3 * middle['selection_per_set']:.1f}",
                     f"{1e3 * middle['distances_per_scene']:.1f}",
                     f"{1e3 * middle['candidates_per_set']:.2f}"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--vertices", type=int, default=150_000)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--work", default=None, help="folder for the synthetic scenes (reused)")
    parser.add_argument("--small", action="store_true", help="test-sized synthetic scenes")
    parser.add_argument("--view-sets-per-scene", type=int, default=5)
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="cpu")
    parser.add_argument("--skip-records", action="store_true")
    add_json_option(parser)
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    selection = bench_selection(args, clock)
    rows = [] if args.skip_records else bench_records(args, clock)
    summary = [
        f"view-set selection ({args.frames} frames × {args.vertices:,} vertices, N = "
        f"{args.views}): median {selection['one_median']:.1f} ms, max "
        f"{selection['one_max']:.1f} ms per view set",
    ]
    if rows:
        rates = [float(row[2].replace(",", "")) for row in rows]
        summary.append(f"records after view-set selection: {min(rates):,.0f}–{max(rates):,.0f} "
                       f"records/s per core, {len(rows)} subtasks")
    write_results(
        args.json,
        title="N-view family: view-set selection and records/s after it, one core",
        summary=summary,
        columns=["subtask", "records", "records/s", "selection/set ms", "distances/scene ms",
                 "candidates/set ms"],
        rows=rows,
        notes=[f"clock {args.clock}, median of {args.repeat}; records/s exclude planning "
               "(view-set selection, distances, candidates), shown in its columns"],
    )


if __name__ == "__main__":
    main()

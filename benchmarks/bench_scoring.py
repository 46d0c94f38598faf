"""Scoring throughput: parse + judge items/s on one core (target ≥ 100,000 items/s).

Builds --items synthetic (record, response) pairs over every benchmark-subtask key (the paper's
26 and the nine N-view ones) and all
answer types: well-formed answers rendered through the generator's own templates (right and
wrong values), fallback answers (no backticks, prose, units such as ``1.5 m``, ``Option C``,
thousands separators) and garbage (empty, unparsable spans, prose without an answer). Times
``parse_answer`` + ``judge`` per pair in this process (one core), by response kind and answer
type, then times the full scorer (:func:`score_records`, with the 1,000-resample bootstrap) on a
benchmark-sized set of 300 records per key (10,500 records).

Usage: python benchmarks/bench_scoring.py [--items 200000] [--seed 0] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from multispa.metrics.judge import judge
from multispa.metrics.parse import parse_answer
from multispa.metrics.score import score_records
from multispa.tasks.answers import format_answer, format_coord
from multispa.tasks.templates import BENCHMARK_SUBTASKS, SUBTASKS, compiled_templates
from report import add_json_option, write_results

TARGET = 100_000  # items/s
_W, _H = 1296, 968
_FIELDS = {"marker": "red", "point": format_coord(412, 655), "point_a": format_coord(10, 20),
           "point_b": format_coord(900, 800), "label": "office chair", "target": "sofa",
           "object_a": "desk", "object_b": "bed", "object_c": "lamp",
           "options": "A. sofa; B. desk; C. bed; D. lamp"}
_GARBAGE = [
    "", "   ", "I cannot determine this from the images.", "`n/a`",
    "The answer depends on the lighting, and I am not sure about the scene layout at all.",
    "Sorry, as an AI model I can't see images. `unknown`", "???",
]


def _gt(answer_type: str, options: tuple[str, ...], static: bool, rng: np.random.Generator
        ) -> Any:
    if answer_type in ("label", "choice"):
        return options[int(rng.integers(len(options)))]
    if answer_type == "scalar":
        return 0 if static else int(rng.integers(50, 6000))
    if answer_type == "vector":
        return [0, 0, 0] if static else rng.integers(-3000, 3000, 3).tolist()
    return rng.integers(0, 1000, 2).tolist()


def _perturbed(answer_type: str, gt: Any, options: tuple[str, ...], rng: np.random.Generator
               ) -> Any:
    """A value near ``gt`` (half of them outside the tolerance)."""
    if answer_type in ("label", "choice"):
        return options[int(rng.integers(len(options)))]
    if answer_type == "scalar":
        return int(gt * rng.uniform(0.6, 1.4)) + int(rng.integers(0, 15))
    if answer_type == "vector":
        return [int(v * rng.uniform(0.6, 1.4)) + int(rng.integers(-15, 15)) for v in gt]
    return [min(999, max(0, v + int(rng.integers(-80, 80)))) for v in gt]


def _fallback_text(answer_type: str, unit: str | None, value: Any, rng: np.random.Generator
                   ) -> str:
    kind = int(rng.integers(3))
    if unit == "degrees":
        return [f"It turned by about {value} degrees.", f"{value}°", f"Roughly {value}."][kind]
    if answer_type == "label":
        return ["I think the camera moved {}.", "It looks {} to me", "{}"][kind].format(
            value.upper() if kind == 2 else value)
    if answer_type == "choice":
        return ["The answer is ({}).", "Option {} matches best.", "I pick {}."][kind].format(
            value)
    if answer_type == "scalar":
        if kind == 0:
            return f"It is about {value / 1000:.3f} m from the first view."
        if kind == 1:
            return f"Roughly {value:,} millimetres, judging from Image-2."
        return f"Estimate: {value} mm"
    if answer_type == "vector":
        if kind == 0:
            metres = ", ".join(f"{v / 1000:.3f}" for v in value)
            return f"The displacement is ({metres}) m."
        return f"Displacement: [{value[0]}, {value[1]}, {value[2]}] mm"
    return f"The point is at ({value[0]}, {value[1]}) in the second image."


def _record(key: str, index: int, rng: np.random.Generator) -> tuple[dict[str, Any], bool]:
    subtask, _, src = key.partition(":")
    spec = SUBTASKS[subtask]
    static = bool(src) and rng.random() < 0.1
    gt = _gt(spec.answer_type, spec.options, static, rng)
    points: list[list[list[float]]] = [[] for _ in range(spec.num_images)]
    if subtask == "depth_comparison_coord":
        u, v = (gt[0] + 0.5) * _W / 1000, (gt[1] + 0.5) * _H / 1000
        points = [[[round(u, 2), round(v, 2)], [round((u + 400) % _W, 2), round(v, 2)]]]
    meta: dict[str, Any] = {"source": f"tapvid3d/{src}" if src else "scannet", "points": points}
    if src:
        meta["track"] = {"point_moving": not static}
    record = {"id": f"val-{key}-{index:07d}", "subtask": subtask,
              "answer_type": spec.answer_type, "gt": gt, "width_list": [_W] * spec.num_images,
              "height_list": [_H] * spec.num_images, "meta": meta}
    return record, static


def make_pairs(count: int, seed: int) -> list[tuple[dict[str, Any], str, str]]:
    """``count`` ``(record, response, kind)`` triples; kind ∈ well-formed/fallback/garbage."""
    rng = np.random.default_rng(seed)
    pairs = []
    for index in range(count):
        key = BENCHMARK_SUBTASKS[index % len(BENCHMARK_SUBTASKS)]
        record, static = _record(key, index, rng)
        spec = SUBTASKS[record["subtask"]]
        answer_type = spec.answer_type
        value = record["gt"] if rng.random() < 0.5 else _perturbed(
            answer_type, record["gt"], spec.options, rng)
        draw = rng.random()
        if draw < 0.6:
            kind = "well-formed"
            compiled = compiled_templates(record["subtask"])
            variant = "static" if static else (
                spec.variants[int(rng.integers(len(spec.variants)))])
            answers = compiled.sizes(variant)[2]
            fields = {name: _FIELDS[name] for name in spec.fields}
            fields["answer"] = format_answer(answer_type, value)
            _, response = compiled.render((0, 0, int(rng.integers(answers))), fields, variant)
        elif draw < 0.85:
            kind = "fallback"
            response = _fallback_text(answer_type, spec.unit, value, rng)
        else:
            kind = "garbage"
            response = _GARBAGE[int(rng.integers(len(_GARBAGE)))]
        pairs.append((record, response, kind))
    return pairs


def time_parse_judge(pairs: list[tuple[dict[str, Any], str, str]]) -> tuple[float, int, int]:
    """Seconds for parse+judge over all pairs, correct count, parse-failure count."""
    correct = failures = 0
    start = time.perf_counter()
    for record, response, _ in pairs:
        parsed = parse_answer(response, record["answer_type"], record["subtask"])
        verdict = judge(parsed, record)
        correct += verdict.correct
        failures += parsed.value is None
    return time.perf_counter() - start, correct, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    add_json_option(parser)
    args = parser.parse_args()

    t0 = time.perf_counter()
    pairs = make_pairs(args.items, args.seed)
    print(f"built {len(pairs):,} pairs in {time.perf_counter() - t0:.1f} s")
    time_parse_judge(pairs[:2000])  # warm the caches (compiled parsers)

    seconds, correct, failures = time_parse_judge(pairs)
    rate = len(pairs) / seconds
    print(f"parse+judge, one core: {rate:,.0f} items/s ({seconds:.2f} s for {len(pairs):,}; "
          f"{correct:,} correct, {failures:,} unparsed) — target {TARGET:,} items/s: "
          f"{'met' if rate >= TARGET else 'NOT met'}")

    groups: dict[str, list[tuple[dict[str, Any], str, str]]] = defaultdict(list)
    for pair in pairs:
        groups[pair[2]].append(pair)
        groups[pair[0]["answer_type"]].append(pair)
    rows: list[tuple[str, str, str]] = []
    for name in ("well-formed", "fallback", "garbage", "label", "choice", "scalar", "vector",
                 "coord"):
        subset = groups.get(name, [])
        if subset:
            sec, _, _ = time_parse_judge(subset)
            print(f"  {name:<12} {len(subset) / sec:>12,.0f} items/s  (n={len(subset):,})")
            rows.append((name, f"{len(subset) / sec:,.0f}", f"{len(subset):,}"))

    bench = pairs[: 300 * len(BENCHMARK_SUBTASKS)]
    records = [record for record, _, _ in bench]
    predictions = {record["id"]: response for record, response, _ in bench}
    start = time.perf_counter()
    report = score_records(records, predictions, bootstrap=1000, seed=0)
    seconds = time.perf_counter() - start
    print(f"score_records on {len(records):,} records with a 1,000-resample bootstrap: "
          f"{seconds:.2f} s ({len(records) / seconds:,.0f} records/s); "
          f"Average {report['summary']['average_pct']:.2f} %")
    bootstrap_s = seconds
    start = time.perf_counter()
    score_records(records, predictions, bootstrap=0)
    seconds = time.perf_counter() - start
    print(f"score_records without bootstrap: {len(records) / seconds:,.0f} records/s")
    write_results(
        args.json,
        title="Scoring throughput: parse + judge items/s on one core",
        summary=[
            f"parse + judge: {rate:,.0f} items/s on one core ({len(pairs):,} mixed responses; "
            f"target {TARGET:,})",
            f"score_records, {len(records):,} records with a 1,000-resample bootstrap: "
            f"{bootstrap_s:.2f} s",
        ],
        columns=("responses", "items/s", "items"),
        rows=rows,
        notes=["Wall clock, one process; responses by kind and by answer type."],
    )


if __name__ == "__main__":
    main()

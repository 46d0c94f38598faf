"""The scorer: benchmark records + model responses → the JSON report
(docs/metrics.md#scorer-report).

Input: benchmark JSONL files (records) and a predictions JSONL of ``{"id", "response"}``
lines. Output (:func:`score_records`), a JSON-able dict:

- ``scorer``: name, ``version`` (:data:`SCORER_VERSION`), package version and the mode flags
  (MRA operator, bootstrap resamples, seed, interval level, optional metrics);
- ``summary``: record and prediction counts, missing predictions, parse failures and rate,
  overall (micro) accuracy, the **Average** (unweighted mean of the rows present), its
  interval, the rows missing from it, and ``mra_row_mean_pct`` (the mean MRA of the rows that
  have MRA: the seven scalar/vector rows);
- ``rows``: the 12 Table-2 rows in order, pooled over their subtasks, with interval, MRA and the
  paper's reference values;
- ``subtasks``: per benchmark-subtask key, accuracy, interval, MRA, parse failures;
- ``nview``: the N-view table (an extension beyond the paper, in no row): per N-view key in
  table order its display name, accuracy, interval and MRA, and the **N-view average** (the
  unweighted mean of the keys with items) with its interval; the 12 rows and their Average do
  not include these keys;
- ``object_movement``: ADT vs PStudio and static vs moving (``meta.track.point_moving``;
  a record without it counts as static iff its ``gt`` is zero);
- ``reference``: the paper's rows, averages, other published averages and notes;
- ``missing_predictions`` (records without a prediction: counted wrong, reason ``"missing"``)
  and ``unknown_prediction_ids`` (predictions for no record, ignored);
- ``records``: per record ``{id, key, parsed, source, correct, mra, reason}``.

``parsed`` is JSON-able: ints stay JSON integers, tuples become lists, labels/letters strings,
and a non-integer number (an exact Fraction) is written as its exact decimal **string**
(``"1834.5"``) — parsed numbers come from decimal text times 1, 10 or 1000, so the decimal is
finite; anything else would be written ``"p/q"``.

Percentages are floats in 0–100 (unrounded); intervals are ``[low, high]`` in percent.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from multispa import __version__
from multispa.errors import FormatError, MissingFileError
from multispa.jsonl import read_jsonl_objects, short_repr
from multispa.metrics.aggregate import (
    GroupStats,
    Intervals,
    ItemOutcome,
    bootstrap_intervals,
    nview_average,
    object_movement_breakdown,
    pool,
    row_stats,
    subtask_stats,
    unweighted_average,
)
from multispa.metrics.judge import STATIC_TOLERANCE_MM, judge, named_metrics
from multispa.metrics.parse import ParsedAnswer, parse_answer
from multispa.metrics.rows import (
    NVIEW_GROUP,
    NVIEW_NAMES,
    NVIEW_SUBTASKS,
    OTHER_PUBLISHED_AVERAGES,
    REFERENCE_AVERAGES,
    REFERENCE_MODELS,
    REFERENCE_NOTES,
    REFERENCE_ROWS,
    ROW_BY_KEY,
    ROW_OF_SUBTASK,
    benchmark_key,
)
from multispa.tasks.templates import SUBTASKS

__all__ = [
    "SCORER_VERSION",
    "json_value",
    "load_jsonl",
    "load_predictions",
    "main",
    "score_files",
    "score_records",
]

SCORER_VERSION = "1.0.0"
MISSING = ParsedAnswer(None, "missing", None)
_ABSENT = object()


def json_value(value: object) -> object:
    """A parsed value as JSON: ints as ints, Fractions as exact decimal strings, tuples as lists.

    >>> json_value((Fraction(3, 2), -40, 300)), json_value(Fraction(1, 3))
    (['1.5', -40, 300], '1/3')
    """
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return value.numerator
        return _decimal_text(value)
    return value


def _decimal_text(value: Fraction) -> str:
    num, den = value.numerator, value.denominator
    digits, power = 0, 1
    while power % den and digits < 64:
        digits += 1
        power *= 10
    if power % den:
        return f"{num}/{den}"
    scaled = abs(num) * (power // den)
    whole, frac = divmod(scaled, power)
    sign = "-" if num < 0 else ""
    return f"{sign}{whole}.{frac:0{digits}d}"


def _moving(record: Mapping[str, Any]) -> bool | None:
    if SUBTASKS[record["subtask"]].family != "object_movement":
        return None
    track = (record.get("meta") or {}).get("track") or {}
    moving = track.get("point_moving")
    if isinstance(moving, bool):
        return moving
    gt = record["gt"]
    return any(gt) if isinstance(gt, list) else gt != 0


def _check_record(record: object, index: int, source: str, seen: set[str]) -> str:
    """Validate the fields the scorer reads; return the id."""
    if not isinstance(record, Mapping):
        raise FormatError(source, f"record {index}: expected a JSON object, found "
                                  f"{type(record).__name__}")
    rid = record.get("id")
    if not isinstance(rid, str) or not rid:
        raise FormatError(source, f"record {index}: 'id' must be a non-empty string, found "
                                  f"{rid!r}")
    if rid in seen:
        raise FormatError(source, f"record {index}: duplicate id {rid!r}")
    seen.add(rid)
    subtask = record.get("subtask")
    spec = SUBTASKS.get(subtask)  # type: ignore[arg-type]
    if spec is None:
        raise FormatError(source, f"record {rid}: unknown subtask {subtask!r}")
    if record.get("answer_type") != spec.answer_type:
        raise FormatError(source, f"record {rid}: answer_type {record.get('answer_type')!r}, "
                                  f"expected {spec.answer_type!r} for {subtask}")
    if "gt" not in record:
        raise FormatError(source, f"record {rid}: no 'gt'")
    if spec.answer_type == "coord":
        widths, heights = record.get("width_list"), record.get("height_list")
        if not (isinstance(widths, list) and widths and isinstance(heights, list) and heights
                and all(type(v) is int and v > 0 for v in (widths[-1], heights[-1]))):
            raise FormatError(source, f"record {rid}: coord records need width_list and "
                                      f"height_list of positive ints, found {widths!r}, "
                                      f"{heights!r}")
    return rid


def _interval(value: tuple[float, float] | None) -> list[float] | None:
    return None if value is None else [value[0], value[1]]


def score_records(
    records: Sequence[Mapping[str, Any]], predictions: Mapping[str, str | None], *,
    strict_mra: bool = False, bootstrap: int = 1000, seed: int = 0, ci_level: float = 0.95,
    extra_metrics: bool = False, include_records: bool = True, source: str = "<records>",
) -> dict[str, Any]:
    """Score ``records`` against ``predictions`` (record id → response text).

    Args:
        records: benchmark records; ids must be unique.
        predictions: responses by record id; a record without one counts as wrong.
        strict_mra: MRA with ``<`` instead of ``≤`` (recorded in the mode flags).
        bootstrap: resamples for the percentile intervals (0 disables them).
        seed: seed of the ``np.random.default_rng`` used for the bootstrap.
        ci_level: interval coverage.
        extra_metrics: add SpatialRGPT success and factor-of-two rates (scalar subtasks).
        include_records: include the per-record list.
        source: name of the records' origin, used in error messages.

    Raises:
        FormatError: a record lacks a field the scorer needs or has a malformed ``gt``.
    """
    seen: set[str] = set()
    outcomes: list[ItemOutcome] = []
    per_record: list[dict[str, Any]] = []
    missing_ids: list[str] = []
    for index, record in enumerate(records):
        rid = _check_record(record, index, source, seen)
        subtask, answer_type = record["subtask"], record["answer_type"]
        response = predictions.get(rid, _ABSENT)
        if response is _ABSENT:
            parsed = MISSING
            missing_ids.append(rid)
        else:
            parsed = parse_answer(response, answer_type, subtask)  # type: ignore[arg-type]
        try:
            key = benchmark_key(record)
            verdict = judge(parsed, record, strict_mra=strict_mra)
            extras = named_metrics(parsed, record) if extra_metrics else None
            moving = _moving(record)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise FormatError(source, f"record {rid}: cannot be scored: {exc}") from None
        outcomes.append(ItemOutcome(
            key, verdict.correct, verdict.mra, parse_failed=parsed.value is None
            and parsed is not MISSING, missing=parsed is MISSING, moving=moving, extras=extras,
        ))
        if include_records:
            per_record.append({
                "id": rid, "key": key, "parsed": json_value(parsed.value),
                "source": parsed.source, "correct": verdict.correct, "mra": verdict.mra,
                "reason": parsed.reason,
            })

    intervals: Intervals | None = None
    if bootstrap > 0 and outcomes:
        intervals = bootstrap_intervals(outcomes, np.random.default_rng(seed),
                                        n_resamples=bootstrap, level=ci_level)
    per_subtask = subtask_stats(outcomes)
    rows = row_stats(per_subtask)
    average, rows_missing = unweighted_average(
        {row.key: row.stats.accuracy_pct if row.stats else None for row in rows}
    )
    mra_average, _ = unweighted_average(
        {row.key: row.stats.mra_pct if row.stats else None for row in rows}
    )
    total = pool(per_subtask.values())
    nview_mean, nview_missing = nview_average(per_subtask)
    known = set(seen)
    unknown = sorted(pid for pid in predictions if pid not in known)
    return {
        "scorer": {
            "name": "multispa.metrics",
            "version": SCORER_VERSION,
            "package_version": __version__,
            "mode": {
                "mra_operator": "<" if strict_mra else "<=",
                "strict_mra": strict_mra,
                "bootstrap_resamples": bootstrap,
                "bootstrap_seed": seed,
                "ci_level": ci_level,
                "extra_metrics": extra_metrics,
                "static_tolerance_mm": STATIC_TOLERANCE_MM,
                "parsed_numbers": "ints as JSON integers; other exact decimals as strings",
            },
        },
        "summary": {
            "records": len(outcomes),
            "predictions": len(predictions),
            "missing_predictions": len(missing_ids),
            "unknown_predictions": len(unknown),
            "parse_failures": total.parse_failures,
            "parse_failure_rate_pct": total.parse_failure_rate_pct,
            "accuracy_pct": total.accuracy_pct,
            "average_pct": average,
            "average_ci_pct": _interval(intervals.average if intervals else None),
            "average_rows": len(rows) - len(rows_missing),
            "average_complete": not rows_missing,
            "rows_missing": list(rows_missing),
            "mra_row_mean_pct": mra_average,
            "nview_average_pct": nview_mean,
        },
        "rows": [
            {
                "key": row.key,
                "name": row.name,
                "short_name": ROW_BY_KEY[row.key].short_name,
                "subtasks": list(row.subtasks_present),
                "subtasks_missing": list(row.subtasks_missing),
                **(row.stats or GroupStats()).to_json(),
                "ci_pct": _interval(intervals.rows.get(row.key) if intervals else None),
                "mra_ci_pct": _interval(intervals.row_mra.get(row.key) if intervals else None),
                "reference_pct": {m: REFERENCE_ROWS[m][row.key] for m in REFERENCE_MODELS},
            }
            for row in rows
        ],
        "nview": {
            "subtasks": [
                {
                    "key": key,
                    "name": NVIEW_NAMES[key],
                    **(per_subtask.get(key) or GroupStats()).to_json(),
                    "ci_pct": _interval(intervals.subtasks.get(key) if intervals else None),
                    "mra_ci_pct": _interval(
                        intervals.subtask_mra.get(key) if intervals else None
                    ),
                }
                for key in NVIEW_SUBTASKS
            ],
            "average_pct": nview_mean,
            "average_ci_pct": _interval(intervals.nview_average if intervals else None),
            "average_subtasks": len(NVIEW_SUBTASKS) - len(nview_missing),
            "average_complete": not nview_missing,
            "subtasks_missing": list(nview_missing),
        },
        "subtasks": {
            key: {
                "row": ROW_OF_SUBTASK.get(key, NVIEW_GROUP if key in NVIEW_SUBTASKS else None),
                **stats.to_json(),
                "ci_pct": _interval(intervals.subtasks.get(key) if intervals else None),
                "mra_ci_pct": _interval(intervals.subtask_mra.get(key) if intervals else None),
            }
            for key, stats in per_subtask.items()
        },
        "object_movement": object_movement_breakdown(outcomes),
        "reference": {
            "models": list(REFERENCE_MODELS),
            "rows_pct": {m: dict(REFERENCE_ROWS[m]) for m in REFERENCE_MODELS},
            "averages_pct": dict(REFERENCE_AVERAGES),
            "other_published_averages_pct": dict(OTHER_PUBLISHED_AVERAGES),
            "notes": list(REFERENCE_NOTES),
        },
        "missing_predictions": missing_ids,
        "unknown_prediction_ids": unknown,
        "records": per_record,
    }


# ---------------------------------------------------------------------------------------- I/O


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file, one per non-blank line.

    Raises:
        MissingFileError: no such file.
        FormatError: a line is not a JSON object (names the line).
    """
    path = Path(path)
    return read_jsonl_objects(path)


def load_predictions(path: str | Path) -> dict[str, str | None]:
    """``{id: response}`` from a predictions JSONL of ``{"id", "response"}`` lines.

    ``response`` must be a string or ``null`` (scored as empty).

    Raises:
        FormatError: a line lacks ``id``/``response``, has a non-string response, or repeats
            an id.
    """
    out: dict[str, str | None] = {}
    for number, obj in enumerate(load_jsonl(path), start=1):
        rid, response = obj.get("id"), obj.get("response", ...)
        if not isinstance(rid, str):
            raise FormatError(path, f"prediction {number}: 'id' must be a string, found "
                                    f"{short_repr(rid)}")
        if response is ... or not (response is None or isinstance(response, str)):
            raise FormatError(path, f"prediction {short_repr(rid)}: 'response' must be a string "
                                    f"or null, found {short_repr(response)}")
        if rid in out:
            raise FormatError(path, f"prediction {short_repr(rid)}: duplicate id")
        out[rid] = response
    return out


def _bench_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.rglob("*.jsonl"))
            if not found:
                raise MissingFileError(path, "no *.jsonl benchmark file in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def score_files(
    bench_jsonl_paths: str | Path | Iterable[str | Path], predictions_jsonl: str | Path,
    **options: Any,
) -> dict[str, Any]:
    """Score benchmark JSONL files (or folders of them) against a predictions JSONL.

    ``options`` are those of :func:`score_records`; the report adds ``inputs`` (the files).
    """
    files = _bench_files(bench_jsonl_paths)
    records: list[dict[str, Any]] = []
    for file in files:
        records.extend(load_jsonl(file))
    predictions = load_predictions(predictions_jsonl)
    source = str(files[0]) if len(files) == 1 else f"{len(files)} benchmark files"
    report = score_records(records, predictions, source=source, **options)
    report["inputs"] = {"benchmark": [str(f) for f in files],
                        "predictions": str(predictions_jsonl)}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m multispa.metrics.score BENCH... --predictions P [--out R]``."""
    parser = argparse.ArgumentParser(prog="python -m multispa.metrics.score",
                                     description="Score model responses on the benchmark.")
    parser.add_argument("bench", nargs="+", help="benchmark JSONL files or folders")
    parser.add_argument("--predictions", required=True, help='JSONL of {"id", "response"}')
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--strict-mra", action="store_true", help='MRA with "<"')
    parser.add_argument("--bootstrap", type=int, default=1000, help="resamples (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-metrics", action="store_true")
    args = parser.parse_args(argv)
    report = score_files(args.bench, args.predictions, strict_mra=args.strict_mra,
                         bootstrap=args.bootstrap, seed=args.seed,
                         extra_metrics=args.extra_metrics)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
    for row in report["rows"]:
        value = row["accuracy_pct"]
        shown = "   -  " if value is None else f"{value:6.2f}"
        print(f"{row['short_name']:<28} {shown}  (n={row['n']})")
    average = report["summary"]["average_pct"]
    print(f"{'Average':<28} {'   -  ' if average is None else f'{average:6.2f}'}")
    nview = report["nview"]
    if nview["average_pct"] is not None:
        for row in nview["subtasks"]:
            value = row["accuracy_pct"]
            shown = "   -  " if value is None else f"{value:6.2f}"
            print(f"{row['name']:<28} {shown}  (n={row['n']})")
        print(f"{'N-view average':<28} {nview['average_pct']:6.2f}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

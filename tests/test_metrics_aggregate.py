"""Aggregation, reference rows, bootstrap intervals and the scorer report (docs/metrics.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from multispa.errors import FormatError, MissingFileError
from multispa.metrics.aggregate import (
    ItemOutcome,
    bootstrap_intervals,
    object_movement_breakdown,
    pooled_accuracy_pct,
    row_stats,
    subtask_stats,
    unweighted_average,
)
from multispa.metrics.rows import (
    NVIEW_SUBTASKS,
    OTHER_PUBLISHED_AVERAGES,
    PAPER_SUBTASKS,
    REFERENCE_AVERAGES,
    REFERENCE_ROWS,
    ROW_OF_SUBTASK,
    ROWS,
    benchmark_key,
)
from multispa.metrics.score import (
    json_value,
    load_jsonl,
    load_predictions,
    score_files,
    score_records,
)
from multispa.tasks.answers import format_answer
from multispa.tasks.templates import BENCHMARK_SUBTASKS, SUBTASKS

# The paper's Multi-SpatialMLLM rows as correct counts per benchmark subtask (300 items each).
PAPER_COUNTS: dict[str, int] = {
    "depth_comparison_dot": 222, "depth_comparison_coord": 222,                   # 444/600
    "depth_estimation_dot": 226, "depth_estimation_coord": 226,                   # 452/600
    "correspondence_coord": 147,                                                  # 147/300
    "correspondence_mcq_dot": 270,                                                # 270/300
    "camera_yaw_direction": 273, "camera_pitch_direction": 272,                   # 545/600
    "camera_yaw_degree": 137, "camera_pitch_degree": 136,                         # 273/600
    "camera_x_direction": 258, "camera_y_direction": 258, "camera_z_direction": 257,  # 773/900
    "camera_translation_distance": 127,                                           # 127/300
    "camera_translation_vector": 54,                                              # 54/300
    "object_movement_distance_coord:adt": 122, "object_movement_distance_coord:pstudio": 121,
    "object_movement_distance_dot:adt": 121, "object_movement_distance_dot:pstudio": 121,
    "object_movement_vector_coord:adt": 39, "object_movement_vector_coord:pstudio": 39,
    "object_movement_vector_dot:adt": 39, "object_movement_vector_dot:pstudio": 38,
    "object_size_height": 148, "object_size_width": 147, "object_size_length": 147,  # 442/900
}


def outcomes_from_counts(counts: dict[str, int], n: int = 300) -> list[ItemOutcome]:
    items = []
    for key, correct in counts.items():
        items += [ItemOutcome(key, i < correct, None) for i in range(n)]
    return items


# ---------------------------------------------------------------------------------- rows


def test_rows_cover_the_26_keys_once_in_table_order() -> None:
    assert len(ROWS) == 12
    keys = [k for row in ROWS for k in row.subtasks]
    assert sorted(keys) == sorted(PAPER_SUBTASKS) and len(keys) == 26
    # the benchmark's other nine keys are the N-view ones, in no row
    assert sorted(set(BENCHMARK_SUBTASKS) - set(keys)) == sorted(NVIEW_SUBTASKS)
    assert len(BENCHMARK_SUBTASKS) == 35
    assert [len(row.subtasks) for row in ROWS] == [2, 2, 1, 1, 2, 2, 3, 1, 1, 4, 4, 3]
    assert ROWS[6].name == "Camera Translation – Direction"
    assert ROW_OF_SUBTASK["object_movement_vector_dot:pstudio"] == "object_movement_vector"


def test_benchmark_key() -> None:
    assert benchmark_key({"subtask": "camera_x_direction", "meta": {"source": "scannet"}}) == (
        "camera_x_direction")
    rec = {"subtask": "object_movement_vector_dot", "meta": {"source": "tapvid3d/pstudio"}}
    assert benchmark_key(rec) == "object_movement_vector_dot:pstudio"
    rec = {"subtask": "object_movement_distance_coord", "meta": {"source": "tapvid3d/adt"}}
    assert benchmark_key(rec) == "object_movement_distance_coord:adt"
    with pytest.raises(ValueError, match=r"meta\.source"):
        benchmark_key({"id": "x", "subtask": "object_movement_vector_dot", "meta": {}})


def test_pooling_reproduces_the_paper() -> None:
    assert round(pooled_accuracy_pct([(258, 300), (258, 300), (257, 300)]), 2) == 85.89  # type: ignore[arg-type]
    assert round(pooled_accuracy_pct([(122, 300), (121, 300), (121, 300), (121, 300)]), 2) == (  # type: ignore[arg-type]
        40.42)
    assert pooled_accuracy_pct([]) is None


@pytest.mark.parametrize("model", list(REFERENCE_AVERAGES))
def test_reference_averages_are_unweighted_row_means(model: str) -> None:
    average, missing = unweighted_average(REFERENCE_ROWS[model])
    assert missing == ()
    assert round(average, 2) == REFERENCE_AVERAGES[model]  # type: ignore[arg-type]
    assert abs(average - REFERENCE_AVERAGES[model]) < 0.005  # type: ignore[operator]


def test_other_published_averages() -> None:
    assert OTHER_PUBLISHED_AVERAGES == {"InternVL2-26B": 21.36, "Claude-3.5-Sonnet": 27.50,
                                        "Gemini-2.0-Flash": 30.31, "SpatialRGPT": 16.24}


def test_rows_and_average_from_counts_reproduce_table_2() -> None:
    per_subtask = subtask_stats(outcomes_from_counts(PAPER_COUNTS))
    assert list(per_subtask) == list(PAPER_SUBTASKS)
    rows = row_stats(per_subtask)
    reference = REFERENCE_ROWS["Multi-SpatialMLLM"]
    for row in rows:
        assert row.stats is not None and not row.subtasks_missing
        assert round(row.stats.accuracy_pct, 2) == reference[row.key], row.key  # type: ignore[arg-type]
    assert rows[6].stats.correct == 773 and rows[6].stats.n == 900  # type: ignore[union-attr]
    assert rows[9].stats.correct == 485 and rows[9].stats.n == 1200  # type: ignore[union-attr]
    average, missing = unweighted_average({r.key: r.stats.accuracy_pct for r in rows})  # type: ignore[union-attr]
    assert missing == () and round(average, 2) == 56.11  # type: ignore[arg-type]


def test_average_over_present_rows_lists_the_missing() -> None:
    counts = {"camera_x_direction": 150, "correspondence_mcq_dot": 300}
    rows = row_stats(subtask_stats(outcomes_from_counts(counts)))
    by_key = {r.key: r for r in rows}
    direction = by_key["camera_translation_direction"]
    assert direction.subtasks_present == ("camera_x_direction",)
    assert direction.subtasks_missing == ("camera_y_direction", "camera_z_direction")
    assert by_key["depth_value"].stats is None
    average, missing = unweighted_average(
        {r.key: r.stats.accuracy_pct if r.stats else None for r in rows})
    assert average == 75.0
    assert len(missing) == 10 and "depth_value" in missing
    assert unweighted_average({}) == (None, tuple(r.key for r in ROWS))


def test_subtask_stats_counts_failures_missing_and_mra() -> None:
    items = [
        ItemOutcome("depth_estimation_dot", True, 1.0),
        ItemOutcome("depth_estimation_dot", False, 0.5),
        ItemOutcome("depth_estimation_dot", False, 0.0, parse_failed=True),
        ItemOutcome("depth_estimation_dot", False, 0.0, missing=True),
        ItemOutcome("depth_estimation_coord", True, 0.9),
        ItemOutcome("camera_x_direction", True, None),
    ]
    stats = subtask_stats(items)
    dot = stats["depth_estimation_dot"]
    assert (dot.n, dot.correct, dot.parse_failures, dot.missing, dot.mra_n) == (4, 1, 1, 1, 4)
    assert dot.accuracy_pct == 25.0 and dot.mra_pct == 37.5 and dot.parse_failure_rate_pct == 25.0
    assert stats["camera_x_direction"].mra_pct is None
    rows = {r.key: r for r in row_stats(stats)}
    depth = rows["depth_value"].stats
    assert depth is not None and depth.accuracy_pct == 40.0
    assert depth.mra_pct == pytest.approx(100 * 2.4 / 5)  # pooled over items, not subtasks


def test_object_movement_breakdown() -> None:
    items = [
        ItemOutcome("object_movement_distance_dot:adt", True, 1.0, moving=True),
        ItemOutcome("object_movement_distance_dot:adt", False, 0.0, moving=False),
        ItemOutcome("object_movement_vector_coord:pstudio", True, 1.0, moving=False),
        ItemOutcome("object_movement_vector_coord:pstudio", True, 1.0, moving=False),
        ItemOutcome("camera_x_direction", True, None),
    ]
    out: Any = object_movement_breakdown(items)
    assert out["by_source"]["adt"]["accuracy_pct"] == 50.0
    assert out["by_source"]["pstudio"]["n"] == 2
    assert out["by_motion"]["static"]["n"] == 3 and out["by_motion"]["static"]["correct"] == 2
    assert out["by_motion"]["moving"]["accuracy_pct"] == 100.0
    assert out["rows"]["object_movement_vector"] == {
        "pstudio": out["rows"]["object_movement_vector"]["pstudio"],
        "static": out["rows"]["object_movement_vector"]["static"],
    }
    assert out["rows"]["object_movement_distance"]["adt"]["n"] == 2


# ----------------------------------------------------------------------------- bootstrap


def _random_outcomes(seed: int) -> list[ItemOutcome]:
    rng = np.random.default_rng(seed)
    items = []
    for key in BENCHMARK_SUBTASKS:
        p = rng.uniform(0.1, 0.9)
        numeric = SUBTASKS[key.split(":")[0]].answer_type in ("scalar", "vector")
        for _ in range(120):
            mra = float(rng.integers(0, 11)) / 10 if numeric else None
            items.append(ItemOutcome(key, bool(rng.random() < p), mra))
    return items


def test_bootstrap_contains_the_estimates_and_is_deterministic() -> None:
    items = _random_outcomes(3)
    first = bootstrap_intervals(items, np.random.default_rng(11), n_resamples=400)
    again = bootstrap_intervals(items, np.random.default_rng(11), n_resamples=400)
    other = bootstrap_intervals(items, np.random.default_rng(12), n_resamples=400)
    assert first == again
    assert first != other
    per_subtask = subtask_stats(items)
    rows = row_stats(per_subtask)
    for key, stats in per_subtask.items():
        low, high = first.subtasks[key]
        assert low <= stats.accuracy_pct <= high and high - low > 1.0  # type: ignore[operator]
        if stats.mra_n:
            low, high = first.subtask_mra[key]
            assert low <= stats.mra_pct <= high  # type: ignore[operator]
    for row in rows:
        low, high = first.rows[row.key]
        assert low <= row.stats.accuracy_pct <= high  # type: ignore[union-attr, operator]
    average, _ = unweighted_average({r.key: r.stats.accuracy_pct for r in rows})  # type: ignore[union-attr]
    assert first.average is not None
    low, high = first.average
    assert low <= average <= high  # type: ignore[operator]
    # pooling over 12 rows: the Average is tighter than a single 120-item subtask
    assert high - low < min(h - lo for lo, h in first.subtasks.values())
    assert set(first.row_mra) == {"depth_value", "camera_orientation_degree",
                                  "camera_translation_distance", "camera_translation_vector",
                                  "object_movement_distance", "object_movement_vector",
                                  "object_perception_size"}


def test_bootstrap_degenerate_and_bad_arguments() -> None:
    items = [ItemOutcome("camera_x_direction", True, None)] * 50
    result = bootstrap_intervals(items, np.random.default_rng(0), n_resamples=50)
    assert result.subtasks["camera_x_direction"] == (100.0, 100.0)
    assert result.average == (100.0, 100.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_intervals(items, np.random.default_rng(0), n_resamples=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_intervals(items, np.random.default_rng(0), level=1.0)


# -------------------------------------------------------------------------------- scorer

_W, _H = 1296, 968


def _bench_record(key: str, index: int) -> dict[str, Any]:
    subtask, _, src = key.partition(":")
    spec = SUBTASKS[subtask]
    gt: Any = {
        "label": spec.options[:1], "choice": spec.options[-1:], "scalar": 1000,
        "vector": [300, 400, 0], "coord": [500, 500],
    }[spec.answer_type]
    if isinstance(gt, tuple):
        gt = gt[0]
    points: list[list[list[float]]] = [[] for _ in range(spec.num_images)]
    if subtask == "depth_comparison_coord":
        points = [[[100.0, 100.0], [648.65, 484.48]]]  # the second is gt [500, 500]
    meta: dict[str, Any] = {
        "source": f"tapvid3d/{src}" if src else "scannet",
        "points": points,
    }
    if src:
        meta["track"] = {"point_moving": index % 2 == 0}
    return {
        "id": f"val-{key}-{index:04d}", "subtask": subtask, "answer_type": spec.answer_type,
        "gt": gt, "width_list": [_W] * spec.num_images, "height_list": [_H] * spec.num_images,
        "task": spec.family, "meta": meta,
    }


_WRONG = {"label": "`{other}`", "choice": "`A` is my guess", "scalar": "`2,000` or so",
          "vector": "`[ 0 , 0 , 0 ]`", "coord": "`[ 900 , 900 ]`"}


def _response(record: dict[str, Any], right: bool) -> str:
    spec = SUBTASKS[record["subtask"]]
    if right:
        return f"I think it is {format_answer(spec.answer_type, record['gt'])}."
    return _WRONG[spec.answer_type].format(other=spec.options[-1] if spec.options else "")


def test_score_records_reproduces_table_2_end_to_end() -> None:
    records, predictions = [], {}
    for key, correct in PAPER_COUNTS.items():
        for i in range(300):
            rec = _bench_record(key, i)
            records.append(rec)
            predictions[rec["id"]] = _response(rec, i < correct)
    report = score_records(records, predictions, bootstrap=200, seed=5)
    reference = REFERENCE_ROWS["Multi-SpatialMLLM"]
    assert [row["key"] for row in report["rows"]] == [row.key for row in ROWS]
    for row in report["rows"]:
        assert round(row["accuracy_pct"], 2) == reference[row["key"]], row["key"]
        assert row["reference_pct"]["Multi-SpatialMLLM"] == reference[row["key"]]
        low, high = row["ci_pct"]
        assert low <= row["accuracy_pct"] <= high
    summary = report["summary"]
    assert round(summary["average_pct"], 2) == 56.11 and summary["average_complete"]
    assert summary["records"] == 7800 and summary["missing_predictions"] == 0
    assert summary["parse_failures"] == 0
    assert report["subtasks"]["camera_x_direction"]["correct"] == 258
    assert report["subtasks"]["object_movement_vector_dot:pstudio"]["accuracy_pct"] == (
        100 * 38 / 300)
    assert report["object_movement"]["by_motion"]["moving"]["n"] == 1200
    assert report["reference"]["averages_pct"]["GPT-4o"] == 28.87
    json.dumps(report)  # JSON-able
    again = score_records(records, predictions, bootstrap=200, seed=5)
    assert again["summary"]["average_ci_pct"] == summary["average_ci_pct"]


def _small_bench() -> list[dict[str, Any]]:
    return [
        _bench_record("depth_estimation_dot", 0),
        _bench_record("depth_estimation_dot", 1),
        _bench_record("depth_estimation_coord", 2),
        _bench_record("camera_x_direction", 3),
        _bench_record("object_movement_vector_dot:adt", 4),
        _bench_record("depth_comparison_coord", 5),
    ]


def test_score_records_missing_failures_and_per_record_output() -> None:
    records = _small_bench()
    predictions = {
        records[0]["id"]: "`1000.5` mm",           # right, parsed as a Fraction
        records[1]["id"]: "no idea",               # parse failure
        # records[2] has no prediction: missing
        records[3]["id"]: "to the LEFT",           # fallback
        records[4]["id"]: "`[ 0.3 , 0.4 , 0 ]` m",  # right, converted to mm
        records[5]["id"]: "`[ 500 , 500 ]`",
        "val-unknown-0001": "`1`",
    }
    report = score_records(records, predictions, bootstrap=0, strict_mra=True,
                           extra_metrics=True)
    assert report["missing_predictions"] == [records[2]["id"]]
    assert report["unknown_prediction_ids"] == ["val-unknown-0001"]
    per = {r["id"]: r for r in report["records"]}
    assert per[records[0]["id"]] == {"id": records[0]["id"], "key": "depth_estimation_dot",
                                     "parsed": "1000.5", "source": "backtick", "correct": True,
                                     "mra": 1.0, "reason": None}
    assert per[records[1]["id"]]["reason"] == "no_match"
    assert per[records[1]["id"]]["mra"] == 0.0 and per[records[1]["id"]]["correct"] is False
    assert per[records[2]["id"]]["reason"] == "missing" and not per[records[2]["id"]]["correct"]
    assert per[records[3]["id"]]["source"] == "fallback" and per[records[3]["id"]]["correct"]
    assert per[records[4]["id"]]["parsed"] == [300, 400, 0]
    assert per[records[5]["id"]]["correct"]
    depth = report["subtasks"]["depth_estimation_dot"]
    assert depth["parse_failures"] == 1 and depth["accuracy_pct"] == 50.0
    assert depth["ci_pct"] is None
    assert depth["spatialrgpt_success_pct"] == 50.0
    coord = report["subtasks"]["depth_estimation_coord"]
    assert coord["missing"] == 1 and coord["parse_failures"] == 0 and coord["correct"] == 0
    summary = report["summary"]
    assert summary["missing_predictions"] == 1 and summary["parse_failures"] == 1
    assert summary["accuracy_pct"] == pytest.approx(100 * 4 / 6)
    assert summary["average_complete"] is False and "depth_value" not in summary["rows_missing"]
    assert summary["average_pct"] == pytest.approx((100 * 1 / 3 + 100 + 100 + 100) / 4)
    assert report["scorer"]["mode"]["mra_operator"] == "<"
    assert report["scorer"]["version"]


def test_score_records_rejects_bad_records() -> None:
    good = _bench_record("camera_x_direction", 0)
    with pytest.raises(FormatError, match="duplicate id"):
        score_records([good, dict(good)], {}, bootstrap=0)
    with pytest.raises(FormatError, match="unknown subtask"):
        score_records([{**good, "subtask": "camera_roll"}], {}, bootstrap=0)
    with pytest.raises(FormatError, match="answer_type"):
        score_records([{**good, "answer_type": "choice"}], {}, bootstrap=0)
    with pytest.raises(FormatError, match="gt"):
        bad = _bench_record("depth_estimation_dot", 0)
        score_records([{**bad, "gt": "far"}], {bad["id"]: "`1`"}, bootstrap=0)
    with pytest.raises(FormatError, match=r"meta\.source"):
        om = _bench_record("object_movement_distance_dot:adt", 0)
        score_records([{**om, "meta": {"source": "scannet"}}], {}, bootstrap=0)


def test_json_value() -> None:
    from fractions import Fraction

    assert json_value(Fraction(-2469, 2)) == "-1234.5"
    assert json_value(Fraction(1, 40)) == "0.025"
    assert json_value(Fraction(-1, 40)) == "-0.025"
    assert json_value(Fraction(1, 3)) == "1/3"
    assert json_value((Fraction(5, 1), -3, Fraction(1, 8))) == [5, -3, "0.125"]
    assert json_value("left") == "left" and json_value(None) is None


def test_score_files(tmp_path: Path) -> None:
    records = _small_bench()
    bench_dir = tmp_path / "bench"
    bench_dir.mkdir()
    (bench_dir / "a.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records[:3]) + "\n\n", encoding="utf-8")
    (bench_dir / "b.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records[3:]) + "\n", encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text("\n".join(json.dumps({"id": r["id"], "response": "`1000`"})
                               for r in records) + "\n", encoding="utf-8")
    report = score_files(bench_dir, preds, bootstrap=20)
    assert report["summary"]["records"] == 6
    assert report["subtasks"]["depth_estimation_dot"]["correct"] == 2
    assert len(report["inputs"]["benchmark"]) == 2
    single = score_files([bench_dir / "a.jsonl"], preds, bootstrap=0)
    assert single["summary"]["records"] == 3 and single["summary"]["unknown_predictions"] == 3


def test_loaders_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError):
        load_jsonl(tmp_path / "absent.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a"}\n{oops\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad\.jsonl: line 2: invalid JSON"):
        load_jsonl(bad)
    bad.write_text('{"id": "a"}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(FormatError, match="line 2: expected a JSON object"):
        load_jsonl(bad)
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "a", "response": "x"}\n{"id": "a", "response": "y"}\n',
                     encoding="utf-8")
    with pytest.raises(FormatError, match="duplicate id"):
        load_predictions(preds)
    preds.write_text('{"id": "a", "response": 12}\n', encoding="utf-8")
    with pytest.raises(FormatError, match="must be a string or null"):
        load_predictions(preds)
    preds.write_text('{"id": "a", "response": null}\n{"id": "b", "response": "`2`"}\n',
                     encoding="utf-8")
    assert load_predictions(preds) == {"a": None, "b": "`2`"}


def test_static_vs_moving_without_the_track_flag() -> None:
    moving = _bench_record("object_movement_distance_dot:pstudio", 0)
    static = {**_bench_record("object_movement_distance_dot:pstudio", 1), "gt": 0}
    for rec in (moving, static):
        del rec["meta"]["track"]
    report = score_records([moving, static], {static["id"]: "It stayed: `4` mm"}, bootstrap=0)
    motion = report["object_movement"]["by_motion"]
    assert motion["static"]["n"] == 1 and motion["static"]["correct"] == 1
    assert motion["moving"]["n"] == 1 and motion["moving"]["missing"] == 1


def test_main_prints_rows_and_writes_the_report(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from multispa.metrics.score import main

    records = _small_bench()
    bench = tmp_path / "bench.jsonl"
    bench.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"id": records[0]["id"], "response": "`1000`"}) + "\n",
                     encoding="utf-8")
    out = tmp_path / "report.json"
    assert main([str(bench), "--predictions", str(preds), "--out", str(out),
                 "--bootstrap", "10"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["summary"]["missing_predictions"] == 5
    printed = capsys.readouterr().out
    assert "Depth – Value" in printed and "Average" in printed

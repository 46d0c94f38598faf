"""Scoring and reporting of the N-view subtasks: exact counts with MRA, image-number and
hyphenated labels, the N-view table and average beside (never inside) the 12 rows, and the
chance, prior and oracle baselines on N-view items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multispa.evaluate.backends.base import parse_model_spec
from multispa.evaluate.runner import format_scores_table, run_eval
from multispa.metrics.judge import judge
from multispa.metrics.parse import ParsedAnswer, parse_answer
from multispa.metrics.rows import NVIEW_NAMES, ROWS
from multispa.metrics.score import score_records
from multispa.report import load_runs, markdown_table, render_html
from multispa.tasks.templates import NVIEW_SUBTASKS, SUBTASKS


def _record(subtask: str, gt: object, rid: str, images: int = 8) -> dict:
    spec = SUBTASKS[subtask]
    return {"id": rid, "subtask": subtask, "answer_type": spec.answer_type, "gt": gt,
            "image": [f"x/{k}.jpg" for k in range(images)],
            "width_list": [160] * images, "height_list": [120] * images,
            "meta": {"source": "scannet", "scene": "scene0000_00"}}


def test_count_is_exact_with_mra() -> None:
    record = _record("nview_object_count", 10, "c")
    nine = judge(parse_answer("`9`", "scalar", "nview_object_count"), record)
    assert nine.correct is False and nine.mra == pytest.approx(0.9)  # 10 % off: MRA only
    ten = judge(parse_answer("There are `10` of them.", "scalar", "nview_object_count"), record)
    assert ten.correct is True and ten.mra == 1.0
    assert judge(parse_answer("`10.5`", "scalar", "nview_object_count"), record).correct is False
    # a length unit is not a count
    assert parse_answer("`10 m`", "scalar", "nview_object_count").value is None
    distance = _record("nview_object_abs_distance", 1000, "d")
    assert judge(parse_answer("`1.15 m`", "scalar", "nview_object_abs_distance"),
                 distance).correct is True  # the paper's 20 % rule


def test_image_number_and_hyphenated_labels_parse_exactly() -> None:
    cases = {
        "`3`": "3", "It is image `3`.": "3", "`Image-12`": "12", "`image 7.`": "7",
        "Image-1 and Image-2 look alike, but the closest is image 5.": "5",
        "The answer: 4": "4", "`40`": None, "`0`": None,
    }
    for text, value in cases.items():
        assert parse_answer(text, "label", "nview_nearest_view").value == value, text
    record = _record("nview_nearest_view", "3", "n")
    assert judge(ParsedAnswer("3", None, "backtick"), record).correct is True
    assert judge(ParsedAnswer("13", None, "backtick"), record).correct is False
    hard = "nview_rel_direction_hard"
    for text in ("`front left`", "`Front-Left`", "`front_left`", "it is front left of me"):
        assert parse_answer(text, "label", hard).value == "front-left", text
    assert parse_answer("`back`", "label", "nview_rel_direction_medium").value == "back"
    assert parse_answer("`back`", "label", "nview_rel_direction_easy").value is None


def test_nview_table_sits_beside_the_rows_and_average() -> None:
    paper = [_record("camera_x_direction", "left", f"p{k}", 2) for k in range(4)]
    nview = [_record(name, SUBTASKS[name].options_for(8)[0] if SUBTASKS[name].options else 5,
                     f"n{k}") for k, name in enumerate(NVIEW_SUBTASKS)]
    answers = {r["id"]: "`left`" for r in paper[:3]}
    answers.update({r["id"]: f"`{r['gt']}`" for r in nview[:6]})  # six of nine right
    alone = score_records(paper, answers, bootstrap=0)
    both = score_records(paper + nview, answers, bootstrap=20)
    assert both["summary"]["average_pct"] == alone["summary"]["average_pct"] == 75.0
    assert [row["accuracy_pct"] for row in both["rows"]] == [
        row["accuracy_pct"] for row in alone["rows"]]
    assert [s["key"] for s in both["nview"]["subtasks"]] == list(NVIEW_SUBTASKS)
    assert both["nview"]["average_pct"] == pytest.approx(100.0 * 6 / 9)
    assert both["summary"]["nview_average_pct"] == both["nview"]["average_pct"]
    assert both["nview"]["average_complete"] is True and both["nview"]["average_ci_pct"]
    assert alone["nview"]["average_pct"] is None and alone["nview"]["average_subtasks"] == 0
    assert both["subtasks"]["nview_nearest_view"]["row"] == "nview"
    text = format_scores_table(both)
    assert "N-view average" in text and "N-view average" not in format_scores_table(alone)


@pytest.fixture(scope="module")
def runs(small_bench: Path, small_dataset: Path,
         tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("nview_runs")
    out = {}
    for name in ("chance", "prior", "oracle"):
        out[name] = root / name
        run_eval(small_bench, parse_model_spec(f"baseline:{name}"), out[name],
                 prior_from=small_dataset, seed=0, force=True, progress=False)
    return out


def test_baselines_answer_nview_items(runs: dict[str, Path], small_bench: Path) -> None:
    oracle = json.loads((runs["oracle"] / "scores.json").read_text())
    present = [s for s in oracle["nview"]["subtasks"] if s["n"]]
    assert len(present) >= 5 and all(s["accuracy_pct"] == 100.0 for s in present)
    assert oracle["nview"]["average_pct"] == 100.0
    items = {json.loads(line)["id"]: json.loads(line)
             for line in (small_bench / "bench.jsonl").read_text().splitlines()}
    for name in ("chance", "prior"):
        for line in (runs[name] / "results.jsonl").read_text().splitlines():
            result = json.loads(line)
            item = items[result["id"]]
            if item["subtask"] in NVIEW_SUBTASKS:
                assert result["reason"] is None, result  # every baseline answer parses
                if item["subtask"] == "nview_nearest_view":
                    assert 1 <= int(result["parsed"]) <= len(item["image"])


def test_report_and_markdown_show_the_nview_table(runs: dict[str, Path]) -> None:
    loaded = load_runs([runs[name] for name in ("chance", "oracle")])
    page = render_html(loaded, items_per_key=1)
    assert 'id="nview"' in page and "N-view average" in page
    for name in NVIEW_NAMES.values():
        assert name in page
    table = markdown_table(loaded)
    first, _, second = table.partition("| N-view subtask |")
    assert second, table
    assert first.count("\n| ") == len(ROWS) + 1  # 12 rows and the Average: unchanged
    assert "**N-view average**" in second and "**100.00**" in second

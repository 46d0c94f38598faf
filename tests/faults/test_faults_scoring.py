"""Pathological model output never crashes the scorer: huge numbers are unparsable, a deeply
nested or oversized JSON line in a predictions file is a one-line error naming the file."""

from __future__ import annotations

import json
from pathlib import Path

from fault_kit import Cli, assert_one_line_error

from multispa.evaluate.bench import load_bench
from multispa.metrics.parse import MAX_RESPONSE_CHARS, parse_answer
from multispa.tasks.templates import SUBTASKS


def test_parse_answer_never_raises_on_pathological_responses() -> None:
    unparsable = [
        "`" + "7" * 5000 + "`",  # beyond Python's int-conversion limit
        "the answer is " + "7" * 5000,
        "`1." + "3" * 5000 + "` m",
        "[" * 100_000 + "]" * 100_000,
        "`" + "1" * 300 + "`",
    ]
    for response in [*unparsable, "[" + "9" * 5000 + ", 1, 2]", "1," * 50_000]:
        for subtask, spec in SUBTASKS.items():
            parsed = parse_answer(response, spec.answer_type, subtask)
            if response in unparsable:
                assert parsed.value is None, (subtask, response[:20])
    long = "x " * MAX_RESPONSE_CHARS + "so it moved `1834` mm"
    assert parse_answer(long, "scalar", "camera_translation_distance").value == 1834


def _predictions(bench: Path, response: str) -> list[str]:
    return [json.dumps({"id": item["id"], "response": response}) + "\n"
            for item in load_bench(bench)]


def test_score_with_huge_numbers_scores_them_unparsable(
    cli: Cli, small_bench: Path, tmp_path: Path,
) -> None:
    predictions = tmp_path / "p.jsonl"
    predictions.write_text("".join(_predictions(small_bench, "`" + "7" * 5000 + "`")))
    run = cli("score", "--bench", small_bench, "--predictions", predictions,
              "--out", tmp_path / "run")
    assert run.returncode == 0, run.stderr
    results = [json.loads(line)
               for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert results and all(r["parsed"] is None and r["correct"] is False for r in results)


def test_deeply_nested_prediction_line_is_one_line_error(
    cli: Cli, small_bench: Path, tmp_path: Path,
) -> None:
    lines = _predictions(small_bench, "`1`")
    nested = tmp_path / "nested.jsonl"
    nested.write_text("".join(lines[:3]) + "[" * 100_000 + "]" * 100_000 + "\n")
    run = cli("score", "--bench", small_bench, "--predictions", nested, "--out", tmp_path / "r1")
    assert_one_line_error(run, nested, "line 4", "nested too deeply")
    huge = tmp_path / "huge.jsonl"
    huge.write_text("".join(lines[:1]) + '{"id": "x", "response": ' + "7" * 5000 + "}\n")
    run = cli("score", "--bench", small_bench, "--predictions", huge, "--out", tmp_path / "r2")
    assert_one_line_error(run, huge, "line 2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.jsonl", "nested.jsonl"]

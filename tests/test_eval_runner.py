"""The evaluation runner and the offline backends: baselines (oracle 100 %, chance at the chance
rate, prior deterministic and leave-one-out), prediction files, resume without duplicates,
RUN-folder identity, ``--limit`` and the ``eval`` / ``score`` commands."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from scipy.stats import binom

from multispa.cli.evaluate import eval_command, score_command
from multispa.errors import ConfigError, FormatError
from multispa.evaluate.backends.base import (
    DEFAULT_INSTRUCTION,
    EvalItem,
    Prediction,
    parse_model_spec,
)
from multispa.evaluate.backends.baselines import BaselineBackend, comparison_candidates
from multispa.evaluate.backends.files import PredictionsFileBackend
from multispa.evaluate.backends.registry import BackendOptions, make_backend
from multispa.evaluate.bench import build_bench, load_bench
from multispa.evaluate.runner import PredictionLog, run_eval, select_items
from multispa.metrics.rows import benchmark_key
from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig
from multispa.synth.dataset import write_synthetic_dataset
from multispa.tasks.templates import SUBTASKS


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("eval_data")
    write_synthetic_dataset(root / "synth",
                            SynthConfig(scenes=4, clips=4, seed=5, small=True, workers=1))
    prepare(PrepareConfig(cache=root / "cache", scannet=root / "synth" / "scannet",
                          tapvid3d=root / "synth" / "tapvid3d", frame_skip=1))
    out = root / "dataset"
    generate(GenerateConfig(cache=root / "cache", out=out, max_per_subtask=40, seed=1))
    return out


@pytest.fixture(scope="module")
def bench(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval_bench") / "bench"
    build_bench(dataset, out, per_subtask=40, seed=0)
    return out


@pytest.fixture(scope="module")
def items(bench: Path) -> list[dict]:
    return load_bench(bench)


def _run(bench: Path, spec: str, out: Path, **kwargs: Any) -> dict:
    kwargs.setdefault("bootstrap", 0)
    return run_eval(bench, spec, out, progress=False, **kwargs)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


class RecordingBackend:
    """The oracle, counting calls; optionally raising after ``fail_after`` predictions and
    answering ``error_ids`` with an error."""

    name = "test:recording"

    def __init__(self, records: Sequence[dict], fail_after: int | None = None,
                 error_ids: frozenset[str] = frozenset()) -> None:
        self.oracle = BaselineBackend("oracle", records)
        self.fail_after = fail_after
        self.error_ids = error_ids
        self.calls: list[list[str]] = []
        self.texts: dict[str, str] = {}
        self.closed = False

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        self.calls.append([item.id for item in items])
        for count, item in enumerate(reversed(items)):  # any order is allowed
            if self.fail_after is not None and count == self.fail_after:
                raise RuntimeError("connection lost")
            self.texts[item.id] = item.text
            if item.id in self.error_ids:
                yield Prediction(item.id, None, error="HTTP 500", latency_s=0.5)
            else:
                yield Prediction(item.id, self.oracle.answer(item), latency_s=0.1)

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------------------ baselines


def test_oracle_scores_100_on_every_row(bench: Path, items: list[dict], tmp_path: Path) -> None:
    scores = _run(bench, "baseline:oracle", tmp_path / "run", bootstrap=50)
    present = [row for row in scores["rows"] if row["n"]]
    assert len(present) >= 10
    assert all(row["accuracy_pct"] == 100.0 for row in present)
    assert scores["summary"]["average_pct"] == 100.0
    assert scores["summary"]["parse_failures"] == 0
    assert scores["summary"]["records"] == len(items)
    results = _jsonl(tmp_path / "run" / "results.jsonl")
    assert [r["id"] for r in results] == [i["id"] for i in items]
    assert all(r["correct"] and r["response"].startswith("My answer is `") for r in results)
    assert {r["benchmark_key"] for r in results} == {benchmark_key(i) for i in items}
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == "baseline:oracle" and config["finished"]
    assert config["instruction"] == {"enabled": True, "text": DEFAULT_INSTRUCTION}
    assert config["bench"]["content_sha256"] == scores["run"]["bench_content_sha256"]
    assert "records" not in scores
    assert (tmp_path / "run" / "scores.json").is_file()


def test_chance_lands_at_the_chance_rate(bench: Path, items: list[dict], tmp_path: Path) -> None:
    scores = _run(bench, "baseline:chance", tmp_path / "run")
    per_subtask: dict[str, list[bool]] = {}
    for row in _jsonl(tmp_path / "run" / "results.jsonl"):
        per_subtask.setdefault(row["benchmark_key"].split(":")[0], []).append(row["correct"])
    images = {item["id"]: len(item["image"]) for item in items}
    counts = {row["benchmark_key"].split(":")[0]: images[row["id"]]
              for row in _jsonl(tmp_path / "run" / "results.jsonl")}
    checked = set()
    for subtask, outcomes in per_subtask.items():
        spec = SUBTASKS[subtask]
        if spec.answer_type in ("label", "choice"):
            rate = 1 / len(spec.options_for(counts[subtask]))  # nearest view: 1 of N images
        elif subtask == "depth_comparison_coord":
            rate = 0.5
        else:
            continue
        low, high = binom.interval(0.999, len(outcomes), rate)
        assert low <= sum(outcomes) <= high, (subtask, sum(outcomes), len(outcomes))
        checked.add(subtask)
    paper = {"camera_x_direction", "camera_y_direction", "camera_z_direction",
             "camera_yaw_direction", "camera_pitch_direction", "correspondence_mcq_dot",
             "depth_comparison_dot", "depth_comparison_coord"}
    assert paper <= checked  # 5 camera labels, MCQ, depth comparison dot and coord
    assert checked - paper <= {s for s in SUBTASKS if s.startswith("nview_")}
    assert scores["summary"]["parse_failures"] == 0


def test_chance_numeric_draws_come_from_other_items(items: list[dict]) -> None:
    backend = BaselineBackend("chance", items, seed=4)
    by_key: dict[str, list[dict]] = {}
    for item in items:
        by_key.setdefault(benchmark_key(item), []).append(item)
    for key, group in by_key.items():
        if group[0]["answer_type"] not in ("scalar", "vector") or len(group) < 2:
            continue
        for k, item in enumerate(group):
            value = backend.answer_value(_eval_item(item))
            others = [g["gt"] for j, g in enumerate(group) if j != k]
            assert (list(value) if isinstance(value, tuple) else value) in others, key


def _eval_item(record: dict) -> EvalItem:
    return EvalItem(record["id"], (), record["text"], record["subtask"], record["answer_type"],
                    record)


def _scalar(rid: str, gt: int) -> dict:
    return {"id": rid, "subtask": "camera_translation_distance", "answer_type": "scalar",
            "gt": gt, "text": "<image><image>", "meta": {"source": "scannet"}}


def test_prior_and_chance_leave_one_out() -> None:
    records = [_scalar("a", 100), _scalar("b", 200), _scalar("c", 900)]
    prior = BaselineBackend("prior", records)
    assert [prior.answer_value(_eval_item(r)) for r in records] == [550, 500, 150]
    chance = BaselineBackend("chance", records[::2])  # two items: each must draw the other
    assert [chance.answer_value(_eval_item(r)) for r in records[::2]] == [900, 100]
    assert prior.describe()["statistics"] == "benchmark, leave-one-out"
    alone = BaselineBackend("prior", records[:1])
    assert alone.answer_value(_eval_item(records[0])) == 0  # no other value: neutral answer
    # labels: the key's most frequent label, a constant answer (ties → first option)
    labels = [{"id": f"l{i}", "subtask": "camera_x_direction", "answer_type": "label",
               "gt": gt, "text": "", "meta": {"source": "scannet"}}
              for i, gt in enumerate(["left", "right", "right", "left"])]
    answers = {BaselineBackend("prior", labels).answer_value(_eval_item(r)) for r in labels}
    assert answers == {"left"}
    three = [*labels, {**labels[1], "id": "l9"}]
    assert {BaselineBackend("prior", three).answer_value(_eval_item(r)) for r in three} == \
        {"right"}


def test_prior_is_deterministic_and_records_its_source(
    bench: Path, dataset: Path, items: list[dict], tmp_path: Path,
) -> None:
    a = _run(bench, "baseline:prior", tmp_path / "a")
    b = _run(bench, "baseline:prior", tmp_path / "b")
    assert (tmp_path / "a" / "predictions.jsonl").read_text().replace('"latency_s": 0.0', "") == \
        (tmp_path / "b" / "predictions.jsonl").read_text().replace('"latency_s": 0.0', "")
    assert a["rows"] == b["rows"]
    details = json.loads((tmp_path / "a" / "config.json").read_text())["backend"]["details"]
    assert details["statistics"] == "benchmark, leave-one-out"
    _run(bench, "baseline:prior", tmp_path / "t", prior_from=dataset)
    details = json.loads((tmp_path / "t" / "config.json").read_text())["backend"]["details"]
    assert details["statistics"].startswith("train split of")
    assert details["train_records"] > 0 and details["fallback_keys_leave_one_out"] == []
    # with train statistics every item of a scalar key gets the same (train median) answer
    answers: dict[str, set[str]] = {}
    for row in _jsonl(tmp_path / "t" / "predictions.jsonl"):
        key = benchmark_key(next(i for i in items if i["id"] == row["id"]))
        answers.setdefault(key, set()).add(row["response"])
    comparison = "depth_comparison_coord"
    assert all(len(v) == 1 for k, v in answers.items() if k != comparison)


def test_comparison_candidates_hold_gt(items: list[dict]) -> None:
    group = [i for i in items if i["subtask"] == "depth_comparison_coord"]
    assert group
    for item in group:
        cells, correct = comparison_candidates(item)
        assert list(cells[correct]) == item["gt"]
        assert cells[0] != cells[1]


# ------------------------------------------------------------------------------ resume


def test_resume_after_a_failure_asks_only_the_rest(
    bench: Path, items: list[dict], tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    flaky = RecordingBackend(items, fail_after=37)
    with pytest.raises(RuntimeError, match="connection lost"):
        run_eval(bench, "baseline:oracle", run, backend=flaky, progress=False, bootstrap=0)
    assert flaky.closed
    lines = _jsonl(run / "predictions.jsonl")
    assert len(lines) == 37 and not (run / "scores.json").exists()
    # a kill during a write leaves a truncated last line
    with (run / "predictions.jsonl").open("a") as handle:
        handle.write('{"id": "' + items[0]["id"] + '", "respo')
    second = RecordingBackend(items, error_ids=frozenset(i["id"] for i in items[:3]))
    scores = run_eval(bench, "baseline:oracle", run, backend=second, progress=False,
                      bootstrap=0)
    assert len(second.calls) == 1 and len(second.calls[0]) == len(items) - 37
    assert not set(second.calls[0]) & {line["id"] for line in lines}
    assert scores["summary"]["missing_predictions"] == 3 and scores["run"]["errors"] == 3
    ids = [line["id"] for line in _jsonl(run / "predictions.jsonl")]
    assert len(ids) == len(set(ids)) == len(items)
    # the third run retries only the three errors; the error lines are replaced, not duplicated
    third = RecordingBackend(items)
    scores = run_eval(bench, "baseline:oracle", run, backend=third, progress=False, bootstrap=0)
    assert sorted(third.calls[0]) == sorted(i["id"] for i in items[:3])
    assert scores["summary"]["accuracy_pct"] == 100.0
    lines = _jsonl(run / "predictions.jsonl")
    assert sorted(line["id"] for line in lines) == sorted(i["id"] for i in items)
    assert all(line["error"] is None for line in lines)
    results = [r["id"] for r in _jsonl(run / "results.jsonl")]
    assert sorted(results) == sorted(i["id"] for i in items)
    # a finished run costs nothing
    fourth = RecordingBackend(items)
    run_eval(bench, "baseline:oracle", run, backend=fourth, progress=False, bootstrap=0)
    assert fourth.calls == []


def test_prediction_log_rejects_a_corrupt_middle_line(tmp_path: Path) -> None:
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"id": "a", "response": "x", "error": null}\nnot json\n{"id": "b"}\n')
    with pytest.raises(FormatError, match="line 2"):
        PredictionLog(path).load()


def test_limit_takes_the_first_items_of_every_key(
    bench: Path, items: list[dict], tmp_path: Path,
) -> None:
    chosen = select_items(items, 3)
    keys = [benchmark_key(i) for i in chosen]
    assert all(keys.count(k) == min(3, sum(benchmark_key(i) == k for i in items)) for k in keys)
    assert chosen == [i for i in items if i in chosen]  # bench order kept
    recorder = RecordingBackend(items)
    scores = run_eval(bench, "baseline:oracle", tmp_path / "run", limit=3, backend=recorder,
                      progress=False, bootstrap=0)
    assert recorder.calls[0] and sorted(recorder.calls[0]) == sorted(i["id"] for i in chosen)
    assert scores["summary"]["records"] == len(chosen)
    with pytest.raises(ConfigError, match="limit"):
        select_items(items, 0)


def test_instruction_is_appended_or_left_out(
    bench: Path, items: list[dict], tmp_path: Path,
) -> None:
    on, off = RecordingBackend(items), RecordingBackend(items)
    run_eval(bench, "baseline:oracle", tmp_path / "on", limit=1, backend=on, progress=False,
             bootstrap=0)
    run_eval(bench, "baseline:oracle", tmp_path / "off", limit=1, backend=off, progress=False,
             bootstrap=0, instruction=None)
    by_id = {i["id"]: i for i in items}
    assert on.texts and all(t == by_id[rid]["text"] + "\n" + DEFAULT_INSTRUCTION
                            for rid, t in on.texts.items())
    assert all(t == by_id[rid]["text"] for rid, t in off.texts.items())


# ------------------------------------------------------------------------ RUN identity


def test_run_folder_refuses_another_run_unless_forced(
    bench: Path, dataset: Path, tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    _run(bench, "baseline:oracle", run, limit=2)
    with pytest.raises(ConfigError, match="model"):
        _run(bench, "baseline:chance", run, limit=2)
    with pytest.raises(ConfigError, match="instruction"):
        _run(bench, "baseline:oracle", run, limit=2, instruction="Answer in backticks.")
    other = tmp_path / "bench2"
    build_bench(dataset, other, per_subtask=5, seed=1)
    with pytest.raises(ConfigError, match="bench_content_sha256"):
        _run(other, "baseline:oracle", run, limit=2)
    scores = _run(bench, "baseline:chance", run, limit=2, force=True)
    assert scores["summary"]["accuracy_pct"] < 100.0
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "baseline:chance"
    chance = RecordingBackend(load_bench(bench))
    _run(bench, "baseline:chance", run, limit=2, backend=chance)
    assert chance.calls == []  # same run: resumed, nothing to ask
    with pytest.raises(ConfigError, match="baseline"):
        _run(bench, "baseline:chance", run, limit=2, seed=5)


def test_secrets_stay_out_of_the_config(bench: Path, items: list[dict], tmp_path: Path) -> None:
    run_eval(bench, "openai:some-model@http://127.0.0.1:9", tmp_path / "run", limit=1,
             api_key="sk-secret-123", backend=RecordingBackend(items), progress=False,
             bootstrap=0)
    text = (tmp_path / "run" / "config.json").read_text()
    assert "sk-secret-123" not in text
    assert json.loads(text)["backend"]["settings"]["api_key_set"] is True


# ------------------------------------------------------------------------ prediction files


def test_predictions_file_with_unknown_and_missing_ids(
    bench: Path, items: list[dict], tmp_path: Path,
) -> None:
    oracle = BaselineBackend("oracle", items)
    lines = [{"id": i["id"], "response": oracle.answer(_eval_item(i))} for i in items[5:]]
    lines.append({"id": "val-not-in-the-benchmark", "response": "`left`"})
    path = tmp_path / "preds.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    backend = make_backend(parse_model_spec(f"predictions:{path}"),
                           BackendOptions(bench_records=items))
    assert isinstance(backend, PredictionsFileBackend)
    assert backend.unknown_ids == ["val-not-in-the-benchmark"]
    scores = _run(bench, f"predictions:{path}", tmp_path / "run")
    assert scores["unknown_prediction_ids"] == ["val-not-in-the-benchmark"]
    assert scores["missing_predictions"] == [i["id"] for i in items[:5]]
    assert scores["summary"]["accuracy_pct"] == pytest.approx(100 * (len(items) - 5) / len(items))
    results = {r["id"]: r for r in _jsonl(tmp_path / "run" / "results.jsonl")}
    assert all(results[i["id"]]["reason"] == "missing" and results[i["id"]]["error"]
               for i in items[:5])


def test_cli_eval_and_score(bench: Path, items: list[dict], tmp_path: Path) -> None:
    cli = click.Group(commands={"eval": eval_command, "score": score_command})
    runner = CliRunner()
    result = runner.invoke(cli, ["eval", "--bench", str(bench), "--model", "baseline:oracle",
                                 "--out", str(tmp_path / "run"), "--limit", "2"])
    assert result.exit_code == 0, result.output
    table = {line.split("  ")[0].strip(): line for line in result.output.splitlines()}
    assert "100.00" in table["Average"] and "100.00" in table["Depth – Comparison"]
    predictions = tmp_path / "run" / "predictions.jsonl"
    result = runner.invoke(cli, ["score", "--bench", str(bench), "--predictions",
                                 str(predictions), "--out", str(tmp_path / "scored"),
                                 "--limit", "2"])
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "scored" / "scores.json").read_text())
    assert scored["summary"]["accuracy_pct"] == 100.0
    assert scored["run"]["model"] == f"predictions:{predictions.resolve()}"
    result = runner.invoke(cli, ["eval", "--bench", str(bench), "--model", "bogus:x", "--out",
                                 str(tmp_path / "bad")])
    assert result.exit_code != 0 and isinstance(result.exception, ConfigError)


def test_cli_reads_the_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    def fake_run_eval(*args: Any, **kwargs: Any) -> dict:
        seen.update(kwargs)
        raise ConfigError("stop here")

    monkeypatch.setattr("multispa.cli.evaluate.run_eval", fake_run_eval)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    cli = click.Group(commands={"eval": eval_command})
    result = CliRunner().invoke(cli, ["eval", "--bench", str(tmp_path), "--model",
                                      "openai:m@http://localhost:1/v1", "--out",
                                      str(tmp_path / "r"), "--no-instruction", "--timeout", "5"])
    assert isinstance(result.exception, ConfigError)
    assert seen["api_key"] == "sk-env" and seen["instruction"] is None
    assert seen["timeout_s"] == 5.0


def test_registry_passes_the_documented_keywords() -> None:
    import inspect

    pytest.importorskip("httpx")
    spec = parse_model_spec("openai:some-model@http://127.0.0.1:9/v1")
    backend = make_backend(spec, BackendOptions(concurrency=2, timeout_s=3.0, max_retries=1,
                                                api_key="k"))
    try:
        assert type(backend).__name__ == "OpenAIBackend"
    finally:
        backend.close()
    from multispa.evaluate.backends.hf import HFBackend

    inspect.signature(HFBackend).bind("model/path", None, batch_size=2, max_new_tokens=8,
                                      device=None)
    baseline = make_backend(parse_model_spec("baseline:prior"), BackendOptions(seed=3))
    assert isinstance(baseline, BaselineBackend) and baseline.seed == 3

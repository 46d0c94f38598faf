"""RL fine-tuning: the verifiable reward (the scorer, per completion), the ``rl`` export, two GRPO
steps of TRL on the tiny Qwen2.5-VL on CPU, and a blind ``hf:`` run of the same model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from multispa.errors import ConfigError
from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION
from multispa.formats.dataset_export import export_dataset
from multispa.formats.dataset_source import open_dataset
from multispa.formats.messages import content_text
from multispa.metrics.reward import make_reward, reward
from multispa.metrics.score import score_records
from multispa.tasks.templates import SUBTASKS


@pytest.fixture(scope="module")
def rl_export(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rl") / "rl"
    result = export_dataset(small_dataset, out, "rl")
    assert result.format == "rl" and set(result.counts) == {"train", "val"}
    return out


def _rows(out: Path, prefix: str = "validation") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for shard in sorted((out / "data").glob(f"{prefix}-*-of-*.parquet")):
        rows += pq.read_table(shard).to_pylist()
    return rows


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The dataset columns as TRL passes them to a reward function."""
    return {name: [row[name] for row in rows] for name in rows[0] if name != "prompt"}


def _responses(record: dict[str, Any]) -> list[str]:
    """Answers of every kind for one record: the reference, prose, wrong, empty, garbage."""
    answer = record["conversations"][1]["value"]
    value = answer[answer.rindex("`", 0, answer.rindex("`")) + 1:answer.rindex("`")]
    return [answer, f"I think the answer is {value}.", "`left` `B` `[ 1 , 2 ]` `[ 9 , 9 , 9 ]`",
            "", "no idea", f"`{value}` mm, or rather `0`"]


def test_reward_is_the_scorer(small_dataset: Path, rl_export: Path) -> None:
    records = list(r.record for r in open_dataset(small_dataset).records("val"))
    rows = _rows(rl_export)
    assert [row["id"] for row in rows] == [r["id"] for r in records]
    assert {r["subtask"] for r in records} >= {"depth_comparison_coord", "correspondence_coord"}
    for k in range(6):  # one scorer call per kind of response, all records at once
        responses = {r["id"]: _responses(r)[k] for r in records}
        expected = [1.0 if rec["correct"] else 0.0 for rec in score_records(
            records, responses, bootstrap=0)["records"]]
        got = reward([responses[row["id"]] for row in rows], **_columns(rows))
        assert got == expected, k
        if k == 0:
            assert all(value == 1.0 for value in got)  # the reference answers are right


def test_format_weight_and_completion_forms(rl_export: Path) -> None:
    row = next(r for r in _rows(rl_export) if r["answer_type"] == "label")
    label = json.loads(row["gt"])
    columns = _columns([row] * 4)
    wrong = next(option for option in SUBTASKS[row["subtask"]].options if option != label)
    texts = [f"It is `{label}`.", f"It is {label}.", f"It is `{wrong}`.", "It is `sideways`."]
    assert reward(texts, **columns) == [1.0, 1.0, 0.0, 0.0]
    shaped = make_reward(format_weight=0.1)
    assert shaped.__name__ == "multispa_reward"
    assert shaped(texts, **columns) == [1.1, 1.0, 0.1, 0.0]
    conversational = [[{"role": "assistant", "content": texts[0]}],
                      [{"role": "assistant", "content": [{"type": "text", "text": texts[1]}]}],
                      {"role": "assistant", "content": texts[2]}, None]
    assert reward(conversational, **columns) == [1.0, 1.0, 0.0, 0.0]
    # raw values work as well as JSON text; TRL's extra keywords are ignored
    raw = {**columns, "gt": [label] * 4, "meta": [{}] * 4, "trainer_state": object()}
    assert reward(texts, **raw) == [1.0, 1.0, 0.0, 0.0]


def test_reward_errors_are_one_line(rl_export: Path) -> None:
    rows = _rows(rl_export)
    coord = next(r for r in rows if r["answer_type"] == "coord")
    columns = _columns([coord])
    with pytest.raises(ConfigError, match="no 'answer_type' column"):
        reward(["`[ 1 , 2 ]`"], **{k: v for k, v in columns.items() if k != "answer_type"})
    with pytest.raises(ConfigError, match="width_list and height_list"):
        reward(["`[ 1 , 2 ]`"], **{k: v for k, v in columns.items() if k != "width_list"})
    with pytest.raises(ConfigError, match="list of 2 values"):
        reward(["a", "b"], **columns)
    with pytest.raises(ConfigError, match="cannot be judged"):
        reward(["`1`"], **{**columns, "subtask": ["no_such_subtask"]})
    with pytest.raises(ConfigError, match="format_weight"):
        make_reward(-1)


def test_rl_export_loads_with_datasets(small_dataset: Path, rl_export: Path,
                                       tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    source = {split: [r.record for r in open_dataset(small_dataset).records(split)]
              for split in ("train", "val")}
    loaded = datasets.load_dataset("parquet", data_dir=str(rl_export / "data"),
                                   cache_dir=str(tmp_path / "cache"))
    assert set(loaded) == {"train", "validation"}
    assert loaded["train"].num_rows == len(source["train"])
    val = loaded["validation"]
    assert val.features["images"] == datasets.List(datasets.Image())
    assert set(val.column_names) == {"id", "prompt", "images", "gt", "answer_type", "subtask",
                                     "width_list", "height_list", "meta"}
    for k in (0, len(source["val"]) - 1):
        row, record = val[k], source["val"][k]
        (message,) = row["prompt"]
        parts = [{key: v for key, v in part.items() if v is not None}
                 for part in message["content"]]
        assert message["role"] == "user"
        assert content_text(parts) == (record["conversations"][0]["value"] + "\n"
                                       + DEFAULT_INSTRUCTION)
        assert sum(part["type"] == "image" for part in parts) == len(row["images"])
        assert [image.size for image in row["images"]] == list(zip(
            record["width_list"], record["height_list"], strict=True))
        assert json.loads(row["gt"]) == record["gt"] and row["subtask"] == record["subtask"]
    card = (rl_export / "README.md").read_text(encoding="utf-8")
    assert "make_reward" in card and "GRPOTrainer" in card
    manifest = json.loads((rl_export / "multispa_export.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "rl" and manifest["options"]["instruction"] == DEFAULT_INSTRUCTION


# --------------------------------------------------------------------------- model tests


@pytest.fixture(scope="module")
def tiny_qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from multispa.models import build_tiny_model

    return build_tiny_model("qwen2_5_vl", tmp_path_factory.mktemp("tiny") / "qwen", seed=0)


# TRL 1.16 reads the property transformers 5 renamed (is_activation_checkpointing): harmless.
@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
def test_grpo_two_steps_on_cpu(tiny_qwen: Path, rl_export: Path, tmp_path: Path) -> None:
    """Two GRPO steps of TRL with the reward; the logged rewards are the reward's values."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("trl")
    import torch
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig, GRPOTrainer

    from multispa.models import load_processor

    train = datasets.load_dataset("parquet", data_dir=str(rl_export / "data"), split="train",
                                  cache_dir=str(tmp_path / "cache"))
    train = train.filter(lambda row: len(row["images"]) == 2).select(range(4))
    seen: list[tuple[list[Any], list[float]]] = []
    shaped = make_reward(format_weight=0.1)

    gt_of = dict(zip(train["id"], train["gt"], strict=True))

    def recorded(completions: list[Any], **kwargs: Any) -> list[float]:
        # TRL passes the export's columns, one value per completion
        assert [gt_of[rid] for rid in kwargs["id"]] == kwargs["gt"]
        assert all(isinstance(m, str) for m in kwargs["meta"]) and kwargs["width_list"]
        values = shaped(completions, **kwargs)
        seen.append((completions, values))
        return values

    recorded.__name__ = "multispa_reward"
    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_qwen), dtype=torch.float32)
    config = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=2, num_generations=2,
        max_completion_length=8, max_steps=2, logging_steps=1, learning_rate=1e-4,
        report_to="none", use_cpu=True, save_strategy="no", seed=0, bf16=False,
        dataloader_num_workers=0, temperature=1.0, activation_checkpointing=False,
    )
    trainer = GRPOTrainer(model=model, processing_class=load_processor(tiny_qwen),
                          reward_funcs=recorded, args=config, train_dataset=train)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert len(logs) == 2 and trainer.state.global_step == 2
    assert len(seen) == 2
    for entry, (completions, values) in zip(logs, seen, strict=True):
        assert len(completions) == len(values) == 2
        assert all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in completions)
        assert all(v in (0.0, 0.1, 1.0, 1.1) for v in values)
        assert entry["rewards/multispa_reward/mean"] == pytest.approx(sum(values) / 2)
        assert math.isfinite(entry["loss"])
    changed = [n for n, p in model.named_parameters() if n in before
               and not torch.equal(p.detach(), before[n])]
    assert changed or all(v == seen[0][1][0] for _, vs in seen for v in vs)


def test_hf_blind_run_answers_without_images(tiny_qwen: Path, small_bench: Path,
                                             tmp_path: Path) -> None:
    from multispa.evaluate.runner import run_eval

    scores = run_eval(small_bench, f"hf:{tiny_qwen}", tmp_path / "run", limit=1, blind=True,
                      max_new_tokens=4, device="cpu", progress=False, bootstrap=0)
    assert scores["run"]["blind"] is True and scores["run"]["errors"] == 0
    lines = (tmp_path / "run" / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == scores["run"]["items"] > 0
    assert all(json.loads(line)["error"] is None for line in lines)

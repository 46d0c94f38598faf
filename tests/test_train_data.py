"""``multispa train`` without a model: settings, meta files, records, repeat/subset expansion,
DeepSpeed configs and the command's argument handling."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from multispa.cli import main
from multispa.cli.train import train as train_group
from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.train.config import TrainConfig
from multispa.train.data import MetaEntry, Turn, iter_annotation, read_meta, read_sample
from multispa.train.deepspeed import check_deepspeed_config, deepspeed_config
from multispa.train.index import SampleIndex, expand


def _record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": "r1", "image": ["a.jpg", "b.jpg"],
        "conversations": [{"from": "human", "value": "Image-1: <image>\nImage-2: <image>\nQ?"},
                          {"from": "gpt", "value": "`left`"}],
    }
    record.update(overrides)
    return record


def _write(folder: Path, records: list[Any], *, meta: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    (folder / "data.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta_path = folder / "meta.json"
    meta_path.write_text(json.dumps(meta or {"mix": {"root": "images/",
                                                     "annotation": "data.jsonl"}}))
    return meta_path


# ---------------------------------------------------------------------------------- config


def test_defaults_are_the_paper_recipe() -> None:
    config = TrainConfig(data=Path("m.json"), model=Path("m"), out=Path("o"))
    assert (config.tune, config.lora_rank, config.lora_alpha, config.lora_dropout) == (
        "llm-lora", 16, 32, 0.05)
    assert (config.learning_rate, config.lr_scheduler, config.warmup_ratio,
            config.weight_decay, config.epochs) == (4e-5, "cosine", 0.03, 0.0, 1.0)
    assert (config.max_length, config.max_tiles, config.precision,
            config.gradient_checkpointing) == (8192, 6, "auto", True)


def test_config_round_trips_and_rejects_bad_values(tmp_path: Path) -> None:
    config = TrainConfig(data="m.json", model="m", out="o", tune="llm-lora+mlp",
                         max_steps=7, deepspeed="ds.json")
    assert isinstance(config.data, Path) and isinstance(config.deepspeed, Path)
    assert TrainConfig.from_dict(config.to_dict()) == config
    path = tmp_path / "train_config.json"
    path.write_text(json.dumps({"config": config.to_dict()}))
    assert TrainConfig.from_json(path) == config
    with pytest.raises(ConfigError, match="unknown train settings \\['lr'\\]"):
        TrainConfig.from_dict({**config.to_dict(), "lr": 1})
    bad = {"tune": "lora", "lora_rank": 0, "warmup_ratio": 1.0, "lora_dropout": -0.1,
           "learning_rate": 0.0, "max_tiles": 0, "precision": "int8", "batch_size": 1.5}
    for name, value in bad.items():
        with pytest.raises(ConfigError, match=name):
            TrainConfig(data="m", model="m", out="o", **{name: value})
    with pytest.raises(ConfigError, match="exclude"):
        TrainConfig(data="m", model="m", out="o", resume=True, force=True)
    other = TrainConfig(data="m.json", model="m", out="elsewhere", tune="llm-lora+mlp",
                        max_steps=99, learning_rate=1e-3)
    assert config.resume_differences(other) == ["learning_rate"]  # out, steps: allowed


def test_every_config_field_is_a_cli_option() -> None:
    options = {p.name for p in train_group.params}
    assert {f.name for f in fields(TrainConfig)} <= options


# ----------------------------------------------------------------------------- meta, records


def test_meta_entries_resolve_against_the_meta_folder(tmp_path: Path) -> None:
    meta = _write(tmp_path / "ds", [_record()], meta={
        "spa": {"root": "images/", "annotation": "data.jsonl", "repeat_time": 2,
                "length": 1, "data_augment": False},
        "general": {"root": str(tmp_path / "gen"), "annotation": str(tmp_path / "ds" /
                                                                     "data.jsonl")},
    })
    spa, general = read_meta(meta)
    assert spa == MetaEntry("spa", tmp_path / "ds" / "images", tmp_path / "ds" / "data.jsonl",
                            2.0, 1)
    assert general.root == tmp_path / "gen" and general.repeat_time == 1.0


@pytest.mark.parametrize(("meta", "error", "match"), [
    (None, MissingFileError, "meta file not found"),
    ("[1, 2]", FormatError, "expected a non-empty JSON object"),
    ("{nope", FormatError, "not valid JSON"),
    ({"x": {"root": "i/"}}, FormatError, "entry 'x': 'annotation' must be"),
    ({"x": {"annotation": "data.jsonl", "repeat_time": 0}}, FormatError, "repeat_time"),
    ({"x": {"annotation": "absent.jsonl"}}, MissingFileError, "annotation of entry 'x'"),
])
def test_meta_errors_name_the_file(tmp_path: Path, meta: Any, error: type, match: str) -> None:
    path = tmp_path / "meta.json"
    (tmp_path / "data.jsonl").write_text(json.dumps(_record()) + "\n")
    if meta is not None:
        path.write_text(meta if isinstance(meta, str) else json.dumps(meta))
    with pytest.raises(error, match=match) as info:
        read_meta(path)
    assert str(tmp_path) in str(info.value)


def test_records_parse_single_multi_and_text_only(tmp_path: Path) -> None:
    records = [
        _record(),
        _record(id="single", image="a.jpg", conversations=[
            {"from": "human", "value": "How far?"}, {"from": "gpt", "value": "`12` mm"}]),
        _record(id=None, image=None, conversations=[
            {"from": "system", "value": "Be brief."},
            {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"},
            {"from": "human", "value": "Again"}, {"from": "gpt", "value": "Hello again"}]),
        "",
    ]
    meta = _write(tmp_path, records)
    entry = read_meta(meta)[0]
    parsed = list(iter_annotation(entry))
    assert [line for line, _, _ in parsed] == [1, 2, 3]
    multi, single, text = (sample for _, _, sample in parsed)
    assert multi.images == (tmp_path / "images" / "a.jpg", tmp_path / "images" / "b.jpg")
    assert single.images == (tmp_path / "images" / "a.jpg",)
    assert single.turns[0] == Turn("user", "<image>\nHow far?")  # InternVL convention
    assert text.id == "mix:3" and text.images == ()
    assert [t.role for t in text.turns] == ["system", "user", "assistant", "user", "assistant"]
    line, offset, _ = parsed[2]
    assert read_sample(entry, line, offset) == text
    assert multi.origin == f"{tmp_path / 'data.jsonl'}:1"


@pytest.mark.parametrize(("record", "match"), [
    ("{not json", "line 2: not a JSON record"),
    ([1], "line 2: expected a JSON object"),
    (_record(conversations=[]), "line 2: 'conversations' must be"),
    (_record(conversations=[{"from": "bot", "value": "x"}]), "line 2: .*unknown 'from' 'bot'"),
    (_record(conversations=[{"from": "human", "value": "<image><image>"}]),
     "line 2: turns must alternate"),
    (_record(conversations=[{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]),
     "line 2: turns must alternate"),
    (_record(image=["a.jpg"]), "line 2: 2 <image> placeholders but 1 images"),
    (_record(image=[3]), "line 2: 'image' must be a path"),
    (_record(conversations=[{"from": "human", "value": "<image> <image>"},
                            {"from": "gpt", "value": "<image>"}]),
     "line 2: <image> placeholders are allowed in human turns only"),
])
def test_bad_records_name_file_and_line(tmp_path: Path, record: Any, match: str) -> None:
    meta = _write(tmp_path, [_record(), record])
    with pytest.raises(FormatError, match=match) as info:
        list(iter_annotation(read_meta(meta)[0]))
    assert info.value.path == tmp_path / "data.jsonl"


# ------------------------------------------------------------------------------- expansion


def _index(counts: list[int], repeats: list[float]) -> SampleIndex:
    entries = tuple(MetaEntry(f"e{i}", Path("."), Path(f"e{i}.jsonl"), r)
                    for i, r in enumerate(repeats))
    entry = np.repeat(np.arange(len(counts), dtype=np.int32), counts)
    zeros = np.zeros(entry.size, dtype=np.int64)
    return SampleIndex(entries, entry, zeros, zeros, zeros.astype(np.int32))


def test_repeat_time_and_max_samples() -> None:
    index = _index([4, 10, 3], [2.0, 0.5, 1.5])
    selected = expand(index, seed=0)
    per_entry = np.bincount(index.entry[selected], minlength=3)
    assert per_entry.tolist() == [8, 5, 3 + 2]  # 2 x 4; half of 10; 3 + round(0.5 x 3)
    assert np.array_equal(selected[:8], [0, 1, 2, 3, 0, 1, 2, 3])
    half = selected[8:13]
    assert len(set(half.tolist())) == 5 and set(half.tolist()) <= set(range(4, 14))
    assert np.array_equal(expand(index, seed=0), selected)
    assert not np.array_equal(expand(index, seed=1)[8:13], half)
    subset = expand(index, seed=0, max_samples=6)
    assert subset.size == 6 and set(subset.tolist()) <= set(selected.tolist())


# ------------------------------------------------------------------------------- deepspeed


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_configs(stage: int, tmp_path: Path) -> None:
    config = deepspeed_config(stage)
    zero = config["zero_optimization"]
    assert zero["stage"] == stage
    assert config["bf16"] == {"enabled": "auto"} and config["fp16"] == {"enabled": "auto"}
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu",
                "gradient_accumulation_steps", "gradient_clipping"):
        assert config[key] == "auto"
    assert "optimizer" not in config and "scheduler" not in config  # the recipe's own apply
    assert zero.get("stage3_gather_16bit_weights_on_model_save", False) is (stage == 3)
    assert ("allgather_partitions" in zero) is (stage == 2)
    out = tmp_path / "ds" / f"zero{stage}.json"
    result = CliRunner().invoke(main, ["train", "--write-deepspeed-config", str(out),
                                       "--zero-stage", str(stage)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == config
    with pytest.raises(ConfigError, match="stage must be 2 or 3"):
        deepspeed_config(1)


def test_deepspeed_config_checks(tmp_path: Path) -> None:
    import importlib.util

    with pytest.raises(MissingFileError, match="write-deepspeed-config"):
        check_deepspeed_config(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(FormatError, match="JSON object"):
        check_deepspeed_config(tmp_path / "bad.json")
    (tmp_path / "ok.json").write_text(json.dumps(deepspeed_config(2)))
    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(ConfigError, match="pip install deepspeed"):
            check_deepspeed_config(tmp_path / "ok.json")


def test_cli_requires_data_model_out() -> None:
    result = CliRunner().invoke(main, ["train", "--data", "m.json"])
    assert result.exit_code == 2
    assert "missing --model, --out" in result.output
    result = CliRunner().invoke(main, ["train", "--data", "m", "--model", "m", "--out", "o",
                                       "--max-tiles", "zero"])
    assert result.exit_code == 2 and "integer or 'keep'" in result.output


def test_the_3m_quotas_file_covers_every_subtask() -> None:
    from multispa.pipeline.generate import load_quotas_file
    from multispa.tasks.registry import TRAIN_QUOTAS

    path = Path(__file__).resolve().parents[1] / "configs" / "train_multispa_3m.yaml"
    quotas = load_quotas_file(path)
    assert set(quotas) == {"train"}
    assert set(quotas["train"]) == set(TRAIN_QUOTAS)
    assert sum(v for v in quotas["train"].values() if v is not None) == 3_000_000
    by_family: dict[str, int] = {}
    for subtask, count in quotas["train"].items():
        family = subtask.split("_")[0]
        by_family[family] = by_family.get(family, 0) + (count or 0)
    assert by_family == {"depth": 200_000, "correspondence": 150_000, "camera": 1_300_000,
                         "object": 1_350_000, "nview": 0}  # the paper's mix: no N-view records

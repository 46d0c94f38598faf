"""End-to-end training on CPU (the issue's acceptance).

The tiny InternVL-hf learns 64 generated MultiSPA records until its loss falls by more than half,
with only LoRA weights changing; the saved adapter reloads to the same logits, ``train merge``
folds it into weights that give the same logits, and ``multispa eval`` runs the adapter on the
small benchmark. The tiny Qwen2.5-VL trains a few steps through the library and the CLI, and a
run stopped at a checkpoint resumes to the same adapter as an uninterrupted run.

The tiny models are built with ``lm_head_std=0.2``: with the default 0.02 head, the frozen final
norm bounds every logit near ±1.3, so no LoRA update could halve the loss (see
``build_tiny_model``). The untrained loss is then about 8.2 nats (uniform: ln 1024 = 6.93); the
test requires the trained loss to be below half of both.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402
from transformers import AutoModelForImageTextToText, TrainerCallback  # noqa: E402

from multispa.cli import main  # noqa: E402
from multispa.errors import ConfigError  # noqa: E402
from multispa.models import build_tiny_model, family_adapter, load_processor  # noqa: E402
from multispa.train.config import TrainConfig  # noqa: E402
from multispa.train.data import iter_annotation, read_meta  # noqa: E402
from multispa.train.encode import Collator, Encoder, configure_image_processor  # noqa: E402
from multispa.train.loop import TrainResult, load_base_model, train  # noqa: E402

#: Logit tolerance of the merged model against base + adapter (float32 weights W + s·B·A
#: summed once instead of per call; observed differences are ~1e-6).
MERGE_ATOL = 1e-4
RECORDS = 64
#: Rank 16 x (in + out) per projection of the 2-layer tiny text model (hidden 64, k/v 32,
#: MLP 128): 2 x [2 x 16 x 128 (q, o) + 2 x 16 x 96 (k, v) + 3 x 16 x 192 (gate, up, down)].
LORA_PARAMETERS = 2 * (2 * 16 * 128 + 2 * 16 * 96 + 3 * 16 * 192)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train_tiny")
    return {family: build_tiny_model(family, root / family, seed=0, lm_head_std=0.2)
            for family in ("internvl", "qwen2_5_vl")}


@pytest.fixture(scope="module")
def data(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A meta file over 64 train records taken round-robin from every subtask file, plus one
    record far longer than the test's max_length."""
    folder = tmp_path_factory.mktemp("train_data")
    files = sorted((small_dataset / "train").rglob("*.jsonl"))
    per_file = [p.read_text(encoding="utf-8").splitlines() for p in files]
    lines: list[str] = []
    depth = 0
    while len(lines) < RECORDS:
        lines += [rows[depth] for rows in per_file if depth < len(rows)][: RECORDS - len(lines)]
        depth += 1
    long = json.loads(lines[0])
    long["id"] = "too-long"
    long["conversations"][0]["value"] += " Please answer carefully." * 300
    lines.insert(10, json.dumps(long))
    (folder / "spa.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    meta = folder / "meta.json"
    meta.write_text(json.dumps({"multispa": {"root": str(small_dataset / "images"),
                                             "annotation": "spa.jsonl", "repeat_time": 1,
                                             "length": len(lines)}}))
    return meta


def _config(data: Path, model: Path, out: Path, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "data": data, "model": model, "out": out, "max_tiles": 1, "max_length": 1024,
        "learning_rate": 5e-3, "warmup_ratio": 0.0, "lora_dropout": 0.0, "logging_steps": 1,
        "dataloader_workers": 0, "progress": False,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def trained(data: Path, tiny: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    out = tmp_path_factory.mktemp("train_internvl") / "out"
    config = _config(data, tiny["internvl"], out, max_steps=60, batch_size=8,
                     lr_scheduler="constant_with_warmup", save_steps=30,
                     gradient_checkpointing=False)
    return train(config)


def _encoder(model: Path, family: str) -> Encoder:
    processor = load_processor(model)
    configure_image_processor(processor, family, max_tiles=1, max_image_pixels=None)
    return Encoder(processor, family_adapter(family), 1024)


def _batch(data: Path, model: Path, family: str, count: int) -> dict[str, Any]:
    encoder = _encoder(model, family)
    samples = [s for _, _, s in iter_annotation(read_meta(data)[0]) if s.id != "too-long"]
    return Collator(encoder.tokenizer.pad_token_id)(
        [encoder.encode(s) for s in samples[:count]])


def _logits(model: Any, batch: dict[str, Any]) -> Any:
    model.eval()
    with torch.inference_mode():
        return model(**batch).logits


def _load_adapter(base_path: Path, adapter: Path) -> Any:
    with warnings.catch_warnings():
        # peft 0.21 reads a property transformers 5 deprecates; harmless here.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        return peft.PeftModel.from_pretrained(load_base_model(base_path), str(adapter))


def _base_weights_unchanged(model: Any, base_path: Path) -> None:
    """Every non-LoRA parameter of ``model`` equals the checkpoint's, bitwise; LoRA B moved."""
    original = dict(load_base_model(base_path).named_parameters())
    lora_b = 0
    for name, parameter in model.named_parameters():
        if ".lora_" in name:
            lora_b += ".lora_B." in name and bool(parameter.detach().abs().sum() > 0)
            continue
        plain = name.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(parameter.detach(), original[plain]), name
    assert lora_b == 14  # 2 layers x (q, k, v, o, gate, up, down), all trained from zero


# ---------------------------------------------------------------------------- InternVL


def test_internvl_loss_falls_by_more_than_half(
    trained: TrainResult, data: Path, tiny: dict[str, Path],
) -> None:
    summary = trained.summary
    assert summary["steps"] == 60 and summary["resumed_from_step"] is None
    assert (summary["records_read"], summary["samples_used"]) == (RECORDS + 1, RECORDS)
    assert summary["dropped_too_long"] == 1
    assert summary["data"]["dropped_listed"][0]["id"] == "too-long"
    assert summary["data"]["dropped_listed"][0]["tokens"] > 1024
    assert len(summary["loss_curve"]) == 60
    assert summary["loss_last"] < 0.5 * summary["loss_first"]
    # the same on the whole training set, before and after, in eval mode
    batch = _batch(data, tiny["internvl"], "internvl", RECORDS)
    base = load_base_model(tiny["internvl"]).eval()
    with torch.inference_mode():
        before = float(base(**batch).loss)
        after = float(trained.model.eval()(**batch).loss)
    assert before > math.log(1024)
    assert after < 0.5 * before and after < 0.5 * math.log(1024)


def test_internvl_only_lora_weights_changed(trained: TrainResult, tiny: dict[str, Path]) -> None:
    assert trained.summary["trainable_parameters"] == {"language/lora": LORA_PARAMETERS}
    _base_weights_unchanged(trained.model, tiny["internvl"])


def test_internvl_adapter_reloads_and_merges_to_the_same_logits(
    trained: TrainResult, data: Path, tiny: dict[str, Path], tmp_path: Path,
) -> None:
    batch = _batch(data, tiny["internvl"], "internvl", 4)
    expected = _logits(trained.model, batch)
    reloaded = _logits(_load_adapter(tiny["internvl"], trained.output), batch)
    assert torch.allclose(reloaded, expected, atol=1e-6, rtol=0)
    plain = _logits(load_base_model(tiny["internvl"]), batch)
    assert not torch.allclose(plain, expected, atol=1e-2)

    merged = tmp_path / "merged"
    result = CliRunner().invoke(main, ["train", "merge", "--model", str(tiny["internvl"]),
                                       "--adapter", str(trained.output), "--out", str(merged)])
    assert result.exit_code == 0, result.output
    model = AutoModelForImageTextToText.from_pretrained(merged)
    assert not any(".lora_" in n for n, _ in model.named_parameters())
    assert torch.allclose(_logits(model, batch), expected, atol=MERGE_ATOL, rtol=0)
    assert load_processor(merged).image_processor.max_patches == 1  # training's image budget


def test_internvl_outputs(trained: TrainResult) -> None:
    out = trained.output.parent
    adapter_files = {p.name for p in trained.output.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "processor_config.json",
            "tokenizer.json", "chat_template.jinja"} <= adapter_files
    assert "training_args.bin" not in adapter_files
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["config"]["max_steps"] == 60 and saved["config"]["tune"] == "llm-lora"
    assert saved["resolved"]["precision"] == "fp32"  # no CUDA here
    assert saved["resolved"]["image_processor"] == {"crop_to_patches": False, "max_patches": 1}
    assert saved["resolved"]["global_batch_size"] == 8
    assert "transformers" in saved["versions"]
    assert json.loads((out / "train_summary.json").read_text()) == trained.summary
    log = [json.loads(line) for line in (out / "logs" / "train_log.jsonl").read_text()
           .splitlines()]
    assert [e["loss"] for e in log if "loss" in e] == [
        loss for _, loss in trained.summary["loss_curve"]]
    scan = json.loads((out / "scan_report.json").read_text())
    assert scan["report"]["dropped_too_long"] == 1 and len(scan["key"]) == 64
    with np.load(out / "scan_index.npz", allow_pickle=False) as index:
        assert index["tokens"].shape == (RECORDS,) and int(index["tokens"].max()) <= 1024
        assert 11 not in index["line"].tolist()  # the too-long record is line 11
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["checkpoint-30", "checkpoint-60"]
    assert not (out / "checkpoints" / "checkpoint-30" / "training_args.bin").exists()
    adapter_config = json.loads((trained.output / "adapter_config.json").read_text())
    assert adapter_config["r"] == 16 and adapter_config["lora_alpha"] == 32
    assert adapter_config["base_model_name_or_path"].endswith("internvl")


def test_eval_runs_the_trained_adapter(
    trained: TrainResult, tiny: dict[str, Path], small_bench: Path, tmp_path: Path,
) -> None:
    spec = f"hf:{tiny['internvl']}+{trained.output}"
    run = tmp_path / "run"
    result = CliRunner().invoke(main, ["eval", "--bench", str(small_bench), "--model", spec,
                                       "--out", str(run), "--limit", "1",
                                       "--max-new-tokens", "6", "--batch-size", "4",
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    predictions = [json.loads(line) for line in
                   (run / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) >= 20  # one item per benchmark key present in the small bench
    assert all(p["error"] is None and isinstance(p["response"], str) for p in predictions)
    assert json.loads((run / "config.json").read_text())["model"] == spec
    assert (run / "scores.json").is_file()
    # The backend uses the processor saved with the adapter (training's image budget).
    from multispa.evaluate.backends.hf import HFBackend

    backend = HFBackend(tiny["internvl"], trained.output, device="cpu")
    assert backend.processor.image_processor.max_patches == 1
    assert load_processor(tiny["internvl"]).image_processor.max_patches != 1


def test_rerun_into_the_same_folder_is_refused(trained: TrainResult, data: Path,
                                               tiny: dict[str, Path]) -> None:
    config = _config(data, tiny["internvl"], trained.output.parent, max_steps=60, batch_size=8)
    with pytest.raises(ConfigError, match=r"holds another run .* --resume .* --force"):
        train(config)
    with pytest.raises(ConfigError, match=r"settings differ .* learning_rate"):
        train(_config(data, tiny["internvl"], trained.output.parent, max_steps=60,
                      batch_size=8, resume=True, learning_rate=1e-3,
                      lr_scheduler="constant_with_warmup", save_steps=30,
                      gradient_checkpointing=False))


# ------------------------------------------------------------------------------- Qwen2.5-VL


class _StopAt(TrainerCallback):
    """Stops training after ``step`` optimisation steps, like a killed job."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def test_qwen_trains_reloads_and_resumes_through_the_cli(
    data: Path, tiny: dict[str, Path], tmp_path: Path,
) -> None:
    model = tiny["qwen2_5_vl"]
    settings: dict[str, Any] = {"max_steps": 4, "batch_size": 2, "save_steps": 2}
    # uninterrupted: 4 steps (gradient checkpointing on, the default)
    full = train(_config(data, model, tmp_path / "full", **settings))
    assert full.summary["steps"] == 4 and full.summary["scan_cached"] is False
    assert full.summary["trainable_parameters"] == {"language/lora": LORA_PARAMETERS}
    _base_weights_unchanged(full.model, model)
    batch = _batch(data, model, "qwen2_5_vl", 3)
    assert torch.allclose(_logits(_load_adapter(model, full.output), batch),
                          _logits(full.model, batch), atol=1e-6, rtol=0)

    # killed after step 2 (checkpoint-2 saved), then resumed from the command line
    stopped = train(_config(data, model, tmp_path / "resumed", **settings),
                    callbacks=[_StopAt(2)])
    assert stopped.summary["steps"] == 2
    args = ["train", "--data", str(data), "--model", str(model), "--out",
            str(tmp_path / "resumed"), "--max-tiles", "1", "--max-length", "1024", "--lr",
            "5e-3", "--warmup-ratio", "0", "--lora-dropout", "0", "--logging-steps", "1",
            "--dataloader-workers", "0", "--no-progress", "--max-steps", "4",
            "--batch-size", "2", "--save-steps", "2", "--resume"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "steps: 4 (resumed at 2)" in result.output
    summary = json.loads((tmp_path / "resumed" / "train_summary.json").read_text())
    assert (summary["steps"], summary["resumed_from_step"]) == (4, 2)
    assert summary["scan_cached"] is True  # the length scan of the stopped run is reused
    assert [step for step, _ in summary["loss_curve"]] == [1, 2, 3, 4]
    assert [loss for _, loss in summary["loss_curve"]] == pytest.approx(
        [loss for _, loss in full.summary["loss_curve"]], abs=1e-5)
    resumed = _load_adapter(model, tmp_path / "resumed" / "adapter")
    assert torch.allclose(_logits(resumed, batch), _logits(full.model, batch), atol=1e-5,
                          rtol=0)

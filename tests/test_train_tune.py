"""``--tune`` modes (the paper's Table 8): exactly the right parameter groups train, gradients
reach only them, the frozen-parts check catches strays; and the failures a user meets before
training starts (unknown model type, peft missing, meta file missing, output folder in use)."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from click.testing import CliRunner  # noqa: E402
from PIL import Image  # noqa: E402

from multispa.cli import main  # noqa: E402
from multispa.errors import ConfigError, MissingFileError  # noqa: E402
from multispa.models import build_tiny_model, family_adapter, load_processor  # noqa: E402
from multispa.models.families import group_parameter_names  # noqa: E402
from multispa.train.config import TUNE_MODES, TrainConfig  # noqa: E402
from multispa.train.data import Sample, Turn  # noqa: E402
from multispa.train.encode import Collator, Encoder, configure_image_processor  # noqa: E402
from multispa.train.loop import TrainResult, load_base_model, train  # noqa: E402
from multispa.train.trainable import (  # noqa: E402
    apply_tune,
    check_trainable,
    modules_to_save,
    require_peft,
)

FAMILIES = ("internvl", "qwen2_5_vl")
#: Mode → the (group/kind) buckets that hold trainable parameters.
EXPECTED = {
    "llm-lora": {"language/lora"},
    "llm-lora+mlp": {"language/lora", "projector/copy"},
    "llm-lora+mlp+vision": {"language/lora", "projector/copy", "vision/copy"},
    "full": {"vision/base", "projector/base", "language/base"},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train_tune")
    Image.new("RGB", (64, 48), (200, 10, 10)).save(root / "a.jpg")
    for family in FAMILIES:
        build_tiny_model(family, root / family)
    return root


def _batch(root: Path, family: str) -> dict[str, object]:
    processor = load_processor(root / family)
    configure_image_processor(processor, family, max_tiles=1, max_image_pixels=None)
    encoder = Encoder(processor, family_adapter(family), 4096)
    sample = Sample("s", (root / "a.jpg",), (Turn("user", "<image>\nHow far?"),
                                             Turn("assistant", "`1250` mm")), root / "d", 1)
    return Collator(processor.tokenizer.pad_token_id)([encoder.encode(sample)])


def test_modules_to_save_per_mode() -> None:
    internvl, qwen = family_adapter("internvl"), family_adapter("qwen2_5_vl")
    assert modules_to_save(internvl, "llm-lora") == []
    assert modules_to_save(internvl, "llm-lora+mlp") == ["model.multi_modal_projector"]
    assert modules_to_save(internvl, "llm-lora+mlp+vision") == [
        "model.vision_tower", "model.multi_modal_projector"]
    assert modules_to_save(qwen, "llm-lora+mlp") == ["model.visual.merger"]
    assert modules_to_save(qwen, "llm-lora+mlp+vision") == ["model.visual"]  # holds the merger


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tune", TUNE_MODES)
def test_tune_mode_trains_exactly_its_groups(root: Path, family: str, tune: str) -> None:
    adapter = family_adapter(family)
    base = load_base_model(root / family)
    groups = group_parameter_names(adapter, (n for n, _ in base.named_parameters()))
    sizes = {g: sum(p.numel() for n, p in base.named_parameters() if n in names)
             for g, names in groups.items()}
    model = apply_tune(base, adapter, tune, rank=4, alpha=8, dropout=0.0)
    counts = check_trainable(model, adapter, tune)
    assert set(counts) == EXPECTED[tune]
    for group in ("vision", "projector"):
        if f"{group}/copy" in counts:  # a whole trainable copy of the group
            assert counts[f"{group}/copy"] == sizes[group]
    if tune == "full":
        assert sum(counts.values()) == sum(sizes.values())
    else:  # rank 4 on (q, k, v, o, gate, up, down) of 2 layers: 4 x (in + out) each
        q_o, k_v, mlp = 4 * (64 + 64), 4 * (64 + 32), 4 * (64 + 128)  # hidden 64, 2 kv heads
        assert counts["language/lora"] == 2 * (2 * q_o + 2 * k_v + 3 * mlp)
    def group_of(name: str) -> str | None:
        for segment in (".modules_to_save.default", ".original_module", ".base_layer"):
            name = name.replace(segment, "")
        return adapter.module_group(name)

    model.train()
    loss = model(**_batch(root, family)).loss
    loss.backward()
    with_grad = {n for n, p in model.named_parameters()
                 if p.grad is not None and bool(p.grad.abs().sum() > 0)}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert with_grad <= trainable
    # LoRA B starts at zero, so at step 0 only B (and the whole-trained groups) get gradients
    if tune != "full":
        assert {n for n in with_grad if ".lora_" in n} == {
            n for n in trainable if ".lora_B." in n}
    for bucket in EXPECTED[tune] - {"language/lora"}:
        group = bucket.split("/")[0]
        assert any(group_of(n) == group for n in with_grad), bucket


def test_check_trainable_catches_a_stray_parameter(root: Path) -> None:
    adapter = family_adapter("internvl")
    model = apply_tune(load_base_model(root / "internvl"), adapter, "llm-lora", rank=4)
    name, parameter = next((n, p) for n, p in model.named_parameters() if "vision_tower" in n)
    parameter.requires_grad_(True)
    with pytest.raises(ConfigError, match=rf"--tune llm-lora: .*{name} \(vision, trainable\)"):
        check_trainable(model, adapter, "llm-lora")
    with pytest.raises(ConfigError, match="tune must be one of"):
        apply_tune(model, adapter, "lora")


def _config(root: Path, tmp_path: Path, **overrides: object) -> TrainConfig:
    meta = tmp_path / "meta.json"
    if not meta.exists():
        (tmp_path / "d.jsonl").write_text(json.dumps(
            {"image": "a.jpg", "conversations": [{"from": "human", "value": "How far?"},
                                                 {"from": "gpt", "value": "`1250` mm"}]}) + "\n")
        meta.write_text(json.dumps({"x": {"root": str(root), "annotation": "d.jsonl"}}))
    settings: dict[str, object] = {
        "data": meta, "model": root / "internvl", "out": tmp_path / "out", "max_steps": 1,
        "progress": False, "dataloader_workers": 0, "gradient_checkpointing": False}
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def test_user_errors_before_training(root: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "llava"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(ConfigError, match=r"llava/config\.json: model_type 'llava' is not "):
        train(_config(root, tmp_path, model=other))
    with pytest.raises(ConfigError, match=r"model folder .* does not exist"):
        train(_config(root, tmp_path, model=tmp_path / "nowhere"))
    with pytest.raises(MissingFileError, match=r"absent\.json: meta file not found"):
        train(_config(root, tmp_path, data=tmp_path / "absent.json"))
    with pytest.raises(ConfigError, match="nothing to resume"):
        train(_config(root, tmp_path, resume=True))
    bad_line = tmp_path / "bad"
    bad_line.mkdir()
    (bad_line / "d.jsonl").write_text('{"conversations": []}\n')
    (bad_line / "meta.json").write_text(json.dumps({"x": {"annotation": "d.jsonl"}}))
    result = CliRunner().invoke(main, ["train", "--data", str(bad_line / "meta.json"),
                                       "--model", str(root / "internvl"), "--out",
                                       str(tmp_path / "out"), "--no-progress"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: {bad_line / 'd.jsonl'}: line 1: 'conversations' must be a non-empty list of "
        "{from, value} turns"]
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ConfigError, match=r"needs peft: pip install 'multispa\[train\]'"):
        require_peft()
    with pytest.raises(ConfigError, match="needs peft"):
        train(_config(root, tmp_path))
    assert not (tmp_path / "out" / "train_config.json").exists()  # no run was started


def _short_run(root: Path, tmp_path: Path, family: str, tune: str,
               precision: str) -> TrainResult:
    return train(_config(root, tmp_path, model=root / family, out=tmp_path / f"{tune}-out",
                         tune=tune, precision=precision, max_tiles=1, learning_rate=1e-2,
                         warmup_ratio=0.0, lora_dropout=0.0, logging_steps=1, max_steps=2))


def test_lora_mlp_vision_in_bf16_trains_the_copies_and_merges(
    root: Path, tmp_path: Path,
) -> None:
    import peft
    from transformers import AutoModelForImageTextToText

    from multispa.train.merge import merge_adapter

    result = _short_run(root, tmp_path, "qwen2_5_vl", "llm-lora+mlp+vision", "bf16")
    summary = result.summary
    assert summary["steps"] == 2 and summary["precision"] == "bf16"
    assert set(summary["trainable_parameters"]) == EXPECTED["llm-lora+mlp+vision"]
    trained = result.model
    copies = {n: p for n, p in trained.named_parameters() if ".modules_to_save." in n}
    assert all(p.dtype == torch.float32 for p in copies.values())  # fp32 master weights
    originals = dict(trained.named_parameters())
    moved = [n.replace(".modules_to_save.default", "") for n, p in copies.items()
             if not torch.equal(p.detach().float(), originals[n.replace(
                 ".modules_to_save.default", ".original_module")].detach().float())]
    assert any(".visual.merger." in n for n in moved)
    assert any(".visual.blocks." in n for n in moved)

    merged = merge_adapter(root / "qwen2_5_vl", result.output, tmp_path / "merged")
    batch = _batch(root, "qwen2_5_vl")
    with warnings.catch_warnings():
        # peft 0.21 reads a property transformers 5 deprecates; harmless here.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                category=FutureWarning)
        adapted = peft.PeftModel.from_pretrained(load_base_model(root / "qwen2_5_vl"),
                                                 str(result.output))
    with torch.inference_mode():
        expected = adapted.eval()(**batch).logits
        plain = load_base_model(root / "qwen2_5_vl").eval()(**batch).logits
        got = AutoModelForImageTextToText.from_pretrained(merged).eval()(**batch).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=0)
    assert not torch.allclose(plain, expected, atol=1e-3)


def test_full_fine_tuning_writes_plain_weights(root: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    result = _short_run(root, tmp_path, "internvl", "full", "auto")
    output = result.output
    assert output.name == "model" and (output / "model.safetensors").is_file()
    assert not (output / "adapter_config.json").exists()
    assert set(result.summary["trainable_parameters"]) == EXPECTED["full"]
    reloaded = AutoModelForImageTextToText.from_pretrained(output)
    assert reloaded.config.get_text_config().use_cache is True
    base = dict(load_base_model(root / "internvl").named_parameters())
    changed = {n for n, p in reloaded.named_parameters() if not torch.equal(p, base[n])}
    assert any("vision_tower" in n for n in changed) and any("lm_head" in n for n in changed)

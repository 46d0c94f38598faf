"""Tiny random vision-language checkpoints: build, save, reload, processor, forward, determinism;
the family adapters' messages and parameter groups."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402
from safetensors.torch import load_file  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoImageProcessor,
    AutoModelForImageTextToText,
    AutoTokenizer,
)
from transformers.utils import is_torchvision_available  # noqa: E402

from multispa.errors import ConfigError, MissingFileError  # noqa: E402
from multispa.models import build_tiny_model, family_adapter, load_processor  # noqa: E402
from multispa.models.families import (  # noqa: E402
    GENERIC,
    adapter_for_model_type,
    group_parameter_names,
    model_type_of,
    save_processor,
)
from multispa.models.tiny import CHAT_TEMPLATES, default_corpus  # noqa: E402

FAMILIES = ("internvl", "qwen2_5_vl")
MODEL_CLASS = {"internvl": "InternVLForConditionalGeneration",
               "qwen2_5_vl": "Qwen2_5_VLForConditionalGeneration"}
PROCESSOR_CLASS = {"internvl": "InternVLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {family: build_tiny_model(family, root / family, seed=0) for family in FAMILIES}


def _images() -> list[Image.Image]:
    # 64x48 (aspect 4:3) and 200x100 (aspect 2:1), solid colours.
    return [Image.new("RGB", (64, 48), (200, 30, 30)), Image.new("RGB", (200, 100), (20, 90, 200))]


# ------------------------------------------------------------------------------ build + reload


@pytest.mark.parametrize("family", FAMILIES)
def test_build_writes_a_small_hf_folder(tiny: dict[str, Path], family: str) -> None:
    path = tiny[family]
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "processor_config.json", "chat_template.jinja"} <= names
    total_bytes = sum(p.stat().st_size for p in path.iterdir())
    assert total_bytes < 3_000_000
    processor_config = json.loads((path / "processor_config.json").read_text())
    assert processor_config["processor_class"] == PROCESSOR_CLASS[family]
    assert "video_processor" in processor_config
    assert model_type_of(path) == family
    assert adapter_for_model_type(family) is family_adapter(family)


@pytest.mark.parametrize("family", FAMILIES)
def test_reload_with_auto_classes(tiny: dict[str, Path], family: str) -> None:
    path = tiny[family]
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(model).__name__ == MODEL_CLASS[family]
    config = AutoConfig.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert config.get_text_config().vocab_size == len(tokenizer) == 1024
    assert config.get_text_config().hidden_size == 64
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    image_processor = AutoImageProcessor.from_pretrained(path)
    assert type(image_processor).__name__.startswith(
        "GotOcr2ImageProcessor" if family == "internvl" else "Qwen2VLImageProcessor")
    processor = load_processor(path)
    assert isinstance(processor, _processor_base(family))
    if not is_torchvision_available():
        assert type(processor).__name__.endswith("ImageOnlyProcessor")
    assert processor.chat_template == CHAT_TEMPLATES[family]


def test_saving_a_loaded_processor_keeps_the_real_class_name(
    tiny: dict[str, Path], tmp_path: Path,
) -> None:
    processor = load_processor(tiny["qwen2_5_vl"])
    save_processor(processor, tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    original = json.loads((tiny["qwen2_5_vl"] / "processor_config.json").read_text())
    assert saved["processor_class"] == "Qwen2_5_VLProcessor"
    assert saved["video_processor"] == original["video_processor"]
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["processor_class"] == (
        "Qwen2_5_VLProcessor")
    (tmp_path / "config.json").write_bytes((tiny["qwen2_5_vl"] / "config.json").read_bytes())
    again = load_processor(tmp_path)
    assert again.image_processor.to_dict() == processor.image_processor.to_dict()


def _processor_base(family: str) -> type:
    import transformers

    return getattr(transformers, PROCESSOR_CLASS[family])


def test_tokenizer_round_trips_prompts_and_keeps_special_tokens_whole(
    tiny: dict[str, Path],
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny["internvl"])
    text = "Image-1: <image>\nThe depth is `1834` mm; move `[ 12 , -40 , 300 ]` (ü°)."
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    # the corpus made real merges: a common phrase takes far fewer tokens than bytes
    assert len(tokenizer("The depth of the point", add_special_tokens=False)["input_ids"]) <= 6
    for token in ("<IMG_CONTEXT>", "<img>", "</img>", "<|im_start|>", "<|im_end|>"):
        assert tokenizer(token, add_special_tokens=False)["input_ids"] == [
            tokenizer.convert_tokens_to_ids(token)]
    assert tokenizer.context_image_token == "<IMG_CONTEXT>"
    assert any("depth" in line for line in default_corpus())


# ----------------------------------------------------------------------- processor + forward


def _encode(path: Path, family: str) -> tuple[Any, Any]:
    processor = load_processor(path)
    adapter = family_adapter(family)
    prompt = adapter.render_prompt(
        processor, "Image-1: <image>\nImage-2: <image>\nWhich way did the camera move?", 2)
    return processor, processor(text=[prompt], images=_images(), return_tensors="pt")


def test_internvl_processor_expands_each_image_to_its_tiles(tiny: dict[str, Path]) -> None:
    processor, enc = _encode(tiny["internvl"], "internvl")
    tokenizer = processor.tokenizer
    ids = enc["input_ids"][0].tolist()
    # 4 tokens per 56-px tile (4x4 patches, pixel shuffle 0.5); 64x48 → 1 tile;
    # 200x100 → 2 tiles + thumbnail.
    assert processor.image_seq_length == 4
    assert ids.count(tokenizer.context_image_token_id) == 4 * 1 + 4 * 3
    assert ids.count(tokenizer.start_image_token_id) == ids.count(tokenizer.end_image_token_id) == 2
    assert tuple(enc["pixel_values"].shape) == (4, 3, 56, 56)
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>user\nImage-1: <img><IMG_CONTEXT>")
    assert "</img>\nImage-2: <img>" in text  # the template's newline replaces the prompt's
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")


def test_qwen_processor_counts_merged_patches(tiny: dict[str, Path]) -> None:
    processor, enc = _encode(tiny["qwen2_5_vl"], "qwen2_5_vl")
    tokenizer = processor.tokenizer
    ids = enc["input_ids"][0].tolist()
    # smart resize to multiples of 28 px within [56², 112²] px: 64x48 → 56x56 (4x4 patches);
    # 200x100 → 140x56 (10x4 patches); 2x2 patches merge into one token.
    assert enc["image_grid_thw"].tolist() == [[1, 4, 4], [1, 4, 10]]
    assert ids.count(tokenizer.image_token_id) == 16 // 4 + 40 // 4
    assert ids.count(tokenizer.vision_bos_token_id) == 2
    assert tuple(enc["pixel_values"].shape) == (16 + 40, 3 * 2 * 14 * 14)
    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n")
    assert "<|vision_end|>\nImage-2: <|vision_start|>" in text


@pytest.mark.parametrize("family", FAMILIES)
def test_forward_gives_vocabulary_logits(tiny: dict[str, Path], family: str) -> None:
    model = AutoModelForImageTextToText.from_pretrained(tiny[family]).eval()
    _, enc = _encode(tiny[family], family)
    with torch.inference_mode():
        logits = model(**enc).logits
    assert tuple(logits.shape) == (1, enc["input_ids"].shape[1], 1024)
    assert bool(torch.isfinite(logits).all())


# ------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("family", FAMILIES)
def test_build_is_deterministic_and_leaves_rng_alone(
    tiny: dict[str, Path], family: str, tmp_path: Path,
) -> None:
    state_before = torch.random.get_rng_state()
    again = build_tiny_model(family, tmp_path / "again", seed=0)
    assert torch.equal(torch.random.get_rng_state(), state_before)
    other = build_tiny_model(family, tmp_path / "other", seed=1)
    first = load_file(tiny[family] / "model.safetensors")
    second = load_file(again / "model.safetensors")
    third = load_file(other / "model.safetensors")
    assert first.keys() == second.keys() == third.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not all(torch.equal(first[k], third[k]) for k in first)
    assert (again / "tokenizer.json").read_bytes() == (tiny[family] / "tokenizer.json").read_bytes()


def test_unknown_family_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown model family 'llava'"):
        build_tiny_model("llava", tmp_path)
    with pytest.raises(MissingFileError):
        model_type_of(tmp_path)


# ------------------------------------------------------------------------ adapters: messages


def test_messages_put_images_where_the_placeholders_were() -> None:
    text = "Image-1: <image>\nImage-2: <image>\nQ?"
    qwen = family_adapter("qwen2_5_vl").build_messages(text, ["A", "B"], answer="`left`")
    assert qwen == [
        {"role": "user", "content": [
            {"type": "text", "text": "Image-1: "}, {"type": "image", "image": "A"},
            {"type": "text", "text": "\nImage-2: "}, {"type": "image", "image": "B"},
            {"type": "text", "text": "\nQ?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "`left`"}]},
    ]
    internvl = family_adapter("internvl").build_messages("<image>\nQ?", num_images=1)
    assert internvl == [{"role": "user", "content": [{"type": "image"},
                                                      {"type": "text", "text": "Q?"}]}]
    with pytest.raises(ValueError, match="2 <image> placeholders but 1 images"):
        GENERIC.build_messages(text, num_images=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_parameter_has_a_group(tiny: dict[str, Path], family: str) -> None:
    adapter = family_adapter(family)
    model = AutoModelForImageTextToText.from_pretrained(tiny[family])
    groups = group_parameter_names(adapter, (n for n, _ in model.named_parameters()))
    assert groups["other"] == []
    assert all(groups[g] for g in ("vision", "projector", "language"))
    projector = "multi_modal_projector" if family == "internvl" else "visual.merger"
    assert all(projector in n for n in groups["projector"])
    assert adapter.module_group("base_model.model.lm_head.weight") == "language"
    pattern = re.compile(adapter.language_lora_targets())
    targets = [n for n, _ in model.named_modules() if pattern.fullmatch(n)]
    assert len(targets) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down)
    assert all(adapter.module_group(n) == "language" for n in targets)

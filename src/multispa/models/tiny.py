"""Tiny, randomly initialised vision-language checkpoints for tests and demos.

:func:`build_tiny_model` writes a Hugging Face folder (``config.json``, ``model.safetensors``,
tokenizer, processor and chat template) that ``AutoModelForImageTextToText`` and the family's
processor load like a real checkpoint, with no download: the byte-level BPE tokenizer is trained
here with ``tokenizers`` on the project's own template phrasings, and the model is built natively
by transformers (no remote code) from a small config. A folder is a few hundred kB.

Families (multispa names): ``internvl`` (transformers' ``InternVLForConditionalGeneration``,
Qwen2 text model, InternVL-hf tokens ``<img>``/``<IMG_CONTEXT>``/``</img>``) and ``qwen2_5_vl``
(``Qwen2_5_VLForConditionalGeneration``, tokens ``<|vision_start|>``/``<|image_pad|>``/
``<|vision_end|>``). Both use ChatML turns (``<|im_start|>`` … ``<|im_end|>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION
from multispa.models.families import family_adapter

__all__ = [
    "CHAT_TEMPLATES",
    "TINY_IMAGE_PX",
    "TINY_TOKENIZER_VOCAB",
    "build_tiny_model",
    "default_corpus",
    "train_tokenizer",
]

#: Target tokenizer size (specials + 256 byte symbols + merges; fewer if the corpus runs out).
TINY_TOKENIZER_VOCAB = 1024
#: Side of one InternVL tile and of the vision towers' position grid, pixels (4 × 4 patches).
TINY_IMAGE_PX = 56
_PATCH_PX = 14
#: Qwen2.5-VL image area bounds, pixels (1 to 16 merged image tokens per image).
_QWEN_MIN_PIXELS = 56 * 56
_QWEN_MAX_PIXELS = 112 * 112
#: InternVL tiles per image before the thumbnail (the thumbnail is added when tiles > 1).
_INTERNVL_MAX_TILES = 2
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_PAD, _IM_START, _IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"

#: Named special tokens per family (tokenizer attribute → token), as the processors read them.
_NAMED_TOKENS: dict[str, dict[str, str]] = {
    "internvl": {
        "start_image_token": "<img>",
        "end_image_token": "</img>",
        "context_image_token": "<IMG_CONTEXT>",
        "video_token": "<video>",
    },
    "qwen2_5_vl": {
        "vision_bos_token": "<|vision_start|>",
        "vision_eos_token": "<|vision_end|>",
        "image_token": "<|image_pad|>",
        "video_token": "<|video_pad|>",
    },
}
#: Further special tokens of the real vocabularies (grounding markup), kept for fidelity.
_OTHER_TOKENS: dict[str, tuple[str, ...]] = {
    "internvl": ("<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"),
    "qwen2_5_vl": ("<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                   "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_pad|>"),
}

# Chat templates, written for multispa after the families' published formats. Newlines are Jinja
# string escapes so that no template whitespace leaks into the prompt.
_INTERNVL_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<IMG_CONTEXT>\\n' }}"
    "{% elif part['type'] == 'video' %}{{ '<video>\\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_QWEN2_5_VL_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}{{ 'Picture ' ~ image_count.value ~ ': ' }}{% endif %}"
    "{{ '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}{{ 'Video ' ~ video_count.value ~ ': ' }}{% endif %}"
    "{{ '<|vision_start|><|video_pad|><|vision_end|>' }}"
    "{% elif 'text' in part %}{{ part['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
#: Family → Jinja chat template (ChatML; images as the family's placeholder tokens).
CHAT_TEMPLATES: dict[str, str] = {
    "internvl": _INTERNVL_TEMPLATE,
    "qwen2_5_vl": _QWEN2_5_VL_TEMPLATE,
}

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
#: Example values for template placeholders, so the corpus reads like real prompts.
_FILLERS: dict[str, str] = {
    "marker": "red", "marker_a": "green", "marker_b": "blue", "label": "chair",
    "point": "[ 412 , 655 ]", "point_a": "[ 101 , 250 ]", "point_b": "[ 870 , 33 ]",
    "answer": "`1250`",
}
_EXTRA_LINES: tuple[str, ...] = (
    DEFAULT_INSTRUCTION,
    "0 1 2 3 4 5 6 7 8 9 10 100 1000 -1 -40 0.5 12.75",
    "`left` `right` `up` `down` `forward` `backward` `A` `B` `C` `D` `E`",
    "`[ 412 , 655 ]` `[ 12 , -40 , 300 ]` `1250` mm `30` degrees",
    "Image-1: <image>\nImage-2: <image>\nImage-3: <image>\n",
)


def _check_family(family: str) -> None:
    family_adapter(family)  # raises ConfigError with the known names


def default_corpus() -> Iterator[str]:
    """The tokenizer's default training text: every template phrasing of every task family
    (placeholders filled with example values) plus answer-shaped lines (digits, brackets,
    backticks) and the evaluation instruction."""
    from multispa.tasks.templates import FAMILIES as TASK_FAMILIES
    from multispa.tasks.templates import load_templates

    def fill(text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: _FILLERS.get(m.group(1), ""), text)

    for task_family in TASK_FAMILIES:
        templates = load_templates(task_family)
        yield from (fill(t) for t in templates.notes.values())
        for template_set in templates.subtasks.values():
            yield from (fill(t) for t in template_set.notes.values())
            yield from (fill(t) for t in template_set.descriptions)
            for phrasings in (*template_set.questions.values(), *template_set.answers.values()):
                yield from (fill(t) for t in phrasings)
    yield from _EXTRA_LINES


def _special_tokens(family: str) -> list[str]:
    return [_PAD, _IM_START, _IM_END, *_NAMED_TOKENS[family].values(), *_OTHER_TOKENS[family]]


def train_tokenizer(
    family: str, corpus: Iterable[str] | None = None, *, vocab_size: int = TINY_TOKENIZER_VOCAB
) -> Any:
    """A byte-level BPE tokenizer trained on ``corpus`` with the family's special tokens and
    chat template, as a ``PreTrainedTokenizerFast`` (ids 0.. are the special tokens).

    Any text tokenizes (the 256 byte symbols are in the vocabulary). ``<|endoftext|>`` pads,
    ``<|im_end|>`` ends a turn (the eos token), and the family's image tokens are named
    attributes (e.g. ``tokenizer.context_image_token``) as its processor expects.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    _check_family(family)
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=_special_tokens(family),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    lines = list(default_corpus() if corpus is None else corpus)
    backend.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=_IM_END, pad_token=_PAD,
        extra_special_tokens=dict(_NAMED_TOKENS[family]),
        chat_template=CHAT_TEMPLATES[family], model_max_length=4096,
    )


def _internvl_parts(tokenizer: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """(config, image processor, processor kwargs, video processor config) for InternVL."""
    from transformers import GotOcr2ImageProcessorPil, InternVLConfig

    downsample_ratio = 0.5
    image_seq_length = int((TINY_IMAGE_PX // _PATCH_PX) ** 2 * downsample_ratio**2)
    config = InternVLConfig(
        vision_config={
            "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 64, "image_size": TINY_IMAGE_PX, "patch_size": _PATCH_PX,
        },
        text_config=_qwen2_text_config(tokenizer, model_type="qwen2"),
        image_token_id=tokenizer.context_image_token_id,
        image_seq_length=image_seq_length,
        downsample_ratio=downsample_ratio,
        # Untied output head: a random tied head mostly repeats the last prompt token.
        tie_word_embeddings=False,
    )
    size = {"height": TINY_IMAGE_PX, "width": TINY_IMAGE_PX}
    image_processor = GotOcr2ImageProcessorPil(
        size=size, crop_to_patches=True, min_patches=1, max_patches=_INTERNVL_MAX_TILES,
        image_mean=list(_CLIP_MEAN), image_std=list(_CLIP_STD),
    )
    video = {"video_processor_type": "InternVLVideoProcessor", "size": size,
             "image_mean": list(_CLIP_MEAN), "image_std": list(_CLIP_STD)}
    return config, image_processor, {"image_seq_length": image_seq_length}, video


def _qwen2_5_vl_parts(tokenizer: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """(config, image processor, processor kwargs, video processor config) for Qwen2.5-VL."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLImageProcessorPil

    text = _qwen2_text_config(tokenizer, model_type=None)
    # Multimodal rotary sections (temporal, height, width) split head_dim / 2 = 8.
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": 10000.0,
                               "mrope_section": [2, 3, 3]}
    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 2, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64,
            "out_hidden_size": text["hidden_size"], "patch_size": _PATCH_PX,
            "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": TINY_IMAGE_PX,
            "fullatt_block_indexes": [1],
        },
        text_config=text,
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
        vision_start_token_id=tokenizer.vision_bos_token_id,
        vision_end_token_id=tokenizer.vision_eos_token_id,
    )
    image_processor = Qwen2VLImageProcessorPil(
        min_pixels=_QWEN_MIN_PIXELS, max_pixels=_QWEN_MAX_PIXELS, patch_size=_PATCH_PX,
        temporal_patch_size=2, merge_size=2,
        image_mean=list(_CLIP_MEAN), image_std=list(_CLIP_STD),
    )
    video = {"video_processor_type": "Qwen2VLVideoProcessor",
             "size": {"shortest_edge": _QWEN_MIN_PIXELS, "longest_edge": _QWEN_MAX_PIXELS},
             "patch_size": _PATCH_PX, "temporal_patch_size": 2, "merge_size": 2,
             "image_mean": list(_CLIP_MEAN), "image_std": list(_CLIP_STD)}
    return config, image_processor, {}, video


def _qwen2_text_config(tokenizer: Any, model_type: str | None) -> dict[str, Any]:
    """A 2-layer Qwen2-style text model over the tokenizer's whole vocabulary."""
    config: dict[str, Any] = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "max_position_embeddings": 4096, "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
    }
    if model_type is not None:
        config["model_type"] = model_type
    return config


def build_tiny_model(
    family: str, out_dir: str | Path, *, seed: int = 0, corpus: Iterable[str] | None = None,
    lm_head_std: float | None = None,
) -> Path:
    """Write a tiny random ``family`` checkpoint to ``out_dir`` and return the folder.

    Args:
        family: ``internvl`` or ``qwen2_5_vl``.
        out_dir: created if needed; checkpoint files in it are overwritten.
        seed: weight initialisation seed (the same seed gives identical weights; torch's global
            random state is restored afterwards).
        corpus: tokenizer training lines (default: :func:`default_corpus`).
        lm_head_std: standard deviation of the output head's random weights (default: the
            config's ``initializer_range``, 0.02). The final norm fixes the hidden state's
            length at sqrt(64) = 8, so a head of standard deviation s bounds every logit by
            about 64 s: with 0.02 no fine-tuning of the layers below the head (LoRA) can make
            any token much more likely than 1/1024. Training tests use 0.2 (logits up to
            about 13; the untrained loss rises from ln 1024 = 6.93 to about 8.2).

    The folder loads with ``AutoModelForImageTextToText.from_pretrained`` and, for the
    processor, :func:`multispa.models.families.load_processor` (``AutoProcessor`` when
    torchvision is installed). ``processor_config.json`` names the real processor class.

    Raises:
        ConfigError: unknown family.
    """
    import torch
    from transformers import AutoModelForImageTextToText, GenerationConfig

    from multispa.models.families import image_only_processor_class, save_processor

    _check_family(family)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(family, corpus)
    parts = _internvl_parts if family == "internvl" else _qwen2_5_vl_parts
    config, image_processor, processor_kwargs, video_config = parts(tokenizer)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForImageTextToText.from_config(config)
        if lm_head_std is not None:
            with torch.no_grad():
                model.get_output_embeddings().weight.normal_(0.0, lm_head_std)
    model.generation_config = GenerationConfig(
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model.save_pretrained(out)

    processor = image_only_processor_class(family)(
        image_processor=image_processor, tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATES[family], **processor_kwargs,
    )
    # Saved under the real processor class name (as a published checkpoint), with the video
    # processor settings AutoProcessor needs where torchvision is installed.
    save_processor(processor, out, video_processor_config=video_config)
    return out

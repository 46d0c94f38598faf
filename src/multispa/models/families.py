"""One small adapter per vision-language model family.

An adapter knows, for one family, how a MultiSPA prompt (text with ``<image>`` placeholders)
becomes the chat ``messages`` its processor's chat template expects, which parameter names
belong to the vision tower, the projector and the language model (for freezing and LoRA
targets), and how to load its processor on a machine without ``torchvision``.

transformers is imported lazily, inside the functions that need it, so this module is cheap
to import.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.jsonl import read_json_object

__all__ = [
    "FAMILIES",
    "GENERIC",
    "IMAGE_TOKEN",
    "MODULE_GROUPS",
    "FamilyAdapter",
    "adapter_for_model_type",
    "family_adapter",
    "group_parameter_names",
    "load_processor",
    "model_type_of",
    "save_processor",
]

#: The placeholder for one image in MultiSPA prompts.
IMAGE_TOKEN = "<image>"

#: Parameter groups, in model order.
MODULE_GROUPS: tuple[str, ...] = ("vision", "projector", "language")

#: Wrappers (peft) prefix parameter names with these; they are ignored when grouping.
_WRAPPER_PREFIXES: tuple[str, ...] = ("base_model.model.",)

_PROCESSOR_CONFIG = "processor_config.json"

#: The language model's attention and MLP projections (a regex for peft ``target_modules``).
_LANGUAGE_LINEARS = r"layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


@dataclass(frozen=True)
class FamilyAdapter:
    """How multispa talks to one model family.

    Attributes:
        name: multispa's family name (``internvl``, ``qwen2_5_vl``; ``generic`` otherwise).
        model_type: ``model_type`` in the checkpoint's ``config.json``.
        processor_class: the transformers processor class a real checkpoint names.
        template_adds_newline: the family's chat template writes a newline after each image
            placeholder, so one newline right after an ``<image>`` in the prompt is dropped (the
            rendered prompt then matches the family's training format).
        group_prefixes: (group, parameter-name prefix) pairs, most specific first.
    """

    name: str
    model_type: str
    processor_class: str
    template_adds_newline: bool
    group_prefixes: tuple[tuple[str, str], ...]

    # ----------------------------------------------------------------------------- messages

    def build_messages(
        self, text: str, images: Sequence[Any] | None = None, *, num_images: int | None = None,
        answer: str | None = None,
    ) -> list[dict[str, Any]]:
        """Chat messages for one prompt: a user turn, plus an assistant turn when ``answer``.

        Each ``<image>`` in ``text`` becomes an image content part at that position (text such
        as ``"Image-1: "`` around it stays text). Image parts carry ``images[k]`` under
        ``"image"`` when ``images`` is given; otherwise they are bare ``{"type": "image"}``
        parts (enough to render the prompt; the processor receives the images separately).

        Raises:
            ValueError: the number of ``<image>`` placeholders differs from the number of
                images (``len(images)`` or ``num_images``).
        """
        chunks = text.split(IMAGE_TOKEN)
        found = len(chunks) - 1
        expected = len(images) if images is not None else num_images
        if expected is not None and found != expected:
            raise ValueError(
                f"prompt has {found} {IMAGE_TOKEN} placeholders but {expected} images were given"
            )
        content: list[dict[str, Any]] = []
        for index, chunk in enumerate(chunks):
            if index > 0:
                part: dict[str, Any] = {"type": "image"}
                if images is not None:
                    part["image"] = images[index - 1]
                content.append(part)
                if self.template_adds_newline and chunk.startswith("\n"):
                    chunk = chunk[1:]
            if chunk:
                content.append({"type": "text", "text": chunk})
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if answer is not None:
            messages.append(
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}
            )
        return messages

    def render_prompt(self, processor: Any, text: str, num_images: int) -> str:
        """The prompt string (chat template applied, generation prompt added) for ``text``."""
        messages = self.build_messages(text, num_images=num_images)
        rendered = processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        return rendered if isinstance(rendered, str) else rendered[0]

    # ------------------------------------------------------------------------------- groups

    def module_group(self, parameter_name: str) -> str | None:
        """``vision`` | ``projector`` | ``language`` for a parameter or module name.

        Names wrapped by peft (``base_model.model.…``) are accepted. Returns None for a name
        outside every group (or for the generic adapter, which knows no groups).
        """
        name = parameter_name
        for wrapper in _WRAPPER_PREFIXES:
            if name.startswith(wrapper):
                name = name[len(wrapper):]
        for group, prefix in self.group_prefixes:
            if name == prefix.rstrip(".") or name.startswith(prefix):
                return group
        return None

    def language_lora_targets(self) -> str:
        """A peft ``target_modules`` regex: the language model's attention and MLP linears."""
        prefixes = [re.escape(p) for g, p in self.group_prefixes if g == "language"
                    and p.endswith("language_model.")]
        if not prefixes:
            raise ConfigError(f"family {self.name!r}: no known language-model module prefix")
        return rf"(.*\.)?({'|'.join(prefixes)}){_LANGUAGE_LINEARS}"


INTERNVL = FamilyAdapter(
    name="internvl",
    model_type="internvl",
    processor_class="InternVLProcessor",
    template_adds_newline=True,
    group_prefixes=(
        ("vision", "model.vision_tower."),
        ("projector", "model.multi_modal_projector."),
        ("language", "model.language_model."),
        ("language", "lm_head."),
    ),
)

QWEN2_5_VL = FamilyAdapter(
    name="qwen2_5_vl",
    model_type="qwen2_5_vl",
    processor_class="Qwen2_5_VLProcessor",
    template_adds_newline=False,
    group_prefixes=(
        ("projector", "model.visual.merger."),
        ("vision", "model.visual."),
        ("language", "model.language_model."),
        ("language", "lm_head."),
    ),
)

#: Any other image-text-to-text model: placeholders become image parts, no groups.
GENERIC = FamilyAdapter(
    name="generic", model_type="", processor_class="AutoProcessor",
    template_adds_newline=False, group_prefixes=(),
)

#: multispa family name → adapter.
FAMILIES: dict[str, FamilyAdapter] = {a.name: a for a in (INTERNVL, QWEN2_5_VL)}


def family_adapter(name: str) -> FamilyAdapter:
    """The adapter of a multispa family name; raise :class:`ConfigError` if unknown."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(
            f"unknown model family {name!r}; expected one of {sorted(FAMILIES)}"
        ) from None


def adapter_for_model_type(model_type: str) -> FamilyAdapter:
    """The adapter for a checkpoint's ``model_type`` (:data:`GENERIC` for other types)."""
    for adapter in FAMILIES.values():
        if adapter.model_type == model_type:
            return adapter
    return GENERIC


def model_type_of(path: str | Path) -> str:
    """``model_type`` from ``path/config.json``.

    Raises:
        MissingFileError: no ``config.json`` in ``path``.
        FormatError: the file is not a JSON object with a string ``model_type``.
    """
    config_path = Path(path) / "config.json"
    config = _read_json_object(config_path)
    if config is None:
        raise MissingFileError(config_path)
    model_type = config.get("model_type")
    if not isinstance(model_type, str):
        raise FormatError(config_path, f"expected a string 'model_type', found {model_type!r}")
    return model_type


def group_parameter_names(
    adapter: FamilyAdapter, names: Iterable[str]
) -> dict[str, list[str]]:
    """Parameter names by group (:data:`MODULE_GROUPS` keys, plus ``"other"``)."""
    groups: dict[str, list[str]] = {group: [] for group in (*MODULE_GROUPS, "other")}
    for name in names:
        groups[adapter.module_group(name) or "other"].append(name)
    return groups


# ------------------------------------------------------------------------------- processors


@functools.cache
def image_only_processor_class(family: str) -> type:
    """The family's processor class without its video processor.

    transformers 5 builds InternVL and Qwen2.5-VL processors with a video processor, which needs
    ``torchvision``. These subclasses drop that argument (images and text work unchanged) so the
    processor loads from the same folder on a machine without ``torchvision``.
    """
    if family == "internvl":
        from transformers import InternVLProcessor

        class InternVLImageOnlyProcessor(InternVLProcessor):
            """:class:`InternVLProcessor` without a video processor."""

            real_processor_class = "InternVLProcessor"

            def __init__(
                self, image_processor: Any = None, tokenizer: Any = None,
                image_seq_length: int = 256, chat_template: str | None = None, **kwargs: Any,
            ) -> None:
                # ProcessorMixin pairs positional sub-processors with this signature's
                # attributes (image_processor, tokenizer), so the None video processor drops.
                super().__init__(image_processor, tokenizer, None,
                                 image_seq_length=image_seq_length,
                                 chat_template=chat_template, **kwargs)

        return InternVLImageOnlyProcessor
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor

        class Qwen2_5_VLImageOnlyProcessor(Qwen2_5_VLProcessor):
            """:class:`Qwen2_5_VLProcessor` without a video processor."""

            real_processor_class = "Qwen2_5_VLProcessor"

            def __init__(
                self, image_processor: Any = None, tokenizer: Any = None,
                chat_template: str | None = None, **kwargs: Any,
            ) -> None:
                super().__init__(image_processor, tokenizer, None,
                                 chat_template=chat_template, **kwargs)

        return Qwen2_5_VLImageOnlyProcessor
    raise ConfigError(f"no image-only processor for family {family!r}; "
                      f"expected one of {sorted(FAMILIES)}")


def load_processor(path: str | Path, adapter: FamilyAdapter | None = None) -> Any:
    """The processor saved in ``path``.

    ``AutoProcessor`` when ``torchvision`` is installed (or for the generic adapter); otherwise,
    for a known family, :func:`image_only_processor_class` loaded from the same files.
    """
    from transformers import AutoProcessor
    from transformers.utils import is_torchvision_available

    adapter = adapter or adapter_for_model_type(model_type_of(path))
    if adapter is GENERIC or is_torchvision_available():
        return AutoProcessor.from_pretrained(str(path))
    processor = image_only_processor_class(adapter.name).from_pretrained(str(path))
    saved = _read_json_object(Path(path) / _PROCESSOR_CONFIG)
    processor.video_processor_config = saved.get("video_processor") if saved else None
    return processor


def save_processor(
    processor: Any, out_dir: str | Path, *, video_processor_config: dict[str, Any] | None = None,
) -> None:
    """``processor.save_pretrained(out_dir)``, naming the real processor class.

    An image-only processor (:func:`image_only_processor_class`) is saved under the family's real
    class name, with the video processor settings it was loaded with (or
    ``video_processor_config``), so that ``AutoProcessor`` loads the folder where torchvision is
    installed. Other processors are saved unchanged.
    """
    out = Path(out_dir)
    processor.save_pretrained(str(out))
    real = getattr(type(processor), "real_processor_class", None)
    if real is None:
        return
    video = video_processor_config or getattr(processor, "video_processor_config", None)
    updates: dict[str, Any] = {"processor_class": real}
    if video:
        updates["video_processor"] = video
    _update_json(out / _PROCESSOR_CONFIG, updates)
    _update_json(out / "tokenizer_config.json", {"processor_class": real})


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None if the file is absent; FormatError if it is not one."""
    return read_json_object(path) if path.is_file() else None


def _update_json(path: Path, updates: dict[str, Any]) -> None:
    data = _read_json_object(path)
    if data is None:
        raise MissingFileError(path, "save_pretrained did not write it")
    data.update(updates)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

"""Sample → model inputs and labels, through the family adapter and the checkpoint's processor.

**Label policy.** The loss covers the assistant turns only: every token of each answer **and**
the end-of-turn token that closes it (``<|im_end|>`` for ChatML families), so that the model
learns to stop. The system and user turns, the image tokens, the assistant header
(``<|im_start|>assistant\\n``) and the newline the template writes after the end-of-turn token
get label ``-100``. The header and the end-of-turn token are derived from the checkpoint's own
chat template (probe renderings), not hard-coded.

**Length.** :meth:`Encoder.predicted_length` computes a sample's token count from the rendered
text and the images' pixel sizes (read from the file headers), without decoding pixels; the
length scan drops samples longer than ``max_length`` before training (never truncating through
an image). :meth:`Encoder.encode` checks the real count against the limit again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.models.families import IMAGE_TOKEN, FamilyAdapter
from multispa.train.data import Sample

__all__ = ["IGNORE_INDEX", "Collator", "Encoder", "configure_image_processor", "image_size"]

logger = logging.getLogger(__name__)

#: Label of a token that carries no loss.
IGNORE_INDEX = -100
_PROBE_USER = "probe question"
_PROBE_ANSWER = "probe answer"


def configure_image_processor(
    processor: Any, family: str, *, max_tiles: int | None, max_image_pixels: int | None,
) -> dict[str, Any]:
    """Apply the image budget to ``processor`` in place; return the settings applied.

    InternVL: ``max_tiles`` dynamic tiles per image (``crop_to_patches`` on, ``max_patches``;
    a thumbnail is added when an image has more than one tile). Qwen2.5-VL: the resized image
    area is at most ``max_image_pixels``. None leaves the checkpoint's setting.
    """
    image_processor = processor.image_processor
    applied: dict[str, Any] = {}
    if family == "internvl" and max_tiles is not None:
        image_processor.crop_to_patches = max_tiles > 1
        image_processor.max_patches = max_tiles
        applied = {"crop_to_patches": max_tiles > 1, "max_patches": max_tiles}
    elif family == "qwen2_5_vl" and max_image_pixels is not None:
        shortest = image_processor.size["shortest_edge"]
        if max_image_pixels < shortest:
            raise ConfigError(f"max_image_pixels {max_image_pixels} is below the processor's "
                              f"minimum image area {shortest}")
        image_processor.size = {"shortest_edge": shortest, "longest_edge": max_image_pixels}
        applied = {"size": dict(image_processor.size)}
    return applied


def image_size(path: Path, sample: Sample) -> tuple[int, int]:
    """``(height, width)`` in pixels from the image file's header.

    Raises:
        MissingFileError: the image does not exist (the message names the record).
        FormatError: the file is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.height, image.width
    except FileNotFoundError:
        raise MissingFileError(path, f"image of {sample.origin} not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise FormatError(path, f"image of {sample.origin} cannot be read: {error}") from None


def _load_image(path: Path, sample: Sample) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise MissingFileError(path, f"image of {sample.origin} not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise FormatError(path, f"image of {sample.origin} cannot be read: {error}") from None


class Encoder:
    """Turns :class:`Sample` objects into model inputs for one checkpoint.

    Args:
        processor: the checkpoint's processor (image budget already applied).
        adapter: the checkpoint's family adapter.
        max_length: token limit per sample.

    Raises:
        ConfigError: the chat template does not render an assistant header or does not close an
            assistant turn with a special token, so assistant tokens cannot be located.
    """

    def __init__(self, processor: Any, adapter: FamilyAdapter, max_length: int) -> None:
        self.processor = processor
        self.adapter = adapter
        self.max_length = max_length
        self.tokenizer = processor.tokenizer
        self.header_ids, self.turn_end_id = self._probe_template()
        self._fast_lengths = hasattr(processor, "_get_num_multimodal_tokens")

    # ------------------------------------------------------------------------------ template

    def _apply(self, messages: list[dict[str, Any]], generation_prompt: bool) -> str:
        rendered = self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        )
        return rendered if isinstance(rendered, str) else rendered[0]

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _probe_template(self) -> tuple[tuple[int, ...], int]:
        user = [{"role": "user", "content": [{"type": "text", "text": _PROBE_USER}]}]
        closed = [*user, {"role": "assistant",
                          "content": [{"type": "text", "text": _PROBE_ANSWER}]}]
        without, with_prompt = self._apply(user, False), self._apply(user, True)
        full = self._apply(closed, False)
        header = with_prompt[len(without):]
        if not with_prompt.startswith(without) or not header or not full.startswith(
                with_prompt + _PROBE_ANSWER):
            raise ConfigError("the chat template does not render a separate assistant header "
                              "before the answer; cannot locate assistant tokens")
        closing = self._ids(full[len(with_prompt) + len(_PROBE_ANSWER):])
        if not closing or closing[0] not in set(self.tokenizer.all_special_ids):
            raise ConfigError("the chat template does not close an assistant turn with a "
                              f"special token (found {closing[:1]}); cannot place the label end")
        return tuple(self._ids(header)), closing[0]

    def messages(self, sample: Sample) -> list[dict[str, Any]]:
        """Chat messages of ``sample``: its turns, with image parts where the placeholders are.

        Each user turn goes through :meth:`FamilyAdapter.build_messages`, so image parts and the
        newline after each placeholder follow the family's convention.
        """
        messages: list[dict[str, Any]] = []
        for turn in sample.turns:
            if turn.role == "user":
                count = turn.text.count(IMAGE_TOKEN)
                messages.append(self.adapter.build_messages(turn.text, num_images=count)[0])
            else:
                messages.append({"role": turn.role,
                                 "content": [{"type": "text", "text": turn.text}]})
        return messages

    def render(self, sample: Sample) -> str:
        """The full conversation text, chat template applied (no generation prompt)."""
        return self._apply(self.messages(sample), False)

    # -------------------------------------------------------------------------------- length

    def predicted_length(self, sample: Sample) -> int:
        """Tokens of ``sample`` once encoded (prompt, expanded image tokens, answers).

        Image token counts come from the processor and the images' header sizes; a processor
        without that facility encodes the sample fully instead.

        Raises:
            MissingFileError, FormatError: an image is missing or unreadable.
        """
        sizes = [image_size(path, sample) for path in sample.images]
        if not self._fast_lengths:
            return int(self.encode(sample, check_length=False)["input_ids"].shape[0])
        text_tokens = len(self.tokenizer(self.render(sample))["input_ids"])
        if not sizes:
            return text_tokens
        try:
            counts = self.processor._get_num_multimodal_tokens(
                image_sizes=sizes)["num_image_tokens"]
        except (NotImplementedError, TypeError, KeyError, AttributeError):
            self._fast_lengths = False
            logger.warning("the processor cannot count image tokens from sizes; the length "
                           "scan encodes every sample fully")
            return self.predicted_length(sample)
        # each image placeholder of the rendered text (one token) expands to its image tokens
        return text_tokens + sum(int(count) - 1 for count in counts)

    # -------------------------------------------------------------------------------- encode

    def label_ids(self, input_ids: Sequence[int], sample: Sample) -> list[int]:
        """Labels for ``input_ids``: the token id on assistant answers and their end-of-turn
        token, :data:`IGNORE_INDEX` elsewhere.

        Raises:
            FormatError: the number of assistant headers found differs from the sample's
                assistant turns (e.g. a prompt that spells the template's special tokens).
        """
        ids = list(input_ids)
        labels = [IGNORE_INDEX] * len(ids)
        header, width = list(self.header_ids), len(self.header_ids)
        starts = [i + width for i in range(len(ids) - width + 1) if ids[i:i + width] == header]
        expected = sum(t.role == "assistant" for t in sample.turns)
        if len(starts) != expected:
            raise FormatError(sample.annotation, f"line {sample.line}: {len(starts)} assistant "
                                                 f"headers in the encoded text, expected "
                                                 f"{expected}")
        for start in starts:
            end = start
            while end < len(ids) and ids[end] != self.turn_end_id:
                end += 1
            stop = min(end + 1, len(ids))
            labels[start:stop] = ids[start:stop]
        return labels

    def encode(self, sample: Sample, *, check_length: bool = True) -> dict[str, Any]:
        """Model inputs for one sample, unbatched.

        Returns:
            ``input_ids``, ``attention_mask``, ``labels`` (and any other per-token output of the
            processor, such as ``mm_token_type_ids``) as ``(L,)`` int64 tensors; image inputs as
            the processor returns them (InternVL ``pixel_values`` ``(tiles, 3, H, W)``;
            Qwen2.5-VL ``pixel_values`` ``(patches, C)`` and ``image_grid_thw`` ``(images, 3)``).

        Raises:
            MissingFileError, FormatError: an image is missing or unreadable.
            FormatError: the encoded sample exceeds ``max_length`` (``check_length``) although
                the length scan kept it.
        """
        import torch

        text = self.render(sample)
        images = [_load_image(path, sample) for path in sample.images]
        batch = self.processor(text=[text], images=images or None, return_tensors="pt")
        input_ids = batch["input_ids"][0]
        length = int(input_ids.shape[0])
        if check_length and length > self.max_length:
            raise FormatError(sample.annotation, f"line {sample.line}: encodes to {length} "
                                                 f"tokens, more than max_length "
                                                 f"{self.max_length}")
        encoded: dict[str, Any] = {}
        for key, value in batch.items():
            is_per_token = (isinstance(value, torch.Tensor) and value.dim() == 2
                            and value.shape == batch["input_ids"].shape)
            encoded[key] = value[0].long() if is_per_token else value
        encoded["labels"] = torch.tensor(self.label_ids(input_ids.tolist(), sample),
                                         dtype=torch.long)
        return encoded


class Collator:
    """Pads a list of :meth:`Encoder.encode` outputs into one right-padded batch.

    1-D (per-token) tensors are padded to the longest sample: ``input_ids`` with ``pad_id``,
    ``labels`` with :data:`IGNORE_INDEX`, the rest (``attention_mask``, …) with 0. Image tensors
    are concatenated along their first dimension, in batch order (samples without images add
    nothing).
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
        import torch

        longest = max(int(item["input_ids"].shape[0]) for item in batch)
        keys = list(dict.fromkeys(key for item in batch for key in item))
        out: dict[str, Any] = {}
        for key in keys:
            values = [item[key] for item in batch if key in item]
            if values[0].dim() == 1:
                if len(values) != len(batch):
                    raise ValueError(f"per-token input {key!r} is missing from some samples")
                fill = self.pad_id if key == "input_ids" else (
                    IGNORE_INDEX if key == "labels" else 0)
                padded = torch.full((len(batch), longest), fill, dtype=values[0].dtype)
                for row, value in enumerate(values):
                    padded[row, : value.shape[0]] = value
                out[key] = padded
            else:
                out[key] = torch.cat(values, dim=0)
        return out

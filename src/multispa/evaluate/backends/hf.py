"""``hf:<path>[+<adapter>]``: a local transformers vision-language model, greedy decoding.

The folder is a Hugging Face checkpoint (``config.json``, weights, processor files); an optional
peft adapter folder is applied on top. Each item's ``<image>`` placeholders become image parts
of one user message at the same positions (text such as ``"Image-1: "`` stays), the processor's
chat template renders it with the generation prompt, and batches of items are left-padded and
decoded greedily; only the new tokens are returned.

torch, transformers and peft are imported when a backend is created, never at module import.
"""

from __future__ import annotations

import gc
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError
from multispa.evaluate.backends.base import EvalItem, Prediction
from multispa.models.families import (
    FamilyAdapter,
    adapter_for_model_type,
    load_processor,
    model_type_of,
)

__all__ = ["HFBackend"]


class BadItemError(Exception):
    """An item that cannot be prepared (image count, unreadable image); becomes an error."""


@dataclass
class _Prepared:
    """One item ready for the processor: rendered prompt and RGB images in prompt order."""

    item: EvalItem
    prompt: str
    images: list[Any]


def _load_image(path: Path) -> Any:
    """The image at ``path`` as an RGB PIL image, fully read (file closed)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except FileNotFoundError:
        raise BadItemError(f"image {path}: file not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise BadItemError(f"image {path}: cannot read ({error})") from None


def _resolve_dtype(dtype: Any) -> Any:
    """``None`` → ``"auto"`` (the checkpoint's dtype); a name such as ``"bfloat16"`` → torch."""
    import torch

    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    resolved = getattr(torch, str(dtype), None)
    if not isinstance(resolved, torch.dtype):
        raise ConfigError(f"hf backend: unknown dtype {dtype!r}; expected e.g. float32, "
                          "bfloat16, float16 or auto")
    return resolved


class HFBackend:
    """Answers items with a local image-text-to-text model (see the module docstring).

    Args:
        path: checkpoint folder.
        adapter: peft adapter folder, or None.
        batch_size: items per ``generate`` call.
        max_new_tokens: generation cap, tokens.
        device: torch device (``"cpu"``, ``"cuda:0"``); None picks CUDA when available.
        dtype: weight dtype (torch dtype or name); None keeps the checkpoint's.

    Raises:
        ConfigError: a missing folder, a bad setting, or a checkpoint transformers cannot load.
    """

    def __init__(
        self, path: str | Path, adapter: str | Path | None = None, *, batch_size: int = 4,
        max_new_tokens: int = 32, device: str | None = "cpu", dtype: Any = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, GenerationConfig

        if batch_size < 1 or max_new_tokens < 1:
            raise ConfigError(f"hf backend: batch_size and max_new_tokens must be >= 1, found "
                              f"{batch_size} and {max_new_tokens}")
        self.path = Path(path)
        self.adapter_path = Path(adapter) if adapter else None
        self.name = f"hf:{path}" + (f"+{adapter}" if adapter else "")
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        if not self.path.is_dir():
            raise ConfigError(f"hf backend: model folder {self.path} does not exist")
        if self.adapter_path is not None and not self.adapter_path.is_dir():
            raise ConfigError(f"hf backend: adapter folder {self.adapter_path} does not exist")
        self.device = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.family: FamilyAdapter = adapter_for_model_type(model_type_of(self.path))
        try:
            # A trained adapter folder carries the processor it was trained with (image tiles,
            # pixel budget); prefer it to the base checkpoint's.
            processor_source = self.path
            if self.adapter_path is not None and (
                    self.adapter_path / "processor_config.json").is_file():
                processor_source = self.adapter_path
            self.processor: Any = load_processor(processor_source, self.family)
            model = AutoModelForImageTextToText.from_pretrained(
                str(self.path), dtype=_resolve_dtype(dtype)
            )
        except (OSError, ValueError, KeyError) as error:
            raise ConfigError(f"hf backend: cannot load {self.path}: {error}") from None
        if self.adapter_path is not None:
            try:
                from peft import PeftModel
            except ImportError as error:
                raise ConfigError("hf backend: an adapter needs peft: pip install "
                                  f"'multispa[train]' ({error})") from None
            try:
                with warnings.catch_warnings():
                    # peft 0.21 reads a property transformers 5 deprecates; harmless here.
                    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                            category=FutureWarning)
                    model = PeftModel.from_pretrained(model, str(self.adapter_path))
            except (OSError, ValueError, KeyError) as error:
                raise ConfigError(
                    f"hf backend: cannot load adapter {self.adapter_path}: {error}"
                ) from None
        self.model: Any = model.to(self.device).eval()
        tokenizer = self.processor.tokenizer
        defaults = self.model.generation_config
        eos = defaults.eos_token_id if defaults.eos_token_id is not None else (
            tokenizer.eos_token_id)
        pad = defaults.pad_token_id if defaults.pad_token_id is not None else (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos)
        # A fresh config: greedy and nothing else, whatever sampling defaults the checkpoint has.
        self.generation_config = GenerationConfig(
            do_sample=False, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad,
            bos_token_id=defaults.bos_token_id,
        )

    # --------------------------------------------------------------------------------- items

    def _prepare(self, item: EvalItem) -> _Prepared:
        try:
            prompt = self.family.render_prompt(self.processor, item.text, len(item.images))
        except ValueError as error:
            raise BadItemError(str(error)) from None
        return _Prepared(item, prompt, [_load_image(Path(p)) for p in item.images])

    def _run(self, batch: Sequence[_Prepared]) -> list[str]:
        """Greedy answers for ``batch`` (one processor call, one ``generate``), new text only."""
        import torch

        images = [image for prepared in batch for image in prepared.images]
        inputs = self.processor(
            text=[prepared.prompt for prepared in batch], images=images or None,
            padding=True, padding_side="left", return_tensors="pt",
        ).to(self.device)
        floating = next(self.model.parameters()).dtype
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(floating)
        with torch.inference_mode():
            output = self.model.generate(**inputs, generation_config=self.generation_config)
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [text.strip() for text in texts]

    def _answer(self, batch: Sequence[_Prepared]) -> Iterator[Prediction]:
        """Predictions for ``batch``; a failing batch is retried item by item."""
        start = time.perf_counter()
        try:
            texts = self._run(batch)
        except (RuntimeError, ValueError, TypeError, IndexError) as error:
            if len(batch) > 1:
                for prepared in batch:
                    yield from self._answer([prepared])
                return
            yield Prediction(batch[0].item.id, None, error=f"generation failed: {error}",
                             latency_s=time.perf_counter() - start)
            return
        latency_s = (time.perf_counter() - start) / len(batch)
        for prepared, text in zip(batch, texts, strict=True):
            yield Prediction(prepared.item.id, text, latency_s=latency_s)

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        """One prediction per item: batches of ``batch_size`` prepared items, in input order;
        an item that cannot be prepared yields an error prediction at once."""
        batch: list[_Prepared] = []
        for item in items:
            try:
                batch.append(self._prepare(item))
            except BadItemError as error:
                yield Prediction(item.id, None, error=str(error))
                continue
            if len(batch) == self.batch_size:
                yield from self._answer(batch)
                batch = []
        if batch:
            yield from self._answer(batch)

    def close(self) -> None:
        """Drop the model and processor and free cached accelerator memory."""
        import torch

        self.model = None
        self.processor = None
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

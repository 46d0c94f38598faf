"""Exports: the benchmark for other evaluation harnesses, the dataset for training frameworks.

Benchmark exports (``multispa export --bench``):

- :mod:`multispa.formats.vlmevalkit`: a VLMEvalKit dataset TSV (multi-image, base64 JPEGs) plus
  ``SCORING.md``, and a reader of VLMEvalKit prediction files → ``{"id", "response"}`` JSONL;
- :mod:`multispa.formats.lmms_eval`: an lmms-eval task folder (``multispa.yaml``, ``utils.py``,
  ``multispa.jsonl``, ``images/``) whose ``process_results`` calls the project's scorer.

Both exports send the same prompt as ``multispa eval``: the item's text with its ``<image>``
placeholders removed (:func:`prompt_text`; the ``Image-k:`` labels stay, so the image order is
explicit) followed by the answer-format instruction
(:data:`multispa.evaluate.backends.base.DEFAULT_INSTRUCTION`).

Dataset exports (``multispa export --dataset``, dispatched by
:func:`multispa.formats.dataset_export.export_dataset`, records read and checked by
:mod:`multispa.formats.dataset_source`): :mod:`~multispa.formats.llava` (LLaVA/ShareGPT json),
:mod:`~multispa.formats.messages` (OpenAI-style messages jsonl for TRL, LLaMA-Factory, ms-swift),
:mod:`~multispa.formats.hf_parquet` (Hugging Face ``datasets`` Parquet, images embedded),
:mod:`~multispa.formats.internvl` (meta JSON for InternVL's fine-tuning script) and
:mod:`~multispa.formats.rl` (Parquet prompts, images and ground truth for TRL's GRPO with
:mod:`multispa.metrics.reward`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION, IMAGE_TOKEN, prompt_text
from multispa.tasks.answers import format_value

__all__ = ["IMAGE_TOKEN", "gt_text", "prompt_text", "question_text"]



def question_text(item: Mapping[str, Any], instruction: str | None = DEFAULT_INSTRUCTION) -> str:
    """The text a model gets for a bench item: :func:`prompt_text` + ``"\\n"`` + instruction."""
    text = prompt_text(str(item["text"]))
    return f"{text}\n{instruction}" if instruction else text


def gt_text(item: Mapping[str, Any]) -> str:
    """The ground truth as the text between the backticks (``left``, ``B``, ``1834``,
    ``[ 412 , 655 ]``, ``[ 12 , -40 , 300 ]``); ``str(gt)`` when it does not fit its type."""
    try:
        return format_value(str(item["answer_type"]), item["gt"])
    except (ValueError, TypeError):
        return str(item["gt"])

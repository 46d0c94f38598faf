"""The backend contract and ``--model`` spec parsing.

A backend answers :class:`EvalItem` prompts with :class:`Prediction` texts. It never scores; the
runner parses and judges with :mod:`multispa.metrics`. Heavy libraries (httpx, torch,
transformers) are imported inside the backend that needs them.

``--model`` specs:

- ``openai:<model>@<base_url>`` — any OpenAI-compatible chat-completions server;
- ``hf:<path>[+<adapter>]`` — a local transformers vision-language model, optional peft adapter;
- ``baseline:chance`` | ``baseline:prior`` | ``baseline:oracle``;
- ``predictions:<file.jsonl>`` — answers produced elsewhere (``{"id", "response"}`` lines).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from multispa.errors import ConfigError

#: The image placeholder of prompts (one per image, in prompt order).
IMAGE_TOKEN = "<image>"

#: Appended to every prompt by default so that every model (and baseline) is parseable.
DEFAULT_INSTRUCTION = (
    "Write your final answer inside single backticks, in the form the question asks for "
    "(for example `left`, `B`, `1250`, `[ 412 , 655 ]` or `[ 12 , -40 , 300 ]`)."
)


#: The sentence a blind run (``multispa eval --blind``) puts before every prompt.
BLIND_NOTE = ("The images are not shown to you: answer from the text alone, giving your best "
              "estimate.")


def blind_prompt(text: str) -> str:
    """A prompt without its images: :data:`BLIND_NOTE`, a newline, then :func:`prompt_text`.

    ``"Image-1: <image>\nImage-2: <image>\nQ?"`` → ``BLIND_NOTE + "\nImage-1:\nImage-2:\nQ?"``
    (the ``Image-k:`` labels stay, since the question refers to the images by them).
    """
    return f"{BLIND_NOTE}\n{prompt_text(text)}"


def prompt_text(text: str) -> str:
    """The prompt with every ``<image>`` removed and the lines this empties dropped.

    ``"Image-1: <image>\\nImage-2: <image>\\nQ?"`` → ``"Image-1:\\nImage-2:\\nQ?"``;
    ``"<image>\\nQ?"`` → ``"Q?"``. Other lines (blank ones included) are kept, right-stripped.
    """
    lines = []
    for line in text.split("\n"):
        if IMAGE_TOKEN in line:
            line = line.replace(IMAGE_TOKEN, "").rstrip()
            if not line.strip():
                continue
        lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question as sent to a model.

    Attributes:
        id: the record id.
        images: absolute image paths, in prompt order (one per ``<image>`` in ``text``; none
            in a blind run, whose text has no ``<image>``).
        text: the human turn, ``<image>`` placeholders included, plus the answer instruction.
        subtask: subtask name; ``answer_type``: label/choice/scalar/vector/coord.
        record: the full benchmark item (baselines read ``gt`` and ``meta`` from it; model
            backends must not).
    """

    id: str
    images: tuple[Path, ...]
    text: str
    subtask: str
    answer_type: str
    record: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)


@dataclass(frozen=True)
class Prediction:
    """A backend's answer to one item (``response`` None when ``error`` is set)."""

    id: str
    response: str | None
    error: str | None = None
    latency_s: float = 0.0


class ModelBackend(Protocol):
    """Answers items; may batch or run requests concurrently inside ``generate``."""

    name: str

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        """Yield one prediction per item, in any order, as soon as each is ready."""
        ...

    def close(self) -> None:
        """Release connections, models, threads."""
        ...


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``--model`` spec: ``kind`` is openai | hf | baseline | predictions."""

    kind: str
    name: str
    base_url: str | None = None
    adapter: str | None = None

    def __str__(self) -> str:
        if self.kind == "openai":
            return f"openai:{self.name}@{self.base_url}"
        if self.kind == "hf" and self.adapter:
            return f"hf:{self.name}+{self.adapter}"
        return f"{self.kind}:{self.name}"


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``--model``; raise :class:`ConfigError` with the accepted forms on a bad spec."""
    kind, _, rest = spec.partition(":")
    if not rest:
        raise ConfigError(
            f"bad --model {spec!r}: expected openai:<model>@<base_url>, hf:<path>[+<adapter>], "
            "baseline:chance|prior|oracle or predictions:<file.jsonl>"
        )
    if kind == "openai":
        model, at, base_url = rest.rpartition("@")
        if not at or not model or not base_url:
            raise ConfigError(f"bad --model {spec!r}: expected openai:<model>@<base_url>")
        return ModelSpec("openai", model, base_url=base_url)
    if kind == "hf":
        path, plus, adapter = rest.partition("+")
        return ModelSpec("hf", path, adapter=adapter if plus else None)
    if kind == "baseline":
        if rest not in ("chance", "prior", "oracle"):
            raise ConfigError(f"bad --model {spec!r}: baselines are chance, prior and oracle")
        return ModelSpec("baseline", rest)
    if kind == "predictions":
        return ModelSpec("predictions", rest)
    raise ConfigError(f"bad --model {spec!r}: unknown kind {kind!r}")

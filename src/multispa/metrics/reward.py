"""A verifiable reward for RL fine-tuning (GRPO): the benchmark's own scorer, per completion.

:func:`reward` has TRL's reward-function signature: ``completions`` (one per sample; plain text,
or a conversation whose last message is the model's) plus the dataset's columns as keyword
lists, one value per completion, → a list of floats. It parses each completion with
:func:`multispa.metrics.parse.parse_answer` and judges it with
:func:`multispa.metrics.judge.judge`, exactly as ``multispa eval`` scores an answer (no second
judge, no LLM): 1.0 when correct, 0.0 otherwise (unparsable or empty included).

Columns read (``multispa export --format rl`` writes all of them):

- ``gt``: the ground truth, as JSON text (``'"left"'``, ``'1834'``, ``'[12, -40, 300]'``) or
  as the value itself; a string that is not JSON is taken as it is (a label or a letter);
- ``answer_type``, ``subtask``: as in the record;
- ``width_list``, ``height_list``: the image sizes, needed for coordinate answers;
- ``meta``: JSON text or an object; ``depth_comparison_coord`` needs ``meta.points``.

:func:`make_reward` adds an optional small **format reward**: ``format_weight`` more when the
answer comes from a backticked span that parses for the record's type (the form the instruction
asks for), right or wrong; e.g. with 0.1: 1.1 correct in backticks, 1.0 correct read from prose,
0.1 wrong in backticks, 0.0 unparsable.

Every other keyword (``prompts``, ``completion_ids``, ``trainer_state``, ``id``, ``images``...)
is ignored. Nothing here imports TRL or torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from multispa.errors import ConfigError
from multispa.metrics.judge import judge
from multispa.metrics.parse import parse_answer

__all__ = ["REWARD_COLUMNS", "RewardFunction", "completion_text", "make_reward", "reward",
           "score_completion"]

#: The dataset columns every call needs.
REWARD_COLUMNS: tuple[str, ...] = ("gt", "answer_type", "subtask")

RewardFunction = Callable[..., list[float]]


def completion_text(completion: Any) -> str | None:
    """The text of one completion: a string as it is; a conversation (list of messages) → the
    last message's content; a message → its content; list content → its text parts joined."""
    if completion is None or isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return completion_text(completion.get("content"))
    if isinstance(completion, Sequence):
        if completion and all(isinstance(m, Mapping) and "role" in m for m in completion):
            return completion_text(completion[-1].get("content"))
        texts = [part.get("text") for part in completion
                 if isinstance(part, Mapping) and part.get("type", "text") == "text"]
        return "".join(t for t in texts if isinstance(t, str))
    raise ConfigError(f"reward: a completion must be text or chat messages, found "
                      f"{type(completion).__name__}")


def _decoded(value: Any) -> Any:
    """JSON text → its value; a non-JSON string stays itself; anything else as it is."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def score_completion(text: str | None, record: Mapping[str, Any]) -> tuple[bool, bool]:
    """``(correct, backticked)`` of one answer for one record, as the scorer judges it.

    Raises:
        ValueError: an unknown subtask, an answer type that does not match it, or a malformed
            ``gt`` or ``meta``.
    """
    parsed = parse_answer(text, record["answer_type"], record["subtask"])
    return judge(parsed, record).correct, parsed.source == "backtick"


def _column(kwargs: Mapping[str, Any], name: str, n: int, required: bool) -> Sequence[Any]:
    values = kwargs.get(name)
    if values is None:
        if required:
            raise ConfigError(f"reward: the dataset has no {name!r} column (needed: "
                              f"{', '.join(REWARD_COLUMNS)}; coordinate answers also need "
                              "width_list and height_list; export with --format rl)")
        return [None] * n
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) != n:
        raise ConfigError(f"reward: column {name!r} must be a list of {n} values (one per "
                          "completion)")
    return values


def _rewards(completions: Sequence[Any], kwargs: Mapping[str, Any],
             format_weight: float) -> list[float]:
    n = len(completions)
    gt, answer_type, subtask = (_column(kwargs, name, n, True) for name in REWARD_COLUMNS)
    widths, heights, metas, ids = (_column(kwargs, name, n, False)
                                   for name in ("width_list", "height_list", "meta", "id"))
    out = []
    for k, completion in enumerate(completions):
        record = {"id": ids[k], "answer_type": answer_type[k], "subtask": subtask[k],
                  "gt": _decoded(gt[k]), "meta": _decoded(metas[k]) or {},
                  "width_list": widths[k], "height_list": heights[k]}
        if answer_type[k] == "coord" and not (widths[k] and heights[k]):
            raise ConfigError(f"reward: completion {k} (subtask {subtask[k]!r}) is a coordinate "
                              "answer: the dataset needs width_list and height_list columns")
        try:
            correct, backticked = score_completion(completion_text(completion), record)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ConfigError(f"reward: completion {k} (id {ids[k]!r}, subtask "
                              f"{subtask[k]!r}) cannot be judged: {exc}") from None
        out.append(float(correct) + (format_weight if backticked else 0.0))
    return out


def reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
    """1.0 for each correct completion, 0.0 otherwise (module docstring; TRL signature).

    Raises:
        ConfigError: a missing or mis-sized column, or a row the scorer cannot judge.
    """
    return _rewards(completions, kwargs, 0.0)


def make_reward(format_weight: float = 0.0) -> RewardFunction:
    """A TRL reward function: :func:`reward` plus ``format_weight`` for an answer read from a
    backticked span (module docstring). Its ``__name__`` (TRL's log key) is
    ``multispa_reward``.

    Raises:
        ConfigError: ``format_weight`` negative or not finite.
    """
    weight = float(format_weight)
    if not 0.0 <= weight < float("inf"):
        raise ConfigError(f"format_weight must be >= 0, got {format_weight!r}")

    def multispa_reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        return _rewards(completions, kwargs, weight)

    multispa_reward.__doc__ = f"multispa's verifiable reward (format weight {weight:g})."
    return multispa_reward

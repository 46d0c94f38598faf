"""Blind runs beside their sighted runs: pairing, column order and the vision gain.

A blind run (``multispa eval --blind``) asked the same items without their images. Its sighted
partner is the run whose ``config.json`` identity is the same (model spec, benchmark content
hash, instruction, baseline settings) apart from ``blind``. The **vision gain** of a row is the
sighted accuracy minus the blind accuracy, in percentage points: what the model gets from seeing
the images rather than from the text and the answer statistics. The **floor** is a
``baseline:prior`` run on the same benchmark: the accuracy of answering every item with its
key's most frequent label or median value, without images or question understanding; a blind
run close to it answers from those statistics only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multispa.report.load import RunData, run_is_blind

__all__ = [
    "FLOOR_MODEL",
    "VisionPair",
    "arrange_runs",
    "format_gain",
    "vision_gain",
    "vision_pairs",
]

#: The model spec of the run that serves as the floor.
FLOOR_MODEL = "baseline:prior"


@dataclass(frozen=True)
class VisionPair:
    """Indices (in the arranged run list) of a sighted run, its blind run and its floor run."""

    sighted: int
    blind: int
    floor: int | None


def _identity(run: RunData) -> dict[str, Any] | None:
    identity = run.config.get("identity")
    if not isinstance(identity, Mapping):
        return None
    return {key: value for key, value in identity.items() if key != "blind"}


def _bench_hash(run: RunData) -> object:
    identity = run.config.get("identity")
    return identity.get("bench_content_sha256") if isinstance(identity, Mapping) else None


def _partners(runs: Sequence[RunData]) -> dict[int, int]:
    """``{blind index: sighted index}``: the first sighted run with the same identity."""
    partners: dict[int, int] = {}
    for b, blind in enumerate(runs):
        identity = _identity(blind)
        if not run_is_blind(blind.config) or identity is None:
            continue
        for s, sighted in enumerate(runs):
            if not run_is_blind(sighted.config) and _identity(sighted) == identity:
                partners[b] = s
                break
    return partners


def arrange_runs(runs: Sequence[RunData]) -> list[RunData]:
    """The runs in their given order, except that each paired blind run follows its sighted
    run (several blind runs of one sighted run keep their relative order)."""
    partners = _partners(runs)
    followers: dict[int, list[int]] = {}
    for b, s in partners.items():
        followers.setdefault(s, []).append(b)
    order: list[int] = []
    for index in range(len(runs)):
        if index in partners:
            continue
        order.append(index)
        order.extend(sorted(followers.get(index, ())))
    return [runs[i] for i in order]


def vision_pairs(runs: Sequence[RunData]) -> list[VisionPair]:
    """The (sighted, blind, floor) triples of ``runs``, in blind-run order.

    The floor is the first non-blind ``baseline:prior`` run on the sighted run's benchmark
    (same content hash), else ``None``.
    """
    pairs = []
    for b, s in sorted(_partners(runs).items()):
        floor = next((i for i, run in enumerate(runs)
                      if run.config.get("model") == FLOOR_MODEL
                      and not run_is_blind(run.config)
                      and _bench_hash(run) == _bench_hash(runs[s])), None)
        pairs.append(VisionPair(s, b, floor))
    return pairs


def vision_gain(sighted: Mapping[str, float | None],
                blind: Mapping[str, float | None]) -> dict[str, float | None]:
    """Key → sighted − blind (percentage points) for the keys of ``sighted`` (rows, Average);
    ``None`` where either value is missing."""
    out: dict[str, float | None] = {}
    for key, value in sighted.items():
        other = blind.get(key)
        out[key] = value - other if value is not None and other is not None else None
    return out


def format_gain(value: float | None, digits: int = 2) -> str:
    """A signed gain: ``+12.50``, ``−3.00`` (minus sign U+2212), ``0.00``; ``–`` for ``None``."""
    if value is None:
        return "–"
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return text
    return ("+" if value > 0 else "\u2212") + text

"""Answer values as text: the one place that rounds and formats numbers
(docs/labels.md#rounding, #answer-types).

Convention:
    - metric values are rounded half away from zero, ``r(x) = sign(x)·floor(|x| + 0.5)``, never with
      Python's ``round`` (half to even); lengths become integer millimetres, angles integer degrees;
    - a scalar is written bare (``1834``, ``-45``), a coordinate ``[ 412 , 655 ]`` and a vector
      ``[ 12 , -40 , 300 ]``: spaces inside the brackets and around the commas, the minus sign
      attached to its number;
    - labels are lower-case words (``left``, ``front-left``) or an image number (``3``), choices
      upper-case letters (``B``);
    - the answer phrasing holds the value exactly once inside one backtick pair; the unit word stays
      outside (``... is `1834` mm.``). Templates never contain backticks: :func:`format_answer`
      returns the backticked text that the renderer places at ``${answer}``.

>>> format_answer("vector", [12, -40, 300])
'`[ 12 , -40 , 300 ]`'
>>> metres_to_mm(1.8345), metres_to_mm(-0.0445)
(1835, -45)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Sequence
from typing import Literal

import numpy as np

from multispa.geometry.coords import round_half_away_int

__all__ = [
    "ANSWER_TYPES",
    "AnswerType",
    "backticked",
    "degrees_to_int",
    "format_answer",
    "format_coord",
    "format_scalar",
    "format_value",
    "format_vector",
    "metres_to_mm",
    "metres_to_mm_vector",
    "round_half_away",
]

AnswerType = Literal["label", "choice", "scalar", "vector", "coord"]
ANSWER_TYPES: tuple[str, ...] = ("label", "choice", "scalar", "vector", "coord")

_LABEL_RE = re.compile(r"[a-z0-9]+(?:[ -][a-z0-9]+)*")  # left, front-left, 3 (an image number)
_CHOICE_RE = re.compile(r"[A-Z]")


def round_half_away(x: float) -> int:
    """Round a finite real half away from zero to a Python ``int``.

    Delegates to :func:`multispa.geometry.coords.round_half_away_int` (exact for every float).

    >>> [round_half_away(v) for v in (0.5, -0.5, 2.5, -2.5, 1.4999)]
    [1, -1, 3, -3, 1]
    """
    return round_half_away_int(x)


def metres_to_mm(value_m: float) -> int:
    """A length in metres as rounded integer millimetres, ``r(1000·value_m)``."""
    return round_half_away(1000.0 * float(value_m))


def metres_to_mm_vector(vector_m: Sequence[float] | np.ndarray) -> list[int]:
    """A ``(3,)`` vector in metres as a list of three rounded integer millimetres."""
    values = np.asarray(vector_m, dtype=np.float64)
    if values.shape != (3,):
        raise ValueError(f"metres_to_mm_vector: expected shape (3,), got {values.shape}")
    return [metres_to_mm(v) for v in values.tolist()]


def degrees_to_int(angle_deg: float) -> int:
    """An angle in degrees as a rounded integer number of degrees."""
    return round_half_away(float(angle_deg))


def _as_int(value: object, what: str) -> int:
    """``value`` as a Python int; bools, floats and strings are refused (round first)."""
    if type(value) is int:  # the common case (``tolist()`` of an integer array)
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{what}: expected an integer, got a bool ({value!r})")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{what}: expected an integer (round metric values with round_half_away first), "
            f"got {type(value).__name__} {value!r}"
        ) from None


def format_scalar(value: int) -> str:
    """An integer scalar as text: ``1834``, ``-45``."""
    return str(_as_int(value, "format_scalar"))


def format_coord(x: int, y: int) -> str:
    """A normalised image coordinate (integers 0..999) as ``[ x , y ]``."""
    xs, ys = _as_int(x, "format_coord x"), _as_int(y, "format_coord y")
    if not (0 <= xs <= 999 and 0 <= ys <= 999):
        raise ValueError(f"format_coord: coordinates must lie in 0..999, got [{xs}, {ys}]")
    return f"[ {xs} , {ys} ]"


def format_vector(v: Sequence[int]) -> str:
    """A 3-vector of integers (mm) as ``[ x , y , z ]``."""
    items = list(v)
    if len(items) != 3:
        raise ValueError(f"format_vector: expected 3 components, got {len(items)}")
    parts = [str(_as_int(c, "format_vector component")) for c in items]
    return f"[ {parts[0]} , {parts[1]} , {parts[2]} ]"


def backticked(text: str) -> str:
    """Wrap ``text`` in one backtick pair; it must be non-empty, one line, without backticks."""
    if not text or "`" in text or "\n" in text:
        raise ValueError(f"backticked: need one-line text without backticks, got {text!r}")
    return f"`{text}`"


def format_value(answer_type: str, gt: object) -> str:
    """The ground truth ``gt`` as the text that goes between the backticks.

    Args:
        answer_type: ``label`` (lower-case words, hyphenated words or an image number),
            ``choice`` (a letter, upper-cased),
            ``scalar`` (int), ``vector`` (three ints, mm) or ``coord`` (two ints, 0..999).
        gt: the value, in the record's ``gt`` form.

    >>> [format_value(t, g) for t, g in [("label", "Left"), ("choice", "b"), ("coord", (412, 655))]]
    ['left', 'B', '[ 412 , 655 ]']
    """
    if answer_type == "label":
        if not isinstance(gt, str) or not _LABEL_RE.fullmatch(gt.strip().lower()):
            raise ValueError(f"format_value: a label must be lower-case words, got {gt!r}")
        return gt.strip().lower()
    if answer_type == "choice":
        if not isinstance(gt, str) or not _CHOICE_RE.fullmatch(gt.strip().upper()):
            raise ValueError(f"format_value: a choice must be one letter, got {gt!r}")
        return gt.strip().upper()
    if answer_type == "scalar":
        return format_scalar(gt)  # type: ignore[arg-type]
    if answer_type == "vector":
        return format_vector(gt)  # type: ignore[arg-type]
    if answer_type == "coord":
        items = list(gt)  # type: ignore[call-overload]
        if len(items) != 2:
            raise ValueError(f"format_value: a coord needs 2 components, got {len(items)}")
        return format_coord(items[0], items[1])
    raise ValueError(f"format_value: unknown answer_type {answer_type!r}; expected {ANSWER_TYPES}")


def format_answer(answer_type: str, gt: object) -> str:
    """The backticked ground truth for ``fields["answer"]``: ``backticked(format_value(...))``.

    >>> format_answer("scalar", -45), format_answer("label", "right")
    ('`-45`', '`right`')
    """
    return backticked(format_value(answer_type, gt))

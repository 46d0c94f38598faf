"""Correctness, exact error and MRA of one parsed answer against its record
(docs/metrics.md#judging, #mra).

Rules (``p`` the parsed value, ``g`` the record's ``gt``; all comparisons exact, in integers when
both sides are integers and in :class:`fractions.Fraction` otherwise, norms compared squared):

- ``label`` / ``choice``: ``p == g`` after normalisation (lower-case word, upper-case letter;
  the parser already normalises ``p``);
- ``scalar``: ``25·(p − g)² ≤ g²`` (i.e. ``|p − g| ≤ 0.2·|g|``), for ``g ≠ 0``; a **count**
  (the N-view object count, unit ``count``) is right only when ``p == g`` exactly (its error and
  MRA are those of a scalar);
- ``vector``: ``25·‖p − g‖² ≤ ‖g‖²``, for ``g ≠ 0``;
- **static gt** (``g = 0`` or ``[0, 0, 0]``; object movement, rule (j)): ``‖p‖² ≤ 10²``, i.e.
  ``‖p‖ ≤ 10`` in the subtask's unit (mm). The rule applies to any zero ``gt`` (the generator's
  dead zones keep other subtasks away from zero);
- ``coord``: ``(Δx·W)² + (Δy·H)² ≤ (50·W)²`` — the pixel distance between the two cell centres
  ``u = (x + 0.5)·W/1000`` is at most 5 % of the width — with ``W, H = width_list[-1],
  height_list[-1]``: the image the coordinate refers to, i.e. image 2 for correspondence and the
  only image for depth comparison;
- ``depth_comparison_coord``: the coord rule **and** ``p`` (mapped to its cell centre in pixels)
  strictly nearer to the correct candidate than to the other one. The two candidates are
  ``meta.points[0]`` (pixels, order of mention); the correct one is the candidate whose
  normalised coordinate ``clamp(floor(u·1000/W), 0, 999)`` equals ``gt`` — when that does not
  single one out (the stored pixels are rounded to 2 decimals, so a point on a cell border can
  land in the neighbouring cell) the candidate nearer to ``gt``'s cell centre is taken. Squared
  pixel distances are compared exactly with Fractions (pixels read from their decimal text).

``Verdict.error`` is the exact **normalised squared error** ``(distance / tolerance)²``, so that
the tolerance test reads ``error ≤ 1``: ``25(p−g)²/g²`` (scalar), ``25‖p−g‖²/‖g‖²`` (vector),
``‖p‖²/100`` (static), ``((Δx·W)² + (Δy·H)²)/(50·W)²`` (coord); ``None`` for label/choice and
unparsed answers.

MRA, scalar and vector subtasks only: ``hit_k ⟺ 400·‖p − g‖² ≤ k²·‖g‖²`` for
``k = 1..10`` (the squared form of ``20·|p − g| ≤ k·|g|``), ``MRA = Σ hit_k / 10``; the
``strict`` flag uses ``<`` (VSI-Bench's paper) instead of the default ``≤`` (VSI-Bench's code).
``g = 0`` → the static rule (1.0 or 0.0, always ``≤``); unparsed → 0.0. The ten tolerances are
integers ``k/20``, never ``1 − θ`` in floats, so 14.5 vs 10 and 1.45 vs 1 (both exactly 45 %
off) score alike: 0.2 with ``≤``, 0.1 with ``<``.

Optional metrics (:func:`named_metrics`, scalar subtasks, off by default in the scorer):
SpatialRGPT success ``0.75·g ≤ p ≤ 1.25·g`` and factor-of-two ``max(p/g, g/p) < 2`` (``p`` and
``g`` of the same sign); both use the static rule when ``g = 0``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from multispa.metrics.parse import Number, ParsedAnswer
from multispa.tasks.templates import SUBTASKS

__all__ = [
    "NAMED_METRICS",
    "STATIC_TOLERANCE_MM",
    "Verdict",
    "judge",
    "mra_from_squares",
    "named_metrics",
]

STATIC_TOLERANCE_MM = 10  # mm (rule (j)): a static point's answer is right iff ‖p‖ ≤ 10
_STATIC_TOLERANCE_SQ = STATIC_TOLERANCE_MM * STATIC_TOLERANCE_MM
NAMED_METRICS: tuple[str, ...] = ("spatialrgpt_success", "factor_two")

_MRA_VALUES: tuple[float, ...] = tuple(hits / 10 for hits in range(11))


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement of one answer.

    Attributes:
        correct: the correctness rule holds (``False`` when nothing parsed).
        error: exact normalised squared error ``(distance / tolerance)²`` (module docstring);
            ``None`` for label/choice answers and unparsed answers.
        mra: mean relative accuracy in ``[0, 1]`` for scalar and vector subtasks (0.0 when
            unparsed); ``None`` for label, choice and coord subtasks.
    """

    correct: bool
    error: Fraction | None
    mra: float | None


_RIGHT = Verdict(True, None, None)
_WRONG = Verdict(False, None, None)
_UNPARSED_NUMERIC = Verdict(False, None, 0.0)


def _ratio(numerator: Number, denominator: Number) -> Fraction:
    if type(numerator) is int and type(denominator) is int:
        return Fraction(numerator, denominator)
    return Fraction(numerator) / denominator


def mra_from_squares(err_sq_400: Number, gt_sq: Number, strict: bool = False) -> float:
    """MRA from ``A = 400·‖p − g‖²`` and ``B = ‖g‖² > 0``: the share of ``k ∈ 1..10`` with
    ``A ≤ k²·B`` (``A < k²·B`` when ``strict``), in steps of 0.1.

    ``k² ≥ A/B`` for an integer ``k²`` is ``k² ≥ ceil(A/B)``; the smallest such ``k`` is the
    integer ceiling of the square root. Exact for ints and Fractions.

    >>> mra_from_squares(400 * 45**2, 100**2), mra_from_squares(400 * 45**2, 100**2, strict=True)
    (0.2, 0.1)
    """
    threshold = err_sq_400 // gt_sq + 1 if strict else -(-err_sq_400 // gt_sq)
    if threshold <= 1:
        return 1.0
    if threshold > 100:
        return 0.0
    root = math.isqrt(threshold)
    k_min = root if root * root == threshold else root + 1
    return _MRA_VALUES[11 - k_min]


def _as_number(value: Any, rid: object) -> Number:
    if type(value) is int:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value) if value.is_integer() else Fraction(repr(value))
    if isinstance(value, Fraction):
        return value
    raise ValueError(f"record {rid}: gt component {value!r} is not a number")


def _gt_numbers(record: Mapping[str, Any], count: int) -> Sequence[Number]:
    gt = record["gt"]
    if not isinstance(gt, list | tuple) or len(gt) != count:
        raise ValueError(f"record {record.get('id')}: gt {gt!r} is not a list of {count} numbers")
    if all(type(v) is int for v in gt):
        return gt
    return [_as_number(v, record.get("id")) for v in gt]


def _static(p_sq: Number) -> Verdict:
    """A zero ``gt``: right iff ``‖p‖² ≤ 10²``; MRA 1.0 or 0.0."""
    ok = p_sq <= _STATIC_TOLERANCE_SQ
    return Verdict(ok, _ratio(p_sq, _STATIC_TOLERANCE_SQ), 1.0 if ok else 0.0)


def judge(parsed: ParsedAnswer, record: Mapping[str, Any], *, strict_mra: bool = False) -> Verdict:
    """Judge ``parsed`` against ``record`` (its ``answer_type``, ``gt``, sizes and meta).

    Args:
        parsed: the output of :func:`multispa.metrics.parse.parse_answer` for this record.
        record: a record; reads ``answer_type``, ``gt``, and for coords ``width_list``,
            ``height_list`` (and ``subtask``, ``meta.points`` for depth comparison).
        strict_mra: MRA with ``<`` instead of ``≤``.

    Raises:
        ValueError: the record's ``gt`` (or, for depth comparison, ``meta.points``) is
            malformed.
    """
    answer_type = record["answer_type"]
    value = parsed.value
    if answer_type == "scalar":
        if value is None:
            return _UNPARSED_NUMERIC
        g = record["gt"]
        if type(g) is not int:
            g = _as_number(g, record.get("id"))
        if g == 0:
            return _static(value * value)
        diff = value - g
        err_sq = diff * diff
        gt_sq = g * g
        spec = SUBTASKS.get(record.get("subtask"))  # type: ignore[arg-type]
        exact = spec is not None and spec.unit == "count"
        return Verdict(
            diff == 0 if exact else 25 * err_sq <= gt_sq,
            _ratio(25 * err_sq, gt_sq),
            mra_from_squares(400 * err_sq, gt_sq, strict_mra),
        )
    if answer_type == "vector":
        if value is None:
            return _UNPARSED_NUMERIC
        g0, g1, g2 = _gt_numbers(record, 3)
        p0, p1, p2 = value  # type: ignore[misc]
        gt_sq = g0 * g0 + g1 * g1 + g2 * g2
        if gt_sq == 0:
            return _static(p0 * p0 + p1 * p1 + p2 * p2)
        d0, d1, d2 = p0 - g0, p1 - g1, p2 - g2
        err_sq = d0 * d0 + d1 * d1 + d2 * d2
        return Verdict(
            25 * err_sq <= gt_sq,
            _ratio(25 * err_sq, gt_sq),
            mra_from_squares(400 * err_sq, gt_sq, strict_mra),
        )
    if answer_type == "coord":
        if value is None:
            return _WRONG
        gx, gy = _gt_numbers(record, 2)
        px, py = value  # type: ignore[misc]
        width, height = record["width_list"][-1], record["height_list"][-1]
        du, dv = (px - gx) * width, (py - gy) * height
        dist_sq = du * du + dv * dv
        tol_sq = 2500 * width * width
        ok = dist_sq <= tol_sq
        if ok and record.get("subtask") == "depth_comparison_coord":
            ok = _nearer_to_correct(record, (px, py), (gx, gy), width, height)
        return Verdict(ok, _ratio(dist_sq, tol_sq), None)
    if answer_type == "label":
        if value is None:
            return _WRONG
        gt = record["gt"]
        return _RIGHT if value == gt or value == str(gt).strip().lower() else _WRONG
    if answer_type == "choice":
        if value is None:
            return _WRONG
        gt = record["gt"]
        return _RIGHT if value == gt or value == str(gt).strip().upper() else _WRONG
    raise ValueError(f"record {record.get('id')}: unknown answer_type {answer_type!r}")


# ----------------------------------------------------------------------- depth comparison


def _hundredths(value: Any, rid: object) -> Number:
    """A JSON pixel coordinate times 100, exactly (its decimal text; an int for ≤ 2 decimals)."""
    if type(value) is int:
        return value * 100
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        if "e" not in text:
            whole, _, frac = text.partition(".")
            if len(frac) <= 2:
                return int(whole + frac.ljust(2, "0"))
        return Fraction(text) * 100
    raise ValueError(f"record {rid}: meta.points holds {value!r}, expected a number")


def _nearer_to_correct(
    record: Mapping[str, Any], p: tuple[Number, Number], g: tuple[Number, Number],
    width: int, height: int,
) -> bool:
    """Whether ``p`` (normalised) is strictly nearer, in pixels, to the correct candidate.

    Pixels are compared in units of 1/2000 px, where cell centres ``(2x + 1)·W`` and the
    candidates' 2-decimal pixels ``20·(100·u)`` are integers (Fractions otherwise).
    """
    rid = record.get("id")
    try:
        candidates = record["meta"]["points"][0]
        (ua, va), (ub, vb) = candidates
    except (KeyError, IndexError, TypeError, ValueError):
        raise ValueError(
            f"record {rid}: depth_comparison_coord needs meta.points[0] = two [u, v] pixel "
            f"points, found {record.get('meta', {}).get('points')!r}"
        ) from None
    pixels = [(ua, va), (ub, vb)]
    scaled = [(20 * _hundredths(u, rid), 20 * _hundredths(v, rid)) for u, v in pixels]

    def dist_sq(a: tuple[Number, Number], b: tuple[Number, Number]) -> Number:
        du, dv = a[0] - b[0], a[1] - b[1]
        return du * du + dv * dv

    def cell(u: float, v: float) -> tuple[int, int]:  # as the generator computes it
        x = min(max(math.floor(float(u) * 1000.0 / width), 0), 999)
        y = min(max(math.floor(float(v) * 1000.0 / height), 0), 999)
        return x, y

    matches = [i for i, (u, v) in enumerate(pixels) if cell(u, v) == (g[0], g[1])]
    if len(matches) == 1:
        correct = matches[0]
    else:
        g_px = ((2 * g[0] + 1) * width, (2 * g[1] + 1) * height)
        correct = 0 if dist_sq(scaled[0], g_px) <= dist_sq(scaled[1], g_px) else 1
    p_px = ((2 * p[0] + 1) * width, (2 * p[1] + 1) * height)
    return dist_sq(p_px, scaled[correct]) < dist_sq(p_px, scaled[1 - correct])


# -------------------------------------------------------------------------- named metrics


def named_metrics(parsed: ParsedAnswer, record: Mapping[str, Any]) -> dict[str, bool] | None:
    """The optional scalar metrics (``None`` for other answer types).

    - ``spatialrgpt_success``: ``0.75·g ≤ p ≤ 1.25·g`` (bounds swapped for ``g < 0``), i.e.
      ``3g ≤ 4p ≤ 5g``;
    - ``factor_two``: ``max(p/g, g/p) < 2`` with ``p/g > 0``, i.e. ``|p| < 2|g|`` and
      ``|g| < 2|p|``, same sign;
    - ``g = 0``: both use the static rule ``|p| ≤ 10``; unparsed: both ``False``.
    """
    if record["answer_type"] != "scalar":
        return None
    p = parsed.value
    if p is None:
        return dict.fromkeys(NAMED_METRICS, False)
    g = _as_number(record["gt"], record.get("id"))
    if g == 0:
        return dict.fromkeys(NAMED_METRICS, p * p <= _STATIC_TOLERANCE_SQ)  # type: ignore[operator]
    lo, hi = (3 * g, 5 * g) if g > 0 else (5 * g, 3 * g)
    same_sign = (p > 0) == (g > 0) and p != 0  # type: ignore[operator]
    ap, ag = abs(p), abs(g)  # type: ignore[arg-type]
    return {
        "spatialrgpt_success": lo <= 4 * p <= hi,  # type: ignore[operator]
        "factor_two": same_sign and ap < 2 * ag and ag < 2 * ap,
    }

"""Correctness rules, exact boundaries, MRA and the optional metrics (docs/metrics.md#judging, #mra,
docs/labels.md#rule-j)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest

from multispa.metrics.judge import Verdict, judge, mra_from_squares, named_metrics
from multispa.metrics.parse import ParsedAnswer, parse_answer
from multispa.tasks.templates import SUBTASKS

F = Fraction


def record(subtask: str, gt: Any, *, width: int = 1296, height: int = 968,
           points: list[list[list[float]]] | None = None, **extra: Any) -> dict[str, Any]:
    spec = SUBTASKS[subtask]
    images = spec.num_images
    return {
        "id": f"val-{subtask}-x",
        "subtask": subtask,
        "answer_type": spec.answer_type,
        "gt": gt,
        "width_list": [640] * (images - 1) + [width],
        "height_list": [480] * (images - 1) + [height],
        "meta": {"source": "scannet", "points": points or [[] for _ in range(images)]},
        **extra,
    }


def parsed(value: Any) -> ParsedAnswer:
    return ParsedAnswer(value, None if value is not None else "no_match",
                        "backtick" if value is not None else None)


def verdict(value: Any, rec: dict[str, Any], strict: bool = False) -> Verdict:
    return judge(parsed(value), rec, strict_mra=strict)


# ------------------------------------------------------------------------------------ scalar


@pytest.mark.parametrize(("p", "correct"), [
    (1000, True), (800, True), (1200, True), (799, False), (1201, False),
    (F(1601, 2), True), (F(1599, 2), False), (F(2401, 2), False), (F(2399, 2), True),
    (-1000, False), (0, False), (2000, False),
])
def test_scalar_boundary_is_exact(p: Any, correct: bool) -> None:
    assert verdict(p, record("depth_estimation_dot", 1000)).correct is correct


def test_scalar_boundaries_where_floats_disagree() -> None:
    # |8.4 - 7| = 1.4 = 0.2·7 exactly; in floats abs(8.4 - 7) > 0.2 * 7.
    assert abs(8.4 - 7) > 0.2 * 7 and abs(5.6 - 7) > 0.2 * 7
    rec = record("camera_yaw_degree", 7)
    assert judge(parse_answer("`8.4` degrees", "scalar", rec["subtask"]), rec).correct
    assert verdict(F("5.6"), rec).correct
    assert not verdict(F("8.4000001"), rec).correct
    assert verdict(F("-36"), record("depth_estimation_dot", -45)).correct  # |g| for g < 0
    assert not verdict(F("-35"), record("depth_estimation_dot", -45)).correct


def test_scalar_error_is_the_exact_normalised_square() -> None:
    v = verdict(800, record("depth_estimation_dot", 1000))
    assert v.error == 1 and type(v.error) is Fraction
    assert verdict(1100, record("depth_estimation_dot", 1000)).error == F(1, 4)
    assert verdict(F(2001, 2), record("depth_estimation_dot", 1000)).error == F(1, 160000)


def test_parsed_metres_meet_integer_gt() -> None:
    rec = record("camera_translation_distance", 1250)
    cases = [("`1.5` m", True), ("`1.51` m", False), ("`100` cm", True), ("`99.9 cm`", False)]
    for text, ok in cases:
        assert judge(parse_answer(text, "scalar", rec["subtask"]), rec).correct is ok, text


# ------------------------------------------------------------------------------------ vector


@pytest.mark.parametrize(("p", "correct"), [
    ((300, 400, 100), True),   # ‖p − g‖ = 100 = 0.2·500
    ((300, 400, 101), False),
    ((360, 480, 0), True),     # error (60, 80, 0), norm 100
    ((361, 480, 0), False),
    ((240, 320, 0), True),
    ((239, 320, 0), False),
    ((300, 400, F(201, 2)), False),
    ((300, 400, F(199, 2)), True),
    ((-300, -400, 0), False),
])
def test_vector_boundary_is_exact(p: tuple[Any, ...], correct: bool) -> None:
    assert verdict(p, record("camera_translation_vector", [300, 400, 0])).correct is correct


def test_vector_error() -> None:
    rec = record("camera_translation_vector", [300, 400, 0])
    assert verdict((300, 400, 100), rec).error == 1
    assert verdict((300, 400, 50), rec).error == F(1, 4)


# ---------------------------------------------------------------------------- static points


@pytest.mark.parametrize(("subtask", "gt", "p", "correct"), [
    ("object_movement_distance_dot", 0, 0, True),
    ("object_movement_distance_dot", 0, 10, True),
    ("object_movement_distance_dot", 0, -10, True),
    ("object_movement_distance_dot", 0, 11, False),
    ("object_movement_distance_dot", 0, F(21, 2), False),
    ("object_movement_distance_coord", 0, F(199, 20), True),
    ("object_movement_vector_dot", [0, 0, 0], (0, 0, 0), True),
    ("object_movement_vector_dot", [0, 0, 0], (6, 8, 0), True),    # ‖p‖ = 10
    ("object_movement_vector_dot", [0, 0, 0], (6, 8, 1), False),
    ("object_movement_vector_coord", [0, 0, 0], (-10, 0, 0), True),
    ("object_movement_vector_coord", [0, 0, 0], (-11, 0, 0), False),
    ("object_movement_vector_coord", [0, 0, 0], (7, 7, 1), True),   # ‖p‖² = 99
    ("object_movement_vector_coord", [0, 0, 0], (7, 7, 2), False),  # ‖p‖² = 102
])
def test_static_rule(subtask: str, gt: Any, p: Any, correct: bool) -> None:
    v = verdict(p, record(subtask, gt))
    assert v.correct is correct
    assert v.mra == (1.0 if correct else 0.0)


def test_static_rule_ignores_strict_mra() -> None:
    assert verdict(10, record("object_movement_distance_dot", 0), strict=True).mra == 1.0
    assert verdict((0, 0, 10), record("object_movement_vector_dot", [0, 0, 0]), True).mra == 1.0


# ------------------------------------------------------------------------------------- coord


@pytest.mark.parametrize(("p", "width", "height", "correct"), [
    ((550, 500), 1000, 1000, True),    # exactly 5 % of W
    ((551, 500), 1000, 1000, False),
    ((450, 500), 1000, 1000, True),
    ((530, 540), 1000, 1000, True),    # (30, 40): distance 50
    ((530, 541), 1000, 1000, False),
    ((550, 500), 1296, 968, True),     # 50·1296 = 64800 = 5 % of W in 1/1000 px
    ((551, 500), 1296, 968, False),
    ((500, 566), 1296, 968, True),     # 66·968 = 63888 ≤ 64800
    ((500, 567), 1296, 968, False),    # 67·968 = 64856 > 64800
    ((500, 1000 - 434), 1296, 968, True),
    ((F(1101, 2), 500), 1000, 1000, False),  # 50.5 units
    ((F(1099, 2), 500), 1000, 1000, True),
])
def test_coord_boundary(p: tuple[Any, Any], width: int, height: int, correct: bool) -> None:
    rec = record("correspondence_coord", [500, 500], width=width, height=height)
    v = verdict(p, rec)
    assert v.correct is correct
    assert (v.error is not None and v.error <= 1) is correct
    assert v.mra is None


def test_coord_uses_the_last_image_size() -> None:
    rec = record("correspondence_coord", [500, 500], width=1000, height=1000)
    rec["width_list"], rec["height_list"] = [100, 1000], [100, 1000]
    assert verdict((550, 500), rec).correct
    rec["width_list"], rec["height_list"] = [1000, 100], [1000, 100]
    assert verdict((550, 500), rec).correct  # relative to its own width: still 5 %
    assert not verdict((500, 551), rec).correct


# Candidates A = (200, 300) px and B = (300, 300) px on a 1296 × 968 image; A is at cell
# [154, 309] (the gt). The coord tolerance is 64.8 px, the midpoint between A and B is u = 250.
_DCMP_POINTS = [[[200.0, 300.0], [300.0, 300.0]]]


@pytest.mark.parametrize(("px", "nearer_correct"), [
    (154, True), (190, True), (192, True),  # u = 249.48: nearer A
    (193, False),                           # u = 250.776: within 5 % of gt but nearer B
    (194, False),
])
def test_depth_comparison_coord_must_be_nearer_the_correct_point(px: int,
                                                                 nearer_correct: bool) -> None:
    rec = record("depth_comparison_coord", [154, 309], points=_DCMP_POINTS)
    plain = record("correspondence_coord", [154, 309])
    assert verdict((px, 309), plain).correct  # the coord rule alone accepts all of them
    assert verdict((px, 309), rec).correct is nearer_correct


def test_depth_comparison_coord_tie_is_wrong() -> None:
    # W = H = 1000: p = 249.5 maps to u = 250 exactly, equidistant from A and B.
    rec = record("depth_comparison_coord", [200, 300], width=1000, height=1000,
                 points=[[[200.0, 300.5], [300.0, 300.5]]])
    assert not verdict((F(499, 2), 300), rec).correct
    assert verdict((F(498, 2), 300), rec).correct


def test_depth_comparison_coord_candidate_in_a_neighbouring_cell() -> None:
    # The stored pixel (2-decimal rounding) of the correct point falls in the next cell: no
    # candidate maps to gt, so the one nearer to gt's cell centre is the correct one.
    rec = record("depth_comparison_coord", [199, 300], width=1000, height=1000,
                 points=[[[300.0, 300.0], [200.0, 300.0]]])
    assert verdict((199, 300), rec).correct
    assert verdict((240, 300), rec).correct
    rec_b = record("depth_comparison_coord", [299, 300], width=1000, height=1000,
                   points=[[[300.0, 300.0], [200.0, 300.0]]])
    # gt centre u = 299.5, correct candidate u = 300, other u = 200, midpoint 250:
    assert not verdict((249, 300), rec_b).correct  # 50 units off (coord rule holds), nearer 200
    assert verdict((250, 300), rec_b).correct
    assert verdict((299, 300), rec_b).correct


def test_depth_comparison_coord_without_points_is_refused() -> None:
    rec = record("depth_comparison_coord", [154, 309], points=[[]])
    with pytest.raises(ValueError, match=r"meta\.points"):
        verdict((154, 309), rec)


# --------------------------------------------------------------------------- label, choice


@pytest.mark.parametrize(("subtask", "gt", "value", "correct"), [
    ("camera_x_direction", "left", "left", True),
    ("camera_x_direction", "left", "right", False),
    ("camera_x_direction", "Left ", "left", True),
    ("camera_z_direction", "backward", "forward", False),
    ("correspondence_mcq_dot", "B", "B", True),
    ("correspondence_mcq_dot", "b", "B", True),
    ("correspondence_mcq_dot", "C", "B", False),
    ("depth_comparison_dot", "A", None, False),
])
def test_label_and_choice(subtask: str, gt: str, value: str | None, correct: bool) -> None:
    v = verdict(value, record(subtask, gt))
    assert v == Verdict(correct, None, None)


def test_label_and_choice_via_the_parser() -> None:
    rec = record("correspondence_mcq_dot", "C")
    assert judge(parse_answer("`c`", "choice", rec["subtask"]), rec).correct
    assert judge(parse_answer("Option (C)", "choice", rec["subtask"]), rec).correct
    assert not judge(parse_answer("`D`", "choice", rec["subtask"]), rec).correct
    rec = record("camera_yaw_direction", "right")
    assert judge(parse_answer("It turned RIGHT.", "label", rec["subtask"]), rec).correct


def test_unparsed_answers() -> None:
    assert verdict(None, record("depth_estimation_dot", 1000)) == Verdict(False, None, 0.0)
    assert verdict(None, record("camera_translation_vector", [1, 2, 3])) == Verdict(
        False, None, 0.0)
    assert verdict(None, record("object_movement_distance_dot", 0)).mra == 0.0
    assert verdict(None, record("correspondence_coord", [1, 2])) == Verdict(False, None, None)


def test_malformed_gt_is_refused() -> None:
    with pytest.raises(ValueError, match="gt"):
        verdict(1, record("depth_estimation_dot", "1000"))
    with pytest.raises(ValueError, match="gt"):
        verdict((1, 2, 3), record("camera_translation_vector", [1, 2]))
    assert verdict(1000, record("depth_estimation_dot", 1000.0)).correct  # whole float is fine


# --------------------------------------------------------------------------------------- MRA


@pytest.mark.parametrize(("p", "mra_le", "mra_lt"), [
    (100, 1.0, 1.0), (104, 1.0, 1.0), (105, 1.0, 0.9), (106, 0.9, 0.9), (110, 0.9, 0.8),
    (125, 0.6, 0.5), (F(251, 2), 0.5, 0.5), (145, 0.2, 0.1), (150, 0.1, 0.0), (151, 0.0, 0.0),
    (95, 1.0, 0.9), (50, 0.1, 0.0), (0, 0.0, 0.0), (200, 0.0, 0.0), (-100, 0.0, 0.0),
])
def test_mra_scalar_table(p: Any, mra_le: float, mra_lt: float) -> None:
    rec = record("depth_estimation_dot", 100)
    assert verdict(p, rec).mra == mra_le
    assert verdict(p, rec, strict=True).mra == mra_lt


def test_mra_steps_of_five_percent() -> None:
    rec = record("depth_estimation_dot", 1000)
    for j in range(0, 13):
        expected_le = 1.0 if j == 0 else max(0, 11 - j) / 10
        expected_lt = max(0, 10 - j) / 10
        assert verdict(1000 + 50 * j, rec).mra == expected_le, j
        assert verdict(1000 + 50 * j, rec, strict=True).mra == expected_lt, j


def test_mra_pitfall_examples_are_scale_free() -> None:
    # VSI-Bench's float code scores 14.5 vs 10 as 0.1 and 1.45 vs 1 as 0.2; exactly, both
    # are 45 % off: 0.2 with "≤" (hit at k = 9, 10), 0.1 with "<" (k = 10 only).
    big, small = record("camera_yaw_degree", 10), record("camera_yaw_degree", 1)
    assert verdict(F("14.5"), big).mra == 0.2
    assert verdict(F("1.45"), small).mra == 0.2
    assert verdict(F("14.5"), big, strict=True).mra == 0.1
    assert verdict(F("1.45"), small, strict=True).mra == 0.1
    assert mra_from_squares(400 * F("0.45") ** 2, 1) == 0.2


def test_mra_vector() -> None:
    rec = record("camera_translation_vector", [300, 400, 0])  # ‖g‖ = 500
    assert verdict((300, 400, 25), rec).mra == 1.0     # 5 %
    assert verdict((300, 400, 25), rec, strict=True).mra == 0.9
    assert verdict((300, 400, 26), rec).mra == 0.9
    assert verdict((300, 400, 250), rec).mra == 0.1    # 50 %
    assert verdict((300, 400, 251), rec).mra == 0.0
    assert verdict((0, 0, 0), rec).mra == 0.0
    assert verdict((300, 400, 0), rec).mra == 1.0


def test_mra_from_squares_matches_brute_force() -> None:
    for a in range(0, 4100, 7):
        for b in (1, 3, 17, 100):
            brute = sum(a <= k * k * b for k in range(1, 11)) / 10
            brute_strict = sum(a < k * k * b for k in range(1, 11)) / 10
            assert mra_from_squares(a, b) == brute
            assert mra_from_squares(a, b, strict=True) == brute_strict


# ---------------------------------------------------------------------------- named metrics


@pytest.mark.parametrize(("p", "srgpt", "two"), [
    (100, True, True), (75, True, True), (74, False, True), (125, True, True),
    (126, False, True), (51, False, True), (50, False, False), (199, False, True),
    (200, False, False), (-100, False, False), (0, False, False), (F(301, 4), True, True),
    (F(299, 4), False, True), (None, False, False),
])
def test_named_metrics(p: Any, srgpt: bool, two: bool) -> None:
    rec = record("object_size_height", 100)
    assert named_metrics(parsed(p), rec) == {"spatialrgpt_success": srgpt, "factor_two": two}


def test_named_metrics_static_and_other_types() -> None:
    rec = record("object_movement_distance_dot", 0)
    assert named_metrics(parsed(10), rec) == {"spatialrgpt_success": True, "factor_two": True}
    assert named_metrics(parsed(11), rec) == {"spatialrgpt_success": False, "factor_two": False}
    assert named_metrics(parsed((1, 2, 3)), record("camera_translation_vector", [1, 2, 3])) is None


@pytest.mark.parametrize("points", [
    [[[200, 300], [300, 300]]],                # ints
    [[[200.0, 300.0], [300.0, 300.0]]],        # 2-decimal floats (the record format)
    [[[200.0004, 300.0], [299.9996, 300.0]]],  # more decimals: exact Fractions
])
def test_depth_comparison_coord_pixel_forms(points: list[list[list[float]]]) -> None:
    rec = record("depth_comparison_coord", [154, 309], points=points)
    assert verdict((192, 309), rec).correct
    assert not verdict((193, 309), rec).correct

"""Answer extraction (docs/metrics.md#answer-extraction): table-driven cases per answer type; the
generator round trip."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from multispa.metrics.parse import ParsedAnswer, parse_answer, parse_number
from multispa.tasks.answers import format_answer, format_coord
from multispa.tasks.templates import SUBTASKS, compiled_templates, render_prompt

F = Fraction
DEPTH = "depth_estimation_dot"  # scalar, mm
YAW = "camera_yaw_degree"  # scalar, degrees
VEC = "camera_translation_vector"  # vector, mm
OBJ_VEC = "object_movement_vector_dot"  # vector, mm
CORR = "correspondence_coord"  # coord
XDIR = "camera_x_direction"  # label left/right
ZDIR = "camera_z_direction"  # label forward/backward
MCQ = "correspondence_mcq_dot"  # choice A-D
DCMP = "depth_comparison_dot"  # choice A/B

BT, FB = "backtick", "fallback"

# (response, subtask, expected value, expected source)
SCALAR_CASES = [
    ("`1834`", DEPTH, 1834, BT),
    ("The depth is `1834` mm.", DEPTH, 1834, BT),
    ("`-45`", DEPTH, -45, BT),
    ("`\u221245` mm", DEPTH, -45, BT),  # unicode minus
    ("`+12`", DEPTH, 12, BT),
    ("`1,834`", DEPTH, 1834, BT),
    ("`1,234,567` mm", DEPTH, 1234567, BT),
    ("`-1,234.5`", DEPTH, F(-2469, 2), BT),
    ("`1834.5`", DEPTH, F(3669, 2), BT),
    ("`1834.0`", DEPTH, 1834, BT),  # whole decimals become ints
    ("`.5` m", DEPTH, 500, BT),
    # units: after the closing backtick, inside the span, glued, long forms, any case
    ("`1.5` m", DEPTH, 1500, BT),
    ("`1.5`m", DEPTH, 1500, BT),
    ("`1.5 m`", DEPTH, 1500, BT),
    ("`1.5m`", DEPTH, 1500, BT),
    ("`1.5` metres", DEPTH, 1500, BT),
    ("`1.5` meters", DEPTH, 1500, BT),
    ("`2` metre", DEPTH, 2000, BT),
    ("`2` Meter.", DEPTH, 2000, BT),
    ("`12` cm", DEPTH, 120, BT),
    ("`12.5` centimetres", DEPTH, 125, BT),
    ("`12.5` centimeters", DEPTH, 125, BT),
    ("`0.25` cm", DEPTH, F(5, 2), BT),
    ("`7` millimetres", DEPTH, 7, BT),
    ("`7` millimeter", DEPTH, 7, BT),
    ("`1834` MM", DEPTH, 1834, BT),
    ("`1.2345` m", DEPTH, F(2469, 2), BT),
    ("`1834` m", DEPTH, 1834000, BT),
    ("`1.5 m` mm", DEPTH, 1500, BT),  # a unit inside the span wins over one after it
    ("`5` more or less", DEPTH, 5, BT),  # "more" is not "m"
    ("`5` minutes", DEPTH, 5, BT),
    # several spans: the last parsable one wins; later unparsable spans are ignored
    ("`1000`, no wait: `1500`", DEPTH, 1500, BT),
    ("`1500` and then `abc`", DEPTH, 1500, BT),
    ("first `12` then `[1, 2, 3]`", DEPTH, 12, BT),
    ("`1.5` m or `1400` mm", DEPTH, 1400, BT),
    # fallback: no span parses
    ("The depth is 1834 mm.", DEPTH, 1834, FB),
    ("about 1,834 millimetres", DEPTH, 1834, FB),
    ("roughly 1.8 m, i.e. 1800 mm", DEPTH, 1800, FB),
    ("roughly 1800 mm, i.e. 1.8 m", DEPTH, 1800, FB),
    ("It is \u22121,234.5 mm away", DEPTH, F(-2469, 2), FB),
    ("The 3D point in Image-2 is 2.5 m deep", DEPTH, 2500, FB),
    ("The 5th point: 300mm", DEPTH, 300, FB),
    ("between 5-10 mm", DEPTH, 10, FB),  # a dash after a digit is a range, not a sign
    ("`about 2 m`", DEPTH, 2000, FB),  # the span does not parse, the fallback does
    ("Depth:\n\n1834\n", DEPTH, 1834, FB),
    ("```\n1834\n```", DEPTH, 1834, FB),  # a fence is not a single-backtick span
    # degree subtasks: bare numbers are degrees, degree units accepted, lengths refused
    ("`30` degrees", YAW, 30, BT),
    ("`30°`", YAW, 30, BT),
    ("`45.5`", YAW, F(91, 2), BT),
    ("It turned by 30 deg.", YAW, 30, FB),
    ("It turned 30 degrees, not 2 m", YAW, 30, FB),
]

# (response, subtask, expected reason)
SCALAR_FAILURES = [
    ("", DEPTH, "empty"),
    ("   \n\t", DEPTH, "empty"),
    (None, DEPTH, "empty"),
    ("I don't know.", DEPTH, "no_match"),
    ("Image-2 shows it.", DEPTH, "no_match"),  # the tail of a hyphenated word is no number
    ("1.5e3 mm", DEPTH, "no_match"),  # no exponents, and no wrong piece of one
    ("`n/a`", DEPTH, "no_backtick_match"),
    ("`30` degrees", DEPTH, "no_backtick_match"),  # degrees on a length subtask
    ("`30` m", YAW, "no_backtick_match"),  # a length on a degree subtask
    ("x2 and 5th and 3D", DEPTH, "no_match"),
]

VECTOR_CASES = [
    ("`[ 12 , -40 , 300 ]`", VEC, (12, -40, 300), BT),
    ("It moved `[ 12 , -40 , 300 ]` mm.", VEC, (12, -40, 300), BT),
    ("`[12,-40,300]`", VEC, (12, -40, 300), BT),
    ("`(12, -40, 300)`", VEC, (12, -40, 300), BT),
    ("`12, -40, 300`", VEC, (12, -40, 300), BT),
    ("`[ \u221212 , 40 , +300 ]`", VEC, (-12, 40, 300), BT),
    ("`[ 1,234 , -40 , 300 ]`", VEC, (1234, -40, 300), BT),  # thousands only when needed
    ("`[1,234,567]`", VEC, (1, 234, 567), BT),  # commas are separators first
    ("`[ -1,234.5 , 0 , 2,000 ]`", VEC, (F(-2469, 2), 0, 2000), BT),
    ("`[ 12.5 , -40 , 300 ]`", VEC, (F(25, 2), -40, 300), BT),
    ("`[ 0.1 , -0.2 , 1.5 ]` m", VEC, (100, -200, 1500), BT),
    ("`[ 0.1 , -0.2 , 1.5 ] m`", VEC, (100, -200, 1500), BT),
    ("`[0.1 m, -20 cm, 1500 mm]`", VEC, (100, -200, 1500), BT),
    ("`[0.1 m, -20, 15]` cm", VEC, (100, -200, 150), BT),  # own units win over the tail unit
    ("`1.2, 0.3, -0.5 m`", VEC, (1200, 300, -500), BT),  # bare: the last unit applies to all
    ("`[ 0 , 0 , 0 ]`", OBJ_VEC, (0, 0, 0), BT),
    ("`[1, 2, 3]` and `[4, 5, 6]`", VEC, (4, 5, 6), BT),
    ("`[4, 5, 6]` then `[oops]`", VEC, (4, 5, 6), BT),
    ("The camera moved by [12, -40, 300] mm.", VEC, (12, -40, 300), FB),
    ("(0.1, 0.2, 0.3) m", VEC, (100, 200, 300), FB),
    ("(0.1, 0.2, 0.3)` m", VEC, (100, 200, 300), FB),
    ("first [1, 2, 3] then [4, 5, 6]", VEC, (4, 5, 6), FB),
    ("[4, 5, 6] and then (1, 2)", VEC, (4, 5, 6), FB),
    ("([7, 8, 9])", VEC, (7, 8, 9), FB),
]

VECTOR_FAILURES = [
    ("`[1, 2]`", VEC, "no_backtick_match"),
    ("`[1, 2, 3, 4]`", VEC, "no_backtick_match"),
    ("It moved 12 mm right", VEC, "no_match"),
    ("`[30, 40, 50]` degrees", VEC, "no_backtick_match"),
    ("", VEC, "empty"),
]

COORD_CASES = [
    ("`[ 412 , 655 ]`", CORR, (412, 655), BT),
    ("It is at `[412,655]`.", CORR, (412, 655), BT),
    ("`(412, 655)`", CORR, (412, 655), BT),
    ("`412, 655`", CORR, (412, 655), BT),
    ("`[ 412.5 , 655 ]`", CORR, (F(825, 2), 655), BT),
    ("`[ 412 , 655 ]` px", CORR, (412, 655), BT),  # text after the bracket is ignored
    ("`[ 0 , 999 ]`", "depth_comparison_coord", (0, 999), BT),
    ("The point is at [ 412 , 655 ].", CORR, (412, 655), FB),
    ("from (10, 20) to (412, 655)", CORR, (412, 655), FB),
    ("(412, 655) and [1, 2, 3]", CORR, (412, 655), FB),
]

COORD_FAILURES = [
    ("`[ 412 , 655 , 1 ]`", CORR, "no_backtick_match"),
    ("`[412 px, 655 px]`", CORR, "no_backtick_match"),
    ("x = 412, y = 655", CORR, "no_match"),
    (" ", CORR, "empty"),
]

LABEL_CASES = [
    ("`left`", XDIR, "left", BT),
    ("`Left`", XDIR, "left", BT),
    ("`RIGHT`", XDIR, "right", BT),
    ("`left.`", XDIR, "left", BT),
    ("The camera moved to the `right`.", XDIR, "right", BT),
    ("`Forward`", ZDIR, "forward", BT),
    ("The camera moved to the left.", XDIR, "left", FB),
    ("Left or right? It went RIGHT", XDIR, "right", FB),
    ("`to the left`", XDIR, "left", FB),
    ("It moved down.", "camera_y_direction", "down", FB),
    ("pitched Up", "camera_pitch_direction", "up", FB),
]

LABEL_FAILURES = [
    ("leftover rightmost", XDIR, "no_match"),  # whole words only
    ("`up`", XDIR, "no_backtick_match"),  # not an allowed word of this subtask
    ("It moved backwards", ZDIR, "no_match"),  # "backwards" is not the word "backward"
    ("", XDIR, "empty"),
]

CHOICE_CASES = [
    ("`B`", MCQ, "B", BT),
    ("`b`", MCQ, "B", BT),
    ("`(C)`", MCQ, "C", BT),
    ("`D.`", MCQ, "D", BT),
    ("`Option d`", MCQ, "D", BT),
    ("`A` looks close but `B` is right", DCMP, "B", BT),
    ("The answer is (C).", MCQ, "C", FB),
    ("(A) is plausible, but B is correct", MCQ, "A", FB),  # "(X)" first, then keywords...
    ("option b? no: Option C", MCQ, "C", FB),  # keyword form: upper-case letters only
    ("Answer: D", MCQ, "D", FB),
    ("the answer is: B", MCQ, "B", FB),
    ("Point A is closer to the camera.", DCMP, "A", FB),
    ("I pick B.", DCMP, "B", FB),  # "I" is no allowed letter
    ("`E`, so D", MCQ, "D", FB),
]

CHOICE_FAILURES = [
    ("C", DCMP, "no_match"),  # C is not an option of depth comparison
    ("options A-D", MCQ, "no_match"),
    ("It's B's dot", MCQ, "no_match"),
    ("`E`", MCQ, "no_backtick_match"),
    ("the answer is b", MCQ, "no_match"),
    ("", MCQ, "empty"),
]


def _check_case(response: str, subtask: str, value: object, source: str) -> None:
    parsed = parse_answer(response, SUBTASKS[subtask].answer_type, subtask)
    assert parsed == ParsedAnswer(value, None, source), (response, parsed)
    assert type(parsed.value) is type(value)
    if isinstance(value, tuple):
        assert [type(v) for v in parsed.value] == [type(v) for v in value]  # type: ignore[union-attr]


def _check_failure(response: str | None, subtask: str, reason: str) -> None:
    parsed = parse_answer(response, SUBTASKS[subtask].answer_type, subtask)
    assert parsed == ParsedAnswer(None, reason, None), (response, parsed)
    assert not parsed.ok


@pytest.mark.parametrize(("response", "subtask", "value", "source"), SCALAR_CASES)
def test_scalar(response: str, subtask: str, value: object, source: str) -> None:
    _check_case(response, subtask, value, source)


@pytest.mark.parametrize(("response", "subtask", "reason"), SCALAR_FAILURES)
def test_scalar_failures(response: str | None, subtask: str, reason: str) -> None:
    _check_failure(response, subtask, reason)


@pytest.mark.parametrize(("response", "subtask", "value", "source"), VECTOR_CASES)
def test_vector(response: str, subtask: str, value: object, source: str) -> None:
    _check_case(response, subtask, value, source)


@pytest.mark.parametrize(("response", "subtask", "reason"), VECTOR_FAILURES)
def test_vector_failures(response: str, subtask: str, reason: str) -> None:
    _check_failure(response, subtask, reason)


@pytest.mark.parametrize(("response", "subtask", "value", "source"), COORD_CASES)
def test_coord(response: str, subtask: str, value: object, source: str) -> None:
    _check_case(response, subtask, value, source)


@pytest.mark.parametrize(("response", "subtask", "reason"), COORD_FAILURES)
def test_coord_failures(response: str, subtask: str, reason: str) -> None:
    _check_failure(response, subtask, reason)


@pytest.mark.parametrize(("response", "subtask", "value", "source"), LABEL_CASES)
def test_label(response: str, subtask: str, value: object, source: str) -> None:
    _check_case(response, subtask, value, source)


@pytest.mark.parametrize(("response", "subtask", "reason"), LABEL_FAILURES)
def test_label_failures(response: str, subtask: str, reason: str) -> None:
    _check_failure(response, subtask, reason)


@pytest.mark.parametrize(("response", "subtask", "value", "source"), CHOICE_CASES)
def test_choice(response: str, subtask: str, value: object, source: str) -> None:
    _check_case(response, subtask, value, source)


@pytest.mark.parametrize(("response", "subtask", "reason"), CHOICE_FAILURES)
def test_choice_failures(response: str, subtask: str, reason: str) -> None:
    _check_failure(response, subtask, reason)


def test_parse_number_is_exact() -> None:
    assert parse_number("0.1") == F(1, 10)
    assert parse_number("0.1") + parse_number("0.2") == parse_number("0.3")
    assert parse_number("\u22122,000") == -2000
    assert type(parse_number("3.000")) is int


def test_wrong_answer_type_or_subtask_is_refused() -> None:
    with pytest.raises(ValueError, match="answer_type"):
        parse_answer("`1`", "vector", DEPTH)
    with pytest.raises(ValueError, match="unknown subtask"):
        parse_answer("`1`", "scalar", "depth_estimation")


# ------------------------------------------------------------------------------- round trip

_FIELDS = {
    "marker": "red",
    "point": format_coord(412, 655),
    "point_a": format_coord(10, 20),
    "point_b": format_coord(900, 800),
    "label": "office chair",
    "object_a": "sofa",
    "object_b": "desk",
    "object_c": "trash can",
    "target": "bookshelf",
    "options": "A. sofa; B. desk; C. trash can; D. bed",
}
_GTS = {
    "scalar": [1834, 7, 120000, 3, 45],
    "vector": [[12, -40, 300], [-1234, 5, -99999], [0, 1, 0]],
    "coord": [[0, 0], [412, 655], [999, 999], [5, 998]],
}


def _gt_values(subtask: str, variant: str | None) -> list[object]:
    spec = SUBTASKS[subtask]
    if variant == "static":
        return [0] if spec.answer_type == "scalar" else [[0, 0, 0]]
    if spec.answer_type in ("label", "choice"):
        return list(spec.options)
    return list(_GTS[spec.answer_type])


def _expected(gt: object) -> object:
    return tuple(gt) if isinstance(gt, list) else gt


@pytest.mark.parametrize("subtask", list(SUBTASKS))
def test_round_trip_every_answer_phrasing(subtask: str) -> None:
    """Every answer template × sample gts: format_answer → render → parse gives gt back,
    through the backtick span and, with the backticks removed, through the fallback."""
    spec = SUBTASKS[subtask]
    compiled = compiled_templates(subtask)
    fields = {name: _FIELDS[name] for name in spec.fields}
    checked = 0
    for variant in spec.variants:
        answers = compiled.sizes(variant)[2]
        for gt in _gt_values(subtask, variant):
            text = format_answer(spec.answer_type, gt)
            for index in range(answers):
                _, gpt = compiled.render((0, 0, index), {**fields, "answer": text}, variant)
                parsed = parse_answer(gpt, spec.answer_type, subtask)
                assert parsed == ParsedAnswer(_expected(gt), None, "backtick"), gpt
                bare = parse_answer(gpt.replace("`", ""), spec.answer_type, subtask)
                assert bare == ParsedAnswer(_expected(gt), None, "fallback"), gpt
                checked += 1
    assert checked >= 10


def test_round_trip_render_prompt_random_draws() -> None:
    """render_prompt (the generator's entry point) with random gts, for every subtask."""
    rng = np.random.default_rng(7)
    for subtask, spec in SUBTASKS.items():
        fields = {name: _FIELDS[name] for name in spec.fields}
        for _ in range(20):
            variant = spec.variants[int(rng.integers(len(spec.variants)))]
            if spec.answer_type == "scalar":
                gt: object = 0 if variant == "static" else int(rng.integers(1, 200_000))
            elif spec.answer_type == "vector":
                gt = [0, 0, 0] if variant == "static" else rng.integers(-9999, 9999, 3).tolist()
            elif spec.answer_type == "coord":
                gt = rng.integers(0, 1000, 2).tolist()
            else:
                gt = spec.options[int(rng.integers(len(spec.options)))]
            rendered = render_prompt(
                subtask, rng=rng, fields={**fields, "answer": format_answer(spec.answer_type, gt)},
                variant=variant, num_images=spec.num_images,
            )
            parsed = parse_answer(rendered.gpt, spec.answer_type, subtask)
            assert parsed.value == _expected(gt), rendered.gpt

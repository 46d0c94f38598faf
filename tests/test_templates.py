"""Prompt/answer templates and answer formatting (docs/labels.md#prompts, #templates;
docs/metrics.md#answer-extraction)."""

from __future__ import annotations

import hashlib
import re
import string
from importlib import resources

import numpy as np
import pytest

from multispa.errors import ConfigError
from multispa.tasks import answers
from multispa.tasks.answers import (
    backticked,
    format_answer,
    format_coord,
    format_scalar,
    format_value,
    format_vector,
    metres_to_mm,
    metres_to_mm_vector,
    round_half_away,
)
from multispa.tasks.templates import (
    BENCHMARK_SUBTASKS,
    FAMILIES,
    NVIEW_SUBTASKS,
    SUBTASKS,
    compiled_templates,
    load_templates,
    normalise_text,
    parse_templates,
    render_prompt,
    render_with_indices,
    template_set,
    templates_digest,
)

# The subtask table (docs/labels.md#subtasks), written out independently of the module's table.
EXPECTED = {
    "depth_estimation_dot": ("depth", "scalar", 1),
    "depth_estimation_coord": ("depth", "scalar", 1),
    "depth_comparison_dot": ("depth", "choice", 1),
    "depth_comparison_coord": ("depth", "coord", 1),
    "correspondence_mcq_dot": ("correspondence", "choice", 2),
    "correspondence_coord": ("correspondence", "coord", 2),
    "camera_x_direction": ("camera_movement", "label", 2),
    "camera_y_direction": ("camera_movement", "label", 2),
    "camera_z_direction": ("camera_movement", "label", 2),
    "camera_yaw_direction": ("camera_movement", "label", 2),
    "camera_pitch_direction": ("camera_movement", "label", 2),
    "camera_yaw_degree": ("camera_movement", "scalar", 2),
    "camera_pitch_degree": ("camera_movement", "scalar", 2),
    "camera_translation_distance": ("camera_movement", "scalar", 2),
    "camera_translation_vector": ("camera_movement", "vector", 2),
    "object_movement_distance_coord": ("object_movement", "scalar", 2),
    "object_movement_distance_dot": ("object_movement", "scalar", 2),
    "object_movement_vector_coord": ("object_movement", "vector", 2),
    "object_movement_vector_dot": ("object_movement", "vector", 2),
    "object_size_height": ("object_size", "scalar", 2),
    "object_size_width": ("object_size", "scalar", 2),
    "object_size_length": ("object_size", "scalar", 2),
    # N-view: a view set of 2–32 images (default 8).
    "nview_object_count": ("nview", "scalar", 8),
    "nview_object_abs_distance": ("nview", "scalar", 8),
    "nview_object_rel_distance": ("nview", "choice", 8),
    "nview_rel_direction_easy": ("nview", "label", 8),
    "nview_rel_direction_medium": ("nview", "label", 8),
    "nview_rel_direction_hard": ("nview", "label", 8),
    "nview_appearance_order": ("nview", "choice", 8),
    "nview_camera_path_length": ("nview", "scalar", 8),
    "nview_nearest_view": ("nview", "label", 8),
}
DIRECTION_WORDS = {
    "camera_x_direction": ("left", "right"),
    "camera_y_direction": ("up", "down"),
    "camera_z_direction": ("forward", "backward"),
    "camera_yaw_direction": ("left", "right"),
    "camera_pitch_direction": ("up", "down"),
    "nview_rel_direction_easy": ("left", "right"),
    "nview_rel_direction_medium": ("left", "right", "back"),
    "nview_rel_direction_hard": ("front-left", "front-right", "back-left", "back-right"),
}
SAMPLE_FIELDS = {
    "point": "[ 412 , 655 ]",
    "point_a": "[ 101 , 202 ]",
    "point_b": "[ 707 , 808 ]",
    "marker": "red",
    "label": "office chair",
    "object_a": "sofa",
    "object_b": "desk",
    "object_c": "trash can",
    "target": "bookshelf",
    "options": "A. sofa; B. desk; C. trash can; D. bed",
}
SAMPLE_GTS = {
    "choice": ["B"],
    "scalar": [1834, -45],
    "vector": [[12, -40, 300]],
    "coord": [[412, 655]],
}
EXPECTED_TEXT = {"B": "B", 1834: "1834", -45: "-45"}
MM_WORDS = ("mm", "millimetre", "millimetres", "millimeter", "millimeters")


def _word(text: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


def _prefix(num_images: int) -> str:
    """The image prefix written out: ``<image>`` alone, else one ``Image-k:`` line each."""
    if num_images == 1:
        return "<image>\n"
    return "".join(f"Image-{k}: <image>\n" for k in range(1, num_images + 1))


def _variants(name: str) -> list[str | None]:
    return list(SUBTASKS[name].variants)


def _fields(name: str, answer: str = "`0`") -> dict[str, str]:
    fields = {key: SAMPLE_FIELDS[key] for key in SUBTASKS[name].fields}
    fields["answer"] = answer
    return fields


def _gts(name: str) -> list[object]:
    spec = SUBTASKS[name]
    if spec.answer_type == "label":
        return list(spec.options_for(spec.num_images))
    return SAMPLE_GTS[spec.answer_type]


# ------------------------------------------------------------------------------ answers.py


def test_round_half_away_differs_from_python_round_on_halves() -> None:
    cases = {0.5: 1, -0.5: -1, 2.5: 3, -2.5: -3, 1.4999: 1, -1.4999: -1, 1.5: 2, 0.0: 0}
    for x, expected in cases.items():
        assert round_half_away(x) == expected
        assert type(round_half_away(x)) is int
    assert [round(v) for v in (0.5, -0.5, 2.5, -2.5)] == [0, 0, 2, -2]  # half to even


def test_metric_conversions_round_half_away() -> None:
    assert metres_to_mm(1.8345) == 1835  # 1834.5 exactly in binary
    assert metres_to_mm(-0.0445) == -45  # -44.5
    assert metres_to_mm(0.0625) == 63
    assert metres_to_mm_vector(np.array([0.0125, -0.0405, 0.3])) == [13, -41, 300]
    assert answers.degrees_to_int(-12.5) == -13
    with pytest.raises(ValueError, match=r"\(3,\)"):
        metres_to_mm_vector([1.0, 2.0])


def test_formatters_write_spec_spacing() -> None:
    assert format_scalar(1834) == "1834"
    assert format_scalar(-45) == "-45"
    assert format_scalar(np.int64(7)) == "7"
    assert format_coord(412, 655) == "[ 412 , 655 ]"
    assert format_coord(0, 999) == "[ 0 , 999 ]"
    assert format_vector([12, -40, 300]) == "[ 12 , -40 , 300 ]"
    assert format_vector(np.array([0, 0, 0])) == "[ 0 , 0 , 0 ]"
    assert backticked("left") == "`left`"
    assert format_answer("label", "Left") == "`left`"
    assert format_answer("choice", "b") == "`B`"
    assert format_answer("scalar", -45) == "`-45`"
    assert format_answer("vector", (12, -40, 300)) == "`[ 12 , -40 , 300 ]`"
    assert format_answer("coord", [412, 655]) == "`[ 412 , 655 ]`"
    assert format_value("coord", np.array([3, 4])) == "[ 3 , 4 ]"


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: format_scalar(1.5), TypeError),
        (lambda: format_scalar(True), TypeError),
        (lambda: format_coord(1000, 5), ValueError),
        (lambda: format_coord(-1, 5), ValueError),
        (lambda: format_vector([1, 2]), ValueError),
        (lambda: format_vector([1.0, 2, 3]), TypeError),
        (lambda: backticked("a`b"), ValueError),
        (lambda: backticked(""), ValueError),
        (lambda: format_answer("label", "left!"), ValueError),
        (lambda: format_answer("choice", "AB"), ValueError),
        (lambda: format_answer("coord", [1, 2, 3]), ValueError),
        (lambda: format_answer("number", 3), ValueError),
    ],
)
def test_formatters_refuse_bad_values(call, error) -> None:
    with pytest.raises(error):
        call()


# ----------------------------------------------------------------------------- subtask table


def test_subtask_table_matches_spec() -> None:
    assert list(SUBTASKS) == list(EXPECTED)
    for name, (family, answer_type, images) in EXPECTED.items():
        spec = SUBTASKS[name]
        assert (spec.family, spec.answer_type, spec.num_images) == (family, answer_type, images)
    assert len(SUBTASKS) == 31
    assert len(BENCHMARK_SUBTASKS) == 35  # the paper's 26 and the nine N-view keys
    assert "object_movement_vector_dot:pstudio" in BENCHMARK_SUBTASKS
    assert tuple(name for name in EXPECTED if name.startswith("nview_")) == NVIEW_SUBTASKS
    for name in SUBTASKS:
        low_high = (2, 32) if name in NVIEW_SUBTASKS else (EXPECTED[name][2],) * 2
        assert SUBTASKS[name].image_range == low_high, name
    assert SUBTASKS["nview_nearest_view"].numbered
    assert SUBTASKS["nview_nearest_view"].options_for(5) == ("1", "2", "3", "4", "5")
    assert SUBTASKS["nview_object_count"].unit == "count"
    for name, words in DIRECTION_WORDS.items():
        assert SUBTASKS[name].options == words
    assert SUBTASKS["correspondence_mcq_dot"].options == ("A", "B", "C", "D")
    assert SUBTASKS["camera_yaw_degree"].unit == "degrees"
    assert SUBTASKS["object_size_width"].unit == "mm"


# ------------------------------------------------------------------------ counts and variety


def test_counts_per_subtask() -> None:
    for name in SUBTASKS:
        ts = template_set(name)
        assert len(ts.descriptions) >= 10, name
        for variant in _variants(name):
            assert len(ts.questions_for(variant)) >= 15, (name, variant)
            assert len(ts.answers_for(variant)) >= 10, (name, variant)
    for name in ("depth_comparison_dot", "depth_comparison_coord"):
        assert set(template_set(name).questions) == {"closer", "farther"}
        assert set(template_set(name).answers) == {"closer", "farther"}
    for name in SUBTASKS:
        if name.startswith("object_movement"):
            assert len(template_set(name).answers["static"]) >= 10


def test_lists_are_distinct_after_normalisation() -> None:
    assert normalise_text("  Which  POINT\tis closer? ") == "which point is closer?"
    for name in SUBTASKS:
        ts = template_set(name)
        lists = [ts.descriptions, *ts.questions.values(), *ts.answers.values()]
        for items in lists:
            keys = [normalise_text(t) for t in items]
            assert len(set(keys)) == len(keys), name
        if "closer" in ts.questions:
            for kind in (ts.questions, ts.answers):
                closer = {normalise_text(t) for t in kind["closer"]}
                assert not closer & {normalise_text(t) for t in kind["farther"]}, name


def test_sibling_subtasks_share_only_declared_lists() -> None:
    # A phrasing appears in two subtasks only when both use the same shared list object.
    owners: dict[str, set[str]] = {}
    for name in SUBTASKS:
        ts = template_set(name)
        for items in (ts.descriptions, *ts.questions.values(), *ts.answers.values()):
            for text in items:
                owners.setdefault(normalise_text(text), set()).add(name)
    shared = {k: v for k, v in owners.items() if len(v) > 1}
    for owners_of_text in shared.values():
        assert len({SUBTASKS[n].family for n in owners_of_text}) == 1
    # Direction answers of x and y differ, and so do closer/farther lists (checked above).
    x_answers = set(map(normalise_text, template_set("camera_x_direction").answers["default"]))
    y_answers = set(map(normalise_text, template_set("camera_y_direction").answers["default"]))
    assert not x_answers & y_answers


def test_template_files_contain_no_backticks_and_are_package_data() -> None:
    for family in FAMILIES:
        resource = resources.files("multispa.tasks") / "templates" / f"{family}.yaml"
        raw = resource.read_bytes()
        assert b"`" not in raw, family
        assert load_templates(family).sha256 == hashlib.sha256(raw).hexdigest()


# ------------------------------------------------------------------------------ placeholders


def test_placeholders_are_exactly_the_declared_ones() -> None:
    for name in SUBTASKS:
        spec, ts = SUBTASKS[name], template_set(name)
        prompt_ids: set[str] = set()
        answer_ids: set[str] = set()
        prompts = [*ts.descriptions, *(q for qs in ts.questions.values() for q in qs)]
        for text in prompts:
            ids = string.Template(text).get_identifiers()
            assert "answer" not in ids, (name, text)
            assert set(ids) <= set(ts.notes) | set(spec.fields), (name, text)
            prompt_ids |= set(ids)
        for text in (a for answer_list in ts.answers.values() for a in answer_list):
            assert text.count("${answer}") == 1, (name, text)
            ids = string.Template(text).get_identifiers()
            assert set(ids) <= {"answer", *spec.fields}, (name, text)
            assert not set(ids) & set(ts.notes), (name, text)
            answer_ids |= set(ids)
        used_fields = (prompt_ids | answer_ids) - set(ts.notes) - {"answer"}
        assert used_fields == set(spec.fields), name
        assert set(spec.notes) <= prompt_ids, name


# ------------------------------------------------------------------ required prompt content


def _required_checks(name: str) -> list[tuple[str, tuple[str, ...]]]:
    """(what, alternatives) that every description+question combination must contain."""
    spec = SUBTASKS[name]
    checks: list[tuple[str, tuple[str, ...]]] = []
    coordinate = name.endswith("_coord")
    vector = spec.answer_type == "vector"
    if coordinate:
        checks += [("coord", (w,)) for w in ("[ x , y ]", "1000", "top-left", "[ 0 , 0 ]")]
        checks += [("coord", ("width",)), ("coord", ("height",)), ("coord", ("integer",))]
    if vector:
        checks += [("axes", (w,)) for w in ("+X", "+Y", "+Z", "right", "down", "forward")]
        checks += [("axes", ("first image", "first camera")), ("axes", MM_WORDS)]
        checks += [("form", ("[ x , y , z ]",))]
    if spec.family in ("camera_movement", "object_size"):
        checks += [("static", ("static", "does not change", "nothing in it changes"))]
    if spec.family == "nview":
        checks += [("static", ("static scene",)), ("order", ("order the camera captured",))]
        checks += [{
            "nview_object_count": ("once", ("counts once",)),
            "nview_object_abs_distance": ("distance", ("closest points",)),
            "nview_object_rel_distance": ("distance", ("closest points",)),
            "nview_appearance_order": ("first", ("first appears",)),
            "nview_camera_path_length": ("path", ("straight segment",)),
            "nview_nearest_view": ("camera", ("camera centre",)),
        }.get(name, ("floor plan", ("floor plan",)))]
    if spec.family == "camera_movement":
        checks += [("relative", ("camera of the first image",))]
    if spec.family == "object_movement":
        checks += [("dynamic", ("objects, the camera, or both",))]
    if "yaw" in name:
        checks += [("yaw", ("yaw",)), ("yaw", ("vertical (gravity) axis",))]
    if "pitch" in name:
        checks += [("pitch", ("pitch",)), ("pitch", ("tilt",)), ("pitch", ("viewing direction",))]
    if name.startswith("depth_estimation"):
        checks += [("depth", ("viewing axis",)), ("depth", ("not the straight-line range",))]
    if spec.unit == "mm":
        checks += [("unit", MM_WORDS)]
    if spec.unit == "degrees":
        checks += [("unit", ("degrees",))]
    if name.startswith("object_size"):
        dim = name.rsplit("_", 1)[1]
        definition = {
            "height": "vertical extent",
            "length": "longer horizontal side",
            "width": "shorter horizontal side",
        }[dim]
        checks += [
            ("label", (SAMPLE_FIELDS["label"],)),
            ("all images", ("use all images",)),
            ("dimension", (f"{dim} means the {definition}",)),
        ]
    for field in spec.shown_fields:
        checks += [("field", (SAMPLE_FIELDS[field],))]
    return checks


def test_every_description_question_pair_carries_required_information() -> None:
    for name in SUBTASKS:
        ts, checks = template_set(name), _required_checks(name)
        for variant in _variants(name):
            questions = ts.questions_for(variant)
            for i in range(len(ts.descriptions)):
                for j in range(len(questions)):
                    human = render_with_indices(
                        name,
                        indices={"description": i, "question": j, "answer": 0},
                        fields=_fields(name),
                        variant=variant,
                        num_images=ts.spec.num_images,
                    ).human
                    for what, alternatives in checks:
                        assert any(_word(human, w) for w in alternatives), (name, i, j, what)
                    for note in ts.spec.notes:
                        assert ts.notes[note] in human, (name, i, j, note)


def test_every_question_states_answer_form_and_unit() -> None:
    for name in SUBTASKS:
        spec, ts = SUBTASKS[name], template_set(name)
        for question in (q for qs in ts.questions.values() for q in qs):
            bare = re.sub(r"\$\{[^}]*\}", " ", question)
            if spec.unit == "mm":
                assert any(_word(bare, w) for w in MM_WORDS), (name, question)
            if spec.unit == "degrees":
                assert _word(bare, "degrees"), (name, question)
            if spec.answer_type == "vector":
                assert "[ x , y , z ]" in bare, (name, question)
            if spec.answer_type == "coord":
                assert "[ x , y ]" in bare, (name, question)
            if spec.answer_type == "choice":
                for letter in spec.options:
                    assert re.search(rf"\b{letter}\b", bare), (name, question)
            for word in DIRECTION_WORDS.get(name, ()):
                assert _word(bare, word), (name, question)
            if spec.unit == "count":
                assert _word(bare, "how many") or _word(bare, "number"), (name, question)
            if spec.numbered:
                assert _word(bare, "image") and _word(bare, "number"), (name, question)


# ------------------------------------------------------------------------------- rendering


def test_every_answer_renders_one_backtick_span_equal_to_the_formatted_gt() -> None:
    for name in SUBTASKS:
        spec, ts = SUBTASKS[name], template_set(name)
        for variant in _variants(name):
            gts = _gts(name)
            if variant == "static":
                gts = [0] if spec.answer_type == "scalar" else [[0, 0, 0]]
            for k in range(len(ts.answers_for(variant))):
                for gt in gts:
                    rendered = render_with_indices(
                        name,
                        indices={"description": 0, "question": 0, "answer": k},
                        fields=_fields(name, format_answer(spec.answer_type, gt)),
                        variant=variant,
                        num_images=spec.num_images,
                    )
                    spans = re.findall(r"`([^`]*)`", rendered.gpt)
                    assert rendered.gpt.count("`") == 2, (name, k, rendered.gpt)
                    expected = EXPECTED_TEXT.get(gt) if isinstance(gt, (int, str)) else None
                    if isinstance(gt, list):
                        inner = " , ".join(str(v) for v in gt)
                        expected = f"[ {inner} ]"
                    expected = expected or str(gt)
                    assert spans == [expected], (name, k, rendered.gpt)
                    if spec.unit == "mm":
                        assert any(_word(rendered.gpt, w) for w in MM_WORDS), rendered.gpt
                    if spec.unit == "degrees":
                        assert _word(rendered.gpt, "degrees"), rendered.gpt
                    outside = rendered.gpt.replace(f"`{expected}`", " ")
                    assert not re.search(r"\d", outside), (name, rendered.gpt)
                    for word in spec.options:
                        assert not re.search(rf"\b{word}\b", outside), (name, rendered.gpt)


def test_static_answers_open_by_saying_the_point_stayed() -> None:
    stay = (
        "stayed",
        "did not move",
        "stationary",
        "remained",
        "held still",
        "no movement",
        "kept its position",
        "did not change position",
        "remained static",
    )
    for name in SUBTASKS:
        if name.startswith("object_movement"):
            for text in template_set(name).answers["static"]:
                first_sentence = text.split(".")[0].lower()
                assert any(word in first_sentence for word in stay), text
                assert "${answer}" not in first_sentence


def test_human_turn_layout() -> None:
    for name in SUBTASKS:
        spec = SUBTASKS[name]
        prefix = _prefix(spec.num_images)
        rendered = render_with_indices(
            name,
            indices={"description": 1, "question": 2, "answer": 3},
            fields=_fields(name, format_answer(spec.answer_type, _gts(name)[0])),
            variant=spec.variants[0],
            num_images=spec.num_images,
        )
        ts = template_set(name)
        values = {**ts.notes, **_fields(name)}
        description = string.Template(ts.descriptions[1]).substitute(values)
        question = string.Template(ts.questions_for(spec.variants[0])[2]).substitute(values)
        assert rendered.human == f"{prefix}{description}\n{question}"
        assert rendered.human.count("<image>") == spec.num_images
        assert rendered.human[len(prefix) :].count("\n") == 1
        assert "`" not in rendered.human and "$" not in rendered.human
        assert "  " not in rendered.human
        assert rendered.indices == {"description": 1, "question": 2, "answer": 3}


def test_compiled_render_equals_template_substitution() -> None:
    """Every template of every subtask and variant renders as ``string.Template`` would."""
    for name, spec in SUBTASKS.items():
        ts = template_set(name)
        compiled = compiled_templates(name)
        prefix = _prefix(spec.num_images)
        fields = _fields(name, "`7`")
        values = {**ts.notes, **fields}
        for variant in spec.variants:
            descriptions, questions = ts.descriptions, ts.questions_for(variant)
            answers_ = ts.answers_for(variant)
            assert compiled.sizes(variant) == (len(descriptions), len(questions), len(answers_))
            for i, description in enumerate(descriptions):
                for j, question in enumerate(questions):
                    k = (i + j) % len(answers_)
                    human, gpt = compiled.render((i, j, k), fields, variant)
                    assert human == (
                        prefix + string.Template(description).substitute(values) + "\n"
                        + string.Template(question).substitute(values)
                    ), (name, variant, i, j)
                    assert gpt == string.Template(answers_[k]).substitute(fields)
        with pytest.raises(ValueError, match="variant"):
            compiled.sizes("sideways")


def test_render_prompt_is_deterministic_and_draws_in_order() -> None:
    name = "depth_comparison_coord"
    fields = _fields(name, format_answer("coord", [412, 655]))
    first = render_prompt(
        name, rng=np.random.default_rng(11), fields=fields, variant="farther", num_images=1
    )
    second = render_prompt(
        name, rng=np.random.default_rng(11), fields=fields, variant="farther", num_images=1
    )
    assert first == second
    rng = np.random.default_rng(11)
    ts = template_set(name)
    expected = {
        "description": int(rng.integers(len(ts.descriptions))),
        "question": int(rng.integers(len(ts.questions["farther"]))),
        "answer": int(rng.integers(len(ts.answers["farther"]))),
    }
    assert first.indices == expected
    assert all(type(v) is int for v in first.indices.values())
    assert first.human.endswith(
        string.Template(ts.questions["farther"][expected["question"]]).substitute(fields)
    )
    # Exactly three draws are consumed.
    used = np.random.default_rng(11)
    render_prompt(name, rng=used, fields=fields, variant="farther", num_images=1)
    assert used.integers(10**9) == rng.integers(10**9)


def test_render_prompt_covers_all_templates_over_many_draws() -> None:
    name = "camera_x_direction"
    rng = np.random.default_rng(0)
    seen: dict[str, set[int]] = {"description": set(), "question": set(), "answer": set()}
    for _ in range(400):
        out = render_prompt(name, rng=rng, fields=_fields(name, "`left`"), num_images=2)
        for key, index in out.indices.items():
            seen[key].add(index)
    ts = template_set(name)
    assert seen["description"] == set(range(len(ts.descriptions)))
    assert seen["question"] == set(range(len(ts.questions["default"])))
    assert seen["answer"] == set(range(len(ts.answers["default"])))


@pytest.mark.parametrize(
    ("name", "fields", "variant", "num_images", "match"),
    [
        ("camera_x_direction", {"answer": "`left`"}, None, 1, "takes 2 image"),
        ("camera_x_direction", {"answer": "left"}, None, 2, "backticked"),
        ("camera_x_direction", {"answer": "`left`", "marker": "red"}, None, 2, "fields"),
        ("depth_estimation_coord", {"answer": "`12`"}, None, 1, "fields"),
        ("depth_estimation_coord", {"answer": "`12`", "point": "a`b"}, None, 1, "bad value"),
        ("depth_comparison_dot", {"answer": "`A`"}, None, 1, "variant"),
        ("camera_x_direction", {"answer": "`left`"}, "closer", 2, "variant"),
        ("no_such_subtask", {"answer": "`1`"}, None, 2, "unknown subtask"),
    ],
)
def test_render_refuses_bad_calls(name, fields, variant, num_images, match) -> None:
    with pytest.raises(ValueError, match=match):
        render_prompt(
            name,
            rng=np.random.default_rng(0),
            fields=fields,
            variant=variant,
            num_images=num_images,
        )


# ------------------------------------------------------------------------------- validation


FIRST_DOT_DESCRIPTION = (
    "      - The image shows an indoor scene with one ${marker} dot drawn on it."
)


def _family_text(family: str) -> str:
    return (resources.files("multispa.tasks") / "templates" / f"{family}.yaml").read_text("utf-8")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            f"{FIRST_DOT_DESCRIPTION} ${{depth_note}}",
            "      - The image shows an indoor scene with one `${marker}` dot. ${depth_note}",
            ["depth_estimation_dot", "descriptions[0]", "backtick"],
        ),
        (
            f"{FIRST_DOT_DESCRIPTION} ${{depth_note}}",
            FIRST_DOT_DESCRIPTION,
            ["depth_estimation_dot", "descriptions[0] + questions[0]", "depth_note"],
        ),
        (
            "      - What is the depth of the marked point, in millimetres?",
            "      - How deep is the point under the  ${marker}   DOT? Answer with an integer"
            " number of millimetres.",
            ["depth_estimation_dot", "questions[1]", "duplicate of"],
        ),
        (
            "      - The marked point is at a depth of ${answer} mm.",
            "      - The marked point is at a depth of ${value} mm.",
            ["depth_estimation_dot", "answers[0]", "exactly once"],
        ),
        (
            "      - The marked point is at a depth of ${answer} mm.",
            "      - The marked point is at a depth of ${answer}.",
            ["depth_estimation_dot", "answers[0]", "unit"],
        ),
        (
            "      - Estimate the depth at ${point} and give it in mm.",
            "      - Estimate the depth at ${point}.",
            ["depth_estimation_coord", "questions[2]", "answer form"],
        ),
        (
            "      - Report the depth of the marked spot in mm.",
            "      - Report the depth of the ${colour} spot in mm.",
            ["depth_estimation_dot", "questions[6]", "undeclared"],
        ),
        (
            "\n        - Point ${answer} is closer to the camera.",
            "",
            ["depth_comparison_dot", "answers.closer", "at least 10"],
        ),
        (
            "      - The nearer point is ${answer}.",
            "      - The nearer point is ${answer}, not B.",
            ["depth_comparison_dot", "answers.closer[1]", "answer words"],
        ),
        ("family: depth", "family: depth\nfamily: depth", ["duplicate key"]),
        ("family: depth", "family: camera", ["expected 'depth'"]),
    ],
)
def test_invalid_template_text_raises_config_error(old, new, expected) -> None:
    text = _family_text("depth")
    assert old in text
    with pytest.raises(ConfigError) as info:
        parse_templates("depth", text.replace(old, new, 1), source="depth.yaml")
    message = str(info.value)
    assert message.startswith("depth.yaml: ")
    for part in expected:
        assert part in message, message


def test_direction_answer_may_not_repeat_a_direction_word() -> None:
    text = _family_text("camera_movement")
    old = "      - The camera moved to the ${answer}.\n"
    bad = text.replace(old, "      - The camera moved to the ${answer}, not right.\n", 1)
    with pytest.raises(ConfigError, match=r"camera_x_direction: answers\[0\]"):
        parse_templates("camera_movement", bad, source="camera_movement.yaml")


def test_phrase_shared_outside_shared_lists_is_refused() -> None:
    text = _family_text("object_size")
    old = "      - How tall is the ${label}? Answer in millimetres.\n"
    # The width list reuses a height question verbatim: different information, so refused.
    bad = text.replace(
        "      - How wide is the ${label}? Answer in millimetres.\n",
        "      - What is the height of the ${label}, in mm?\n",
        1,
    )
    assert old in text
    with pytest.raises(ConfigError, match="also in"):
        parse_templates("object_size", bad, source="object_size.yaml")


def test_templates_digest_hashes_every_file() -> None:
    digest = hashlib.sha256()
    for family in FAMILIES:
        raw = (resources.files("multispa.tasks") / "templates" / f"{family}.yaml").read_bytes()
        digest.update(f"{family}.yaml\0{len(raw)}\0".encode())
        digest.update(raw)
    assert templates_digest() == digest.hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", templates_digest())
    assert load_templates("depth") is load_templates("depth")  # cached

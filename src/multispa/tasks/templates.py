"""Subtask table and prompt/answer templates: loading, validation, rendering
(docs/labels.md#subtasks, #prompts, #templates).

Templates are package data written for this project, one file per family:
``multispa/tasks/templates/<family>.yaml`` with the keys

- ``family``: the family name, equal to the file name;
- ``notes``: named one-line snippets (coordinate convention, axis convention, static or dynamic
  scene note, yaw/pitch/depth definitions...) that templates place with ``${<name>}``;
- ``shared`` (optional): named template lists used verbatim by sibling subtasks that carry the
  same information; a subtask list written as a string names one of them;
- ``subtasks``: one block per subtask of the family with ``descriptions``, ``questions`` and
  ``answers``; object movement adds ``static_answers``; depth comparison writes ``questions`` and
  ``answers`` as ``{closer: [...], farther: [...]}``; an optional ``notes`` block overrides or adds
  notes for that subtask only (object size's ``dimension_note``).

Placeholders use ``string.Template``, braced form only:

- ``${answer}``: the ground truth, already backticked by
  :func:`multispa.tasks.answers.format_answer`; exactly once in every answer phrasing, nowhere else;
- ``${point}``: a formatted coordinate ``[ 412 , 655 ]`` (coord-referenced subtasks);
- ``${point_a}``, ``${point_b}``: the two coordinates of ``depth_comparison_coord``, in order of
  mention;
- ``${marker}``: the colour word of the drawn query dot, e.g. ``red`` (dot subtasks that name it);
- ``${label}``: the raw object category without article, e.g. ``office chair`` (object size);
- ``${<name>_note}``: a note, in descriptions and questions only.

:data:`SUBTASKS` says, per subtask, which fields the generator must pass (``fields``), which of them
every prompt shows, which notes every description+question combination carries, and keyword groups
that the validator checks on every combination, question and answer. A file that breaks a rule
raises :class:`multispa.errors.ConfigError` naming the file, subtask, list and index.

Rendering (docs/labels.md#prompts): human turn = image prefix + description + ``\\n`` + question;
gpt turn = one answer phrasing. The description, question and answer indices are drawn in that order
with ``rng.integers``; for depth comparison they index the ``closer``/``farther`` lists, for a
static object-movement point the answer index is into ``static_answers``.

Every template is compiled once (:func:`compiled_templates`) into literal chunks with the notes
already in place and the field names between them, so rendering is a join. High-throughput
generators draw the three indices themselves (e.g. :func:`multispa.tasks.records.record_draws`)
and call :meth:`CompiledTemplates.render`; :func:`render_prompt` and :func:`render_with_indices`
check their arguments and render through the same compiled form.
"""

from __future__ import annotations

import functools
import hashlib
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any, NoReturn

import numpy as np
import yaml

from multispa.errors import ConfigError

__all__ = [
    "BENCHMARK_SUBTASKS",
    "DEFAULT_VIEWS",
    "FAMILIES",
    "MAX_VIEWS",
    "MIN_VIEWS",
    "NVIEW_SUBTASKS",
    "SUBTASKS",
    "CompiledTemplates",
    "FamilyTemplates",
    "RenderedPrompt",
    "SubtaskSpec",
    "TemplateSet",
    "compiled_templates",
    "fill_template",
    "image_prefix",
    "load_templates",
    "normalise_text",
    "parse_templates",
    "render_prompt",
    "render_with_indices",
    "template_set",
    "templates_digest",
]

FAMILIES: tuple[str, ...] = (
    "depth",
    "correspondence",
    "camera_movement",
    "object_movement",
    "object_size",
    "nview",
)
#: Images of an N-view prompt: the default view count and the allowed range (``--views``).
DEFAULT_VIEWS, MIN_VIEWS, MAX_VIEWS = 8, 2, 32
DEFAULT = "default"  # variant key of subtasks without variants
MIN_DESCRIPTIONS, MIN_QUESTIONS, MIN_ANSWERS = 10, 15, 10
ANSWER_TEXT_FIELDS = frozenset({"label", "marker"})  # fields an answer phrasing may repeat

KeywordGroups = tuple[tuple[str, ...], ...]  # all groups must match; any word of a group

_MM = ("mm", "millimetre", "millimetres", "millimeter", "millimeters")
_DEGREES = ("degree", "degrees")
_UNIT_WORDS: Mapping[str, tuple[str, ...]] = {"mm": _MM, "degrees": _DEGREES, "count": ()}
NOTE_KEYWORDS: Mapping[str, KeywordGroups] = MappingProxyType(
    {
        "coordinate_note": (
            ("integer", "integers"), ("[ x , y ]",), ("1000",), ("[ 0 , 0 ]",), ("top-left",),
            ("width",), ("height",),
        ),
        "axis_note": (
            ("first",), ("+X",), ("right",), ("+Y",), ("down",), ("+Z",), ("forward",), _MM,
        ),
        "static_note": (("static", "unchanged", "does not change"),),
        "dynamic_note": (("objects",), ("camera",), ("both",)),
        "yaw_note": (("yaw",), ("vertical", "gravity"), ("left",), ("right",)),
        "pitch_note": (("pitch",), ("tilt", "tilts", "tilting"), ("up",), ("down",)),
        "depth_note": (("viewing axis", "optical axis"), ("not",), ("straight-line",)),
        "frame_note": (("first",), ("gravity",)),
        "dimension_note": (("horizontal", "vertical"),),
        "views_note": (("static", "unchanged", "does not change"), ("order",)),
        "count_note": (("once",),),
        "distance_note": (("closest",), ("point", "points")),
        "direction_note": (
            ("floor plan", "from above", "top-down"), ("standing", "stand"),
            ("facing", "looking", "faces"),
        ),
        "appearance_note": (("first",), ("appear", "appears", "appearance")),
        "path_note": (("centre", "center"), ("straight",)),
        "nearest_note": (("camera",), ("centre", "center"), ("closest", "nearest")),
    }
)


@dataclass(frozen=True)
class SubtaskSpec:
    """What a subtask is and what its prompts must carry.

    Attributes:
        name, family, answer_type: identifiers (docs/labels.md#subtasks).
        num_images: ``<image>`` tokens in the prompt (N-view subtasks: the default view count).
        image_range: the allowed number of images, ``(low, high)``: ``(num_images,
            num_images)``, or ``(MIN_VIEWS, MAX_VIEWS)`` for the N-view subtasks.
        unit: ``"mm"``, ``"degrees"``, ``"count"`` (an integer count: exact) or ``None``.
        options: allowed label words or choice letters (``()`` for numeric answers); for a
            ``numbered`` subtask the image numbers ``"1"`` … ``"32"``.
        fields: fields the generator passes besides ``answer`` (all of them, always).
        shown_fields: fields every description+question combination must contain.
        notes: notes every description+question combination must contain.
        variants: allowed ``variant`` arguments of :func:`render_prompt`.
        prompt_keywords: keyword groups every combination (notes expanded) must contain.
        question_keywords: keyword groups every question itself states (answer form, unit).
        answer_keywords: keyword groups every answer phrasing contains (unit word).
        numbered: the answer is an image number ``k`` of ``Image-k`` (N-view nearest view); the
            allowed values are ``1`` … the record's image count.
    """

    name: str
    family: str
    answer_type: str
    num_images: int
    image_range: tuple[int, int]
    unit: str | None
    options: tuple[str, ...]
    fields: tuple[str, ...]
    shown_fields: tuple[str, ...]
    notes: tuple[str, ...]
    variants: tuple[str | None, ...]
    prompt_keywords: KeywordGroups
    question_keywords: KeywordGroups
    answer_keywords: KeywordGroups
    numbered: bool = False

    def options_for(self, num_images: int) -> tuple[str, ...]:
        """The allowed answers of a record with ``num_images`` images (``options``, or the
        image numbers ``1`` … ``num_images`` for a numbered subtask)."""
        return self.options[:num_images] if self.numbered else self.options


def _spec(
    name: str, family: str, answer_type: str, *, images: int = 2, unit: str | None = None,
    options: tuple[str, ...] = (), fields: tuple[str, ...] = (), shown: tuple[str, ...] = (),
    notes: tuple[str, ...] = (), variants: tuple[str | None, ...] = (None,),
    extra: KeywordGroups = (), views: bool = False, form: KeywordGroups | None = None,
    numbered: bool = False,
) -> SubtaskSpec:
    unit_kw: KeywordGroups = (_UNIT_WORDS[unit],) if unit and _UNIT_WORDS[unit] else ()
    form_kw: KeywordGroups = form if form is not None else {
        "vector": (("[ x , y , z ]",),),
        "coord": (("[ x , y ]",),),
    }.get(answer_type, tuple((option,) for option in options))
    prompt_kw = tuple(g for note in notes for g in NOTE_KEYWORDS[note]) + extra
    return SubtaskSpec(
        name=name, family=family, answer_type=answer_type,
        num_images=DEFAULT_VIEWS if views else images,
        image_range=(MIN_VIEWS, MAX_VIEWS) if views else (images, images), unit=unit,
        options=options, fields=fields, shown_fields=shown, notes=notes, variants=variants,
        prompt_keywords=prompt_kw, question_keywords=form_kw + unit_kw, answer_keywords=unit_kw,
        numbered=numbered,
    )


def _subtask_table() -> dict[str, SubtaskSpec]:
    coord, depth, static = "coordinate_note", "depth_note", "static_note"
    compare = ("closer", "farther")
    camera_kw: KeywordGroups = (("first",), ("camera",))
    specs = [
        _spec("depth_estimation_dot", "depth", "scalar", images=1, unit="mm",
              fields=("marker",), notes=(depth,)),
        _spec("depth_estimation_coord", "depth", "scalar", images=1, unit="mm",
              fields=("point",), shown=("point",), notes=(coord, depth)),
        _spec("depth_comparison_dot", "depth", "choice", images=1, options=("A", "B"),
              notes=(depth,), variants=compare),
        _spec("depth_comparison_coord", "depth", "coord", images=1,
              fields=("point_a", "point_b"), shown=("point_a", "point_b"),
              notes=(coord, depth), variants=compare),
        _spec("correspondence_mcq_dot", "correspondence", "choice",
              options=("A", "B", "C", "D"), fields=("marker",)),
        _spec("correspondence_coord", "correspondence", "coord", fields=("point",),
              shown=("point",), notes=(coord,)),
    ]
    for axis, words in (("x", ("left", "right")), ("y", ("up", "down")),
                        ("z", ("forward", "backward"))):
        specs.append(_spec(f"camera_{axis}_direction", "camera_movement", "label", options=words,
                           notes=(static, "frame_note"), extra=camera_kw))
    for angle, words in (("yaw", ("left", "right")), ("pitch", ("up", "down"))):
        specs.append(_spec(f"camera_{angle}_direction", "camera_movement", "label",
                           options=words, notes=(static, f"{angle}_note"), extra=camera_kw))
    for angle in ("yaw", "pitch"):
        specs.append(_spec(f"camera_{angle}_degree", "camera_movement", "scalar",
                           unit="degrees", notes=(static, f"{angle}_note"), extra=camera_kw))
    specs.append(_spec("camera_translation_distance", "camera_movement", "scalar", unit="mm",
                       notes=(static,), extra=camera_kw))
    specs.append(_spec("camera_translation_vector", "camera_movement", "vector", unit="mm",
                       notes=(static, "axis_note"), extra=camera_kw))
    for quantity in ("distance", "vector"):
        for ref in ("coord", "dot"):
            notes = ("dynamic_note",) + ((coord,) if ref == "coord" else ())
            notes += ("axis_note",) if quantity == "vector" else ()
            specs.append(_spec(
                f"object_movement_{quantity}_{ref}", "object_movement",
                "scalar" if quantity == "distance" else "vector", unit="mm",
                fields=("point",) if ref == "coord" else ("marker",),
                shown=("point",) if ref == "coord" else (), notes=notes,
                variants=(None, "static"),
            ))
    all_images: KeywordGroups = (("all images", "all the images", "both images", "every image"),)
    dimension_kw: dict[str, KeywordGroups] = {
        "height": (("height",), ("vertical",)),
        "width": (("width",), ("shorter",), ("horizontal",)),
        "length": (("length",), ("longer",), ("horizontal",)),
    }
    for dim, kw in dimension_kw.items():
        specs.append(_spec(f"object_size_{dim}", "object_size", "scalar", unit="mm",
                           fields=("label",), shown=("label",),
                           notes=(static, "dimension_note"), extra=all_images + kw))
    specs += _nview_specs()
    return {spec.name: spec for spec in specs}


def _nview_specs() -> list[SubtaskSpec]:
    """The nine N-view subtasks: one view set of 2–32 images per prompt."""
    views = "views_note"
    letters = ("A", "B", "C", "D")
    objects = ("object_a", "object_b", "object_c")
    specs = [
        _spec("nview_object_count", "nview", "scalar", views=True, unit="count",
              fields=("label",), shown=("label",), notes=(views, "count_note"),
              form=(("how many", "number"),)),
        _spec("nview_object_abs_distance", "nview", "scalar", views=True, unit="mm",
              fields=objects[:2], shown=objects[:2], notes=(views, "distance_note")),
        _spec("nview_object_rel_distance", "nview", "choice", views=True, options=letters,
              fields=("target", "options"), shown=("target", "options"),
              notes=(views, "distance_note"), variants=("closest", "farthest")),
    ]
    for level, words in (("easy", ("left", "right")), ("medium", ("left", "right", "back")),
                         ("hard", ("front-left", "front-right", "back-left", "back-right"))):
        specs.append(_spec(f"nview_rel_direction_{level}", "nview", "label", views=True,
                           options=words, fields=objects, shown=objects,
                           notes=(views, "direction_note")))
    specs += [
        _spec("nview_appearance_order", "nview", "choice", views=True, options=letters,
              fields=("options",), shown=("options",), notes=(views, "appearance_note")),
        _spec("nview_camera_path_length", "nview", "scalar", views=True, unit="mm",
              notes=(views, "path_note"), extra=(("camera",),)),
        _spec("nview_nearest_view", "nview", "label", views=True,
              options=tuple(str(k) for k in range(1, MAX_VIEWS + 1)), fields=("target",),
              shown=("target",), notes=(views, "nearest_note"),
              form=(("image", "images"), ("number",)), numbered=True),
    ]
    return specs


SUBTASKS: Mapping[str, SubtaskSpec] = MappingProxyType(_subtask_table())
BENCHMARK_SUBTASKS: tuple[str, ...] = tuple(
    key
    for name, spec in SUBTASKS.items()
    for key in (
        (f"{name}:adt", f"{name}:pstudio") if spec.family == "object_movement" else (name,)
    )
)
#: The benchmark keys of the N-view family (reported in a table of their own).
NVIEW_SUBTASKS: tuple[str, ...] = tuple(
    name for name, spec in SUBTASKS.items() if spec.family == "nview"
)


@dataclass(frozen=True)
class TemplateSet:
    """The validated templates of one subtask.

    ``questions`` and ``answers`` map a variant key to its list: ``"default"`` for subtasks without
    variants, ``"closer"``/``"farther"`` for depth comparison, and ``"static"`` (answers only) for
    object movement. ``notes`` holds the resolved note texts (family notes + subtask notes).
    """

    spec: SubtaskSpec
    notes: Mapping[str, str]
    descriptions: tuple[str, ...]
    questions: Mapping[str, tuple[str, ...]]
    answers: Mapping[str, tuple[str, ...]]

    def questions_for(self, variant: str | None) -> tuple[str, ...]:
        """Question list used for ``variant`` (``None`` = no variant)."""
        self._check_variant(variant)
        return self.questions.get(variant or DEFAULT) or self.questions[DEFAULT]

    def answers_for(self, variant: str | None) -> tuple[str, ...]:
        """Answer list used for ``variant`` (``None`` = no variant)."""
        self._check_variant(variant)
        return self.answers.get(variant or DEFAULT) or self.answers[DEFAULT]

    def _check_variant(self, variant: str | None) -> None:
        if variant not in self.spec.variants:
            raise ValueError(
                f"subtask {self.spec.name}: variant {variant!r} not in {self.spec.variants}"
            )


@dataclass(frozen=True)
class FamilyTemplates:
    """All template sets of one family file; ``sha256`` is the hash of the file bytes."""

    family: str
    source: str
    sha256: str
    notes: Mapping[str, str]
    subtasks: Mapping[str, TemplateSet]


@dataclass(frozen=True)
class RenderedPrompt:
    """One rendered conversation: ``human`` and ``gpt`` turns and the template indices."""

    human: str
    gpt: str
    indices: dict[str, int]


# --------------------------------------------------------------------------------------- checks


def normalise_text(text: str) -> str:
    """Lower-cased text with runs of whitespace collapsed (the distinctness key)."""
    return " ".join(text.lower().split())


_PLACEHOLDER_STRIP = re.compile(r"\$\{[^}]*\}")


@functools.cache
def _keyword_regex(word: str) -> re.Pattern[str]:
    """Whole-word pattern; a single capital letter (a choice) matches case-sensitively."""
    flags = 0 if (len(word) == 1 and word.isupper()) else re.IGNORECASE
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", flags)


def _has(text: str, word: str) -> bool:
    return _keyword_regex(word).search(text) is not None


def _missing_groups(text: str, groups: KeywordGroups) -> list[str]:
    return [" | ".join(g) for g in groups if not any(_has(text, w) for w in g)]


def _placeholders(text: str) -> tuple[list[str], str | None]:
    """Braced placeholder names in order of appearance, and a problem (or None)."""
    names: list[str] = []
    for match in string.Template.pattern.finditer(text):
        if match.group("braced") is None:
            return names, f"bad use of '$' at offset {match.start()} (only ${{name}} is allowed)"
        names.append(match.group("braced"))
    return names, None


# libyaml's parser when PyYAML was built with it (about 10x faster); same safe constructors.
_SafeLoaderBase: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoaderBase):
    """Safe loader that refuses duplicate mapping keys (PyYAML keeps the last silently)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


class _Checker:
    """Validates one family file; every failure raises ConfigError naming the place."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: dict[str, str] = {}  # normalised template -> where it first occurred

    def fail(self, where: str, problem: str) -> NoReturn:
        raise ConfigError(f"{self.source}: {where}: {problem}")

    def mapping(self, value: object, where: str, allowed: set[str], required: set[str]) -> dict:
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, found {type(value).__name__}")
        keys = set(value)
        if keys - allowed or required - keys:
            self.fail(where, f"keys {sorted(map(str, keys))}; allowed {sorted(allowed)}, "
                             f"required {sorted(required)}")
        return value

    def free_mapping(self, value: object, where: str) -> dict:
        """A mapping with any keys (``None``, an empty YAML block, counts as empty)."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(where, f"expected a mapping, found {type(value).__name__}")
        return value

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected a string, found {type(value).__name__} {value!r}")
        problems = [
            ("a backtick", "`" in value),
            ("a newline", "\n" in value or "\r" in value),
            ("an <image> token", "<image>" in value),
            ("surrounding spaces", value != value.strip()),
            ("no text", not value.strip()),
        ]
        for problem, bad in problems:
            if bad:
                self.fail(where, f"contains {problem}: {value!r}")
        return value

    def template_list(self, value: object, where: str, minimum: int, origin: str) -> tuple:
        if not isinstance(value, list):
            self.fail(where, f"expected a list, found {type(value).__name__}")
        if len(value) < minimum:
            self.fail(where, f"needs at least {minimum} entries, found {len(value)}")
        items = tuple(self.text(v, f"{where}[{i}]") for i, v in enumerate(value))
        local: dict[str, int] = {}
        for i, item in enumerate(items):
            key = normalise_text(item)
            if key in local:
                self.fail(f"{where}[{i}]", f"duplicate of {where}[{local[key]}]: {item!r}")
            local[key] = i
            if key in self.seen and self.seen[key] != origin:
                self.fail(f"{where}[{i}]", f"also in {self.seen[key]} (share it via 'shared'): "
                                           f"{item!r}")
            self.seen.setdefault(key, origin)
            problem = _placeholders(item)[1]
            if problem:
                self.fail(f"{where}[{i}]", problem)
        return items


def _resolve(
    checker: _Checker, value: object, shared: Mapping[str, tuple[str, ...]], where: str,
    minimum: int,
) -> tuple[str, ...]:
    if isinstance(value, str):
        if value not in shared:
            checker.fail(where, f"names shared list {value!r}, not among {sorted(shared)}")
        if len(shared[value]) < minimum:
            checker.fail(where, f"shared list {value!r} needs at least {minimum} entries")
        return shared[value]
    return checker.template_list(value, where, minimum, where)


def _list_name(kind: str, key: str) -> str:
    """How a list is named in messages: ``questions``, ``questions.closer``, ``static_answers``."""
    if key == "static":
        return f"static_{kind}"
    return kind if key == DEFAULT else f"{kind}.{key}"


def _check_set(checker: _Checker, ts: TemplateSet) -> None:
    """Placeholder, note and keyword rules of one subtask (see the module docstring)."""
    spec, name = ts.spec, ts.spec.name
    for note in spec.notes:
        if note not in ts.notes:
            checker.fail(f"subtask {name}", f"required note {note!r} is not defined")
    clash = set(ts.notes) & ({"answer"} | set(spec.fields))
    if clash:
        checker.fail(f"subtask {name}", f"note names clash with fields: {sorted(clash)}")
    prompt_allowed = set(ts.notes) | set(spec.fields)
    answer_allowed = {"answer"} | (set(spec.fields) & ANSWER_TEXT_FIELDS)
    forbidden = [*spec.options] if spec.answer_type in ("label", "choice") else []

    def names(text: str) -> list[str]:
        return _placeholders(text)[0]

    for i, text in enumerate(ts.descriptions):
        unknown = set(names(text)) - prompt_allowed
        if unknown:
            checker.fail(f"subtask {name}: descriptions[{i}]", f"undeclared {sorted(unknown)}")
    # Every description + question combination must carry the required placeholders and words.
    # A combination is ``desc + "\n" + question`` with notes expanded; no placeholder and no
    # keyword spans the newline (which is a non-word character, like the text's ends), so a
    # combination has a keyword iff one of its two parts has it: check parts once, combine sets.
    required = set(spec.notes) | set(spec.shown_fields)
    groups = spec.prompt_keywords

    def carried(text: str) -> tuple[set[str], frozenset[int]]:
        expanded = string.Template(text).safe_substitute(ts.notes)
        found = {g for g, words in enumerate(groups) if any(_has(expanded, w) for w in words)}
        return set(names(text)), frozenset(found)

    described = [carried(desc) for desc in ts.descriptions]
    for key, questions in ts.questions.items():
        for j, text in enumerate(questions):
            where = f"subtask {name}: {_list_name('questions', key)}[{j}]"
            unknown = set(names(text)) - prompt_allowed
            if unknown:
                checker.fail(where, f"undeclared placeholders {sorted(unknown)}")
            missing = _missing_groups(_PLACEHOLDER_STRIP.sub(" ", text), spec.question_keywords)
            if missing:
                checker.fail(where, f"must state the answer form/unit, lacks {missing}: {text!r}")
        asked = [carried(question) for question in questions]
        for i, (desc_names, desc_groups) in enumerate(described):
            for j, (question_names, question_groups) in enumerate(asked):
                where = f"subtask {name}: descriptions[{i}] + {_list_name('questions', key)}[{j}]"
                lacking = sorted(required - desc_names - question_names)
                if lacking:
                    checker.fail(where, f"lacks placeholders {lacking}")
                found = desc_groups | question_groups
                if len(found) != len(groups):
                    missing = [" | ".join(g) for k, g in enumerate(groups) if k not in found]
                    checker.fail(where, f"lacks required words {missing}")
    every = [*ts.descriptions, *(t for q in ts.questions.values() for t in q)]
    every += [t for a in ts.answers.values() for t in a]
    unused = set(spec.fields) - {n for text in every for n in names(text)}
    if unused:
        checker.fail(f"subtask {name}", f"declared fields never used: {sorted(unused)}")
    for key, answers in ts.answers.items():
        for k, text in enumerate(answers):
            where = f"subtask {name}: {_list_name('answers', key)}[{k}]"
            used = names(text)
            if used.count("answer") != 1 or set(used) - answer_allowed:
                checker.fail(where, f"needs ${{answer}} exactly once and only "
                                    f"{sorted(answer_allowed)}, found {used}")
            bare = _PLACEHOLDER_STRIP.sub(" ", text)
            missing = _missing_groups(bare, spec.answer_keywords)
            if missing:
                checker.fail(where, f"lacks the unit word {missing}: {text!r}")
            if re.search(r"\d", bare) or any(_has(bare, w) for w in forbidden):
                checker.fail(where, f"digits or answer words outside ${{answer}}: {text!r}")


def _variant_lists(
    checker: _Checker, raw: object, shared: Mapping[str, tuple[str, ...]], where: str,
    keys: list[str], minimum: int,
) -> dict[str, tuple[str, ...]]:
    """One list (``keys == ["default"]``) or a ``{variant: list}`` mapping, resolved."""
    if keys == [DEFAULT]:
        return {DEFAULT: _resolve(checker, raw, shared, where, minimum)}
    raw_map = checker.mapping(raw, where, set(keys), set(keys))
    return {k: _resolve(checker, raw_map[k], shared, f"{where}.{k}", minimum) for k in keys}


def _notes(checker: _Checker, raw: object, where: str) -> dict[str, str]:
    notes = {
        str(k): checker.text(v, f"{where}.{k}")
        for k, v in checker.free_mapping(raw, where).items()
    }
    for key, note in notes.items():
        if "$" in note:
            checker.fail(f"{where}.{key}", "notes may not contain placeholders or '$'")
    return notes


def _parse_subtask(
    checker: _Checker, spec: SubtaskSpec, raw: object, family_notes: Mapping[str, str],
    shared: Mapping[str, tuple[str, ...]],
) -> TemplateSet:
    where = f"subtask {spec.name}"
    allowed = {"notes", "descriptions", "questions", "answers"}
    allowed |= {"static_answers"} if "static" in spec.variants else set()
    block = checker.mapping(raw, where, allowed, allowed - {"notes"})
    notes = {**family_notes, **_notes(checker, block.get("notes"), f"{where}: notes")}
    keys = [str(v) for v in spec.variants if v not in (None, "static")] or [DEFAULT]
    descriptions = _resolve(checker, block["descriptions"], shared, f"{where}: descriptions",
                            MIN_DESCRIPTIONS)
    questions = _variant_lists(checker, block["questions"], shared, f"{where}: questions", keys,
                               MIN_QUESTIONS)
    answers = _variant_lists(checker, block["answers"], shared, f"{where}: answers", keys,
                             MIN_ANSWERS)
    if "static" in spec.variants:
        answers["static"] = _resolve(checker, block["static_answers"], shared,
                                     f"{where}: static_answers", MIN_ANSWERS)
    ts = TemplateSet(spec, MappingProxyType(notes), descriptions, MappingProxyType(questions),
                     MappingProxyType(answers))
    _check_set(checker, ts)
    return ts


def parse_templates(family: str, text: str, *, source: str, sha256: str = "") -> FamilyTemplates:
    """Parse and validate the YAML ``text`` of ``family``; ``source`` names it in errors."""
    checker = _Checker(source)
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    data = checker.mapping(data, "top level", {"family", "notes", "shared", "subtasks"},
                           {"family", "notes", "subtasks"})
    if data["family"] != family:
        checker.fail("family", f"expected {family!r}, found {data['family']!r}")
    family_notes = _notes(checker, data["notes"], "notes")
    shared = {
        str(k): checker.template_list(v, f"shared.{k}", 1, f"shared.{k}")
        for k, v in checker.free_mapping(data.get("shared"), "shared").items()
    }
    names = [n for n, s in SUBTASKS.items() if s.family == family]
    blocks = checker.mapping(data["subtasks"], "subtasks", set(names), set(names))
    sets = {
        name: _parse_subtask(checker, SUBTASKS[name], blocks[name], family_notes, shared)
        for name in names
    }
    return FamilyTemplates(family, source, sha256, MappingProxyType(family_notes),
                           MappingProxyType(sets))


def _template_file(family: str) -> Any:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return resources.files("multispa.tasks") / "templates" / f"{family}.yaml"


@functools.cache
def load_templates(family: str) -> FamilyTemplates:
    """The validated templates of ``family`` (cached; raises ConfigError on a bad file)."""
    resource = _template_file(family)
    try:
        raw = resource.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{resource}: cannot read template file: {exc}") from None
    return parse_templates(family, text, source=str(resource),
                           sha256=hashlib.sha256(raw).hexdigest())


@functools.cache
def templates_digest() -> str:
    """SHA-256 over all template files, for the run manifest.

    The hash covers, per family in :data:`FAMILIES` order, ``<family>.yaml``, a NUL byte, the byte
    length in decimal, a NUL byte and the file bytes.
    """
    digest = hashlib.sha256()
    for family in FAMILIES:
        raw = _template_file(family).read_bytes()
        digest.update(f"{family}.yaml\0{len(raw)}\0".encode())
        digest.update(raw)
    return digest.hexdigest()


def template_set(subtask: str) -> TemplateSet:
    """The validated :class:`TemplateSet` of ``subtask``."""
    if subtask not in SUBTASKS:
        raise ValueError(f"unknown subtask {subtask!r}; expected one of {sorted(SUBTASKS)}")
    return load_templates(SUBTASKS[subtask].family).subtasks[subtask]


@functools.lru_cache(maxsize=64)
def image_prefix(num_images: int) -> str:
    """``"<image>\\n"`` for one image, else one ``"Image-k: <image>\\n"`` line per image."""
    if num_images < 1:
        raise ValueError(f"image_prefix: need at least one image, got {num_images}")
    if num_images == 1:
        return "<image>\n"
    return "".join(f"Image-{k}: <image>\n" for k in range(1, num_images + 1))


_ANSWER_VALUE = re.compile(r"`[^`\n]+`")


def _check_fields(spec: SubtaskSpec, fields: Mapping[str, str], num_images: int) -> None:
    low, high = spec.image_range
    if not low <= num_images <= high:
        wanted = f"{low}" if low == high else f"{low} to {high}"
        raise ValueError(f"subtask {spec.name} takes {wanted} image(s), got {num_images}")
    expected = {"answer", *spec.fields}
    if set(fields) != expected:
        raise ValueError(
            f"subtask {spec.name}: fields {sorted(fields)}, expected {sorted(expected)}"
        )
    for key, value in fields.items():
        if not isinstance(value, str):
            raise ValueError(f"subtask {spec.name}: field {key!r} must be str, got {value!r}")
        if key == "answer":
            if not _ANSWER_VALUE.fullmatch(value):
                raise ValueError(f"subtask {spec.name}: answer must be one backticked span "
                                 f"(use answers.format_answer), got {value!r}")
        elif "`" in value or "\n" in value or "<image>" in value or not value.strip():
            raise ValueError(f"subtask {spec.name}: bad value for field {key!r}: {value!r}")


Chunks = tuple[str, ...]  # (text, field, text, field, ..., text): fields at odd positions


def _compile(text: str, notes: Mapping[str, str]) -> Chunks:
    """Split a validated template into literal chunks and field names, notes filled in."""
    chunks: list[str] = []
    literal: list[str] = []
    end = 0
    for match in string.Template.pattern.finditer(text):
        name = match.group("braced")
        if name is None:  # validation refuses anything but ${name}
            raise ValueError(f"template {text!r}: bad use of '$' at offset {match.start()}")
        literal.append(text[end : match.start()])
        end = match.end()
        if name in notes:
            literal.append(notes[name])
        else:
            chunks += ["".join(literal), name]
            literal = []
    literal.append(text[end:])
    chunks.append("".join(literal))
    return tuple(chunks)


def fill_template(chunks: Chunks, fields: Mapping[str, str]) -> str:
    """A compiled template with its fields filled in (``fields`` maps field name → text)."""
    count = len(chunks)
    if count == 1:
        return chunks[0]
    if count == 3:
        return f"{chunks[0]}{fields[chunks[1]]}{chunks[2]}"
    parts = list(chunks)
    for position in range(1, count, 2):
        parts[position] = fields[parts[position]]
    return "".join(parts)


@dataclass(frozen=True)
class CompiledTemplates:
    """One subtask's templates compiled for rendering by joins (notes already substituted).

    Attributes:
        spec: the subtask.
        prefix: the image prefix of the human turn for ``spec.num_images`` images (an N-view
            record with another view count uses ``image_prefix`` of its own count).
        lists: per variant of ``spec.variants`` (``None`` for subtasks without variants), the
            compiled description, question and answer lists, as
            :meth:`TemplateSet.questions_for` / :meth:`TemplateSet.answers_for` select them.
    """

    spec: SubtaskSpec
    prefix: str
    lists: Mapping[str | None, tuple[tuple[Chunks, ...], tuple[Chunks, ...], tuple[Chunks, ...]]]

    def sizes(self, variant: str | None = None) -> tuple[int, int, int]:
        """Lengths of the description, question and answer lists used for ``variant``."""
        descriptions, questions, answers = self._lists_for(variant)
        return len(descriptions), len(questions), len(answers)

    def render(
        self, indices: Sequence[int], fields: Mapping[str, str], variant: str | None = None,
        num_images: int | None = None,
    ) -> tuple[str, str]:
        """``(human, gpt)`` for template ``indices`` (description, question, answer).

        No argument checks beyond the variant (the fast path): ``indices`` must lie in
        :meth:`sizes`, ``num_images`` (default ``spec.num_images``) in ``spec.image_range``,
        and ``fields`` must hold ``answer`` (backticked, from
        :func:`multispa.tasks.answers.format_answer`) and every field of the subtask, as
        one-line strings without backticks or ``<image>`` (see :func:`render_with_indices`).
        """
        descriptions, questions, answers = self._lists_for(variant)
        description, question, answer = indices
        prefix = self.prefix if num_images is None else image_prefix(num_images)
        human = (
            f"{prefix}{fill_template(descriptions[description], fields)}\n"
            f"{fill_template(questions[question], fields)}"
        )
        return human, fill_template(answers[answer], fields)

    def _lists_for(
        self, variant: str | None
    ) -> tuple[tuple[Chunks, ...], tuple[Chunks, ...], tuple[Chunks, ...]]:
        found = self.lists.get(variant)
        if found is None:
            raise ValueError(
                f"subtask {self.spec.name}: variant {variant!r} not in {self.spec.variants}"
            )
        return found


@functools.cache
def compiled_templates(subtask: str) -> CompiledTemplates:
    """The compiled templates of ``subtask`` (cached per process)."""
    ts = template_set(subtask)

    def compile_all(texts: tuple[str, ...]) -> tuple[Chunks, ...]:
        return tuple(_compile(text, ts.notes) for text in texts)

    descriptions = compile_all(ts.descriptions)
    lists = {
        variant: (
            descriptions,
            compile_all(ts.questions_for(variant)),
            compile_all(ts.answers_for(variant)),
        )
        for variant in ts.spec.variants
    }
    return CompiledTemplates(ts.spec, image_prefix(ts.spec.num_images), MappingProxyType(lists))


def render_with_indices(
    subtask: str, *, indices: Mapping[str, int], fields: Mapping[str, str],
    variant: str | None = None, num_images: int,
) -> RenderedPrompt:
    """Render the templates at ``indices`` (keys ``description``, ``question``, ``answer``)."""
    ts = template_set(subtask)
    _check_fields(ts.spec, fields, num_images)
    lists = {
        "description": ts.descriptions,
        "question": ts.questions_for(variant),
        "answer": ts.answers_for(variant),
    }
    if set(indices) != set(lists):
        raise ValueError(f"subtask {subtask}: indices need keys {sorted(lists)}, got {indices}")
    chosen: list[int] = []
    for key, options in lists.items():
        index = int(indices[key])
        if not 0 <= index < len(options):
            raise ValueError(f"subtask {subtask}: {key} index {index} not in 0..{len(options) - 1}")
        chosen.append(index)
    human, gpt = compiled_templates(subtask).render(chosen, fields, variant, num_images)
    return RenderedPrompt(human, gpt, dict(zip(lists, chosen, strict=True)))


def render_prompt(
    subtask: str, *, rng: np.random.Generator, fields: Mapping[str, str],
    variant: str | None = None, num_images: int,
) -> RenderedPrompt:
    """Draw one description, question and answer uniformly (in that order) and render them.

    Args:
        subtask: a name of :data:`SUBTASKS`.
        rng: the record's generator; three ``rng.integers`` draws are made.
        fields: ``answer`` (from ``answers.format_answer``) plus the subtask's ``fields``.
        variant: ``"closer"``/``"farther"`` (depth comparison), ``"static"`` (object movement
            with a static point) or ``None``.
        num_images: number of images in the record (within the subtask's ``image_range``).

    Returns:
        The rendered turns and ``indices`` for ``meta.templates``.
    """
    ts = template_set(subtask)
    _check_fields(ts.spec, fields, num_images)
    sizes = (len(ts.descriptions), len(ts.questions_for(variant)), len(ts.answers_for(variant)))
    drawn = [int(rng.integers(size)) for size in sizes]
    indices = dict(zip(("description", "question", "answer"), drawn, strict=True))
    return render_with_indices(subtask, indices=indices, fields=fields, variant=variant,
                               num_images=num_images)

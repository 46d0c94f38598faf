"""Answer extraction: a model response → a typed value (docs/metrics.md#answer-extraction).

Deterministic, regex only, no LLM. :func:`parse_answer` applies, in order:

1. **Backtick spans.** Every span enclosed in single backticks is collected (one line; a run of
   two or more backticks, e.g. a code fence, delimits nothing); the **last span that parses** for
   the record's
   ``answer_type`` wins, so an earlier parsable span followed by an unparsable one still
   counts.
   A span parses when its whole stripped content (a trailing ``.`` allowed) is a value:

   - ``label``: one of the subtask's allowed words, any case (``Left`` → ``left``; a
     hyphenated word may be written with a space or ``_``: ``front left`` → ``front-left``);
     for the N-view nearest view, an image number 1–32, bare or after ``image`` (``3``,
     ``Image-3``, ``image 3`` → ``3``);
   - ``choice``: one allowed letter, any case, optionally ``(B)``, ``B)``, ``B.`` or after
     ``option``/``answer``/``point``/``label`` (``Option b`` → ``B``);
   - ``scalar``: one number with an optional unit (``1834``, ``1,834``, ``-45``, ``1.5 m``);
   - ``vector`` / ``coord``: three / two comma-separated numbers, in ``[ ]`` or ``( )`` or bare.

2. **Fallback** (no span parses): the **last** match of the type's pattern over the whole
   response: label = an allowed word, case-insensitive, whole word (nearest view: the last
   ``image k`` / ``Image-k``, else the last free-standing integer 1–32); choice = an allowed letter
   written ``(X)``, else one following ``option``/``answer``/``point``/``label`` (``Answer: B``,
   ``the answer is B``), else a standalone capital letter (``B`` but not the ``A`` of ``A-D``,
   ``Image-A`` or ``A's``) — in all three forms only upper-case letters count, the first form
   found wins and within it the last match; scalar = a signed decimal; vector = a bracketed or
   parenthesised triple; coord = a bracketed or parenthesised pair.

Numbers:

- a number is an optional sign (``-``, ``+`` or the unicode minus ``−`` U+2212), digits with
  optional ``1,234``-style thousands separators (groups of exactly three), and an optional
  decimal part (``.5`` allowed); exponents (``1e3``) and decimal commas (``1,5``) are not numbers
  (the fallback finds nothing in them rather than a wrong piece);
- in the fallback a number must stand alone: not glued to a word (``x2``, ``5th``, ``3D``), not
  the tail of a hyphenated word (``Image-2`` yields nothing), and a ``-`` right after a digit is
  a range dash, not a sign (``5-10`` yields ``5`` and ``10``);
- integers stay Python ``int``; decimals become exact :class:`fractions.Fraction` built from the
  string (never a float); a Fraction whose value is whole (``1.5 m`` = 1500 mm) becomes an int.

Units (scalar and vector subtasks):

- a length unit right after a number (``mm``, ``millimetre(s)``/``millimeter(s)``, ``cm``,
  ``centimetre(s)``/``centimeter(s)``, ``m``, ``metre(s)``/``meter(s)``; any case, a space or
  none between) converts the number to mm: ``1.5 m`` → 1500, ``12 cm`` → 120;
- a bare number is read in the subtask's unit (mm, or degrees for the two degree subtasks; a
  count for the N-view object count, where any unit makes the candidate unparsable);
- **backtick spans**: a unit inside the span applies first; otherwise a unit written right after
  the closing backtick (spaces allowed, e.g. ```` `1.5` m ````) applies to the span's number —
  the generator writes ```` `1834` mm ````, so this unit is the common case. For a vector the
  unit after the closing bracket (or after the backtick) applies to every component without its
  own unit; in a bare tuple a unit written only on the last component applies to all. The
  fallback also reads a unit written after a closing backtick;
- degree units (``°``, ``deg``, ``degree(s)``) are accepted on degree subtasks; a unit of the
  wrong kind (a length on a degree subtask, degrees on a length subtask) makes that candidate
  unparsable, so the search goes on to earlier spans / matches;
- coordinates are unitless: components with units do not parse, text after the bracket is
  ignored.

Tuples: components are separated by commas. A first reading takes every comma as a separator
(``[1,234,567]`` is a triple); only when that gives the wrong count are ``1,234``-style groups
allowed (``[ 1,234 , -40 , 300 ]`` → ``(1234, -40, 300)``). Components may be decimals.

Limits (model output never makes the parser raise, and parsing time stays linear): a number
token longer than :data:`MAX_NUMBER_CHARS` characters (sign, separators and decimals included)
is not a number; a backtick span or bracket group longer than :data:`MAX_SPAN_CHARS` holds no
value; a response longer than :data:`MAX_RESPONSE_CHARS` is parsed from its last
``MAX_RESPONSE_CHARS`` characters (where the answer is).

An unparsable response gets ``value=None`` and a ``reason``: ``"empty"`` (empty or whitespace,
or ``None``), ``"no_backtick_match"`` (backtick spans exist but none parses, and the fallback
found nothing) or ``"no_match"`` (no span and no fallback match). The scorer adds ``"missing"``
for records without a prediction.

>>> parse_answer("It moved `1.5` m.", "scalar", "camera_translation_distance").value
1500
>>> parse_answer("The camera moved to the `left`.", "label", "camera_x_direction").value
'left'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

from multispa.tasks.templates import SUBTASKS

__all__ = [
    "MAX_NUMBER_CHARS",
    "MAX_RESPONSE_CHARS",
    "MAX_SPAN_CHARS",
    "Number",
    "ParsedAnswer",
    "Value",
    "parse_answer",
    "parse_number",
]

Number: TypeAlias = int | Fraction
Value: TypeAlias = Number | tuple[Number, ...] | str

#: Longest number token read as a number (characters); longer ones are not numbers.
MAX_NUMBER_CHARS = 40
#: Longest backtick span or bracket group content that can hold a value (characters).
MAX_SPAN_CHARS = 200
#: Longest response parsed whole; a longer one is parsed from its last this many characters.
MAX_RESPONSE_CHARS = 100_000

REASON_EMPTY = "empty"
REASON_NO_BACKTICK_MATCH = "no_backtick_match"
REASON_NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """The value extracted from one response.

    Attributes:
        value: ``int`` or exact ``Fraction`` (scalar, mm or degrees); a tuple of 3 (vector, mm)
            or 2 (coord, normalised 0–1000 units) such numbers; a lower-case word (label); an
            upper-case letter (choice); ``None`` when nothing parsed.
        reason: ``None`` when parsed, else a short code (module docstring).
        source: ``"backtick"`` or ``"fallback"`` when parsed, else ``None``.
    """

    value: Value | None
    reason: str | None
    source: str | None

    @property
    def ok(self) -> bool:
        """Whether a value was extracted."""
        return self.reason is None


EMPTY = ParsedAnswer(None, REASON_EMPTY, None)
_NO_BACKTICK_MATCH = ParsedAnswer(None, REASON_NO_BACKTICK_MATCH, None)
_NO_MATCH = ParsedAnswer(None, REASON_NO_MATCH, None)

# ------------------------------------------------------------------------------------ patterns

_SIGN = "[-+\u2212]?"
_NUM = rf"{_SIGN}(?:(?:\d{{1,3}}(?:,\d{{3}})+|\d+)(?:\.\d+)?|\.\d+)"  # thousands allowed
_NUM_PLAIN = rf"{_SIGN}(?:\d+(?:\.\d+)?|\.\d+)"  # no thousands separators
_UNITS = (
    r"(?i:millimet(?:er|re)s?|centimet(?:er|re)s?|met(?:er|re)s?|mm|cm|m|degrees?|deg|°)"
    r"(?![A-Za-z])"
)
_UNIT_AFTER = rf"(?:\s*({_UNITS}))?"

_LENGTH, _ANGLE, _COUNT = "length", "angle", "count"
_UNIT_TABLE: dict[str, tuple[str, int]] = {}
for _names, _kind, _factor in (
    (("mm", "millimetre", "millimetres", "millimeter", "millimeters"), _LENGTH, 1),
    (("cm", "centimetre", "centimetres", "centimeter", "centimeters"), _LENGTH, 10),
    (("m", "metre", "metres", "meter", "meters"), _LENGTH, 1000),
    (("°", "deg", "degree", "degrees"), _ANGLE, 1),
):
    for _name in _names:
        _UNIT_TABLE[_name] = (_kind, _factor)

_SPAN = re.compile(r"`(?<!``)([^`\n]+)`(?!`)")  # literal first: the regex prefix scan is fast
_TAIL_UNIT = re.compile(rf"\s*({_UNITS})")
_SCALAR_SPAN = re.compile(rf"\s*({_NUM}){_UNIT_AFTER}\s*\.?\s*")
# Fallback scalar: a free-standing number, optionally followed by a unit.
_SCALAR_FALLBACK = re.compile(
    rf"(?=[-+\u2212.\d])(?<![\w.])(?<!\d,)(?<![A-Za-z]-)({_NUM})"
    rf"(?:`?\s*({_UNITS})|(?![\w]|\.\d|,\d))"
)
_IMAGE_NUMBER_SPAN = re.compile(
    r"\s*(?:(?i:image|img|view)\s*[-#]?\s*)?#?(\d{1,2})\s*\.?\s*"
)
_IMAGE_NUMBER_FALLBACK = re.compile(r"(?i:\bimage)[\s-]*#?(\d{1,2})(?!\w|\.\d)")
_FREE_INTEGER = re.compile(r"(?<![\w.,-])(\d{1,2})(?![\w]|[.,]\d)")
_SEPARATORS = re.compile(r"[\s_-]+")
_HYPHEN = r"[\s_-]+"  # a hyphen of a label word, also matched as spaces or underscores
_BRACKETED_SPAN = re.compile(rf"\s*[\[(]([^\[\]()]*)[\])]{_UNIT_AFTER}\s*\.?\s*")
_BRACKET_GROUP = re.compile(rf"[\[(]([^\[\]()\n]*)[\])](?:`?\s*({_UNITS}))?")


def _tuple_regex(count: int, number: str, with_units: bool) -> re.Pattern[str]:
    component = rf"({number}){_UNIT_AFTER}" if with_units else rf"({number})"
    return re.compile(r"\s*" + r"\s*,\s*".join([component] * count) + r"\s*")


_INT = r"-?\d+"
# Fast paths for the generator's own forms (``1834``, ``[ 12 , -40 , 300 ]``, ``[ 412 , 655 ]``).
_INT_SPAN = re.compile(_INT)
_VECTOR_INTS = re.compile(rf"\s*({_INT})\s*,\s*({_INT})\s*,\s*({_INT})\s*")
_COORD_INTS = re.compile(rf"\s*({_INT})\s*,\s*({_INT})\s*")
_VECTOR_PLAIN = _tuple_regex(3, _NUM_PLAIN, True)
_VECTOR_THOUSANDS = _tuple_regex(3, _NUM, True)
_COORD_PLAIN = _tuple_regex(2, _NUM_PLAIN, False)


# ------------------------------------------------------------------------------------- numbers


def parse_number(text: str) -> Number:
    """A number token (as matched by the patterns above) as ``int`` or exact ``Fraction``.

    >>> parse_number("1,234"), parse_number("\u221245"), parse_number("2.50")
    (1234, -45, Fraction(5, 2))
    """
    if "," in text:
        text = text.replace(",", "")
    if text[0] == "\u2212":
        text = "-" + text[1:]
    if "." in text:
        value = Fraction(text)
        return value.numerator if value.denominator == 1 else value
    return int(text)


def _scaled(value: Number, factor: int) -> Number:
    if factor == 1:
        return value
    value = value * factor
    if type(value) is Fraction and value.denominator == 1:
        return value.numerator
    return value


# ------------------------------------------------------------------------------------- parsers


class _Parser:
    """The span and fallback parsers of one subtask (built once, cached)."""

    __slots__ = ("answer_type", "kind", "label_fallback", "letter_fallbacks", "numbered",
                 "options", "words")

    def __init__(self, subtask: str, answer_type: str) -> None:
        spec = SUBTASKS[subtask]
        self.answer_type = answer_type
        self.kind = {"degrees": _ANGLE, "count": _COUNT}.get(spec.unit or "", _LENGTH)
        self.options = spec.options
        self.numbered = spec.numbered
        self.words: dict[str, str] = {}
        self.label_fallback: re.Pattern[str] | None = None
        self.letter_fallbacks: tuple[re.Pattern[str], ...] = ()
        if answer_type == "label":
            self.words = {option.lower(): option.lower() for option in spec.options}
            # hyphenated words also match written with spaces or underscores
            # on the lower-cased response: the first letter, then "not preceded by a word
            # character", then the rest — a literal first keeps the regex scan fast
            alternatives = "|".join(
                rf"{re.escape(w[0])}(?<!\w{re.escape(w[0])})"
                + _HYPHEN.join(re.escape(part) for part in w[1:].split("-")) + r"\b"
                for w in (option.lower() for option in spec.options)
            )
            self.label_fallback = re.compile(alternatives)
        elif answer_type == "choice":
            letters = "".join(option.upper() for option in spec.options)
            self.words = {letter.lower(): letter for letter in letters}
            self.words.update({letter: letter for letter in letters})
            cls = f"[{letters}]"
            self.letter_fallbacks = (
                re.compile(rf"\(({cls})\)"),
                re.compile(
                    rf"\b(?i:option|answer|point|label)s?\b[\s:=]*(?:is\b)?[\s:=-]*"
                    rf"\(?({cls})(?![\w'’-])"
                ),
                re.compile(rf"(?<![\w'’-])({cls})(?![\w'’-])"),
            )

    # --- spans

    def span(self, text: str, response: str, end: int) -> Value | None:
        """Parse one span's content; ``response[end:]`` follows its closing backtick."""
        if len(text) > MAX_SPAN_CHARS:
            return None
        answer_type = self.answer_type
        if answer_type == "scalar":
            if _INT_SPAN.fullmatch(text) is not None:
                number, unit = text, None
            else:
                match = _SCALAR_SPAN.fullmatch(text)
                if match is None:
                    return None
                number, unit = match.group(1, 2)
            if unit is None:
                tail = _TAIL_UNIT.match(response, end)
                if tail is not None:
                    unit = tail.group(1)
            return self._number(number, unit)
        if answer_type == "label":
            if self.numbered:
                return self._image_number(_IMAGE_NUMBER_SPAN.fullmatch(text))
            word = text.strip().rstrip(".").strip().lower()
            return self.words.get(word) or self.words.get(_SEPARATORS.sub("-", word))
        if answer_type == "choice":
            return self._choice_span(text)
        match = _BRACKETED_SPAN.fullmatch(text)
        if match is not None:
            inner, unit = match.group(1), match.group(2)
        else:
            inner, unit = text.rstrip().rstrip("."), None
            if "[" in inner or "]" in inner or "(" in inner or ")" in inner:
                return None
        if unit is None and answer_type == "vector":
            tail = _TAIL_UNIT.match(response, end)
            if tail is not None:
                unit = tail.group(1)
        return self._tuple(inner, unit, bare=match is None)

    _CHOICE_SPAN = re.compile(
        r"\s*(?:(?i:option|answer|point|label)\s*[:\-]?\s*)?\(?([A-Za-z])\)?\s*[.:]?\s*"
    )

    def _choice_span(self, text: str) -> str | None:
        match = self._CHOICE_SPAN.fullmatch(text)
        return None if match is None else self.words.get(match.group(1))

    # --- fallback

    def fallback(self, response: str) -> Value | None:
        """The last fallback match in the whole response, or ``None``."""
        answer_type = self.answer_type
        if answer_type == "scalar":
            for number, unit in reversed(_SCALAR_FALLBACK.findall(response)):
                value = self._number(number, unit or None)
                if value is not None:
                    return value
            return None
        if answer_type == "label":
            if self.numbered:
                for pattern in (_IMAGE_NUMBER_FALLBACK, _FREE_INTEGER):
                    for match in reversed(list(pattern.finditer(response))):
                        value = self._image_number(match)
                        if value is not None:
                            return value
                return None
            assert self.label_fallback is not None
            found = self.label_fallback.findall(response.lower())
            return self.words.get(_SEPARATORS.sub("-", found[-1])) if found else None
        if answer_type == "choice":
            for pattern in self.letter_fallbacks:
                found = pattern.findall(response)
                if found:
                    return str(found[-1])
            return None
        for inner, unit in reversed(_BRACKET_GROUP.findall(response)):
            value = self._tuple(inner, unit or None, bare=False)
            if value is not None:
                return value
        return None

    # --- values

    def _image_number(self, match: re.Match[str] | None) -> str | None:
        """The image number of a match (group 1) when it is an allowed one, as text."""
        if match is None:
            return None
        return self.words.get(str(int(match.group(1))))

    def _number(self, text: str, unit: str | None) -> Number | None:
        if len(text) > MAX_NUMBER_CHARS:
            return None
        value = parse_number(text)
        if unit is None or unit == "mm":
            return value if unit is None or self.kind == _LENGTH else None
        kind, factor = _UNIT_TABLE[unit.lower()]
        if kind != self.kind:
            return None
        return _scaled(value, factor)

    def _tuple(self, inner: str, unit: str | None, *, bare: bool) -> tuple[Number, ...] | None:
        if len(inner) > MAX_SPAN_CHARS:
            return None
        if self.answer_type == "coord":
            match = _COORD_INTS.fullmatch(inner) or _COORD_PLAIN.fullmatch(inner)
            if match is None or max(map(len, match.groups())) > MAX_NUMBER_CHARS:
                return None
            return (parse_number(match.group(1)), parse_number(match.group(2)))
        match = _VECTOR_INTS.fullmatch(inner)
        if match is not None:
            if max(map(len, match.groups())) > MAX_NUMBER_CHARS:
                return None
            a, b, c = match.groups()
            if unit is None:
                return (int(a), int(b), int(c))
            kind, factor = _UNIT_TABLE[unit.lower()]
            if kind != self.kind:
                return None
            return (int(a) * factor, int(b) * factor, int(c) * factor)
        match = _VECTOR_PLAIN.fullmatch(inner) or _VECTOR_THOUSANDS.fullmatch(inner)
        if match is None:
            return None
        numbers, units = match.group(1, 3, 5), match.group(2, 4, 6)
        if bare and unit is None and units[2] is not None and units[0] is None and (
            units[1] is None
        ):
            unit, units = units[2], (None, None, None)
        values = []
        for number, own in zip(numbers, units, strict=True):
            value = self._number(number, own or unit)
            if value is None:
                return None
            values.append(value)
        return tuple(values)


_PARSERS: dict[str, _Parser] = {}


def _parser(answer_type: str, subtask: str) -> _Parser:
    spec = SUBTASKS.get(subtask)
    if spec is None:
        raise ValueError(f"parse_answer: unknown subtask {subtask!r}; expected one of "
                         f"{sorted(SUBTASKS)}")
    if spec.answer_type != answer_type:
        raise ValueError(f"parse_answer: subtask {subtask} has answer_type "
                         f"{spec.answer_type!r}, got {answer_type!r}")
    parser = _PARSERS[subtask] = _Parser(subtask, answer_type)
    return parser


def parse_answer(response: str | None, answer_type: str, subtask: str) -> ParsedAnswer:
    """Extract the answer of ``response`` for a record of ``subtask``.

    Args:
        response: the model's text (``None`` counts as empty).
        answer_type: ``label``, ``choice``, ``scalar``, ``vector`` or ``coord``; must be the
            subtask's own (``SUBTASKS[subtask].answer_type``).
        subtask: one of the 22 subtask names (gives the allowed words/letters and the unit).

    Returns:
        A :class:`ParsedAnswer`; scalars and vectors in mm (or degrees), coords in normalised
        0–1000 units.

    Raises:
        ValueError: unknown subtask or an answer_type that does not match it.
    """
    parser = _PARSERS.get(subtask)
    if parser is None or parser.answer_type != answer_type:
        parser = _parser(answer_type, subtask)
    if not response or response.isspace():
        return EMPTY
    if len(response) > MAX_RESPONSE_CHARS:
        response = response[-MAX_RESPONSE_CHARS:]
    spans = list(_SPAN.finditer(response)) if "`" in response else None
    if spans:
        span = parser.span
        for match in reversed(spans):
            value = span(match.group(1), response, match.end())
            if value is not None:
                return ParsedAnswer(value, None, "backtick")
    value = parser.fallback(response)
    if value is not None:
        return ParsedAnswer(value, None, "fallback")
    return _NO_BACKTICK_MATCH if spans else _NO_MATCH

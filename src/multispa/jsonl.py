"""Reading JSON and JSON Lines files with errors that name the file and line.

Every JSON(L) reader of the project (dataset splits, benchmarks, predictions, exports, run and
meta files) goes through these functions, so a bad file or line is reported the same way
everywhere:
``FormatError(path, "line N: invalid JSON (...)")``, ``"line N: expected a JSON object, found
list"``, ``"line N: JSON nested too deeply to read"``, ``"not UTF-8 text (...)"``; a missing file
is a ``MissingFileError``. :func:`short_repr` keeps values quoted in messages short.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from multispa.errors import FormatError, MissingFileError

__all__ = [
    "iter_jsonl_lines",
    "iter_jsonl_objects",
    "parse_jsonl_object",
    "read_json_file",
    "read_json_object",
    "read_jsonl_objects",
    "short_repr",
]


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 60
_SHORT.maxlevel = 3


def short_repr(value: Any) -> str:
    """``repr(value)`` cut short (long strings and numbers, deep or long containers), for
    messages that quote a value read from a file."""
    try:
        return _SHORT.repr(value)
    except ValueError:  # an integer too long to print
        return f"<{type(value).__name__} too long to show>"


def parse_jsonl_object(path: Path, number: int, line: str) -> dict[str, Any]:
    """The JSON object on line ``number`` (1-based) of ``path``.

    Raises:
        FormatError: the line is not valid JSON, or holds something other than an object.
    """
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"line {number}: invalid JSON ({exc.msg} at column "
                                f"{exc.colno})") from None
    except RecursionError:
        raise FormatError(path, f"line {number}: JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise FormatError(path, f"line {number}: invalid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise FormatError(path, f"line {number}: expected a JSON object, found "
                                f"{type(obj).__name__}")
    return obj


def iter_jsonl_lines(path: Path, *, missing: str | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines of ``path``, streamed.

    Args:
        path: a UTF-8 text file.
        missing: the problem stated when the file does not exist (default: "file not found").

    Raises:
        MissingFileError: no such file.
        FormatError: the file is not UTF-8.
    """
    try:
        handle = path.open(encoding="utf-8")
    except FileNotFoundError:
        raise MissingFileError(path, missing or "file not found") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    yield number, line
        except UnicodeDecodeError as exc:
            raise FormatError(path, f"not UTF-8 text ({exc.reason})") from None


def iter_jsonl_objects(
    path: Path, *, missing: str | None = None,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line of ``path``, streamed.

    Raises:
        MissingFileError, FormatError: as :func:`iter_jsonl_lines` and
            :func:`parse_jsonl_object`.
    """
    for number, line in iter_jsonl_lines(path, missing=missing):
        yield number, parse_jsonl_object(path, number, line)


def read_jsonl_objects(path: Path) -> list[dict[str, Any]]:
    """Every object of ``path``, in file order (see :func:`iter_jsonl_objects`)."""
    return [obj for _, obj in iter_jsonl_objects(path)]


def read_json_file(path: Path) -> Any:
    """The JSON value in ``path`` (a whole-file JSON document).

    Raises:
        MissingFileError: no such file.
        FormatError: not UTF-8, or not valid JSON (names the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MissingFileError(path) from None
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"invalid JSON at line {exc.lineno} ({exc.msg})") from None
    except RecursionError:
        raise FormatError(path, "JSON nested too deeply to read") from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise FormatError(path, f"invalid JSON ({exc})") from None


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (see :func:`read_json_file`).

    Raises:
        MissingFileError, FormatError: as :func:`read_json_file`, or the value is not an object.
    """
    obj = read_json_file(path)
    if not isinstance(obj, dict):
        raise FormatError(path, f"expected a JSON object, found {type(obj).__name__}")
    return obj

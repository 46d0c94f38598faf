"""The 12-row table (paper's Table 2 layout) as Markdown, for READMEs and papers, and the N-view
table beside it.

One column per run (accuracy %, two decimals, from ``scores.json``), then the paper's published
columns (Multi-SpatialMLLM, InternVL2-8B, GPT-4o) marked ``†``; the 12 rows in the paper's
order and the **Average** (for runs: the scorer's unweighted mean of the rows present; an Average
over fewer than 12 rows is starred). A blind run follows its sighted run, and a **Vision gain**
column (sighted − blind, points) follows the pair; a ``baseline:prior`` run on the same
benchmark is marked as their floor (:mod:`multispa.report.vision`). When a run has N-view items,
a second table follows with the nine N-view subtasks and their own **N-view average**
(:func:`nview_markdown_table`).

Run names are written as literal text (:func:`escape_markdown`), so a name holding ``|``, ``*``,
``<tag>`` or a link renders as itself and keeps the table's columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from multispa.metrics.rows import (
    NVIEW_NAMES,
    REFERENCE_AVERAGES,
    REFERENCE_MODELS,
    REFERENCE_ROWS,
    ROWS,
)
from multispa.report.load import RunData
from multispa.report.vision import FLOOR_MODEL, arrange_runs, format_gain, vision_gain, vision_pairs

__all__ = [
    "escape_markdown",
    "format_pct",
    "markdown_table",
    "nview_markdown_table",
    "run_average_pct",
    "run_row_values",
]

PUBLISHED_MARK = "†"


def format_pct(value: float | None, digits: int = 2) -> str:
    """A percentage as text with ``digits`` decimals; ``–`` for ``None``."""
    return "–" if value is None else f"{value:.{digits}f}"


#: ASCII punctuation that CommonMark or GitHub's Markdown could read as markup inside a table
#: cell: escapes, code, emphasis, strikethrough, links and images, HTML tags and entities, math
#: and the cell separator. Any ASCII punctuation may be backslash-escaped.
_MARKUP_CHARS = frozenset("\\`*_~[]<>!&$|")


def escape_markdown(text: str) -> str:
    r"""``text`` as literal Markdown inline text: markup characters backslash-escaped, line breaks
    and tabs turned into spaces (a table cell is one line).

    >>> print(escape_markdown("a|b *c* <i>"))
    a\|b \*c\* \<i\>
    """
    flat = " ".join(text.replace("\r", "\n").replace("\t", " ").split("\n"))
    return "".join(f"\\{char}" if char in _MARKUP_CHARS else char for char in flat)


_cell = escape_markdown


def run_row_values(scores: Mapping[str, Any]) -> dict[str, float | None]:
    """Row key → accuracy % from a scorer report (``None`` for rows without items)."""
    out: dict[str, float | None] = {row.key: None for row in ROWS}
    for row in scores.get("rows") or []:
        if isinstance(row, Mapping) and row.get("key") in out:
            value = row.get("accuracy_pct")
            out[row["key"]] = float(value) if isinstance(value, int | float) else None
    return out


def run_average_pct(scores: Mapping[str, Any]) -> float | None:
    """The scorer report's Average in percent (``None`` when absent)."""
    value = (scores.get("summary") or {}).get("average_pct")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ci_text(ci: object) -> str:
    if isinstance(ci, list) and len(ci) == 2 and all(isinstance(v, int | float) for v in ci):
        return f" ({ci[0]:.1f}–{ci[1]:.1f})"
    return ""


def _average_cell(scores: Mapping[str, Any], with_ci: bool) -> tuple[str, bool]:
    """The text of an average cell (``average_pct``, starred when ``average_complete`` is False,
    with ``average_ci_pct`` when asked) and whether it is starred."""
    value = scores.get("average_pct")
    text = format_pct(value if isinstance(value, int | float) else None)
    partial = value is not None and scores.get("average_complete") is False
    if partial:
        text += "*"
    if with_ci and value is not None:
        text += _ci_text(scores.get("average_ci_pct"))
    return text, partial


def markdown_table(runs: Sequence[RunData], *, published: bool = True,
                   with_ci: bool = False) -> str:
    """The Markdown table (with a note under it) for ``runs`` and the published rows.

    Args:
        runs: loaded runs (``label``, ``config`` and ``scores`` are read); blind runs are moved
            next to their sighted runs.
        published: add the paper's three published columns.
        with_ci: append the runs' 95 % intervals ``(low–high)`` to their cells.
    """
    runs = arrange_runs(runs)
    pairs = vision_pairs(runs)
    gain_after = {pair.blind: pair.sighted for pair in pairs}
    floors = {pair.floor for pair in pairs if pair.floor is not None}
    models = list(REFERENCE_MODELS) if published else []
    header = ["Row"]
    for index, run in enumerate(runs):
        header.append(_cell(run.label) + (" (floor)" if index in floors else ""))
        if index in gain_after:
            header.append(f"Vision gain ({_cell(runs[gain_after[index]].label)})")
    header += [f"{model} {PUBLISHED_MARK}" for model in models]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    row_cis: list[dict[str, object]] = [
        {r.get("key"): r.get("ci_pct") for r in run.scores.get("rows") or []
         if isinstance(r, Mapping)} for run in runs
    ]
    values = [{**run_row_values(run.scores), "average": run_average_pct(run.scores)}
              for run in runs]
    gains = {blind: vision_gain(values[sighted], values[blind])
             for blind, sighted in gain_after.items()}
    for row in ROWS:
        cells = [row.short_name]
        for index, (run_values, cis) in enumerate(zip(values, row_cis, strict=True)):
            text = format_pct(run_values[row.key])
            if with_ci and run_values[row.key] is not None:
                text += _ci_text(cis.get(row.key))
            cells.append(text)
            if index in gains:
                cells.append(format_gain(gains[index][row.key]))
        cells += [format_pct(REFERENCE_ROWS[m][row.key]) for m in models]
        lines.append("| " + " | ".join(cells) + " |")
    averages = [_average_cell(run.scores.get("summary") or {}, with_ci) for run in runs]
    partial = any(star for _, star in averages)
    average_cells = ["**Average**"]
    for index, (text, _) in enumerate(averages):
        average_cells.append(f"**{text}**")
        if index in gains:
            average_cells.append(f"**{format_gain(gains[index]['average'])}**")
    average_cells += [f"**{format_pct(REFERENCE_AVERAGES[m])}**" for m in models]
    lines.append("| " + " | ".join(average_cells) + " |")
    notes = ["Accuracy in %. Rows pool their benchmark subtasks; Average is the unweighted "
                 "mean of the 12 rows."]
    if pairs:
        notes.append("Vision gain: sighted minus blind accuracy of the same model, in points; "
                     "the blind run, marked (blind), was asked the same items without their "
                     "images.")
        if floors:
            notes.append(f"(floor): the {FLOOR_MODEL} run, which answers each subtask's most "
                         "frequent label or median value without images; a blind run near it "
                         "answers from those statistics alone.")
        else:
            notes.append(f"Add a {FLOOR_MODEL} run on the same benchmark to show the floor.")
    if models:
        notes.append(f"{PUBLISHED_MARK} Published in the paper (Table 2). The paper's benchmark "
                     "items were never released, so these columns were measured on different "
                     "items: a reference level, not a like-for-like comparison.")
    if partial:
        notes.append("\\* Average over the rows present only (some rows have no items).")
    if with_ci:
        notes.append("Run cells give the 95 % percentile-bootstrap interval in parentheses.")
    text = "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"
    nview = nview_markdown_table(runs, with_ci=with_ci)
    return text + ("\n" + nview if nview else "")


def nview_markdown_table(runs: Sequence[RunData], *, with_ci: bool = False) -> str:
    """The N-view table (nine subtasks and the N-view average, accuracy %) for ``runs``, or
    ``""`` when no run has N-view items. It sits beside the 12-row table, never inside it."""
    sections = [run.scores.get("nview") or {} for run in runs]
    if all(section.get("average_pct") is None for section in sections):
        return ""
    header = ["N-view subtask", *(_cell(run.label) for run in runs)]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    by_run = [{row.get("key"): row for row in section.get("subtasks") or []
               if isinstance(row, Mapping)} for section in sections]
    for key, name in NVIEW_NAMES.items():
        cells = [name]
        for rows in by_run:
            row = rows.get(key) or {}
            value = row.get("accuracy_pct")
            text = format_pct(value if isinstance(value, int | float) else None)
            if with_ci and isinstance(value, int | float):
                text += _ci_text(row.get("ci_pct"))
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    averages = [_average_cell(section, with_ci) for section in sections]
    partial = any(star for _, star in averages)
    average_cells = ["**N-view average**", *(f"**{text}**" for text, _ in averages)]
    lines.append("| " + " | ".join(average_cells) + " |")
    notes = ["N-view subtasks (an extension beyond the paper): accuracy in %; the N-view average "
             "is the unweighted mean of the nine subtasks and is not part of the Average of the "
             "12 rows. The object count is right only when exact; the two millimetre subtasks "
             "use the 20 % rule."]
    if partial:
        notes.append("\\* Average over the N-view subtasks present only.")
    return "\n".join(lines) + "\n\n" + "\n\n".join(notes) + "\n"

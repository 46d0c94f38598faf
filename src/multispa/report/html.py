"""One self-contained HTML page comparing runs with the paper's published rows.

Sections: run summaries; the 12-row table (Table-2 order + Average) for every run, with 95 %
intervals, beside the paper's published columns (marked *published*: measured on the paper's own,
unreleased items); when blind runs are given, the vision gain of each (sighted − blind per row,
with the ``baseline:prior`` run as the floor; :mod:`multispa.report.vision`), a blind run's
column following its sighted run's everywhere; when a run has N-view items, the N-view table
(nine subtasks and their own N-view average, beside the 12 rows and never inside them); one bar
chart per row (inline SVG drawn here, no plotting library); the benchmark-subtask tables
(accuracy, interval, MRA, parse failures, n); the object-movement ADT/PStudio and static/moving
breakdowns; an item browser (filter by run, subtask, verdict, text) showing each item's images,
question, every run's raw answer, parsed value, ground truth and verdict.

Safety: every text that comes from files (questions, model answers, run names, config values) is
either written with :func:`html.escape` or shipped inside one JSON data block
(``<script type="application/json">``, ``<``, ``>``, ``&`` written as ``\\u003c`` ... so no
markup can close the block) that the page's script reads with ``JSON.parse`` and displays
through ``textContent`` and ``createElement`` only — never ``innerHTML``. A Content-Security-Policy
allows only the page's own script (by its SHA-256), inline styles and ``data:`` images, so the
page loads nothing from the network. Images are embedded as JPEG data URLs, downscaled with
Pillow (``thumb_width_px`` wide, quality ``jpeg_quality``); the browser holds up to
``items_per_key`` items per benchmark key (items some run got wrong first), all when ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from multispa import __version__
from multispa.formats import gt_text, prompt_text
from multispa.fs import check_output_file, write_output_file
from multispa.metrics.rows import (
    NVIEW_NAMES,
    NVIEW_SUBTASKS,
    REFERENCE_AVERAGES,
    REFERENCE_MODELS,
    REFERENCE_NOTES,
    REFERENCE_ROWS,
    ROW_OF_SUBTASK,
    ROWS,
    benchmark_key,
)
from multispa.report.load import Bench, RunData, run_is_blind
from multispa.report.markdown import format_pct, run_average_pct, run_row_values
from multispa.report.vision import (
    FLOOR_MODEL,
    VisionPair,
    arrange_runs,
    format_gain,
    vision_gain,
    vision_pairs,
)

__all__ = [
    "DEFAULT_ITEMS_PER_KEY",
    "html_text",
    "jpeg_data_uri",
    "json_for_script",
    "render_html",
    "write_html",
]

DEFAULT_ITEMS_PER_KEY = 10
RUN_COLOURS: tuple[str, ...] = (
    "#2563eb", "#ea580c", "#059669", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4f46e5",
)
PUBLISHED_COLOURS: tuple[str, ...] = ("#475569", "#94a3b8", "#cbd5e1")
_ROW_SHORT = {row.key: row.short_name for row in ROWS}


def html_text(value: object) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


_e = html_text


def jpeg_data_uri(image: Image.Image, width_px: int, quality: int) -> tuple[str, int, int]:
    """``(data URI, width, height)`` of ``image`` as a JPEG at most ``width_px`` wide
    (downscaled with Lanczos when wider)."""
    if image.width > width_px:
        height = max(1, round(image.height * width_px / image.width))
        image = image.resize((width_px, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=quality, optimize=True)
    return ("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            image.width, image.height)


def json_for_script(data: object) -> str:
    """JSON that can sit inside ``<script type="application/json">``: ``<``, ``>``, ``&``,
    U+2028 and U+2029 are written as ``\\uXXXX`` escapes (they only occur inside strings)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    return text


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ci(value: object) -> tuple[float, float] | None:
    if isinstance(value, list) and len(value) == 2:
        low, high = _num(value[0]), _num(value[1])
        if low is not None and high is not None:
            return low, high
    return None


def _ci_text(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"{ci[0]:.1f}–{ci[1]:.1f}"


# ------------------------------------------------------------------------------- thumbnails


class _Thumbnails:
    """JPEG data URLs of downscaled images, one per distinct file, indexed in order of use."""

    def __init__(self, width_px: int, quality: int) -> None:
        self.width_px = width_px
        self.quality = quality
        self.urls: list[str | None] = []
        self._index: dict[Path, int] = {}

    def add(self, path: Path) -> int:
        """Index of ``path``'s thumbnail in :attr:`urls` (``None`` there if unreadable)."""
        key = path.resolve()
        if key in self._index:
            return self._index[key]
        url: str | None
        try:
            with Image.open(path) as image:
                if image.width > self.width_px:  # JPEG: decode at a reduced DCT scale
                    image.draft("RGB", (self.width_px, self.width_px * image.height
                                        // image.width))
                rgb = image.convert("RGB")
            url = jpeg_data_uri(rgb, self.width_px, self.quality)[0]
        except (FileNotFoundError, UnidentifiedImageError, OSError):
            url = None
        self._index[key] = len(self.urls)
        self.urls.append(url)
        return self._index[key]


# --------------------------------------------------------------------------------- sections


def _run_cards(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    cards = []
    for run, colour in zip(runs, colours, strict=True):
        summary = run.scores.get("summary") or {}
        scorer = run.scores.get("scorer") or {}
        mode = scorer.get("mode") or {}
        average = _num(summary.get("average_pct"))
        ci = _ci(summary.get("average_ci_pct"))
        facts = [
            ("Items", summary.get("records", "–")),
            ("Overall accuracy", f"{format_pct(_num(summary.get('accuracy_pct')))} %"),
            ("Parse failures", f"{summary.get('parse_failures', '–')} "
                               f"({format_pct(_num(summary.get('parse_failure_rate_pct')), 1)} %)"),
            ("Missing predictions", summary.get("missing_predictions", "–")),
            ("MRA, row mean", f"{format_pct(_num(summary.get('mra_row_mean_pct')))} %"),
            ("Scorer", f"{scorer.get('version', '?')} · MRA {mode.get('mra_operator', '?')}"),
        ]
        bench_cfg = run.config.get("bench")
        bench_hash = ((bench_cfg.get("content_sha256") if isinstance(bench_cfg, Mapping) else None)
                      or run.config.get("bench_content_sha256")
                      or (run.bench.manifest.get("content_sha256") if run.bench else None))
        if isinstance(bench_hash, str):
            facts.append(("Bench hash", bench_hash[:12]))
        nview_average = _num((run.scores.get("nview") or {}).get("average_pct"))
        if nview_average is not None:
            facts.append(("N-view average", f"{format_pct(nview_average)} %"))
        instruction = run.config.get("instruction")
        if isinstance(instruction, Mapping) and "enabled" in instruction:
            facts.append(("Answer instruction", "on" if instruction["enabled"] else "off"))
        if run_is_blind(run.config):
            facts.append(("Images", "withheld (blind run)"))
        missing = summary.get("rows_missing") or []
        rows_note = ""
        if missing:
            rows_note = (f'<p class="warn">Average over {12 - len(missing)} of 12 rows; no items '
                         f'for: {_e(", ".join(_ROW_SHORT.get(k, str(k)) for k in missing))}</p>')
        config_json = json.dumps(run.config, indent=1, ensure_ascii=False, sort_keys=True)
        cards.append(f"""
<article class="card run-card" style="--run:{colour}">
  <h3><span class="swatch"></span>{_e(run.label)}</h3>
  <p class="muted path">{_e(run.path.name)}</p>
  <div class="big">{_e(format_pct(average))}<span class="unit">%</span></div>
  <p class="muted">Average of the 12 rows{f" · 95 % CI {_e(_ci_text(ci))}" if ci else ""}</p>
  {rows_note}
  <dl>{"".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)}</dl>
  <details><summary>Run configuration</summary><pre>{_e(config_json)}</pre></details>
</article>""")
    return '<div class="cards">' + "".join(cards) + "</div>"


def _main_table(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    values = [run_row_values(run.scores) for run in runs]
    cis = [{r.get("key"): _ci(r.get("ci_pct")) for r in run.scores.get("rows") or []
            if isinstance(r, Mapping)} for run in runs]
    counts = [{r.get("key"): (r.get("correct"), r.get("n")) for r in run.scores.get("rows") or []
               if isinstance(r, Mapping)} for run in runs]
    head_runs = "".join(
        f'<th class="num run-col" style="--run:{c}"><span class="swatch"></span>{_e(run.label)}'
        f"</th>" for run, c in zip(runs, colours, strict=True))
    head_pub = "".join(f'<th class="num pub">{_e(m)}</th>' for m in REFERENCE_MODELS)
    body = []

    def run_cell(value: float | None, ci: tuple[float, float] | None, colour: str,
                 title: str) -> str:
        if value is None:
            return '<td class="num empty">–</td>'
        bar = max(0.0, min(100.0, value))
        ci_html = f'<span class="ci">{_e(_ci_text(ci))}</span>' if ci else ""
        return (f'<td class="num bar-cell" style="--v:{bar:.2f}%;--run:{colour}" '
                f'title="{_e(title)}"><span class="val">{value:.2f}</span>{ci_html}</td>')

    def pub_cell(value: float) -> str:
        return (f'<td class="num pub bar-cell pub-bar" style="--v:{value:.2f}%">'
                f'<span class="val">{value:.2f}</span></td>')

    for index, row in enumerate(ROWS, start=1):
        cells = [f'<th scope="row"><span class="rownum">{index}</span>{_e(row.name)}</th>']
        for run_values, run_cis, run_counts, colour in zip(values, cis, counts, colours,
                                                          strict=True):
            correct, n = run_counts.get(row.key, (None, None))
            cells.append(run_cell(run_values[row.key], run_cis.get(row.key), colour,
                                  f"{correct}/{n} correct"))
        cells += [pub_cell(REFERENCE_ROWS[m][row.key]) for m in REFERENCE_MODELS]
        body.append("<tr>" + "".join(cells) + "</tr>")
    cells = ['<th scope="row">Average</th>']
    for run, colour in zip(runs, colours, strict=True):
        summary = run.scores.get("summary") or {}
        average = _num(summary.get("average_pct"))
        title = f"unweighted mean of {summary.get('average_rows', '?')} rows"
        cells.append(run_cell(average, _ci(summary.get("average_ci_pct")), colour, title))
    cells += [pub_cell(REFERENCE_AVERAGES[m]) for m in REFERENCE_MODELS]
    body.append('<tr class="avg">' + "".join(cells) + "</tr>")
    return f"""
<div class="table-wrap">
<table class="main-table">
  <colgroup><col class="rowname">{'<col class="runs">' * len(runs)}
    {'<col class="pubs">' * 3}</colgroup>
  <thead>
    <tr class="group"><th></th><th colspan="{len(runs)}" class="grp-runs">This benchmark ·
      accuracy % (95 % CI)</th><th colspan="3" class="grp-pub"><span class="badge">published</span>
      Paper, Table 2 · different items</th></tr>
    <tr><th>Row</th>{head_runs}{head_pub}</tr>
  </thead>
  <tbody>{"".join(body)}</tbody>
</table>
</div>"""


def _gain_cell(value: float | None) -> str:
    cls = "num" if not value else ("num gain-pos" if value > 0 else "num gain-neg")
    return f'<td class="{cls}">{_e(format_gain(value))}</td>'


def _vision_table(runs: Sequence[RunData], colours: Sequence[str],
                  pairs: Sequence[VisionPair]) -> str:
    """Per pair: sighted, blind, vision gain (sighted − blind) and floor, for 12 rows + Average."""
    values = [{**run_row_values(run.scores), "average": run_average_pct(run.scores)}
              for run in runs]
    gains = [vision_gain(values[pair.sighted], values[pair.blind]) for pair in pairs]
    head_top = "".join(
        f'<th colspan="4" class="run-col grp" style="--run:{colours[pair.sighted]}">'
        f'<span class="swatch"></span>{_e(runs[pair.sighted].label)}</th>' for pair in pairs)
    head = "".join('<th class="num">Sighted</th><th class="num">Blind</th>'
                   '<th class="num">Vision gain</th><th class="num">Floor (prior)</th>'
                   for _ in pairs)
    body = []
    for key, name, row_class in [*((row.key, row.name, "") for row in ROWS),
                                 ("average", "Average", ' class="avg"')]:
        cells = [f'<th scope="row">{_e(name)}</th>']
        for pair, gain in zip(pairs, gains, strict=True):
            floor = values[pair.floor][key] if pair.floor is not None else None
            cells += [f'<td class="num">{_e(format_pct(values[pair.sighted][key]))}</td>',
                      f'<td class="num">{_e(format_pct(values[pair.blind][key]))}</td>',
                      _gain_cell(gain[key]),
                      f'<td class="num pub">{_e(format_pct(floor))}</td>']
        body.append(f"<tr{row_class}>" + "".join(cells) + "</tr>")
    notes = ["Vision gain = sighted − blind accuracy, in points: the blind run asked the same "
             "items without their images (the prompt says so in one sentence).",
             f"Floor: the {FLOOR_MODEL} run on the same benchmark (each subtask's most frequent "
             "label or median value, no images); a blind run near it answers from those "
             "statistics alone."]
    if any(pair.floor is None for pair in pairs):
        notes.append(f"Add a {FLOOR_MODEL} run on the same benchmark to fill the floor column.")
    return f"""
<div class="table-wrap">
<table class="sub-table vision-table">
  <thead><tr><th></th>{head_top}</tr><tr><th>Row</th>{head}</tr></thead>
  <tbody>{"".join(body)}</tbody>
</table>
</div>
<ul class="notes">{"".join(f"<li>{_e(note)}</li>" for note in notes)}</ul>"""
def _nview_table(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    """The N-view table: accuracy (95 % CI), MRA where it applies and n, per run, and the
    N-view average (unweighted mean of the nine subtasks)."""
    sections = [run.scores.get("nview") or {} for run in runs]
    by_run = [{r.get("key"): r for r in section.get("subtasks") or [] if isinstance(r, Mapping)}
              for section in sections]
    head = "".join(
        f'<th class="num run-col" style="--run:{c}"><span class="swatch"></span>{_e(run.label)}'
        "</th>" for run, c in zip(runs, colours, strict=True))
    body = []
    for index, (key, name) in enumerate(NVIEW_NAMES.items(), start=1):
        cells = [f'<th scope="row"><span class="rownum">{index}</span>{_e(name)} '
                 f'<code class="muted">{_e(key)}</code></th>']
        for rows, colour in zip(by_run, colours, strict=True):
            row = rows.get(key) or {}
            value = _num(row.get("accuracy_pct"))
            if value is None or not row.get("n"):
                cells.append('<td class="num empty">–</td>')
                continue
            ci = _ci(row.get("ci_pct"))
            mra = _num(row.get("mra_pct"))
            extra = f" · MRA {mra:.1f}" if mra is not None else ""
            cells.append(
                f'<td class="num bar-cell" style="--v:{max(0.0, min(100.0, value)):.2f}%;'
                f'--run:{colour}" title="{_e(row.get("correct"))}/{_e(row.get("n"))} correct">'
                f'<span class="val">{value:.2f}</span><span class="ci">'
                f'{_e(_ci_text(ci))}{_e(extra)} · n {_e(row.get("n"))}</span></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    cells = ['<th scope="row">N-view average</th>']
    for section, colour in zip(sections, colours, strict=True):
        value = _num(section.get("average_pct"))
        if value is None:
            cells.append('<td class="num empty">–</td>')
            continue
        ci = _ci(section.get("average_ci_pct"))
        cells.append(
            f'<td class="num bar-cell" style="--v:{max(0.0, min(100.0, value)):.2f}%;'
            f'--run:{colour}" title="unweighted mean of {_e(section.get("average_subtasks"))} '
            f'N-view subtasks"><span class="val">{value:.2f}</span><span class="ci">'
            f'{_e(_ci_text(ci))}</span></td>')
    body.append('<tr class="avg">' + "".join(cells) + "</tr>")
    return f"""
<div class="table-wrap">
<table class="main-table nview-table">
  <thead><tr><th>N-view subtask</th>{head}</tr></thead>
  <tbody>{"".join(body)}</tbody>
</table>
</div>
<ul class="notes"><li>An extension beyond the paper: questions about a whole scene seen through a
view set of several images. The N-view average is the unweighted mean of the nine subtasks; the
12 rows and their Average above do not include them. The object count is right only when exact;
the two millimetre subtasks use the 20 % rule and report MRA.</li></ul>"""


def _bar_chart(title: str, series: Sequence[tuple[str, float | None, tuple[float, float] | None,
                                                 str, bool]]) -> str:
    """One horizontal bar chart: ``series`` of (name, value %, CI, colour, published)."""
    label_w, plot_w, bar_h, gap, top, right = 160, 370, 16, 7, 6, 50
    height = top + len(series) * (bar_h + gap) + 18
    width = label_w + plot_w + right
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{_e(title)}">']
    for tick in (0, 25, 50, 75, 100):
        x = label_w + plot_w * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{top - 2}" x2="{x:.1f}" y2="{height - 16}" '
                     f'class="grid"/><text x="{x:.1f}" y="{height - 4}" class="tick" '
                     f'text-anchor="middle">{tick}</text>')
    for i, (name, value, ci, colour, published) in enumerate(series):
        y = top + i * (bar_h + gap)
        tail = " (blind)" if name.endswith(" (blind)") else ""  # keep a blind run told apart
        short = name if len(name) <= 22 else name[:21 - len(tail)] + "…" + tail
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h - 4}" text-anchor="end" '
                     f'class="{"lbl pub-lbl" if published else "lbl"}"><title>{_e(name)}'
                     f'{" (published)" if published else ""}</title>{_e(short)}</text>')
        if value is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + bar_h - 4}" class="na">no items'
                         "</text>")
            continue
        w = plot_w * max(0.0, min(100.0, value)) / 100
        fill = "url(#hatch)" if published else colour
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="2" '
                     f'fill="{fill}" stroke="{colour}" stroke-width="{1 if published else 0}">'
                     f"<title>{_e(name)}: {value:.2f} %</title></rect>")
        end = w
        if ci is not None:
            x0 = label_w + plot_w * max(0.0, ci[0]) / 100
            x1 = label_w + plot_w * min(100.0, ci[1]) / 100
            ym = y + bar_h / 2
            parts.append(f'<path d="M{x0:.1f},{ym} H{x1:.1f} M{x0:.1f},{ym - 4} V{ym + 4} '
                         f'M{x1:.1f},{ym - 4} V{ym + 4}" class="whisker"/>')
            end = max(end, x1 - label_w)
        parts.append(f'<text x="{label_w + end + 5:.1f}" y="{y + bar_h - 4}" class="v">'
                     f"{value:.1f}</text>")
    parts.append("</svg>")
    return (f'<figure class="chart-card"><figcaption>{_e(title)}</figcaption>'
            f'{"".join(parts)}</figure>')


def _charts(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    values = [run_row_values(run.scores) for run in runs]
    cis = [{r.get("key"): _ci(r.get("ci_pct")) for r in run.scores.get("rows") or []
            if isinstance(r, Mapping)} for run in runs]
    charts = []
    for row in ROWS:
        series = [(run.label, run_values[row.key], run_cis.get(row.key), colour, False)
                  for run, run_values, run_cis, colour in zip(runs, values, cis, colours,
                                                              strict=True)]
        series += [(m, REFERENCE_ROWS[m][row.key], None, PUBLISHED_COLOURS[i], True)
                   for i, m in enumerate(REFERENCE_MODELS)]
        charts.append(_bar_chart(row.name, series))
    series = []
    for run, colour in zip(runs, colours, strict=True):
        summary = run.scores.get("summary") or {}
        series.append((run.label, _num(summary.get("average_pct")),
                       _ci(summary.get("average_ci_pct")), colour, False))
    series += [(m, REFERENCE_AVERAGES[m], None, PUBLISHED_COLOURS[i], True)
               for i, m in enumerate(REFERENCE_MODELS)]
    charts.append(_bar_chart("Average (unweighted mean of the 12 rows)", series))
    legend = "".join(
        f'<span class="legend-item" style="--run:{c}"><span class="swatch"></span>{_e(r.label)}'
        "</span>" for r, c in zip(runs, colours, strict=True))
    legend += ('<span class="legend-item"><span class="swatch hatch"></span>published (paper, '
               "different items)</span>")
    return f'<p class="legend">{legend}</p><div class="charts">{"".join(charts)}</div>'


def _subtask_tables(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    per_run = [run.scores.get("subtasks") or {} for run in runs]
    head_top = "".join(
        f'<th colspan="5" class="run-col grp" style="--run:{c}"><span class="swatch"></span>'
        f"{_e(run.label)}</th>" for run, c in zip(runs, colours, strict=True))
    head = "".join('<th class="num">Acc %</th><th class="num">95 % CI</th><th class="num">MRA %'
                   '</th><th class="num">Parse fail</th><th class="num">n</th>' for _ in runs)
    body = []
    groups = [(row.name, row.subtasks) for row in ROWS]
    if any(key in subtasks for subtasks in per_run for key in NVIEW_SUBTASKS):
        groups.append(("N-view (extension beyond the paper)", NVIEW_SUBTASKS))
    for group_name, keys in groups:
        body.append(f'<tr class="rowgroup"><th colspan="{1 + 5 * len(runs)}">{_e(group_name)}'
                    "</th></tr>")
        for key in keys:
            cells = [f'<th scope="row"><code>{_e(key)}</code></th>']
            for subtasks in per_run:
                stats = subtasks.get(key)
                if not isinstance(stats, Mapping) or not stats.get("n"):
                    cells.append('<td class="num empty" colspan="5">no items</td>')
                    continue
                acc = _num(stats.get("accuracy_pct"))
                mra = _num(stats.get("mra_pct"))
                failures = stats.get("parse_failures", 0)
                fail_cls = "num bad-text" if failures else "num"
                cells.append(
                    f'<td class="num strong">{_e(format_pct(acc))}</td>'
                    f'<td class="num cival">{_e(_ci_text(_ci(stats.get("ci_pct"))))}</td>'
                    f'<td class="num">{_e(format_pct(mra, 1)) if mra is not None else "–"}</td>'
                    f'<td class="{fail_cls}">{_e(failures)}</td>'
                    f'<td class="num">{_e(stats.get("n"))}</td>')
            body.append("<tr>" + "".join(cells) + "</tr>")
    return f"""
<div class="table-wrap">
<table class="sub-table">
  <thead><tr><th></th>{head_top}</tr><tr><th>Benchmark key</th>{head}</tr></thead>
  <tbody>{"".join(body)}</tbody>
</table>
</div>"""


def _cell_stats(stats: object) -> str:
    if not isinstance(stats, Mapping) or not stats.get("n"):
        return '<td class="num empty">–</td>'
    acc = _num(stats.get("accuracy_pct"))
    return (f'<td class="num"><span class="strong">{_e(format_pct(acc))}</span> '
            f'<span class="ci">{_e(stats.get("correct"))}/{_e(stats.get("n"))}</span></td>')


def _breakdowns(runs: Sequence[RunData], colours: Sequence[str]) -> str:
    tables = []
    for run, colour in zip(runs, colours, strict=True):
        om = run.scores.get("object_movement") or {}
        rows_html = []
        for key in ("object_movement_distance", "object_movement_vector"):
            cells = (om.get("rows") or {}).get(key) or {}
            rows_html.append(f'<tr><th scope="row">{_e(_ROW_SHORT[key])}</th>'
                             + "".join(_cell_stats(cells.get(n))
                                       for n in ("adt", "pstudio", "static", "moving"))
                             + "</tr>")
        by_source, by_motion = om.get("by_source") or {}, om.get("by_motion") or {}
        rows_html.append('<tr class="avg"><th scope="row">Both rows</th>'
                         + _cell_stats(by_source.get("adt")) + _cell_stats(by_source.get("pstudio"))
                         + _cell_stats(by_motion.get("static"))
                         + _cell_stats(by_motion.get("moving")) + "</tr>")
        tables.append(f"""
<div class="card breakdown" style="--run:{colour}">
  <h3><span class="swatch"></span>{_e(run.label)}</h3>
  <table><thead><tr><th></th><th class="num">ADT</th><th class="num">PStudio</th>
  <th class="num">Static</th><th class="num">Moving</th></tr></thead>
  <tbody>{"".join(rows_html)}</tbody></table>
</div>""")
    return '<div class="cards wide">' + "".join(tables) + "</div>"


def _notes() -> str:
    notes = "".join(f"<li>{_e(note)}</li>" for note in REFERENCE_NOTES)
    return (f'<ul class="notes">{notes}'
            "<li>Rows pool the items of their benchmark subtasks; the Average is the unweighted "
            "mean of the 12 rows; intervals are 95 % stratified percentile-bootstrap intervals."
            "</li></ul>")


# ---------------------------------------------------------------------------- item browser


def _benches(runs: Sequence[RunData]) -> list[Bench]:
    seen: dict[Path, Bench] = {}
    for run in runs:
        if run.bench is not None:
            seen.setdefault(run.bench.root.resolve(), run.bench)
    return list(seen.values())


def _item_key(item: Mapping[str, Any]) -> str | None:
    try:
        return benchmark_key(item)
    except (ValueError, KeyError):
        return None


def _select(ids_by_key: Mapping[str, list[str]], wrong: set[str],
            per_key: int | None) -> set[str]:
    """Up to ``per_key`` ids per key: items some run got wrong first (half), then the others."""
    chosen: set[str] = set()
    for ids in ids_by_key.values():
        if per_key is None or len(ids) <= per_key:
            chosen.update(ids)
            continue
        bad = [i for i in ids if i in wrong]
        good = [i for i in ids if i not in wrong]
        take_bad = bad[: max(per_key - min(len(good), per_key // 2), 0)]
        take_good = good[: per_key - len(take_bad)]
        chosen.update(take_bad + take_good)
    return chosen


def _browser_data(runs: Sequence[RunData], colours: Sequence[str], per_key: int | None,
                  thumbs: _Thumbnails) -> dict[str, Any]:
    items: dict[str, tuple[Mapping[str, Any], Bench | None]] = {}
    for bench in _benches(runs):
        for item in bench.items:
            items.setdefault(str(item["id"]), (item, bench))
    order = list(items)
    extra = sorted({rid for run in runs for rid in run.outcomes} - set(items))
    order += extra
    keys: dict[str, str] = {}
    for rid in order:
        if rid in items:
            key = _item_key(items[rid][0])
        else:
            key = next((run.outcomes[rid].get("key") for run in runs if rid in run.outcomes),
                       None)
        keys[rid] = str(key) if key else "unknown"
    wrong = {rid for run in runs for rid, o in run.outcomes.items() if not o.get("correct")}
    ids_by_key: dict[str, list[str]] = {}
    for rid in order:
        ids_by_key.setdefault(keys[rid], []).append(rid)
    chosen = _select(ids_by_key, wrong, per_key)
    records = []
    for rid in order:
        if rid not in chosen:
            continue
        item, bench = items.get(rid, ({}, None))
        images = []
        if bench is not None:
            images = [thumbs.add(bench.image_path(str(rel))) for rel in item.get("image", [])]
        outs = []
        for run in runs:
            outcome = run.outcomes.get(rid)
            if outcome is None:
                outs.append(None)
                continue
            parsed = outcome.get("parsed")
            outs.append([
                1 if outcome.get("correct") else 0,
                None if parsed is None else (parsed if isinstance(parsed, str)
                                             else json.dumps(parsed)),
                outcome.get("reason"),
                outcome.get("response"),
                outcome.get("error"),
            ])
        records.append({
            "id": rid,
            "key": keys[rid],
            "row": _ROW_SHORT.get(ROW_OF_SUBTASK.get(keys[rid], ""), "")
                   or ("N-view" if keys[rid] in NVIEW_SUBTASKS else ""),
            "type": item.get("answer_type"),
            "q": prompt_text(str(item["text"])) if "text" in item else None,
            "gt": gt_text(item) if "gt" in item else None,
            "img": images,
            "out": outs,
        })
    key_order = [k for row in ROWS for k in row.subtasks if k in ids_by_key]
    key_order += [k for k in NVIEW_SUBTASKS if k in ids_by_key]
    key_order += sorted(k for k in ids_by_key if k not in key_order)
    return {
        "runs": [{"label": run.label, "colour": c} for run, c in zip(runs, colours, strict=True)],
        "keys": key_order,
        "items": records,
        "total": len(order),
        "perKey": per_key,
    }


# ------------------------------------------------------------------------------------ page


_CSS = """
:root{--fg:#0f172a;--muted:#64748b;--line:#e2e8f0;--bg:#f8fafc;--card:#fff;--ok:#15803d;
--ok-bg:#dcfce7;--bad:#b91c1c;--bad-bg:#fee2e2;--warn:#b45309;--warn-bg:#fef3c7;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 "Inter","Segoe UI",system-ui,
-apple-system,Roboto,"Helvetica Neue",Arial,sans-serif;-webkit-font-smoothing:antialiased}
header.top{background:#0f172a;color:#f8fafc;padding:22px 0 0}
header.top .wrap{padding-bottom:0}
header.top h1{margin:0 0 4px;font-size:24px;font-weight:650;letter-spacing:-.01em}
header.top p{margin:0;color:#cbd5e1}
nav{display:flex;gap:4px;margin-top:16px;flex-wrap:wrap}
nav a{color:#cbd5e1;text-decoration:none;padding:8px 12px;border-radius:8px 8px 0 0;font-weight:500}
nav a:hover{background:#1e293b;color:#fff}
.wrap{max-width:1320px;margin:0 auto;padding:0 28px}
section{margin:34px 0}
h2{font-size:19px;margin:0 0 6px;letter-spacing:-.01em}
h2+p.lead{margin-top:0;color:var(--muted)}
h3{font-size:15px;margin:0 0 4px;display:flex;align-items:center;gap:8px}
.muted{color:var(--muted)}
.swatch{display:inline-block;width:11px;height:11px;border-radius:3px;background:var(--run,#94a3b8);
flex:none;vertical-align:-1px;margin-right:6px}
.swatch.hatch{background:repeating-linear-gradient(45deg,#64748b 0 2px,#e2e8f0 2px 5px)}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:16px 18px;
box-shadow:0 1px 2px rgba(15,23,42,.04)}
.run-card{border-top:4px solid var(--run)}
.run-card .path{margin:0;font-size:12px;font-family:ui-monospace,Menlo,Consolas,monospace}
.big{font-size:34px;font-weight:700;letter-spacing:-.02em;margin-top:8px;
font-variant-numeric:tabular-nums}
.big .unit{font-size:16px;color:var(--muted);margin-left:2px;font-weight:500}
.big+p{margin:0 0 8px}
dl{display:grid;grid-template-columns:auto 1fr;gap:2px 12px;margin:8px 0;font-size:13px}
dt{color:var(--muted)}dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
details summary{cursor:pointer;color:var(--accent);font-size:13px}
details pre{max-height:260px;overflow:auto;background:#f1f5f9;padding:8px;border-radius:6px;
font-size:11.5px}
.warn{background:var(--warn-bg);color:var(--warn);padding:6px 8px;border-radius:6px;
font-size:12.5px}
.table-wrap{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:12px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:7px 12px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
thead th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);
font-weight:600;background:#f8fafc}
tbody tr:hover{background:#f8fafc}
th[scope=row]{font-weight:500}
.num{text-align:right}
.rownum{display:inline-block;width:22px;color:var(--muted);font-size:12px}
.main-table td.bar-cell{background:linear-gradient(90deg,
color-mix(in srgb,var(--run,#2563eb) 16%,transparent) var(--v),transparent var(--v))}
.main-table td.pub-bar{background:linear-gradient(90deg,#94a3b8 var(--v),#eef2f6 var(--v))
left bottom/100% 4px no-repeat}
.main-table thead th.pub{text-transform:none;letter-spacing:0;font-size:13px;color:#334155}
.main-table tbody th,.main-table tbody td{height:46px}
.main-table .val{font-weight:600;font-size:14.5px}
.main-table td.pub .val{font-weight:500;color:#334155}
.ci{display:block;font-size:11px;color:var(--muted)}
td .ci{display:inline}
.main-table td .ci{display:block}
.main-table td.pub{border-left:1px dashed #cbd5e1}
.main-table td.pub+td.pub{border-left:none}
tr.group th{text-transform:none;letter-spacing:0;font-size:12.5px}
th.grp-runs{color:var(--fg);border-bottom:2px solid var(--accent)}
th.grp-pub{color:#334155;border-bottom:2px dashed #94a3b8;border-left:1px dashed #cbd5e1}
.badge{display:inline-block;background:#334155;color:#fff;border-radius:999px;padding:1px 8px;
font-size:10.5px;letter-spacing:.05em;text-transform:uppercase;margin-right:6px;vertical-align:1px}
tr.avg th,tr.avg td{border-top:2px solid #94a3b8;font-weight:700}
tr.avg .val{font-size:16px}
.run-col{color:var(--fg)!important;text-transform:none!important;letter-spacing:0!important;
font-size:13px!important}
.legend{display:flex;gap:18px;flex-wrap:wrap;color:#334155;font-size:13px}
.legend-item{display:inline-flex;align-items:center}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px}
.chart-card{margin:0;background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:12px 14px}
.chart-card figcaption{font-weight:600;font-size:13.5px;margin-bottom:6px}
svg.chart{display:block;width:100%;max-width:640px;height:auto;font-family:inherit}
svg .grid{stroke:#e2e8f0;stroke-width:1}
svg .tick{font-size:10px;fill:#94a3b8}
svg .lbl{font-size:11.5px;fill:#0f172a}
svg .pub-lbl{fill:#475569;font-style:italic}
svg .v{font-size:11px;fill:#334155;font-weight:600}
svg .na{font-size:11px;fill:#94a3b8}
svg .whisker{stroke:#0f172a;stroke-width:1.3;fill:none;opacity:.75}
.sub-table tr.rowgroup th{background:#f1f5f9;color:#334155;font-size:12.5px;text-transform:none;
letter-spacing:0;font-weight:650}
.sub-table th.grp{text-align:center;border-bottom:2px solid var(--run)}
.sub-table code{font-size:12.5px}
.strong{font-weight:600}
.gain-pos{color:var(--ok);font-weight:600}
.gain-neg{color:var(--bad);font-weight:600}
.bad-text{color:var(--bad);font-weight:600}
.empty{color:#cbd5e1}
.cards.wide{grid-template-columns:repeat(auto-fill,minmax(520px,1fr))}
.breakdown table th,.breakdown table td{padding:6px 8px}
td.cival{font-size:11.5px;color:var(--muted)}
ul.notes{color:#475569;font-size:13px;padding-left:18px}
.filters{display:flex;flex-wrap:wrap;gap:10px;align-items:end;background:var(--card);
border:1px solid var(--line);border-radius:12px;padding:12px 14px;position:sticky;top:0;z-index:5}
.filters label{display:flex;flex-direction:column;font-size:11.5px;color:var(--muted);gap:3px;
text-transform:uppercase;letter-spacing:.04em;font-weight:600}
.filters select,.filters input{font:inherit;font-size:13.5px;padding:6px 8px;
border:1px solid #cbd5e1;border-radius:8px;background:#fff;min-width:150px;
text-transform:none;letter-spacing:0}
.filters .count{margin-left:auto;color:var(--muted);font-size:13px}
#item-list{display:flex;flex-direction:column;gap:14px;margin-top:14px}
.item{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px;
border-left:4px solid #cbd5e1}
.item.all-ok{border-left-color:var(--ok)}
.item.all-bad{border-left-color:var(--bad)}
.item.mixed{border-left-color:var(--warn)}
.item-head{display:flex;gap:8px;align-items:center;flex-wrap:wrap;margin-bottom:10px}
.chip{background:#eef2ff;color:#3730a3;border-radius:999px;padding:2px 10px;font-size:12px;
font-weight:600}
.chip.row{background:#f1f5f9;color:#334155}
.item-id{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:11.5px;color:var(--muted)}
.item-body{display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap}
.imgs{display:flex;gap:8px;flex-wrap:wrap}
.imgs figure{margin:0}
.imgs img{display:block;max-width:320px;width:100%;border-radius:8px;border:1px solid var(--line)}
.imgs figcaption{font-size:11.5px;color:var(--muted);margin-top:2px}
.imgs .missing{width:200px;height:120px;display:flex;align-items:center;justify-content:center;
background:#f1f5f9;border-radius:8px;color:var(--muted);font-size:12px}
.qa{flex:1;min-width:320px}
.question{white-space:pre-wrap;margin:0 0 8px;line-height:1.55}
.gt{margin:0 0 10px;font-size:13.5px}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f1f5f9;border-radius:5px;
padding:1px 5px;font-size:12.5px}
.answer{border:1px solid var(--line);border-radius:10px;padding:8px 10px;margin-top:8px}
.answer.ok{background:#f0fdf4;border-color:#bbf7d0}
.answer.bad{background:#fef2f2;border-color:#fecaca}
.answer-head{display:flex;gap:10px;align-items:center;flex-wrap:wrap;font-size:13px}
.pill{border-radius:999px;padding:1px 9px;font-size:12px;font-weight:700}
.pill.ok{background:var(--ok-bg);color:var(--ok)}
.pill.bad{background:var(--bad-bg);color:var(--bad)}
.pill.unparsed{background:var(--warn-bg);color:var(--warn)}
.answer pre{white-space:pre-wrap;word-break:break-word;margin:6px 0 0;font-size:12.5px;
background:rgba(255,255,255,.7);border-radius:6px;padding:6px 8px;max-height:220px;overflow:auto}
.more{display:block;margin:16px auto;font:inherit;padding:8px 18px;border-radius:8px;
border:1px solid #cbd5e1;background:#fff;cursor:pointer}
.more:hover{background:#f1f5f9}
footer{color:var(--muted);font-size:12px;padding:20px 0 40px}
"""

_JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var PAGE = 25;
  var shown = PAGE;
  var runSel = document.getElementById("f-run");
  var keySel = document.getElementById("f-key");
  var verdictSel = document.getElementById("f-verdict");
  var search = document.getElementById("f-search");
  var list = document.getElementById("item-list");
  var count = document.getElementById("f-count");
  var more = document.getElementById("f-more");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function option(value, text) {
    var node = el("option", null, text);
    node.value = value;
    return node;
  }
  data.runs.forEach(function (run, i) { runSel.appendChild(option(String(i), run.label)); });
  data.keys.forEach(function (key) { keySel.appendChild(option(key, key)); });
  if (data.runs.length > 1) { verdictSel.appendChild(option("disagree", "Runs disagree")); }

  function runIndices() {
    if (runSel.value === "all") { return data.runs.map(function (_, i) { return i; }); }
    return [Number(runSel.value)];
  }
  function matches(item) {
    if (keySel.value !== "all" && item.key !== keySel.value) { return false; }
    var idx = runIndices().filter(function (i) { return item.out[i]; });
    var v = verdictSel.value;
    if (v !== "all") {
      if (!idx.length) { return false; }
      var oks = idx.map(function (i) { return item.out[i][0] === 1; });
      if (v === "correct" && oks.indexOf(false) >= 0) { return false; }
      if (v === "wrong" && oks.indexOf(false) < 0) { return false; }
      if (v === "unparsed" && !idx.some(function (i) { return item.out[i][1] === null; })) {
        return false;
      }
      if (v === "disagree" && (oks.indexOf(true) < 0 || oks.indexOf(false) < 0)) {
        return false;
      }
    }
    var q = search.value.trim().toLowerCase();
    if (q) {
      var hay = [item.id, item.q || "", item.gt || ""];
      idx.forEach(function (i) { hay.push(item.out[i][3] || ""); });
      if (hay.join("\n").toLowerCase().indexOf(q) < 0) { return false; }
    }
    return true;
  }
  function card(item) {
    var idx = runIndices().filter(function (i) { return item.out[i]; });
    var oks = idx.map(function (i) { return item.out[i][0] === 1; });
    var cls = "item";
    if (oks.length && oks.indexOf(false) < 0) { cls += " all-ok"; }
    else if (oks.length && oks.indexOf(true) < 0) { cls += " all-bad"; }
    else if (oks.length) { cls += " mixed"; }
    var node = el("article", cls);
    var head = el("div", "item-head");
    head.appendChild(el("span", "chip", item.key));
    if (item.row) { head.appendChild(el("span", "chip row", item.row)); }
    head.appendChild(el("span", "item-id", item.id));
    node.appendChild(head);
    var body = el("div", "item-body");
    if (item.img.length) {
      var imgs = el("div", "imgs");
      item.img.forEach(function (ref, k) {
        var fig = el("figure");
        var url = data.images[ref];
        if (typeof url === "string" && url.indexOf("data:image/jpeg;base64,") === 0) {
          var img = el("img");
          img.alt = "Image-" + (k + 1);
          img.loading = "lazy";
          img.src = url;
          fig.appendChild(img);
        } else {
          fig.appendChild(el("div", "missing", "image not found"));
        }
        fig.appendChild(el("figcaption", null, "Image-" + (k + 1)));
        imgs.appendChild(fig);
      });
      body.appendChild(imgs);
    }
    var qa = el("div", "qa");
    qa.appendChild(el("p", "question", item.q === null ? "(question not available: the run's "
      + "benchmark folder was not found)" : item.q));
    if (item.gt !== null) {
      var gt = el("p", "gt", "Ground truth: ");
      gt.appendChild(el("code", null, item.gt));
      qa.appendChild(gt);
    }
    idx.forEach(function (i) {
      var o = item.out[i];
      var ok = o[0] === 1;
      var box = el("div", "answer " + (ok ? "ok" : "bad"));
      var top = el("div", "answer-head");
      var who = el("span", "run-name");
      var sw = el("span", "swatch");
      sw.style.background = data.runs[i].colour;
      who.appendChild(sw);
      who.appendChild(document.createTextNode(data.runs[i].label));
      top.appendChild(who);
      if (o[1] === null) {
        top.appendChild(el("span", "pill unparsed", "\u2717 unparsed (" + (o[2] || "?") + ")"));
      } else {
        top.appendChild(el("span", "pill " + (ok ? "ok" : "bad"),
          ok ? "\u2713 correct" : "\u2717 wrong"));
        var parsed = el("span", null, "parsed ");
        parsed.appendChild(el("code", null, o[1]));
        top.appendChild(parsed);
      }
      box.appendChild(top);
      var missing = o[3] === null || o[3] === undefined;
      box.appendChild(el("pre", "response", !missing ? o[3]
        : (o[4] ? "(no answer: " + o[4] + ")" : "(no response recorded)")));
      qa.appendChild(box);
    });
    body.appendChild(qa);
    node.appendChild(body);
    return node;
  }
  function render() {
    var hits = data.items.filter(matches);
    while (list.firstChild) { list.removeChild(list.firstChild); }
    hits.slice(0, shown).forEach(function (item) { list.appendChild(card(item)); });
    count.textContent = hits.length + " matching \u00b7 " + data.items.length
      + " items in this page \u00b7 " + data.total + " in the benchmark";
    more.hidden = hits.length <= shown;
  }
  function reset() { shown = PAGE; render(); }
  [runSel, keySel, verdictSel].forEach(function (s) { s.addEventListener("change", reset); });
  search.addEventListener("input", reset);
  more.addEventListener("click", function () { shown += PAGE; render(); });
  render();
  document.documentElement.setAttribute("data-report-ready", "1");
})();
"""


def _browser(data: Mapping[str, Any]) -> str:
    per_key = data.get("perKey")
    limit = ("All items" if per_key is None
             else f"Up to {per_key} items per benchmark key (items some run got wrong first)")
    return f"""
<p class="lead muted">{_e(limit)}; {len(data["items"])} of {data["total"]} items are embedded.
All text is shown as plain text.</p>
<div class="filters">
  <label>Run<select id="f-run"><option value="all">All runs</option></select></label>
  <label>Subtask<select id="f-key"><option value="all">All subtasks</option></select></label>
  <label>Verdict<select id="f-verdict"><option value="all">All</option>
    <option value="correct">Correct</option><option value="wrong">Wrong</option>
    <option value="unparsed">Unparsed</option></select></label>
  <label>Search<input id="f-search" type="search" placeholder="id, question, answer"></label>
  <span class="count" id="f-count"></span>
</div>
<div id="item-list"></div>
<button class="more" id="f-more" type="button">Show more</button>"""


def render_html(runs: Sequence[RunData], *, title: str = "MultiSPA benchmark report",
                items_per_key: int | None = DEFAULT_ITEMS_PER_KEY, thumb_width_px: int = 320,
                jpeg_quality: int = 80) -> str:
    """The report page for ``runs`` (at least one) as a string (module docstring).

    Args:
        runs: loaded runs (:func:`multispa.report.load.load_run`).
        title: page title and heading.
        items_per_key: items per benchmark key in the browser; ``None`` for all.
        thumb_width_px: maximum thumbnail width in pixels.
        jpeg_quality: thumbnail JPEG quality (1–95).
    """
    if not runs:
        raise ValueError("render_html: need at least one run")
    runs = arrange_runs(runs)
    pairs = vision_pairs(runs)
    colours = [RUN_COLOURS[i % len(RUN_COLOURS)] for i in range(len(runs))]
    thumbs = _Thumbnails(thumb_width_px, jpeg_quality)
    data = _browser_data(runs, colours, items_per_key, thumbs)
    data["images"] = thumbs.urls
    script = _JS
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    csp = (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
           f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")
    run_names = ", ".join(run.label for run in runs)
    sections = [
        ("runs", "Runs", "", _run_cards(runs, colours)),
        ("table", "Table 2: the 12 rows",
         "Accuracy in %, rows pooled over their benchmark subtasks, Average = unweighted mean "
         "of the 12 rows. Published columns are the paper's printed figures, measured on its "
         "own (unreleased) items.", _main_table(runs, colours) + _notes()),
        *([("vision", "Vision gain: sighted vs blind",
           "What each model gets from seeing the images: accuracy in % with and without them.",
           _vision_table(runs, colours, pairs))] if pairs else []),
    ]
    if any((run.scores.get("nview") or {}).get("average_pct") is not None for run in runs):
        sections.append(
            ("nview", "N-view tasks: nine subtasks and their average",
             "Accuracy in % (95 % CI), beside the 12 rows: questions that need a whole view set "
             "of several images.", _nview_table(runs, colours)))
    sections += [
        ("charts", "Row by row", "Runs with 95 % intervals; hatched bars are published values.",
         _charts(runs, colours)),
        ("subtasks", "The benchmark subtasks",
         "Accuracy, interval, mean relative accuracy (scalar and vector subtasks), parse "
         "failures and item count per benchmark key.", _subtask_tables(runs, colours)),
        ("breakdowns", "Object movement: ADT vs PStudio, static vs moving",
         "Accuracy in % with correct/items.", _breakdowns(runs, colours)),
        ("items", "Item browser", "", _browser(data)),
    ]
    nav = "".join(f'<a href="#{anchor}">{_e(name.split(":")[0])}</a>'
                  for anchor, name, _, _ in sections)
    body = "".join(
        f'<section id="{anchor}"><h2>{_e(name)}</h2>'
        f'{f"<p class=lead>{_e(lead)}</p>" if lead else ""}{content}</section>'
        for anchor, name, lead, content in sections)
    hatch = ('<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>'
             '<pattern id="hatch" patternUnits="userSpaceOnUse" width="6" height="6" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#e2e8f0"/>'
             '<rect width="2.2" height="6" fill="#64748b"/></pattern></defs></svg>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="multispa {_e(__version__)}">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
{hatch}
<header class="top"><div class="wrap">
<h1>{_e(title)}</h1>
<p>{_e(len(runs))} run{"s" if len(runs) != 1 else ""}: {_e(run_names)}</p>
<nav>{nav}</nav>
</div></header>
<main class="wrap">{body}</main>
<footer class="wrap">Generated by multispa {_e(__version__)}. Self-contained page: no network
resources.</footer>
<script type="application/json" id="report-data">{json_for_script(data)}</script>
<script>{script}</script>
</body>
</html>
"""


def write_html(runs: Sequence[RunData], out: str | Path, **options: Any) -> Path:
    """Write :func:`render_html` to ``out`` (UTF-8, atomically); return the path.

    Raises:
        OutputError: ``out`` is a folder, lies under a file, or cannot be written.
    """
    out = Path(out)
    check_output_file(out)
    return write_output_file(out, render_html(runs, **options))

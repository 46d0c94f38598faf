"""A self-contained HTML gallery of a dataset: sample cards per subtask and statistics plots.

The page (``multispa gallery DIR --out gallery.html``) has: a table of record counts per
benchmark-subtask key and split; the statistics figures of :mod:`multispa.viz.stats`; and, per
task family and key, ``per_subtask`` sample cards (:mod:`multispa.viz.card`) with the record's
prompt and answer as text.

Cards are chosen deterministically: per key, ``per_subtask`` ids drawn without replacement, with
``rng_for(seed, "gallery", key)``, from the key's ids in ``split`` sorted; a key without records
in ``split`` takes its cards from the other split (the page says so). A BENCH folder works too
(its items are the only split).

Self-contained and safe: every image is a ``data:`` URI (cards downscaled to ``card_width_px``
and JPEG-encoded, plots PNG); every text from files is written with :func:`html.escape`; the page
has no script and a Content-Security-Policy that allows only inline styles and ``data:`` images,
so it loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

from multispa import __version__
from multispa.errors import ConfigError, MultispaError
from multispa.fs import check_output_file, write_output_file
from multispa.report.html import html_text as _e
from multispa.report.html import jpeg_data_uri
from multispa.tasks.base import rng_for
from multispa.tasks.templates import BENCHMARK_SUBTASKS, FAMILIES, SUBTASKS
from multispa.viz.card import card_for
from multispa.viz.records import FoundRecord, RecordSource
from multispa.viz.stats import DEFAULT_SAMPLE_PER_FILE, collect_stats, stats_figures

__all__ = ["DEFAULT_PER_SUBTASK", "choose_ids", "render_gallery", "write_gallery"]

_log = logging.getLogger(__name__)

DEFAULT_PER_SUBTASK = 2
_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
        "form-action 'none'")
_FAMILY_TITLES = {"depth": "Depth perception", "correspondence": "Visual correspondence",
                  "camera_movement": "Camera movement", "object_movement": "Object movement",
                  "object_size": "Object size", "nview": "N-view scene tasks"}


def _family_of(key: str) -> str:
    return SUBTASKS[key.split(":", 1)[0]].family


def choose_ids(ids_by_split: Mapping[str, Mapping[str, Sequence[str]]], split: str,
               per_subtask: int, seed: int) -> dict[str, tuple[str, list[str]]]:
    """Per benchmark key, ``(split used, chosen ids)`` (module docstring); keys in benchmark
    order, a key with no record in any split maps to ``(split, [])``."""
    chosen: dict[str, tuple[str, list[str]]] = {}
    order = [split] + [s for s in ids_by_split if s != split]
    for key in BENCHMARK_SUBTASKS:
        for candidate in order:
            ids = sorted(ids_by_split.get(candidate, {}).get(key, ()))
            if ids:
                rng = rng_for(seed, "gallery", key)
                picks = rng.choice(len(ids), size=min(per_subtask, len(ids)), replace=False)
                chosen[key] = (candidate, [ids[int(i)] for i in sorted(picks)])
                break
        else:
            chosen[key] = (split, [])
    return chosen


def _card_html(found: FoundRecord, width_px: int, quality: int, cache: Path | None = None) -> str:
    record = found.record
    try:
        image, _ = card_for(found, cache=cache)
    except MultispaError as error:
        _log.warning("gallery: no card for %s: %s", record.get("id"), error)
        return f'<div class="card error">Card of {_e(record.get("id"))} failed: {_e(error)}</div>'
    uri, width, height = jpeg_data_uri(image, width_px, quality)
    turns = record.get("conversations") or [{}, {}]
    prompt = str(turns[0].get("value", "")) if isinstance(turns[0], Mapping) else ""
    answer = str(turns[-1].get("value", "")) if isinstance(turns[-1], Mapping) else ""
    return (f'<figure class="card"><img src="{uri}" width="{width}" height="{height}" '
            f'alt="Sample card of record {_e(record.get("id"))}">'
            f'<figcaption><code>{_e(record.get("id"))}</code>'
            f'<details><summary>Prompt and answer as text</summary>'
            f'<pre>{_e(prompt)}</pre><pre class="answer">{_e(answer)}</pre></details>'
            f'</figcaption></figure>')


def _counts_table(counts: Mapping[str, Mapping[str, int]]) -> str:
    splits = list(counts)
    head = "".join(f'<th class="num">{_e(s)}</th>' for s in splits)
    rows = []
    totals = dict.fromkeys(splits, 0)
    for key in BENCHMARK_SUBTASKS:
        values = [counts[s].get(key, 0) for s in splits]
        for s, v in zip(splits, values, strict=True):
            totals[s] += v
        cells = "".join(f'<td class="num{" zero" if v == 0 else ""}">{v}</td>' for v in values)
        rows.append(f'<tr><th scope="row"><a href="#k-{_e(key.replace(":", "-"))}">{_e(key)}'
                    f'</a></th><td>{_e(_family_of(key))}</td>{cells}'
                    f'<td class="num">{sum(values)}</td></tr>')
    total_cells = "".join(f'<td class="num">{totals[s]}</td>' for s in splits)
    rows.append(f'<tr class="total"><th scope="row">Total</th><td></td>{total_cells}'
                f'<td class="num">{sum(totals.values())}</td></tr>')
    return (f'<table class="counts"><thead><tr><th>Subtask key</th><th>Family</th>{head}'
            f'<th class="num">all</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def render_gallery(dataset: str | Path, *, per_subtask: int = DEFAULT_PER_SUBTASK, seed: int = 0,
                   split: str = "val", card_width_px: int = 1100, jpeg_quality: int = 70,
                   sample_per_file: int | None = DEFAULT_SAMPLE_PER_FILE,
                   cache: Path | None = None) -> str:
    """The gallery page of a DATASET (or BENCH) folder as a string (module docstring).

    Args:
        dataset: the folder.
        per_subtask: cards per benchmark-subtask key (0: none).
        seed: selection seed.
        split: split the cards come from (``train`` or ``val``; ignored for a BENCH).
        card_width_px: maximum card width in the page, pixels.
        jpeg_quality: card JPEG quality (1–95).
        sample_per_file: records read per file for the distributions (None: all).
        cache: the prepared cache for N-view object boxes (default: the dataset's own).

    Raises:
        ConfigError: bad ``split``, ``per_subtask`` or ``jpeg_quality``.
        DatasetError: not a dataset or bench folder, or a malformed file.
    """
    source = RecordSource(dataset)
    if source.kind == "bench":
        split = source.splits[0]
    elif split not in source.splits:
        raise ConfigError(f"gallery: split {split!r}, expected one of {list(source.splits)}")
    if per_subtask < 0:
        raise ConfigError(f"gallery: per_subtask must be ≥ 0, found {per_subtask}")
    if not 1 <= jpeg_quality <= 95:
        raise ConfigError(f"gallery: jpeg_quality must be 1..95, found {jpeg_quality}")

    stats = collect_stats(source, sample_per_file=sample_per_file)
    plots = "".join(
        f'<figure class="plot"><img src="data:image/png;base64,'
        f'{base64.b64encode(png).decode("ascii")}" alt="{_e(title)}"><figcaption>{_e(title)}'
        f'</figcaption></figure>' for title, png in stats_figures(stats))

    chosen = {key: (split, []) for key in BENCHMARK_SUBTASKS}
    if per_subtask > 0:
        ids_by_split = {split: source.ids(split)}
        if any(key not in ids_by_split[split] for key in BENCHMARK_SUBTASKS):
            ids_by_split |= {s: source.ids(s) for s in source.splits if s != split}
        chosen = choose_ids(ids_by_split, split, per_subtask, seed)
    found = source.find_many({rid for _, ids in chosen.values() for rid in ids})
    families = []
    for family in FAMILIES:
        blocks = []
        for key, (used, ids) in chosen.items():
            if _family_of(key) != family:
                continue
            counts = ", ".join(f"{stats.counts[s].get(key, 0)} {s}" for s in stats.splits)
            note = ""
            if used != split and ids:
                note = (f'<p class="note">No {_e(split)} records for this key: cards from '
                        f'{_e(used)}.</p>')
            elif not ids:
                note = '<p class="note">No records for this key.</p>' if per_subtask else ""
            cards = "".join(_card_html(found[rid], card_width_px, jpeg_quality, cache)
                            for rid in ids if rid in found)
            blocks.append(f'<section class="key" id="k-{_e(key.replace(":", "-"))}">'
                          f'<h3>{_e(key)} <span class="muted">({_e(counts)})</span></h3>'
                          f'{note}<div class="cards">{cards}</div></section>')
        families.append(f'<section id="f-{_e(family)}"><h2>{_e(_FAMILY_TITLES[family])}</h2>'
                        f'{"".join(blocks)}</section>')

    nav = "".join(['<a href="#counts">Counts</a>', '<a href="#plots">Statistics</a>',
                   *(f'<a href="#f-{_e(f)}">{_e(_FAMILY_TITLES[f])}</a>' for f in FAMILIES)])
    sampled = ", ".join(f"{n} {s}" for s, n in stats.sampled.items())
    what = (f"{_e(source.kind)} folder {_e(Path(dataset).name or str(dataset))} · cards from "
            f"split {_e(split)} · {per_subtask} per subtask · seed {seed}")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_e(_CSP)}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="multispa {_e(__version__)}">
<title>MultiSPA dataset gallery</title>
<style>{_CSS}</style>
</head>
<body>
<header><div class="wrap"><h1>MultiSPA dataset gallery</h1><p>{what}</p><nav>{nav}</nav>
</div></header>
<main class="wrap">
<section id="counts"><h2>Records per subtask</h2>{_counts_table(stats.counts)}</section>
<section id="plots"><h2>Statistics</h2><p class="muted">Distributions from the records read
({_e(sampled)}; up to {_e(sample_per_file or "all")} per file).</p>
<div class="plots">{plots}</div></section>
{"".join(families)}
</main>
<footer class="wrap">Generated by multispa {_e(__version__)}. Self-contained page: every image is
embedded; nothing is loaded from the network. Markers on the cards (yellow, pink) and the
top-down sketches are drawn for people; the model sees only the images as stored.</footer>
</body>
</html>
"""


def write_gallery(dataset: Path, out: Path, *, per_subtask: int = DEFAULT_PER_SUBTASK,
                  seed: int = 0, split: str = "val", cache: Path | None = None) -> Path:
    """Write :func:`render_gallery` of ``dataset`` to ``out`` (UTF-8); return ``out``.

    ``split`` defaults to ``val``: the held-out scenes the benchmark is drawn from, and a small
    file to pick from; keys it lacks fall back to ``train``.
    """
    out = Path(out)
    check_output_file(out)
    page = render_gallery(dataset, per_subtask=per_subtask, seed=seed, split=split, cache=cache)
    return write_output_file(out, page)


_CSS = """
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; --accent: #2563eb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif;
       color: var(--fg); background: var(--bg); }
.wrap { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { background: #1f2937; color: #fff; padding: 18px 0 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0 0 8px; color: #d1d5db; }
nav a { color: #bfdbfe; margin-right: 14px; text-decoration: none; font-size: 14px; }
h2 { margin: 28px 0 10px; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { margin: 18px 0 8px; font-size: 17px; }
.muted { color: var(--muted); font-weight: normal; }
.note { color: #92400e; background: #fef3c7; padding: 4px 8px; border-radius: 4px;
        display: inline-block; margin: 0 0 8px; }
table.counts { border-collapse: collapse; background: #fff; font-size: 14px; }
table.counts th, table.counts td { border-bottom: 1px solid var(--line); padding: 3px 10px;
                                   text-align: left; }
table.counts .num { text-align: right; font-variant-numeric: tabular-nums; }
table.counts .zero { color: #b91c1c; }
table.counts tr.total { font-weight: bold; }
table.counts a { color: var(--accent); text-decoration: none; }
.plots { display: grid; gap: 14px; }
figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 6px;
         padding: 8px; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 6px; }
.cards { display: grid; gap: 14px; }
.card.error { color: #b91c1c; background: #fee2e2; padding: 8px; border-radius: 6px; }
details pre { white-space: pre-wrap; background: var(--bg); padding: 6px; font-size: 12px;
              color: var(--fg); }
details pre.answer { border-left: 3px solid #c026d3; }
footer { color: var(--muted); font-size: 13px; padding: 24px 20px 40px; }
"""

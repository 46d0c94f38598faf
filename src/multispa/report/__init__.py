"""Reports of evaluation runs: one self-contained HTML page and a Markdown table.

- :mod:`multispa.report.load`: read RUN folders (``config.json``, ``scores.json``,
  ``results.jsonl``) and BENCH folders (``manifest.json``, ``bench.jsonl``, ``images/``);
- :mod:`multispa.report.html`: :func:`~multispa.report.html.render_html` /
  :func:`~multispa.report.html.write_html`;
- :mod:`multispa.report.markdown`: :func:`~multispa.report.markdown.markdown_table`.
"""

from __future__ import annotations

from multispa.report.html import render_html, write_html
from multispa.report.load import Bench, RunData, load_bench, load_run, load_runs
from multispa.report.markdown import markdown_table

__all__ = [
    "Bench",
    "RunData",
    "load_bench",
    "load_run",
    "load_runs",
    "markdown_table",
    "render_html",
    "write_html",
]

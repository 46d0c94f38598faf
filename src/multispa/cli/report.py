"""``multispa report RUN... [--out report.html] [--markdown table.md]``: compare runs."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.fs import check_output_file, write_output_file
from multispa.report.html import DEFAULT_ITEMS_PER_KEY, write_html
from multispa.report.load import load_runs
from multispa.report.markdown import markdown_table


@click.command("report")
@click.argument("runs", nargs=-1, required=True,
                type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("report.html"), show_default=True,
              help="The self-contained HTML page to write.")
@click.option("--markdown", "markdown_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the 12-row table (+ published rows) as Markdown.")
@click.option("--bench", "bench_dir", type=click.Path(file_okay=False, path_type=Path),
              help="BENCH folder for the item browser (default: the one named in each run's "
                   "config.json).")
@click.option("--items-per-subtask", type=click.IntRange(min=0), default=DEFAULT_ITEMS_PER_KEY,
              show_default=True,
              help="Items per benchmark key embedded in the item browser (0: all).")
@click.option("--title", default="MultiSPA benchmark report", show_default=True)
def report_command(runs: tuple[Path, ...], out: Path, markdown_out: Path | None,
                   bench_dir: Path | None, items_per_subtask: int, title: str) -> None:
    """Build one HTML page (and optionally a Markdown table) from RUN folders."""
    check_output_file(out)
    if markdown_out is not None:
        check_output_file(markdown_out, "--markdown")
    loaded = load_runs(runs, bench_dir=bench_dir)
    path = write_html(loaded, out, title=title, items_per_key=items_per_subtask or None)
    size_mb = path.stat().st_size / 1e6
    click.echo(f"wrote {path} ({size_mb:.1f} MB, {len(loaded)} run"
               f"{'s' if len(loaded) != 1 else ''})")
    if markdown_out is not None:
        write_output_file(markdown_out, markdown_table(loaded), "--markdown")
        click.echo(f"wrote {markdown_out}")

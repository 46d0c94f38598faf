"""``multispa export``: the benchmark in the formats other evaluation harnesses read."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.option("--bench", required=True, type=click.Path(path_type=Path), help="Benchmark folder.")
@click.option(
    "--format",
    "format_name",
    required=True,
    type=click.Choice(["vlmevalkit", "lmms-eval"]),
    help="VLMEvalKit dataset TSV, or an lmms-eval task folder (--include_path).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
def export_command(bench: Path, format_name: str, out: Path) -> None:
    """Export a benchmark for VLMEvalKit or lmms-eval (scoring rules documented beside it)."""
    if format_name == "vlmevalkit":
        from multispa.formats.vlmevalkit import export_vlmevalkit

        path = export_vlmevalkit(bench, out)
    else:
        from multispa.formats.lmms_eval import export_lmms_eval

        path = export_lmms_eval(bench, out)
    click.echo(f"export: {format_name} -> {path}")

"""``multispa bench build``: freeze the benchmark from a dataset's val split."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.evaluate.bench import DEFAULT_PER_SUBTASK, BenchBuildSummary, build_bench


def print_bench_summary(summary: BenchBuildSummary) -> None:
    """Per-key counts (selected / available), warnings and the content hash."""
    click.echo(f"{'benchmark-subtask key':<42} {'items':>6} {'pool':>7}")
    for key, count in summary.counts.items():
        flag = "  MISSING" if count == 0 else "  short" if count < summary.per_subtask else ""
        click.echo(f"{key:<42} {count:>6} {summary.available[key]:>7}{flag}")
    click.echo(f"{'total':<42} {summary.items:>6}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"images: {summary.images} ({summary.linked} hard-linked, {summary.copied} copied)")
    click.echo(f"content_sha256: {summary.content_sha256}")
    click.echo(f"benchmark written to {summary.out}")


@click.group("bench")
def bench() -> None:
    """Build and check the frozen benchmark."""


@bench.command("build")
@click.option("--dataset", required=True, type=click.Path(path_type=Path),
              help="Dataset folder written by multispa generate (its val split is used).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="BENCH folder.")
@click.option("--per-subtask", type=int, default=DEFAULT_PER_SUBTASK, show_default=True,
              help="Items per benchmark-subtask key.")
@click.option("--seed", type=int, default=0, show_default=True, help="Selection seed.")
def build_command(dataset: Path, out: Path, per_subtask: int, seed: int) -> None:
    """Select up to PER_SUBTASK val items per key, copy their images, freeze with a hash."""
    summary = build_bench(dataset, out, per_subtask=per_subtask, seed=seed)
    print_bench_summary(summary)

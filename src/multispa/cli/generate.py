"""``multispa generate``: MultiSPA records from a prepared cache."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from multispa.pipeline.generate import (
    GenerateConfig,
    GenerateSummary,
    UnitResult,
    generate,
    load_quotas_file,
)
from multispa.tasks.base import GenerateSettings
from multispa.tasks.templates import DEFAULT_VIEWS, MAX_VIEWS, MIN_VIEWS


def print_generate_summary(summary: GenerateSummary) -> None:
    """Records per output file and split, skipped candidates by reason, time."""
    failed = [r for r in summary.results if r.status == "failed"]
    for split, counts in summary.counts.items():
        total = sum(counts.values())
        click.echo(f"{split}: {total} records in {len(counts)} files")
        for name, count in counts.items():
            click.echo(f"  {count:>9}  {name}")
    for split, reasons in summary.skipped.items():
        if reasons:
            click.echo(f"{split}: skipped candidates by reason")
            for reason, count in reasons.items():
                click.echo(f"  {count:>9}  {reason}")
    done = sum(r.status == "skipped" for r in summary.results)
    click.echo(
        f"generate: {len(summary.results)} units ({done} already done, {len(failed)} failed) "
        f"in {summary.wall_seconds:.1f} s"
    )
    for result in failed:
        click.echo(f"  failed: {result.key}: {result.error}")


@click.command("generate")
@click.option("--cache", required=True, type=click.Path(path_type=Path), help="Prepared cache.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Dataset folder.")
@click.option(
    "--split", type=click.Choice(["train", "val", "all"]), default="all", show_default=True
)
@click.option("--tasks", default=None, help="Comma-separated families or subtasks (default all).")
@click.option("--max-per-subtask", type=int, default=None, help="Cap every subtask's quota.")
@click.option("--quotas", type=click.Path(path_type=Path), help="TOML/YAML quotas file.")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Scale train quotas.")
@click.option("--seed", type=int, default=0, show_default=True, help="Master seed.")
@click.option(
    "--mcq-difficulty", type=click.Choice(["easy", "hard"]), default="easy", show_default=True
)
@click.option("--views", type=click.IntRange(MIN_VIEWS, MAX_VIEWS), default=DEFAULT_VIEWS,
              show_default=True,
              help="Images per N-view question (the size of a view set).")
@click.option("--view-sets-per-scene", type=click.IntRange(min=1), default=None,
              help="N-view view sets per scene (default: one per 200 kept frames).")
@click.option("--workers", default=1, show_default=True, help="Parallel units.")
@click.option(
    "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True
)
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None, help="Ray cluster address.")
@click.option("--force", is_flag=True, help="Regenerate even if OUT has other settings.")
def generate_command(
    cache: Path,
    out: Path,
    split: str,
    tasks: str | None,
    max_per_subtask: int | None,
    quotas: Path | None,
    scale: float,
    seed: int,
    mcq_difficulty: str,
    views: int,
    view_sets_per_scene: int | None,
    workers: int,
    executor: str,
    ray_address: str | None,
    force: bool,
) -> None:
    """Generate MultiSPA question-answer records (InternVL jsonl) from a prepared cache."""
    config = GenerateConfig(
        cache=cache,
        out=out,
        split=split,
        tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()) if tasks else None,
        quotas=load_quotas_file(quotas) if quotas else {},
        scale=scale,
        max_per_subtask=max_per_subtask,
        seed=seed,
        settings=GenerateSettings(mcq_difficulty=mcq_difficulty, views=views,
                                  view_sets_per_scene=view_sets_per_scene),
        workers=workers,
        executor=executor,
        ray_address=ray_address,
        force=force,
    )
    bars: list[tqdm] = []
    records = 0

    def on_start(units: int) -> None:
        bars.append(tqdm(total=units, desc="generate", unit="unit"))

    def on_result(result: UnitResult) -> None:
        nonlocal records
        records += result.records
        bars[0].update(1)
        bars[0].set_postfix(records=records, refresh=False)

    try:
        summary = generate(config, on_start=on_start, on_result=on_result)
    finally:
        for bar in bars:
            bar.close()
    print_generate_summary(summary)
    if mcq_difficulty == "hard" and split != "train":
        click.echo("note: the val split (benchmark pool) uses easy MCQ distractors")
    if any(r.status == "failed" for r in summary.results):
        raise SystemExit(1)

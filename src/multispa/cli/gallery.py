"""``multispa gallery DIR --out gallery.html [--per-subtask N] [--seed S] [--split val]``."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.viz.gallery import DEFAULT_PER_SUBTASK, write_gallery


@click.command("gallery")
@click.argument("dataset", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("gallery.html"), show_default=True,
              help="The self-contained HTML page to write.")
@click.option("--per-subtask", type=click.IntRange(min=0), default=DEFAULT_PER_SUBTASK,
              show_default=True, help="Sample cards per benchmark-subtask key.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the card selection.")
@click.option("--split", type=click.Choice(["train", "val"]), default="val", show_default=True,
              help="Split the cards come from (keys it lacks use the other split; ignored for a "
                   "bench folder).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Prepared cache for N-view object boxes and floor plans (default: the one "
                   "the dataset's manifest names).")
def gallery_command(dataset: Path, out: Path, per_subtask: int, seed: int, split: str,
                    cache: Path | None) -> None:
    """Write a self-contained HTML gallery of DATASET (or a bench folder): record counts,
    statistics plots and sample cards per subtask."""
    path = write_gallery(dataset, out, per_subtask=per_subtask, seed=seed, split=split,
                         cache=cache)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")

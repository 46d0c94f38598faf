"""``multispa show DATASET_OR_BENCH RECORD_ID [--out card.png]``: draw one record as a card."""

from __future__ import annotations

import re
from pathlib import Path

import click

from multispa.viz.card import write_card

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def default_card_path(record_id: str) -> Path:
    """``<id>.png`` in the current folder (characters other than ``A-Za-z0-9._-`` become ``_``)."""
    return Path(f"{_UNSAFE.sub('_', record_id) or 'card'}.png")


@click.command("show")
@click.argument("source", metavar="DATASET_OR_BENCH",
                type=click.Path(file_okay=False, path_type=Path))
@click.argument("record_id")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Image to write (.png, .jpg or .webp; default: <RECORD_ID>.png here).")
@click.option("--quality", type=click.IntRange(1, 95), default=88, show_default=True,
              help="JPEG/WebP quality (ignored for .png).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Prepared cache for N-view object boxes and floor plans (default: the one "
                   "the dataset's manifest names).")
def show_command(source: Path, record_id: str, out: Path | None, quality: int,
                 cache: Path | None) -> None:
    """Draw record RECORD_ID of DATASET_OR_BENCH as a sample card image.

    The card shows the images side by side with the referenced and answer points, the question
    and answer, and for camera and object movement a top-down sketch of the displacement; an
    N-view card shows its view set as a grid with the referred objects outlined where seen, and
    a floor plan for direction, path and nearest-view questions.
    """
    target = out if out is not None else default_card_path(record_id)
    path = write_card(source, record_id, target, jpeg_quality=quality, cache=cache)
    click.echo(str(path))

"""The ``--scannet-splits`` / ``--tapvid3d-splits`` options of the commands that assign splits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

F = TypeVar("F", bound=Callable[..., object])


def split_list_options(command: F) -> F:
    """Add ``--scannet-splits DIR`` and ``--tapvid3d-splits DIR`` (folders of split lists)."""
    command = click.option(
        "--tapvid3d-splits",
        type=click.Path(path_type=Path),
        help="Folder with <subset>/train.txt and val.txt (default: searched).",
    )(command)
    return click.option(
        "--scannet-splits",
        type=click.Path(path_type=Path),
        help="Folder with scannetv2_train.txt / scannetv2_val.txt (default: searched).",
    )(command)

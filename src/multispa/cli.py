"""Command-line interface: argument parsing only; every command calls into the library."""

from __future__ import annotations

import click

from multispa import __version__


@click.group()
@click.version_option(__version__, prog_name="multispa")
def main() -> None:
    """multispa: multi-frame spatial QA data, benchmark and training (MultiSPA)."""

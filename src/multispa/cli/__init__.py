"""Command-line interface: argument parsing only; every command calls into the library.

Errors raised on purpose (``MultispaError``) are printed on one line and exit with status 1.
"""

from __future__ import annotations

import logging
import sys

import click

from multispa import __version__
from multispa.errors import MultispaError


class _Group(click.Group):
    """Click group that turns project errors into one-line messages."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except MultispaError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="multispa")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """multispa: multi-frame spatial QA data, benchmark and training (MultiSPA)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from multispa.cli import demo, export, generate, inspect, prepare, synth
    from multispa.cli.bench import bench
    from multispa.cli.evaluate import eval_command, score_command
    from multispa.cli.gallery import gallery_command
    from multispa.cli.report import report_command
    from multispa.cli.show import show_command

    main.add_command(synth.synth)
    main.add_command(inspect.inspect_command)
    main.add_command(prepare.prepare_command)
    main.add_command(generate.generate_command)
    main.add_command(bench)
    main.add_command(eval_command)
    main.add_command(score_command)
    main.add_command(report_command)
    main.add_command(export.export_command)
    main.add_command(demo.demo)
    main.add_command(show_command)
    main.add_command(gallery_command)
    main.add_command(__import__("multispa.cli.train", fromlist=["train"]).train)


_register()

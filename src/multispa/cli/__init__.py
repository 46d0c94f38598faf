"""Command-line interface: argument parsing only; every command calls into the library.

Error policy (every command): project errors (``MultispaError``), OS errors on any input or
output path (permission denied, not found, is a folder, disk full...), text that is not UTF-8
and input nested too deeply are printed on one line, ``error: ...`` naming the path, and exit
with status 1 (:func:`multispa.fs.failure_text`). Text output never fails on file names that
are not valid UTF-8.
"""

from __future__ import annotations

import logging
import sys

import click

from multispa import __version__
from multispa.errors import MultispaError
from multispa.fs import failure_text

#: What the CLI reports in one line (everything else is a bug and keeps its traceback).
REPORTED_ERRORS = (MultispaError, OSError, UnicodeError, RecursionError, MemoryError)


class _Group(click.Group):
    """Click group that turns reported errors into one-line messages (exit status 1)."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except REPORTED_ERRORS as error:
            logging.getLogger("multispa").debug("details of the error below", exc_info=True)
            click.echo(f"error: {failure_text(error)}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="multispa")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """multispa: multi-frame spatial QA data, benchmark and training (MultiSPA)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):  # names that are not UTF-8 print as escapes, never fail
            reconfigure(errors="backslashreplace")
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

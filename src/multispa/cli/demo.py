"""``multispa demo``: the pipeline on built-in synthetic data, from nothing to a summary."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.cli.inspect import inspect_paths
from multispa.cli.prepare import print_prepare_summary
from multispa.cli.synth import run_synth
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig


@click.command("demo")
@click.option("--out", default=Path("demo_out"), type=click.Path(path_type=Path), show_default=True)
@click.option("--small", is_flag=True, help="Tiny scenes (seconds) instead of realistic sizes.")
@click.option("--workers", default=2, show_default=True, help="Parallel processes.")
@click.option("--seed", default=0, show_default=True, help="Master seed.")
def demo(out: Path, small: bool, workers: int, seed: int) -> None:
    """Write synthetic ScanNet/TAPVid-3D data, read it back, and build the caches."""
    data = out / "data"
    click.echo(f"[1/3] synth -> {data}")
    run_synth(data, SynthConfig(seed=seed, small=small, workers=workers))
    click.echo("[2/3] inspect: what the readers see")
    failures = inspect_paths(data / "scannet", data / "tapvid3d", frame_skip=5)
    if failures:
        raise click.ClickException(f"{failures} synthetic scene(s)/clip(s) could not be read")
    cache = out / "cache"
    click.echo(f"[3/3] prepare -> {cache}")
    summary = prepare(
        PrepareConfig(
            cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d", workers=workers
        )
    )
    print_prepare_summary(summary)
    if summary.count("failed"):
        raise SystemExit(1)

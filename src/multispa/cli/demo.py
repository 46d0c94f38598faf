"""``multispa demo``: the pipeline on built-in synthetic data, from nothing to a dataset."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.cli.generate import print_generate_summary
from multispa.cli.inspect import inspect_paths
from multispa.cli.prepare import print_prepare_summary
from multispa.cli.synth import run_synth
from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.synth.config import SynthConfig


@click.command("demo")
@click.option("--out", default=Path("demo_out"), type=click.Path(path_type=Path), show_default=True)
@click.option("--small", is_flag=True, help="Tiny scenes (seconds) instead of realistic sizes.")
@click.option("--workers", default=2, show_default=True, help="Parallel processes.")
@click.option("--seed", default=0, show_default=True, help="Master seed.")
@click.option(
    "--max-per-subtask", default=300, show_default=True, help="Records per subtask and split."
)
def demo(out: Path, small: bool, workers: int, seed: int, max_per_subtask: int) -> None:
    """Synthetic ScanNet/TAPVid-3D data → readers → caches → MultiSPA records."""
    data = out / "data"
    click.echo(f"[1/4] synth -> {data}")
    run_synth(data, SynthConfig(seed=seed, small=small, workers=workers))
    click.echo("[2/4] inspect: what the readers see")
    failures = inspect_paths(data / "scannet", data / "tapvid3d", frame_skip=5)
    if failures:
        raise click.ClickException(f"{failures} synthetic scene(s)/clip(s) could not be read")
    cache = out / "cache"
    click.echo(f"[3/4] prepare -> {cache}")
    prepared = prepare(
        PrepareConfig(
            cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d", workers=workers
        )
    )
    print_prepare_summary(prepared)
    if prepared.count("failed"):
        raise SystemExit(1)
    dataset = out / "dataset"
    click.echo(f"[4/4] generate -> {dataset}")
    generated = generate(
        GenerateConfig(
            cache=cache, out=dataset, max_per_subtask=max_per_subtask, seed=seed, workers=workers
        )
    )
    print_generate_summary(generated)
    if any(r.status == "failed" for r in generated.results):
        raise SystemExit(1)
    click.echo(f"dataset: {dataset} (InternVL meta files: meta_train.json, meta_val.json)")

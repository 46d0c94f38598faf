"""``multispa synth``: write synthetic scenes in the real ScanNet and TAPVid-3D formats."""

from __future__ import annotations

import time
from pathlib import Path

import click
from tqdm import tqdm

from multispa.fs import check_output_dir
from multispa.synth.config import SynthConfig


def run_synth(out: Path, config: SynthConfig, *, quiet: bool = False) -> None:
    """Write the synthetic dataset to ``out`` with a progress bar and print a summary."""
    from multispa.synth.dataset import plan_units, write_synthetic_dataset

    check_output_dir(out, "OUT")
    start = time.perf_counter()
    with tqdm(total=len(plan_units(config)), desc="synth", unit="unit", disable=quiet) as bar:
        summary = write_synthetic_dataset(out, config, progress=lambda _name: bar.update(1))
    seconds = time.perf_counter() - start
    click.echo(
        f"synth: {len(summary.scenes)} ScanNet scans and {config.clips} TAPVid-3D clips written to "
        f"{out} in {seconds:.1f} s ({summary})"
        if not quiet
        else f"synth: wrote {out} in {seconds:.1f} s"
    )


@click.command("synth")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--scenes", default=4, show_default=True, help="ScanNet-like scenes.")
@click.option("--clips", default=4, show_default=True, help="TAPVid-3D-like clips (ADT, PStudio).")
@click.option("--seed", default=0, show_default=True, help="Master seed (same seed, same bytes).")
@click.option("--small", is_flag=True, help="Tiny fast scenes (tests) instead of real sizes.")
@click.option("--frames", type=int, default=None, help="Frames per scene (preset default).")
@click.option("--workers", default=2, show_default=True, help="Parallel processes.")
@click.option(
    "--variants/--no-variants",
    default=True,
    show_default=True,
    help="Real-download pitfalls: a thinned posed_images rescan of room 0, duplicated "
    "segGroups, thin objects in front of walls, a label map.",
)
def synth(
    out: Path,
    scenes: int,
    clips: int,
    seed: int,
    small: bool,
    frames: int | None,
    workers: int,
    variants: bool,
) -> None:
    """Write synthetic ScanNet scans (.sens, ply, annotations) and TAPVid-3D npz clips to OUT."""
    config = SynthConfig(
        scenes=scenes,
        clips=clips,
        seed=seed,
        small=small,
        workers=workers,
        frames_per_scene=frames,
        variants=variants,
    )
    run_synth(out, config)

"""``multispa inspect``: print what the readers see in ScanNet and TAPVid-3D folders."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.errors import MultispaError
from multispa.fs import printable
from multispa.scenes.summary import (
    ClipSummary,
    SceneSummary,
    summarize_scannet,
    summarize_tapvid3d,
)


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def print_scannet_table(rows: list[SceneSummary], split_source: str) -> None:
    """Print one line per ScanNet scene."""
    click.echo(f"ScanNet: {len(rows)} scenes (splits from {split_source})")
    header = (
        f"  {'scene':<14}{'split':<7}{'layout':<13}{'frames':>7}{'kept':>6}{'invalid':>8}"
        f"{'bad img':>8}{'colour':>11}{'depth':>9}{'vertices':>10}{'objects':>8}{'unique':>7}"
        f"  repeated"
    )
    click.echo(header)
    for row in rows:
        name = printable(row.scene_id)
        if row.error is not None:
            click.echo(f"  {name:<14}{row.split or '-':<7}ERROR {row.error}")
            continue
        click.echo(
            f"  {name:<14}{row.split or '-':<7}{row.layout:<13}{row.total_frames:>7}"
            f"{row.kept_frames:>6}{row.invalid_frames:>8}{row.bad_images:>8}"
            f"{_size(row.color_size):>11}{_size(row.depth_size):>9}{row.vertices:>10}"
            f"{row.objects:>8}{row.unique_labels:>7}  {', '.join(row.repeated_labels) or '-'}"
            + (f"  UNUSABLE: {row.unusable}" if row.unusable else "")
        )


def print_tapvid_table(rows: list[ClipSummary], split_sources: dict[str, str]) -> None:
    """Print one line per TAPVid-3D clip."""
    sources = ", ".join(f"{subset}: {source}" for subset, source in split_sources.items())
    click.echo(f"TAPVid-3D: {len(rows)} clips (splits from {sources or '-'})")
    click.echo(
        f"  {'subset':<9}{'clip':<22}{'split':<7}{'frames':>7}{'bad img':>8}{'tracks':>7}"
        f"{'image':>10}{'extrinsics':>12}  usable"
    )
    for row in rows:
        name = printable(row.clip_id)
        if row.error is not None:
            click.echo(f"  {row.subset:<9}{name:<22}{row.split or '-':<7}ERROR {row.error}")
            continue
        usable = "yes" if row.usable else f"no ({row.reason})"
        click.echo(
            f"  {row.subset:<9}{name:<22}{row.split or '-':<7}{row.frames:>7}"
            f"{row.bad_images:>8}{row.tracks:>7}{_size(row.image_size):>10}"
            f"{'yes' if row.extrinsics else 'identity':>12}  {usable}"
        )


def inspect_paths(scannet: Path | None, tapvid3d: Path | None, frame_skip: int,
                  check_images: bool = True) -> int:
    """Print both tables; return the number of scenes and clips that failed to read."""
    failures = 0
    if scannet is not None:
        dataset, scene_rows = summarize_scannet(scannet, frame_skip=frame_skip,
                                                check_images=check_images)
        print_scannet_table(scene_rows, dataset.split_source)
        failures += sum(row.error is not None for row in scene_rows)
    if tapvid3d is not None:
        clips, clip_rows = summarize_tapvid3d(tapvid3d)
        print_tapvid_table(clip_rows, {s: clips.split_source(s) for s in clips.subsets})
        failures += sum(row.error is not None for row in clip_rows)
    return failures


@click.command("inspect")
@click.option("--scannet", type=click.Path(path_type=Path), help="ScanNet root or scans/ folder.")
@click.option(
    "--tapvid3d", type=click.Path(path_type=Path), help="TAPVid-3D root (adt/, pstudio/)."
)
@click.option("--frame-skip", default=5, show_default=True, help="Keep every k-th frame.")
@click.option("--no-image-check", is_flag=True,
              help="Do not read the kept ScanNet frames to check their colour images (faster; "
                   "the 'bad img' column then shows 0).")
def inspect_command(scannet: Path | None, tapvid3d: Path | None, frame_skip: int,
                    no_image_check: bool) -> None:
    """Read ScanNet scenes and TAPVid-3D clips and print what the readers see."""
    if scannet is None and tapvid3d is None:
        raise click.UsageError("give --scannet and/or --tapvid3d")
    failures = inspect_paths(scannet, tapvid3d, frame_skip, check_images=not no_image_check)
    if failures:
        raise MultispaError(f"{failures} scene(s)/clip(s) could not be read (see the table)")

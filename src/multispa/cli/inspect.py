"""``multispa inspect``: print what the readers see in ScanNet and TAPVid-3D folders."""

from __future__ import annotations

from pathlib import Path

import click

from multispa.cli.split_options import split_list_options
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


def print_scannet_table(
    rows: list[SceneSummary], split_source: str, warnings: list[str] | None = None
) -> None:
    """Print one line per ScanNet scene, then the warnings: the dataset's (``warnings``) and
    one line per note of each scene."""
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
    for warning in warnings or ():
        click.echo(f"warning: {warning}")
    for row in rows:
        for note in row.notes:
            click.echo(f"warning: {row.scene_id}: {note}")


def print_tapvid_table(
    rows: list[ClipSummary], split_sources: dict[str, str], warnings: list[str] | None = None
) -> None:
    """Print one line per TAPVid-3D clip: sizes, the pose source it will use, its static group
    (tracks that stay rigid / tracks of the largest rigid group), the worst per-frame residual of
    those poses in mm (static-scene fit, or drift under the file's extrinsics), and whether it is
    usable; then the ``warnings`` (hash-assigned subsets)."""
    sources = ", ".join(f"{subset}: {source}" for subset, source in split_sources.items())
    click.echo(f"TAPVid-3D: {len(rows)} clips (splits from {sources or '-'})")
    click.echo(
        f"  {'subset':<9}{'clip':<22}{'split':<7}{'frames':>7}{'bad img':>8}{'tracks':>7}"
        f"{'image':>10}{'extrinsics':>11}  {'poses':<13}{'static':>9}{'worst mm':>9}  usable"
    )
    for row in rows:
        name = printable(row.clip_id)
        if row.error is not None:
            click.echo(f"  {row.subset:<9}{name:<22}{row.split or '-':<7}ERROR {row.error}")
            continue
        usable = "yes" if row.usable else f"no ({row.reason})"
        if row.warning:
            usable += f" (warning: {row.warning})"
        worst = "-" if row.worst_residual_m is None else f"{1000 * row.worst_residual_m:.2f}"
        static = str(row.static_tracks or "-")
        if row.rigid_tracks:
            static = f"{row.rigid_tracks}/{row.static_tracks}"
        click.echo(
            f"  {row.subset:<9}{name:<22}{row.split or '-':<7}{row.frames:>7}"
            f"{row.bad_images:>8}{row.tracks:>7}{_size(row.image_size):>10}"
            f"{'yes' if row.extrinsics else 'no':>11}  {row.pose_source or '-':<13}"
            f"{static:>9}{worst:>9}  {usable}"
        )
    for warning in warnings or ():
        click.echo(f"warning: {warning}")


def inspect_paths(
    scannet: Path | None,
    tapvid3d: Path | None,
    frame_skip: int,
    *,
    scannet_splits: Path | None = None,
    tapvid3d_splits: Path | None = None,
    check_images: bool = True,
) -> int:
    """Print both tables; return the number of scenes and clips that failed to read."""
    failures = 0
    if scannet is not None:
        dataset, scene_rows = summarize_scannet(
            scannet, frame_skip=frame_skip, splits_dir=scannet_splits, check_images=check_images
        )
        warnings = [w for w in (dataset.split_warning, dataset.shared_rooms_warning) if w]
        print_scannet_table(scene_rows, dataset.split_source, warnings)
        failures += sum(row.error is not None for row in scene_rows)
    if tapvid3d is not None:
        clips, clip_rows = summarize_tapvid3d(tapvid3d, splits_dir=tapvid3d_splits)
        print_tapvid_table(
            clip_rows,
            {s: clips.split_source(s) for s in clips.subsets},
            [w for w in map(clips.split_warning, clips.subsets) if w],
        )
        failures += sum(row.error is not None for row in clip_rows)
    return failures


@click.command("inspect")
@click.option("--scannet", type=click.Path(path_type=Path), help="ScanNet root or scans/ folder.")
@click.option(
    "--tapvid3d", type=click.Path(path_type=Path), help="TAPVid-3D root (adt/, pstudio/)."
)
@split_list_options
@click.option("--frame-skip", default=5, show_default=True, help="Keep every k-th frame.")
@click.option("--no-image-check", is_flag=True,
              help="Do not read the kept ScanNet frames to check their colour images (faster; "
                   "the 'bad img' column then shows 0).")
def inspect_command(
    scannet: Path | None,
    tapvid3d: Path | None,
    scannet_splits: Path | None,
    tapvid3d_splits: Path | None,
    frame_skip: int,
    no_image_check: bool,
) -> None:
    """Read ScanNet scenes and TAPVid-3D clips and print what the readers see."""
    if scannet is None and tapvid3d is None:
        raise click.UsageError("give --scannet and/or --tapvid3d")
    failures = inspect_paths(
        scannet,
        tapvid3d,
        frame_skip,
        scannet_splits=scannet_splits,
        tapvid3d_splits=tapvid3d_splits,
        check_images=not no_image_check,
    )
    if failures:
        raise MultispaError(f"{failures} scene(s)/clip(s) could not be read (see the table)")

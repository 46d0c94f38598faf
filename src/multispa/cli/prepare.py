"""``multispa prepare``: per-scene caches with visibility, frame-pair relations and objects."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from multispa.cache.scannet_cache import VisibilityConfig
from multispa.cli.split_options import split_list_options
from multispa.pipeline.prepare import PrepareConfig, PrepareSummary, UnitReport, prepare


def print_prepare_summary(summary: PrepareSummary) -> None:
    """Print the end-of-run table."""
    built, skipped = summary.count("built"), summary.count("skipped")
    failed, unusable = summary.count("failed"), summary.count("unusable")
    scenes = [r for r in summary.reports if r.unit_id.startswith("scannet/")]
    clips = [r for r in summary.reports if r.unit_id.startswith("tapvid3d/")]
    ok = ("built", "skipped")
    click.echo(
        f"prepare: {len(summary.reports)} units: {built} built, {skipped} already done, "
        f"{unusable} unusable, {failed} failed"
    )
    click.echo(
        f"  ScanNet scenes   ok {sum(r.status in ok for r in scenes):>5}"
        f"   failed {sum(r.status == 'failed' for r in scenes):>4}"
        f"   frames kept {sum(r.counts.get('frames', 0) for r in scenes):>7}"
        f"   invalid {summary.total('invalid_frames'):>5}"
        f"   bad images {sum(r.counts.get('bad_images', 0) for r in scenes):>4}"
        f"   empty {summary.total('empty_frames'):>5}"
        f"   pairs {summary.total('pairs'):>9}   objects {summary.total('objects'):>6}"
    )
    click.echo(
        f"  TAPVid-3D clips  ok {sum(r.status in ok for r in clips):>5}"
        f"   failed {sum(r.status == 'failed' for r in clips):>4}"
        f"   unusable {unusable:>3}"
        f"   frames {sum(r.counts.get('frames', 0) for r in clips):>7}"
        f"   bad images {sum(r.counts.get('bad_images', 0) for r in clips):>4}"
        f"   tracks {summary.total('tracks'):>7}   rigid groups {summary.total('groups'):>5}"
    )
    if clips:
        poses = summary.pose_sources()
        unusable_reasons = ", ".join(
            f"{key.removeprefix('unusable_')} {n}" for key, n in poses.items()
            if key.startswith("unusable_")
        )
        click.echo(
            f"  TAPVid-3D poses  extrinsics {poses['extrinsics']}   static_scene "
            f"{poses['static_scene']}   fixed {poses['fixed']}   warnings {poses['warnings']}"
            + (f"   unusable: {unusable_reasons}" if unusable_reasons else "")
        )
    click.echo(
        f"  wall time {summary.wall_seconds:.1f} s, peak memory {summary.peak_rss_mb:.0f} MB"
    )
    for report in summary.reports:
        if report.status in ("failed", "unusable"):
            click.echo(f"  {report.status}: {report.unit_id}: {report.error}")
    for warning in summary.warnings:
        click.echo(f"warning: {warning}")
    for report in summary.reports:
        for warning in report.warnings:
            click.echo(f"warning: {report.unit_id}: {warning}")


@click.command("prepare")
@click.option("--scannet", type=click.Path(path_type=Path), help="ScanNet root or scans/ folder.")
@click.option("--scannet-export", type=click.Path(path_type=Path), help="Exports, if elsewhere.")
@click.option("--tapvid3d", type=click.Path(path_type=Path), help="TAPVid-3D root.")
@split_list_options
@click.option("--cache", required=True, type=click.Path(path_type=Path), help="Cache folder.")
@click.option("--frame-skip", default=5, show_default=True, help="Keep every k-th frame.")
@click.option("--scenes", default=None, help="Comma-separated scene ids (default: all).")
@click.option("--no-depth", is_flag=True, help="Do not keep depth PNGs in the cache.")
@click.option("--depth-tol-m", default=0.05, show_default=True, help="Absolute depth tolerance.")
@click.option("--depth-tol-rel", default=0.05, show_default=True, help="Relative depth tolerance.")
@click.option("--workers", default=1, show_default=True, help="Parallel units.")
@click.option(
    "--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True
)
@click.option("--ray-address", envvar="RAY_ADDRESS", default=None, help="Ray cluster address.")
@click.option("--force", is_flag=True, help="Rebuild even if the cache has other settings.")
def prepare_command(
    scannet: Path | None,
    scannet_export: Path | None,
    tapvid3d: Path | None,
    scannet_splits: Path | None,
    tapvid3d_splits: Path | None,
    cache: Path,
    frame_skip: int,
    scenes: str | None,
    no_depth: bool,
    depth_tol_m: float,
    depth_tol_rel: float,
    workers: int,
    executor: str,
    ray_address: str | None,
    force: bool,
) -> None:
    """Build the per-scene / per-clip caches the question generators read."""
    config = PrepareConfig(
        cache=cache,
        scannet=scannet,
        scannet_export=scannet_export,
        tapvid3d=tapvid3d,
        scannet_splits=scannet_splits,
        tapvid3d_splits=tapvid3d_splits,
        frame_skip=frame_skip,
        keep_depth=not no_depth,
        visibility=VisibilityConfig(abs_tol_m=depth_tol_m, rel_tol=depth_tol_rel),
        scenes=tuple(s.strip() for s in scenes.split(",") if s.strip()) if scenes else None,
        workers=workers,
        executor=executor,
        ray_address=ray_address,
        force=force,
    )
    bars: list[tqdm] = []
    frames = 0

    def on_start(units: int) -> None:
        bars.append(tqdm(total=units, desc="prepare", unit="unit"))

    def on_report(report: UnitReport) -> None:
        nonlocal frames
        frames += report.counts.get("frames", 0)
        bars[0].update(1)
        bars[0].set_postfix(frames=frames, unit=report.unit_id, refresh=False)

    try:
        summary = prepare(config, on_report=on_report, on_start=on_start)
    finally:
        for bar in bars:
            bar.close()
    print_prepare_summary(summary)
    if summary.count("failed"):
        raise SystemExit(1)

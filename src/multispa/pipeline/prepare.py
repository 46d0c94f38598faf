"""``multispa prepare``: build the per-scene and per-clip caches, resumably, on any executor.

Each unit (one ScanNet scene or one TAPVid-3D clip) is built in a temporary folder, renamed into
place atomically, and then marked complete under ``<cache>/_done/``. A rerun skips completed
units, so a run killed at any point and restarted yields the same files as an uninterrupted run.
A unit that fails is reported and does not stop the others; the manifest is written whatever
the units did. The cache folder is locked while the command runs (:mod:`multispa.lock`).

A scene or clip whose file name is not valid UTF-8 is not built: it is reported failed, under
an id with the undecodable bytes written ``\\xNN`` (records, paths and JSON files name units by
their file names, which must be text).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from multispa import __version__
from multispa.cache.files import read_json, tree_fingerprint, write_json
from multispa.cache.scannet_cache import CACHE_VERSION, VisibilityConfig, build_scannet_cache
from multispa.cache.tapvid_cache import (
    TAPVID_CACHE_VERSION,
    RigidGroupConfig,
    analyse_clip,
    build_tapvid_cache,
)
from multispa.errors import ConfigError, DatasetError, FormatError
from multispa.executors.base import make_executor
from multispa.fs import (
    check_output_dir,
    failure_text,
    is_utf8_name,
    naming,
    output_folder,
    printable,
)
from multispa.scenes.tapvid_poses import POSE_SOURCES, PoseCheckConfig
from multispa.scenes.types import SceneNotes

logger = logging.getLogger(__name__)

DONE_DIR = "_done"
LOGS_DIR = "logs"


@dataclass(frozen=True)
class PrepareConfig:
    """Everything ``multispa prepare`` needs (defaults as documented).

    Attributes:
        cache: output cache folder.
        scannet: ScanNet root (containing ``scans/``) or the ``scans/`` folder itself.
        tapvid3d: TAPVid-3D root (containing ``adt/`` and/or ``pstudio/``).
        scannet_export: where SensReader / ``posed_images`` exports live, if not beside the scans.
        scannet_splits: folder holding ``scannetv2_{train,val}.txt`` (else searched beside the
            scans; without lists, scans are assigned by a hash of their room).
        tapvid3d_splits: folder holding ``<subset>/{train,val}.txt`` (else searched in the
            TAPVid-3D root).
        frame_skip: keep original frame indices that are multiples of this
            (docs/data-formats.md#frames-poses-depth).
        keep_depth: write each kept frame's depth as a 16-bit PNG.
        visibility: depth-test tolerances (rule (a)).
        rigid_groups: rigid-body segmentation parameters (docs/labels.md#rigid-groups).
        poses: thresholds of the TAPVid-3D camera poses (static scene, extrinsics check).
        scenes: only these ScanNet scene ids (all when None).
        workers: parallel units.
        executor: ``"local"`` or ``"ray"``.
        ray_address: Ray cluster address (local Ray instance when None).
        force: rebuild everything even if the cache was built with other settings.
    """

    cache: Path
    scannet: Path | None = None
    tapvid3d: Path | None = None
    scannet_export: Path | None = None
    scannet_splits: Path | None = None
    tapvid3d_splits: Path | None = None
    frame_skip: int = 5
    keep_depth: bool = True
    visibility: VisibilityConfig = field(default_factory=VisibilityConfig)
    rigid_groups: RigidGroupConfig = field(default_factory=RigidGroupConfig)
    poses: PoseCheckConfig = field(default_factory=PoseCheckConfig)
    scenes: tuple[str, ...] | None = None
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    force: bool = False

    def output_settings(self) -> dict[str, Any]:
        """The settings that change the cache's content (recorded and compared on rerun)."""
        return {
            "cache_version": CACHE_VERSION,
            "frame_skip": self.frame_skip,
            "keep_depth": self.keep_depth,
            "visibility": asdict(self.visibility),
            "rigid_groups": asdict(self.rigid_groups),
        }

    def settings_digest(self) -> str:
        """SHA-256 (16 hex digits) of :meth:`output_settings`."""
        text = json.dumps(self.output_settings(), sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    def tapvid_settings(self) -> dict[str, Any]:
        """The TAPVid-3D cache format and pose thresholds: part of each clip unit's digest (not
        of :meth:`settings_digest`, so ScanNet caches stay valid when only these change)."""
        return {"cache_version": TAPVID_CACHE_VERSION, "poses": asdict(self.poses)}


@dataclass(frozen=True)
class PrepareUnit:
    """One unit of work: ``kind`` is ``"scannet"`` or ``"tapvid3d"``; ``name`` is the scene id
    or ``"<subset>/<clip>"``; ``labels_tsv`` is the ScanNet label map found, if any."""

    kind: str
    name: str
    split: str | None
    config: PrepareConfig
    labels_tsv: Path | None = None

    @property
    def unit_id(self) -> str:
        """Stable readable id, e.g. ``scannet/scene0000_00`` (undecodable name bytes as
        ``\\xNN``)."""
        return f"{self.kind}/{printable(self.name)}"

    def source_path(self) -> Path:
        """The scene folder or clip file this unit reads."""
        config = self.config
        if self.kind == "scannet":
            assert config.scannet is not None
            return _scans_root(config.scannet) / self.name
        assert config.tapvid3d is not None
        subset, clip_id = self.name.split("/", 1)
        return config.tapvid3d / subset / f"{clip_id}.npz"

    def settings_digest(self) -> str:
        """The digest its completion marker must carry to count as done."""
        digest = self.config.settings_digest()
        if self.kind != "tapvid3d":
            return digest
        text = json.dumps([digest, self.config.tapvid_settings()], sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class UnitReport:
    """Outcome of one unit: status ``built``, ``skipped`` (already done), ``unusable`` or
    ``failed``; ``notes`` are a scene's load notes (``SceneNotes.to_json``) and ``warnings``
    their readable lines, or a built clip's pose problem (e.g. drifting extrinsics)."""

    unit_id: str
    status: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PrepareSummary:
    """What a ``prepare`` run did; ``warnings`` are the datasets' (split lists not found)."""

    reports: list[UnitReport]
    wall_seconds: float
    peak_rss_mb: float
    warnings: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        """Number of units with ``status``."""
        return sum(report.status == status for report in self.reports)

    def total(self, key: str) -> int:
        """Sum of one count over built and skipped units."""
        return sum(report.counts.get(key, 0) for report in self.reports)

    def pose_sources(self) -> dict[str, int]:
        """TAPVid-3D clips per pose source and per unusable reason (:func:`pose_counts`)."""
        return pose_counts(self.reports)


def pose_counts(reports: list[UnitReport]) -> dict[str, int]:
    """Usable TAPVid-3D clips per pose source (``extrinsics``, ``static_scene``, ``fixed``),
    unusable ones per reason code (``unusable_<reason>``) and clips with a pose ``warnings``."""
    counts = {
        source: sum(report.counts.get(f"poses_{source}", 0) for report in reports)
        for source in POSE_SOURCES
    }
    for report in reports:
        if report.unit_id.startswith("tapvid3d/") and report.status == "unusable":
            key = f"unusable_{(report.error or '').split(':', 1)[0]}"
            counts[key] = counts.get(key, 0) + 1
    counts["warnings"] = sum(
        bool(report.warnings) for report in reports if report.unit_id.startswith("tapvid3d/")
    )
    return counts


def _pose_entry(config: PrepareConfig, reports: list[UnitReport]) -> dict[str, Any]:
    """The manifest's ``tapvid3d_poses`` entry (pose settings and counts), when clips are read."""
    if config.tapvid3d is None:
        return {}
    entry = {"settings": config.tapvid_settings(), "counts": pose_counts(reports)}
    return {"tapvid3d_poses": entry}


def _marker_path(cache: Path, unit_id: str) -> Path:
    return cache / DONE_DIR / f"{unit_id}.json"


def _final_dir(cache: Path, unit_id: str) -> Path:
    return cache / unit_id


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _scans_root(root: Path) -> Path:
    return root / "scans" if (root / "scans").is_dir() else root


def _build_scannet(
    unit: PrepareUnit, work_dir: Path
) -> tuple[dict[str, int] | str, SceneNotes]:
    """Build one scene: its counts (or the reason it is unusable) and its load notes."""
    from multispa.scenes.scannet import load_scannet_scene
    from multispa.scenes.scannet_annotations import read_label_map

    config = unit.config
    assert config.scannet is not None
    scans = _scans_root(config.scannet)
    label_map = read_label_map(unit.labels_tsv) if unit.labels_tsv is not None else None
    scene = load_scannet_scene(
        scans,
        unit.name,
        frame_skip=config.frame_skip,
        export_root=config.scannet_export,
        label_map=label_map,
    )
    if unit.labels_tsv is not None:
        scene.files["labels_tsv"] = unit.labels_tsv
    inputs = {role: tree_fingerprint(path) for role, path in sorted(scene.files.items())}
    summary = build_scannet_cache(
        scene,
        work_dir,
        split=unit.split,
        visibility=config.visibility,
        keep_depth=config.keep_depth,
        inputs=inputs,
    )
    if summary.unusable:
        return summary.unusable, scene.notes
    counts = {
        "frames": summary.kept_frames,
        "invalid_frames": summary.invalid_frames,
        "bad_images": summary.bad_images,
        "empty_frames": summary.empty_frames,
        "vertices": summary.vertices,
        "pairs": summary.pairs,
        "objects": summary.objects,
    }
    return counts, scene.notes


def _build_tapvid(unit: PrepareUnit, work_dir: Path) -> tuple[dict[str, int], str | None] | str:
    """Build one clip: its counts and pose warning, or the reason it is unusable."""
    from multispa.scenes.tapvid3d import load_tapvid3d_clip

    config = unit.config
    subset = unit.name.split("/", 1)[0]
    path = unit.source_path()
    clip = load_tapvid3d_clip(path, subset)
    analysis = analyse_clip(clip, config.rigid_groups, config.poses)
    poses = analysis.poses
    if not poses.usable:
        return poses.explain()
    if poses.warning:
        logger.warning("%s: %s", unit.unit_id, poses.warning)
    summary = build_tapvid_cache(
        clip,
        work_dir,
        split=unit.split,
        groups=config.rigid_groups,
        analysis=analysis,
        inputs={"npz": tree_fingerprint(path)},
    )
    if summary.unusable:
        return summary.unusable
    counts = {
        "clips": 1,
        "frames": summary.frames,
        "tracks": summary.tracks,
        "groups": summary.groups,
        "grouped_tracks": summary.grouped_tracks,
        f"poses_{summary.pose_source}": 1,
        "bad_images": summary.bad_images,
    }
    return counts, poses.warning or None


def run_prepare_unit(unit: PrepareUnit) -> UnitReport:
    """Build one unit unless its completion marker exists (module-level: runs in any worker)."""
    start = time.perf_counter()
    try:
        if not is_utf8_name(unit.name):
            raise FormatError(unit.source_path(), "file name is not valid UTF-8; rename it "
                                                  "(units are named by their file names)")
        return _run_unit(unit, start)
    except Exception as error:  # reported in one line; the other units go on
        if isinstance(error, OSError):
            error = naming(error, _final_dir(unit.config.cache, unit.unit_id))
        message = failure_text(error)
        if message is None:  # a bug: say so, with the traceback in the debug log
            logger.debug("unit %s failed", unit.unit_id, exc_info=True)
            message = f"internal error {type(error).__name__}: {error} (run with -vv for details)"
        return UnitReport(unit.unit_id, "failed", error=message, seconds=_since(start))


def _run_unit(unit: PrepareUnit, start: float) -> UnitReport:
    """Skip, build or declare unusable one unit; errors propagate to :func:`run_prepare_unit`."""
    cache = unit.config.cache
    marker = _marker_path(cache, unit.unit_id)
    digest = unit.settings_digest()
    if marker.is_file():
        done = read_json(marker)
        if done.get("settings_digest") == digest:
            return UnitReport(
                unit.unit_id,
                "skipped",
                counts=done.get("counts", {}),
                notes=done.get("notes", {}),
                warnings=done.get("warnings", []),
            )
    final = _final_dir(cache, unit.unit_id)
    work = final.with_name(f".tmp-{final.name}-{os.getpid()}")
    for stale in final.parent.glob(f".tmp-{final.name}-*") if final.parent.is_dir() else ():
        shutil.rmtree(stale, ignore_errors=True)
    notes: SceneNotes | None = None
    warning = None
    try:
        work.mkdir(parents=True)
        if unit.kind == "scannet":
            outcome: dict[str, int] | str
            outcome, notes = _build_scannet(unit, work)
        else:
            built = _build_tapvid(unit, work)
            outcome, warning = (built, None) if isinstance(built, str) else built
        if isinstance(outcome, str):
            shutil.rmtree(work, ignore_errors=True)
            return UnitReport(unit.unit_id, "unusable", error=outcome, seconds=_since(start))
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    marker.parent.mkdir(parents=True, exist_ok=True)
    note_json = notes.to_json() if notes is not None else {}
    warnings = notes.lines() if notes is not None else []
    if warning:
        warnings.append(warning)
    write_json(
        marker,
        {
            "unit": unit.unit_id,
            "settings_digest": digest,
            "counts": outcome,
            "notes": note_json,
            "warnings": warnings,
        },
    )
    return UnitReport(
        unit.unit_id,
        "built",
        counts=outcome,
        seconds=_since(start),
        peak_rss_mb=_peak_rss_mb(),
        notes=note_json,
        warnings=warnings,
    )


def _since(start: float) -> float:
    return time.perf_counter() - start


def plan_units(config: PrepareConfig) -> tuple[list[PrepareUnit], dict[str, Any], list[str]]:
    """List the units to run (sorted by id), the datasets' split information and warnings
    (split lists not found: hash assignment)."""
    units: list[PrepareUnit] = []
    splits: dict[str, Any] = {}
    warnings: list[str] = []
    if config.scannet is not None:
        from multispa.scenes.scannet import ScanNetDataset

        dataset = ScanNetDataset(
            config.scannet, export_root=config.scannet_export, splits_dir=config.scannet_splits
        )
        scene_ids = dataset.scene_ids()
        if not scene_ids:
            raise DatasetError(config.scannet, "no ScanNet scene found (expected "
                                               "scans/<scene>/<scene>.sens or "
                                               "<scene>_vh_clean_2.ply)")
        if config.scenes is not None:
            missing = sorted(set(config.scenes) - set(scene_ids))
            if missing:
                raise ConfigError(f"--scenes names scenes not found: {', '.join(missing)}")
            scene_ids = [s for s in scene_ids if s in set(config.scenes)]
        for scene_id in scene_ids:
            split = dataset.split_of(scene_id) if is_utf8_name(scene_id) else None
            units.append(PrepareUnit("scannet", scene_id, split, config, dataset.labels_tsv))
        splits["scannet"] = {
            **dataset.split_info(),
            "labels_tsv": str(dataset.labels_tsv) if dataset.labels_tsv else None,
        }
        if splits["scannet"]["warning"]:
            warnings.append(splits["scannet"]["warning"])
    if config.tapvid3d is not None:
        from multispa.scenes.summary import present_subsets
        from multispa.scenes.tapvid3d import TapVid3DDataset

        subsets = present_subsets(config.tapvid3d)
        if not subsets:
            raise ConfigError(f"{config.tapvid3d}: no adt/ or pstudio/ folder of clips")
        clips = TapVid3DDataset(config.tapvid3d, subsets=subsets, splits_dir=config.tapvid3d_splits)
        for subset in clips.subsets:
            for clip_id in clips.clip_ids(subset):
                split = clips.split_of(subset, clip_id) if is_utf8_name(clip_id) else None
                units.append(PrepareUnit("tapvid3d", f"{subset}/{clip_id}", split, config))
        tapvid_warnings = {s: clips.split_warning(s) for s in clips.subsets}
        splits["tapvid3d"] = {
            "source": {s: clips.split_source(s) for s in clips.subsets},
            "checksums": clips.split_checksums,
            "other_subsets": clips.other_subsets,
            "warnings": {s: w for s, w in tapvid_warnings.items() if w},
        }
        warnings += [w for w in tapvid_warnings.values() if w]
    units.sort(key=lambda unit: unit.unit_id)
    return units, splits, warnings


def _check_settings(config: PrepareConfig) -> None:
    """Refuse to mix caches built with different settings, unless ``force``."""
    settings_path = config.cache / "prepare_settings.json"
    if settings_path.is_file() and not config.force:
        previous = read_json(settings_path)
        if previous.get("digest") != config.settings_digest():
            raise ConfigError(
                f"{config.cache} was prepared with other settings "
                f"({previous.get('settings')}); use another --cache or --force to rebuild"
            )
    if config.force and (config.cache / DONE_DIR).is_dir():
        shutil.rmtree(config.cache / DONE_DIR)
    write_json(
        settings_path,
        {"digest": config.settings_digest(), "settings": config.output_settings()},
    )


def prepare(
    config: PrepareConfig,
    on_report: Callable[[UnitReport], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> PrepareSummary:
    """Build every unit's cache and write ``<cache>/manifest.json``.

    Args:
        config: what to prepare.
        on_report: called in the parent process after each finished unit (progress).
        on_start: called once with the number of units, before any runs.

    Raises:
        ConfigError: bad settings, or a cache prepared with other settings.
        OutputError: the cache folder cannot be written (a file in the way...).
        LockError: another process is preparing the same cache.
        DatasetError: the datasets cannot be listed (a failing unit is reported, not raised).
    """
    if config.scannet is None and config.tapvid3d is None:
        raise ConfigError("nothing to prepare: give a ScanNet and/or a TAPVid-3D root")
    if config.frame_skip < 1:
        raise ConfigError(f"--frame-skip must be at least 1, got {config.frame_skip}")
    check_output_dir(config.cache, "--cache")
    start = time.perf_counter()
    units, splits, warnings = plan_units(config)
    with output_folder(config.cache, "multispa prepare", option="--cache"):
        return _prepare_units(config, units, splits, warnings, start, on_report, on_start)


def _prepare_units(
    config: PrepareConfig,
    units: list[PrepareUnit],
    splits: dict[str, Any],
    warnings: list[str],
    start: float,
    on_report: Callable[[UnitReport], None] | None,
    on_start: Callable[[int], None] | None,
) -> PrepareSummary:
    """Run the units into the locked cache and write the manifest and the run log."""
    _check_settings(config)
    if on_start is not None:
        on_start(len(units))
    executor = make_executor(config.executor, config.workers, config.ray_address)
    reports: list[UnitReport] = []
    for report in executor.map_unordered(run_prepare_unit, units):
        reports.append(report)
        if on_report is not None:
            on_report(report)
    reports.sort(key=lambda report: report.unit_id)
    split_of = {unit.unit_id: unit.split for unit in units}
    write_json(
        config.cache / "manifest.json",
        {
            "multispa_version": __version__,
            "settings": config.output_settings(),
            "sources": {
                "scannet": str(config.scannet) if config.scannet else None,
                "tapvid3d": str(config.tapvid3d) if config.tapvid3d else None,
            },
            "splits": splits,
            **_pose_entry(config, reports),
            "units": {
                report.unit_id: {
                    "split": split_of[report.unit_id],
                    "status": "done" if report.status in ("built", "skipped") else report.status,
                    "counts": report.counts,
                    "error": report.error,
                    **({"notes": report.notes} if report.notes else {}),
                    **({"warnings": report.warnings} if report.warnings else {}),
                }
                for report in reports
            },
        },
    )
    wall = _since(start)
    peak = max([_peak_rss_mb(), *(report.peak_rss_mb for report in reports)])
    summary = PrepareSummary(
        reports=reports, wall_seconds=wall, peak_rss_mb=peak, warnings=warnings
    )
    (config.cache / LOGS_DIR).mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    write_json(
        config.cache / LOGS_DIR / f"prepare-{stamp}.json",
        {
            "wall_seconds": wall,
            "peak_rss_mb": peak,
            "workers": config.workers,
            "executor": config.executor,
            "reports": [asdict(report) for report in reports],
        },
    )
    return summary

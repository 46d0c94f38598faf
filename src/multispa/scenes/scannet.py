"""ScanNet scenes: assemble frames, aligned poses, mesh and instances; split lists
(docs/data-formats.md#scannet).

:func:`load_scannet_scene` reads one scene in any of the three layouts (see
:mod:`multispa.scenes.scannet_layouts`) and returns a :class:`~multispa.scenes.types.ScanNetScene`
in the **aligned** world (aligned = A @ raw, A from ``axisAlignment`` of ``<scene>.txt``).
:class:`ScanNetDataset` lists the scenes of a ``scans/`` folder and assigns them to train/val from
``scannetv2_train.txt`` / ``scannetv2_val.txt`` or, without lists, by a hash of each scan's room
(:func:`multispa.scenes.splits.scannet_hash_split`, so rescans share a split).
"""

from __future__ import annotations

import hashlib
import logging
import operator
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import numpy as np

from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.fs import present_file
from multispa.geometry.transforms import rigidity_defect
from multispa.scenes.ply import read_ply_vertices
from multispa.scenes.scannet_annotations import (
    SceneMeta,
    build_instances,
    drop_duplicate_groups,
    read_aggregation,
    read_label_map,
    read_scene_meta,
    read_segs,
)
from multispa.scenes.scannet_layouts import (
    LAYOUTS,
    LayoutFrames,
    find_layout,
    open_posed_images,
    open_raw,
    open_sensreader,
    posed_images_roots,
    sensreader_roots,
)
from multispa.scenes.splits import DEFAULT_VAL_FRACTION, room_of, scannet_hash_split
from multispa.scenes.types import FrameInfo, Intrinsics, ScanNetScene, SceneNotes, SceneObject

logger = logging.getLogger(__name__)

SPLIT_LIST_NAMES = {"train": "scannetv2_train.txt", "val": "scannetv2_val.txt"}
LABELS_TSV_NAME = "scannetv2-labels.combined.tsv"
SPLITS = ("train", "val")
#: Largest :func:`~multispa.geometry.transforms.rigidity_defect` of a usable pose or alignment.
RIGID_TOLERANCE = 1e-3


def scene_files(scene_dir: Path, scene_id: str) -> dict[str, Path]:
    """The annotation files of a scene in the raw layout, by role (they may not exist)."""
    return {
        "meta_txt": scene_dir / f"{scene_id}.txt",
        "ply": scene_dir / f"{scene_id}_vh_clean_2.ply",
        "aggregation": scene_dir / f"{scene_id}.aggregation.json",
        "segs": scene_dir / f"{scene_id}_vh_clean_2.0.010000.segs.json",
    }


def _is_identity(matrix: np.ndarray | None) -> bool:
    if matrix is None:
        return True
    return bool(np.isfinite(matrix).all() and np.allclose(matrix, np.eye(4), rtol=0, atol=1e-6))


def _check_alignment(meta: SceneMeta) -> None:
    defect = float(rigidity_defect(meta.axis_alignment))
    if defect > RIGID_TOLERANCE:
        raise FormatError(
            meta.path or Path("<scene>.txt"),
            f"axisAlignment is not a rigid transform (defect {defect:.3g}: expected an "
            f"orthonormal rotation with det +1 within {RIGID_TOLERANCE:g} and bottom row "
            f"0 0 0 1; found {meta.axis_alignment.reshape(-1).tolist()})",
        )


def _check_intrinsics(k: Intrinsics, what: str, path: Path) -> None:
    values = np.array([k.fx, k.fy, k.cx, k.cy], dtype=np.float64)
    if not np.isfinite(values).all() or k.fx <= 0 or k.fy <= 0:
        raise FormatError(path, f"{what} intrinsics are fx={k.fx}, fy={k.fy}, cx={k.cx}, "
                                f"cy={k.cy}; expected finite values with fx, fy > 0")


def _check_vertices(xyz: np.ndarray, path: Path) -> None:
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise FormatError(path, f"{int(bad.sum())} vertex position(s) are not finite (NaN or "
                                f"inf), first vertex {int(np.flatnonzero(bad)[0])}")


def _open_frames(
    scans_root: Path,
    scene_id: str,
    layout: str,
    export_root: Path | None,
    meta: SceneMeta,
    frame_skip: int,
) -> LayoutFrames:
    found, where = find_layout(scans_root, scene_id, layout, export_root)
    if found == "raw":
        return open_raw(where, frame_skip)
    if found == "sensreader":
        return open_sensreader(where, meta, frame_skip)
    sens_path = scans_root / scene_id / f"{scene_id}.sens"
    return open_posed_images(where, meta, sens_path, frame_skip)


def _load_instances(
    paths: Mapping[str, Path],
    num_vertices: int,
    label_map: Mapping[str, str] | None,
    warnings: list[str],
    files: dict[str, Path],
) -> tuple[np.ndarray, tuple[SceneObject, ...], int]:
    """Instance id per vertex, the objects and the number of duplicate groups dropped (rule (n))."""
    aggregation_path, segs_path = paths["aggregation"], paths["segs"]
    has_aggregation, has_segs = present_file(aggregation_path), present_file(segs_path)
    if not has_aggregation and not has_segs:
        warnings.append(
            f"no {aggregation_path.name} / {segs_path.name}: every vertex is unannotated"
        )
        return np.full(num_vertices, -1, dtype=np.int32), (), 0
    if has_aggregation != has_segs:
        present, absent = (
            (aggregation_path, segs_path) if has_aggregation else (segs_path, aggregation_path)
        )
        raise MissingFileError(absent, f"needed together with {present.name}")
    groups, duplicates = drop_duplicate_groups(read_aggregation(aggregation_path))
    seg_indices = read_segs(segs_path)
    files["aggregation"], files["segs"] = aggregation_path, segs_path
    instance_ids, objects, conflicts = build_instances(
        seg_indices,
        groups,
        num_vertices,
        label_map=label_map,
        segs_path=segs_path,
        aggregation_path=aggregation_path,
    )
    if conflicts:
        warnings.append(
            f"{aggregation_path.name}: {conflicts} segment(s) listed by several objects; "
            f"the later object in file order keeps them"
        )
    return instance_ids, objects, duplicates


def load_scannet_scene(
    scans_root: Path,
    scene_id: str,
    *,
    frame_skip: int = 5,
    layout: str = "auto",
    export_root: Path | None = None,
    label_map: Mapping[str, str] | None = None,
) -> ScanNetScene:
    """Load one ScanNet scene in the aligned world.

    Frames kept: original indices that are multiples of ``frame_skip`` whose raw pose is a rigid
    transform (finite, orthonormal rotation with det +1 and bottom row 0 0 0 1 within
    :data:`RIGID_TOLERANCE`); other stride-kept frames go to ``invalid_frames``. Poses and mesh
    vertices are aligned with A from ``<scene>.txt`` (identity when absent), which must be rigid
    too. Intrinsics must be finite with positive focal lengths, vertices finite. Exact duplicate
    ``segGroups`` are dropped before instances are built (rule (n)); ``notes`` records that, the
    objects left without vertex, a thinned export and where K_depth came from.

    Args:
        scans_root: the ``scans/`` folder holding ``<scene>/``.
        scene_id: the scene folder name (normally ``scene\\d{4}_\\d{2}``).
        frame_skip: stride over original frame indices (≥ 1).
        layout: ``"auto"``, ``"raw"``, ``"sensreader"`` or ``"posed_images"``.
        export_root: folder of SensReader exports (``<export_root>/<scene>``) or holding
            ``posed_images/``.
        label_map: raw category → NYU40 class (from :func:`read_label_map`).

    Raises:
        ConfigError: bad ``frame_skip`` or ``layout``.
        MissingFileError: no frames in any layout searched, or no ``<scene>_vh_clean_2.ply``.
        FormatError: malformed files (names the file and the problem): a folder where a file
            is expected, a non-rigid axisAlignment, bad intrinsics, non-finite vertices.
        DatasetError: a file cannot be read (permission denied...).
    """
    try:
        frame_skip = operator.index(frame_skip)
    except TypeError:
        raise ConfigError(f"frame_skip must be an integer >= 1, got {frame_skip!r}") from None
    if frame_skip < 1:
        raise ConfigError(f"frame_skip must be an integer >= 1, got {frame_skip!r}")
    if layout != "auto" and layout not in LAYOUTS:
        raise ConfigError(f"layout must be 'auto' or one of {list(LAYOUTS)}, got {layout!r}")
    scans_root = Path(scans_root)
    export_root = Path(export_root) if export_root is not None else None
    paths = scene_files(scans_root / scene_id, scene_id)
    warnings: list[str] = []
    files: dict[str, Path] = {}

    if present_file(paths["meta_txt"]):
        meta = read_scene_meta(paths["meta_txt"])
        files["meta_txt"] = paths["meta_txt"]
        _check_alignment(meta)
        if not meta.has_axis_alignment:
            warnings.append(f"{paths['meta_txt'].name} has no axisAlignment: using identity")
    else:
        meta = SceneMeta()
        warnings.append(f"no {paths['meta_txt'].name}: axis alignment is the identity")

    frames_found = _open_frames(scans_root, scene_id, layout, export_root, meta, frame_skip)
    warnings += frames_found.warnings
    files.update(frames_found.files)
    for kind, matrix in (
        ("colour", frames_found.color_extrinsics),
        ("depth", frames_found.depth_extrinsics),
    ):
        if not _is_identity(matrix):
            warnings.append(f"{kind} extrinsics are not the identity: {matrix.tolist()}")

    k_files = frames_found.files
    _check_intrinsics(
        frames_found.color_intrinsics, "colour",
        k_files.get("intrinsic_color") or k_files.get("intrinsic") or k_files.get("sens")
        or scans_root / scene_id,
    )
    _check_intrinsics(
        frames_found.depth_intrinsics, "depth",
        k_files.get("intrinsic_depth") or k_files.get("sens") or meta.path
        or k_files.get("intrinsic") or scans_root / scene_id,
    )
    alignment = meta.axis_alignment
    raw_poses = frames_found.raw_poses
    valid = rigidity_defect(raw_poses) <= RIGID_TOLERANCE
    aligned_poses = alignment @ raw_poses[valid]
    infos = tuple(
        FrameInfo(int(index), aligned, raw)
        for index, aligned, raw in zip(
            frames_found.kept_indices[valid], aligned_poses, raw_poses[valid], strict=True
        )
    )
    invalid = tuple(int(i) for i in frames_found.kept_indices[~valid])
    if not infos:
        warnings.append(f"no frame with a valid pose among the stride-{frame_skip} frames")

    if not present_file(paths["ply"]):
        raise MissingFileError(paths["ply"], f"scene {scene_id}: mesh not found")
    mesh = read_ply_vertices(paths["ply"])
    files["ply"] = paths["ply"]
    _check_vertices(mesh.xyz, paths["ply"])
    xyz = mesh.xyz.astype(np.float64)
    vertices = (xyz @ alignment[:3, :3].T + alignment[:3, 3]).astype(np.float32)
    if mesh.rgb is None:
        warnings.append(f"{paths['ply'].name} has no vertex colours: using black")
        vertex_colors = np.zeros((mesh.num_vertices, 3), dtype=np.uint8)
    else:
        vertex_colors = np.ascontiguousarray(mesh.rgb, dtype=np.uint8)
    instance_ids, objects, duplicates = _load_instances(
        paths, mesh.num_vertices, label_map, warnings, files
    )
    notes = SceneNotes(
        duplicate_groups=duplicates,
        empty_objects=tuple(o.object_id for o in objects if o.vertex_indices.size == 0),
        exported_frames=frames_found.exported_frames,
        num_color_frames=meta.num_color_frames,
        depth_intrinsics_source=frames_found.depth_intrinsics_source,
        depth_intrinsics_note=frames_found.depth_intrinsics_note,
    )
    warnings += notes.lines()

    for note in warnings:
        logger.info("%s: %s", scene_id, note)
    return ScanNetScene(
        scene_id=scene_id,
        layout=frames_found.layout,
        color_intrinsics=frames_found.color_intrinsics,
        depth_intrinsics=frames_found.depth_intrinsics,
        axis_alignment=alignment,
        frame_skip=frame_skip,
        frames=infos,
        invalid_frames=invalid,
        total_frames=frames_found.total_frames,
        vertices=vertices,
        vertex_colors=vertex_colors,
        instance_ids=instance_ids,
        objects=objects,
        frames_source=frames_found.make_source({info.index: info for info in infos}),
        warnings=warnings,
        files=files,
        notes=notes,
    )


def read_split_list(path: Path) -> list[str]:
    """Scene ids of a split list, one per line (blank lines and ``#`` comments skipped)."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FormatError(path, "not UTF-8 text (expected one scene id per line)") from None
    ids: list[str] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if len(entry.split()) != 1:
            raise FormatError(path, f"line {line_number}: expected one scene id, found {entry!r}")
        ids.append(entry)
    return ids


def split_list_dirs(scans_root: Path) -> list[Path]:
    """Folders searched for ``scannetv2_{train,val}.txt``, in order.

    The scans folder, the ScanNet root above it, the root's ``Tasks/Benchmark/`` (ScanNet's
    public repository) and the root's ``meta_data/`` (the upstream engine's layout).
    """
    root = Path(scans_root).parent
    return [Path(scans_root), root, root / "Tasks" / "Benchmark", root / "meta_data"]


def label_map_dirs(scans_root: Path) -> list[Path]:
    """Folders searched for ``scannetv2-labels.combined.tsv``, in order.

    The scans folder, the ScanNet root (where ScanNet's download script puts it), the root's
    ``meta_data/`` and ``Tasks/Benchmark/``, and the folder holding the root.
    """
    root = Path(scans_root).parent
    return [Path(scans_root), root, root / "meta_data", root / "Tasks" / "Benchmark", root.parent]
def _holds_scene(folder: Path, names: tuple[str, ...] | None = None) -> bool:
    """Whether ``folder`` holds one of ``names`` (default ``<name>.sens`` and
    ``<name>_vh_clean_2.ply``); True as well for an unreadable folder (loading the scene then
    reports why)."""
    if names is None:
        names = (f"{folder.name}.sens", f"{folder.name}_vh_clean_2.ply")
    for name in names:
        try:
            os.lstat(folder / name)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError:
            return folder.is_dir()
        return True
    return False


class ScanNetDataset:
    """The scenes of a ScanNet ``scans/`` folder and their train/val assignment.

    Args:
        scans_root: the ``scans/`` folder, or the ScanNet root that contains ``scans/``.
        export_root: where SensReader exports (``<export_root>/<scene>``) or ``posed_images/``
            live, when not beside the scans.
        split_files: ``(train_list, val_list)``.
        splits_dir: a folder holding ``scannetv2_train.txt`` and ``scannetv2_val.txt``
            (``--scannet-splits``). Without either argument the lists are looked for in
            :func:`split_list_dirs`; without lists, scans are assigned by a hash of their room
            id (:func:`~multispa.scenes.splits.scannet_hash_split`) and :attr:`split_warning`
            says so.
        labels_tsv: ``scannetv2-labels.combined.tsv``; otherwise looked for beside the lists
            used, then in :func:`label_map_dirs`.

    Attributes:
        split_source: ``"lists"`` or ``"hash"``.
        split_files: the lists used, or None.
        split_checksums: SHA-256 hex digest of each list file by split (empty for ``"hash"``).
        shared_rooms: rooms (``sceneXXXX``) whose scans the lists put in both splits.
        missing_listed: per split, listed scenes absent on disk (set by ``scenes_in_split``).
    """

    def __init__(
        self,
        scans_root: Path,
        *,
        export_root: Path | None = None,
        split_files: tuple[Path, Path] | None = None,
        splits_dir: Path | None = None,
        labels_tsv: Path | None = None,
    ) -> None:
        root = Path(scans_root)
        self.scans_root = root / "scans" if (root / "scans").is_dir() else root
        if not self.scans_root.is_dir():
            raise MissingFileError(self.scans_root, "ScanNet scans folder not found")
        self.export_root = Path(export_root) if export_root is not None else None
        self._search_dirs = list(dict.fromkeys(split_list_dirs(self.scans_root)))
        self.missing_listed: dict[str, int] = {}
        self.shared_rooms: list[str] = []
        self._scene_ids: list[str] | None = None
        self._lists: dict[str, frozenset[str]] = {}
        self.split_files = self._resolve_split_files(split_files, splits_dir)
        self.split_checksums: dict[str, str] = {}
        if self.split_files is None:
            self.split_source: Literal["lists", "hash"] = "hash"
            logger.info("%s", self.split_warning)
        else:
            self.split_source = "lists"
            self._load_lists(*self.split_files)
        if labels_tsv is None:
            beside = [self.split_files[0].parent] if self.split_files is not None else []
            labels_tsv = next(
                (
                    d / LABELS_TSV_NAME
                    for d in dict.fromkeys([*beside, *label_map_dirs(self.scans_root)])
                    if present_file(d / LABELS_TSV_NAME)
                ),
                None,
            )
        self.labels_tsv = Path(labels_tsv) if labels_tsv is not None else None
        self.label_map = read_label_map(self.labels_tsv) if self.labels_tsv is not None else None

    @property
    def split_warning(self) -> str | None:
        """One line saying that scans are assigned by the room hash, or None with lists."""
        if self.split_files is not None:
            return None
        names = " / ".join(SPLIT_LIST_NAMES[s] for s in SPLITS)
        return (
            f"no ScanNet split lists ({names}) in {', '.join(map(str, self._search_dirs))}: "
            f"scans are assigned to train/val by a hash of their room id (sceneXXXX; about "
            f"80/20, rescans share a split); give --scannet-splits DIR for the official lists"
        )

    def _resolve_split_files(
        self, given: tuple[Path, Path] | None, splits_dir: Path | None
    ) -> tuple[Path, Path] | None:
        if given is not None:
            train, val = Path(given[0]), Path(given[1])
            for path in (train, val):
                if not present_file(path):
                    raise MissingFileError(path, "split list not found")
            return train, val
        if splits_dir is not None:
            folder = Path(splits_dir)
            if not folder.is_dir():
                raise MissingFileError(folder, "ScanNet split-list folder not found")
            train, val = (folder / SPLIT_LIST_NAMES[s] for s in SPLITS)
            for path in (train, val):
                if not present_file(path):
                    raise MissingFileError(path, "split list not found in --scannet-splits")
            return train, val
        for folder in self._search_dirs:
            train, val = (folder / SPLIT_LIST_NAMES[s] for s in SPLITS)
            has_train, has_val = present_file(train), present_file(val)
            if has_train and has_val:
                return train, val
            if has_train or has_val:
                present, absent = (train, val) if has_train else (val, train)
                raise MissingFileError(absent, f"split list missing beside {present}")
        return None

    def _load_lists(self, train_path: Path, val_path: Path) -> None:
        for split, path in zip(SPLITS, (train_path, val_path), strict=True):
            self._lists[split] = frozenset(read_split_list(path))
            self.split_checksums[split] = hashlib.sha256(path.read_bytes()).hexdigest()
        shared = sorted(self._lists["train"] & self._lists["val"])
        if shared:
            raise FormatError(
                train_path,
                f"shares {len(shared)} scene id(s) with {val_path} (lists must be disjoint), "
                f"e.g. {shared[0]}",
            )
        rooms = {split: {room_of(s) for s in self._lists[split]} for split in SPLITS}
        self.shared_rooms = sorted(rooms["train"] & rooms["val"])
        if self.shared_rooms:
            logger.warning("%s", self.shared_rooms_warning)

    @property
    def shared_rooms_warning(self) -> str | None:
        """One line naming rooms whose rescans the split lists put in both splits, or None."""
        if not self.shared_rooms:
            return None
        shown = ", ".join(self.shared_rooms[:10]) + (" ..." if len(self.shared_rooms) > 10 else "")
        return (
            f"the split lists put scans of {len(self.shared_rooms)} room(s) in both train and "
            f"val (benchmark rooms seen in training; bench build will refuse them): {shown}"
        )

    def split_info(self) -> dict[str, object]:
        """How scans were assigned, for manifests: source, lists, checksums, rule, warnings."""
        return {
            "source": self.split_source,
            "files": [str(p) for p in self.split_files] if self.split_files else None,
            "checksums": dict(self.split_checksums),
            "rule": None
            if self.split_files
            else f"room sha256 (first 8 bytes / 2**64) < {DEFAULT_VAL_FRACTION} -> val",
            "warning": self.split_warning or self.shared_rooms_warning,
        }

    def scene_ids(self) -> list[str]:
        """Sorted scene ids found on disk.

        A folder of ``scans_root`` counts when it holds ``<name>.sens`` or
        ``<name>_vh_clean_2.ply`` (or cannot be read: the scene then fails to load, with the
        reason, instead of disappearing); folders of ``export_root`` holding a SensReader export
        (``pose/``) or posed images (``intrinsic.txt``), and ``posed_images/<name>`` folders, count
        too.
        """
        if self._scene_ids is None:
            found: set[str] = set()
            for folder in self.scans_root.iterdir():
                if _holds_scene(folder):
                    found.add(folder.name)
            roots = sensreader_roots(self.scans_root, self.export_root)
            roots += posed_images_roots(self.scans_root, self.export_root)
            for root in dict.fromkeys(roots):
                if not root.is_dir():
                    continue
                for folder in root.iterdir():
                    if _holds_scene(folder, ("pose", "intrinsic.txt")):
                        found.add(folder.name)
            self._scene_ids = sorted(found)
        return list(self._scene_ids)

    def split_of(self, scene_id: str) -> str | None:
        """``"train"`` or ``"val"``; None for a scene in neither list (e.g. a test scene)."""
        if self.split_source == "hash":
            return scannet_hash_split(scene_id)
        for split in SPLITS:
            if scene_id in self._lists[split]:
                return split
        return None

    def scenes_in_split(self, split: str) -> list[str]:
        """Sorted scene ids of ``split`` present on disk; updates ``missing_listed[split]``."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {list(SPLITS)}, got {split!r}")
        on_disk = self.scene_ids()
        if self.split_source == "hash":
            self.missing_listed[split] = 0
            return [s for s in on_disk if scannet_hash_split(s) == split]
        listed = self._lists[split]
        present = sorted(listed.intersection(on_disk))
        self.missing_listed[split] = len(listed) - len(present)
        if self.missing_listed[split]:
            logger.info(
                "%d scene(s) listed for %s are not on disk", self.missing_listed[split], split
            )
        return present

    def load(self, scene_id: str, frame_skip: int = 5, layout: str = "auto") -> ScanNetScene:
        """Load one scene (see :func:`load_scannet_scene`), with the dataset's label map."""
        scene = load_scannet_scene(
            self.scans_root,
            scene_id,
            frame_skip=frame_skip,
            layout=layout,
            export_root=self.export_root,
            label_map=self.label_map,
        )
        if self.labels_tsv is not None:
            scene.files["labels_tsv"] = self.labels_tsv
        return scene

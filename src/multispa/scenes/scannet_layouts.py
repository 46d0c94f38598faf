"""The three on-disk layouts of ScanNet frames and their streaming frame sources
(docs/data-formats.md#scannet).

- ``raw``: ``<scans>/<scene>/<scene>.sens``, read through :class:`~multispa.scenes.sens.SensFile`.
- ``sensreader`` (ScanNet's Python exporter): ``color/<i>.jpg``, ``depth/<i>.png`` (uint16 mm),
  ``pose/<i>.txt`` (4×4 camera-to-world) and ``intrinsic/{intrinsic,extrinsic}_{color,depth}.txt``
  in ``<export_root>/<scene>`` or ``<scans>/<scene>``; ``<i>`` is the unpadded frame index.
- ``posed_images`` (upstream engine): ``posed_images/<scene>/<00000>.{jpg,png,txt}`` plus one
  ``intrinsic.txt`` holding the 4×4 **colour** intrinsics.

:func:`open_layout` resolves one scene's layout and returns a :class:`LayoutFrames`: the
stride-kept original indices, their raw poses, the intrinsics fitted to the real image sizes,
warnings, the files read, and a factory for the :class:`~multispa.scenes.types.FrameSource`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from multispa.errors import DatasetError, FormatError, MissingFileError
from multispa.scenes.scannet_annotations import DEFAULT_COLOR_SIZE, DEFAULT_DEPTH_SIZE, SceneMeta
from multispa.scenes.sens import SensFile
from multispa.scenes.types import FrameData, FrameInfo, FrameSource, Intrinsics, ScanNetLayout

LAYOUTS: tuple[str, ...] = ("raw", "sensreader", "posed_images")
#: Stored depth units per metre in the exported PNGs.
PNG_DEPTH_UNITS_PER_M = 1000.0

_DIGITS = re.compile(r"^\d+$")
_COLOR_SUFFIXES = {".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}


def read_matrix_txt(path: Path, *, allow_3x3: bool = False) -> np.ndarray:
    """Read a whitespace-separated 4×4 matrix (or 3×3 when allowed): ``(4, 4)`` float64.

    Non-finite entries (``-inf``, ``nan``) are kept; a 3×3 matrix is embedded in the identity.
    """
    if not path.is_file():
        raise MissingFileError(path)
    try:
        tokens = path.read_text(encoding="utf-8").split()
    except UnicodeDecodeError:
        raise FormatError(path, "not UTF-8 text (expected a 4x4 matrix)") from None
    allowed = (9, 16) if allow_3x3 else (16,)
    if len(tokens) not in allowed:
        expected = "9 or 16" if allow_3x3 else "16"
        raise FormatError(path, f"expected {expected} numbers (a matrix), found {len(tokens)}")
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        raise FormatError(path, "non-numeric entry in matrix") from None
    if values.size == 9:
        matrix = np.eye(4, dtype=np.float64)
        matrix[:3, :3] = values.reshape(3, 3)
        return matrix
    return values.reshape(4, 4)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file, from its header only."""
    try:
        with Image.open(path) as image:
            return image.size
    except FileNotFoundError:
        raise MissingFileError(path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise FormatError(path, f"not a readable image ({exc})") from None


def read_depth_png_m(path: Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode a 16-bit depth PNG in millimetres: ``(Hd, Wd)`` float32 metres, 0 = no measurement."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            if mode not in ("I;16", "I;16B", "I;16L", "I"):
                raise FormatError(path, f"depth image mode {mode!r}, expected 16-bit ('I;16')")
            stored = np.asarray(image)
    except FileNotFoundError:
        raise MissingFileError(path) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise FormatError(path, f"not a readable depth image ({exc})") from None
    if mode == "I" and stored.size and (stored.min() < 0 or stored.max() > 65535):
        raise FormatError(path, "depth values outside the uint16 range")
    if expected_size is not None and (stored.shape[1], stored.shape[0]) != expected_size:
        raise FormatError(
            path,
            f"depth image is {stored.shape[1]}x{stored.shape[0]}, expected "
            f"{expected_size[0]}x{expected_size[1]} like the scene's first depth image",
        )
    return np.divide(stored, np.float32(PNG_DEPTH_UNITS_PER_M), dtype=np.float32)


def _check_kept(index: int, frames: Mapping[int, FrameInfo], where: Path) -> FrameInfo:
    info = frames.get(int(index))
    if info is None:
        raise DatasetError(
            where, f"frame {index} is not a kept frame (stride-kept with a finite pose)"
        )
    return info


def _ordered(indices: Sequence[int] | None, frames: Mapping[int, FrameInfo]) -> list[int]:
    return sorted(frames) if indices is None else sorted({int(i) for i in indices})


class SensFrameSource:
    """Frames streamed from a ``.sens`` file, opened on demand (implements FrameSource).

    ``read`` opens the file for one frame; ``iter_frames`` opens it once for the whole pass.

    Args:
        path: the ``.sens`` file.
        frames: kept frames by original index.
        color_format: ``"jpeg"``, ``"png"`` or ``"raw"``.
        color_size: ``(width, height)`` of the colour images, pixels.
    """

    def __init__(
        self,
        path: Path,
        frames: Mapping[int, FrameInfo],
        color_format: str,
        color_size: tuple[int, int],
    ) -> None:
        self.path = Path(path)
        self.frames = dict(frames)
        self.color_format = color_format
        self.color_size = color_size

    def read(self, index: int) -> FrameData:
        """Decode one kept frame by its original index."""
        return next(self.iter_frames([index]))

    def iter_frames(self, indices: Sequence[int] | None = None) -> Iterator[FrameData]:
        """Decode kept frames in ascending index order, one at a time."""
        order = _ordered(indices, self.frames)
        infos = [_check_kept(i, self.frames, self.path) for i in order]
        if not infos:
            return
        with SensFile(self.path) as sens:
            for info, frame in zip(infos, sens.iter_frames(order), strict=True):
                yield FrameData(
                    info, frame.color_bytes, self.color_format, frame.depth_m, self.color_size
                )


class FolderFrameSource:
    """Frames read from per-frame image files of an export layout (implements FrameSource).

    Colour bytes are returned exactly as stored; depth PNGs (uint16 mm) are decoded to metres.

    Args:
        frames: kept frames by original index.
        color_paths, depth_paths: the colour image and depth PNG of each kept frame.
        color_size: ``(width, height)`` of the colour images, pixels.
        depth_size: ``(width, height)`` of the depth images, pixels (checked on decode).
        root: the export folder, for messages.
    """

    def __init__(
        self,
        frames: Mapping[int, FrameInfo],
        color_paths: Mapping[int, Path],
        depth_paths: Mapping[int, Path],
        color_size: tuple[int, int],
        depth_size: tuple[int, int],
        root: Path,
    ) -> None:
        self.frames = dict(frames)
        self.color_paths = dict(color_paths)
        self.depth_paths = dict(depth_paths)
        self.color_size = color_size
        self.depth_size = depth_size
        self.root = Path(root)

    def read(self, index: int) -> FrameData:
        """Decode one kept frame by its original index."""
        info = _check_kept(index, self.frames, self.root)
        color_path = self.color_paths[info.index]
        try:
            color_bytes = color_path.read_bytes()
        except FileNotFoundError:
            raise MissingFileError(color_path) from None
        depth_m = read_depth_png_m(self.depth_paths[info.index], self.depth_size)
        color_format = _COLOR_SUFFIXES[color_path.suffix.lower()]
        return FrameData(info, color_bytes, color_format, depth_m, self.color_size)

    def iter_frames(self, indices: Sequence[int] | None = None) -> Iterator[FrameData]:
        """Decode kept frames in ascending index order, one at a time."""
        order = _ordered(indices, self.frames)
        for index in order:
            _check_kept(index, self.frames, self.root)
        for index in order:
            yield self.read(index)


@dataclass
class LayoutFrames:
    """One scene's frames as found on disk, before pose validation and alignment.

    Attributes:
        layout: the layout used.
        kept_indices: ``(K,)`` int64 original indices that are multiples of the stride, ascending.
        raw_poses: ``(K, 4, 4)`` float64 raw camera-to-world poses of those frames (may be
            non-finite).
        total_frames: frames in the source before the stride (for folders: pose files found).
        color_intrinsics, depth_intrinsics: fitted to the real image sizes.
        color_extrinsics, depth_extrinsics: ``(4, 4)`` float64 as stored, or None when absent.
        warnings: notes raised (rescaled intrinsics, fallbacks).
        files: files and folders read, by role.
        make_source: builds the frame source from the kept valid frames.
        exported_frames: pose files of a ``posed_images`` export (None for other layouts).
        depth_intrinsics_source: ``"sens"``, ``"intrinsic_depth.txt"``, ``"scene_txt"`` or
            ``"rescaled_color"`` (see :class:`~multispa.scenes.types.SceneNotes`).
        depth_intrinsics_note: one line explaining a ``"rescaled_color"`` choice, or ``""``.
    """

    layout: ScanNetLayout
    kept_indices: np.ndarray
    raw_poses: np.ndarray
    total_frames: int
    color_intrinsics: Intrinsics
    depth_intrinsics: Intrinsics
    color_extrinsics: np.ndarray | None
    depth_extrinsics: np.ndarray | None
    make_source: Callable[[Mapping[int, FrameInfo]], FrameSource]
    warnings: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    exported_frames: int | None = None
    depth_intrinsics_source: str = ""
    depth_intrinsics_note: str = ""


#: Rule (o): ``<scene>.txt`` depth keys farther than this (relative) from the rescaled colour
#: intrinsics are taken for factory defaults.
DEPTH_KEYS_TOLERANCE = 0.01


def _relative_difference(k: Intrinsics, reference: Intrinsics) -> tuple[float, str]:
    """Largest relative difference of fx, fy, cx, cy and the name of that parameter."""
    names = ("fx", "fy", "cx", "cy")
    values = [
        abs(getattr(k, n) - getattr(reference, n)) / max(abs(getattr(reference, n)), 1e-9)
        for n in names
    ]
    worst = int(np.argmax(values))
    return values[worst], names[worst]


def choose_depth_intrinsics(
    keys: Intrinsics | None, k_color: Intrinsics, depth_size: tuple[int, int], keys_source: str
) -> tuple[Intrinsics, str, str]:
    """K_depth of an export without a ``.sens`` (rule (o)).

    The colour intrinsics rescaled to the depth size with pixel centres kept
    (:meth:`~multispa.scenes.types.Intrinsics.rescaled_to`) are used when there are no
    ``<scene>.txt`` depth keys, or when a key differs from them by more than 1 % (such keys are
    often factory defaults: scene0000_00 has fx_depth 571.62 against a calibrated 577.59);
    otherwise the keys are used.

    Args:
        keys: K_depth from the ``*_depth`` keys, already fitted to ``depth_size``, or None.
        k_color: K_color fitted to the real colour image size.
        depth_size: ``(width, height)`` of the depth images, pixels.
        keys_source: how the keys are named in messages.

    Returns:
        K_depth, its source (``"scene_txt"`` or ``"rescaled_color"``) and a note (``""`` when
        the keys are used).
    """
    rescaled = k_color.rescaled_to(*depth_size)
    if keys is None:
        return rescaled, "rescaled_color", (
            f"no depth intrinsics (no .sens, no *_depth keys in <scene>.txt): K_depth is K_color "
            f"rescaled from {k_color.width}x{k_color.height} to {depth_size[0]}x{depth_size[1]}"
        )
    difference, name = _relative_difference(keys, rescaled)
    if difference <= DEPTH_KEYS_TOLERANCE:
        return keys, "scene_txt", ""
    return rescaled, "rescaled_color", (
        f"K_depth: the {keys_source} differ from K_color rescaled to {depth_size[0]}x"
        f"{depth_size[1]} by {100 * difference:.2f}% ({name} {getattr(keys, name):.2f} vs "
        f"{getattr(rescaled, name):.2f}; likely factory defaults): using the rescaled K_color"
    )


def _fit_intrinsics(
    k: Intrinsics, actual: tuple[int, int], what: str, k_source: str, warnings: list[str]
) -> Intrinsics:
    """Scale ``k`` to the real image size ``actual`` (width, height), warning when it differs."""
    if actual == (k.width, k.height):
        return k
    warnings.append(
        f"{what} images are {actual[0]}x{actual[1]} but the intrinsics ({k_source}) are for "
        f"{k.width}x{k.height}: scaled fx, cx by {actual[0] / k.width:.6g} and fy, cy by "
        f"{actual[1] / k.height:.6g}"
    )
    return k.scaled_to(*actual)


def _k_from_matrix(k: np.ndarray, size: tuple[int, int]) -> Intrinsics:
    return Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), *size)


def _numbered_files(folder: Path, suffix: str) -> dict[int, Path]:
    """Files ``<digits><suffix>`` of ``folder`` by integer index."""
    found: dict[int, Path] = {}
    for path in folder.iterdir():
        if path.suffix == suffix and _DIGITS.match(path.stem) and path.is_file():
            found[int(path.stem)] = path
    return found


def _beside(path: Path, stem_dir: Path, suffixes: Sequence[str]) -> Path:
    """The first existing ``stem_dir/<path.stem><suffix>``; MissingFileError naming the first."""
    candidates = [stem_dir / f"{path.stem}{suffix}" for suffix in suffixes]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MissingFileError(candidates[0], f"missing image for pose file {path.name}")


def _scan_folder(
    pose_dir: Path, color_dir: Path, depth_dir: Path, frame_skip: int, color_suffixes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, int, dict[str, dict[int, Path]]]:
    """Stride-kept indices ``(K,)``, their raw poses ``(K, 4, 4)``, the pose-file count and the
    colour/depth paths of the kept frames (``{"color_paths": ..., "depth_paths": ...}``)."""
    pose_files = _numbered_files(pose_dir, ".txt")
    kept = np.array(sorted(i for i in pose_files if i % frame_skip == 0), dtype=np.int64)
    if kept.size == 0:
        raise FormatError(
            pose_dir,
            f"no pose file <i>.txt with i a multiple of frame_skip={frame_skip} "
            f"({len(pose_files)} pose files)",
        )
    kept_files = {int(i): pose_files[int(i)] for i in kept}
    paths = {
        "color_paths": {i: _beside(p, color_dir, color_suffixes) for i, p in kept_files.items()},
        "depth_paths": {i: _beside(p, depth_dir, (".png",)) for i, p in kept_files.items()},
    }
    poses = np.stack([read_matrix_txt(p) for p in kept_files.values()])
    return kept, poses, len(pose_files), paths


def _reference_size(meta: SceneMeta, kind: str) -> tuple[tuple[int, int], str]:
    size = meta.color_size if kind == "colour" else meta.depth_size
    if size is not None:
        return size, f"size from {meta.path.name if meta.path else '<scene>.txt'}"
    default = DEFAULT_COLOR_SIZE if kind == "colour" else DEFAULT_DEPTH_SIZE
    return default, "ScanNet default size"


def open_raw(sens_path: Path, frame_skip: int) -> LayoutFrames:
    """The ``raw`` layout: poses and intrinsics from the ``.sens`` header and frame index."""
    with SensFile(sens_path) as sens:
        header = sens.header
        all_poses = np.array(sens.poses, dtype=np.float64)
    kept = np.arange(0, header.num_frames, frame_skip, dtype=np.int64)
    color_size = (header.color_width, header.color_height)
    return LayoutFrames(
        layout="raw",
        kept_indices=kept,
        raw_poses=all_poses[kept],
        total_frames=header.num_frames,
        color_intrinsics=header.color_intrinsics,
        depth_intrinsics=header.depth_intrinsics,
        color_extrinsics=np.array(header.color_extrinsics),
        depth_extrinsics=np.array(header.depth_extrinsics),
        make_source=partial(
            SensFrameSource,
            sens_path,
            color_format=header.color_compression,
            color_size=color_size,
        ),
        files={"sens": sens_path},
        depth_intrinsics_source="sens",
    )


def open_sensreader(export_dir: Path, meta: SceneMeta, frame_skip: int) -> LayoutFrames:
    """The SensReader export layout in ``export_dir`` (see module docstring)."""
    pose_dir, intrinsic_dir = export_dir / "pose", export_dir / "intrinsic"
    if not pose_dir.is_dir():
        raise MissingFileError(pose_dir, "SensReader export has no pose/ folder")
    kept, poses, total, paths = _scan_folder(
        pose_dir, export_dir / "color", export_dir / "depth", frame_skip, (".jpg", ".jpeg", ".png")
    )
    files = {
        "export_dir": export_dir,
        "intrinsic_color": intrinsic_dir / "intrinsic_color.txt",
        "intrinsic_depth": intrinsic_dir / "intrinsic_depth.txt",
    }
    warnings: list[str] = []
    color_size = image_size(paths["color_paths"][int(kept[0])])
    depth_size = image_size(paths["depth_paths"][int(kept[0])])
    ks = {}
    for kind, role, actual in (
        ("colour", "intrinsic_color", color_size),
        ("depth", "intrinsic_depth", depth_size),
    ):
        reference, how = _reference_size(meta, kind)
        k = _k_from_matrix(read_matrix_txt(files[role]), reference)
        ks[kind] = _fit_intrinsics(k, actual, kind, f"{files[role].name}, {how}", warnings)
    extrinsics: dict[str, np.ndarray | None] = {}
    for kind in ("color", "depth"):
        path = intrinsic_dir / f"extrinsic_{kind}.txt"
        extrinsics[kind] = read_matrix_txt(path) if path.is_file() else None
        if path.is_file():
            files[f"extrinsic_{kind}"] = path
    return LayoutFrames(
        layout="sensreader",
        kept_indices=kept,
        raw_poses=poses,
        total_frames=total,
        color_intrinsics=ks["colour"],
        depth_intrinsics=ks["depth"],
        color_extrinsics=extrinsics["color"],
        depth_extrinsics=extrinsics["depth"],
        make_source=partial(
            FolderFrameSource,
            color_size=color_size,
            depth_size=depth_size,
            root=export_dir,
            **paths,
        ),
        warnings=warnings,
        files=files,
        depth_intrinsics_source="intrinsic_depth.txt",
    )


def open_posed_images(
    frames_dir: Path, meta: SceneMeta, sens_path: Path, frame_skip: int
) -> LayoutFrames:
    """The ``posed_images`` layout in ``frames_dir``.

    File numbers are positions among the exported frames (upstream's exporter renumbers the
    frames it keeps 0, 1, 2…) and are used as frame ids as they are; ``exported_frames`` lets
    the caller compare their count with ``numColorFrames`` (rule (o)).

    K_color comes from ``intrinsic.txt`` (for ``colorWidth``×``colorHeight``, 1296×968 by
    default, rescaled to the real image size with a warning). K_depth comes from the ``.sens``
    header when ``sens_path`` exists, else from :func:`choose_depth_intrinsics` (the ``*_depth``
    keys of ``<scene>.txt`` or the rescaled K_color).
    """
    intrinsic_path = frames_dir / "intrinsic.txt"
    # Colour is JPEG here: the .png beside it is the depth.
    kept, poses, total, paths = _scan_folder(
        frames_dir, frames_dir, frames_dir, frame_skip, (".jpg", ".jpeg")
    )
    files = {"frames_dir": frames_dir, "intrinsic": intrinsic_path}
    warnings: list[str] = []
    color_size = image_size(paths["color_paths"][int(kept[0])])
    depth_size = image_size(paths["depth_paths"][int(kept[0])])
    reference, how = _reference_size(meta, "colour")
    k_color_ref = _k_from_matrix(read_matrix_txt(intrinsic_path, allow_3x3=True), reference)
    k_color = _fit_intrinsics(
        k_color_ref, color_size, "colour", f"{intrinsic_path.name}, {how}", warnings
    )
    note = ""
    if sens_path.is_file():
        with SensFile(sens_path) as sens:
            k_depth_ref = sens.header.depth_intrinsics
        files["sens"] = sens_path
        k_depth = _fit_intrinsics(
            k_depth_ref, depth_size, "depth", f"{sens_path.name} header", warnings
        )
        source = "sens"
    else:
        keys_source = f"*_depth keys of {meta.path.name if meta.path else '<scene>.txt'}"
        keys = meta.depth_intrinsics
        if keys is not None:
            keys = _fit_intrinsics(keys, depth_size, "depth", keys_source, warnings)
        k_depth, source, note = choose_depth_intrinsics(keys, k_color, depth_size, keys_source)
    return LayoutFrames(
        layout="posed_images",
        kept_indices=kept,
        raw_poses=poses,
        total_frames=total,
        color_intrinsics=k_color,
        depth_intrinsics=k_depth,
        color_extrinsics=None,
        depth_extrinsics=None,
        make_source=partial(
            FolderFrameSource,
            color_size=color_size,
            depth_size=depth_size,
            root=frames_dir,
            **paths,
        ),
        warnings=warnings,
        files=files,
        exported_frames=total,
        depth_intrinsics_source=source,
        depth_intrinsics_note=note,
    )


def sensreader_roots(scans_root: Path, export_root: Path | None) -> list[Path]:
    """Folders whose ``<scene>/`` subfolders may be SensReader exports, in search order."""
    return [*([export_root] if export_root is not None else []), scans_root]


def posed_images_roots(scans_root: Path, export_root: Path | None) -> list[Path]:
    """Folders whose ``<scene>/`` subfolders may hold ``posed_images`` frames, in search order."""
    roots: list[Path] = []
    if export_root is not None:
        roots += [export_root / "posed_images", export_root]
    return [*roots, scans_root / "posed_images", scans_root.parent / "posed_images"]


def find_layout(
    scans_root: Path, scene_id: str, layout: str, export_root: Path | None
) -> tuple[ScanNetLayout, Path]:
    """Resolve a scene's layout and where its frames are.

    ``layout="auto"`` picks raw if ``<scans>/<scene>/<scene>.sens`` exists, else a SensReader
    export (a folder with ``pose/``), else ``posed_images`` (a folder with ``intrinsic.txt``).

    Returns:
        The layout and the ``.sens`` file or the export folder.
    """
    sens_path = scans_root / scene_id / f"{scene_id}.sens"
    searched: list[str] = []
    if layout in ("auto", "raw"):
        if sens_path.is_file():
            return "raw", sens_path
        searched.append(str(sens_path))
    if layout in ("auto", "sensreader"):
        for folder in (root / scene_id for root in sensreader_roots(scans_root, export_root)):
            if (folder / "pose").is_dir():
                return "sensreader", folder
            searched.append(f"{folder}/pose/")
    if layout in ("auto", "posed_images"):
        for folder in (root / scene_id for root in posed_images_roots(scans_root, export_root)):
            if (folder / "intrinsic.txt").is_file():
                return "posed_images", folder
            searched.append(f"{folder}/intrinsic.txt")
    what = "frames" if layout == "auto" else f"{layout} frames"
    raise MissingFileError(
        scans_root / scene_id,
        f"scene {scene_id}: no {what} found; searched {', '.join(searched)}",
    )

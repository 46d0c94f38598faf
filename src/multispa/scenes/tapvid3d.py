"""TAPVid-3D reader: one ``<root>/<subset>/<clip_id>.npz`` per clip
(docs/data-formats.md#tapvid3d).

Each archive holds (T frames, N tracks):

- ``images_jpeg_bytes`` ``(T,)`` fixed-width bytes (numpy ``S<n>``), one JPEG per frame;
- ``tracks_XYZ`` or ``tracks_xyz`` ``(T, N, 3)`` positions in that frame's camera, metres (OpenCV);
- ``visibility`` ``(T, N)`` bool;
- ``queries_xyt`` ``(N, 3)`` query pixel x, y and frame t (kept, unused; optional here);
- ``fx_fy_cx_cy`` ``(4,)`` pinhole intrinsics at the original resolution;
- ``extrinsics_w2c`` ``(T, 4, 4)`` world-to-camera per frame, optional: the official ADT
  conversion does not write it; which poses a clip uses is decided by
  :mod:`multispa.scenes.tapvid_poses` (the file's extrinsics checked against the static scene,
  poses estimated from the static scene, or identity for fixed cameras).

Archives are read with ``allow_pickle=False``; every malformation raises
:class:`~multispa.errors.FormatError` naming the file and the expected versus found values.

Splits: ``train.txt`` and ``val.txt`` (one clip id per line) in ``<root>/<subset>/``, else in the
upstream engine's ``<root>/meta_data/<subset>/`` (or only in ``<splits_dir>/<subset>/`` when a
folder is given), checked for clip and sequence disjointness; otherwise whole sequences (clip id
minus a trailing ``_<k>``) are assigned by :func:`multispa.scenes.splits.hash_split`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from multispa.errors import ConfigError, FormatError, MissingFileError
from multispa.fs import input_error, present_file
from multispa.scenes.splits import hash_split
from multispa.scenes.tapvid_poses import (
    DEFAULT_POSE_CHECK,
    STATIC_CAMERA_SUBSETS,
    ClipPoses,
    PoseCheckConfig,
    resolve_clip_poses,
)
from multispa.scenes.types import Intrinsics, TapVidClip

logger = logging.getLogger(__name__)

Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")
DEFAULT_SUBSETS: tuple[str, ...] = ("adt", "pstudio")
TRACK_KEYS: tuple[str, str] = ("tracks_XYZ", "tracks_xyz")
IMAGES_KEY = "images_jpeg_bytes"
VISIBILITY_KEY = "visibility"
QUERIES_KEY = "queries_xyt"
INTRINSICS_KEY = "fx_fy_cx_cy"
EXTRINSICS_KEY = "extrinsics_w2c"
RIGID_TOLERANCE = 1e-3
UNREADABLE = "unreadable clip file"

_SEQUENCE_SUFFIX = re.compile(r"^(.+)_(\d+)$")


def sequence_of(clip_id: str) -> str:
    """Sequence name of a clip: the id minus a trailing ``_<digits>``.

    ``"basketball_1"`` → ``"basketball"``; an id without such a suffix is its own sequence.
    """
    match = _SEQUENCE_SUFFIX.match(clip_id)
    return match.group(1) if match else clip_id


def tracks_key(npz_files: Collection[str], path: Path | str = "<npz>") -> str:
    """Which track key an archive uses: ``"tracks_XYZ"`` or ``"tracks_xyz"``.

    Args:
        npz_files: the archive's key names (``NpzFile.files``).
        path: the archive, for the error message.

    Raises:
        FormatError: both spellings or neither are present.
    """
    present = [key for key in TRACK_KEYS if key in npz_files]
    if len(present) == 2:
        raise FormatError(path, "has both 'tracks_XYZ' and 'tracks_xyz'; expected exactly one")
    if not present:
        raise FormatError(
            path,
            f"missing track key 'tracks_XYZ' (or 'tracks_xyz'); found keys {sorted(npz_files)}",
        )
    return present[0]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _read_array(npz: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    """Read one member, turning numpy/zip failures into one-line ``FormatError``s."""
    try:
        array = npz[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            wanted = (
                "fixed-width bytes (numpy dtype S<n>, e.g. np.array(list_of_jpeg_bytes))"
                if key == IMAGES_KEY
                else "a plain numeric/bool array"
            )
            raise FormatError(
                path,
                f"array '{key}' needs pickle to load (object dtype); it must be saved as {wanted}",
            ) from None
        raise FormatError(path, f"cannot read array '{key}': {_one_line(error)}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise FormatError(path, f"cannot read array '{key}': {_one_line(error)}") from None
    if not isinstance(array, np.ndarray):
        raise FormatError(path, f"member '{key}' is not a .npy array")
    return array


def _expect_shape(
    array: np.ndarray, expected: tuple[int, ...], key: str, path: Path, symbols: str = ""
) -> None:
    if array.shape != expected:
        named = f"{symbols} = " if symbols else ""
        raise FormatError(path, f"'{key}' has shape {array.shape}, expected {named}{expected}")


def _expect_numeric(array: np.ndarray, key: str, path: Path) -> None:
    if array.dtype.kind not in "fiu":
        raise FormatError(path, f"'{key}' has dtype {array.dtype}, expected a real numeric dtype")


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def _check_images(images: np.ndarray, path: Path) -> tuple[list[bytes], tuple[int, int]]:
    """Return the JPEG bytes per frame and ``(width, height)`` from frame 0's header."""
    if images.dtype.kind != "S":
        raise FormatError(
            path,
            f"'{IMAGES_KEY}' has dtype {images.dtype}, expected fixed-width bytes (S<n>)",
        )
    if images.ndim != 1 or images.shape[0] == 0:
        raise FormatError(
            path, f"'{IMAGES_KEY}' has shape {images.shape}, expected (T,) with T >= 1"
        )
    jpegs: list[bytes] = images.tolist()
    try:
        with Image.open(io.BytesIO(jpegs[0])) as image:
            image_format, size = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError):
        raise FormatError(
            path,
            f"frame 0 is not a decodable JPEG ({len(jpegs[0])} bytes starting with "
            f"{jpegs[0][:3].hex(' ') or 'nothing'}; expected a JPEG starting with ff d8 ff)",
        ) from None
    if image_format != "JPEG":
        raise FormatError(path, f"frame 0 is {image_format}, expected JPEG")
    return jpegs, (int(size[0]), int(size[1]))


def _check_intrinsics(values: np.ndarray, size: tuple[int, int], path: Path) -> Intrinsics:
    _expect_numeric(values, INTRINSICS_KEY, path)
    _expect_shape(values, (4,), INTRINSICS_KEY, path)
    fx, fy, cx, cy = (float(v) for v in values)
    if not np.all(np.isfinite(values)) or fx <= 0 or fy <= 0:
        raise FormatError(
            path,
            f"'{INTRINSICS_KEY}' is {[fx, fy, cx, cy]}, expected finite values with fx, fy > 0",
        )
    return Intrinsics(fx, fy, cx, cy, size[0], size[1])


def _check_extrinsics(cam_from_world: np.ndarray, path: Path) -> None:
    """Check ``(T, 4, 4)`` world-to-camera matrices are finite and rigid."""
    finite = np.isfinite(cam_from_world).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise FormatError(
            path,
            f"'{EXTRINSICS_KEY}' is non-finite in {bad.size} frame(s), first at t={int(bad[0])}",
        )
    rotation = cam_from_world[:, :3, :3]
    gram_error = np.abs(np.einsum("tji,tjk->tik", rotation, rotation) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(rotation)
    row_error = np.abs(cam_from_world[:, 3, :] - np.array([0.0, 0.0, 0.0, 1.0])).max(axis=1)
    bad_frames = (gram_error > RIGID_TOLERANCE) | (det <= 0) | (row_error > RIGID_TOLERANCE)
    if bad_frames.any():
        t = int(np.flatnonzero(bad_frames)[0])
        raise FormatError(
            path,
            f"'{EXTRINSICS_KEY}' is not rigid at t={t} "
            f"(|R^T R - I| max {gram_error[t]:.3g}, det(R) {det[t]:.4g}, bottom row "
            f"{cam_from_world[t, 3].tolist()}; expected orthonormal R with det +1 within "
            f"{RIGID_TOLERANCE:g} and bottom row [0, 0, 0, 1])",
        )


def load_tapvid3d_clip(path: Path, subset: str | None = None) -> TapVidClip:
    """Read and validate one TAPVid-3D clip.

    Args:
        path: ``<root>/<subset>/<clip_id>.npz``.
        subset: subset name; defaults to the parent folder's name.

    Returns:
        The clip: tracks ``(T, N, 3)`` float32 metres in each frame's camera, visibility
        ``(T, N)`` bool, ``cam_from_world`` ``(T, 4, 4)`` float64: the file's
        ``extrinsics_w2c`` (``pose_source="extrinsics"``, not yet checked against the tracks),
        else identity (``pose_source="fixed"`` for a fixed-camera subset, ``None`` otherwise:
        resolve the poses with :func:`multispa.scenes.tapvid_poses.resolve_clip_poses`).

    Raises:
        MissingFileError: the file does not exist.
        FormatError: the file is not a valid npz, or a key is missing, malformed or inconsistent.
    """
    path = Path(path)
    if not present_file(path):
        raise MissingFileError(path, "TAPVid-3D clip file not found")
    try:
        with open(path, "rb") as handle:
            is_zip = zipfile.is_zipfile(handle)
    except OSError as error:
        raise input_error(path, error) from None
    if not is_zip:
        raise FormatError(path, "not a valid npz (zip) archive")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise FormatError(path, f"not a valid npz archive: {_one_line(error)}") from None
    with npz:
        files = set(npz.files)
        missing = [k for k in (IMAGES_KEY, VISIBILITY_KEY, INTRINSICS_KEY) if k not in files]
        if not any(k in files for k in TRACK_KEYS):
            missing.append("tracks_XYZ (or tracks_xyz)")
        if missing:
            raise FormatError(
                path, f"missing required key(s) {missing}; found keys {sorted(files)}"
            )
        track_key = tracks_key(files, path)

        jpegs, image_size = _check_images(_read_array(npz, IMAGES_KEY, path), path)
        num_frames = len(jpegs)

        tracks = _read_array(npz, track_key, path)
        _expect_numeric(tracks, track_key, path)
        if tracks.ndim != 3 or tracks.shape[0] != num_frames or tracks.shape[2] != 3:
            raise FormatError(
                path,
                f"'{track_key}' has shape {tracks.shape}, expected (T, N, 3) with T={num_frames} "
                f"(the number of images)",
            )
        num_tracks = tracks.shape[1]
        tracks_cam = tracks.astype(np.float32, copy=False)
        bad = ~np.isfinite(tracks_cam).all(axis=2)
        if bad.any():
            t, n = _first_bad(bad)
            raise FormatError(
                path,
                f"'{track_key}' has {int(bad.sum())} non-finite (NaN/inf) position(s), "
                f"first at (t={t}, n={n}); expected finite metres",
            )

        visibility = _read_array(npz, VISIBILITY_KEY, path)
        _expect_shape(visibility, (num_frames, num_tracks), VISIBILITY_KEY, path, "(T, N)")
        if visibility.dtype != np.bool_:
            if visibility.dtype.kind not in "iu" or not np.isin(visibility, (0, 1)).all():
                raise FormatError(
                    path,
                    f"'{VISIBILITY_KEY}' has dtype {visibility.dtype}, expected bool (or 0/1)",
                )
            visibility = visibility.astype(np.bool_)

        queries_xyt = None
        if QUERIES_KEY in files:
            queries = _read_array(npz, QUERIES_KEY, path)
            _expect_numeric(queries, QUERIES_KEY, path)
            _expect_shape(queries, (num_tracks, 3), QUERIES_KEY, path, "(N, 3)")
            queries_xyt = queries.astype(np.float32, copy=False)

        intrinsics = _check_intrinsics(_read_array(npz, INTRINSICS_KEY, path), image_size, path)

        has_extrinsics = EXTRINSICS_KEY in files
        if not has_extrinsics:
            cam_from_world = np.tile(np.eye(4), (num_frames, 1, 1))
        else:
            extrinsics = _read_array(npz, EXTRINSICS_KEY, path)
            _expect_numeric(extrinsics, EXTRINSICS_KEY, path)
            _expect_shape(extrinsics, (num_frames, 4, 4), EXTRINSICS_KEY, path, "(T, 4, 4)")
            cam_from_world = extrinsics.astype(np.float64)
            _check_extrinsics(cam_from_world, path)

    subset = subset if subset is not None else path.parent.name
    if has_extrinsics:
        pose_source: str | None = "extrinsics"
    else:
        pose_source = "fixed" if subset in STATIC_CAMERA_SUBSETS else None
    return TapVidClip(
        clip_id=path.stem,
        subset=subset,
        path=path,
        images_jpeg=jpegs,
        image_size=image_size,
        intrinsics=intrinsics,
        tracks_cam=tracks_cam,
        visibility=visibility,
        queries_xyt=queries_xyt,
        cam_from_world=cam_from_world,
        has_extrinsics=has_extrinsics,
        pose_source=pose_source,
    )


class TapVid3DDataset:
    """The TAPVid-3D clips under ``root``, per subset, with their train/val assignment.

    Args:
        root: folder holding one sub-folder per subset (``adt``, ``pstudio``...).
        subsets: the subsets to read; other subset folders are listed in ``other_subsets``.
        splits_dir: a folder holding ``<subset>/train.txt`` and ``<subset>/val.txt``
            (``--tapvid3d-splits``); the only place searched when given.

    Raises:
        MissingFileError: ``root`` or a requested subset folder is missing, or only one of
            ``train.txt`` / ``val.txt`` exists.
        FormatError: split lists share a clip or a sequence, or cannot be decoded.
    """

    def __init__(
        self,
        root: Path,
        subsets: Sequence[str] = DEFAULT_SUBSETS,
        *,
        splits_dir: Path | None = None,
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise MissingFileError(self.root, "TAPVid-3D root folder not found")
        self.splits_dir = Path(splits_dir) if splits_dir is not None else None
        if self.splits_dir is not None and not self.splits_dir.is_dir():
            raise MissingFileError(self.splits_dir, "TAPVid-3D split-list folder not found")
        if isinstance(subsets, str):
            subsets = (subsets,)
        self.subsets: tuple[str, ...] = tuple(dict.fromkeys(subsets))
        present = sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.npz"))
        )
        self.other_subsets: list[str] = [s for s in present if s not in self.subsets]
        self.split_checksums: dict[str, str] = {}
        self._clip_ids: dict[str, list[str]] = {}
        self._sources: dict[str, Literal["lists", "hash"]] = {}
        self._lists: dict[str, dict[str, Split]] = {}
        self._skipped: dict[tuple[str, str], str] = {}
        for subset in self.subsets:
            folder = self.root / subset
            if not folder.is_dir():
                raise MissingFileError(
                    folder,
                    f"subset folder not found (subset folders with clips: {present}); "
                    f"pass subsets= to choose",
                )
            try:
                names = os.listdir(folder)
            except OSError as error:
                raise input_error(folder, error) from None
            # every *.npz entry: one that is not a readable file fails to load, with the reason
            self._clip_ids[subset] = sorted(n[: -len(".npz")] for n in names if n.endswith(".npz"))
            self._read_split_lists(subset)
        if self.other_subsets:
            logger.info("TAPVid-3D subsets present but not loaded: %s", self.other_subsets)

    def _read_list(self, path: Path) -> list[str]:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise FormatError(path, f"cannot read split list: {_one_line(error)}") from None
        inside = path.is_relative_to(self.root)
        name = path.relative_to(self.root).as_posix() if inside else str(path)
        self.split_checksums[name] = hashlib.sha256(data).hexdigest()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise FormatError(path, f"split list is not UTF-8 text: {error}") from None
        return [line.strip() for line in text.splitlines() if line.strip()]

    def split_list_dirs(self, subset: str) -> list[Path]:
        """Folders searched for ``subset``'s ``train.txt`` / ``val.txt``, in order."""
        if self.splits_dir is not None:
            return [self.splits_dir / subset]
        return [self.root / subset, self.root / "meta_data" / subset]

    def _read_split_lists(self, subset: str) -> None:
        paths: dict[str, Path] = {}
        for folder in self.split_list_dirs(subset):
            candidates = {split: folder / f"{split}.txt" for split in SPLITS}
            exists = {split: present_file(p) for split, p in candidates.items()}
            if all(exists.values()):
                paths = candidates
                break
            if any(exists.values()):
                absent = next(p for split, p in candidates.items() if not exists[split])
                there = next(p for split, p in candidates.items() if exists[split])
                raise MissingFileError(
                    absent,
                    f"split list missing while {there.name} exists; provide both or neither",
                )
        if not paths:
            self._sources[subset] = "hash"
            logger.info("%s", self.split_warning(subset))
            return
        train = set(self._read_list(paths["train"]))
        val = set(self._read_list(paths["val"]))
        where = f"{paths['train']} and {paths['val']}"
        both = sorted(train & val)
        if both:
            raise FormatError(
                paths["train"],
                f"{len(both)} clip id(s) listed in both {where}, e.g. '{both[0]}'",
            )
        train_by_sequence = {sequence_of(c): c for c in sorted(train, reverse=True)}
        shared = sorted({sequence_of(c) for c in val} & train_by_sequence.keys())
        if shared:
            example_val = min(c for c in val if sequence_of(c) == shared[0])
            raise FormatError(
                paths["train"],
                f"{len(shared)} sequence(s) have clips in both {where}, e.g. '{shared[0]}' "
                f"(train '{train_by_sequence[shared[0]]}', val '{example_val}')",
            )
        self._sources[subset] = "lists"
        membership: dict[str, Split] = dict.fromkeys(train, "train")
        membership.update(dict.fromkeys(val, "val"))
        self._lists[subset] = membership
        on_disk = set(self._clip_ids[subset])
        absent_count = len(membership.keys() - on_disk)
        if absent_count:
            logger.info("TAPVid-3D %s: %d listed clip(s) not on disk", subset, absent_count)

    def _check_subset(self, subset: str) -> None:
        if subset not in self._clip_ids:
            raise ConfigError(f"TAPVid-3D subset '{subset}' not loaded; loaded: {self.subsets}")

    def clip_ids(self, subset: str) -> list[str]:
        """Clip ids (file stems) of ``subset`` on disk, sorted."""
        self._check_subset(subset)
        return list(self._clip_ids[subset])

    def clip_path(self, subset: str, clip_id: str) -> Path:
        """``<root>/<subset>/<clip_id>.npz``."""
        self._check_subset(subset)
        return self.root / subset / f"{clip_id}.npz"

    def split_warning(self, subset: str) -> str | None:
        """One line saying that ``subset``'s sequences are hash-assigned, or None with lists."""
        self._check_subset(subset)
        if self._sources[subset] == "lists":
            return None
        searched = ", ".join(str(d) for d in self.split_list_dirs(subset))
        return (
            f"TAPVid-3D {subset}: no train.txt/val.txt in {searched}: sequences are assigned "
            f"to train/val by a hash of their name (about 80/20); give --tapvid3d-splits DIR "
            f"for the upstream lists"
        )

    def split_source(self, subset: str) -> Literal["lists", "hash"]:
        """``"lists"`` when train.txt/val.txt were read, ``"hash"`` for the name-hash rule."""
        self._check_subset(subset)
        return self._sources[subset]

    def split_of(self, subset: str, clip_id: str) -> Split | None:
        """``"train"`` or ``"val"``; ``None`` for a clip absent from both split lists."""
        self._check_subset(subset)
        if self._sources[subset] == "lists":
            return self._lists[subset].get(clip_id)
        return "val" if hash_split(sequence_of(clip_id)) == "val" else "train"

    def clips_in_split(self, subset: str, split: str) -> list[str]:
        """Clip ids on disk assigned to ``split``, sorted."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {list(SPLITS)}, got '{split}'")
        return [c for c in self.clip_ids(subset) if self.split_of(subset, c) == split]

    def unlisted(self, subset: str) -> list[str]:
        """Clip ids on disk in neither split list (always empty for the hash rule), sorted."""
        return [c for c in self.clip_ids(subset) if self.split_of(subset, c) is None]

    def load(self, subset: str, clip_id: str) -> TapVidClip:
        """Read and validate one clip (see :func:`load_tapvid3d_clip`)."""
        return load_tapvid3d_clip(self.clip_path(subset, clip_id), subset=subset)

    @staticmethod
    def poses(
        clip: TapVidClip,
        groups: Sequence[np.ndarray] | None = None,
        config: PoseCheckConfig = DEFAULT_POSE_CHECK,
    ) -> ClipPoses:
        """The poses the clip will use, or why it is unusable (see
        :func:`multispa.scenes.tapvid_poses.resolve_clip_poses`)."""
        return resolve_clip_poses(clip, groups, config)

    @property
    def skipped(self) -> Counter[str]:
        """Clips skipped by :meth:`iter_usable` so far, counted by reason code (each clip once)."""
        return Counter(self._skipped.values())

    def _skip(self, subset: str, clip_id: str, reason: str, detail: str) -> None:
        logger.warning("skipping TAPVid-3D clip %s/%s: %s: %s", subset, clip_id, reason, detail)
        self._skipped[(subset, clip_id)] = reason

    def iter_usable(
        self,
        subset: str,
        split: str,
        on_error: Literal["raise", "skip"] = "raise",
        config: PoseCheckConfig = DEFAULT_POSE_CHECK,
    ) -> Iterator[TapVidClip]:
        """Yield the usable clips of ``split`` with their poses resolved, in clip-id order.

        Each clip's rigid groups are computed with the default segmentation; a clip whose poses
        cannot be resolved is logged and counted under its reason code (:attr:`skipped`), and a
        usable one with a pose warning is logged.

        Args:
            subset: a loaded subset.
            split: ``"train"`` or ``"val"``.
            on_error: ``"raise"`` propagates a malformed file's error; ``"skip"`` logs and
                counts it under ``"unreadable clip file"``.
            config: the pose thresholds.
        """
        for clip_id in self.clips_in_split(subset, split):
            try:
                clip = self.load(subset, clip_id)
            except (FormatError, MissingFileError) as error:
                if on_error == "raise":
                    raise
                logger.warning("TAPVid-3D clip %s/%s: %s", subset, clip_id, error)
                self._skipped[(subset, clip_id)] = UNREADABLE
                continue
            poses = self.poses(clip, config=config)
            if poses.source is None or poses.cam_from_world is None:
                self._skip(subset, clip_id, poses.reason, poses.message)
                continue
            if poses.warning:
                logger.warning("TAPVid-3D clip %s/%s: %s", subset, clip_id, poses.warning)
            yield clip.with_poses(poses.cam_from_world, poses.source)

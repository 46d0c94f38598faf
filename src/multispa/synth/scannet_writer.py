"""Writers for the ScanNet raw files (docs/data-formats.md#scannet-raw), written from the format
description.

Every file is written under a temporary name in the same folder and renamed into place, so a
reader never sees a half-written file. ``SensWriter`` streams: it writes the header (with the
frame count) first and then one frame at a time, never holding more than one frame.
"""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
from PIL import Image

from multispa.errors import ShapeError
from multispa.scenes.types import Intrinsics

SENS_VERSION = 4
COLOR_COMPRESSION_JPEG = 2
DEPTH_COMPRESSION_ZLIB = 1
DEPTH_SHIFT = 1000.0


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


@contextmanager
def atomic_open(path: Path) -> Iterator[IO[bytes]]:
    """Open ``path`` for binary writing through a temporary file renamed on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        with open(temporary, "wb") as handle:
            yield handle
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path) as handle:
        handle.write(data)


def write_json_atomic(path: Path, payload: Any, *, compact: bool = False) -> None:
    """Write JSON deterministically (fixed key order as given, ``\\n`` at the end)."""
    if compact:
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    else:
        text = json.dumps(payload, indent=1, allow_nan=False)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def _matrix(matrix: np.ndarray) -> bytes:
    matrix = np.asarray(matrix)
    if matrix.shape != (4, 4):
        raise ShapeError(f"a .sens matrix must be (4, 4), got {matrix.shape}")
    return matrix.astype("<f4").tobytes(order="C")


def intrinsics_matrix(intrinsics: Intrinsics) -> np.ndarray:
    """ScanNet's 4×4 intrinsic matrix: K in the top-left 3×3, 1 at [3, 3]."""
    matrix = np.eye(4)
    matrix[:3, :3] = intrinsics.matrix()
    return matrix


class SensWriter:
    """Streaming writer of a ``.sens`` v4 file (JPEG colour, zlib depth).

    Use as a context manager; ``add_frame`` must be called exactly ``num_frames`` times.
    """

    def __init__(
        self,
        path: Path,
        color: Intrinsics,
        depth: Intrinsics,
        num_frames: int,
        sensor_name: str = "StructureSensor",
    ) -> None:
        self.path = Path(path)
        self._num_frames = num_frames
        self._written = 0
        self._context = atomic_open(self.path)
        self._handle = self._context.__enter__()
        name = sensor_name.encode("utf-8")
        header = [
            struct.pack("<I", SENS_VERSION),
            struct.pack("<Q", len(name)),
            name,
            _matrix(intrinsics_matrix(color)),
            _matrix(np.eye(4)),
            _matrix(intrinsics_matrix(depth)),
            _matrix(np.eye(4)),
            struct.pack("<ii", COLOR_COMPRESSION_JPEG, DEPTH_COMPRESSION_ZLIB),
            struct.pack("<IIII", color.width, color.height, depth.width, depth.height),
            struct.pack("<f", DEPTH_SHIFT),
            struct.pack("<Q", num_frames),
        ]
        self._handle.write(b"".join(header))

    def add_frame(
        self,
        world_from_cam: np.ndarray,
        color_jpeg: bytes,
        depth_zlib: bytes,
        color_timestamp_us: int,
        depth_timestamp_us: int,
    ) -> None:
        """Append one frame: raw camera-to-world pose ``(4, 4)`` and the encoded images."""
        if self._written >= self._num_frames:
            raise ShapeError(f"{self.path}: more frames than the {self._num_frames} declared")
        self._handle.write(_matrix(world_from_cam))
        self._handle.write(
            struct.pack(
                "<QQQQ", color_timestamp_us, depth_timestamp_us, len(color_jpeg), len(depth_zlib)
            )
        )
        self._handle.write(color_jpeg)
        self._handle.write(depth_zlib)
        self._written += 1

    def __enter__(self) -> SensWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None and self._written != self._num_frames:
            exc = ShapeError(
                f"{self.path}: {self._written} frames written, {self._num_frames} declared"
            )
            self._context.__exit__(type(exc), exc, None)
            raise exc
        self._context.__exit__(exc_type, exc, traceback)


def ply_bytes(vertices: np.ndarray, colors: np.ndarray, triangles: np.ndarray) -> bytes:
    """A binary little-endian PLY like ScanNet's ``*_vh_clean_2.ply``.

    Args:
        vertices: ``(n, 3)`` positions (stored as float32), metres.
        colors: ``(n, 4)`` uint8 RGBA.
        triangles: ``(m, 3)`` vertex indices (stored as int32).
    """
    count = vertices.shape[0]
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment VCGLIB generated\n"
        f"element vertex {count}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n"
        f"element face {triangles.shape[0]}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    vertex_dtype = np.dtype([("xyz", "<f4", (3,)), ("rgba", "u1", (4,))])
    vertex_table = np.empty(count, dtype=vertex_dtype)
    vertex_table["xyz"] = vertices
    vertex_table["rgba"] = colors
    face_dtype = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])
    face_table = np.empty(triangles.shape[0], dtype=face_dtype)
    face_table["count"] = 3
    face_table["indices"] = triangles
    return header.encode("ascii") + vertex_table.tobytes() + face_table.tobytes()


def scene_txt(entries: Mapping[str, str]) -> str:
    """``key = value`` lines in sorted key order, as in ScanNet's ``<scene>.txt``."""
    return "".join(f"{key} = {entries[key]}\n" for key in sorted(entries))


def format_matrix(matrix: np.ndarray) -> str:
    """16 numbers, row-major, shortest exact round-trip form (``repr`` of each float64)."""
    return " ".join(repr(float(value)) for value in np.asarray(matrix, dtype=np.float64).ravel())


def format_float(value: float) -> str:
    """A float in ScanNet's six-decimal style (values here are exact multiples of 1/64)."""
    return f"{value:.6f}"


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """JPEG bytes of an ``(H, W, 3)`` uint8 image (deterministic for a given libjpeg)."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def depth_to_mm(depth_m: np.ndarray) -> np.ndarray:
    """``(H, W)`` metres → uint16 millimetres, rounded half away from zero; 0 stays 0."""
    mm = np.floor(depth_m.astype(np.float64) * 1000.0 + 0.5)
    return np.clip(mm, 0, 65535).astype(np.uint16)

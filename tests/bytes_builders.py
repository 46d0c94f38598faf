"""Byte-level builders for ScanNet raw files, written straight from the file formats'
byte layouts.

These helpers deliberately do not import anything from ``multispa``: tests that read files built
here check the readers against an independent writer.

Import from a test module with ``from bytes_builders import make_sens_bytes, make_jpeg,
make_ply_bytes`` (pytest puts ``tests/`` on ``sys.path``).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence

import numpy as np
from PIL import Image

_PLY_TYPE_NAMES = {"f4": "float", "f8": "double", "u1": "uchar", "i4": "int"}


def _matrix_bytes(matrix: np.ndarray | None) -> bytes:
    """16 little-endian float32 values, row-major; ``None`` gives the identity."""
    m = np.eye(4) if matrix is None else np.asarray(matrix, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"matrix must be (4, 4), got {m.shape}")
    return m.astype("<f4").tobytes(order="C")


def encode_depth(depth_mm: np.ndarray, compression: int = 1) -> bytes:
    """Encode one ``(Hd, Wd)`` uint16 depth map (millimetres) as a ``.sens`` depth payload.

    compression 1 = zlib of little-endian uint16 row-major, 0 = the raw bytes.
    """
    raw = np.ascontiguousarray(depth_mm, dtype="<u2").tobytes(order="C")
    if compression == 0:
        return raw
    if compression == 1:
        return zlib.compress(raw)
    raise ValueError(f"cannot encode depth compression {compression}")


def make_sens_bytes(
    *,
    color_intrinsics: np.ndarray,
    depth_intrinsics: np.ndarray,
    color_size: tuple[int, int],
    depth_size: tuple[int, int],
    poses: Sequence[np.ndarray],
    colors: Sequence[bytes],
    depths_mm: Sequence[np.ndarray | bytes],
    depth_shift: float = 1000.0,
    version: int = 4,
    sensor_name: str = "StructureSensor",
    color_compression: int = 2,
    depth_compression: int = 1,
    color_extrinsics: np.ndarray | None = None,
    depth_extrinsics: np.ndarray | None = None,
    trailing: bytes = b"",
    num_frames: int | None = None,
    timestamps: Sequence[tuple[int, int]] | None = None,
) -> bytes:
    """Build a complete ``.sens`` file in memory.

    Args:
        color_intrinsics, depth_intrinsics: ``(4, 4)`` K matrices (written as float32).
        color_size, depth_size: ``(width, height)`` in pixels.
        poses: per frame ``(4, 4)`` camera-to-world matrices (non-finite values written as-is).
        colors: per frame colour payload (e.g. JPEG bytes), written unchanged.
        depths_mm: per frame ``(Hd, Wd)`` uint16 depth in millimetres, encoded according to
            ``depth_compression`` (1 zlib, 0 raw); a ``bytes`` item is written verbatim instead
            (to build corrupt payloads).
        depth_shift: stored value per metre.
        version, sensor_name, color_compression, depth_compression: header fields as written.
        color_extrinsics, depth_extrinsics: ``(4, 4)``; identity if ``None``.
        trailing: bytes appended after the last frame (IMU records in real files).
        num_frames: frame count written in the header; defaults to ``len(poses)`` (set it larger
            to fake a file that ends early).
        timestamps: per frame ``(color_us, depth_us)``; defaults to ``(1000 * i, 1000 * i + 1)``.

    Returns:
        The file content.
    """
    if not (len(poses) == len(colors) == len(depths_mm)):
        raise ValueError(
            f"poses/colors/depths_mm lengths differ: {len(poses)}, {len(colors)}, {len(depths_mm)}"
        )
    name = sensor_name.encode("utf-8")
    parts: list[bytes] = [
        struct.pack("<I", version),
        struct.pack("<Q", len(name)),
        name,
        _matrix_bytes(color_intrinsics),
        _matrix_bytes(color_extrinsics),
        _matrix_bytes(depth_intrinsics),
        _matrix_bytes(depth_extrinsics),
        struct.pack("<ii", color_compression, depth_compression),
        struct.pack("<IIII", color_size[0], color_size[1], depth_size[0], depth_size[1]),
        struct.pack("<f", depth_shift),
        struct.pack("<Q", len(poses) if num_frames is None else num_frames),
    ]
    for i, (pose, color, depth) in enumerate(zip(poses, colors, depths_mm, strict=True)):
        depth_bytes = depth if isinstance(depth, bytes) else encode_depth(depth, depth_compression)
        t_color, t_depth = (1000 * i, 1000 * i + 1) if timestamps is None else timestamps[i]
        parts.append(_matrix_bytes(pose))
        parts.append(struct.pack("<QQQQ", t_color, t_depth, len(color), len(depth_bytes)))
        parts.append(bytes(color))
        parts.append(depth_bytes)
    parts.append(trailing)
    return b"".join(parts)


def make_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 RGB image as JPEG bytes with Pillow."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8), mode="RGB").save(
        buf, format="JPEG", quality=quality
    )
    return buf.getvalue()


def make_ply_bytes(
    xyz: np.ndarray,
    rgb: np.ndarray | None = None,
    *,
    fmt: str = "binary_little_endian",
    faces: np.ndarray | None = None,
    alpha: bool = True,
    pre_elements: bytes = b"",
    pre_header: str = "",
) -> bytes:
    """Build a ScanNet-style PLY mesh file in memory.

    Args:
        xyz: ``(P, 3)`` vertex positions, written as float32.
        rgb: ``(P, 3)`` uint8 colours, or ``None`` for no colour properties.
        fmt: ``binary_little_endian``, ``binary_big_endian`` or ``ascii``.
        faces: ``(F, 3)`` vertex indices (``property list uchar int vertex_indices``), or ``None``.
        alpha: when colours are written, also write an ``alpha`` uchar property (value 255).
        pre_elements: body bytes of extra elements placed before the vertex element.
        pre_header: header lines (each ending with a newline) declaring those extra elements.

    Returns:
        The file content.
    """
    if fmt not in ("binary_little_endian", "binary_big_endian", "ascii"):
        raise ValueError(f"unknown ply format {fmt!r}")
    xyz = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    n = xyz.shape[0]
    fields: list[tuple[str, str]] = [("x", "f4"), ("y", "f4"), ("z", "f4")]
    if rgb is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
        if alpha:
            fields.append(("alpha", "u1"))
    n_faces = 0 if faces is None else int(np.asarray(faces).shape[0])

    header = ["ply", f"format {fmt} 1.0", "comment built by tests/bytes_builders.py"]
    head = "\n".join(header) + "\n" + pre_header + f"element vertex {n}\n"
    head += "".join(f"property {_PLY_TYPE_NAMES[t]} {name}\n" for name, t in fields)
    if faces is not None:
        head += f"element face {n_faces}\nproperty list uchar int vertex_indices\n"
    head += "end_header\n"

    order = ">" if fmt == "binary_big_endian" else "<"
    vert = np.zeros(n, dtype=[(name, order + t) for name, t in fields])
    vert["x"], vert["y"], vert["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    if rgb is not None:
        rgb_u8 = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
        vert["red"], vert["green"], vert["blue"] = rgb_u8[:, 0], rgb_u8[:, 1], rgb_u8[:, 2]
        if alpha:
            vert["alpha"] = 255

    if fmt == "ascii":
        lines = []
        for row in vert:
            vals = [
                repr(float(row[name])) if t.startswith("f") else str(int(row[name]))
                for name, t in fields
            ]
            lines.append(" ".join(vals))
        body = "".join(line + "\n" for line in lines)
        if faces is not None:
            for face in np.asarray(faces, dtype=np.int64).reshape(-1, 3):
                body += "3 " + " ".join(str(int(v)) for v in face) + "\n"
        return head.encode("ascii") + pre_elements + body.encode("ascii")

    body = vert.tobytes()
    if faces is not None:
        face_dtype = np.dtype([("n", "u1"), ("idx", order + "i4", (3,))])
        face_arr = np.zeros(n_faces, dtype=face_dtype)
        face_arr["n"] = 3
        face_arr["idx"] = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        body += face_arr.tobytes()
    return head.encode("ascii") + pre_elements + body

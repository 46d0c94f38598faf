"""Tests of the PLY vertex reader against files built byte by byte (tests/bytes_builders.py)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from bytes_builders import make_ply_bytes
from multispa.errors import FormatError, MissingFileError
from multispa.scenes.ply import PlyVertices, read_ply_vertices


def _mesh(n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(0.0, 3.0, size=(n, 3)).astype(np.float32)
    xyz[0] = [1.5, -2.25, 0.125]
    rgb = rng.integers(0, 256, size=(n, 3), dtype=np.uint8)
    faces = rng.integers(0, n, size=(2 * n, 3))
    return xyz, rgb, faces


def _write(tmp_path: Path, data: bytes, name: str = "scene0000_00_vh_clean_2.ply") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(FormatError) as info:
        read_ply_vertices(path)
    message = str(info.value)
    assert path.name in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_formats_give_identical_arrays(tmp_path: Path, fmt: str) -> None:
    xyz, rgb, faces = _mesh()
    result = read_ply_vertices(_write(tmp_path, make_ply_bytes(xyz, rgb, fmt=fmt, faces=faces)))
    assert isinstance(result, PlyVertices)
    assert result.xyz.dtype == np.float32 and result.xyz.shape == (50, 3)
    np.testing.assert_array_equal(result.xyz, xyz)
    np.testing.assert_array_equal(result.xyz[0], [1.5, -2.25, 0.125])
    assert result.rgb is not None and result.rgb.dtype == np.uint8
    np.testing.assert_array_equal(result.rgb, rgb)
    assert result.alpha is not None
    np.testing.assert_array_equal(result.alpha, np.full(50, 255, dtype=np.uint8))
    assert result.num_faces == 100
    assert result.num_vertices == 50


def test_no_colour_no_faces(tmp_path: Path) -> None:
    xyz, _, _ = _mesh(5)
    result = read_ply_vertices(_write(tmp_path, make_ply_bytes(xyz)))
    np.testing.assert_array_equal(result.xyz, xyz)
    assert result.rgb is None and result.alpha is None and result.num_faces == 0


def test_colour_without_alpha(tmp_path: Path) -> None:
    xyz, rgb, _ = _mesh(5)
    result = read_ply_vertices(_write(tmp_path, make_ply_bytes(xyz, rgb, alpha=False)))
    assert result.alpha is None
    np.testing.assert_array_equal(result.rgb, rgb)


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian", "ascii"])
def test_list_element_before_vertices_is_skipped(tmp_path: Path, fmt: str) -> None:
    xyz, rgb, faces = _mesh(20)
    pre_header = (
        "element material 2\nproperty uchar id\nproperty list uchar int refs\n"
        "property double weight\n"
        "element camera 1\nproperty float f\nproperty short s\n"
    )
    if fmt == "ascii":
        pre = b"7 2 10 11 0.5\n8 0 1.25\n500.0 -3\n"
    else:
        o = ">" if fmt == "binary_big_endian" else "<"
        pre = (
            struct.pack(o + "BB2id", 7, 2, 10, 11, 0.5)
            + struct.pack(o + "BBd", 8, 0, 1.25)
            + struct.pack(o + "fh", 500.0, -3)
        )
    data = make_ply_bytes(xyz, rgb, fmt=fmt, faces=faces, pre_header=pre_header, pre_elements=pre)
    result = read_ply_vertices(_write(tmp_path, data))
    np.testing.assert_array_equal(result.xyz, xyz)
    np.testing.assert_array_equal(result.rgb, rgb)
    assert result.num_faces == 40


def test_all_scalar_types(tmp_path: Path) -> None:
    """x as double, y as int16, z as uint, colours as ushort: all converted."""
    header = (
        "ply\nformat binary_little_endian 1.0\nelement vertex 2\n"
        "property double x\nproperty int16 y\nproperty uint z\nproperty char c\n"
        "property ushort red\nproperty uint8 green\nproperty int blue\nend_header\n"
    )
    body = struct.pack("<dhIbHBi", 0.5, -7, 9, -1, 200, 3, 4)
    body += struct.pack("<dhIbHBi", -1.25, 30000, 0, 5, 0, 255, 255)
    result = read_ply_vertices(_write(tmp_path, header.encode() + body))
    np.testing.assert_array_equal(result.xyz, [[0.5, -7, 9], [-1.25, 30000, 0]])
    np.testing.assert_array_equal(result.rgb, [[200, 3, 4], [0, 255, 255]])


def test_crlf_header(tmp_path: Path) -> None:
    xyz, rgb, _ = _mesh(4)
    data = make_ply_bytes(xyz, rgb)
    head, body = data.split(b"end_header\n", 1)
    data = head.replace(b"\n", b"\r\n") + b"end_header\r\n" + body
    np.testing.assert_array_equal(read_ply_vertices(_write(tmp_path, data)).xyz, xyz)


# ---------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"none\.ply"):
        read_ply_vertices(tmp_path / "none.ply")


def test_not_a_ply(tmp_path: Path) -> None:
    _expect_error(_write(tmp_path, b"OFF\n3 1 0\n"), "not a PLY file")
    _expect_error(_write(tmp_path, b"", "empty.ply"), "not a PLY file")


def test_missing_x(tmp_path: Path) -> None:
    data = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float y\nproperty float z\n"
    data += b"end_header\n1 2\n"
    _expect_error(_write(tmp_path, data), "lacks property x")


def test_duplicate_property(tmp_path: Path) -> None:
    data = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
    data += b"property float z\nproperty float x\nend_header\n1 2 3 4\n"
    _expect_error(_write(tmp_path, data), "repeats property x")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "ascii"])
def test_zero_vertices(tmp_path: Path, fmt: str) -> None:
    data = make_ply_bytes(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8), fmt=fmt)
    result = read_ply_vertices(_write(tmp_path, data))
    assert result.xyz.shape == (0, 3) and result.rgb is not None and result.rgb.shape == (0, 3)


def test_missing_vertex_element(tmp_path: Path) -> None:
    data = b"ply\nformat ascii 1.0\nelement face 0\nproperty list uchar int v\nend_header\n"
    _expect_error(_write(tmp_path, data), "no 'vertex' element")


def test_unknown_format_and_version(tmp_path: Path) -> None:
    data = b"ply\nformat binary_middle_endian 1.0\nend_header\n"
    _expect_error(_write(tmp_path, data), "unknown PLY format 'binary_middle_endian'")
    data = b"ply\nformat ascii 2.0\nend_header\n"
    _expect_error(_write(tmp_path, data, "v2.ply"), "PLY version 2.0, expected 1.0")


def test_bad_header_lines(tmp_path: Path) -> None:
    xyz, _, _ = _mesh(3)
    data = make_ply_bytes(xyz).replace(b"property float y", b"property float128 y")
    _expect_error(_write(tmp_path, data), "bad header line", "float128")
    data = make_ply_bytes(xyz).replace(b"element vertex 3", b"element vertex three")
    _expect_error(_write(tmp_path, data, "b.ply"), "bad header line", "three")
    data = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"
    _expect_error(_write(tmp_path, data, "c.ply"), "no 'end_header'")


@pytest.mark.parametrize("fmt", ["binary_little_endian", "binary_big_endian"])
def test_truncated_binary(tmp_path: Path, fmt: str) -> None:
    xyz, rgb, _ = _mesh(10)
    data = make_ply_bytes(xyz, rgb, fmt=fmt)
    _expect_error(_write(tmp_path, data[:-5]), "expected 10 vertices (160 bytes), file has 155")


def test_truncated_ascii(tmp_path: Path) -> None:
    xyz, rgb, _ = _mesh(10)
    data = make_ply_bytes(xyz, rgb, fmt="ascii")
    cut = data[: data.rindex(b"\n", 0, len(data) - 1) + 1]  # drop the last vertex line
    _expect_error(_write(tmp_path, cut), "expected 10 vertices", "9 vertex lines")


def test_unparsable_ascii(tmp_path: Path) -> None:
    xyz, _, _ = _mesh(3)
    data = make_ply_bytes(xyz, fmt="ascii")
    head, body = data.split(b"end_header\n", 1)
    body = body.replace(body.split()[4], b"1.0abc", 1)
    _expect_error(_write(tmp_path, head + b"end_header\n" + body), "unparsable", "1.0abc")

"""Reader for the vertex element of PLY meshes (ScanNet ``*_vh_clean_2.ply``).

Supports PLY 1.0 in ``binary_little_endian``, ``binary_big_endian`` and ``ascii``, every scalar
type name of the format (``char uchar short ushort int uint float double`` and the sized aliases
``int8 … float64``), and elements of any kind (lists included) before the vertex element, which
are skipped. Elements after the vertex element are not read; only their counts are taken from
the header (``num_faces``). Binary vertex data is decoded with one numpy structured dtype.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from multispa.errors import FormatError, MissingFileError
from multispa.fs import input_error

_SCALAR_TYPES: dict[str, str] = {
    "char": "i1",
    "int8": "i1",
    "uchar": "u1",
    "uint8": "u1",
    "short": "i2",
    "int16": "i2",
    "ushort": "u2",
    "uint16": "u2",
    "int": "i4",
    "int32": "i4",
    "uint": "u4",
    "uint32": "u4",
    "float": "f4",
    "float32": "f4",
    "double": "f8",
    "float64": "f8",
}
_FORMATS = {"binary_little_endian": "<", "binary_big_endian": ">", "ascii": None}
_MAX_HEADER_BYTES = 1 << 20
_MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class PlyVertices:
    """Vertex data of a PLY mesh.

    Attributes:
        xyz: ``(P, 3)`` float32 positions, in the file's units (metres for ScanNet).
        rgb: ``(P, 3)`` uint8 colours, or ``None`` when the file has no red/green/blue.
        alpha: ``(P,)`` uint8 alpha, or ``None`` when absent.
        num_faces: number of ``face`` records declared in the header (0 when none).
    """

    xyz: np.ndarray
    rgb: np.ndarray | None
    alpha: np.ndarray | None
    num_faces: int

    @property
    def num_vertices(self) -> int:
        """P, the number of vertices."""
        return int(self.xyz.shape[0])


@dataclass
class _Property:
    name: str
    dtype: str  # numpy type code without byte order, e.g. "f4"
    count_dtype: str | None = None  # list length type for list properties


@dataclass
class _Element:
    name: str
    count: int
    properties: list[_Property]

    @property
    def has_list(self) -> bool:
        return any(p.count_dtype is not None for p in self.properties)


@dataclass
class _Header:
    fmt: str
    elements: list[_Element]
    data_offset: int


def _parse_header(path: Path, f: BinaryIO) -> _Header:
    """Parse the header lines from the binary file object ``f`` (positioned at 0)."""
    read_line = f.readline
    first = read_line(_MAX_LINE_BYTES)
    if first.rstrip(b"\r\n") != b"ply":
        raise FormatError(path, f"not a PLY file: first line is {first[:20]!r}, expected b'ply'")
    fmt: str | None = None
    elements: list[_Element] = []
    total = len(first)
    line_no = 1
    while True:
        raw = read_line(_MAX_LINE_BYTES)
        line_no += 1
        total += len(raw)
        if not raw:
            raise FormatError(path, "header has no 'end_header' line (file ends in the header)")
        if total > _MAX_HEADER_BYTES or not raw.endswith(b"\n"):
            raise FormatError(path, f"header line {line_no} is too long or header never ends")
        try:
            line = raw.decode("ascii").strip()
        except UnicodeDecodeError:
            raise FormatError(path, f"header line {line_no} is not ASCII: {raw[:40]!r}") from None
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        keyword = words[0]
        if keyword == "end_header":
            break
        if keyword == "format":
            if len(words) != 3 or fmt is not None:
                raise FormatError(path, f"bad header line {line_no}: {line!r}")
            if words[1] not in _FORMATS:
                raise FormatError(
                    path,
                    f"unknown PLY format {words[1]!r} (expected ascii, binary_little_endian "
                    f"or binary_big_endian)",
                )
            if words[2] != "1.0":
                raise FormatError(path, f"PLY version {words[2]}, expected 1.0")
            fmt = words[1]
        elif keyword == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise FormatError(path, f"bad header line {line_no}: {line!r}")
            elements.append(_Element(words[1], int(words[2]), []))
        elif keyword == "property":
            if not elements:
                raise FormatError(
                    path, f"bad header line {line_no}: property before any element: {line!r}"
                )
            elements[-1].properties.append(_parse_property(path, line_no, line, words))
        else:
            raise FormatError(path, f"bad header line {line_no}: {line!r}")
    if fmt is None:
        raise FormatError(path, "header has no 'format' line")
    return _Header(fmt, elements, f.tell())


def _parse_property(path: Path, line_no: int, line: str, words: list[str]) -> _Property:
    if len(words) == 3 and words[1] in _SCALAR_TYPES:
        return _Property(words[2], _SCALAR_TYPES[words[1]])
    if (
        len(words) == 5
        and words[1] == "list"
        and words[2] in _SCALAR_TYPES
        and words[3] in _SCALAR_TYPES
    ):
        return _Property(words[4], _SCALAR_TYPES[words[3]], _SCALAR_TYPES[words[2]])
    raise FormatError(path, f"bad header line {line_no}: {line!r} (unknown property type?)")


def _skip_binary_element(
    path: Path, buf: mmap.mmap, pos: int, element: _Element, order: str
) -> int:
    """Return the byte offset just past ``element`` starting at ``pos`` in binary data."""
    if not element.has_list:
        itemsize = sum(np.dtype(p.dtype).itemsize for p in element.properties)
        return pos + element.count * itemsize
    size = len(buf)
    count_structs = {
        p.count_dtype: struct.Struct(order + np.dtype(p.count_dtype).char)
        for p in element.properties
        if p.count_dtype is not None
    }
    for record in range(element.count):
        for prop in element.properties:
            item = np.dtype(prop.dtype).itemsize
            if prop.count_dtype is None:
                pos += item
                continue
            counter = count_structs[prop.count_dtype]
            if pos + counter.size > size:
                raise FormatError(
                    path,
                    f"truncated data in element {element.name!r} record {record} "
                    f"(byte offset {pos}, file has {size} bytes)",
                )
            (n,) = counter.unpack_from(buf, pos)
            if n < 0:
                raise FormatError(
                    path, f"negative list length {n} in element {element.name!r} record {record}"
                )
            pos += counter.size + n * item
    return pos


def _vertex_columns(path: Path, element: _Element) -> None:
    """Validate the vertex element's properties."""
    names = [p.name for p in element.properties]
    for prop in element.properties:
        if prop.count_dtype is not None:
            raise FormatError(
                path, f"vertex element has a list property {prop.name!r}; not supported"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise FormatError(
            path, f"vertex element repeats propert{'y' if len(duplicates) == 1 else 'ies'} "
            f"{', '.join(duplicates)}"
        )
    missing = [axis for axis in ("x", "y", "z") if axis not in names]
    if missing:
        raise FormatError(
            path, f"vertex element lacks propert{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)} (has {', '.join(names) or 'none'})"
        )


def _to_uint8(path: Path, name: str, column: np.ndarray) -> np.ndarray:
    if column.dtype == np.uint8:
        return np.ascontiguousarray(column)
    if column.dtype.kind == "f":
        raise FormatError(path, f"vertex property {name!r} is floating point; expected uchar")
    if column.size and (int(column.min()) < 0 or int(column.max()) > 255):
        raise FormatError(path, f"vertex property {name!r} has values outside 0..255")
    return column.astype(np.uint8)


def _assemble(path: Path, table: dict[str, np.ndarray], num_faces: int) -> PlyVertices:
    """Build :class:`PlyVertices` from per-property columns."""
    xyz = np.stack([table["x"], table["y"], table["z"]], axis=1).astype(np.float32, copy=False)
    colours = [c for c in ("red", "green", "blue") if c in table]
    rgb: np.ndarray | None = None
    if len(colours) == 3:
        rgb = np.stack([_to_uint8(path, c, table[c]) for c in colours], axis=1)
    elif colours:
        raise FormatError(path, f"vertex colour is incomplete: only {', '.join(colours)}")
    alpha = _to_uint8(path, "alpha", table["alpha"]) if "alpha" in table else None
    return PlyVertices(
        xyz=np.ascontiguousarray(xyz), rgb=rgb, alpha=alpha, num_faces=num_faces
    )


def _read_binary(
    path: Path, f: BinaryIO, header: _Header, vertex_pos: int, vertex: _Element
) -> dict[str, np.ndarray]:
    order = _FORMATS[header.fmt]
    assert order is not None
    dtype = np.dtype([(p.name, order + p.dtype) for p in vertex.properties])
    nbytes = vertex.count * dtype.itemsize
    f.seek(0, 2)
    file_size = int(f.tell())
    available = max(file_size - vertex_pos, 0)
    if nbytes > available:
        raise FormatError(
            path,
            f"truncated vertex data: expected {vertex.count} vertices ({nbytes} bytes), "
            f"file has {available}",
        )
    f.seek(vertex_pos)
    records = np.fromfile(f, dtype=dtype, count=vertex.count)
    if records.shape[0] != vertex.count:
        raise FormatError(
            path,
            f"truncated vertex data: expected {vertex.count} vertices ({nbytes} bytes), "
            f"read {records.shape[0]}",
        )
    return {p.name: records[p.name].astype(p.dtype) for p in vertex.properties}


def _read_ascii(
    path: Path, text: bytes, skip_lines: int, vertex: _Element
) -> dict[str, np.ndarray]:
    lines = text.splitlines()
    lines = [ln for ln in lines if ln.strip()]  # tolerate blank lines
    wanted = lines[skip_lines : skip_lines + vertex.count]
    if len(wanted) < vertex.count:
        raise FormatError(
            path,
            f"truncated vertex data: expected {vertex.count} vertices, file has "
            f"{len(wanted)} vertex lines",
        )
    width = len(vertex.properties)
    tokens = b" ".join(wanted).split()
    if len(tokens) != vertex.count * width:
        for n, ln in enumerate(wanted):
            if len(ln.split()) != width:
                raise FormatError(
                    path,
                    f"vertex {n}: expected {width} values, found {len(ln.split())}: "
                    f"{ln[:60]!r}",
                )
    try:
        values = np.array(tokens, dtype=np.float64).reshape(vertex.count, width)
    except ValueError:
        bad = next((t for t in tokens if not _is_number(t)), b"?")
        raise FormatError(path, f"unparsable ASCII value {bad[:40]!r} in vertex data") from None
    table: dict[str, np.ndarray] = {}
    for j, prop in enumerate(vertex.properties):
        column = values[:, j]
        if np.dtype(prop.dtype).kind in "iu":
            info = np.iinfo(prop.dtype)
            if not (np.all(column == np.round(column)) and np.all(column >= info.min)
                    and np.all(column <= info.max)):
                raise FormatError(
                    path,
                    f"vertex property {prop.name!r} ({prop.dtype}) has non-integer or "
                    f"out-of-range ASCII values",
                )
        table[prop.name] = column.astype(prop.dtype)
    return table


def _is_number(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_ply_vertices(path: str | Path) -> PlyVertices:
    """Read the vertex positions and colours of a PLY file.

    Args:
        path: a ``.ply`` file.

    Returns:
        :class:`PlyVertices` with ``(P, 3)`` float32 xyz, ``(P, 3)`` uint8 rgb or ``None``,
        ``(P,)`` uint8 alpha or ``None``, and the face count from the header.

    Raises:
        MissingFileError: the file does not exist.
        FormatError: not a PLY file, unknown format or version, bad header line, no vertex
            element or no x/y/z, truncated or unparsable vertex data.
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path)
    if not path.is_file():
        raise FormatError(path, "not a regular file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise input_error(path, exc) from None
    with f:
        header = _parse_header(path, f)
        names = [e.name for e in header.elements]
        if "vertex" not in names:
            raise FormatError(
                path, f"no 'vertex' element in the header (elements: {', '.join(names) or 'none'})"
            )
        v_index = names.index("vertex")
        vertex = header.elements[v_index]
        _vertex_columns(path, vertex)
        num_faces = sum(e.count for e in header.elements if e.name == "face")

        if header.fmt == "ascii":
            f.seek(header.data_offset)
            skip = sum(e.count for e in header.elements[:v_index])
            table = _read_ascii(path, f.read(), skip, vertex)
            return _assemble(path, table, num_faces)

        order = _FORMATS[header.fmt]
        assert order is not None
        pos = header.data_offset
        if any(e.has_list for e in header.elements[:v_index]):
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                for element in header.elements[:v_index]:
                    pos = _skip_binary_element(path, buf, pos, element, order)
        else:
            for element in header.elements[:v_index]:
                pos += element.count * sum(np.dtype(p.dtype).itemsize for p in element.properties)
        table = _read_binary(path, f, header, pos, vertex)
        return _assemble(path, table, num_faces)

"""Streaming reader for ScanNet ``.sens`` RGB-D files (docs/data-formats.md#scannet-raw).

Layout (all little-endian, a "matrix" is 16 float32 values, row-major 4×4)::

    uint32 version (= 4) | uint64 L | L bytes sensor name
    matrix colour K | matrix colour extrinsics | matrix depth K | matrix depth extrinsics
    int32 colour compression | int32 depth compression
    uint32 colour W, colour H, depth W, depth H | float32 depth shift | uint64 frame count F
    F × [matrix pose (camera-to-world) | uint64 colour ts, depth ts, colour bytes Nc, depth bytes Nd
         | Nc colour bytes | Nd depth bytes]
    (optional trailing records, e.g. IMU, ignored)

Opening a :class:`SensFile` parses the header and walks the 96-byte frame headers by offset,
seeking past every payload, so the index costs about 150 bytes per frame whatever the image sizes.
Colour and depth payloads are read only on request, one frame at a time.

Index errors: an out-of-range or negative frame index raises :class:`IndexError` (a caller bug,
not a malformed file); everything wrong with the file itself raises
:class:`~multispa.errors.FormatError` naming the file, or
:class:`~multispa.errors.MissingFileError`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from multispa.errors import FormatError, MissingFileError
from multispa.fs import input_error
from multispa.scenes.types import Intrinsics

SENS_VERSION = 4
COLOR_COMPRESSION = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
DEPTH_COMPRESSION = {-1: "unknown", 0: "raw", 1: "zlib", 2: "occi"}

_MAX_NAME_BYTES = 1 << 20  # a sensor name longer than this means the file is not a .sens
_MATRIX = struct.Struct("<16f")
_HEADER_TAIL = struct.Struct("<iiIIIIfQ")  # compressions, sizes, depth shift, frame count
_FRAME_HEADER_BYTES = 96  # 16 float32 pose + 4 uint64
_FRAME_COUNTS = struct.Struct("<QQQQ")  # colour ts, depth ts, Nc, Nd (at byte 64 of a frame)
_FRAME_DTYPE = np.dtype(
    [
        ("pose", "<f4", (16,)),
        ("color_ts", "<u8"),
        ("depth_ts", "<u8"),
        ("color_size", "<u8"),
        ("depth_size", "<u8"),
    ]
)


@dataclass(frozen=True)
class SensHeader:
    """The fixed header of a ``.sens`` file.

    Attributes:
        version: format version (always 4 once parsed).
        sensor_name: e.g. ``"StructureSensor"``.
        color_intrinsics: colour camera pinhole at ``color_width`` × ``color_height``.
        color_extrinsics: ``(4, 4)`` float64 as stored (normally identity).
        depth_intrinsics: depth camera pinhole at ``depth_width`` × ``depth_height``.
        depth_extrinsics: ``(4, 4)`` float64 as stored (normally identity).
        color_compression: ``"unknown"``, ``"raw"``, ``"png"`` or ``"jpeg"``.
        depth_compression: ``"unknown"``, ``"raw"``, ``"zlib"`` or ``"occi"``.
        color_width, color_height, depth_width, depth_height: image sizes, pixels.
        depth_shift: stored depth units per metre (metres = stored ÷ shift; normally 1000).
        num_frames: frame count F written in the header (the walk checks it).
    """

    version: int
    sensor_name: str
    color_intrinsics: Intrinsics
    color_extrinsics: np.ndarray
    depth_intrinsics: Intrinsics
    depth_extrinsics: np.ndarray
    color_compression: str
    depth_compression: str
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int


@dataclass(frozen=True)
class SensFrame:
    """One decoded frame.

    Attributes:
        index: frame index in the stream (0-based).
        raw_world_from_cam: ``(4, 4)`` float64 camera-to-world pose as stored (raw ScanNet world;
            may hold ``-inf``/NaN for tracking failures).
        color_bytes: the colour payload unchanged (JPEG bytes for ScanNet).
        depth_m: ``(Hd, Wd)`` float32 depth in metres; 0 means no measurement.
    """

    index: int
    raw_world_from_cam: np.ndarray
    color_bytes: bytes
    depth_m: np.ndarray


def _intrinsics(k: np.ndarray, width: int, height: int) -> Intrinsics:
    return Intrinsics(
        fx=float(k[0, 0]),
        fy=float(k[1, 1]),
        cx=float(k[0, 2]),
        cy=float(k[1, 2]),
        width=width,
        height=height,
    )


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class SensFile:
    """A ``.sens`` file opened for streaming access (use as a context manager).

    Args:
        path: the ``.sens`` file.

    Raises:
        MissingFileError: the file does not exist.
        FormatError: the header or the frame index is malformed (wrong version, truncation,
            fewer frames than announced, unknown compression code, non-positive depth shift).
    """

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        if not self._path.exists():
            raise MissingFileError(self._path)
        if not self._path.is_file():
            raise FormatError(self._path, "not a regular file")
        try:
            self._file = open(self._path, "rb", buffering=0)  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise input_error(self._path, exc) from None
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._header, frames_offset = self._parse_header()
            self._build_index(frames_offset)
        except BaseException:
            self._file.close()
            raise

    # ------------------------------------------------------------------ low-level reading

    def _read_at(self, offset: int, size: int) -> bytes:
        """Read exactly ``size`` bytes at ``offset`` (the caller checked the file size)."""
        self._file.seek(offset)
        chunks: list[bytes] = []
        remaining = size
        while remaining > 0:
            chunk = self._file.read(remaining)
            if not chunk:
                raise FormatError(
                    self._path,
                    f"file ended while reading {size} bytes at byte offset {offset} "
                    f"(file changed on disk?)",
                )
            chunks.append(chunk)
            remaining -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _parse_header(self) -> tuple[SensHeader, int]:
        """Parse the fixed header; return it and the byte offset of frame 0."""
        if self._size < 12:
            raise FormatError(
                self._path, f"truncated header: file has {self._size} bytes, need at least 12"
            )
        version, name_len = struct.unpack("<IQ", self._read_at(0, 12))
        if version != SENS_VERSION:
            raise FormatError(self._path, f"version {version}, expected {SENS_VERSION}")
        if name_len > _MAX_NAME_BYTES:
            raise FormatError(
                self._path, f"sensor name length {name_len} bytes is implausible (not a .sens?)"
            )
        header_size = 12 + name_len + 4 * _MATRIX.size + _HEADER_TAIL.size
        if self._size < header_size:
            raise FormatError(
                self._path,
                f"truncated header: need {header_size} bytes, file has {self._size}",
            )
        buf = self._read_at(12, header_size - 12)
        name = buf[:name_len].decode("utf-8", errors="replace")
        pos = name_len
        matrices = []
        for _ in range(4):
            matrices.append(np.array(_MATRIX.unpack_from(buf, pos), dtype=np.float64).reshape(4, 4))
            pos += _MATRIX.size
        c_comp, d_comp, c_w, c_h, d_w, d_h, shift, n_frames = _HEADER_TAIL.unpack_from(buf, pos)
        if c_comp not in COLOR_COMPRESSION:
            raise FormatError(
                self._path,
                f"unknown colour compression code {c_comp} (expected one of -1, 0, 1, 2)",
            )
        if d_comp not in DEPTH_COMPRESSION:
            raise FormatError(
                self._path,
                f"unknown depth compression code {d_comp} (expected one of -1, 0, 1, 2)",
            )
        if not (np.isfinite(shift) and shift > 0):
            raise FormatError(self._path, f"depth shift is {shift}, expected a positive number")
        if min(c_w, c_h, d_w, d_h) == 0:
            raise FormatError(
                self._path,
                f"zero image size: colour {c_w}x{c_h}, depth {d_w}x{d_h}",
            )
        header = SensHeader(
            version=version,
            sensor_name=name,
            color_intrinsics=_intrinsics(matrices[0], c_w, c_h),
            color_extrinsics=_readonly(matrices[1]),
            depth_intrinsics=_intrinsics(matrices[2], d_w, d_h),
            depth_extrinsics=_readonly(matrices[3]),
            color_compression=COLOR_COMPRESSION[c_comp],
            depth_compression=DEPTH_COMPRESSION[d_comp],
            color_width=c_w,
            color_height=c_h,
            depth_width=d_w,
            depth_height=d_h,
            depth_shift=float(shift),
            num_frames=n_frames,
        )
        return header, header_size

    def _build_index(self, offset: int) -> None:
        """Walk the frame headers from ``offset``, seeking past payloads."""
        expected = self._header.num_frames
        # Grown frame by frame (never pre-sized from the header count, which may be bogus).
        raw = bytearray()
        payload_offsets: list[int] = []
        frame_header = bytearray(_FRAME_HEADER_BYTES)
        view = memoryview(frame_header)
        k = 0
        while k < expected:
            if offset == self._size:
                raise FormatError(
                    self._path, f"header says {expected} frames, file ends after {k}"
                )
            if offset + _FRAME_HEADER_BYTES > self._size:
                raise FormatError(
                    self._path,
                    f"truncated frame {k}: its {_FRAME_HEADER_BYTES}-byte header at byte offset "
                    f"{offset} extends past the end of the file ({self._size} bytes)",
                )
            self._file.seek(offset)
            got = self._file.readinto(view)
            if got != _FRAME_HEADER_BYTES:
                # Raw reads of regular files return everything asked for; fall back otherwise.
                view[:] = self._read_at(offset, _FRAME_HEADER_BYTES)
            _, _, n_color, n_depth = _FRAME_COUNTS.unpack_from(frame_header, 64)
            payload = offset + _FRAME_HEADER_BYTES
            end = payload + n_color + n_depth
            if end > self._size:
                raise FormatError(
                    self._path,
                    f"truncated frame {k}: payload of {n_color} colour + {n_depth} depth bytes "
                    f"at byte offset {payload} extends past the end of the file "
                    f"({self._size} bytes, {self._size - payload} left)",
                )
            raw += frame_header
            payload_offsets.append(payload)
            offset = end
            k += 1
        self._frames_end = offset
        records = np.frombuffer(raw, dtype=_FRAME_DTYPE, count=k)
        self._poses = _readonly(records["pose"].astype(np.float64).reshape(k, 4, 4))
        self._color_offsets = _readonly(np.asarray(payload_offsets, dtype=np.int64).reshape(k))
        self._color_sizes = _readonly(records["color_size"].astype(np.int64))
        self._depth_offsets = _readonly(self._color_offsets + self._color_sizes)
        self._depth_sizes = _readonly(records["depth_size"].astype(np.int64))
        self._color_timestamps = _readonly(records["color_ts"].astype(np.uint64))
        self._depth_timestamps = _readonly(records["depth_ts"].astype(np.uint64))

    # ------------------------------------------------------------------ properties

    @property
    def path(self) -> Path:
        """The file path."""
        return self._path

    @property
    def header(self) -> SensHeader:
        """The parsed fixed header."""
        return self._header

    @property
    def num_frames(self) -> int:
        """F, the number of frames (equals ``header.num_frames`` once the walk succeeded)."""
        return int(self._poses.shape[0])

    @property
    def file_size(self) -> int:
        """Size of the file in bytes."""
        return self._size

    @property
    def frames_end(self) -> int:
        """Byte offset just past the last frame (trailing records, if any, start here)."""
        return self._frames_end

    @property
    def poses(self) -> np.ndarray:
        """``(F, 4, 4)`` float64 raw camera-to-world poses (read-only; non-finite kept as-is)."""
        return self._poses

    @property
    def color_offsets(self) -> np.ndarray:
        """``(F,)`` int64 byte offset of each colour payload."""
        return self._color_offsets

    @property
    def color_sizes(self) -> np.ndarray:
        """``(F,)`` int64 byte count of each colour payload."""
        return self._color_sizes

    @property
    def depth_offsets(self) -> np.ndarray:
        """``(F,)`` int64 byte offset of each depth payload."""
        return self._depth_offsets

    @property
    def depth_sizes(self) -> np.ndarray:
        """``(F,)`` int64 byte count of each (compressed) depth payload."""
        return self._depth_sizes

    @property
    def color_timestamps(self) -> np.ndarray:
        """``(F,)`` uint64 colour timestamps as stored (sensor clock units)."""
        return self._color_timestamps

    @property
    def depth_timestamps(self) -> np.ndarray:
        """``(F,)`` uint64 depth timestamps as stored (sensor clock units)."""
        return self._depth_timestamps

    # ------------------------------------------------------------------ frame access

    def _check_index(self, index: int) -> int:
        if self._file.closed:
            raise ValueError(f"{self._path}: SensFile is closed")
        i = int(index)
        if not 0 <= i < self.num_frames:
            raise IndexError(
                f"{self._path}: frame index {index} out of range (file has {self.num_frames} "
                f"frames, valid 0..{self.num_frames - 1})"
            )
        return i

    def read_color_bytes(self, index: int) -> bytes:
        """The colour payload of frame ``index``, unchanged (JPEG bytes for ScanNet)."""
        i = self._check_index(index)
        return self._read_at(int(self._color_offsets[i]), int(self._color_sizes[i]))

    def read_depth_raw(self, index: int) -> np.ndarray:
        """Stored depth of frame ``index``: ``(Hd, Wd)`` uint16 (units of 1/``depth_shift`` m).

        Raises:
            FormatError: unsupported compression (occi, unknown), data that does not inflate, or
                a payload of the wrong decoded size.
        """
        i = self._check_index(index)
        h = self._header
        expected = h.depth_width * h.depth_height * 2
        if h.depth_compression not in ("zlib", "raw"):
            raise FormatError(
                self._path,
                f"unsupported depth compression {h.depth_compression!r} "
                f"(only 'zlib' and 'raw' can be read)",
            )
        data = self._read_at(int(self._depth_offsets[i]), int(self._depth_sizes[i]))
        if h.depth_compression == "zlib":
            data = self._inflate(i, data, expected)
        elif len(data) != expected:
            raise FormatError(
                self._path,
                f"frame {i}: raw depth has {len(data)} bytes, expected {expected} "
                f"({h.depth_width}x{h.depth_height} uint16)",
            )
        return np.frombuffer(data, dtype="<u2").reshape(h.depth_height, h.depth_width)

    def _inflate(self, index: int, data: bytes, expected: int) -> bytes:
        """Inflate one zlib depth payload, bounded to ``expected + 1`` output bytes."""
        h = self._header
        decoder = zlib.decompressobj()
        try:
            out = decoder.decompress(data, expected + 1)
        except zlib.error as exc:
            raise FormatError(
                self._path, f"frame {index}: depth data does not inflate (zlib: {exc})"
            ) from exc
        if len(out) > expected:
            raise FormatError(
                self._path,
                f"frame {index}: depth inflates to more than {expected} bytes, expected "
                f"{expected} ({h.depth_width}x{h.depth_height} uint16)",
            )
        if not decoder.eof:
            raise FormatError(
                self._path,
                f"frame {index}: depth zlib stream is incomplete (got {len(out)} of "
                f"{expected} bytes)",
            )
        if len(out) != expected:
            raise FormatError(
                self._path,
                f"frame {index}: depth inflates to {len(out)} bytes, expected {expected} "
                f"({h.depth_width}x{h.depth_height} uint16)",
            )
        return out

    def read_depth_m(self, index: int) -> np.ndarray:
        """Depth of frame ``index`` in metres: ``(Hd, Wd)`` float32 = stored ÷ shift; 0 stays 0."""
        raw = self.read_depth_raw(index)
        return np.divide(raw, np.float32(self._header.depth_shift), dtype=np.float32)

    def read_frame(self, index: int) -> SensFrame:
        """Pose, colour bytes and depth in metres of frame ``index``."""
        i = self._check_index(index)
        return SensFrame(
            index=i,
            raw_world_from_cam=self._poses[i].copy(),
            color_bytes=self.read_color_bytes(i),
            depth_m=self.read_depth_m(i),
        )

    def iter_frames(self, indices: Sequence[int] | None = None) -> Iterator[SensFrame]:
        """Yield frames one at a time in ascending index order.

        Args:
            indices: frame indices to read (duplicates collapse; order does not matter); all
                frames when ``None``. Out-of-range indices raise :class:`IndexError` before any
                frame is read.
        """
        if indices is None:
            order: list[int] = list(range(self.num_frames))
        else:
            order = sorted({self._check_index(i) for i in indices})
        for i in order:
            yield self.read_frame(i)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Close the underlying file (idempotent)."""
        self._file.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._file.closed

    def __enter__(self) -> SensFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return f"SensFile({str(self._path)!r}, frames={self.num_frames})"

"""Deterministic ``.npz`` writing for TAPVid-3D-format clips (docs/data-formats.md#tapvid3d).

``np.savez`` stamps the current time into each zip entry, so two runs differ. Here every entry
is an uncompressed ``<key>.npy`` member (as ``np.savez`` makes them) written with a fixed
timestamp and fixed attributes, so the same arrays always give the same bytes. Arrays are
serialised with ``allow_pickle=False``: object arrays are refused, and JPEG frames must be a
fixed-width bytes array (``np.array(list_of_jpeg_bytes)``, dtype ``S<n>``).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from multispa.errors import ShapeError
from multispa.synth.scannet_writer import atomic_open

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The earliest timestamp a zip entry can hold; used for every member."""


def npy_bytes(array: np.ndarray) -> bytes:
    """The ``.npy`` serialisation of ``array`` (no pickle)."""
    if array.dtype.hasobject:
        raise ShapeError(f"cannot write an object array (dtype {array.dtype}) without pickle")
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def jpeg_array(frames: list[bytes]) -> np.ndarray:
    """Frames as a ``(T,)`` fixed-width bytes array; refuses frames numpy would truncate."""
    array = np.array(frames, dtype=np.bytes_)
    for index, frame in enumerate(frames):
        if frame.endswith(b"\x00"):
            raise ShapeError(f"frame {index} ends with NUL bytes, which dtype S would drop")
    return array


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` (in the given key order) to ``path`` as a byte-reproducible npz."""
    with atomic_open(Path(path)) as handle, zipfile.ZipFile(handle, mode="w") as archive:
        for key, array in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            archive.writestr(info, npy_bytes(np.asarray(array)))

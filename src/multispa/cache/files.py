"""Deterministic, atomic writing of cache files (JSON, npy, Parquet) and input fingerprints.

Every writer produces the same bytes for the same content (no timestamps), so a cache rebuilt
after a crash is byte-identical to one built in one go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from multispa.errors import CacheError
from multispa.fs import naming

#: Bytes hashed at the start and at the end of a large input file for its fingerprint.
FINGERPRINT_EDGE_BYTES = 1 << 16


def json_bytes(content: Any) -> bytes:
    """``content`` as sorted, indented UTF-8 JSON text, newline-terminated.

    Always valid JSON: a NaN or infinity raises ``ValueError`` (never a bare ``NaN``), and text
    that cannot be UTF-8 (file names that are not valid UTF-8, held as surrogate escapes) makes
    the whole document ASCII with ``\\uXXXX`` escapes, which Python reads back unchanged.
    """
    text = json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(content, indent=1, sort_keys=True, ensure_ascii=True, allow_nan=False)
        return (text + "\n").encode("ascii")


def write_json(path: Path, content: Any) -> None:
    """Write ``content`` as :func:`json_bytes` via a temporary name (removed if the write
    fails, e.g. on a full disk)."""
    data = json_bytes(content)
    temporary = path.with_name(path.name + ".tmp")
    try:
        write_file(temporary, data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        raise


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path``; an ``OSError`` (a full disk...) names the file."""
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as error:
        raise naming(error, path) from None


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises:
        CacheError: the file is not valid UTF-8 JSON (a damaged cache file; names it).
        OSError: the file cannot be read (not found, permission denied...).
    """
    data = Path(path).read_bytes()
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise CacheError(f"{path}: not a valid JSON file written by multispa "
                         f"({type(error).__name__}); delete it to rebuild") from None


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write one array as ``.npy`` version 1.0 (never pickled; memory-mappable on read); the
    bytes are those of ``numpy.save``. An ``OSError`` (a full disk...) names the file."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError(f"{path}: object arrays are not written (no pickle)")
    try:
        with open(path, "wb") as handle:
            np.lib.format.write_array_header_1_0(
                handle, np.lib.format.header_data_from_array_1_0(array))
            handle.write(array.data)
    except OSError as error:
        raise naming(error, path) from None


def read_npy(path: Path, *, mmap: bool = True) -> np.ndarray:
    """Read a ``.npy`` written by :func:`write_npy`, memory-mapped by default."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def write_parquet(path: Path, columns: dict[str, np.ndarray | list]) -> None:
    """Write columns as a zstd-compressed Parquet table."""
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    try:
        pq.write_table(table, path, compression="zstd")
    except OSError as error:  # Arrow's I/O errors carry no file name
        raise naming(error, path) from None


def file_fingerprint(path: Path) -> dict[str, Any]:
    """Size and BLAKE2b digest of the first and last 64 KiB of a file (quick, content-based)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
        if size > 2 * FINGERPRINT_EDGE_BYTES:
            handle.seek(size - FINGERPRINT_EDGE_BYTES)
            digest.update(handle.read(FINGERPRINT_EDGE_BYTES))
    return {"name": path.name, "size": size, "blake2b_edges": digest.hexdigest()}


def tree_fingerprint(path: Path) -> dict[str, Any]:
    """Fingerprint of a file, or of a folder's files (names, sizes and edge digests, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_fingerprint(path)
    digest = hashlib.blake2b(digest_size=16)
    count = 0
    for child in sorted(p for p in path.rglob("*") if p.is_file()):
        entry = file_fingerprint(child)
        digest.update(f"{child.relative_to(path)}|{entry['size']}|{entry['blake2b_edges']}".encode())
        count += 1
    return {"name": path.name, "files": count, "blake2b_tree": digest.hexdigest()}

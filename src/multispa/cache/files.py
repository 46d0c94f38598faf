"""Deterministic, atomic writing of cache files (JSON, npy, Parquet) and input fingerprints.

Every writer produces the same bytes for the same content (no timestamps), so a cache rebuilt
after a crash is byte-identical to one built in one go.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Bytes hashed at the start and at the end of a large input file for its fingerprint.
FINGERPRINT_EDGE_BYTES = 1 << 16


def write_json(path: Path, content: Any) -> None:
    """Write ``content`` as sorted, indented UTF-8 JSON (via a temporary name)."""
    text = json.dumps(content, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def read_json(path: Path) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_npy(path: Path, array: np.ndarray) -> None:
    """Write one array as ``.npy`` (never pickled; memory-mappable on read)."""
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, np.ascontiguousarray(array), allow_pickle=False)


def read_npy(path: Path, *, mmap: bool = True) -> np.ndarray:
    """Read a ``.npy`` written by :func:`write_npy`, memory-mapped by default."""
    return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)


def write_parquet(path: Path, columns: dict[str, np.ndarray | list]) -> None:
    """Write columns as a zstd-compressed Parquet table."""
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    pq.write_table(table, path, compression="zstd")


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

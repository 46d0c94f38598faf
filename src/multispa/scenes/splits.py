"""Train/val split assignment shared by the readers.

When a dataset ships no split lists, scenes (or TAPVid-3D sequences) are assigned by a stable hash
of their name: SHA-256 of the UTF-8 name, first 8 bytes read big-endian as an integer, divided by
2**64; names whose value is below ``val_fraction`` go to ``val`` (about 20% by default), the rest
to ``train``. The rule never depends on Python's salted ``hash()`` or on the set of other names.

ScanNet scans are hashed by their **room** (:func:`room_of`: ``scene0011`` for ``scene0011_01``),
so every rescan of a room lands in the same split; TAPVid-3D clips by their sequence.
"""

from __future__ import annotations

import hashlib
import re

DEFAULT_VAL_FRACTION = 0.2

_SCAN_ID = re.compile(r"^(scene\d+)_\d+$")


def hash_unit_interval(name: str) -> float:
    """Map ``name`` to a stable number in [0, 1) (SHA-256 based)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(name: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """Return ``"val"`` or ``"train"`` for ``name`` by the documented hash rule."""
    return "val" if hash_unit_interval(name) < val_fraction else "train"


def room_of(scene_id: str) -> str:
    """The room of a ScanNet scan id: ``scene0011_01`` → ``scene0011`` (other names unchanged)."""
    match = _SCAN_ID.match(scene_id)
    return match.group(1) if match else scene_id


def scannet_hash_split(scene_id: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """``hash_split`` of the scan's room, so that rescans of a room share a split."""
    return hash_split(room_of(scene_id), val_fraction)

"""Train/val split assignment shared by the readers.

When a dataset ships no split lists, scenes (or TAPVid-3D sequences) are assigned by a stable hash
of their name: SHA-256 of the UTF-8 name, first 8 bytes read big-endian as an integer, divided by
2**64; names whose value is below ``val_fraction`` go to ``val`` (about 20% by default), the rest
to ``train``. The rule never depends on Python's salted ``hash()`` or on the set of other names.
"""

from __future__ import annotations

import hashlib

DEFAULT_VAL_FRACTION = 0.2


def hash_unit_interval(name: str) -> float:
    """Map ``name`` to a stable number in [0, 1) (SHA-256 based)."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(name: str, val_fraction: float = DEFAULT_VAL_FRACTION) -> str:
    """Return ``"val"`` or ``"train"`` for ``name`` by the documented hash rule."""
    return "val" if hash_unit_interval(name) < val_fraction else "train"

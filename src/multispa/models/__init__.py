"""Vision-language model helpers: per-family adapters and tiny random checkpoints for tests.

Nothing here imports torch or transformers at import time.
"""

from multispa.models.families import FamilyAdapter, family_adapter, load_processor
from multispa.models.tiny import build_tiny_model

__all__ = ["FamilyAdapter", "build_tiny_model", "family_adapter", "load_processor"]

"""multispa: multi-frame spatial question-answer data, benchmark and training for multimodal LLMs.

Implements the MultiSPA data engine of "Multi-SpatialMLLM" (arXiv 2505.17015): real-format readers
for ScanNet and TAPVid-3D, a synthetic scene writer, and (in later layers) question generation,
evaluation and LoRA training.
"""

__version__ = "0.3.0"

__all__ = ["__version__"]

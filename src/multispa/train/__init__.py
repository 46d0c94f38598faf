"""``multispa train``: the Multi-SpatialMLLM LoRA recipe on Hugging Face vision-language models.

Modules, one job each: :mod:`~multispa.train.config` (settings), :mod:`~multispa.train.data`
(meta JSON and records), :mod:`~multispa.train.encode` (sample → tokens, labels, pixels),
:mod:`~multispa.train.index` (length scan), :mod:`~multispa.train.trainable` (``--tune`` modes),
:mod:`~multispa.train.loop` (training), :mod:`~multispa.train.merge` (adapter → weights) and
:mod:`~multispa.train.deepspeed` (ZeRO configs). torch, transformers and peft are imported only
when training, merging or encoding starts (``pip install 'multispa[train]'``).
"""

from multispa.train.config import TUNE_MODES, TrainConfig

__all__ = ["TUNE_MODES", "TrainConfig"]

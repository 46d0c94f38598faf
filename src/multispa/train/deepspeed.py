"""DeepSpeed ZeRO configs for ``multispa train --deepspeed FILE``.

The files defer every value the trainer already knows to it (``"auto"``: batch sizes,
accumulation, clipping, precision, bucket sizes), and name no optimiser or scheduler, so the
recipe's AdamW and cosine schedule from :class:`~multispa.train.config.TrainConfig` apply
unchanged under DeepSpeed. ZeRO-2 shards optimiser states and gradients (LoRA: enough for an
8B model); ZeRO-3 also shards the weights (needed for ``--tune full``), and gathers 16-bit
weights when the model is saved.

DeepSpeed itself is not a multispa dependency: ``pip install deepspeed`` on the GPU machines.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError, FormatError, MissingFileError

__all__ = ["ZERO_STAGES", "check_deepspeed_config", "deepspeed_config", "write_deepspeed_config"]

#: Supported ZeRO stages.
ZERO_STAGES: tuple[int, ...] = (2, 3)


def deepspeed_config(stage: int) -> dict[str, Any]:
    """The ZeRO-``stage`` config as a dict (see the module docstring).

    Raises:
        ConfigError: a stage other than 2 or 3.
    """
    if stage not in ZERO_STAGES:
        raise ConfigError(f"ZeRO stage must be 2 or 3, found {stage!r}")
    zero: dict[str, Any] = {
        "stage": stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": "auto",
    }
    if stage == 2:
        zero.update({"allgather_partitions": True, "allgather_bucket_size": 200_000_000,
                     "reduce_scatter": True})
    else:
        zero.update({
            "stage3_prefetch_bucket_size": "auto",
            "stage3_param_persistence_threshold": "auto",
            "stage3_max_live_parameters": 1_000_000_000,
            "stage3_max_reuse_distance": 1_000_000_000,
            "stage3_gather_16bit_weights_on_model_save": True,
        })
    return {
        "bf16": {"enabled": "auto"},
        "fp16": {"enabled": "auto"},
        "zero_optimization": zero,
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
        "train_batch_size": "auto",
        "train_micro_batch_size_per_gpu": "auto",
        "steps_per_print": 1_000_000,
        "wall_clock_breakdown": False,
    }


def write_deepspeed_config(path: str | Path, stage: int = 2) -> Path:
    """Write :func:`deepspeed_config` as indented JSON to ``path`` (folders created)."""
    config = deepspeed_config(stage)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return path


def check_deepspeed_config(path: str | Path) -> dict[str, Any]:
    """Read a DeepSpeed config given to ``--deepspeed`` and check that DeepSpeed is installed.

    Raises:
        MissingFileError: no such file.
        FormatError: not a JSON object.
        ConfigError: DeepSpeed is not installed (with the install hint).
    """
    import importlib.util

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "DeepSpeed config not found (multispa train "
                                     "--write-deepspeed-config FILE writes one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FormatError(path, f"DeepSpeed config is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise FormatError(path, f"DeepSpeed config must be a JSON object, found "
                                f"{type(data).__name__}")
    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(f"--deepspeed {path}: DeepSpeed is not installed; pip install "
                          "deepspeed (GPU machines only; it is not a multispa dependency)")
    return data

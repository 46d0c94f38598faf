"""``multispa train merge``: fold a peft adapter (LoRA and any ``modules_to_save`` copies) into
the base weights and save a plain checkpoint that loads without peft (vLLM, ``hf:<path>``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from multispa.errors import ConfigError
from multispa.models.families import adapter_for_model_type, load_processor, model_type_of
from multispa.models.families import save_processor as save_processor_files
from multispa.train.trainable import require_peft

__all__ = ["merge_adapter"]


def merge_adapter(model: str | Path, adapter: str | Path, out: str | Path, *,
                  dtype: str | None = None) -> Path:
    """Merge ``adapter`` into the checkpoint ``model`` and write the result to ``out``.

    Args:
        model: base checkpoint folder.
        adapter: peft adapter folder (``OUT/adapter`` of ``multispa train``).
        out: output folder (created); weights as safetensors, the processor (the adapter
            folder's copy when it has one, so training's image settings carry over, else the
            base's) and the generation config.
        dtype: weight dtype name (``float32``, ``bfloat16``, …); None keeps the checkpoint's.

    Returns:
        ``out``.

    Raises:
        ConfigError: a missing folder, peft missing, an adapter that does not fit the model.
    """
    import torch
    from transformers import AutoModelForImageTextToText

    model, adapter, out = Path(model), Path(adapter), Path(out)
    for name, folder in (("model", model), ("adapter", adapter)):
        if not folder.is_dir():
            raise ConfigError(f"merge: {name} folder {folder} does not exist")
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"merge: {adapter} holds no adapter_config.json (not a peft adapter)")
    peft = require_peft()
    torch_dtype = "auto"
    if dtype is not None:
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise ConfigError(f"merge: unknown dtype {dtype!r}; expected e.g. float32, bfloat16")
    family = adapter_for_model_type(model_type_of(model))
    try:
        base = AutoModelForImageTextToText.from_pretrained(str(model), dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"merge: cannot load model {model}: {error}") from None
    try:
        with warnings.catch_warnings():
            # peft 0.21 reads a property transformers 5 deprecates; harmless here.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                    category=FutureWarning)
            tuned = peft.PeftModel.from_pretrained(base, str(adapter))
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        raise ConfigError(f"merge: adapter {adapter} does not fit {model}: {error}") from None
    merged = tuned.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    source = adapter if (adapter / "processor_config.json").is_file() else model
    # the family comes from the model: an adapter folder has no config.json
    save_processor_files(load_processor(source, family), out)
    return out

"""Which parameters train (``--tune``, the paper's Table 8), and the check that nothing else
does.

- ``llm-lora`` (default, the paper): LoRA on the language model's attention and MLP
  projections; the vision tower, the projector and every base weight frozen.
- ``llm-lora+mlp``: LoRA + the whole projector; vision tower and base language weights frozen.
- ``llm-lora+mlp+vision``: LoRA + the whole projector and vision tower; base language weights
  frozen.
- ``full``: every parameter trains.

In the LoRA modes the projector and vision tower are trained as peft ``modules_to_save``
copies, so the adapter folder holds everything that changed and ``merge`` folds it all in.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from typing import Any

from multispa.errors import ConfigError
from multispa.models.families import MODULE_GROUPS, FamilyAdapter
from multispa.train.config import TUNE_MODES

__all__ = [
    "FULLY_TRAINED_GROUPS",
    "apply_tune",
    "check_trainable",
    "lora_config",
    "modules_to_save",
    "require_peft",
    "trainable_counts",
]

#: Mode → groups whose parameters are trained whole (besides LoRA on the language model).
FULLY_TRAINED_GROUPS: dict[str, tuple[str, ...]] = {
    "llm-lora": (),
    "llm-lora+mlp": ("projector",),
    "llm-lora+mlp+vision": ("projector", "vision"),
    "full": MODULE_GROUPS,
}
_SAVED_COPY = ".modules_to_save."
_LORA = ".lora_"
#: peft's wrapper segments inside parameter names (removed before grouping).
_WRAPPER_SEGMENT = re.compile(r"\.(modules_to_save\.[^.]+|original_module|base_layer)(?=\.)")


def require_peft() -> Any:
    """The ``peft`` module; :class:`ConfigError` with the install hint when it is missing."""
    try:
        import peft
    except ImportError as error:
        raise ConfigError("LoRA training (--tune llm-lora*) needs peft: pip install "
                          f"'multispa[train]' ({error})") from None
    return peft


def modules_to_save(adapter: FamilyAdapter, tune: str) -> list[str]:
    """Module names trained whole in a LoRA ``tune`` mode (outermost only: a module inside
    another listed one is dropped)."""
    groups = FULLY_TRAINED_GROUPS[tune]
    names = [prefix.rstrip(".") for group, prefix in adapter.group_prefixes
             if group in groups and group != "language"]
    return [n for n in names if not any(n.startswith(other + ".") for other in names)]


def lora_config(adapter: FamilyAdapter, tune: str, *, rank: int, alpha: int,
                dropout: float) -> Any:
    """The peft ``LoraConfig`` of a LoRA ``tune`` mode."""
    peft = require_peft()
    return peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, bias="none",
        target_modules=adapter.language_lora_targets(),
        modules_to_save=modules_to_save(adapter, tune) or None,
    )


def apply_tune(model: Any, adapter: FamilyAdapter, tune: str, *, rank: int = 16,
               alpha: int = 32, dropout: float = 0.05) -> Any:
    """Freeze ``model`` for ``tune`` and return the model to train (a peft model in the LoRA
    modes, ``model`` itself for ``full``), checked with :func:`check_trainable`.

    Trainable weights that are not float32 (a base loaded in bf16) are cast to float32, so the
    optimiser keeps full-precision master weights; the forward pass runs under autocast.

    Raises:
        ConfigError: unknown mode, peft missing, or a parameter trainable outside the mode.
    """
    import torch

    if tune not in TUNE_MODES:
        raise ConfigError(f"tune must be one of {', '.join(TUNE_MODES)}; found {tune!r}")
    if tune == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        tuned = model
    else:
        peft = require_peft()
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        config = lora_config(adapter, tune, rank=rank, alpha=alpha, dropout=dropout)
        with warnings.catch_warnings():
            # peft 0.21 reads a property transformers 5 deprecates; harmless here.
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing",
                                    category=FutureWarning)
            tuned = peft.get_peft_model(model, config)
    for parameter in tuned.parameters():
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    check_trainable(tuned, adapter, tune)
    return tuned


def _group(adapter: FamilyAdapter, name: str) -> str | None:
    """The group of a (peft-wrapped) parameter name, by the module it belongs to."""
    return adapter.module_group(_WRAPPER_SEGMENT.sub("", name))


def _kind(name: str) -> str:
    if _LORA in name:
        return "lora"
    if _SAVED_COPY in name:
        return "copy"
    return "base"


def trainable_counts(model: Any, adapter: FamilyAdapter) -> dict[str, int]:
    """Trainable parameter elements per ``<group>/<kind>`` (kind: ``lora``, ``copy`` for a
    ``modules_to_save`` copy, ``base``)."""
    counts: Counter[str] = Counter()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            counts[f"{_group(adapter, name) or 'other'}/{_kind(name)}"] += parameter.numel()
    return dict(sorted(counts.items()))


def check_trainable(model: Any, adapter: FamilyAdapter, tune: str) -> dict[str, int]:
    """Assert that exactly the parameters of ``tune`` are trainable; return
    :func:`trainable_counts`.

    LoRA modes: every LoRA weight of the language model and every weight of the fully trained
    groups' copies trains, and nothing else (no base weight, no original of a copied module).
    ``full``: every parameter trains.

    Raises:
        ConfigError: naming up to five offending parameters.
    """
    wrong: list[str] = []
    groups = FULLY_TRAINED_GROUPS[tune]
    for name, parameter in model.named_parameters():
        group, kind = _group(adapter, name), _kind(name)
        if tune == "full":
            should_train = True
        elif kind == "lora":
            should_train = group == "language"
        elif kind == "copy":
            should_train = group in groups
        else:
            should_train = False
        if bool(parameter.requires_grad) != should_train:
            state = "trainable" if parameter.requires_grad else "frozen"
            wrong.append(f"{name} ({group or 'no group'}, {state})")
    counts = trainable_counts(model, adapter)
    if tune != "full":
        expected_kinds = {"language/lora", *(f"{g}/copy" for g in groups)}
        missing = sorted(expected_kinds - set(counts))
        wrong += [f"no trainable {kind} parameters" for kind in missing]
    if wrong:
        listed = "; ".join(wrong[:5]) + (f"; … {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise ConfigError(f"--tune {tune}: unexpected trainable state: {listed}")
    return counts

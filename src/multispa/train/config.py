"""``TrainConfig``: every setting of ``multispa train``, one field per command-line option.

The defaults are the paper's recipe (README.md#training-multispa-train) where it states one, and
common practice where it does not (marked "not given by the paper"): LoRA rank 16 on the language
model only, alpha 32, dropout 0.05, AdamW at 4e-5 with a cosine schedule, 3 % warm-up, no weight
decay, one epoch, bf16 when the GPU supports it, gradient checkpointing, at most 8192 tokens per
sample and 6 dynamic tiles per image (InternVL).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from multispa.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "RESUME_INSENSITIVE",
    "SCHEDULERS",
    "TUNE_MODES",
    "TrainConfig",
]

#: ``--tune`` modes (the paper's Table 8 columns, docs/metrics.md#table-8).
TUNE_MODES: tuple[str, ...] = ("llm-lora", "llm-lora+mlp", "llm-lora+mlp+vision", "full")
#: ``--precision``: ``auto`` is bf16 on a CUDA device that supports it, fp32 otherwise.
PRECISIONS: tuple[str, ...] = ("auto", "bf16", "fp16", "fp32")
#: ``--lr-scheduler`` (transformers scheduler names).
SCHEDULERS: tuple[str, ...] = ("cosine", "linear", "constant_with_warmup")
#: Fields that may change between a run and its ``--resume`` (they do not change what a step
#: computes, or they only extend the run).
RESUME_INSENSITIVE: frozenset[str] = frozenset({
    "out", "resume", "force", "max_steps", "save_steps", "save_total_limit", "logging_steps",
    "progress", "dataloader_workers", "deepspeed",
})

_PATH_FIELDS = frozenset({"data", "model", "out", "deepspeed"})


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (see the module docstring for the defaults' origin).

    Attributes:
        data: InternVL-style meta JSON (entries with ``root``, ``annotation``, ``repeat_time``).
        model: local Hugging Face checkpoint folder (InternVL-hf or Qwen2.5-VL).
        out: output folder (adapter or weights, processor copy, config, summary, logs,
            checkpoints).
        tune: one of :data:`TUNE_MODES`.
        lora_rank, lora_alpha, lora_dropout: LoRA settings (alpha and dropout not given by the
            paper).
        learning_rate: peak learning rate.
        lr_scheduler: one of :data:`SCHEDULERS`.
        warmup_ratio: fraction of the optimisation steps with linear warm-up, in [0, 1) (not
            given by the paper).
        weight_decay: AdamW weight decay (not given by the paper).
        epochs: passes over the data (ignored when ``max_steps`` is set).
        max_steps: optimisation steps; None = as many as ``epochs`` take.
        batch_size: samples per device per forward pass.
        grad_accum: forward passes per optimisation step (global batch = batch_size ×
            grad_accum × devices).
        max_grad_norm: gradient clipping norm (not given by the paper).
        precision: one of :data:`PRECISIONS`.
        gradient_checkpointing: recompute activations in the backward pass.
        max_length: tokens per sample (prompt, image tokens and answer); longer samples are
            dropped and counted, never truncated.
        max_tiles: InternVL dynamic tiles per image (a thumbnail is added when > 1); None keeps
            the checkpoint's processor setting. Ignored by other families.
        max_image_pixels: Qwen2.5-VL largest resized image area, pixels; None keeps the
            checkpoint's processor setting. Ignored by other families.
        max_samples: use a seeded random subset of this many samples (smoke runs); None = all.
        seed: seed of the data order, subsets, LoRA initialisation and dropout.
        save_steps: checkpoint every this many optimisation steps.
        save_total_limit: checkpoints kept (oldest deleted first); None keeps all.
        logging_steps: log the mean loss every this many optimisation steps.
        dataloader_workers: processes that load and encode samples.
        deepspeed: DeepSpeed JSON config (``--write-deepspeed-config`` writes one); None = none.
        resume: continue from the newest checkpoint in ``out/checkpoints``.
        force: start over in an ``out`` that holds another run (its checkpoints are deleted).
        progress: show progress bars.
    """

    data: Path
    model: Path
    out: Path
    tune: str = "llm-lora"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    learning_rate: float = 4e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    precision: str = "auto"
    gradient_checkpointing: bool = True
    max_length: int = 8192
    max_tiles: int | None = 6
    max_image_pixels: int | None = None
    max_samples: int | None = None
    seed: int = 0
    save_steps: int = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    dataloader_workers: int = 2
    deepspeed: Path | None = None
    resume: bool = False
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        for name in _PATH_FIELDS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid setting (expected vs found)."""
        _choice("tune", self.tune, TUNE_MODES)
        _choice("precision", self.precision, PRECISIONS)
        _choice("lr_scheduler", self.lr_scheduler, SCHEDULERS)
        for name in ("lora_rank", "lora_alpha", "batch_size", "grad_accum", "max_length",
                     "save_steps", "logging_steps"):
            _at_least(name, getattr(self, name), 1)
        for name in ("max_steps", "max_tiles", "max_image_pixels", "max_samples",
                     "save_total_limit"):
            value = getattr(self, name)
            if value is not None:
                _at_least(name, value, 1)
        _at_least("dataloader_workers", self.dataloader_workers, 0)
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), found {self.lora_dropout}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), found {self.warmup_ratio}")
        for name in ("learning_rate", "epochs", "max_grad_norm"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0, found {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, found {self.weight_decay}")
        if self.resume and self.force:
            raise ConfigError("resume and force exclude each other")

    # ------------------------------------------------------------------------------ (de)serial

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (paths as strings)."""
        data = asdict(self)
        for name in _PATH_FIELDS:
            if data[name] is not None:
                data[name] = str(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Strict inverse of :meth:`to_dict`: an unknown key raises :class:`ConfigError`."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown train settings {unknown}; valid: {sorted(known)}")
        missing = sorted({"data", "model", "out"} - set(data))
        if missing:
            raise ConfigError(f"train settings lack {missing}")
        return cls(**data)

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        """Read a ``train_config.json`` (its ``config`` object) or a bare settings object."""
        from multispa.jsonl import read_json_object

        data = read_json_object(Path(path))
        return cls.from_dict(data.get("config", data))

    def resume_differences(self, other: TrainConfig) -> list[str]:
        """Settings that differ from ``other`` and forbid resuming ``other``'s run."""
        mine, theirs = self.to_dict(), other.to_dict()
        return sorted(k for k in mine if k not in RESUME_INSENSITIVE and mine[k] != theirs[k])


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; found {value!r}")


def _at_least(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, found {value!r}")

"""``multispa train``: the Multi-SpatialMLLM recipe with transformers' ``Trainer`` and peft.

One call of :func:`train`:

1. checks the settings, the meta file, the model folder (a known family) and the output folder
   (an existing run is continued with ``resume`` or replaced with ``force``, never mixed);
2. loads the processor with the image budget, then scans the data: every record is parsed,
   validated (images present and readable) and measured; records longer than ``max_length``
   are dropped and counted;
3. loads the model, freezes it for ``tune`` and checks that exactly the intended parameters
   train;
4. trains (AdamW, schedule with warm-up, gradient accumulation, bf16 autocast when supported,
   gradient checkpointing, checkpoints every ``save_steps``) on one or several devices
   (``accelerate launch`` / ``torchrun``, optionally DeepSpeed);
5. writes ``OUT/adapter/`` (peft adapter + processor) or ``OUT/model/`` (``full``: weights +
   processor), ``OUT/train_summary.json`` and ``OUT/logs/``. ``OUT/train_config.json`` (the
   settings, resolved values, versions) is written before training starts.

Trainer checkpoints (``OUT/checkpoints/checkpoint-N/``) hold the adapter or weights as
safetensors and the optimiser, scheduler and RNG states in transformers' own ``torch.save``
files, which it reloads with ``weights_only=True``; the pickled ``training_args.bin`` it adds
is deleted (nothing reads it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from multispa import __version__
from multispa.errors import ConfigError
from multispa.fs import check_output_dir
from multispa.models.families import (
    FAMILIES,
    FamilyAdapter,
    adapter_for_model_type,
    load_processor,
    model_type_of,
    save_processor,
)
from multispa.train.config import TrainConfig
from multispa.train.data import read_meta
from multispa.train.deepspeed import check_deepspeed_config
from multispa.train.encode import Collator, Encoder, configure_image_processor
from multispa.train.index import SampleIndex, ScanReport, expand, load_scan, save_scan, scan
from multispa.train.trainable import (
    apply_tune,
    modules_to_save,
    require_peft,
    trainable_counts,
)

__all__ = [
    "CONFIG_FILE",
    "SUMMARY_FILE",
    "TrainDataset",
    "TrainResult",
    "load_base_model",
    "resolve_family",
    "train",
]

logger = logging.getLogger(__name__)

CONFIG_FILE = "train_config.json"
SUMMARY_FILE = "train_summary.json"
CHECKPOINTS = "checkpoints"
_PICKLED_ARGS = "training_args.bin"


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        summary: the content of ``train_summary.json``.
        output: ``OUT/adapter`` (LoRA modes) or ``OUT/model`` (``full``).
        model: the trained model, in memory (a peft model in the LoRA modes).
    """

    summary: dict[str, Any]
    output: Path
    model: Any


class TrainDataset:
    """Map-style dataset over the training positions: item ``i`` is the encoded record at
    ``positions[i]`` of ``index``, re-read from its annotation file."""

    def __init__(self, index: SampleIndex, positions: np.ndarray, encoder: Encoder) -> None:
        self.index = index
        self.positions = positions
        self.encoder = encoder

    def __len__(self) -> int:
        return int(self.positions.shape[0])

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.encoder.encode(self.index.sample(int(self.positions[item])))


# ---------------------------------------------------------------------------------- checks


def _require_hf() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as error:
        raise ConfigError(f"training needs torch and transformers: pip install "
                          f"'multispa[train]' ({error})") from None


def resolve_family(model: Path) -> FamilyAdapter:
    """The family adapter of the checkpoint folder ``model``.

    Raises:
        ConfigError: not a folder, or a ``model_type`` training does not support.
        MissingFileError, FormatError: no or a malformed ``config.json``.
    """
    if not model.is_dir():
        raise ConfigError(f"model folder {model} does not exist (download a checkpoint first, "
                          "e.g. hf download OpenGVLab/InternVL3-8B-hf --local-dir DIR)")
    model_type = model_type_of(model)
    adapter = adapter_for_model_type(model_type)
    if adapter.name not in FAMILIES:
        raise ConfigError(f"{model / 'config.json'}: model_type {model_type!r} is not supported "
                          f"for training; expected one of "
                          f"{sorted(a.model_type for a in FAMILIES.values())}")
    return adapter


def _precision(requested: str) -> str:
    import torch

    cuda = torch.cuda.is_available()
    if requested == "auto":
        return "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    if requested == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return requested


def load_base_model(path: Path, dtype: Any = None) -> Any:
    """``AutoModelForImageTextToText`` from ``path`` (``dtype`` None: the checkpoint's).

    Raises:
        ConfigError: transformers cannot load the folder.
    """
    from transformers import AutoModelForImageTextToText

    try:
        return AutoModelForImageTextToText.from_pretrained(
            str(path), dtype=dtype if dtype is not None else "auto")
    except (OSError, ValueError, KeyError) as error:
        raise ConfigError(f"cannot load model {path}: {error}") from None


# ---------------------------------------------------------------------------- output folder


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _prepare_out(config: TrainConfig, is_main: bool) -> str | None:
    """Check ``config.out`` against an earlier run; return the checkpoint to resume, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    out = config.out
    saved = out / CONFIG_FILE
    checkpoints = out / CHECKPOINTS
    if config.resume:
        if not saved.is_file():
            raise ConfigError(f"--resume: {saved} not found; nothing to resume in {out}")
        differences = config.resume_differences(TrainConfig.from_json(saved))
        if differences:
            raise ConfigError(f"--resume: settings differ from {saved}: "
                              f"{', '.join(differences)}")
        last = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if last is None:
            raise ConfigError(f"--resume: no checkpoint-N folder in {checkpoints}")
        return last
    if saved.is_file() and not config.force:
        previous = TrainConfig.from_json(saved)
        if previous.to_dict() != config.to_dict() or checkpoints.is_dir():
            raise ConfigError(f"{out} holds another run ({saved}); pass --resume to continue "
                              "it or --force to start over")
    if config.force and is_main:
        for name in (CHECKPOINTS, "adapter", "model", "logs"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in (CONFIG_FILE, SUMMARY_FILE, "scan_report.json", "scan_index.npz"):
            (out / name).unlink(missing_ok=True)
    return None


def _versions() -> dict[str, str]:
    import importlib.metadata as metadata

    versions = {"multispa": __version__}
    for package in ("torch", "transformers", "peft", "accelerate", "deepspeed"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


# ------------------------------------------------------------------------------- callbacks


def _callbacks(log_file: Path) -> list[Any]:
    from transformers import TrainerCallback

    class JsonlLog(TrainerCallback):
        """Appends every log entry (loss, learning rate, …) to ``logs/train_log.jsonl``."""

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kwargs: Any) -> None:
            if state.is_world_process_zero and logs:
                log_file.parent.mkdir(parents=True, exist_ok=True)
                entry = {"step": state.global_step, **logs}
                with log_file.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, sort_keys=True) + "\n")

    class DropPickledArgs(TrainerCallback):
        """Deletes the pickled ``training_args.bin`` from each new checkpoint."""

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                (folder / _PICKLED_ARGS).unlink(missing_ok=True)

    return [JsonlLog(), DropPickledArgs()]


# ------------------------------------------------------------------------------------ train


def _training_arguments(config: TrainConfig, precision: str) -> Any:
    import torch
    from transformers import TrainingArguments

    vision_may_idle = config.tune != "llm-lora"  # text-only batches leave vision weights unused
    return TrainingArguments(
        output_dir=str(config.out / CHECKPOINTS),
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps if config.max_steps is not None else -1,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=config.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=not config.progress,
        dataloader_num_workers=config.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        label_names=["labels"],
        deepspeed=str(config.deepspeed) if config.deepspeed is not None else None,
        ddp_find_unused_parameters=vision_may_idle,
    )


def _set_use_cache(model: Any, value: bool) -> None:
    configs = [model.config]
    text = getattr(model.config, "get_text_config", None)
    if text is not None:
        configs.append(text())
    for cfg in configs:
        if hasattr(cfg, "use_cache"):
            cfg.use_cache = value


def train(config: TrainConfig, *, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Run ``multispa train`` (see the module docstring); ``callbacks`` are extra transformers
    ``TrainerCallback`` objects.

    Raises:
        ConfigError: bad settings, unsupported model, missing optional dependency (torch,
            transformers, peft, deepspeed), an output folder holding another run, no samples.
        MissingFileError, FormatError: missing or malformed meta file, annotation line, image.
        OutputError: ``config.out`` is a file or lies under one.
    """
    started = time.perf_counter()
    check_output_dir(config.out)
    _require_hf()
    import torch
    from transformers import Trainer

    adapter = resolve_family(config.model)
    if config.tune != "full":
        require_peft()
    if config.deepspeed is not None:
        check_deepspeed_config(config.deepspeed)
    entries = read_meta(config.data)
    precision = _precision(config.precision)
    args = _training_arguments(config, precision)
    is_main = args.process_index == 0
    resume_from = _prepare_out(config, is_main)
    _barrier()

    processor = load_processor(config.model, adapter)
    image_settings = configure_image_processor(
        processor, adapter.name, max_tiles=config.max_tiles,
        max_image_pixels=config.max_image_pixels)
    encoder = Encoder(processor, adapter, config.max_length)
    index, report, scan_cached = _scan_once(config, entries, encoder, image_settings, is_main)
    positions = expand(index, seed=config.seed, max_samples=config.max_samples)
    if positions.size == 0:
        raise ConfigError(f"{config.data}: no training samples left (records read: "
                          f"{sum(report.records.values())}, longer than max_length "
                          f"{config.max_length}: {report.dropped_too_long})")
    scanned = time.perf_counter()

    lora = config.tune != "full"
    low_precision = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    model_dtype = low_precision if lora and low_precision is not None else torch.float32
    model = load_base_model(config.model, model_dtype)
    _set_use_cache(model, False)
    with torch.random.fork_rng(devices=[]):  # the LoRA initialisation, from the seed only
        torch.manual_seed(config.seed)
        model = apply_tune(model, adapter, config.tune, rank=config.lora_rank,
                           alpha=config.lora_alpha, dropout=config.lora_dropout)
    counts = trainable_counts(model, adapter)
    resolved = {
        "family": adapter.name, "precision": precision, "model_dtype": str(model_dtype),
        "image_processor": image_settings,
        "optimizer": str(getattr(args.optim, "value", args.optim)),
        "lora_target_modules": adapter.language_lora_targets() if lora else None,
        "modules_to_save": modules_to_save(adapter, config.tune) if lora else None,
        "world_size": args.world_size,
        "global_batch_size": config.batch_size * config.grad_accum * args.world_size,
        "trainable_parameters": counts,
    }
    if is_main:
        _write_json(config.out / CONFIG_FILE, {"config": config.to_dict(), "resolved": resolved,
                                               "versions": _versions()})

    trainer = Trainer(
        model=model, args=args, train_dataset=TrainDataset(index, positions, encoder),
        data_collator=Collator(processor.tokenizer.pad_token_id),
        callbacks=[*_callbacks(config.out / "logs" / "train_log.jsonl"), *callbacks],
    )
    resumed_step = _checkpoint_step(resume_from)
    output = trainer.train(resume_from_checkpoint=resume_from)
    trained = time.perf_counter()

    target = config.out / ("adapter" if lora else "model")
    _set_use_cache(trainer.model, True)
    trainer.save_model(str(target))
    summary = _summary(config, trainer, output, report, positions, resolved,
                       resumed_step=resumed_step, scan_cached=scan_cached, output_dir=target,
                       times=(started, scanned, trained))
    if is_main:
        (target / _PICKLED_ARGS).unlink(missing_ok=True)
        save_processor(processor, target)
        _write_json(config.out / SUMMARY_FILE, summary)
    _barrier()
    return TrainResult(summary=summary, output=target, model=trainer.model)


def _scan_key(config: TrainConfig, entries: Sequence[Any], encoder: Encoder,
              image_settings: dict[str, Any]) -> str:
    """Fingerprint of everything the length scan depends on: the meta file, each annotation
    file's size and modification time, the image roots, the model, its chat template, the
    image budget and ``max_length``."""
    files = []
    for entry in entries:
        stat = entry.annotation.stat()
        files.append([str(entry.annotation.resolve()), stat.st_size, stat.st_mtime_ns,
                      str(entry.root.resolve()), entry.repeat_time])
    payload = {
        "meta": hashlib.sha256(config.data.read_bytes()).hexdigest(), "files": files,
        "model": str(config.model.resolve()), "max_length": config.max_length,
        "image": image_settings, "template": encoder.processor.chat_template,
        "tokenizer_size": len(encoder.tokenizer),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def _scan_once(
    config: TrainConfig, entries: Sequence[Any], encoder: Encoder,
    image_settings: dict[str, Any], is_main: bool,
) -> tuple[SampleIndex, ScanReport, bool]:
    """The length scan, computed once: by the main process, saved in ``OUT`` and reused by the
    other processes and by later runs (``--resume``) while its inputs are unchanged."""
    key = _scan_key(config, entries, encoder, image_settings)
    index: SampleIndex | None = None
    report: ScanReport | None = None
    cached = False
    if is_main:
        loaded = load_scan(config.out, entries, key)
        cached = loaded is not None
        if loaded is None:
            index, report = scan(entries, encoder.predicted_length, config.max_length,
                                 progress=config.progress)
            save_scan(config.out, index, report, key)
        else:
            index, report = loaded
    _barrier()
    if not is_main:
        loaded = load_scan(config.out, entries, key)
        cached = loaded is not None
        # without a shared OUT the other processes scan for themselves
        index, report = loaded if loaded is not None else scan(
            entries, encoder.predicted_length, config.max_length)
    assert index is not None and report is not None
    return index, report, cached


def _checkpoint_step(checkpoint: str | None) -> int | None:
    if checkpoint is None:
        return None
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["global_step"])


def _summary(
    config: TrainConfig, trainer: Any, output: Any, report: Any, positions: np.ndarray,
    resolved: dict[str, Any], *, resumed_step: int | None, scan_cached: bool,
    output_dir: Path,
    times: tuple[float, float, float],
) -> dict[str, Any]:
    started, scanned, trained = times
    curve = [[int(e["step"]), float(e["loss"])] for e in trainer.state.log_history
             if "loss" in e]
    return {
        "output": str(output_dir),
        "family": resolved["family"],
        "tune": config.tune,
        "steps": int(trainer.state.global_step),
        "max_steps": int(trainer.state.max_steps),
        "resumed_from_step": resumed_step,
        "scan_cached": scan_cached,
        "epochs": float(trainer.state.epoch or 0.0),
        "samples_used": int(positions.size),
        "records_read": int(sum(report.records.values())),
        "records_kept": int(sum(report.kept.values())),
        "dropped_too_long": report.dropped_too_long,
        "data": report.to_dict(),
        "loss_first": curve[0][1] if curve else None,
        "loss_last": curve[-1][1] if curve else None,
        "loss_curve": curve,
        "train_loss_mean": float(output.training_loss),
        "scan_time_s": round(scanned - started, 3),
        "train_time_s": round(trained - scanned, 3),
        "total_time_s": round(time.perf_counter() - started, 3),
        "global_batch_size": resolved["global_batch_size"],
        "precision": resolved["precision"],
        "trainable_parameters": resolved["trainable_parameters"],
    }

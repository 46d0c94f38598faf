"""``multispa train`` (LoRA / full fine-tuning on a meta JSON) and ``multispa train merge``
(fold an adapter into the base weights). Every training option is a field of
:class:`multispa.train.config.TrainConfig`."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from multispa.train.config import PRECISIONS, SCHEDULERS, TUNE_MODES, TrainConfig

_PATH = click.Path(path_type=Path)
_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(TrainConfig)
                             if f.name not in ("data", "model", "out")}


def _optional_int(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``keep`` (or nothing) → None, otherwise a positive integer."""
    if value is None or value == "keep":
        return None
    try:
        number = int(value)
    except ValueError:
        raise click.BadParameter(f"expected an integer or 'keep', found {value!r}") from None
    if number < 1:
        raise click.BadParameter(f"must be >= 1, found {number}")
    return number


@click.group("train", invoke_without_command=True)
@click.option("--data", type=_PATH, help="InternVL-style meta JSON (MultiSPA meta_train.json "
                                         "or a mix with general instruction data).")
@click.option("--model", type=_PATH, help="Checkpoint folder (InternVL-hf or Qwen2.5-VL).")
@click.option("--out", type=_PATH, help="Output folder.")
@click.option("--tune", type=click.Choice(TUNE_MODES), default=_DEFAULTS["tune"],
              show_default=True, help="What trains (the paper's Table 8).")
@click.option("--lora-rank", type=int, default=_DEFAULTS["lora_rank"], show_default=True)
@click.option("--lora-alpha", type=int, default=_DEFAULTS["lora_alpha"], show_default=True)
@click.option("--lora-dropout", type=float, default=_DEFAULTS["lora_dropout"],
              show_default=True)
@click.option("--lr", "learning_rate", type=float, default=_DEFAULTS["learning_rate"],
              show_default=True, help="Peak learning rate (AdamW).")
@click.option("--lr-scheduler", type=click.Choice(SCHEDULERS),
              default=_DEFAULTS["lr_scheduler"], show_default=True)
@click.option("--warmup-ratio", type=float, default=_DEFAULTS["warmup_ratio"],
              show_default=True)
@click.option("--weight-decay", type=float, default=_DEFAULTS["weight_decay"],
              show_default=True)
@click.option("--epochs", type=float, default=_DEFAULTS["epochs"], show_default=True)
@click.option("--max-steps", type=int, default=None,
              help="Optimisation steps (overrides --epochs).")
@click.option("--batch-size", type=int, default=_DEFAULTS["batch_size"], show_default=True,
              help="Samples per device per forward pass.")
@click.option("--grad-accum", type=int, default=_DEFAULTS["grad_accum"], show_default=True,
              help="Forward passes per optimisation step.")
@click.option("--max-grad-norm", type=float, default=_DEFAULTS["max_grad_norm"],
              show_default=True)
@click.option("--precision", type=click.Choice(PRECISIONS), default=_DEFAULTS["precision"],
              show_default=True, help="auto: bf16 on a GPU that supports it, else fp32.")
@click.option("--gradient-checkpointing/--no-gradient-checkpointing",
              default=_DEFAULTS["gradient_checkpointing"], show_default=True)
@click.option("--max-length", type=int, default=_DEFAULTS["max_length"], show_default=True,
              help="Tokens per sample; longer samples are dropped and counted.")
@click.option("--max-tiles", callback=_optional_int, default=str(_DEFAULTS["max_tiles"]),
              show_default=True, help="InternVL tiles per image, or 'keep' (the checkpoint's).")
@click.option("--max-image-pixels", callback=_optional_int, default=None,
              help="Qwen2.5-VL largest image area in pixels (default: the checkpoint's).")
@click.option("--max-samples", type=int, default=None, help="Seeded random subset (smoke runs).")
@click.option("--seed", type=int, default=_DEFAULTS["seed"], show_default=True)
@click.option("--save-steps", type=int, default=_DEFAULTS["save_steps"], show_default=True)
@click.option("--save-total-limit", type=int, default=_DEFAULTS["save_total_limit"],
              show_default=True, help="Checkpoints kept.")
@click.option("--logging-steps", type=int, default=_DEFAULTS["logging_steps"],
              show_default=True)
@click.option("--dataloader-workers", type=int, default=_DEFAULTS["dataloader_workers"],
              show_default=True)
@click.option("--deepspeed", type=_PATH, default=None, help="DeepSpeed config JSON.")
@click.option("--resume", is_flag=True, help="Continue from the newest checkpoint in --out.")
@click.option("--force", is_flag=True, help="Start over in an --out that holds another run.")
@click.option("--progress/--no-progress", default=True, show_default=True)
@click.option("--write-deepspeed-config", "deepspeed_out", type=_PATH, default=None,
              help="Write a DeepSpeed ZeRO config JSON to this file and exit.")
@click.option("--zero-stage", type=click.Choice(["2", "3"]), default="2", show_default=True,
              help="ZeRO stage of --write-deepspeed-config.")
@click.pass_context
def train(ctx: click.Context, deepspeed_out: Path | None, zero_stage: str,
          **options: Any) -> None:
    """Fine-tune a vision-language model on MultiSPA (and general) data.

    \b
    multispa train --data DS/meta_train.json --model MODEL --out OUT [options]
    multispa train merge --model MODEL --adapter OUT/adapter --out MERGED
    multispa train --write-deepspeed-config ds_zero2.json [--zero-stage 3]
    """
    if ctx.invoked_subcommand is not None:
        return
    if deepspeed_out is not None:
        from multispa.train.deepspeed import write_deepspeed_config

        path = write_deepspeed_config(deepspeed_out, int(zero_stage))
        click.echo(f"DeepSpeed ZeRO-{zero_stage} config written to {path}")
        return
    missing = [f"--{name}" for name in ("data", "model", "out") if options[name] is None]
    if missing:
        raise click.UsageError(f"missing {', '.join(missing)} (see multispa train --help)")
    from multispa.train.loop import train as run_train

    result = run_train(TrainConfig(**options))
    _echo_summary(result.summary)


def _echo_summary(summary: dict[str, Any]) -> None:
    resumed = summary["resumed_from_step"]
    click.echo(f"steps: {summary['steps']}" + (f" (resumed at {resumed})" if resumed else ""))
    click.echo(f"samples used: {summary['samples_used']} of {summary['records_read']} records; "
               f"dropped as too long: {summary['dropped_too_long']}")
    if summary["loss_first"] is not None:
        click.echo(f"loss: {summary['loss_first']:.4f} -> {summary['loss_last']:.4f}")
    click.echo(f"time: {summary['total_time_s']:.1f} s")
    click.echo(f"output: {summary['output']}")


@train.command("merge")
@click.option("--model", required=True, type=_PATH, help="Base checkpoint folder.")
@click.option("--adapter", required=True, type=_PATH, help="Adapter folder (OUT/adapter).")
@click.option("--out", required=True, type=_PATH, help="Merged checkpoint folder.")
@click.option("--dtype", default=None, help="Weight dtype, e.g. bfloat16 (default: the base's).")
def merge(model: Path, adapter: Path, out: Path, dtype: str | None) -> None:
    """Fold a LoRA adapter into the base weights (a plain checkpoint for vLLM or hf:)."""
    from multispa.train.merge import merge_adapter

    merged = merge_adapter(model, adapter, out, dtype=dtype)
    click.echo(f"merged checkpoint written to {merged}")

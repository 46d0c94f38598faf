"""``multispa eval`` (ask a model the benchmark, resumable) and ``multispa score`` (score a
predictions file produced elsewhere)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from multispa.evaluate.backends.base import DEFAULT_INSTRUCTION, ModelSpec, parse_model_spec
from multispa.evaluate.runner import format_scores_table, run_eval

_PATH = click.Path(path_type=Path)


def _finish(scores: dict, out: Path) -> None:
    click.echo(format_scores_table(scores))
    click.echo(f"scores written to {out / 'scores.json'}")


@click.command("eval")
@click.option("--bench", "bench_dir", required=True, type=_PATH, help="BENCH folder.")
@click.option("--model", "model", required=True,
              help="openai:<model>@<base_url> | hf:<path>[+<adapter>] | "
                   "baseline:chance|prior|oracle | predictions:<file.jsonl>")
@click.option("--out", required=True, type=_PATH, help="RUN folder (resumed if it exists).")
@click.option("--concurrency", type=int, default=8, show_default=True,
              help="Parallel requests (openai).")
@click.option("--limit", type=int, default=None, help="First N items per benchmark key.")
@click.option("--no-instruction", is_flag=True, help="Send the bare prompts.")
@click.option("--instruction", default=None,
              help="Replace the default answer-format instruction appended to every prompt.")
@click.option("--blind", is_flag=True,
              help="Send the items without their images (the prompt says so in one sentence): "
                   "a language-prior control; report it beside the sighted run for the vision "
                   "gain.")
@click.option("--prior-from", type=_PATH, default=None,
              help="Dataset folder whose train split gives baseline statistics "
                   "(default: the benchmark, leave-one-out).")
@click.option("--timeout", "timeout_s", type=float, default=120.0, show_default=True,
              help="Request timeout, seconds (openai).")
@click.option("--max-retries", type=int, default=3, show_default=True, help="(openai)")
@click.option("--batch-size", type=int, default=1, show_default=True, help="(hf)")
@click.option("--max-new-tokens", type=int, default=256, show_default=True, help="(hf)")
@click.option("--device", default=None, help="Torch device (hf), e.g. cuda:0.")
@click.option("--seed", type=int, default=0, show_default=True, help="Baseline seed.")
@click.option("--force", is_flag=True,
              help="If --out holds another run, delete its predictions and start over.")
def eval_command(
    bench_dir: Path, model: str, out: Path, concurrency: int, limit: int | None,
    no_instruction: bool, instruction: str | None, blind: bool, prior_from: Path | None,
    timeout_s: float, max_retries: int, batch_size: int, max_new_tokens: int, device: str | None,
    seed: int, force: bool,
) -> None:
    """Evaluate a model on the benchmark; the API key comes from OPENAI_API_KEY."""
    if no_instruction and instruction is not None:
        raise click.UsageError("--no-instruction and --instruction exclude each other")
    spec = parse_model_spec(model)
    scores = run_eval(
        bench_dir, spec, out,
        instruction=None if no_instruction else (instruction or DEFAULT_INSTRUCTION),
        limit=limit, concurrency=concurrency, timeout_s=timeout_s, max_retries=max_retries,
        api_key=os.environ.get("OPENAI_API_KEY") if spec.kind == "openai" else None,
        batch_size=batch_size, max_new_tokens=max_new_tokens, device=device,
        prior_from=prior_from, seed=seed, force=force, blind=blind,
    )
    _finish(scores, out)


@click.command("score")
@click.option("--bench", "bench_dir", required=True, type=_PATH, help="BENCH folder.")
@click.option("--predictions", required=True, type=_PATH,
              help='JSONL of {"id", "response"} lines.')
@click.option("--out", required=True, type=_PATH, help="RUN folder.")
@click.option("--limit", type=int, default=None, help="First N items per benchmark key.")
@click.option("--force", is_flag=True, help="If --out holds another run, start over.")
def score_command(
    bench_dir: Path, predictions: Path, out: Path, limit: int | None, force: bool,
) -> None:
    """Score a predictions file (answers produced elsewhere) on the benchmark."""
    spec = ModelSpec("predictions", str(predictions))
    scores = run_eval(bench_dir, spec, out, limit=limit, force=force)
    _finish(scores, out)

"""``multispa export``: a benchmark or a dataset in the formats other tools read.

- ``--bench BENCH --format vlmevalkit|lmms-eval``: evaluation harnesses
  (:mod:`multispa.formats.vlmevalkit`, :mod:`multispa.formats.lmms_eval`);
- ``--dataset DS --format llava|openai-messages|hf-parquet|internvl|rl [--split
  train|val|all]``: training frameworks (:mod:`multispa.formats.dataset_export`; ``rl``: GRPO
  prompts for the verifiable reward :func:`multispa.metrics.reward.reward`).
"""

from __future__ import annotations

from pathlib import Path

import click

BENCH_FORMATS: tuple[str, ...] = ("vlmevalkit", "lmms-eval")
DATASET_FORMATS: tuple[str, ...] = ("llava", "openai-messages", "hf-parquet", "internvl", "rl")

#: Dataset-export options and the formats that take them.
_OPTION_FORMATS: dict[str, tuple[str, ...]] = {
    "--split": DATASET_FORMATS,
    "--image-paths": ("llava", "openai-messages"),
    "--content": ("openai-messages", "hf-parquet"),
    "--max-shard-mb": ("hf-parquet", "rl"),
    "--repeat-time": ("internvl",),
}


def _check_source(bench: Path | None, dataset: Path | None, format_name: str) -> None:
    if (bench is None) == (dataset is None):
        raise click.UsageError("give exactly one of --bench BENCH or --dataset DATASET")
    if bench is not None and format_name in DATASET_FORMATS:
        raise click.UsageError(
            f"--format {format_name} exports a dataset: use --dataset DIR (a benchmark exports "
            f"as {' or '.join(BENCH_FORMATS)})")
    if dataset is not None and format_name in BENCH_FORMATS:
        raise click.UsageError(
            f"--format {format_name} exports a benchmark: use --bench DIR (a dataset exports "
            f"as {', '.join(DATASET_FORMATS)})")


@click.command("export")
@click.option("--bench", type=click.Path(path_type=Path), default=None,
              help="Benchmark folder (formats vlmevalkit, lmms-eval).")
@click.option("--dataset", type=click.Path(path_type=Path), default=None,
              help="Dataset folder from `multispa generate` (llava, openai-messages, "
                   "hf-parquet, internvl, rl).")
@click.option(
    "--format",
    "format_name",
    required=True,
    type=click.Choice(BENCH_FORMATS + DATASET_FORMATS),
    help="Benchmark: VLMEvalKit dataset TSV, or an lmms-eval task folder (--include_path). "
         "Dataset: LLaVA/ShareGPT JSON, chat-messages JSONL (TRL, LLaMA-Factory, ms-swift), "
         "Hugging Face Parquet with embedded images, InternVL meta JSON, or GRPO prompts "
         "with ground truth for the verifiable reward (rl).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--split", type=click.Choice(["train", "val", "all"]), default=None,
              help="Dataset split(s) to export [default: all].")
@click.option("--image-paths", type=click.Choice(["relative", "absolute"]), default=None,
              help="Image paths relative to DATASET/images or absolute [default: relative for "
                   "llava, absolute for openai-messages].")
@click.option("--content", type=click.Choice(["string", "parts"]), default=None,
              help="Message content: text with <image> tags, or TRL's typed parts "
                   "[default: string].")
@click.option("--max-shard-mb", type=click.IntRange(min=1), default=None,
              help="hf-parquet and rl shard size in MB (10^6 bytes) [default: 500].")
@click.option("--repeat-time", type=float, default=None,
              help="internvl: repeat_time of every entry (below 1 samples) [default: 1].")
def export_command(bench: Path | None, dataset: Path | None, format_name: str, out: Path,
                   split: str | None, image_paths: str | None, content: str | None,
                   max_shard_mb: int | None, repeat_time: float | None) -> None:
    """Export a benchmark (evaluation harnesses) or a dataset (training frameworks)."""
    _check_source(bench, dataset, format_name)
    given = {"--split": split, "--image-paths": image_paths, "--content": content,
             "--max-shard-mb": max_shard_mb, "--repeat-time": repeat_time}
    for option, value in given.items():
        if value is not None and format_name not in _OPTION_FORMATS[option]:
            raise click.UsageError(f"{option} applies to --format "
                                   f"{', '.join(_OPTION_FORMATS[option])} only")
    if bench is not None:
        _export_bench(bench, format_name, out)
        return
    if dataset is None:  # not reached: _check_source requires one of the two
        raise click.UsageError("give --dataset DATASET")
    from multispa.formats.dataset_export import export_dataset

    options: dict[str, object] = {}
    if image_paths is not None:
        options["image_paths"] = image_paths
    if content is not None:
        options["content"] = content
    if max_shard_mb is not None:
        options["max_shard_bytes"] = max_shard_mb * 1_000_000
    if repeat_time is not None:
        options["repeat_time"] = repeat_time
    result = export_dataset(dataset, out, format_name, split=split or "all", **options)
    click.echo(f"export: {result.summary()}")
    for note in result.notes:
        click.echo(f"  {note}")


def _export_bench(bench: Path, format_name: str, out: Path) -> None:
    if format_name == "vlmevalkit":
        from multispa.formats.vlmevalkit import export_vlmevalkit

        path = export_vlmevalkit(bench, out)
    else:
        from multispa.formats.lmms_eval import export_lmms_eval

        path = export_lmms_eval(bench, out)
    click.echo(f"export: {format_name} -> {path}")

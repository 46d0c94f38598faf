"""``multispa demo``: the whole pipeline on built-in synthetic data.

synth → inspect → prepare → generate (every subtask: the paper's 26 and the nine N-view ones) →
bench build → eval (chance, prior and oracle baselines) → report and gallery. Every stage is the
library call the matching command makes, so the demo exercises exactly what users run. A rerun into
the same folder resumes the cached stages (prepare, generate) and redoes the cheap ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from multispa.cli.bench import print_bench_summary
from multispa.cli.generate import print_generate_summary
from multispa.cli.inspect import inspect_paths
from multispa.cli.prepare import print_prepare_summary
from multispa.cli.synth import run_synth
from multispa.errors import MultispaError
from multispa.evaluate.backends.base import parse_model_spec
from multispa.evaluate.bench import build_bench
from multispa.evaluate.runner import run_eval
from multispa.fs import check_output_dir, write_output_file
from multispa.pipeline.generate import GenerateConfig, generate
from multispa.pipeline.prepare import PrepareConfig, prepare
from multispa.report.html import write_html
from multispa.report.load import load_runs
from multispa.report.markdown import markdown_table
from multispa.synth.config import SynthConfig
from multispa.tasks.base import GenerateSettings
from multispa.tasks.templates import DEFAULT_VIEWS, MAX_VIEWS, MIN_VIEWS, SUBTASKS

#: The baselines the demo scores, in report order.
DEMO_BASELINES: tuple[str, ...] = ("chance", "prior", "oracle")
#: TAPVid-3D-like clips of the demo: three ADT-like ones (train: extrinsics_w2c written, and
#: inconsistent ones the pose check replaces by static-scene poses; val: the official key set,
#: so the benchmark's ADT items rest on static-scene poses) and three PStudio-like ones.
DEMO_CLIPS = 6

_STAGES = 8


@dataclass(frozen=True)
class DemoConfig:
    """Settings of one demo run (every field is a ``multispa demo`` option).

    Attributes:
        out: the demo folder (data/, cache/, dataset/, bench/, runs/, report.html, gallery.html).
        small: tiny scenes (seconds) instead of realistic sizes.
        workers: parallel processes for synth, prepare and generate.
        seed: master seed of every stage.
        max_per_subtask: records per subtask and split written by generate.
        bench_per_subtask: benchmark items per benchmark-subtask key.
        gallery_per_subtask: sample cards per subtask in the gallery.
        views: images per N-view question.
    """

    out: Path = Path("demo_out")
    small: bool = False
    workers: int = 2
    seed: int = 0
    max_per_subtask: int = 300
    bench_per_subtask: int = 50
    gallery_per_subtask: int = 2
    views: int = DEFAULT_VIEWS


@dataclass
class DemoOutputs:
    """What a demo run wrote, and the baselines' scores (the runs' ``scores.json``)."""

    dataset: Path
    bench: Path
    runs: dict[str, Path]
    report: Path
    markdown: Path
    gallery: Path
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _Stages:
    """Numbered stage banners and per-stage wall times."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.number = 0
        self.seconds: dict[str, float] = {}
        self._name: str | None = None
        self._start = 0.0

    def start(self, name: str, detail: str) -> None:
        self.stop()
        self.number += 1
        self._name, self._start = name, time.perf_counter()
        self.echo(f"[{self.number}/{_STAGES}] {name}: {detail}")

    def stop(self) -> None:
        if self._name is not None:
            self.seconds[self._name] = time.perf_counter() - self._start
            self._name = None


def run_demo(config: DemoConfig, echo: Callable[[str], None] = click.echo) -> DemoOutputs:
    """Run every stage into ``config.out`` and return what was written.

    Raises:
        MultispaError: a stage failed (a scene that cannot be read, a failed unit).
    """
    out = config.out
    check_output_dir(out)
    stages = _Stages(echo)
    data = out / "data"
    stages.start("synth", f"synthetic ScanNet scenes and TAPVid-3D clips -> {data}")
    run_synth(data, SynthConfig(
        clips=DEMO_CLIPS, seed=config.seed, small=config.small, workers=config.workers,
    ))

    stages.start("inspect", "what the readers see")
    failures = inspect_paths(data / "scannet", data / "tapvid3d", frame_skip=5)
    if failures:
        raise MultispaError(f"{failures} synthetic scene(s)/clip(s) could not be read")

    cache = out / "cache"
    stages.start("prepare", f"visibility, overlaps, boxes, tracks -> {cache}")
    prepared = prepare(PrepareConfig(
        cache=cache, scannet=data / "scannet", tapvid3d=data / "tapvid3d", workers=config.workers,
    ))
    print_prepare_summary(prepared)
    if prepared.count("failed"):
        raise MultispaError(f"prepare: {prepared.count('failed')} unit(s) failed (see above)")

    dataset = out / "dataset"
    stages.start("generate", f"all {len(SUBTASKS)} subtasks, train and val -> {dataset}")
    generated = generate(GenerateConfig(
        cache=cache, out=dataset, max_per_subtask=config.max_per_subtask, seed=config.seed,
        workers=config.workers, settings=GenerateSettings(views=config.views),
    ))
    print_generate_summary(generated)
    failed = [r for r in generated.results if r.status == "failed"]
    if failed:
        raise MultispaError(f"generate: {len(failed)} unit(s) failed (see above)")

    bench = out / "bench"
    stages.start("bench build", f"frozen benchmark from the val split -> {bench}")
    print_bench_summary(build_bench(
        dataset, bench, per_subtask=config.bench_per_subtask, seed=config.seed,
    ))

    runs: dict[str, Path] = {}
    scores: dict[str, dict[str, Any]] = {}
    stages.start("eval", f"baselines {', '.join(DEMO_BASELINES)} (statistics from the train split)")
    for name in DEMO_BASELINES:
        runs[name] = out / "runs" / name
        scores[name] = run_eval(
            bench, parse_model_spec(f"baseline:{name}"), runs[name], prior_from=dataset,
            seed=config.seed, force=True, progress=False,
        )

    report, markdown = out / "report.html", out / "report.md"
    stages.start("report", f"{report} and {markdown}")
    loaded = load_runs([runs[name] for name in DEMO_BASELINES])
    write_html(loaded, report, title="MultiSPA demo: baselines on the synthetic benchmark")
    write_output_file(markdown, markdown_table(loaded))

    gallery = out / "gallery.html"
    stages.start("gallery", f"sample cards and dataset statistics -> {gallery}")
    from multispa.viz.gallery import write_gallery

    write_gallery(dataset, gallery, per_subtask=config.gallery_per_subtask, seed=config.seed)
    stages.stop()
    return DemoOutputs(dataset=dataset, bench=bench, runs=runs, report=report,
                       markdown=markdown, gallery=gallery, scores=scores,
                       seconds=stages.seconds)


def format_demo_table(outputs: DemoOutputs) -> str:
    """The baselines' row accuracies side by side (percent), then the Average; then the N-view
    subtasks and their N-view average when the benchmark has N-view items."""
    names = list(outputs.scores)
    first = outputs.scores[names[0]]
    lines = [f"{'Row':<28}" + "".join(f"{name:>9}" for name in names)]
    for index, row in enumerate(first["rows"]):
        cells = []
        for name in names:
            value = outputs.scores[name]["rows"][index]["accuracy_pct"]
            cells.append(f"{'-':>9}" if value is None else f"{value:9.1f}")
        lines.append(f"{row['short_name']:<28}" + "".join(cells))
    averages = [outputs.scores[name]["summary"]["average_pct"] for name in names]
    lines.append(f"{'Average':<28}" + "".join(
        f"{'-':>9}" if value is None else f"{value:9.1f}" for value in averages))
    nview = [outputs.scores[name].get("nview") or {} for name in names]
    if any(section.get("average_pct") is not None for section in nview):
        lines.append("")
        for index, row in enumerate(nview[0].get("subtasks") or []):
            values = [section["subtasks"][index]["accuracy_pct"] for section in nview]
            lines.append(f"{row['name']:<28}" + "".join(
                f"{'-':>9}" if value is None else f"{value:9.1f}" for value in values))
        lines.append(f"{'N-view average':<28}" + "".join(
            f"{'-':>9}" if section.get("average_pct") is None
            else f"{section['average_pct']:9.1f}" for section in nview))
    return "\n".join(lines)


@click.command("demo")
@click.option("--out", default=Path("demo_out"), type=click.Path(path_type=Path), show_default=True)
@click.option("--small", is_flag=True, help="Tiny scenes (seconds) instead of realistic sizes.")
@click.option("--workers", default=2, show_default=True, help="Parallel processes.")
@click.option("--seed", default=0, show_default=True, help="Master seed.")
@click.option(
    "--max-per-subtask", default=300, show_default=True, help="Records per subtask and split."
)
@click.option("--bench-per-subtask", default=50, show_default=True,
              help="Benchmark items per benchmark-subtask key.")
@click.option("--gallery-per-subtask", default=2, show_default=True,
              help="Sample cards per subtask in the gallery.")
@click.option("--views", type=click.IntRange(MIN_VIEWS, MAX_VIEWS), default=DEFAULT_VIEWS,
              show_default=True, help="Images per N-view question.")
def demo(out: Path, small: bool, workers: int, seed: int, max_per_subtask: int,
         bench_per_subtask: int, gallery_per_subtask: int, views: int) -> None:
    """Synthetic data → caches → MultiSPA records → benchmark → baselines → report + gallery."""
    started = time.perf_counter()
    outputs = run_demo(DemoConfig(
        out=out, small=small, workers=workers, seed=seed, max_per_subtask=max_per_subtask,
        bench_per_subtask=bench_per_subtask, gallery_per_subtask=gallery_per_subtask,
        views=views,
    ))
    click.echo("")
    click.echo("Baselines on the synthetic benchmark (accuracy %):")
    click.echo(format_demo_table(outputs))
    click.echo("")
    timings = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in outputs.seconds.items())
    click.echo(f"stage times: {timings}; total {time.perf_counter() - started:.1f}s")
    click.echo(f"dataset:  {outputs.dataset} (InternVL meta files: meta_train.json, meta_val.json)")
    click.echo(f"bench:    {outputs.bench}")
    click.echo(f"report:   {outputs.report.resolve()}")
    click.echo(f"gallery:  {outputs.gallery.resolve()}")

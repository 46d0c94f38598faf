"""Dataset statistics and the HTML gallery (``multispa gallery``).

The gallery is built once per module from a copy of ``small_dataset``'s JSONL files (images
linked, not copied) whose ``val`` split lacks one subtask, so the fallback to ``train`` is
exercised. The page must be self-contained (only ``data:`` images, no external references) and,
in headless Chromium (Debian package ``chromium``; skipped with a message when absent), every
image must load; a small checker script, allowed by its hash in the page's CSP, writes the result
into the DOM before ``--dump-dom``.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

from browser import dump_dom
from multispa.cli import main
from multispa.errors import ConfigError
from multispa.tasks.templates import BENCHMARK_SUBTASKS
from multispa.viz.gallery import choose_ids, render_gallery
from multispa.viz.records import RecordSource
from multispa.viz.stats import collect_stats, stats_figures

DROPPED = "depth_estimation_coord"  # removed from the copy's val split


def _line_counts(dataset: Path) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for split in ("train", "val"):
        for path in (dataset / split).glob("*/*.jsonl"):
            subtask, _, source = path.name[: -len(".jsonl")].partition(".")
            key = f"{subtask}:{source}" if source else subtask
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line]
            counts.setdefault(split, {})[key] = len(lines)
    return counts


@pytest.fixture(scope="module")
def dataset(small_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """JSONL files of ``small_dataset`` copied (val without DROPPED), images symlinked."""
    root = tmp_path_factory.mktemp("viz_gallery") / "dataset"
    for split in ("train", "val"):
        for path in (small_dataset / split).glob("*/*.jsonl"):
            if split == "val" and path.name == f"{DROPPED}.jsonl":
                continue
            target = root / split / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    (root / "images").symlink_to(small_dataset / "images", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def page(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("viz_page") / "gallery.html"
    runner = CliRunner()
    result = runner.invoke(main, ["gallery", str(dataset), "--out", str(out),
                                  "--per-subtask", "1", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (")
    return out


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(text: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(text)
    return parser.tags


# ------------------------------------------------------------------------------- stats


def test_counts_equal_jsonl_line_counts(dataset: Path) -> None:
    stats = collect_stats(dataset)
    expected = _line_counts(dataset)
    assert stats.counts == expected
    assert DROPPED not in stats.counts["val"] and DROPPED in stats.counts["train"]
    assert list(stats.counts["train"]) == [k for k in BENCHMARK_SUBTASKS
                                           if k in stats.counts["train"]]
    assert stats.sampled == {s: sum(v.values()) for s, v in expected.items()}


def test_distributions_deduplicate_pairs_and_objects(dataset: Path) -> None:
    stats = collect_stats(dataset)
    pairs: dict[tuple[Any, ...], float] = {}
    objects: set[tuple[Any, ...]] = set()
    depths: list[float] = []
    answers: dict[str, int] = {}
    for path in (dataset / "val").glob("*/*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            meta = record["meta"]
            if "overlap" in meta:
                pairs.setdefault((meta["scene"], tuple(sorted(meta["frames"]))), meta["overlap"])
            if "dims_mm" in meta:
                objects.add((meta["scene"], meta["object_id"]))
            if record["task"] == "depth":
                depths += meta["depth_mm"]
            if record["subtask"] == "camera_x_direction":
                answers[record["gt"]] = answers.get(record["gt"], 0) + 1
    assert sorted(stats.overlap_pct["val"]) == sorted(pairs.values())
    assert len(stats.object_dims_mm["val"]) == len(objects) > 0
    assert sorted(stats.depth_mm["val"]) == sorted(depths)
    assert stats.answers["val"]["camera_x_direction"] == answers
    assert all(v >= 0 for v in stats.yaw_deg["val"] + stats.camera_distance_mm["val"])
    limited = collect_stats(dataset, sample_per_file=1)
    assert limited.sampled["val"] == len(limited.counts["val"])
    figures = stats_figures(stats)
    assert [title for title, _ in figures] == [
        "Records per subtask", "Overlap of sampled pairs",
        "Distances, angles, depths and sizes", "Answer balance"]
    for _, png in figures:
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and image.width == 900 and image.height > 200


def test_bench_counts_and_stats(small_bench: Path) -> None:
    manifest = json.loads((small_bench / "manifest.json").read_text(encoding="utf-8"))
    stats = collect_stats(small_bench)
    counts = manifest["counts"]
    assert stats.counts == {"bench": {k: v for k, v in counts.items() if v}}
    assert RecordSource(small_bench).splits == ("bench",)


# ------------------------------------------------------------------------------ choice


def test_choose_ids_is_deterministic_and_falls_back() -> None:
    ids = {"val": {"camera_x_direction": [f"v{i}" for i in range(10)]},
           "train": {"camera_x_direction": ["t0"], "object_size_width": ["t1", "t2", "t3"]}}
    first = choose_ids(ids, "val", 2, seed=1)
    assert first == choose_ids(ids, "val", 2, seed=1)
    assert list(first) == list(BENCHMARK_SUBTASKS)
    used, picked = first["camera_x_direction"]
    assert used == "val" and len(set(picked)) == 2 and set(picked) <= set(ids["val"][
        "camera_x_direction"])
    assert first["object_size_width"][0] == "train" and len(first["object_size_width"][1]) == 2
    assert first["depth_estimation_dot"] == ("val", [])
    seeds = {tuple(choose_ids(ids, "val", 2, seed=s)["camera_x_direction"][1])
             for s in range(6)}
    assert len(seeds) > 1  # the seed matters


def test_bad_gallery_options(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="split 'test'"):
        render_gallery(dataset, split="test", per_subtask=0)
    with pytest.raises(ConfigError, match="per_subtask"):
        render_gallery(dataset, per_subtask=-1)


# ----------------------------------------------------------------------------- gallery


def test_gallery_is_self_contained(page: Path, dataset: Path) -> None:
    text = page.read_text(encoding="utf-8")
    tags = _tags(text)
    images = [attrs for tag, attrs in tags if tag == "img"]
    plots = [a for a in images if (a.get("src") or "").startswith("data:image/png;base64,")]
    cards = [a for a in images if (a.get("src") or "").startswith("data:image/jpeg;base64,")]
    assert len(plots) == 4 and len(plots) + len(cards) == len(images)
    assert len(cards) == len(BENCHMARK_SUBTASKS)  # one per key (DROPPED from train)
    for attrs in cards[:3]:
        data = base64.b64decode((attrs["src"] or "").split(",", 1)[1])
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "JPEG" and image.width <= 1100
            assert (image.width, image.height) == (int(attrs["width"] or 0),
                                                   int(attrs["height"] or 0))
    assert not [tag for tag, _ in tags if tag in ("script", "link", "iframe", "object", "embed")]
    for _, attrs in tags:
        for name, value in attrs.items():
            if name in ("href", "src", "action", "srcset", "poster"):
                assert value is not None and (value.startswith(("#", "data:"))), (name, value)
    without_data = re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"https?:|file:|url\(|@import", without_data)
    assert "No val records for this key: cards from train." in text
    assert f'id="k-{DROPPED}"' in text
    # counts table: every key with its counts, and the total
    counts = _line_counts(dataset)
    total = sum(sum(v.values()) for v in counts.values())
    assert '<tr class="total"><th scope="row">Total</th>' in text and f">{total}</td>" in text


def test_gallery_escapes_record_text(dataset: Path, tmp_path: Path) -> None:
    source = dataset / "val" / "camera_movement" / "camera_x_direction.jsonl"
    record = json.loads(source.read_text(encoding="utf-8").splitlines()[0])
    record["conversations"][0]["value"] += "<script>alert(1)</script>"
    record["id"] += "<b>"
    evil = tmp_path / "evil"
    path = evil / "val" / "camera_movement" / "camera_x_direction.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    (evil / "images").symlink_to(dataset / "images", target_is_directory=True)
    text = render_gallery(evil, per_subtask=1, seed=0)
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;" in text
    assert text.count('src="data:image/jpeg;base64,') == 1


_CHECKER = ("window.addEventListener('load', function () {"
            " var all = document.images, ok = 0;"
            " for (var i = 0; i < all.length; i++) {"
            " if (all[i].complete && all[i].naturalWidth > 0) { ok += 1; } }"
            " document.body.setAttribute('data-images', ok + '/' + all.length); });")


def test_gallery_images_load_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(_CHECKER.encode()).digest()).decode("ascii")
    assert "script-src" not in text  # the page itself runs no script
    text = text.replace("default-src &#x27;none&#x27;;",
                        f"default-src &#x27;none&#x27;; script-src &#x27;sha256-{digest}&#x27;;")
    assert f"sha256-{digest}" in text
    checked = tmp_path / "checked.html"
    checked.write_text(text.replace("</body>", f"<script>{_CHECKER}</script></body>"),
                       encoding="utf-8")
    dom = dump_dom(checked, tmp_path / "p", budget_ms=5000)
    images = len([t for t, _ in _tags(text) if t == "img"])
    assert f'data-images="{images}/{images}"' in dom

"""Report tests: a hand-built BENCH and two RUN folders → HTML page and Markdown table.

The page is checked as text (escaping, the 12 rows + Average, runs and published models) and
rendered in headless Chromium (Debian package ``chromium``): the dumped DOM must hold the table,
the page's own script must have run, and the injected markup must show as text without running.
"""

from __future__ import annotations

import html
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
from multispa.cli.report import report_command
from multispa.errors import FormatError, MissingFileError
from multispa.formats import gt_text
from multispa.metrics.rows import REFERENCE_AVERAGES, REFERENCE_MODELS, REFERENCE_ROWS, ROWS
from multispa.metrics.score import score_records
from multispa.report import load_bench, load_runs, markdown_table, render_html
from multispa.report.html import json_for_script

TITLE = "MultiSPA test report"
SCRIPT_PAYLOAD = "<script>document.body.dataset.pwned=1</script>"
IMG_PAYLOAD = "\"><img src=x onerror=\"document.title='pwned'\">"
ALERT_PAYLOAD = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>"
EVIL_LABEL = "<b>evil</b> model"

# (id, subtask, answer_type, gt, images, extra fields)
_ITEMS: list[tuple[str, str, str, Any, int, dict[str, Any]]] = [
    ("val-camera_x_direction-a", "camera_x_direction", "label", "left", 2, {}),
    ("val-correspondence_mcq_dot-a", "correspondence_mcq_dot", "choice", "B", 2, {}),
    ("val-depth_estimation_dot-a", "depth_estimation_dot", "scalar", 1834, 1, {}),
    ("val-camera_translation_vector-a", "camera_translation_vector", "vector", [245, -38, 912],
     2, {}),
    ("val-correspondence_coord-a", "correspondence_coord", "coord", [412, 655], 2, {}),
    ("val-object_movement_distance_dot-adt-a", "object_movement_distance_dot", "scalar", 300, 2,
     {"source": "tapvid3d/adt", "track": {"point_moving": True}}),
    ("val-object_movement_vector_coord-pstudio-a", "object_movement_vector_coord", "vector",
     [0, 0, 0], 2, {"source": "tapvid3d/pstudio", "track": {"point_moving": False}}),
    ("val-object_size_height-a", "object_size_height", "scalar", 800, 2, {}),
]
_TASK = {"camera": "camera_movement", "correspondence": "correspondence", "depth": "depth",
         "object": "object_movement"}


def make_bench(root: Path) -> Path:
    """A BENCH folder with the items above and small JPEGs (distinct colours); returns it."""
    bench = root / "bench"
    (bench / "images").mkdir(parents=True)
    lines = []
    for number, (rid, subtask, answer_type, gt, n_images, meta_extra) in enumerate(_ITEMS):
        images = []
        for k in range(n_images):
            rel = f"scannet/scene{number:04d}_00/{k:05d}.jpg"
            path = bench / "images" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            colour = ((40 * number) % 256, (90 * k + 60) % 256, 200 - 20 * number)
            Image.new("RGB", (64 + 8 * k, 48), colour).save(path, format="JPEG", quality=90)
            images.append(rel)
        prefix = ("<image>\n" if n_images == 1
                  else "".join(f"Image-{k + 1}: <image>\n" for k in range(n_images)))
        task = "object_size" if subtask.startswith("object_size") else _TASK[subtask.split("_")[0]]
        item = {
            "id": rid, "image": images, "text": f"{prefix}Question about {subtask}?",
            "answer": f"It is `{gt}`.", "gt": gt, "answer_type": answer_type, "task": task,
            "subtask": subtask, "width_list": [64 + 8 * k for k in range(n_images)],
            "height_list": [48] * n_images,
            "meta": {"source": "scannet", "points": [[] for _ in range(n_images)],
                     **meta_extra},
        }
        lines.append(json.dumps(item))
    (bench / "bench.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    manifest = {"format": "multispa-bench/1", "content_sha256": "0" * 64,
                "counts": {}, "source": "synthetic", "seed": 0, "per_subtask": 300}
    (bench / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return bench


RESPONSES_A = {
    "val-camera_x_direction-a": f"{SCRIPT_PAYLOAD}{IMG_PAYLOAD} The camera moved `left`.",
    "val-correspondence_mcq_dot-a": "The matching point is `B`.",
    "val-depth_estimation_dot-a": "About `1.9` m away.",
    "val-camera_translation_vector-a": "`[ 250 , -40 , 900 ]` mm",
    "val-correspondence_coord-a": "`[ 415 , 650 ]`",
    "val-object_movement_distance_dot-adt-a": "`290` mm",
    "val-object_movement_vector_coord-pstudio-a": "`[ 3 , 0 , -4 ]` mm",
    "val-object_size_height-a": "`1500` mm",
}
RESPONSES_B = {
    "val-camera_x_direction-a": "I think it went `right`.",
    "val-correspondence_mcq_dot-a": ALERT_PAYLOAD,
    "val-depth_estimation_dot-a": "`1834` mm",
    "val-camera_translation_vector-a": "no idea",
    "val-correspondence_coord-a": "`[ 100 , 100 ]`",
    "val-object_movement_distance_dot-adt-a": "`300` mm",
}


def make_run(root: Path, name: str, bench: Path, responses: dict[str, str],
             model: str) -> Path:
    """A RUN folder scored with :func:`score_records` on the bench's items."""
    run = root / name
    run.mkdir()
    items = load_bench(bench).items
    scores = score_records(items, responses, bootstrap=200, seed=1)
    (run / "scores.json").write_text(json.dumps(scores), encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"model": model, "bench": str(bench)}),
                                     encoding="utf-8")
    with (run / "results.jsonl").open("w", encoding="utf-8") as handle:
        for record in scores["records"]:
            handle.write(json.dumps({
                "id": record["id"], "benchmark_key": record["key"],
                "response": responses.get(record["id"]), "parsed": record["parsed"],
                "reason": record["reason"], "correct": record["correct"], "mra": record["mra"],
            }) + "\n")
    return run


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("report")
    bench = make_bench(root)
    run_a = make_run(root, "run_a", bench, RESPONSES_A, "baseline:oracle")
    run_b = make_run(root, "run_b", bench, RESPONSES_B, EVIL_LABEL)
    runs = load_runs([run_a, run_b])
    page = render_html(runs, title=TITLE)
    out = root / "report.html"
    out.write_text(page, encoding="utf-8")
    return {"root": root, "bench": bench, "runs": runs, "page": page, "out": out,
            "run_dirs": [run_a, run_b]}


class _TableRows(HTMLParser):
    """Row header texts and cell texts of ``<table class="main-table">``."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.in_body = False
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "main-table") in attrs:
            self.depth = 1
        elif self.depth and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.rows.append([])
        elif self.in_body and tag in ("th", "td"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self.in_body and tag in ("th", "td") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self.in_body = False
        elif tag == "table":
            self.depth = 0

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _main_rows(page: str) -> list[list[str]]:
    parser = _TableRows()
    parser.feed(page)
    return parser.rows


def test_table_has_12_rows_average_runs_and_published(setup: dict[str, Any]) -> None:
    page, runs = setup["page"], setup["runs"]
    rows = _main_rows(page)
    assert len(rows) == 13
    assert [r[0] for r in rows[:12]] == [f"{i}{row.name}" for i, row in enumerate(ROWS, 1)]
    assert rows[12][0] == "Average"
    # run A's depth value row: accuracy and CI as in scores.json; published figures after
    scores_a = runs[0].scores
    for i, row in enumerate(ROWS):
        stats = scores_a["rows"][i]
        cell = rows[i][1]
        if stats["accuracy_pct"] is None:
            assert cell == "–"
        else:
            assert cell.startswith(f"{stats['accuracy_pct']:.2f}")
        assert rows[i][3:] == [f"{REFERENCE_ROWS[m][row.key]:.2f}" for m in REFERENCE_MODELS]
    assert rows[12][3:] == [f"{REFERENCE_AVERAGES[m]:.2f}" for m in REFERENCE_MODELS]
    assert rows[12][1].startswith(f"{scores_a['summary']['average_pct']:.2f}")
    for name in (*REFERENCE_MODELS, "baseline:oracle", html.escape(EVIL_LABEL)):
        assert name in page
    assert "published" in page and "different items" in page


def test_page_escapes_model_text_and_is_self_contained(setup: dict[str, Any]) -> None:
    page = setup["page"]
    # raw markup of the payloads never appears; the run label is escaped by Python
    for raw in ("<script>document", "<script>alert", "<img src=x", "<b>evil"):
        assert raw not in page
    assert "&lt;b&gt;evil&lt;/b&gt; model" in page
    # the payloads are in the JSON data block, escaped for </script>
    assert json_for_script(SCRIPT_PAYLOAD).strip('"') in page
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    assert page.count("<script") == 2  # the data block and the page's own script
    # no network resources at all; images are data URLs
    assert not re.search(r"(src|href)=[\"']?(https?:|//)", page)
    assert "http://" not in page.replace("http-equiv", "")
    assert "https://" not in page
    assert "Content-Security-Policy" in page
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    assert len(data["items"]) == 8
    assert all(u.startswith("data:image/jpeg;base64,") for u in data["images"])
    assert len(data["images"]) == 15  # distinct bench images
    first = next(i for i in data["items"] if i["id"] == "val-camera_x_direction-a")
    assert first["out"][0][3] == RESPONSES_A["val-camera_x_direction-a"]
    assert first["out"][0][:2] == [1, "left"] and first["out"][1][:2] == [0, "right"]
    assert first["gt"] == "left" and first["q"].startswith("Image-1:\nImage-2:\nQuestion")


def test_thumbnails_are_downscaled(tmp_path: Path) -> None:
    bench = make_bench(tmp_path)
    big = bench / "images" / "scannet" / "scene0000_00" / "00000.jpg"
    Image.new("RGB", (1296, 968), (10, 120, 200)).save(big, format="JPEG", quality=95)
    run = make_run(tmp_path, "run", bench, RESPONSES_A, "m")
    page = render_html(load_runs([run]), thumb_width_px=320)
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', page, re.S).group(1))
    import base64
    import io

    sizes = []
    for url in data["images"]:
        raw = base64.b64decode(url.split(",", 1)[1])
        with Image.open(io.BytesIO(raw)) as image:
            sizes.append(image.size)
    assert (320, 239) in sizes
    assert max(w for w, _ in sizes) == 320


def test_markdown_table_numbers_match_scores(setup: dict[str, Any]) -> None:
    runs = setup["runs"]
    text = markdown_table(runs)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + 12 + 1  # header, 12 rows, Average
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[1] == "baseline:oracle" and header[2] == r"\<b\>evil\</b\> model"
    assert header[3:] == [f"{m} †" for m in REFERENCE_MODELS]
    for line, row in zip(lines[1:13], ROWS, strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == row.short_name
        for run, cell in zip(runs, cells[1:3], strict=True):
            stats = next(r for r in run.scores["rows"] if r["key"] == row.key)
            value = stats["accuracy_pct"]
            assert cell == ("–" if value is None else f"{value:.2f}")
        assert cells[3:] == [f"{REFERENCE_ROWS[m][row.key]:.2f}" for m in REFERENCE_MODELS]
    average = [c.strip() for c in lines[13].strip("|").split("|")]
    assert average[0] == "**Average**"
    for run, cell in zip(runs, average[1:3], strict=True):
        summary = run.scores["summary"]
        star = "" if summary["average_complete"] else "*"
        assert cell == f"**{summary['average_pct']:.2f}{star}**"
    assert average[3:] == [f"**{REFERENCE_AVERAGES[m]:.2f}**" for m in REFERENCE_MODELS]
    assert "Published in the paper" in text


def test_cli_writes_html_and_markdown(setup: dict[str, Any], tmp_path: Path) -> None:
    out, md = tmp_path / "r.html", tmp_path / "t.md"
    result = CliRunner().invoke(report_command, [*map(str, setup["run_dirs"]), "--out", str(out),
                                                 "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count("<tr") >= 13
    assert md.read_text(encoding="utf-8") == markdown_table(setup["runs"])


def test_run_without_results_or_bench_uses_scores_records(setup: dict[str, Any],
                                                          tmp_path: Path) -> None:
    run = tmp_path / "bare"
    shutil.copytree(setup["run_dirs"][1], run)
    (run / "results.jsonl").unlink()
    (run / "config.json").write_text("{}", encoding="utf-8")
    [loaded] = load_runs([run])
    assert loaded.label == "bare" and loaded.bench is None
    assert len(loaded.outcomes) == 8
    assert loaded.outcomes["val-depth_estimation_dot-a"]["correct"] is True
    page = render_html([loaded])
    assert len(_main_rows(page)) == 13
    assert "<script>alert" not in page
    assert gt_text({"answer_type": "vector", "gt": [1, 2, 3]}) == "[ 1 , 2 , 3 ]"


def test_bad_inputs_raise_project_errors_naming_the_file(tmp_path: Path) -> None:
    bench = make_bench(tmp_path)
    lines = (bench / "bench.jsonl").read_text(encoding="utf-8").splitlines()
    item = json.loads(lines[0])
    item["image"] = ["../../etc/passwd"]
    (bench / "bench.jsonl").write_text("\n".join([json.dumps(item), *lines[1:]]) + "\n",
                                       encoding="utf-8")
    with pytest.raises(FormatError, match=r"bench\.jsonl.*without '\.\.'"):
        load_bench(bench)
    (bench / "manifest.json").write_text('{"format": "other/2"}', encoding="utf-8")
    with pytest.raises(FormatError, match=r"manifest\.json: format 'other/2', expected"):
        load_bench(bench)
    run = tmp_path / "run"
    run.mkdir()
    with pytest.raises(MissingFileError, match=r"scores\.json"):
        load_runs([run])
    (run / "scores.json").write_text('{"summary": {}}', encoding="utf-8")
    with pytest.raises(FormatError, match=r"scores\.json: no 'rows'"):
        load_runs([run])
    with pytest.raises(ValueError, match="at least one run"):
        render_html([])


# ---------------------------------------------------------------------------- chromium


def test_page_renders_in_headless_chromium_without_running_injected_code(
    setup: dict[str, Any], tmp_path: Path,
) -> None:
    dom = dump_dom(setup["out"], tmp_path / "profile")
    # the page's own script ran and built the browser
    assert 'data-report-ready="1"' in dom
    assert dom.count('class="item ') == 8
    assert '<select id="f-run">' in dom and "<h2>Item browser</h2>" in dom
    assert '<option value="1">&lt;b&gt;evil&lt;/b&gt; model</option>' in dom
    assert "8 matching · 8 items in this page · 8 in the benchmark" in dom
    # the 12-row table is in the rendered DOM
    assert len(_main_rows(dom)) == 13
    # the injected code did not run: title unchanged, no pwned marker, no injected elements
    assert f"<title>{TITLE}</title>" in dom
    assert "pwned=\"" not in dom and "data-pwned" not in dom
    assert "<img src=\"x\"" not in dom and "<img src=x" not in dom
    assert "<script>document.body" not in dom and "<script>alert" not in dom
    # ... and it is shown as text
    assert html.escape(SCRIPT_PAYLOAD, quote=False) in dom
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert "&lt;b&gt;evil&lt;/b&gt; model" in dom

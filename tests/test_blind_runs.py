"""Blind runs (``multispa eval --blind``) against the local chat server, their vision gain in the
Markdown and HTML reports, and Markdown escaping of run names."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from multispa.cli import main
from multispa.errors import ConfigError
from multispa.evaluate.backends.base import BLIND_NOTE, DEFAULT_INSTRUCTION, prompt_text
from multispa.evaluate.bench import load_bench
from multispa.evaluate.runner import run_eval, select_items
from multispa.formats import gt_text
from multispa.metrics.rows import ROWS
from multispa.report import load_runs, markdown_table, render_html
from multispa.report.markdown import escape_markdown
from multispa.report.vision import arrange_runs, format_gain

pytest.importorskip("httpx")
from chat_server import ChatServer, Reply, SeenRequest

LIMIT = 2


class _Answers:
    """Sighted requests get the item's ground truth (found by its images and text); blind
    requests get `left`, whatever the question (right only for some direction items)."""

    def __init__(self, bench: Path) -> None:
        self.by_prompt: dict[tuple[tuple[bytes, ...], str], str] = {}
        for item in select_items(load_bench(bench), LIMIT):
            images = tuple((bench / "images" / rel).read_bytes() for rel in item["image"])
            text = f"{prompt_text(item['text'])}\n{DEFAULT_INSTRUCTION}"
            self.by_prompt[(images, text)] = gt_text(item)

    def __call__(self, request: SeenRequest) -> Reply:
        if not request.images:
            return Reply(content="Without the images I would say `left`.")
        return Reply(content=f"It is `{self.by_prompt[(tuple(request.images), request.text)]}`.")


@pytest.fixture(scope="module")
def runs(small_bench: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("blind")
    out: dict[str, Any] = {"root": root}
    with ChatServer(_Answers(small_bench)) as server:
        model = f"openai:tiny-vlm@{server.url}"
        for name, extra in (("sighted", []), ("blind", ["--blind"])):
            result = CliRunner().invoke(main, [
                "eval", "--bench", str(small_bench), "--model", model, "--out",
                str(root / name), "--limit", str(LIMIT), "--concurrency", "4", *extra,
            ], env={"OPENAI_API_KEY": None})
            assert result.exit_code == 0, result.output + repr(result.exception)
            out[f"{name}_requests"] = list(server.requests)
            server.requests.clear()
        assert server.problems == []
    run_eval(small_bench, "baseline:prior", root / "prior", limit=LIMIT, progress=False,
             bootstrap=50)
    out["model"] = model
    out["items"] = select_items(load_bench(small_bench), LIMIT)
    return out


def test_blind_sends_zero_images_and_says_so(runs: dict[str, Any]) -> None:
    items = runs["items"]
    blind, sighted = runs["blind_requests"], runs["sighted_requests"]
    assert len(blind) == len(sighted) == len(items)
    assert all(request.images == [] for request in blind)
    assert sum(len(r.images) for r in sighted) == sum(len(i["image"]) for i in items) > 0
    questions = sorted(f"{prompt_text(i['text'])}\n{DEFAULT_INSTRUCTION}" for i in items)
    assert sorted(r.text for r in sighted) == questions
    assert sorted(r.text for r in blind) == sorted(f"{BLIND_NOTE}\n{q}" for q in questions)
    assert BLIND_NOTE.count(".") == 1 and "<image>" not in BLIND_NOTE


def test_blind_is_recorded_and_is_part_of_the_identity(runs: dict[str, Any],
                                                      small_bench: Path) -> None:
    root = runs["root"]
    blind = json.loads((root / "blind" / "config.json").read_text(encoding="utf-8"))
    sighted = json.loads((root / "sighted" / "config.json").read_text(encoding="utf-8"))
    assert blind["blind"] is True and blind["identity"]["blind"] is True
    assert sighted["blind"] is False and "blind" not in sighted["identity"]
    scores = json.loads((root / "blind" / "scores.json").read_text(encoding="utf-8"))
    assert scores["run"]["blind"] is True
    with pytest.raises(ConfigError, match="blind"):
        run_eval(small_bench, "baseline:prior", root / "prior", limit=LIMIT, blind=True,
                 progress=False)


def _gain(sighted: dict[str, Any], blind: dict[str, Any], key: str) -> float | None:
    if key == "average":
        a, b = sighted["summary"]["average_pct"], blind["summary"]["average_pct"]
    else:
        a = next(r for r in sighted["rows"] if r["key"] == key)["accuracy_pct"]
        b = next(r for r in blind["rows"] if r["key"] == key)["accuracy_pct"]
    return None if a is None or b is None else a - b


def test_markdown_puts_the_blind_run_beside_its_sighted_run(runs: dict[str, Any]) -> None:
    root, model = runs["root"], runs["model"]
    loaded = load_runs([root / "blind", root / "prior", root / "sighted"])
    assert [r.label for r in arrange_runs(loaded)] == [
        "baseline:prior", model, f"{model} (blind)"]
    text = markdown_table(loaded)
    lines = [line for line in text.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split(" | ")]
    assert header[:5] == ["Row", "baseline:prior (floor)", model, f"{model} (blind)",
                          f"Vision gain ({model})"]
    sighted, blind = (json.loads((root / n / "scores.json").read_text(encoding="utf-8"))
                      for n in ("sighted", "blind"))
    assert sighted["summary"]["accuracy_pct"] == 100.0  # the server answers what it sees
    gains = []
    for line, row in zip(lines[1:13], ROWS, strict=True):
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        gain = _gain(sighted, blind, row.key)
        assert cells[4] == format_gain(gain)
        gains.append(gain)
    assert any(g is not None and 0 < g < 100 for g in gains)  # `left` is right sometimes
    average = [c.strip() for c in lines[13].strip("|").split(" | ")]
    assert average[4] == f"**{format_gain(_gain(sighted, blind, 'average'))}**"
    assert "Vision gain: sighted minus blind" in text and "(floor): the baseline:prior" in text
    without_floor = markdown_table(load_runs([root / "sighted", root / "blind"]))
    assert "Add a baseline:prior run" in without_floor


class _Tables(HTMLParser):
    """Cell texts of the body rows of every ``<table>``, by its class attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._current: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._current = self.tables.setdefault(dict(attrs).get("class") or "", [])
        elif tag == "tr" and self._current is not None:
            self._current.append([])
        elif tag in ("th", "td") and self._current is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None and self._current is not None:
            self._current[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_html_report_has_the_vision_gain_section(runs: dict[str, Any]) -> None:
    root, model = runs["root"], runs["model"]
    page = render_html(load_runs([root / "prior", root / "blind", root / "sighted"]),
                       items_per_key=1)
    assert '<section id="vision">' in page and "Images</dt><dd>withheld (blind run)" in page
    parser = _Tables()
    parser.feed(page)
    table = parser.tables["sub-table vision-table"]
    assert table[0][1] == model  # the pair's group header
    assert table[1] == ["Row", "Sighted", "Blind", "Vision gain", "Floor (prior)"]
    sighted, blind, prior = (json.loads((root / n / "scores.json").read_text(encoding="utf-8"))
                             for n in ("sighted", "blind", "prior"))
    for cells, row in zip(table[2:14], ROWS, strict=True):
        assert cells[0] == row.name
        assert cells[3] == format_gain(_gain(sighted, blind, row.key))
        floor = next(r for r in prior["rows"] if r["key"] == row.key)["accuracy_pct"]
        assert cells[4] == ("–" if floor is None else f"{floor:.2f}")
    assert table[14][0] == "Average"
    assert table[14][3] == format_gain(_gain(sighted, blind, "average"))
    # the main table: the blind run's column follows its sighted run's
    heads = re.findall(r'<th class="num run-col"[^>]*><span class="swatch"></span>([^<]*)</th>',
                       page)
    # (the N-view table, when the benchmark has N-view items, repeats the same run columns)
    assert heads and heads == ["baseline:prior", model, f"{model} (blind)"] * (len(heads) // 3)
    assert '<section id="vision">' not in render_html(load_runs([root / "sighted"]))


# ---------------------------------------------------------------------- Markdown escaping

_LABELS = ("a|b", "*bold* _it_", "<script>alert(1)</script>", "[link](http://x.y)",
           "`code` ~~gone~~ & &amp; $x$", "back\\slash!", "line\nbreak")


def test_markdown_escapes_run_names(runs: dict[str, Any], tmp_path: Path) -> None:
    folders = []
    for number, label in enumerate(_LABELS):
        folder = tmp_path / f"run{number}"
        folder.mkdir()
        (folder / "scores.json").write_bytes((runs["root"] / "prior" / "scores.json").read_bytes())
        (folder / "config.json").write_text(json.dumps({"label": label}), encoding="utf-8")
        folders.append(folder)
    text = markdown_table(load_runs(folders), published=False)
    lines = [line for line in text.splitlines() if line.startswith("|")]
    columns = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
    assert columns == {len(_LABELS) + 3}  # Row + runs, plus the empty ends
    header = lines[0]
    for label in _LABELS:
        assert escape_markdown(label) in header
    assert escape_markdown("a|b") == "a\\|b" and escape_markdown("x\ny") == "x y"
    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark").enable("table").render(text)
    parser = _Tables()
    parser.feed(rendered)
    (table,) = parser.tables.values()
    assert table[0][1:] == [" ".join(label.split()) for label in _LABELS]
    for tag in ("<script", "<em>", "<strong>", "<a ", "<code>", "<s>", "<del>"):
        assert tag not in rendered.split("<tbody>")[0]

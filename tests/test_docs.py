"""The documentation is complete and its links resolve.

- every subtask of the registry has a section (an anchor of its name) in ``docs/labels.md``;
- every ``meta`` key the generators write is in the ``meta`` table of ``docs/data-formats.md``:
  the keys of every record of the shared small dataset (which holds every subtask) and the keys
  of the dict literals that build ``meta`` in ``src/multispa/tasks/``;
- every skip reason is in the skip-reason tables of ``docs/labels.md``: the reasons of every
  ``f"{...subtask}:<reason>"`` in ``src/multispa/tasks/`` and ``src/multispa/pipeline/`` (with
  formatted parts resolved to the constants that reach them), the reasons counted in the small
  dataset's manifest (also named in the section of their subtask's family), and the reasons of
  unusable units in its cache manifest;
- every relative link and ``#anchor`` of ``README.md``, ``CHANGELOG.md`` and ``docs/**/*.md``
  resolves, and none of them points outside the repository;
- every ``docs/<page>.md#<anchor>`` (or ``README.md#…``) cited in the package, the benchmarks and
  the tests exists, and no file of the repository's documentation, package or benchmarks cites
  the internal specification.

The last group of tests feeds the same checks a registry, records, source and a manifest with
one undocumented addition each, and shows that the checks report it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import docs_check as dc
from multispa.tasks.registry import TRAIN_QUOTAS
from multispa.tasks.templates import FAMILIES, SUBTASKS

LABELS = dc.DOCS / "labels.md"
FORMATS = dc.DOCS / "data-formats.md"
MARKDOWN_FILES = [
    dc.ROOT / "README.md", dc.ROOT / "CHANGELOG.md", *sorted(dc.DOCS.rglob("*.md"))
]


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _generation_sources() -> dict[str, str]:
    """The modules that count skip reasons: the task families and the pipeline."""
    return {
        name: code
        for name, code in dc.package_sources().items()
        if "/tasks/" in name or "/pipeline/" in name
    }


#: Keys a reason may be counted under: the subtasks, and the families (reasons that concern a
#: whole family, such as ``nview:too_few_frames``).
REASON_PREFIXES = (*SUBTASKS, *FAMILIES)


def _task_sources() -> dict[str, str]:
    return {name: code for name, code in dc.package_sources().items() if "/tasks/" in name}


def _records(dataset: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(dataset.glob("*/*/*.jsonl")):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)


@pytest.fixture(scope="module")
def dataset_records(small_dataset: Path) -> list[dict[str, Any]]:
    return list(_records(small_dataset))


# ------------------------------------------------------------------------------- completeness


def test_every_subtask_has_a_section_in_labels() -> None:
    names = list(dict.fromkeys([*SUBTASKS, *TRAIN_QUOTAS]))
    assert dc.undocumented_subtasks(names, _text(LABELS)) == []


def test_the_small_dataset_holds_every_subtask(dataset_records: list[dict[str, Any]]) -> None:
    # The meta-key check reads these records: a subtask missing here would go unchecked.
    present = {record["subtask"] for record in dataset_records}
    assert sorted(set(SUBTASKS) - present) == []


def test_every_meta_key_of_generated_records_is_documented(
    dataset_records: list[dict[str, Any]],
) -> None:
    documented = dc.documented_meta_keys(_text(FORMATS))
    assert dc.undocumented_meta_keys(dataset_records, documented) == {}


def test_every_meta_key_written_in_the_task_modules_is_documented() -> None:
    written = dc.static_meta_keys(_task_sources())
    assert {"source", "frames", "points", "templates", "camera.t_m", "track.uv"} <= set(written)
    documented = dc.documented_meta_keys(_text(FORMATS))
    assert {key: where for key, where in written.items() if key not in documented} == {}


def test_every_skip_reason_in_the_source_is_documented() -> None:
    sites = dc.skip_reason_sites(_generation_sources(), REASON_PREFIXES)
    found = set().union(*(site.reasons for site in sites))
    # The scan resolves indirect reasons (object size's eligibility function; the N-view
    # generator's "<reason>_at_generate", through an imported alias) and fixed family keys
    # ("nview:too_few_frames"), and keeps partly formatted ones as patterns (the MCQ's
    # no_distractors_<difficulty>).
    assert {"dead_zone", "no_covering_pair", "empty_object", "not_drawn", "shared_nyu40_class",
            "too_few_frames", "no_margin_at_generate", "not_seen_at_generate"} <= found
    assert any(site.pattern and "no_distractors_" in site.pattern for site in sites)
    documented = dc.documented_skip_reasons(_text(LABELS))
    assert dc.undocumented_reason_sites(sites, documented) == []


def test_every_skip_reason_in_the_manifest_is_documented(small_dataset: Path) -> None:
    labels = _text(LABELS)
    documented = dc.documented_skip_reasons(labels)
    manifest = json.loads((small_dataset / "manifest.json").read_text(encoding="utf-8"))
    pairs = dc.manifest_reasons(manifest)
    assert pairs, "the small dataset counts no skipped candidate: the check would be empty"
    problems = [f"{s}:{r}: not in the skip-reason tables" for s, r in pairs if r not in documented]
    # A subtask's reasons are named in its family's section; a family's own reasons (counted
    # under the family name) in that family's section.
    problems += [
        f"{s}:{r}: not named in the section of {s}'s family"
        for s, r in pairs
        if f"`{r}`" not in (dc.section(labels, s) if s in FAMILIES else
                            dc.parent_section(labels, s))
    ]
    assert sorted(problems) == []


def test_unusable_units_name_a_documented_reason(small_dataset: Path) -> None:
    manifest_path = small_dataset.parent / "cache" / "manifest.json"
    units = json.loads(manifest_path.read_text(encoding="utf-8"))["units"]
    documented = dc.documented_skip_reasons(_text(LABELS))
    unnamed = [
        f"{unit}: {info['error']}"
        for unit, info in units.items()
        if info["status"] == "unusable"
        and not any(code in str(info["error"]) for code in documented)
    ]
    assert unnamed == []


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(dc.ROOT)))
def test_relative_links_and_anchors_resolve(path: Path) -> None:
    assert dc.broken_links(path) == []


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(dc.ROOT)))
def test_no_reference_to_files_outside_the_repository(path: Path) -> None:
    text = _text(path)
    assert "shared/" not in text
    assert "spec §" not in text


def test_every_anchor_cited_in_the_code_exists() -> None:
    sources = {
        name: text
        for folder in ("src", "benchmarks", "tests")
        for name, text in dc.text_sources(dc.ROOT / folder).items()
        if not name.startswith(("tests/test_docs.py", "tests/docs_check.py"))  # their examples
    }
    cited = dc.cited_anchors(sources)
    assert len(cited) > 50, "the docstrings cite docs/ anchors: the scan found too few"
    assert dc.broken_citations(sources) == []


def test_no_reference_to_the_internal_specification() -> None:
    # The acceptance check of issue 16: `grep -rn "shared/\|spec §" README.md docs src
    # benchmarks` finds nothing.
    files = {"README.md": dc.ROOT / "README.md"}
    for folder in ("docs", "src", "benchmarks"):
        files |= {name: dc.ROOT / name for name in dc.text_sources(dc.ROOT / folder)}
    found = [
        f"{name}: {needle}"
        for name, path in sorted(files.items())
        for needle in ("shared/", "spec §")
        if needle in path.read_text(encoding="utf-8")
    ]
    assert found == []


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda p: str(p.relative_to(dc.ROOT)))
def test_anchors_are_unique(path: Path) -> None:
    # Anchors are what code and issues cite: an explicit anchor equal to a heading's (or to
    # another explicit one) would send a link to whichever comes first.
    assert dc.ambiguous_anchors(_text(path)) == []


# ------------------------------------------------------------------ the checks catch additions


def test_a_subtask_added_without_documentation_is_reported() -> None:
    registry = dict(SUBTASKS)
    registry["camera_roll_degree"] = dataclasses.replace(
        SUBTASKS["camera_yaw_degree"], name="camera_roll_degree"
    )
    assert dc.undocumented_subtasks(registry, _text(LABELS)) == ["camera_roll_degree"]


def test_a_meta_key_added_without_documentation_is_reported(
    dataset_records: list[dict[str, Any]],
) -> None:
    documented = dc.documented_meta_keys(_text(FORMATS))
    record = copy.deepcopy(
        next(r for r in dataset_records if r["task"] == "object_movement")
    )
    record["meta"]["blur_px"] = 1.5
    record["meta"]["track"]["speed_mps"] = 0.2
    assert dc.undocumented_meta_keys([record], documented) == {
        "blur_px": record["id"], "track.speed_mps": record["id"]
    }
    source = {
        "new_family.py": (
            "def make(ctx, maker):\n"
            "    meta = {'overlap': 1.0, 'glare': {'level': 2}}\n"
            "    meta['exposure_ms'] = 4\n"
            "    return maker(meta={'views': [1, 2], 'occluded': True})\n"
        )
    }
    written = dc.static_meta_keys(source)
    assert sorted(k for k in written if k not in documented) == [
        "exposure_ms", "glare", "glare.level", "occluded"
    ]


def test_meta_dicts_passed_to_a_meta_parameter_are_read() -> None:
    # Camera movement passes its meta dicts positionally, in a list, to a method bound to a local
    # name; the N-view answers carry them in a dataclass field named meta.
    source = {
        "maker.py": (
            "class Maker:\n"
            "    def lines(self, frames, metas):\n"
            "        return metas\n"
            "from dataclasses import dataclass\n"
            "@dataclass\n"
            "class Answer:\n"
            "    gt: int\n"
            "    meta: dict\n"
        ),
        "family.py": (
            "def make(maker, rows, fast):\n"
            "    build = maker.lines if fast else maker.slow\n"
            "    build(rows, [{'tilt_deg': r, 'blur': {'px': 1}} for r in rows])\n"
            "    return Answer(3, {'spin_rpm': 2})\n"
        ),
    }
    assert sorted(dc.static_meta_keys(source)) == ["blur", "blur.px", "spin_rpm", "tilt_deg"]


def test_a_meta_key_the_scan_cannot_read_is_reported() -> None:
    with pytest.raises(dc.UnresolvedSource, match="not a constant"):
        dc.static_meta_keys({"f.py": "def f(ctx, name):\n    meta = {name: 1}\n"})


def test_a_skip_reason_added_without_documentation_is_reported() -> None:
    documented = dc.documented_skip_reasons(_text(LABELS))
    source = {
        "tasks/new_family.py": (
            "GLARE = 'too_much_glare'\n"
            "def why(obj):\n"
            "    if obj.hidden:\n"
            "        return 'hidden_object'\n"
            "    return None\n"
            "def plan(subtask, ctx, selection, objects, kind):\n"
            "    ctx.skip(f'{selection.subtask}:brand_new_reason')\n"
            "    ctx.skip(f'{subtask}:{GLARE}')\n"
            "    problem = why(objects[0])\n"
            "    ctx.skip(f'{subtask}:{problem}')\n"
            "    ctx.skip(f'{subtask}:dead_zone')\n"
            "    ctx.skip(f'{subtask}:odd_{kind}')\n"
        )
    }
    sites = dc.skip_reason_sites(source)
    problems = dc.undocumented_reason_sites(sites, documented)
    assert problems == [
        "tasks/new_family.py:7: skip reason 'brand_new_reason' is not documented",
        "tasks/new_family.py:8: skip reason 'too_much_glare' is not documented",
        "tasks/new_family.py:10: skip reason 'hidden_object' is not documented",
        "tasks/new_family.py:12: no documented skip reason matches '(?:odd_)[a-z0-9_]+'",
    ]


def test_reasons_behind_imports_and_fixed_keys_are_reported() -> None:
    documented = dc.documented_skip_reasons(_text(LABELS))
    source = {
        "tasks/questions.py": (
            "class Answer:\n"
            "    pass\n"
            "def _objects(ids):\n"
            "    if not ids:\n"
            "        return 'no_objects'\n"
            "    positions = [i for i in ids]\n"
            "    return positions\n"
            "def answer_for(ids):\n"
            "    found = _objects(ids)\n"
            "    if isinstance(found, str):\n"
            "        return found\n"
            "    return Answer()\n"
        ),
        "tasks/family.py": (
            "from multispa.tasks.questions import answer_for as checked\n"
            "def plan(skipped, ctx, subtask, ids):\n"
            "    skipped['nview:too_many_views'] += 1\n"
            "    answer = checked(ids)\n"
            "    ctx.skip(f'{subtask}:{answer}_at_generate')\n"
        ),
    }
    sites = dc.skip_reason_sites(source, REASON_PREFIXES)
    assert dc.undocumented_reason_sites(sites, documented) == [
        "tasks/family.py:3: skip reason 'too_many_views' is not documented",
        "tasks/family.py:5: skip reason 'no_objects_at_generate' is not documented",
    ]


def test_a_skip_reason_the_scan_cannot_resolve_is_reported() -> None:
    source = {"tasks/f.py": "def f(ctx, subtask, why):\n    ctx.skip(f'{subtask}:{why}')\n"}
    with pytest.raises(dc.UnresolvedSource, match="cannot be resolved"):
        dc.skip_reason_sites(source)


def test_a_manifest_reason_without_documentation_is_reported() -> None:
    documented = dc.documented_skip_reasons(_text(LABELS))
    manifest = {"skipped": {"train": {"depth_estimation_dot:brand_new_reason": 3,
                                      "camera_x_direction:dead_zone": 5}}}
    pairs = dc.manifest_reasons(manifest)
    assert pairs == {("depth_estimation_dot", "brand_new_reason"),
                     ("camera_x_direction", "dead_zone")}
    assert sorted(r for _, r in pairs if r not in documented) == ["brand_new_reason"]


def test_a_broken_link_or_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Title\n\n<a id=\"here\"></a>\n## Part `one`\n", encoding="utf-8"
    )
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#here) [ok](docs/a.md#part-one) [ok](#top-part) ![img](docs/a.md)\n"
        "# Top part\n"
        "[gone](docs/b.md) [no anchor](docs/a.md#nowhere) [outside](../elsewhere.md)\n"
        "`[not a link](nowhere.md)` [web](https://example.org/x.md)\n"
        "```\n[in a fence](nowhere.md)\n```\n",
        encoding="utf-8",
    )
    assert dc.broken_links(page, root=tmp_path) == [
        "README.md:3: docs/b.md: no such file",
        "README.md:3: docs/a.md#nowhere: no anchor #nowhere in a.md",
        "README.md:3: ../elsewhere.md: points outside the repository",
    ]


def test_a_citation_of_a_missing_anchor_is_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "labels.md").write_text("# Labels\n## Depth\n", encoding="utf-8")
    sources = {
        "src/a.py": '"""Depth (docs/labels.md#depth, #size), not (docs/labels.md#width)."""\n',
        "src/b.py": "# see docs/metrics.md#mra and https://example.org/docs/x.md#y\n",
    }
    assert dc.broken_citations(sources, root=tmp_path) == [
        "src/a.py:1: docs/labels.md#size: no such anchor",
        "src/a.py:1: docs/labels.md#width: no such anchor",
        "src/b.py:1: docs/metrics.md#mra: no such page",
    ]


def test_an_ambiguous_anchor_is_reported() -> None:
    text = '<a id="depth"></a>\n## Depth perception\n### Depth\n<a id="units"></a>\n### Units\n'
    assert dc.ambiguous_anchors(text) == ["depth"]

"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (tests/chat_server.py).

Covers request shape and image order (the server decodes every image), bounded concurrency,
retries (429 with Retry-After, 500, exhausted retries, timeouts, connection refused, no retry on
400), malformed answers, the Authorization header, and resume of ``multispa eval`` after SIGKILL.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")

from chat_server import ChatServer, Reply, SeenRequest, completion, echo_answer
from multispa.errors import ConfigError
from multispa.evaluate.backends.base import EvalItem, Prediction
from multispa.evaluate.backends.openai_api import (
    OpenAIBackend,
    _retry_after_s,
    parse_chat_response,
    prompt_text,
)


def _jpeg(path: Path, width: int, height: int, seed: int) -> Path:
    rgb = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=80)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def _size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _items(folder: Path, count: int, images_per_item: int = 2) -> list[EvalItem]:
    """Items ``q0…`` whose images all differ in size (width 16+k, height 8+j)."""
    items = []
    for k in range(count):
        paths = tuple(
            _jpeg(folder / f"q{k}_{j}.jpg", 16 + k, 8 + j, seed=100 * k + j)
            for j in range(images_per_item)
        )
        prefix = "".join(f"Image-{j + 1}: <image>\n" for j in range(images_per_item))
        if images_per_item == 1:
            prefix = "<image>\n"
        items.append(EvalItem(f"id{k}", paths, f"{prefix}Question q{k}?\nAnswer in `mm`.",
                              "camera_translation_distance", "scalar"))
    return items


def _key_of(text: str) -> str:
    match = re.search(r"\bq\d+\b", text)
    return match.group(0) if match else text


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours proxy variables; the test server is local."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server_factory() -> Iterator[type[ChatServer]]:
    started: list[ChatServer] = []

    class Started(ChatServer):
        def __init__(self, behaviour=None, key_of=_key_of) -> None:  # type: ignore[no-untyped-def]
            super().__init__(behaviour, key_of)
            started.append(self)
            self.start()

    yield Started
    for server in started:
        server.stop()


def _run(backend: OpenAIBackend, items: list[EvalItem]) -> dict[str, Prediction]:
    try:
        predictions = list(backend.generate(items))
    finally:
        backend.close()
    assert sorted(p.id for p in predictions) == sorted(i.id for i in items)
    return {p.id: p for p in predictions}


# --- pure helpers ----------------------------------------------------------------------------


def test_prompt_text_removes_image_tokens_and_keeps_labels() -> None:
    text = "Image-1: <image>\nImage-2: <image>\nHow far?\n\n\n\nAnswer `x`.\n"
    assert prompt_text(text) == "Image-1:\nImage-2:\nHow far?\n\nAnswer `x`."
    assert prompt_text("<image>\nWhich is closer?") == "Which is closer?"
    assert prompt_text("Look at <image> here") == "Look at  here"


def test_parse_chat_response_forms() -> None:
    assert parse_chat_response(json.dumps(completion("`3`")).encode()) == "`3`"
    parts = [{"type": "text", "text": "a "}, {"type": "image_url"}, {"type": "text", "text": "`b`"}]
    assert parse_chat_response(json.dumps(completion(parts)).encode()) == "a `b`"


def test_retry_after_parsing() -> None:
    assert _retry_after_s("2.5", now=0.0) == 2.5
    assert _retry_after_s("-3", now=0.0) == 0.0
    assert _retry_after_s("soon", now=0.0) is None
    assert _retry_after_s(None, now=0.0) is None
    when = "Wed, 21 Oct 2015 07:28:10 GMT"  # 1445412490
    assert _retry_after_s(when, now=1445412480.0) == pytest.approx(10.0)


def test_bad_settings_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="concurrency must be >= 1"):
        OpenAIBackend("m", "http://127.0.0.1:1/v1", concurrency=0)
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIBackend("m", "127.0.0.1:1/v1")
    with pytest.raises(ConfigError, match="not a valid URL"):
        OpenAIBackend("m", "http://[::1/v1")


# --- against the server ----------------------------------------------------------------------


def test_all_items_answered_with_images_in_order(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    items = _items(tmp_path, 5, images_per_item=3) + _items(tmp_path / "one", 1, 1)
    items[-1] = EvalItem("single", items[-1].images, items[-1].text.replace("q0", "q99"),
                         "depth_estimation_dot", "scalar")
    backend = OpenAIBackend("test-model", server.url + "/", concurrency=3, max_tokens=64)
    assert backend.name == f"openai:test-model@{server.url}"
    predictions = _run(backend, items)

    assert server.problems == []
    assert server.counts() == Counter({f"q{k}": 1 for k in (0, 1, 2, 3, 4, 99)})
    seen = {r.key: r for r in server.requests}
    for item in items:
        request = seen[_key_of(item.text)]
        assert request.images == [p.read_bytes() for p in item.images]
        assert [_size(data) for data in request.images] == [_size(p.read_bytes())
                                                              for p in item.images]
        assert request.mimes == ["image/jpeg"] * len(item.images)
        assert request.text == prompt_text(item.text)
        assert request.body is not None
        assert request.body["model"] == "test-model"
        assert request.body["max_tokens"] == 64
        assert request.body["temperature"] == 0
        prediction = predictions[item.id]
        assert prediction.error is None
        assert prediction.response == echo_answer(request)
        assert prediction.latency_s > 0
    assert seen["q3"].text == "Image-1:\nImage-2:\nImage-3:\nQuestion q3?\nAnswer in `mm`."
    assert seen["q99"].text == "Question q99?\nAnswer in `mm`."
    assert predictions["id2"].response == "3 images: `q2`"
    assert "max_tokens" not in OpenAIBackend("m", server.url).request_body(items[0])


def test_png_images_are_sent_as_png(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((5, 7, 3), np.uint8)).save(png)
    item = EvalItem("p", (png,), "<image>\nq1 colour?", "x", "label")
    predictions = _run(OpenAIBackend("m", server.url), [item])
    assert predictions["p"].response == "1 images: `q1`"
    assert server.requests[0].mimes == ["image/png"]
    assert server.requests[0].images == [png.read_bytes()]


def test_bounded_concurrency_and_yield_as_completed(server_factory, tmp_path: Path) -> None:
    delay_s = 0.25
    server = server_factory(lambda r: Reply(content=echo_answer(r), delay_s=delay_s))
    items = _items(tmp_path, 16)
    backend = OpenAIBackend("m", server.url, concurrency=4)
    start = time.perf_counter()
    predictions = _run(backend, items)
    elapsed_s = time.perf_counter() - start
    assert server.max_in_flight == 4
    assert all(p.error is None for p in predictions.values())
    serial_s = delay_s * len(items)  # 4.0 s; ideal with 4 workers: 1.0 s
    assert elapsed_s < 0.5 * serial_s, elapsed_s
    assert all(p.latency_s >= delay_s * 0.9 for p in predictions.values())


def test_predictions_are_yielded_as_they_complete(server_factory, tmp_path: Path) -> None:
    server = server_factory(lambda r: Reply(content="`1`", delay_s=1.0 if r.key == "q0" else 0))
    items = _items(tmp_path, 2)
    backend = OpenAIBackend("m", server.url, concurrency=2)
    start = time.perf_counter()
    stream = backend.generate(items)
    first = next(stream)
    first_s = time.perf_counter() - start
    second = next(stream)
    stream.close()
    backend.close()
    assert (first.id, second.id) == ("id1", "id0")
    assert first_s < 0.7
    assert second.latency_s >= 0.95


def test_429_with_retry_after_then_success(server_factory, tmp_path: Path) -> None:
    def behaviour(request: SeenRequest) -> Reply:
        if request.key == "q1" and request.attempt == 1:
            return Reply(status=429, body={"error": "slow down"}, headers={"Retry-After": "0"})
        return Reply(content=echo_answer(request))

    server = server_factory(behaviour)
    items = _items(tmp_path, 3)
    # a 10 s backoff would dominate if Retry-After: 0 were ignored
    backend = OpenAIBackend("m", server.url, backoff_base_s=10.0)
    start = time.perf_counter()
    predictions = _run(backend, items)
    assert time.perf_counter() - start < 3.0
    assert server.counts() == Counter({"q0": 1, "q1": 2, "q2": 1})
    assert predictions["id1"] == Prediction("id1", "2 images: `q1`", None,
                                            predictions["id1"].latency_s)
    assert server.problems == []


def test_500_then_success_and_exhausted_retries(server_factory, tmp_path: Path) -> None:
    def behaviour(request: SeenRequest) -> Reply:
        if request.key == "q0" and request.attempt <= 2:
            return Reply(status=500, body=b"internal oops")
        if request.key == "q1":
            return Reply(status=429, body={"error": "quota"})
        if request.key == "q2":
            return Reply(status=400, body={"error": "bad request"})
        return Reply(content="`7`")

    server = server_factory(behaviour)
    items = _items(tmp_path, 4)
    backend = OpenAIBackend("m", server.url, max_retries=2, backoff_base_s=0.01)
    predictions = _run(backend, items)
    assert server.counts() == Counter({"q0": 3, "q1": 3, "q2": 1, "q3": 1})
    assert predictions["id0"].response == "`7`"
    assert predictions["id0"].error is None
    assert predictions["id1"].response is None
    assert predictions["id1"].error == 'HTTP 429 after 3 attempts: {"error": "quota"}'
    assert predictions["id2"].error == 'HTTP 400: {"error": "bad request"}'
    assert predictions["id3"].response == "`7`"


def test_timeout_gives_error_after_configured_attempts(server_factory, tmp_path: Path) -> None:
    server = server_factory(lambda r: Reply(content="late", delay_s=3.0))
    items = _items(tmp_path, 1)
    backend = OpenAIBackend("m", server.url, timeout_s=0.2, max_retries=2, backoff_base_s=0.01)
    start = time.perf_counter()
    predictions = _run(backend, items)
    assert time.perf_counter() - start < 2.0
    assert server.counts() == Counter({"q0": 3})
    assert predictions["id0"].response is None
    assert predictions["id0"].error == "timeout after 3 attempts (0.2 s each)"


def test_connection_refused_is_an_error_prediction(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    backend = OpenAIBackend("m", f"http://127.0.0.1:{port}/v1", max_retries=1,
                            backoff_base_s=0.01)
    predictions = _run(backend, _items(tmp_path, 1))
    assert predictions["id0"].error is not None
    assert predictions["id0"].error.startswith("connection error after 2 attempts: ConnectError")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>not json</html>", "malformed response: not JSON"),
        ({"id": "x", "object": "chat.completion"}, "malformed response: no 'choices'"),
        ({"choices": []}, "malformed response: no 'choices'"),
        ({"choices": [{"index": 0}]}, "malformed response: choices[0] has no 'message'"),
        (completion(None), "malformed response: message content is NoneType"),
        (completion([{"type": "image_url"}]), "malformed response: message content is a list"),
    ],
)
def test_malformed_responses_are_errors_without_retry(
    server_factory, tmp_path: Path, body: bytes | dict, problem: str
) -> None:
    server = server_factory(lambda r: Reply(body=body))
    predictions = _run(OpenAIBackend("m", server.url, backoff_base_s=0.01), _items(tmp_path, 1))
    assert server.counts() == Counter({"q0": 1})
    assert predictions["id0"].response is None
    assert predictions["id0"].error is not None
    assert predictions["id0"].error.startswith(problem), predictions["id0"].error


def test_authorization_header_only_with_key(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    items = _items(tmp_path, 1)
    _run(OpenAIBackend("m", server.url), items)
    _run(OpenAIBackend("m", server.url, api_key="sk-secret-123"), items)
    first, second = server.requests
    assert "authorization" not in first.headers
    assert second.headers["authorization"] == "Bearer sk-secret-123"
    backend = OpenAIBackend("m", server.url, api_key="sk-secret-123")
    backend.close()
    assert "sk-secret" not in repr(backend)
    assert "sk-secret" not in json.dumps(backend.describe())
    assert backend.describe()["api_key_set"] is True


def test_bad_items_fail_without_a_request(server_factory, tmp_path: Path) -> None:
    server = server_factory()
    good = _items(tmp_path, 1)[0]
    items = [
        EvalItem("missing", (tmp_path / "nope.jpg",), "<image>\nq5", "s", "scalar"),
        EvalItem("count", good.images, "<image>\nq6", "s", "scalar"),
        EvalItem("gif", (tmp_path / "a.gif",), "<image>\nq7", "s", "scalar"),
        good,
    ]
    predictions = _run(OpenAIBackend("m", server.url), items)
    assert server.counts() == Counter({"q0": 1})
    assert predictions["missing"].error is not None
    assert predictions["missing"].error.startswith(f"bad item: image {tmp_path / 'nope.jpg'}")
    assert predictions["count"].error == (
        "bad item: prompt has 1 <image> tokens but the item has 2 images"
    )
    assert predictions["gif"].error is not None
    assert "unsupported type '.gif'" in predictions["gif"].error
    assert predictions["id0"].error is None


# --- resume of `multispa eval` after SIGKILL -------------------------------------------------


_RUN_EVAL_SNIPPET = (
    "import sys\n"
    "from multispa.evaluate.runner import run_eval\n"
    "run_eval(sys.argv[1], sys.argv[2], sys.argv[3], concurrency=2, progress=False)\n"
)


def _eval_command(bench: Path, model: str, run: Path) -> list[str]:
    """``python -m multispa eval …``; until the CLI registers ``eval``, the same call to
    :func:`multispa.evaluate.runner.run_eval` in a ``python -c`` subprocess."""
    from multispa.cli import main

    if "eval" in main.commands:  # type: ignore[attr-defined]
        return [sys.executable, "-m", "multispa", "eval", "--bench", str(bench), "--model", model,
                "--out", str(run), "--concurrency", "2"]
    return [sys.executable, "-c", _RUN_EVAL_SNIPPET, str(bench), model, str(run)]


def _build_bench(bench: Path, count: int) -> list[str]:
    """A hand-made BENCH folder (eval.md layout) of camera-distance items; returns the ids."""
    from multispa.evaluate.bench import bench_content_sha256

    records = []
    for k in range(count):
        rels = [f"scannet/scene{k:04d}_00/{j:05d}.jpg" for j in range(2)]
        for j, rel in enumerate(rels):
            _jpeg(bench / "images" / rel, 12 + j, 10, seed=10 * k + j)
        records.append({
            "id": f"camera_translation_distance-{k:04d}",
            "image": rels,
            "text": f"Image-1: <image>\nImage-2: <image>\nHow far did the camera move (q{k})?\n"
                    "Answer in mm.",
            "answer": f"`{1000 + k}`",
            "gt": 1000 + k,
            "answer_type": "scalar",
            "task": "camera_movement",
            "subtask": "camera_translation_distance",
            "width_list": [12, 13],
            "height_list": [10, 10],
            "meta": {},
        })
    (bench / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    manifest = {
        "format": "multispa-bench/1",
        "content_sha256": bench_content_sha256(bench),
        "items": count,
        "counts": {"camera_translation_distance": count},
        "source": "hand-made test bench",
        "seed": 0,
        "per_subtask": count,
        "multispa_version": "test",
    }
    (bench / "manifest.json").write_text(json.dumps(manifest))
    return [r["id"] for r in records]


def _prediction_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    ids = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError, KeyError, TypeError):  # cut by the kill
            ids.append(json.loads(line)["id"])
    return ids


def test_eval_resumes_after_sigkill(server_factory, tmp_path: Path) -> None:
    if importlib.util.find_spec("multispa.evaluate.runner") is None:
        pytest.skip("multispa.evaluate.runner (run_eval) is not written yet")
    count = 12
    ids = _build_bench(tmp_path / "bench", count)
    server = server_factory(lambda r: Reply(content=f"`{1000 + int(r.key[1:])}`", delay_s=0.3))
    run = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    command = _eval_command(tmp_path / "bench", f"openai:m@{server.url}", run)
    predictions = run / "predictions.jsonl"

    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while len(_prediction_ids(predictions)) < 3 and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            time.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=10)
        if first.stderr:
            first.stderr.close()
    done_first = _prediction_ids(predictions)
    assert 3 <= len(done_first) < count
    requests_first = server.counts()

    second = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    assert second.returncode == 0, second.stderr.decode()
    final_ids = _prediction_ids(predictions)
    assert Counter(final_ids) == Counter(ids)  # every id exactly once
    requests_second = server.counts() - requests_first
    answered_first = {f"q{int(rid.rsplit('-', 1)[1])}" for rid in done_first}
    assert not answered_first & set(requests_second)  # answered items were not asked again
    assert sum(requests_second.values()) == count - len(set(done_first))
    assert set(requests_first) | set(requests_second) == {f"q{k}" for k in range(count)}
    assert max(server.counts().values()) <= 2  # at most the in-flight ones were asked twice
    assert server.problems == []
    lines = [json.loads(line) for line in predictions.read_text().splitlines() if line.strip()]
    assert all(line["error"] is None for line in lines)
    scores = json.loads((run / "scores.json").read_text())
    assert scores["summary"]["records"] == count
    assert scores["summary"]["accuracy_pct"] == 100.0  # the server answered each gt exactly

"""Backend for any OpenAI-compatible chat-completions server (vLLM, SGLang, LMDeploy, APIs).

Each item becomes one ``POST {base_url}/chat/completions`` request with a single user message
whose content is the item's images, in prompt order, as base64 ``data:`` URLs, followed by one
text part: the prompt with its ``<image>`` placeholders removed. The ``Image-k:`` labels of a
multi-image prompt stay in the text (``"Image-1:\\nImage-2:\\n…"``), so the image order is still
explicit to the model; lines left empty by the removal are dropped.

Requests run on a pool of ``concurrency`` threads sharing one :class:`httpx.Client`; predictions
are yielded as they complete. A request that times out, fails to connect, or gets HTTP 408, 429
or 5xx is retried up to ``max_retries`` times with exponential backoff and seeded jitter (a
``Retry-After`` header, in seconds or as an HTTP date, replaces the computed wait, capped at
``max_backoff_s``). Other 4xx answers are not retried. A failure never raises for one item: the
item gets a :class:`Prediction` whose ``error`` says what happened, e.g.
``"HTTP 429 after 6 attempts: …"``, ``"timeout after 3 attempts (0.5 s each)"`` or
``"malformed response: no 'choices'"``.

The API key, when given, is sent as ``Authorization: Bearer <key>``; this module never reads the
environment and never logs or prints the key.

``timeout_s`` is httpx's timeout, applied to connecting, writing, waiting for each chunk of the
answer and waiting for a pooled connection (not a deadline on the whole exchange).
``latency_s`` of a prediction is the wall time spent on the item, retries and waits included.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multispa.errors import ConfigError
from multispa.evaluate.backends.base import IMAGE_TOKEN, EvalItem, Prediction, prompt_text

if TYPE_CHECKING:
    import httpx

__all__ = [
    "BadItemError",
    "MalformedResponseError",
    "OpenAIBackend",
    "build_messages",
    "parse_chat_response",
    "prompt_text",
]

log = logging.getLogger(__name__)

_MIME_BY_SUFFIX = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
_BODY_SNIPPET_CHARS = 200


class BadItemError(Exception):
    """An item that cannot be sent (bad prompt or image); becomes ``Prediction.error``."""


class MalformedResponseError(Exception):
    """A 2xx answer that is not a chat completion with text content."""


def _data_url(path: Path) -> str:
    mime = _MIME_BY_SUFFIX.get(path.suffix.lower())
    if mime is None:
        raise BadItemError(
            f"image {path}: unsupported type {path.suffix!r}, expected one of "
            f"{sorted(_MIME_BY_SUFFIX)}"
        )
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BadItemError(f"image {path}: cannot read ({error.strerror or error})") from error
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def build_messages(item: EvalItem) -> list[dict[str, Any]]:
    """The chat ``messages`` for one item: one user turn, image parts then the text part.

    Raises:
        BadItemError: the prompt's ``<image>`` count differs from the number of images, or an
            image is missing, unreadable or not JPEG/PNG.
    """
    count = item.text.count(IMAGE_TOKEN)
    if count != len(item.images):
        raise BadItemError(
            f"prompt has {count} {IMAGE_TOKEN} tokens but the item has {len(item.images)} images"
        )
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": _data_url(Path(path))}}
        for path in item.images
    ]
    content.append({"type": "text", "text": prompt_text(item.text)})
    return [{"role": "user", "content": content}]


def parse_chat_response(body: bytes) -> str:
    """The assistant text of a chat-completions response body.

    ``choices[0].message.content`` may be a string or a list of parts, whose ``text`` parts are
    joined. Raises :class:`MalformedResponseError` naming what is missing.
    """
    try:
        obj = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedResponseError(f"not JSON ({error}): {_snippet(body)}") from error
    if not isinstance(obj, dict):
        raise MalformedResponseError(f"expected a JSON object, found {type(obj).__name__}")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        if "error" in obj:
            raise MalformedResponseError(f"no 'choices', error {_snippet(obj['error'])}")
        raise MalformedResponseError(f"no 'choices' (found keys {sorted(obj)})")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise MalformedResponseError("choices[0] has no 'message' object")
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        if texts:
            return "".join(texts)
        raise MalformedResponseError("message content is a list without text parts")
    raise MalformedResponseError(
        f"message content is {type(content).__name__}, expected a string or a list of parts"
    )


def _snippet(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else json.dumps(value)
    text = " ".join(text.split())
    if len(text) > _BODY_SNIPPET_CHARS:
        return text[:_BODY_SNIPPET_CHARS] + "…"
    return text


def _retry_after_s(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date); None if bad."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _item_seed(seed: int, item_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}\0{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


class OpenAIBackend:
    """Answers items through an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        model: the server's model name, sent as ``"model"``.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (a trailing slash is accepted).
        concurrency: requests in flight at once (worker threads).
        timeout_s: httpx timeout per request, seconds.
        max_retries: retries after the first attempt (``1 + max_retries`` attempts at most).
        api_key: sent as ``Authorization: Bearer`` when given; never read from the environment.
        max_tokens: ``"max_tokens"`` of the request, omitted when None.
        temperature: ``"temperature"`` of the request.
        backoff_base_s: first retry waits ``backoff_base_s`` (×2 per retry), jittered to
            50–100 % of that, capped at ``max_backoff_s``.
        transport: an httpx transport (tests, proxies); httpx's default when None.
        max_backoff_s: cap on any wait between attempts, ``Retry-After`` included.
        seed: seeds the jitter (per item, from the item id), so waits are reproducible.
    """

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        concurrency: int = 8,
        timeout_s: float = 120,
        max_retries: int = 5,
        api_key: str | None = None,
        max_tokens: int | None = None,
        temperature: float = 0.0,
        backoff_base_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        max_backoff_s: float = 60.0,
        seed: int = 0,
    ) -> None:
        try:
            import httpx
        except ImportError as error:
            raise ConfigError(
                "the openai backend needs httpx: pip install 'multispa[api]'"
            ) from error
        problems = [
            f"{name} must be {rule}, got {value!r}"
            for name, value, ok, rule in (
                ("model", model, bool(model), "a non-empty string"),
                ("base_url", base_url, str(base_url).startswith(("http://", "https://")),
                 "an http:// or https:// URL"),
                ("concurrency", concurrency, concurrency >= 1, ">= 1"),
                ("timeout_s", timeout_s, timeout_s > 0, "> 0"),
                ("max_retries", max_retries, max_retries >= 0, ">= 0"),
                ("max_tokens", max_tokens, max_tokens is None or max_tokens >= 1,
                 "None or >= 1"),
                ("backoff_base_s", backoff_base_s, backoff_base_s >= 0, ">= 0"),
                ("max_backoff_s", max_backoff_s, max_backoff_s >= 0, ">= 0"),
            )
            if not ok
        ]
        if not problems:
            try:
                httpx.URL(base_url)
            except httpx.InvalidURL as error:
                problems.append(f"base_url {base_url!r} is not a valid URL ({error})")
        if problems:
            raise ConfigError("openai backend: " + "; ".join(problems))
        self._httpx = httpx
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.name = f"openai:{model}@{self.base_url}"
        self.url = f"{self.base_url}/chat/completions"
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.temperature = float(temperature)
        self.backoff_base_s = float(backoff_base_s)
        self.max_backoff_s = float(max_backoff_s)
        self.seed = seed
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._api_key_set = bool(api_key)
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self.timeout_s),
            limits=httpx.Limits(max_connections=concurrency,
                                max_keepalive_connections=concurrency),
            transport=transport,
        )
        self._closed = threading.Event()

    def __repr__(self) -> str:  # no key in it
        return (f"OpenAIBackend(name={self.name!r}, concurrency={self.concurrency}, "
                f"timeout_s={self.timeout_s}, max_retries={self.max_retries})")

    def describe(self) -> dict[str, Any]:
        """The settings worth recording in a run's config (no secrets; ``api_key_set``)."""
        return {
            "model": self.model, "base_url": self.base_url, "concurrency": self.concurrency,
            "timeout_s": self.timeout_s, "max_retries": self.max_retries,
            "max_tokens": self.max_tokens, "temperature": self.temperature,
            "backoff_base_s": self.backoff_base_s, "max_backoff_s": self.max_backoff_s,
            "seed": self.seed, "api_key_set": self._api_key_set,
        }

    def request_body(self, item: EvalItem) -> dict[str, Any]:
        """The JSON body sent for ``item`` (images read and encoded here)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": build_messages(item),
            "temperature": self.temperature,
        }
        if self.max_tokens is not None:
            body["max_tokens"] = self.max_tokens
        return body

    def generate(self, items: Sequence[EvalItem]) -> Iterator[Prediction]:
        """Yield one prediction per item as each completes (at most ``concurrency`` in flight).

        Items are taken from ``items`` lazily (twice the concurrency ahead); closing the
        iterator early cancels the items not yet started.
        """
        if self._closed.is_set():
            raise ConfigError(f"{self.name}: generate() after close()")
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        pending: set[Future[Prediction]] = set()
        source = iter(items)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < 2 * self.concurrency:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                    else:
                        pending.add(pool.submit(self._answer, item))
                if not pending:
                    return
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop waits between retries and close the connections."""
        self._closed.set()
        self._client.close()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, item: EvalItem) -> Prediction:
        start = time.perf_counter()
        try:
            payload = json.dumps(self.request_body(item)).encode()
        except BadItemError as error:
            return Prediction(item.id, None, f"bad item: {error}", time.perf_counter() - start)
        response, error = self._post_with_retries(item.id, payload)
        latency_s = time.perf_counter() - start
        if error is not None:
            log.warning("%s: item %s failed: %s", self.name, item.id, error)
            return Prediction(item.id, None, error, latency_s)
        assert response is not None
        try:
            text = parse_chat_response(response)
        except MalformedResponseError as problem:
            return Prediction(item.id, None, f"malformed response: {problem}", latency_s)
        return Prediction(item.id, text, None, latency_s)

    def _post_with_retries(self, item_id: str, payload: bytes) -> tuple[bytes | None, str | None]:
        """POST until success, a final failure or exhausted retries → (body, None) | (None, err)."""
        httpx = self._httpx
        rng = np.random.default_rng(_item_seed(self.seed, item_id))
        attempts = self.max_retries + 1
        for attempt in range(1, attempts + 1):
            retry_after: float | None = None
            try:
                response = self._client.post(self.url, content=payload)
            except httpx.TimeoutException:
                failure = f"timeout after {attempt} attempts ({self.timeout_s:g} s each)"
            except httpx.TransportError as error:
                failure = (f"connection error after {attempt} attempts: "
                           f"{type(error).__name__}: {error}")
            except RuntimeError as error:  # the client was closed under us
                if not self._closed.is_set():
                    raise
                return None, f"cancelled after {attempt} attempts: {error}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response.content, None
                failure = f"HTTP {status} after {attempt} attempts: {_snippet(response.content)}"
                if not (status in (408, 429) or status >= 500):
                    return None, f"HTTP {status}: {_snippet(response.content)}"
                retry_after = _retry_after_s(response.headers.get("Retry-After"), time.time())
            if attempt == attempts:
                return None, failure
            if retry_after is not None:
                delay_s = min(retry_after, self.max_backoff_s)
            else:
                full_s = min(self.backoff_base_s * 2 ** (attempt - 1), self.max_backoff_s)
                delay_s = full_s * (0.5 + 0.5 * float(rng.random()))
            log.info("%s: item %s attempt %d failed (%s); retrying in %.2f s",
                     self.name, item_id, attempt, failure, delay_s)
            if self._closed.wait(delay_s):
                return None, f"cancelled after {attempt} attempts: {failure}"
        raise AssertionError("unreachable")


"""A small real OpenAI-style chat-completions server for the backend tests.

:class:`ChatServer` listens on ``127.0.0.1`` (a free port), checks the shape of every
``POST /v1/chat/completions`` request (model, one user message, image parts as base64 data URLs
that decode to JPEG/PNG bytes, then one text part without ``<image>``), records each request and
the peak number of requests in flight, and answers as its ``behaviour`` says. A shape problem is
recorded in ``problems`` and answered with HTTP 400.

A behaviour is a callable ``(SeenRequest) -> Reply``; ``SeenRequest.attempt`` counts the requests
for the same ``key`` (the prompt text, or what ``key_of`` extracts from it), so "fail the first
time, then succeed" is ``lambda r: Reply(status=429) if r.attempt == 1 else Reply()``. Sleeps
are cut short when the server stops, so tests end quickly.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MAGIC_BY_MIME = {"image/jpeg": JPEG_MAGIC, "image/png": PNG_MAGIC}
CHAT_PATH = "/v1/chat/completions"


@dataclass
class SeenRequest:
    """One request as the server saw it (``images`` decoded from the data URLs, in order)."""

    key: str
    attempt: int
    headers: dict[str, str]
    body: dict[str, Any] | None
    images: list[bytes]
    mimes: list[str]
    text: str
    problems: list[str]


@dataclass
class Reply:
    """What to answer: ``body`` None → a chat completion whose content is ``content``."""

    status: int = 200
    content: str = "ok"
    body: bytes | dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(content: Any) -> dict[str, Any]:
    """A minimal chat-completions response body with ``content`` as the message content."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
    }


def echo_answer(request: SeenRequest) -> str:
    """The default answer: the number of images and the key, e.g. ``"2 images: `q7`"``."""
    return f"{len(request.images)} images: `{request.key}`"


def _echo(request: SeenRequest) -> Reply:
    return Reply(content=echo_answer(request))


class ChatServer:
    """Threaded chat-completions server on 127.0.0.1; use as a context manager.

    Args:
        behaviour: decides each reply; echoes :func:`echo_answer` by default.
        key_of: maps the request's text part to the bookkeeping key (default: the text).
    """

    def __init__(
        self,
        behaviour: Callable[[SeenRequest], Reply] | None = None,
        key_of: Callable[[str], str] | None = None,
    ) -> None:
        self.behaviour = behaviour or _echo
        self.key_of = key_of or (lambda text: text)
        self.requests: list[SeenRequest] = []
        self.problems: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """The base URL a client appends ``/chat/completions`` to."""
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ChatServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake sleeping handlers, stop serving and close the listening socket."""
        self._stop.set()
        if self._thread.is_alive():
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def counts(self) -> Counter[str]:
        """Requests received per key."""
        with self._lock:
            return Counter(r.key for r in self.requests)

    def sleep(self, seconds: float) -> None:
        """Sleep, cut short when the server stops."""
        self._stop.wait(seconds)

    # --- request handling (server threads) ---------------------------------------------------

    def inspect(self, headers: dict[str, str], raw: bytes, path: str) -> SeenRequest:
        problems: list[str] = []
        images: list[bytes] = []
        mimes: list[str] = []
        text = ""
        body: dict[str, Any] | None = None
        if path != CHAT_PATH:
            problems.append(f"path {path!r}, expected {CHAT_PATH!r}")
        if not headers.get("content-type", "").startswith("application/json"):
            problems.append(f"content-type {headers.get('content-type')!r}")
        try:
            loaded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            problems.append(f"body is not JSON: {error}")
            loaded = None
        if loaded is not None and not isinstance(loaded, dict):
            problems.append("body is not a JSON object")
        elif isinstance(loaded, dict):
            body = loaded
            text = self._check_body(body, images, mimes, problems)
        with self._lock:
            key = self.key_of(text)
            attempt = 1 + sum(r.key == key for r in self.requests)
            seen = SeenRequest(key, attempt, headers, body, images, mimes, text, problems)
            self.requests.append(seen)
            self.problems.extend(problems)
        return seen

    @staticmethod
    def _check_body(body: dict[str, Any], images: list[bytes], mimes: list[str],
                    problems: list[str]) -> str:
        if not isinstance(body.get("model"), str) or not body["model"]:
            problems.append(f"model {body.get('model')!r}")
        if body.get("temperature") != 0:
            problems.append(f"temperature {body.get('temperature')!r}, expected 0")
        messages = body.get("messages")
        if not (isinstance(messages, list) and len(messages) == 1
                and isinstance(messages[0], dict) and messages[0].get("role") == "user"
                and isinstance(messages[0].get("content"), list) and messages[0]["content"]):
            problems.append("messages must be one user message with a list of content parts")
            return ""
        *image_parts, text_part = messages[0]["content"]
        for k, part in enumerate(image_parts):
            inner = part.get("image_url") if isinstance(part, dict) else None
            url = inner.get("url") if isinstance(inner, dict) else None
            if not isinstance(url, str) or part.get("type") != "image_url":
                problems.append(f"part {k}: expected an image_url part, found {part!r:.80}")
                continue
            header, comma, data = url.partition(",")
            mime = header.removeprefix("data:").removesuffix(";base64")
            if not (comma and header.startswith("data:") and header.endswith(";base64")
                    and mime in _MAGIC_BY_MIME):
                problems.append(f"part {k}: not a base64 JPEG/PNG data URL: {url[:40]!r}")
                continue
            try:
                decoded = base64.b64decode(data, validate=True)
            except binascii.Error as error:
                problems.append(f"part {k}: bad base64 ({error})")
                continue
            if not decoded.startswith(_MAGIC_BY_MIME[mime]):
                problems.append(f"part {k}: {mime} data does not start with its magic bytes")
            images.append(decoded)
            mimes.append(mime)
        if not (isinstance(text_part, dict) and text_part.get("type") == "text"
                and isinstance(text_part.get("text"), str)):
            problems.append(f"last part must be a text part, found {text_part!r:.80}")
            return ""
        text = str(text_part["text"])
        if "<image>" in text:
            problems.append("text still contains <image>")
        return text

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1


def _handler_class(server: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            server.enter()
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if len(raw) < length:  # the client died mid-request (killed): nothing to answer
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                seen = server.inspect(headers, raw, self.path)
                if seen.problems:
                    reply = Reply(status=400, body={"error": {"message": "; ".join(seen.problems)}})
                else:
                    reply = server.behaviour(seen)
                if reply.delay_s > 0:
                    server.sleep(reply.delay_s)
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to answer
            finally:
                server.leave()

        def _send(self, reply: Reply) -> None:
            if reply.body is None:
                payload = json.dumps(completion(reply.content)).encode()
            elif isinstance(reply.body, bytes):
                payload = reply.body
            else:
                payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

    return Handler

"""A local stand-in for the OpenAI Chat Completions endpoint, for tests of the real client.

``StubOpenAIServer`` listens on 127.0.0.1 (a free port) in a background thread and implements
``POST /v1/chat/completions``: a JSON completion, or with ``"stream": true`` Server-Sent Events
(``data: {chunk}`` ... ``data: [DONE]``). It records every request body and answers with the
next scripted reply. A reply can also be an HTTP error status or a delay (for timeouts).

    with StubOpenAIServer(["Hello [1]."]) as server:
        ChatOpenAI(base_url=server.base_url, api_key="test", max_retries=0).invoke("hi")
        server.requests[0]["messages"]
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Reply", "StubOpenAIServer"]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (timeout test) closes the socket under us: not an error.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


@dataclass
class Reply:
    """One scripted response: a text, or an HTTP error, optionally after a delay."""

    text: str = ""
    status: int = 200
    delay: float = 0.0


class StubOpenAIServer:
    """Scripted OpenAI-compatible chat server on 127.0.0.1 (see the module docstring)."""

    def __init__(self, replies: list[str | Reply], *, model: str = "gpt-4o-mini") -> None:
        self.replies = [r if isinstance(r, Reply) else Reply(r) for r in replies]
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> StubOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _next_reply(self, body: dict[str, Any], path: str) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.paths.append(path)
            return self.replies[min(len(self.requests), len(self.replies)) - 1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # silence stderr
                pass

            def _send_json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send_json(404, {"error": {"message": f"no route {self.path}"}})
                    return
                reply = server._next_reply(body, self.path)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.status != 200:
                    error = {"message": f"scripted error {reply.status}", "type": "server_error"}
                    self._send_json(reply.status, {"error": error})
                    return
                if body.get("stream"):
                    self._stream(reply.text, body)
                else:
                    self._send_json(200, server._completion(reply.text))

            def _stream(self, text: str, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.send_header("Connection", "close")
                self.end_headers()
                deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
                words = text.split(" ")
                deltas += [{"content": w if i == 0 else " " + w} for i, w in enumerate(words)]
                for delta in deltas:
                    self._event(server._chunk(delta, None))
                self._event(server._chunk({}, "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage_chunk = server._chunk({}, None)
                    usage_chunk["choices"] = []
                    usage_chunk["usage"] = server._usage(text)
                    self._event(usage_chunk)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, payload: dict[str, Any]) -> None:
                self.wfile.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
                self.wfile.flush()

        return Handler

    def _usage(self, text: str) -> dict[str, int]:
        completion = len(text.split())
        return {
            "prompt_tokens": 100,
            "completion_tokens": completion,
            "total_tokens": 100 + completion,
        }

    def _completion(self, text: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": 0,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self._usage(text),
        }

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }

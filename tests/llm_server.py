"""A scripted OpenAI-compatible server for tests: real HTTP on 127.0.0.1, a free port.

It implements ``POST /v1/chat/completions`` only. Each test queues the replies it wants
(:meth:`LLMServer.reply`, :meth:`LLMServer.answer`); every request's path, headers and raw
body are recorded in :attr:`LLMServer.requests`. With nothing queued the server answers 599 so
an unexpected request shows up as a failure instead of passing silently.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] = b""
    delay: float = 0.0  # seconds to wait before answering
    content_type: str = "application/json"


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: str
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


def completion(content: str | None, *, model: str = "scripted-model", refusal: str | None = None,
               finish_reason: str = "stop") -> dict[str, Any]:
    """A chat.completion object as OpenAI-compatible servers return it."""
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "finish_reason": finish_reason,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


class LLMServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._queue: list[Reply] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                server._record(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()},
                                        body))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(Reply(404, {"error": {"message": f"no route {self.path}"}}))
                    return
                self._send(server._next())

            def _send(self, reply: Reply) -> None:
                if reply.delay and server._stop.wait(reply.delay):
                    return  # server stopping: drop the answer
                body = reply.body
                if isinstance(body, dict):
                    body = json.dumps(body)
                if isinstance(body, str):
                    body = body.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # ---- scripting --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, status: int = 200, body: bytes | str | dict[str, Any] = b"", *,
              delay: float = 0.0, times: int = 1, content_type: str = "application/json") -> "LLMServer":
        with self._lock:
            self._queue.extend(Reply(status, body, delay, content_type) for _ in range(times))
        return self

    def answer(self, content: str | dict[str, Any] | None, *, delay: float = 0.0, times: int = 1,
               **kwargs: Any) -> "LLMServer":
        """Queue a 200 chat completion whose message content is ``content`` (a dict is JSON-encoded)."""
        if isinstance(content, dict):
            content = json.dumps(content)
        return self.reply(200, completion(content, **kwargs), delay=delay, times=times)

    def _next(self) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
        return Reply(599, {"error": {"message": "no scripted reply left"}})

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    @property
    def bodies(self) -> list[str]:
        with self._lock:
            return [r.body for r in self.requests]

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> "LLMServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> "LLMServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ---- the planted-secrets fixture repo -------------------------------------------------------
PLANTED_FIXTURE = "qlora_secrets"


def _rand(alphabet: str, n: int) -> str:
    import secrets

    return "".join(secrets.choice(alphabet) for _ in range(n))


def planted_repo(fixtures_dir, dest) -> tuple[Any, dict[str, str]]:
    """Copy ``tests/fixtures/llm/qlora_secrets`` to ``dest`` with fresh random secrets planted.

    The committed fixture holds ``@@NAME@@`` placeholders (so no token-shaped string lives in
    git); each run fills them with new values of the real shapes. Returns (root, {name: value}).
    """
    import shutil
    import string
    from pathlib import Path

    alnum = string.ascii_letters + string.digits
    hexd = "0123456789abcdef"
    values = {
        "ENV_HF_TOKEN": "hf_" + _rand(alnum, 34),
        "ENV_DB_PASSWORD": _rand(alnum, 12) + "!#" + _rand(alnum, 6),
        "PY_WANDB_KEY": _rand(hexd, 40),
        "PY_AWS_ID": "AKIA" + _rand(string.ascii_uppercase + string.digits, 16),
        "PY_AWS_SECRET": _rand(alnum + "/+", 40),
        "PY_HF_TOKEN": "hf_" + _rand(alnum, 34),
        "YAML_HF_TOKEN": "hf_" + _rand(alnum, 34),
        "YAML_WANDB_KEY": _rand(hexd, 40),
        "YAML_SLACK": "xoxb-" + _rand(string.digits, 12) + "-" + _rand(alnum, 24),
        "YAML_DB_PASSWORD": _rand(string.ascii_letters, 18),  # letters only: no digit to spot
        "SH_GITHUB": "ghp_" + _rand(alnum, 36),
        "SH_HF": "hf_" + _rand(alnum, 34),
        "CRED_PRIVATE": _rand(alnum, 48),
        "KEY_BODY": _rand(alnum + "/+", 64),
        "KAGGLE_KEY": _rand(hexd, 32),
    }
    src = Path(fixtures_dir) / "llm" / PLANTED_FIXTURE
    root = Path(dest) / "repo"
    shutil.copytree(src, root)
    for path in root.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for name, value in values.items():
                text = text.replace(f"@@{name}@@", value)
            path.write_text(text, encoding="utf-8")
    return root, values

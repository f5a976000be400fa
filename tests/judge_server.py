"""A real chat-completions server on 127.0.0.1 with scripted judge answers, for the judge tests.

The judge request carries the suite prompt; a prompt holding ``case: NAME`` gets NAME's script
and ``score: X`` sets the components' score (default 7). Scripts: ``ok``, ``fenced`` (prose and a
code fence), ``nocomma`` (missing commas between entries), ``ptbr`` (decimal commas), ``no_overall``,
``critical``, ``truncated`` (cut at max_tokens until the re-judge's larger budget), ``truncated_always``,
``garbage`` (no JSON at all), ``rate_limited`` (429 with Retry-After once), ``server_error``
(500 once), ``always_500``, ``slow`` (answers after ``slow_s``), ``noisy`` (score + a seeded
±1.5 per request). The server counts requests, per case and in flight.

Run alone for a manual try: ``python -m tests.judge_server --port 8099``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMPONENTS = ("voice", "rhetorical", "historical", "position", "integrity")
_CASE = re.compile(r"case: (\w+)")
_SCORE = re.compile(r"score: ([\d.]+)")
BIG_BUDGET = 3000  # a request with at least this max_tokens is a re-judge: truncation stops there


def _object(score: float, *, overall: bool = True, critical: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {name: score for name in COMPONENTS}
    if overall:
        body["overall_score"] = round(score - 0.3, 2)  # the judge's own overall is biased, as in Foundry
    body["critical_failures"] = critical or []
    body["justification"] = "The answer keeps the voice. " * 8
    return body


def scripted(case: str, score: float, *, attempt: int, max_tokens: int, rng: random.Random) -> tuple[int, str, str]:
    """(status, content, finish_reason) for one request of ``case`` (``attempt`` counts from 1)."""
    good = json.dumps(_object(score))
    if case == "fenced":
        return 200, f"Here is my evaluation.\n```json\n{json.dumps(_object(score), indent=2)}\n```\nDone.", "stop"
    if case == "nocomma":
        lines = [f'  "{name}": {score}' for name in COMPONENTS] + [f'  "overall_score": {score}']
        return 200, "{\n" + "\n".join(lines) + '\n  "critical_failures": []\n}', "stop"
    if case == "ptbr":
        text = str(score).replace(".", ",")
        return 200, "{" + ", ".join(f'"{name}": {text}' for name in COMPONENTS) + "}", "stop"
    if case == "no_overall":
        return 200, json.dumps(_object(score, overall=False)), "stop"
    if case == "critical":
        return 200, json.dumps(_object(score, critical=["broke the persona"])), "stop"
    if case in ("truncated", "truncated_always") and (case == "truncated_always" or max_tokens < BIG_BUDGET):
        return 200, good[: len(good) // 3], "length"
    if case == "garbage":
        return 200, "I cannot produce a score for this answer.", "stop"
    if case == "noisy":  # rng: seeded by the prompt and its request count, so arrival order does not matter
        return 200, json.dumps(_object(round(score + rng.uniform(-1.5, 1.5), 2))), "stop"
    return 200, good, "stop"


class JudgeServer:
    """The server, in a thread of the test process; ``url`` is its ``/v1`` base address."""

    def __init__(self, *, latency_s: float = 0.0, slow_s: float = 1.0, port: int = 0) -> None:
        self.latency_s = latency_s
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self.requests = 0
        self.per_case: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.authorizations: list[str | None] = []
        self.max_tokens_seen: list[int] = []
        self.times: dict[str, list[float]] = {}
        self.per_prompt: Counter[str] = Counter()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _begin(self, case: str, auth: str | None, max_tokens: int) -> int:
        with self.lock:
            self.requests += 1
            self.per_case[case] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.authorizations.append(auth)
            self.max_tokens_seen.append(max_tokens)
            self.times.setdefault(case, []).append(time.monotonic())
            return self.per_case[case]

    def _end(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def answer(self, body: dict[str, Any], auth: str | None) -> tuple[int, dict[str, str], dict[str, Any]]:
        """(status, headers, JSON body) for one request."""
        user = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        case = match.group(1) if (match := _CASE.search(user)) else "ok"
        score = float(match.group(1)) if (match := _SCORE.search(user)) else 7.0
        max_tokens = int(body.get("max_tokens") or 0)
        attempt = self._begin(case, auth, max_tokens)
        try:
            time.sleep(self.latency_s + (self.slow_s if case == "slow" else 0.0))
            if case == "rate_limited" and attempt == 1:
                return 429, {"Retry-After": "1"}, {"error": {"message": "rate limited"}}
            if (case == "server_error" and attempt == 1) or case == "always_500":
                return 500, {}, {"error": {"message": "internal error"}}
            with self.lock:
                self.per_prompt[user] += 1
                rng = random.Random(f"{user}\0{self.per_prompt[user]}")
            status, content, finish = scripted(case, score, attempt=attempt, max_tokens=max_tokens, rng=rng)
            usage = {"prompt_tokens": 100 + len(user) // 4, "completion_tokens": len(content) // 4}
            choice = {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}
            return status, {}, {"id": "x", "object": "chat.completion", "choices": [choice], "usage": usage}
        finally:
            self._end()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                if not self.path.endswith("/chat/completions"):
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                status, headers, payload = server.answer(body, self.headers.get("Authorization"))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                return

        return Handler


def main() -> None:
    """Serve until interrupted (a manual try of ``tunedeck bench judge``)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with JudgeServer(latency_s=args.latency, port=args.port) as server:
        print(server.url, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()

"""One chat-completions request to the judge, with retries: httpx, async, bounded concurrency.

Any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama, hosted APIs): POST
``{base_url}/chat/completions``. 429, 5xx, timeouts and dropped connections are retried with
exponential backoff, a ``Retry-After`` the server sends winning; other 4xx are not retried
(a wrong model name stays wrong). The API key travels in the Authorization header only: it is
never part of an error message, a log line or anything written to disk.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from engine.store.config import JudgeConfig
from engine.store.numbers import is_integer

MAX_WAIT_S = 120.0  # the longest pause between two tries, whatever Retry-After says
# Answers that say the judge itself is unusable, with the [judge] setting to look at: every other
# request would get the same, so the client sends nothing more once one comes.
STOP_STATUSES = {401: "api_key_env", 402: "api_key_env", 403: "api_key_env", 404: "model", 405: "base_url"}
_SHOWN = 120


@dataclass(frozen=True)
class JudgeReply:
    """The judge's text and what it cost."""

    text: str
    finish_reason: str | None
    tokens_in: int
    tokens_out: int
    latency_ms: float
    tries: int


class JudgeRequestError(Exception):
    """The request failed for good (retries spent, or a status that retrying cannot fix)."""

    def __init__(self, message: str, tries: int, status: int | None = None) -> None:
        super().__init__(message)
        self.tries = tries
        self.status = status  # the HTTP status of the last answer, None when none came


def retry_after_s(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number of seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _count(value: Any) -> int:
    """A token count from a server's ``usage`` (0 for a missing, negative or non-integer one, never a crash)."""
    return value if is_integer(value) and value >= 0 else 0


def _reply(body: Any, latency_ms: float, tries: int, redact: Callable[[str], str]) -> JudgeReply:
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"] or ""
    except (KeyError, IndexError, TypeError):
        raise JudgeRequestError(f"not a chat-completions answer: {redact(str(body))[:_SHOWN]}", tries) from None
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return JudgeReply(
        text=str(text),
        finish_reason=choice.get("finish_reason"),
        tokens_in=_count(usage.get("prompt_tokens")),
        tokens_out=_count(usage.get("completion_tokens")),
        latency_ms=round(latency_ms, 3),
        tries=tries,
    )


class JudgeClient:
    """An httpx client for one judging session: at most ``config.concurrency`` requests in flight."""

    def __init__(self, config: JudgeConfig, api_key: str | None) -> None:
        assert config.base_url is not None
        assert config.model is not None
        self.config = config
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=config.base_url,
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(max_connections=config.concurrency, max_keepalive_connections=config.concurrency),
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self._stopped = False
        self._api_key = api_key

    def stop_sending(self) -> None:
        """Send no new request (one in flight still gets its answer, which may have been paid for)."""
        self._stopped = True

    def _redacted(self, text: str) -> str:
        # A server or proxy may echo the Authorization header in its error body: that text ends
        # up in bench rows on disk, so the key is cut out of it here.
        return text.replace(self._api_key, "***") if self._api_key else text

    async def __aenter__(self) -> JudgeClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    def _wait(self, attempt: int, response: httpx.Response | None) -> float:
        asked = retry_after_s(response.headers.get("retry-after")) if response is not None else None
        return min(MAX_WAIT_S, asked if asked is not None else self.config.backoff_s * 2**attempt)

    async def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> JudgeReply:
        """The judge's answer to ``messages``; ``JudgeRequestError`` once retrying is pointless."""
        payload = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": max_tokens,
        }
        why = ""
        for attempt in range(self.config.retries + 1):
            response: httpx.Response | None = None
            async with self._slots:  # a slot is held for the request only, not for the backoff
                if self._stopped:
                    raise JudgeRequestError("not sent: judging stopped", attempt)
                began = time.perf_counter()
                try:
                    # httpx's timeout is per read: a server dripping a byte a second would never
                    # end. The whole request gets timeout_s.
                    async with asyncio.timeout(self.config.timeout_s):
                        response = await self._http.post("/chat/completions", json=payload)
                    if response.status_code in STOP_STATUSES:
                        self._stopped = True  # before the slot is freed: no waiting request goes out
                except (httpx.TimeoutException, httpx.TransportError, TimeoutError) as exc:
                    what = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
                    why = f"{what} talking to {self.config.base_url} (timeout_s={self.config.timeout_s:g})"
                latency = (time.perf_counter() - began) * 1000.0
            if response is not None:
                if response.status_code == 200:
                    try:
                        body = response.json()
                    except ValueError:
                        raise JudgeRequestError("the judge answered 200 with a non-JSON body", attempt + 1) from None
                    return _reply(body, latency, attempt + 1, self._redacted)
                shown = " ".join(self._redacted(response.text).split())[:_SHOWN]
                why = f"HTTP {response.status_code}: {shown}"
                if response.status_code != 429 and response.status_code < 500:
                    raise JudgeRequestError(why, attempt + 1, response.status_code)
            if attempt < self.config.retries:
                await asyncio.sleep(self._wait(attempt, response))
        status = response.status_code if response is not None else None
        raise JudgeRequestError(f"{why} (after {self.config.retries + 1} tries)", self.config.retries + 1, status)

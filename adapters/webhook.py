"""Posting to the ingest webhook over HTTP, retried the way Genesys retries.

`RetryPolicy` is Genesys' webhook behaviour: on 5xx and on no answer at all (timeouts,
refused connections) it retries, with growing delays; 4xx are final. `post_once` (async, one
shared `httpx.AsyncClient` with keep-alive) is one try, for a sender that keeps its own
schedule of retries; `post_with_retries` (sync) is the whole policy, for tools that replay.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import httpx

from adapters.settings import SettingsError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Genesys-style webhook retries: on 5xx and timeouts, [5] retries, [1 s] ×[2] backoff."""

    retries: int = 5
    initial_delay_s: float = 1.0
    backoff: float = 2.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.initial_delay_s < 0 or self.backoff < 1:
            raise SettingsError(
                f"retry policy needs retries ≥ 0, delay ≥ 0 and backoff ≥ 1; got {self.retries}, "
                f"{self.initial_delay_s}, {self.backoff}"
            )

    def delays(self) -> Iterator[float]:
        """Seconds to wait before each retry."""
        delay = self.initial_delay_s
        for _ in range(self.retries):
            yield delay
            delay *= self.backoff

    @staticmethod
    def retryable(status: int | None) -> bool:
        """5xx and no answer at all (timeouts, refused connections) are retried; 4xx are not."""
        return status is None or status >= 500


@dataclass(frozen=True, slots=True)
class Answer:
    """One try: the status (None: no answer at all) and the body or what went wrong."""

    status: int | None
    text: str
    latency_ms: float

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


def async_client(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    """One client for many posts, keeping up to `concurrency` connections alive."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=timeout_s, limits=limits)


async def post_once(
    client: httpx.AsyncClient, url: str, body: bytes, headers: Mapping[str, str]
) -> Answer:
    """One POST; a timeout or a connection failure is an answer without a status."""
    began = time.perf_counter()
    try:
        answer = await client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException as e:
        return Answer(None, f"timeout: {type(e).__name__}", _ms(began))
    except httpx.HTTPError as e:
        return Answer(None, f"{type(e).__name__}: {str(e)[:120]}", _ms(began))
    return Answer(answer.status_code, answer.text, _ms(began))


def post_with_retries(
    url: str,
    bodies: Sequence[tuple[bytes, Mapping[str, str]]],
    policy: RetryPolicy,
    *,
    timeout: float = 30.0,
) -> list[Answer]:
    """POST each body in turn, retrying per `policy`; the last answer of each."""
    answers: list[Answer] = []
    with httpx.Client(timeout=timeout) as client:
        for body, headers in bodies:
            delays = iter(policy.delays())
            while True:
                began = time.perf_counter()
                try:
                    response = client.post(url, content=body, headers=dict(headers))
                    answer = Answer(response.status_code, response.text, _ms(began))
                except httpx.HTTPError as e:
                    answer = Answer(None, f"{type(e).__name__}: {e}", _ms(began))
                delay = next(delays, None) if policy.retryable(answer.status) else None
                if delay is None:
                    answers.append(answer)
                    break
                time.sleep(delay)
    return answers


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000

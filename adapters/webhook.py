"""Posting to the ingest webhook over HTTP, retried the way its senders retry.

`RetryPolicy` is a sender's behaviour. Its defaults are Genesys' webhook policy (SPEC 10): on
5xx and on no answer at all (timeouts, refused connections) it retries, with growing delays;
4xx are final. `RetryPolicy.eventbridge()` is an Amazon EventBridge API destination's: 429
too, exponential backoff with jitter, `Retry-After` honoured, a 5-s timeout per try, and no
retry once the event is older than the target's maximum event age. `RetrySchedule` is one
delivery's schedule under a policy (the wait before each next try, or stop), shared by every
sender: `post_once` (async, one shared `httpx.AsyncClient` with keep-alive) is one try, for a
sender that keeps its own loop (the simulator's); `post_with_retries` (sync) is the whole
policy, for tools that replay.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from random import Random

import httpx

from adapters.settings import SettingsError

# Amazon EventBridge API destinations, from the EventBridge user guide: "API destinations"
# (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-api-destinations.html: requests
# time out after 5 s; 429 and 5xx are retried, other 4xx are not; `Retry-After` is read and the
# more conservative of it and the retry policy wins; a negative one stops the retries) and
# "Event retry policy and using dead-letter queues" (eb-rule-dlq.html: retries "with an
# exponential back off and jitter" until MaximumRetryAttempts or MaximumEventAgeInSeconds).
EVENTBRIDGE_TIMEOUT_S = 5.0
EVENTBRIDGE_MAX_EVENT_AGE_S = 61.0
"""`MaximumEventAgeInSeconds` of infra/aws/genesys-eventbridge.yaml (its default)."""
EVENTBRIDGE_RETRIES = 5
"""`MaximumRetryAttempts` of the same template (its default)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a sender retries and how long it waits; the defaults are Genesys' webhook policy:
    on 5xx and timeouts, [5] retries, [1 s] ×[2] backoff."""

    retries: int = 5
    initial_delay_s: float = 1.0
    backoff: float = 2.0
    jitter: bool = False
    """Full jitter: each wait drawn uniformly from [0, the exponential delay] (AWS's backoff)."""
    retry_throttled: bool = False
    """429 is retried as well (EventBridge); Genesys' webhook treats it as final."""
    honours_retry_after: bool = False
    """Wait at least an answer's `Retry-After`; a negative one stops the retries."""
    max_age_s: float | None = None
    """No retry starts later than this after the first try (EventBridge's maximum event age)."""
    timeout_s: float | None = None
    """Each try's timeout (EventBridge: 5 s); None: the sender's own."""

    def __post_init__(self) -> None:
        if self.retries < 0 or self.initial_delay_s < 0 or self.backoff < 1:
            raise SettingsError(
                f"retry policy needs retries ≥ 0, delay ≥ 0 and backoff ≥ 1; got {self.retries}, "
                f"{self.initial_delay_s}, {self.backoff}"
            )
        if self.max_age_s is not None and self.max_age_s <= 0:
            raise SettingsError(f"the maximum event age must be > 0 s, got {self.max_age_s}")

    @classmethod
    def eventbridge(
        cls,
        retries: int = EVENTBRIDGE_RETRIES,
        max_age_s: float = EVENTBRIDGE_MAX_EVENT_AGE_S,
        initial_delay_s: float = 1.0,
    ) -> RetryPolicy:
        """An EventBridge rule target's retry policy toward an API destination."""
        return cls(
            retries,
            initial_delay_s,
            2.0,
            jitter=True,
            retry_throttled=True,
            honours_retry_after=True,
            max_age_s=max_age_s,
            timeout_s=EVENTBRIDGE_TIMEOUT_S,
        )

    def delays(self, rng: Random | None = None) -> Iterator[float]:
        """Seconds to wait before each retry (jittered by `rng` when the policy jitters)."""
        delay = self.initial_delay_s
        for _ in range(self.retries):
            yield rng.uniform(0.0, delay) if self.jitter and rng is not None else delay
            delay *= self.backoff

    def retryable(self, status: int | None) -> bool:
        """5xx and no answer at all (timeouts, refused connections) are retried, 429 when the
        policy says so; other 4xx are not."""
        return status is None or status >= 500 or (self.retry_throttled and status == 429)

    def wait(self, delay: float, retry_after_s: float | None) -> float | None:
        """The wait before the next try given the answer's `Retry-After`; None: stop."""
        if not self.honours_retry_after or retry_after_s is None:
            return delay
        if retry_after_s < 0:
            return None
        return max(delay, retry_after_s)


class RetrySchedule:
    """One delivery's retries under `policy`, from its first try at `began` (a monotonic
    clock's reading; `rng` jitters the waits of a jittering policy)."""

    __slots__ = ("_began", "_delays", "_policy", "expired")

    def __init__(self, policy: RetryPolicy, began: float, rng: Random | None = None) -> None:
        self._policy = policy
        self._delays = policy.delays(rng)
        self._began = began
        self.expired = False
        """Stopped because the next retry would start past the policy's maximum event age."""

    def next_wait(
        self, status: int | None, retry_after_s: float | None, now: float
    ) -> float | None:
        """Seconds to wait before the next try after an answer (`now` on `began`'s clock); None:
        no more tries (a final answer, the retries spent, a negative `Retry-After`, or the
        maximum event age reached)."""
        policy = self._policy
        if not policy.retryable(status):
            return None
        delay = next(self._delays, None)
        if delay is None:
            return None
        wait = policy.wait(delay, retry_after_s)
        if wait is None:  # a negative Retry-After: the receiver asks not to retry
            return None
        if policy.max_age_s is not None and now - self._began + wait > policy.max_age_s:
            self.expired = True
            return None
        return wait


@dataclass(frozen=True, slots=True)
class Answer:
    """One try: the status (None: no answer at all) and the body or what went wrong."""

    status: int | None
    text: str
    latency_ms: float
    retry_after_s: float | None = None
    """The answer's `Retry-After` in seconds (delta-seconds form only), if it sent one."""

    @property
    def ok(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


def retry_after_of(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` as seconds when it is a number (an HTTP date is ignored)."""
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def async_client(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    """One client for many posts, keeping up to `concurrency` connections alive."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(timeout=timeout_s, limits=limits)


async def post_once(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout_s: float | None = None,
) -> Answer:
    """One POST (`timeout_s`: this try's, else the client's); a timeout or a connection failure
    is an answer without a status."""
    began = time.perf_counter()
    timeout = httpx.USE_CLIENT_DEFAULT if timeout_s is None else httpx.Timeout(timeout_s)
    try:
        answer = await client.post(url, content=body, headers=dict(headers), timeout=timeout)
    except httpx.TimeoutException as e:
        return Answer(None, f"timeout: {type(e).__name__}", _ms(began))
    except httpx.HTTPError as e:
        return Answer(None, f"{type(e).__name__}: {str(e)[:120]}", _ms(began))
    return Answer(answer.status_code, answer.text, _ms(began), retry_after_of(answer.headers))


def post_with_retries(
    url: str,
    bodies: Sequence[tuple[bytes, Mapping[str, str]]],
    policy: RetryPolicy,
    *,
    timeout: float = 30.0,
    rng: Random | None = None,
) -> list[Answer]:
    """POST each body in turn, retrying per `policy` (`RetrySchedule`); the last answer of each.

    Each try times out after the policy's `timeout_s`, else `timeout`; `rng` jitters the waits
    of a jittering policy (None: a fresh one).
    """
    rng = rng or Random()
    answers: list[Answer] = []
    per_try = policy.timeout_s if policy.timeout_s is not None else timeout
    with httpx.Client(timeout=per_try) as client:
        for body, headers in bodies:
            retries = RetrySchedule(policy, time.monotonic(), rng)
            while True:
                began = time.perf_counter()
                try:
                    response = client.post(url, content=body, headers=dict(headers))
                    answer = Answer(
                        response.status_code,
                        response.text,
                        _ms(began),
                        retry_after_of(response.headers),
                    )
                except httpx.HTTPError as e:
                    answer = Answer(None, f"{type(e).__name__}: {e}", _ms(began))
                wait = retries.next_wait(answer.status, answer.retry_after_s, time.monotonic())
                if wait is None:
                    answers.append(answer)
                    break
                time.sleep(wait)
    return answers


def _ms(began: float) -> float:
    return (time.perf_counter() - began) * 1000

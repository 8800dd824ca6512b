"""`adapters.webhook.RetrySchedule`: the one retry step the simulator's senders and the ops
replay share, for Genesys' webhook policy and an EventBridge rule's; and `post_with_retries`,
the ops replay's sender, following it against a local server."""

from __future__ import annotations

from itertools import pairwise
from random import Random

from adapters.webhook import RetryPolicy, RetrySchedule, post_with_retries
from tests.simulator.http_server import Answer as ServerAnswer
from tests.simulator.http_server import Seen, serve

GENESYS = RetryPolicy()
EVENTBRIDGE = RetryPolicy.eventbridge(retries=5, max_age_s=61.0)


def _waits(schedule: RetrySchedule, status: int | None) -> list[float]:
    """The waits until the schedule stops, answering `status` every time."""
    waits: list[float] = []
    now = 0.0
    while (wait := schedule.next_wait(status, None, now)) is not None:
        waits.append(wait)
        now += wait
    return waits


def test_genesys_retries_5xx_and_no_answer_with_doubling_waits() -> None:
    assert _waits(RetrySchedule(GENESYS, 0.0), 503) == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert _waits(RetrySchedule(GENESYS, 0.0), None) == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_genesys_treats_429_and_other_4xx_as_final() -> None:
    for status in (400, 401, 413, 429):
        assert RetrySchedule(GENESYS, 0.0).next_wait(status, 5.0, 0.0) is None


def test_genesys_ignores_retry_after() -> None:
    assert RetrySchedule(GENESYS, 0.0).next_wait(503, 30.0, 0.0) == 1.0


def test_eventbridge_retries_429_and_waits_at_least_retry_after() -> None:
    schedule = RetrySchedule(EVENTBRIDGE, 0.0, Random(7))
    wait = schedule.next_wait(429, 3.0, 0.0)
    assert wait == 3.0  # the jittered delay (≤ 1 s) is shorter than Retry-After


def test_eventbridge_stops_on_a_negative_retry_after() -> None:
    assert RetrySchedule(EVENTBRIDGE, 0.0, Random(7)).next_wait(503, -1.0, 0.0) is None


def test_eventbridge_jitters_within_the_exponential_delay() -> None:
    waits = _waits(RetrySchedule(EVENTBRIDGE, 0.0, Random(3)), 503)
    assert len(waits) == 5
    assert all(0.0 <= wait <= 2.0**n for n, wait in enumerate(waits))
    assert waits != [1.0, 2.0, 4.0, 8.0, 16.0]


def test_eventbridge_gives_up_at_the_maximum_event_age() -> None:
    schedule = RetrySchedule(RetryPolicy.eventbridge(retries=5, max_age_s=10.0), 0.0, Random(1))
    assert schedule.next_wait(503, 4.0, 0.0) == 4.0
    assert not schedule.expired
    assert schedule.next_wait(503, 4.0, 8.0) is None  # the retry would start at 12 s > 10 s
    assert schedule.expired


def test_a_final_answer_does_not_spend_a_retry_or_count_as_expired() -> None:
    schedule = RetrySchedule(EVENTBRIDGE, 0.0, Random(1))
    assert schedule.next_wait(200, None, 0.0) is None
    assert not schedule.expired
    assert len(_waits(schedule, 503)) == 5


def test_post_with_retries_follows_the_schedule_against_a_server() -> None:
    """The ops replay's sync sender: 5xx retried with the policy's waits until accepted, 429
    final under Genesys' policy, the last answer of a delivery kept when the retries run out."""
    fast = RetryPolicy(retries=3, initial_delay_s=0.05)

    def script(seen: Seen, before: int) -> ServerAnswer:
        kind = seen.path.rsplit("/", 1)[1]
        if kind == "flaky":
            return ServerAnswer(503 if before < 2 else 200)
        return ServerAnswer(429 if kind == "throttled" else 503)

    with serve(script) as (url, server):
        flaky = post_with_retries(f"{url}/flaky", [(b"{}", {})], fast)
        arrivals = [seen.at for seen in server.seen]
        throttled = post_with_retries(f"{url}/throttled", [(b"{}", {})], fast)
        jittered = RetryPolicy.eventbridge(retries=2, initial_delay_s=0.05)
        down = post_with_retries(f"{url}/down", [(b"{}", {})], jittered, rng=Random(5))
        paths = [seen.path.rsplit("/", 1)[1] for seen in server.seen]
    assert [answer.status for answer in flaky + throttled + down] == [200, 429, 503]
    assert paths == ["flaky"] * 3 + ["throttled"] + ["down"] * 3
    for gap, delay in zip(pairwise(arrivals), (0.05, 0.1), strict=True):
        assert delay <= gap[1] - gap[0] < delay + 0.5

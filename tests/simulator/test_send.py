"""`send` against a scripted local HTTP server: pacing, the retry policy, signing, the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
from itertools import pairwise
from pathlib import Path
from random import Random

import orjson
import pytest
from typer.testing import CliRunner

from adapters.webhook import RetryPolicy
from simulator.cli import app
from simulator.errors import UsageError
from simulator.send.delivery import Attempt, Delivery, Outcome, deliver_with_retries
from simulator.send.http_target import INGEST_ROUTE, ingest_url
from simulator.send.sending import TargetSpec, send
from simulator.send.sendlog import read_log
from simulator.send.stats import SendSummary
from tests.simulator.http_server import Answer, Seen, serve

runner = CliRunner()
FAST = RetryPolicy(retries=5, initial_delay_s=0.05, backoff=2.0)


def bodies(n: int) -> list[Delivery]:
    return [Delivery(i, orjson.dumps({"n": i})) for i in range(1, n + 1)]


def test_the_open_loop_holds_the_target_rate() -> None:
    with serve() as (url, seen):
        result = send(bodies(150), TargetSpec(url=url, concurrency=8), rate=100.0)
    arrivals = sorted(s.at for s in seen.seen)
    measured = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
    assert len(arrivals) == 150
    assert measured == pytest.approx(100.0, rel=0.1)
    assert result.achieved_rate == pytest.approx(100.0, rel=0.1)
    lag = SendSummary.of(result.outcomes).lag_ms["p50"]
    assert lag is not None and lag < 50


def test_5xx_is_retried_with_doubling_delays_until_it_succeeds() -> None:
    def script(seen: Seen, before: int) -> Answer:
        return Answer(503 if seen.line == 2 and before < 3 else 200)

    with serve(script) as (url, seen):
        result = send(bodies(3), TargetSpec(url=url, policy=FAST), rate=0)
    outcome = result.outcomes[1]
    assert (outcome.line, outcome.attempts, outcome.accepted) == (2, 4, True)
    assert [t.status for t in outcome.tries] == [503, 503, 503, 200]
    gaps = [b.at - a.at for a, b in zip(seen.by_line(2), seen.by_line(2)[1:], strict=False)]
    for gap, delay in zip(gaps, (0.05, 0.1, 0.2), strict=True):
        assert delay <= gap < delay + 0.15
    assert [o.attempts for o in result.outcomes] == [1, 4, 1]


def test_timeouts_are_retried_4xx_are_not_and_the_last_failure_gives_up() -> None:
    def script(seen: Seen, before: int) -> Answer:
        if seen.line == 1:
            return Answer(delay_s=0.6 if before == 0 else 0.0)  # the first try times out
        if seen.line == 2:
            return Answer(400, body=b'{"status":"rejected"}')
        return Answer(500)

    policy = RetryPolicy(retries=2, initial_delay_s=0.01, backoff=2.0)
    with serve(script) as (url, seen):
        spec = TargetSpec(url=url, policy=policy, timeout_s=0.3)
        first, second, third = send(bodies(3), spec, rate=0).outcomes
    assert [t.status for t in first.tries] == [None, 200] and first.accepted
    assert first.tries[0].error is not None and "timeout" in first.tries[0].error
    assert (second.attempts, second.status, second.gave_up) == (1, 400, False)
    assert (third.attempts, third.gave_up, third.accepted) == (3, True, False)
    assert len(seen.by_line(3)) == 3


def test_bodies_are_signed_and_sent_as_they_are() -> None:
    broken = Delivery(7, b'{"truncated": ')
    with serve() as (url, seen):
        send([broken], TargetSpec(url=url, secret=b"s3cret"), rate=0)
        send([broken], TargetSpec(url=url), rate=0)
    signed, plain = seen.seen
    digest = hmac.new(b"s3cret", broken.body, hashlib.sha256).hexdigest()
    assert signed.headers["x-signature-256"] == f"sha256={digest}"
    assert "x-signature-256" not in plain.headers
    assert signed.body == broken.body and signed.path == INGEST_ROUTE
    assert signed.headers["x-request-id"] == "simulator-line-7"
    assert signed.headers["content-type"] == "application/json"


def test_target_urls_and_specs() -> None:
    assert ingest_url("http://h:1") == f"http://h:1{INGEST_ROUTE}"
    assert ingest_url("http://h:1/") == f"http://h:1{INGEST_ROUTE}"
    assert ingest_url("http://h:1/other/route") == "http://h:1/other/route"
    with pytest.raises(UsageError, match="http"):
        ingest_url("localhost:7071")
    with pytest.raises(UsageError, match="not both"):
        TargetSpec(url="http://h:1", eventhub=True)
    with pytest.raises(UsageError, match="not both"):
        TargetSpec()


def test_the_send_command_logs_every_try_and_signs_from_the_environment(
    written: dict[str, Path], tmp_path: Path
) -> None:
    data = tmp_path / "chaos"  # a copy: the send log lands beside the deliveries
    shutil.copytree(written["chaos"], data)
    lines = (data / "deliveries.jsonl").read_bytes().splitlines()
    first = lines[0]

    def script(seen: Seen, before: int) -> Answer:
        once = seen.body == first and not any(s.body == first for s in recorder.seen[:-1])
        return Answer(503 if once else 200)

    with serve(script) as (url, recorder):
        result = runner.invoke(
            app,
            ["send", str(data), "--target", url, "--rate", "0", "--retry-delay", "0.01", "-q"],
            env={"SIM_WEBHOOK_SECRET": "from-env"},
        )
    assert result.exit_code == 0, result.output
    log = data / "send.jsonl"  # the default: beside the deliveries
    assert "target unpaced" in result.output and "1 retries" in result.output
    seen = recorder.seen
    assert len(seen) == len(lines) + 1
    # EventBridge events go as the API destination sends them: it cannot sign them.
    relayed = [s for s in seen if s.headers["user-agent"] == "genesys-simulator"]
    bridged = [s for s in seen if s.headers["user-agent"] == "Amazon/EventBridge/ApiDestinations"]
    assert relayed and bridged and len(relayed) + len(bridged) == len(seen)
    assert all(s.headers["x-signature-256"].startswith("sha256=") for s in relayed)
    assert not any("x-signature-256" in s.headers for s in bridged)
    assert all(orjson.loads(s.body)["detail-type"] for s in bridged)
    logged = read_log(log)
    assert [o.line for o in logged] == list(range(1, len(lines) + 1))
    assert logged[0].attempts == 2 and [t.status for t in logged[0].tries] == [503, 200]


def test_give_ups_exit_5(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(b'{"a": 1}\n{"b": 2}\n')
    with serve(lambda seen, before: Answer(503)) as (url, _):
        result = runner.invoke(
            app, ["send", str(capture), "--target", url, "--retries", "1", "--retry-delay", "0"]
        )
    assert result.exit_code == 5
    assert "2 deliveries were given up" in result.output
    assert (tmp_path / "send.jsonl").exists()


def test_send_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["send", str(tmp_path), "--target", "http://127.0.0.1:9"])
    neither = runner.invoke(app, ["send", str(tmp_path)])
    assert missing.exit_code == 2 and "simulator generate" in missing.output
    assert neither.exit_code == 2 and "--target URL" in neither.output


# ------------------------------------------------------------------------- the EventBridge route


def eventbridge_event(n: int) -> bytes:
    """One EventBridge event as the Genesys partner source puts it on the bus."""
    topic = "v2.detail.events.conversation.{id}.customer.start"
    return orjson.dumps(
        {
            "version": "0",
            "id": f"event-{n}",
            "detail-type": topic,
            "source": "aws.partner/genesys.com/cloud/org/conversation-events",
            "detail": {
                "topicName": topic.replace("{id}", f"c{n}"),
                "eventBody": {"conversationId": f"c{n}", "eventTime": 1_790_000_000_000 + n},
            },
        }
    )


def test_an_eventbridge_event_goes_with_the_api_destinations_headers_and_the_key() -> None:
    deliveries = [Delivery(1, eventbridge_event(1)), Delivery(2, orjson.dumps({"n": 2}))]
    with serve() as (url, seen):
        spec = TargetSpec(url=url, secret=b"s3cret", function_key="the-key")
        outcomes = send(deliveries, spec, rate=0).outcomes
    assert [o.route for o in outcomes] == ["eventbridge", "webhook"]
    bridged = next(s for s in seen.seen if s.body == deliveries[0].body)
    relayed = next(s for s in seen.seen if s.body == deliveries[1].body)
    assert {k: v for k, v in bridged.headers.items() if k not in ("host", "content-length")} == {
        "user-agent": "Amazon/EventBridge/ApiDestinations",
        "content-type": "application/json; charset=utf-8",
        "range": "bytes=0-1048575",
        "accept-encoding": "gzip,deflate",
        "connection": "close",
        "x-functions-key": "the-key",
    }
    assert relayed.headers["x-request-id"] == "simulator-line-2"
    assert relayed.headers["x-signature-256"].startswith("sha256=")
    assert "x-functions-key" not in relayed.headers


def test_eventbridge_retries_429_and_5xx_with_jittered_exponential_waits() -> None:
    body = eventbridge_event(1)

    def script(seen: Seen, before: int) -> Answer:
        count = sum(1 for s in recorder.seen if s.body == body)
        return Answer({1: 429, 2: 503, 3: 500}.get(count, 200))

    policy = RetryPolicy.eventbridge(retries=5, max_age_s=30, initial_delay_s=0.2)
    with serve(script) as (url, recorder):
        spec = TargetSpec(url=url, eventbridge_policy=policy)
        [outcome] = send([Delivery(1, body)], spec, rate=0).outcomes
        relay = send([Delivery(2, orjson.dumps({"a": 1}))], TargetSpec(url=url), rate=0).outcomes
    tries = outcome.tries
    assert [t.status for t in tries] == [429, 503, 500, 200] and outcome.accepted
    waits = [b.started_at - a.started_at - a.latency_ms / 1000 for a, b in pairwise(tries)]
    nominal = list(policy.delays())[:3]
    jittered = list(policy.delays(Random("eventbridge:1")))[:3]
    assert jittered != nominal and all(0 <= j <= n for j, n in zip(jittered, nominal, strict=True))
    for wait, want in zip(waits, jittered, strict=True):
        assert want - 0.02 <= wait < want + 0.2
    assert relay[0].route == "webhook"


def test_429_is_final_for_the_webhook_route_but_not_for_eventbridge() -> None:
    with serve(lambda seen, before: Answer(429)) as (url, _):
        spec = TargetSpec(
            url=url,
            policy=FAST,
            eventbridge_policy=RetryPolicy.eventbridge(2, 30, initial_delay_s=0.01),
        )
        bridged, relayed = send(
            [Delivery(1, eventbridge_event(1)), Delivery(2, b'{"a": 1}')], spec, rate=0
        ).outcomes
    assert (relayed.attempts, relayed.gave_up) == (1, False)
    assert (bridged.attempts, bridged.gave_up, bridged.expired) == (3, True, False)
    summary = SendSummary.of([bridged, relayed])
    assert (summary.eventbridge, summary.throttled) == (1, 4)


def test_eventbridge_waits_at_least_retry_after_and_stops_on_a_negative_one() -> None:
    policy = RetryPolicy.eventbridge(3, 60, initial_delay_s=0.01)
    assert policy.wait(0.5, 2.0) == 2.0 and policy.wait(3.0, 2.0) == 3.0
    assert policy.wait(0.5, None) == 0.5 and policy.wait(0.5, -1.0) is None

    async def main() -> list[Outcome]:
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        answers = iter([Attempt(503, 0, 1, None, 1.5), Attempt(503, 0, 1, None, -1), None])

        async def attempt() -> Attempt:
            answer = next(answers)
            assert answer is not None, "no try after a negative Retry-After"
            return answer

        outcome = await deliver_with_retries(1, attempt, policy, sleep, rng=Random(1))
        assert waits == [1.5]
        return [outcome]

    [outcome] = asyncio.run(main())
    assert (outcome.attempts, outcome.gave_up, outcome.expired) == (2, True, False)


def test_eventbridge_gives_up_at_the_maximum_event_age() -> None:
    clock = [0.0]

    async def main() -> Outcome:
        async def sleep(seconds: float) -> None:
            clock[0] += seconds

        async def attempt() -> Attempt:
            clock[0] += 5.0  # every try times out after the API destination's 5 s
            return Attempt(None, clock[0], 5000.0, "timeout")

        policy = RetryPolicy.eventbridge()  # the template's: 5 retries, 61 s
        return await deliver_with_retries(
            1, attempt, policy, sleep, rng=Random(7), monotonic=lambda: clock[0]
        )

    outcome = asyncio.run(main())
    assert outcome.gave_up and outcome.route == "webhook"  # the route is the caller's to say
    assert clock[0] <= 61.0 + 5.0  # no retry started past the age
    # The last retry starts within 5 × 5 s of tries + (1+2+4+8+16) s of waits < 61 s: all made.
    assert (outcome.attempts, outcome.expired) == (6, False)
    short = asyncio.run(_expiring(RetryPolicy.eventbridge(5, max_age_s=7.0)))
    assert short.expired and short.attempts < 6


async def _expiring(policy: RetryPolicy) -> Outcome:
    clock = [0.0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    async def attempt() -> Attempt:
        clock[0] += 5.0
        return Attempt(None, clock[0], 5000.0, "timeout")

    return await deliver_with_retries(
        1, attempt, policy, sleep, rng=Random(7), monotonic=lambda: clock[0]
    )


def test_a_slow_answer_is_a_timeout_for_eventbridge_only() -> None:
    def script(seen: Seen, before: int) -> Answer:
        return Answer(delay_s=0.5 if not any(s.body == seen.body for s in rec.seen[:-1]) else 0)

    quick = RetryPolicy(1, 0.01, 2.0, jitter=True, retry_throttled=True, timeout_s=0.2)
    with serve(script) as (url, rec):
        spec = TargetSpec(url=url, eventbridge_policy=quick, timeout_s=5.0)
        bridged, relayed = send(
            [Delivery(1, eventbridge_event(1)), Delivery(2, b'{"slow": 1}')], spec, rate=0
        ).outcomes
    assert [t.status for t in bridged.tries] == [None, 200]
    assert [t.status for t in relayed.tries] == [200]  # the relay waits 5 s


def test_the_simulators_eventbridge_defaults_are_the_templates() -> None:
    from cfnlint.decode import decode

    template, problems = decode(
        str(Path(__file__).resolve().parents[2] / "infra" / "aws" / "genesys-eventbridge.yaml")
    )
    assert not problems and template is not None
    parameters = template["Parameters"]
    policy = RetryPolicy.eventbridge()
    assert policy.retries == parameters["MaximumRetryAttempts"]["Default"]
    assert policy.max_age_s == parameters["MaximumEventAgeInSeconds"]["Default"]
    assert policy.timeout_s == 5.0


def test_the_send_command_takes_the_event_age_and_can_send_eventbridge_as_a_relay(
    tmp_path: Path,
) -> None:
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(eventbridge_event(1) + b"\n")
    with serve(lambda seen, before: Answer(503)) as (url, seen):
        args = ["send", str(capture), "--target", url, "--rate", "0", "-q"]
        aged = runner.invoke(app, [*args, "--max-event-age", "1", "--retry-delay", "0.01"])
        relayed = runner.invoke(
            app, [*args, "--no-eventbridge-route", "--retries", "1", "--retry-delay", "0"]
        )
    assert aged.exit_code == 5 and "past the maximum event age" in aged.output
    assert relayed.exit_code == 5
    agents = [s.headers["user-agent"] for s in seen.seen]
    assert agents[-2:] == ["genesys-simulator", "genesys-simulator"]
    assert "Amazon/EventBridge/ApiDestinations" in agents[:-2]

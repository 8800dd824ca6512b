"""`send` against a scripted local HTTP server: pacing, the retry policy, signing, the CLI."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from adapters.webhook import RetryPolicy
from simulator.cli import app
from simulator.errors import UsageError
from simulator.send.delivery import Delivery
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

    def script(seen: Seen, before: int) -> Answer:
        return Answer(503 if seen.line == 1 and before == 0 else 200)

    with serve(script) as (url, seen):
        result = runner.invoke(
            app,
            ["send", str(data), "--target", url, "--rate", "0", "--retry-delay", "0.01", "-q"],
            env={"SIM_WEBHOOK_SECRET": "from-env"},
        )
    assert result.exit_code == 0, result.output
    log = data / "send.jsonl"  # the default: beside the deliveries
    assert "target unpaced" in result.output and "1 retries" in result.output
    assert len(seen.seen) == len(lines) + 1
    assert all(s.headers["x-signature-256"].startswith("sha256=") for s in seen.seen)
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

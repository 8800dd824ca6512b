"""The AWS half: `infra/aws/genesys-eventbridge.yaml` linted, read, and its pattern matched.

cfn-lint runs in-process. The event pattern, resolved for a set of parameter values, is matched
against real-shaped EventBridge events (Genesys's partner event envelope: `detail-type` is the
subscribed topic, `detail` the notification) by moto's EventBridge matcher, which runs in the
`.venv-moto` tool virtualenv (`make setup` builds it) because its botocore clashes with our
pins. For each rule of the pattern there is an event that passes it and one that does not.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import decode

from adapters.webhook import RetryPolicy
from ops.genesys import plan as planning
from schemas.wire import TOPIC_PREFIX
from tests.genesys.partner_events import CONVERSATION, ORG, SOURCE
from tests.genesys.partner_events import partner_event as event

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "aws" / "genesys-eventbridge.yaml"
MOTO_PYTHON = ROOT / ".venv-moto" / "bin" / "python"
PROBE = Path(__file__).with_name("eventpattern_probe.py")

API_DESTINATION_TIMEOUT_S = 5  # EventBridge gives an API destination 5 s to answer


@pytest.fixture(scope="module")
def template() -> Any:
    decoded, problems = decode(str(TEMPLATE))
    assert problems == [], problems
    return decoded


def resources(template: Any) -> dict[str, Any]:
    return {name: r["Properties"] for name, r in template["Resources"].items()}


# ---------------------------------------------------------------------- lint and shape
def test_cfn_lint_finds_nothing() -> None:
    matches = lint_file(TEMPLATE)
    assert [f"{m.rule.id} {m.linenumber}: {m.message}" for m in matches] == []


def test_the_partner_bus_is_the_source_genesys_reports(template: Any) -> None:
    bus = resources(template)["PartnerEventBus"]
    assert bus["Name"] == bus["EventSourceName"] == {"Ref": "PartnerEventSourceName"}
    assert resources(template)["ConversationEventsRule"]["EventBusName"] == {
        "Ref": "PartnerEventBus"
    }
    allowed = re.compile(template["Parameters"]["PartnerEventSourceName"]["AllowedPattern"])
    assert allowed.match(SOURCE)
    assert allowed.match(planning.partner_event_source_name(ORG, "prod.events_1"))
    assert not allowed.match(f"aws.partner/example.com/{ORG}/x")
    assert not allowed.match(planning.partner_event_source_name(ORG, "has space"))


def test_the_connection_sends_the_function_key_header(template: Any) -> None:
    assert template["Parameters"]["FunctionKey"]["NoEcho"] is True
    connection = resources(template)["IngestConnection"]
    assert connection["AuthorizationType"] == "API_KEY"
    assert connection["AuthParameters"]["ApiKeyAuthParameters"] == {
        "ApiKeyName": "x-functions-key",
        "ApiKeyValue": {"Ref": "FunctionKey"},
    }


def test_the_destination_posts_to_the_webhook_route(template: Any) -> None:
    destination = resources(template)["IngestDestination"]
    assert destination["HttpMethod"] == "POST"
    assert destination["InvocationEndpoint"] == {"Ref": "IngestEndpoint"}
    assert destination["InvocationRateLimitPerSecond"] == {"Ref": "InvocationRateLimitPerSecond"}
    endpoint = re.compile(template["Parameters"]["IngestEndpoint"]["AllowedPattern"])
    assert endpoint.match("https://genesys-func.azurewebsites.net/api/v1/genesys/events")
    assert not endpoint.match("http://genesys-func.azurewebsites.net/api/v1/genesys/events")
    assert not endpoint.match("https://genesys-func.azurewebsites.net/api/health")


def test_retries_match_the_seed_policy_and_fail_into_the_queue(template: Any) -> None:
    seed = RetryPolicy()
    parameters = template["Parameters"]
    target = resources(template)["ConversationEventsRule"]["Targets"][0]
    assert target["Arn"] == {"Fn::GetAtt": ["IngestDestination", "Arn"]}
    assert target["RetryPolicy"] == {
        "MaximumRetryAttempts": {"Ref": "MaximumRetryAttempts"},
        "MaximumEventAgeInSeconds": {"Ref": "MaximumEventAgeInSeconds"},
    }
    assert parameters["MaximumRetryAttempts"]["Default"] == seed.retries
    longest = sum(seed.delays()) + (seed.retries + 1) * API_DESTINATION_TIMEOUT_S
    assert parameters["MaximumEventAgeInSeconds"]["Default"] == longest == 61
    assert parameters["MaximumEventAgeInSeconds"]["MinValue"] == 60  # EventBridge's minimum
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}


def test_the_dead_letter_queue_admits_only_the_rule_and_is_watched(template: Any) -> None:
    found = resources(template)
    [statement] = found["DeadLetterQueuePolicy"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": {"Fn::GetAtt": ["ConversationEventsRule", "Arn"]}}
    }
    alarm = found["DeadLetterAlarm"]
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
    ]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")


def test_the_role_may_invoke_only_the_destination(template: Any) -> None:
    role = resources(template)["InvokeIngestRole"]
    [policy] = role["Policies"]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "events:InvokeApiDestination"
    assert statement["Resource"] == {"Fn::GetAtt": ["IngestDestination", "Arn"]}


# ---------------------------------------------------------------------- the pattern, resolved
def evaluate(node: Any, parameters: dict[str, Any], conditions: dict[str, Any]) -> Any:
    """The few intrinsic functions the pattern and its conditions use; anything else fails."""
    if isinstance(node, list):
        return [evaluate(item, parameters, conditions) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"}:
        return parameters[node["Ref"]]
    if set(node) == {"Fn::If"}:
        name, then, otherwise = node["Fn::If"]
        chosen = then if evaluate(conditions[name], parameters, conditions) else otherwise
        return evaluate(chosen, parameters, conditions)
    if set(node) == {"Fn::Not"}:
        return not evaluate(node["Fn::Not"][0], parameters, conditions)
    if set(node) == {"Fn::Equals"}:
        left, right = evaluate(node["Fn::Equals"], parameters, conditions)
        return left == right
    if set(node) == {"Fn::Join"}:
        separator, items = node["Fn::Join"]
        return separator.join(evaluate(items, parameters, conditions))
    assert not any(key.startswith("Fn::") for key in node), f"unsupported intrinsic {node}"
    return {key: evaluate(value, parameters, conditions) for key, value in node.items()}


def pattern_for(template: Any, media_types: list[str]) -> dict[str, Any]:
    parameters = {"PartnerEventSourceName": SOURCE, "MediaTypes": media_types}
    raw = template["Resources"]["ConversationEventsRule"]["Properties"]["EventPattern"]
    return evaluate(raw, parameters, template["Conditions"])


def test_the_pattern_prefix_is_the_topics_the_connect_command_subscribes(template: Any) -> None:
    pattern = pattern_for(template, [])
    assert pattern["detail-type"] == [{"prefix": TOPIC_PREFIX}]
    assert all(topic.startswith(TOPIC_PREFIX) for topic in planning.topic_filters())


def matches(pattern: dict[str, Any], events: list[dict[str, Any]]) -> list[bool]:
    assert MOTO_PYTHON.exists(), (
        f"{MOTO_PYTHON} is missing: run `make setup` (it builds .venv-moto)"
    )
    done = subprocess.run(
        [str(MOTO_PYTHON), str(PROBE)],
        input=json.dumps({"pattern": pattern, "events": events}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert isinstance(answer, list) and len(answer) == len(events)
    return answer


OTHER_SOURCE = planning.partner_event_source_name("00000000-0000-4000-8000-000000000000", "x")
CASES = [
    # (what, event, delivered with MediaTypes=VOICE,CHAT, delivered with MediaTypes empty)
    ("a voice detail event", event(), True, True),
    ("a chat detail event", event(media="CHAT"), True, True),
    (
        "the concrete topic as detail-type",
        event(topic=f"{TOPIC_PREFIX}{CONVERSATION}.acw"),
        True,
        True,
    ),
    ("source: another partner source", event(source=OTHER_SOURCE), False, False),
    ("detail-type: a user topic", event(topic="v2.users.{id}.presence"), False, False),
    (
        "detail-type: transcription",
        event(topic="v2.conversations.{id}.transcription"),
        False,
        False,
    ),
    ("mediaType: a message, filtered out", event(media="MESSAGE"), False, True),
    ("mediaType: lower case is not Genesys's", event(media="voice"), False, True),
    (
        "mediaType: absent (attributes)",
        event(topic=f"{TOPIC_PREFIX}{{id}}.attributes", media=None),
        True,
        True,
    ),
]


def test_each_rule_of_the_pattern_passes_one_event_and_stops_another(template: Any) -> None:
    events = [case[1] for case in CASES]
    filtered = matches(pattern_for(template, ["VOICE", "CHAT"]), events)
    unfiltered = matches(pattern_for(template, []), events)
    assert dict(
        zip([c[0] for c in CASES], zip(filtered, unfiltered, strict=True), strict=True)
    ) == {what: (with_filter, without) for what, _, with_filter, without in CASES}


def test_every_subscribed_topic_passes_the_rule(template: Any) -> None:
    events = [event(topic=topic) for topic in planning.topic_filters()]
    assert matches(pattern_for(template, ["VOICE"]), events) == [True] * len(events)
    assert matches(pattern_for(template, []), events) == [True] * len(events)

"""Microsoft's JavaScript SDK against the emulator: the node:test suite in tests/js, run by node.

The suite (`tests/js/eventhubs.conformance.test.mjs`) reads its connection strings from the
environment, so the same file runs against a real namespace (devstack/eventhubs/README.md);
here they point at the session's emulator and Azurite. Node's output is the failure message.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from devstack.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "js" / "eventhubs.conformance.test.mjs"
HUB = "js-conformance"  # 4 partitions, nothing else reads it (tests/conftest.py)

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def test_the_javascript_sdk_finds_event_hubs_behaviour(local_stack: Stack) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "@azure" / "event-hubs").exists():
        pytest.fail("node and the pinned npm packages are needed: run `make setup`")
    env = {
        **os.environ,
        "EVENTHUB_CONNECTION_STRING": local_stack.eventhub_connection_string,
        "EVENTHUB_NAME": HUB,
        "STORAGE_CONNECTION_STRING": local_stack.storage_connection_string,
        "EVENTHUB_CONSUMER_GROUP": "$Default",
        "NODE_OPTIONS": "--no-deprecation",
    }
    done = subprocess.run(
        # --test-force-exit: the SDK's AMQP library keeps timers for a while after close.
        [node, "--test", "--test-force-exit", "--test-reporter=spec", str(SUITE)],
        capture_output=True,
        cwd=ROOT,
        env=env,
        timeout=240,
        check=False,
    )
    output = done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")
    if done.returncode != 0:
        message = f"node --test failed (exit {done.returncode}):\n{output[-20000:]}"
        pytest.fail(message, pytrace=False)
    counts = dict(re.findall(r"^\S* ?(tests|pass|fail|skipped|cancelled) (\d+)$", output, re.M))
    assert counts.get("fail") == "0" and counts.get("skipped") == "0", output[-3000:]
    assert int(counts.get("pass", "0")) >= 14, output[-3000:]  # the suite's tests all ran

"""The `simulator` command line through typer's CliRunner (and once as a real process)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from simulator.cli import app, main
from tests.simulator.fake_replay import edit_record, write_replay

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_generate_writes_the_three_files_and_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "set"
    result = runner.invoke(
        app,
        [
            "generate",
            "-n",
            "12",
            "--seed",
            "4",
            "--profile",
            "chaos",
            "--out",
            str(out),
            "-q",
            "--duplicate-rate",
            "0.5",
            "--drift-kinds",
            "unknown-field,enum-case",
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(files(out)) == ["deliveries.jsonl", "manifest.json", "truth.jsonl"]
    assert "generated profile 'chaos', seed 4" in result.output
    assert "micro-events/s" in result.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["knobs"]["duplicate_rate"] == 0.5
    assert manifest["knobs"]["drift_kinds"] == ["unknown-field", "enum-case"]


def test_every_option_can_come_from_the_environment(tmp_path: Path) -> None:
    by_option, by_env = tmp_path / "option", tmp_path / "env"
    options = [
        "generate",
        "-q",
        "-n",
        "10",
        "--seed",
        "8",
        "--profile",
        "mixed",
        "--late-rate",
        "0.4",
        "--media-mix",
        "chat=1,email=1",
        "--out",
        str(by_option),
    ]
    assert runner.invoke(app, options).exit_code == 0
    env = {
        "SIM_CONVERSATIONS": "10",
        "SIM_SEED": "8",
        "SIM_PROFILE": "mixed",
        "SIM_LATE_RATE": "0.4",
        "SIM_MEDIA_MIX": "chat=1,email=1",
        "SIM_OUT": str(by_env),
        "SIM_QUIET": "1",
    }
    result = runner.invoke(app, ["generate"], env=env)
    assert result.exit_code == 0, result.output
    assert files(by_option) == files(by_env)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duplicate-rate", "2"], "duplicate-rate"),
        (["--profile", "wild"], "wild"),
        (["--start", "last tuesday"], "'last tuesday' is not an ISO-8601 timestamp"),
        (["--format-mix", "smoke=1"], "unknown format"),
        (["--drift-kinds", "gremlins"], "unknown drift kind"),
        (["--media-mix", "voice=x"], "is not a number"),
        (["-n", "0"], "conversations"),
    ],
)
def test_bad_generate_options_exit_2_with_a_message(
    args: list[str], message: str, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["generate", "-q", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_an_unwritable_output_exits_3(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["generate", "-q", "-n", "3", "--out", str(blocker / "sub")])
    assert result.exit_code == 3
    assert "cannot write" in result.output


@pytest.fixture
def generated(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    args = ["generate", "-q", "-n", "30", "--profile", "chaos", "--out", str(data)]
    assert runner.invoke(app, args).exit_code == 0
    return data, write_replay(data, tmp_path / "replay")


def test_verify_exits_0_when_everything_matches(generated: tuple[Path, Path]) -> None:
    data, replay = generated
    result = runner.invoke(app, ["verify", str(data), "--offline", str(replay), "-q"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output


def test_verify_exits_1_on_a_mismatch_and_writes_json(
    generated: tuple[Path, Path], tmp_path: Path
) -> None:
    data, replay = generated
    cid = orjson.loads((data / "truth.jsonl").read_bytes().splitlines()[0])["conversation_id"]
    edit_record(replay, cid, transfers=42)
    report = tmp_path / "out" / "report.json"
    env = {"SIM_OFFLINE": str(replay), "SIM_JSON": str(report)}
    result = runner.invoke(app, ["verify", str(data), "-q"], env=env)
    assert result.exit_code == 1
    assert "FAILED" in result.output and "transfers" in result.output
    written = orjson.loads(report.read_bytes())
    assert written["ok"] is False
    assert written["records"][0]["diffs"][0]["field"] == "transfers"
    assert written["summary"]["records"]["mismatched"] == 1


@pytest.mark.parametrize("which", ["no-storage", "no-data", "no-replay"])
def test_verify_usage_errors_exit_2(
    which: str, generated: tuple[Path, Path], tmp_path: Path
) -> None:
    data, replay = generated
    empty = tmp_path / "empty.json"  # a settings file naming no storage
    empty.write_text('{"Values": {}}')
    args = {
        # Without --offline verify reads Blob Storage, and needs StateStorage for that.
        "no-storage": ["verify", str(data), "--settings", str(empty)],
        "no-data": ["verify", str(tmp_path / "nope"), "--offline", str(replay)],
        "no-replay": ["verify", str(data), "--offline", str(tmp_path / "nope")],
    }[which]
    result = runner.invoke(app, [*args, "-q"], env={"StateStorage": ""})
    assert result.exit_code == 2
    assert "error:" in result.output
    if which == "no-storage":
        assert "StateStorage" in result.output


def test_profiles_lists_every_profile() -> None:
    result = runner.invoke(app, ["profiles"])
    assert result.exit_code == 0
    for name in ("clean", "realistic", "chaos", "genesys", "mixed"):
        assert name in result.output


def test_the_console_script_points_at_main() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["simulator"] == "simulator.cli:main"
    assert callable(main)


def test_python_m_simulator_is_deterministic_across_processes(tmp_path: Path) -> None:
    outputs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator",
                "generate",
                "-q",
                "-n",
                "15",
                "--profile",
                "chaos",
                "--seed",
                "5",
                "--out",
                str(out),
            ],
            check=True,
            cwd=ROOT,
            env=env,
            capture_output=True,
        )
        outputs.append(files(out))
    assert outputs[0] == outputs[1]


def test_the_relay_data_set_verifies_against_the_real_replay_only_with_its_filter(
    tmp_path: Path,
) -> None:
    """The transform's own replay, strict topics and filter included, against the truth."""
    from transform.__main__ import app as transform_app

    data = tmp_path / "relay"
    made = runner.invoke(app, ["generate", "-n", "40", "--profile", "relay", "--out", str(data)])
    assert made.exit_code == 0, made.output
    manifest = orjson.loads((data / "manifest.json").read_bytes())
    counts = manifest["counts"]
    deliveries = str(data / "deliveries.jsonl")

    filtered = tmp_path / "filtered"
    replayed = runner.invoke(
        transform_app, ["replay", deliveries, "--out", str(filtered), "--media-types", "voice,CHAT"]
    )
    assert replayed.exit_code == 0, replayed.output
    figures = orjson.loads(replayed.output)
    assert figures["filtered_conversations"] == counts["filtered"]["conversations"] > 0
    assert figures["filtered_events"] == counts["filtered"]["micro_events"]
    assert figures["heartbeats"] == counts["heartbeats"] > 0
    assert figures["dead_letters"] == counts["dead_letters_expected"]
    ok = runner.invoke(app, ["verify", str(data), "--offline", str(filtered), "-q"])
    assert ok.exit_code == 0, ok.output

    unfiltered = tmp_path / "unfiltered"
    replayed = runner.invoke(transform_app, ["replay", deliveries, "--out", str(unfiltered)])
    assert replayed.exit_code == 0, replayed.output
    extra = runner.invoke(app, ["verify", str(data), "--offline", str(unfiltered), "-q"])
    assert extra.exit_code == 1  # the set-aside conversations are records there: unexpected

    # A letter of an unsupported topic must carry that reason, not just the right bytes.
    letters = (
        (filtered / "deadletter.jsonl")
        .read_bytes()
        .replace(b'"reason":"unsupported-topic"', b'"reason":"missing-conversation-id"', 1)
    )
    (filtered / "deadletter.jsonl").write_bytes(letters)
    wrong = runner.invoke(app, ["verify", str(data), "--offline", str(filtered), "-q"])
    assert wrong.exit_code == 1

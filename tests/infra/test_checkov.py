"""checkov over infra/, through the Makefile's own target (`make checkov`, part of `make test`).

The target runs checkov from its own virtual environment (.venv-checkov, built from
requirements-checkov.txt) over every Bicep and CloudFormation file under a directory. These
tests hold it to what it promises: infra/ passes with every skip explained in place and listed
in docs/security.md; a file checkov cannot parse fails the run (checkov alone only counts it);
a CloudFormation template anywhere below the directory is scanned; every Bicep file parses
with the parser checkov ships (older than the one in requirements-dev.txt).
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.infra.deploy import INFRA, ROOT, parse

CHECKOV_PYTHON = ROOT / ".venv-checkov" / "bin" / "python"
SECURITY_DOC = ROOT / "docs" / "security.md"


def run_checkov(directory: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`make checkov` on `directory` (the venv is built first if it is not there)."""
    return subprocess.run(
        [
            "make",
            "-s",
            "--no-print-directory",
            "checkov",
            f"CHECKOV_DIR={directory}",
            f"CHECKOV_ARGS={' '.join(arguments)}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def reports(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    """checkov's JSON output by framework (one report is an object, several a list)."""
    document = json.loads(result.stdout)
    found = document if isinstance(document, list) else [document]
    return {report["check_type"]: report for report in found if "check_type" in report}


@dataclass(frozen=True, order=True)
class Skip:
    """One `checkov:skip=ID:reason` as checkov reported it."""

    check: str
    file: str
    resource: str
    reason: str


@cache
def infra_scan() -> tuple[int, str, dict[str, dict[str, Any]]]:
    result = run_checkov(Path("infra"), "--output", "json")
    return result.returncode, result.stderr, reports(result)


def test_infra_passes_checkov_with_no_parse_error_and_every_skip_explained() -> None:
    returncode, stderr, found = infra_scan()
    assert returncode == 0, stderr[-3000:]
    bicep_report = found["bicep"]
    summary = bicep_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["failed"] == 0, [c["check_id"] for c in bicep_report["results"]["failed_checks"]]
    assert summary["resource_count"] > 50 and summary["passed"] > 30
    for report in found.values():
        for check in report["results"]["skipped_checks"]:
            comment = check["check_result"].get("suppress_comment") or ""
            assert len(comment.split()) >= 5, f"{check['check_id']}: a skip needs its reason"


def skips_reported() -> list[Skip]:
    found = infra_scan()[2]
    return sorted(
        Skip(
            check["check_id"],
            check["file_path"].lstrip("/"),
            check["resource"].rsplit(".", 1)[-1],
            check["check_result"]["suppress_comment"].strip(),
        )
        for report in found.values()
        for check in report["results"]["skipped_checks"]
    )


_SKIP_ROW = re.compile(
    r"^\| `(CKV2?_[A-Z]+_\d+)` \| `([^`]+)` `([^`]+)` \| (.+?) \|$", re.MULTILINE
)


def skips_documented() -> list[Skip]:
    text = SECURITY_DOC.read_text(encoding="utf-8")
    section = text[text.index("## checkov skips") :]
    return sorted(Skip(*(part.strip() for part in row)) for row in _SKIP_ROW.findall(section))


def test_docs_security_lists_exactly_the_skips_in_the_templates() -> None:
    reported, documented = skips_reported(), skips_documented()
    expected = "\n".join(
        f"| `{s.check}` | `{s.file}` `{s.resource}` | {s.reason} |" for s in reported
    )
    assert documented == reported, f"docs/security.md, section 'checkov skips':\n{expected}"


def test_a_file_checkov_cannot_parse_fails_the_scan(tmp_path: Path) -> None:
    # The null-forgiving `!` and an output named `reference`: what stopped main.bicep before.
    (tmp_path / "main.bicep").write_text(
        "param on bool\n"
        "module vault 'vault.bicep' = if (on) {\n"
        "  name: 'vault'\n"
        "}\n"
        "output uri string = vault!.outputs.reference\n",
        encoding="utf-8",
    )
    result = run_checkov(tmp_path)
    assert result.returncode != 0, result.stdout
    assert "Parsing errors: 1" in result.stdout


def test_cloudformation_templates_below_the_directory_are_scanned(tmp_path: Path) -> None:
    nested = tmp_path / "aws" / "nested"
    nested.mkdir(parents=True)
    (nested / "template.yaml").write_text(
        'AWSTemplateFormatVersion: "2010-09-09"\n'
        "Resources:\n"
        "  Archive:\n"
        "    Type: AWS::S3::Bucket\n",
        encoding="utf-8",
    )
    result = run_checkov(tmp_path, "--output", "json")
    assert result.returncode != 0, "an unencrypted, public-ACL bucket must fail"
    failed = reports(result)["cloudformation"]["results"]["failed_checks"]
    assert {check["file_path"] for check in failed} == {"/aws/nested/template.yaml"}


def test_every_bicep_file_parses_with_the_parser_checkov_ships() -> None:
    paths = sorted(str(p.relative_to(ROOT)) for p in INFRA.rglob("*.bicep"))
    script = (
        "import sys\n"
        "from pycep import BicepParser\n"
        "parser = BicepParser()\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        parser.parse(text=open(path, encoding='utf-8').read())\n"
        "    except Exception as error:\n"
        "        print(f'{path}: {str(error).splitlines()[0]}')\n"
    )
    subprocess.run(["make", "-s", ".venv-checkov/.installed-stamp"], cwd=ROOT, check=True)
    result = subprocess.run(
        [str(CHECKOV_PYTHON), "-c", script, *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == "", result.stdout


def test_every_bicep_file_is_deployed_from_main() -> None:
    """No orphan module: each file under infra/ is reached from main.bicep (and so evaluated)."""
    reached: set[str] = set()

    def follow(path: str) -> None:
        reached.add(path)
        here = Path(path).parent
        for module in parse(path)["modules"].values():
            target = str(here / module["detail"]["path"])
            if target not in reached:
                follow(target)

    follow("main.bicep")
    present = {str(p.relative_to(INFRA)) for p in INFRA.rglob("*.bicep")}
    assert present == reached

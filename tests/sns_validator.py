"""
The third-party SNS message validator the tests trust: the npm package
sns-validator (pinned in tests/js/package-lock.json), run by tests/js/validate.js.

`node()` finds node and npm (a failure under CI=true, a skip elsewhere, like
tests/unit/test_deploy.py with systemd-analyze) and installs the package with
`npm ci` when it is missing; `validate()` hands it documents and returns its
verdicts, fetching SigningCertURL over HTTPS as a subscriber would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.tools import required_tool

JS_DIR = Path(__file__).resolve().parent / "js"
SNS_VALIDATOR_VERSION = "0.3.5"


def tool(name: str) -> str:
    return required_tool(name, "nodejs npm")


def node() -> str:
    """node, with sns-validator installed from the committed lock file."""
    node = tool("node")
    npm = tool("npm")
    installed = JS_DIR / "node_modules" / "sns-validator" / "package.json"
    if not installed.exists():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS_DIR,
            check=True,
            timeout=300,
        )
    assert json.loads(installed.read_text())["version"] == SNS_VALIDATOR_VERSION
    return node


def validate(
    node: str,
    documents: Sequence[dict[str, Any]],
    *,
    host_pattern: str,
    cert_pem: bytes,
    ca_file: str | Path,
) -> list[dict[str, Any]]:
    """
    sns-validator's verdict on each document: {"valid", "error", "awsAlgorithm"}.
    `host_pattern` is matched against host:port of SigningCertURL; `ca_file`
    is trusted for fetching it (NODE_EXTRA_CA_CERTS).
    """
    payload = {
        "hostPattern": host_pattern,
        "certPem": cert_pem.decode(),
        "documents": list(documents),
    }
    result = subprocess.run(
        [node, str(JS_DIR / "validate.js")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": str(ca_file)},
        cwd=JS_DIR,
    )
    assert result.returncode == 0, result.stderr
    answers = list(json.loads(result.stdout))
    assert len(answers) == len(documents)
    return answers

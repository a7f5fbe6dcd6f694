"""Offline infrastructure check: package serverless.yml, validate the state machine, lint the template.

Runs with no AWS account and no Docker, after `make install` and `npm ci`:

    .venv/bin/python scripts/check_infra.py [--skip-requirements]

Steps, each reported with its time; the first failure stops the check and prints that tool's output:
  1. osls package --stage ci  (serverless-python-requirements fetches the Lambda wheels; --skip-requirements skips
     that slow part, for a quick loop on serverless.yml alone)
  2. asl-validator on every statemachine/*.asl.json
  3. cfn-lint --non-zero-exit-code warning on the generated template (.cfnlintrc.yaml says what is ignored and why)
     and on infra/*.yml
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

ROOT = Path(__file__).resolve().parents[1]
SERVERLESS_DIR = ROOT / ".serverless"
TEMPLATE = SERVERLESS_DIR / "cloudformation-template-update-stack.json"
STAGE = "ci"
# Templates operators deploy outside the stack (the reader role in each management account).
DEPLOYED_APART = (ROOT / "infra" / "organizations-reader-role.yml",)
NODE_BIN = ROOT / "node_modules" / ".bin"


class CheckFailed(Exception):
    """A step failed; the message holds the command and its output."""


@dataclass(frozen=True)
class Step:
    title: str
    command: list[str]
    env: dict[str, str]


def _package_env(skip_requirements: bool) -> dict[str, str]:
    env = dict(os.environ)
    # Packaging must never reach a real account: pin dummy credentials and drop any profile.
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    env.update(AWS_ACCESS_KEY_ID="AKIDOFFLINECHECK", AWS_SECRET_ACCESS_KEY="offline-check")
    # The plugin runs pip with this interpreter only to download wheels for the Lambda platform (serverless.yml).
    env.setdefault("ROOTMAIL_PYTHON_BIN", sys.executable)
    if skip_requirements:
        env["ROOTMAIL_REQUIREMENTS_FILE"] = "requirements.skipped-by-check-infra"
    else:
        env.pop("ROOTMAIL_REQUIREMENTS_FILE", None)
    return env


def _node_tool(name: str) -> str:
    tool = NODE_BIN / name
    if not tool.exists():
        raise CheckFailed(f"{tool.relative_to(ROOT)} is missing: run `npm ci` first")
    return str(tool)


def _cfn_lint() -> str:
    beside_python = Path(sys.executable).parent / "cfn-lint"
    found = str(beside_python) if beside_python.exists() else shutil.which("cfn-lint")
    if not found:
        raise CheckFailed("cfn-lint is missing: run `make install` first")
    return found


def steps(skip_requirements: bool = False) -> list[Step]:
    definitions = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "statemachine").glob("*.asl.json"))
    if not definitions:
        raise CheckFailed("no statemachine/*.asl.json to validate")
    asl_args = [arg for path in definitions for arg in ("--json-path", path)]
    package_title = "osls package --stage ci" + (" (requirements skipped)" if skip_requirements else "")
    return [
        Step(
            package_title,
            [_node_tool("osls"), "package", "--stage", STAGE],
            _package_env(skip_requirements),
        ),
        Step(
            "asl-validator " + " ".join(definitions),
            [_node_tool("asl-validator"), *asl_args],
            dict(os.environ),
        ),
        Step(
            "cfn-lint " + " ".join(str(t.relative_to(ROOT)) for t in (TEMPLATE, *DEPLOYED_APART)),
            [_cfn_lint(), "--non-zero-exit-code", "warning", "--", str(TEMPLATE), *map(str, DEPLOYED_APART)],
            dict(os.environ),
        ),
    ]


def run_step(step: Step) -> float:
    started = time.monotonic()
    try:
        done = subprocess.run(
            step.command,
            cwd=ROOT,
            env=step.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise CheckFailed(f"{step.title}: could not run {step.command[0]}: {exc}") from exc
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise CheckFailed(f"{step.title}: exit code {done.returncode} after {elapsed:.1f}s\n{output}")
    return elapsed


def run_check(skip_requirements: bool = False, out: TextIO = sys.stdout) -> None:
    """Run every step; raise CheckFailed on the first failure."""
    planned = steps(skip_requirements)
    for number, step in enumerate(planned, start=1):
        print(f"==> [{number}/{len(planned)}] {step.title}", file=out, flush=True)
        elapsed = run_step(step)
        print(f"    ok ({elapsed:.1f}s)", file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--skip-requirements",
        action="store_true",
        help="package without the Python requirements (2 s instead of about 15 once the wheels are cached)",
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        run_check(skip_requirements=args.skip_requirements)
    except CheckFailed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print(f"infrastructure check passed in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Starting Step Functions workflows (the triage of one stored mail, an operators' retry) once per name."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.errors import TriageNotStarted

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(key: str, run: str | None = None) -> str:
    """A Step Functions execution name derived from the object key (SES's message ID), so a duplicate S3 event
    names the same execution. A retry run gives its own name, so each retry of a mail is a new execution, and the
    same retry step replayed finds its execution already there. Names allow 80 characters of [A-Za-z0-9-_]; a
    digest keeps long or unusual keys unique."""
    leaf = _UNSAFE.sub("-", key.rsplit("/", 1)[-1])
    if run is None:
        return f"{leaf[:60]}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"
    digest = hashlib.sha256(f"{key}\x1f{run}".encode()).hexdigest()[:16]
    return f"{leaf[:54]}-retry-{digest}"


class Workflow:
    """One state machine: start an execution under a given name (a no-op when it exists) and read its status."""

    def __init__(self, stepfunctions: Any, state_machine_arn: str) -> None:
        self._sfn = stepfunctions
        self.state_machine_arn = state_machine_arn

    def start(self, name: str, payload: dict[str, Any]) -> bool:
        """Start the execution; False when it already exists (a duplicate event: nothing more to do)."""
        try:
            self._sfn.start_execution(
                stateMachineArn=self.state_machine_arn, name=name, input=json.dumps(payload, sort_keys=True)
            )
        except ClientError as exc:
            if error_code(exc) == "ExecutionAlreadyExists":
                return False
            raise TriageNotStarted(f"could not start execution {name}: {describe(exc)}") from exc
        except BotoCoreError as exc:
            raise TriageNotStarted(f"could not start execution {name}: {describe(exc)}") from exc
        return True

    def execution_arn(self, name: str) -> str:
        # arn:aws:states:REGION:ACCOUNT:stateMachine:NAME → arn:aws:states:REGION:ACCOUNT:execution:NAME:EXECUTION
        return self.state_machine_arn.replace(":stateMachine:", ":execution:", 1) + ":" + name

    def status(self, name: str) -> str:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED."""
        try:
            answer = self._sfn.describe_execution(executionArn=self.execution_arn(name))
        except (ClientError, BotoCoreError) as exc:
            raise TriageNotStarted(f"could not read execution {name}: {describe(exc)}") from exc
        return str(answer["status"])

    def outcome(self, name: str) -> dict[str, str]:
        """The execution's status and, when it failed, the error and cause Step Functions recorded for it."""
        try:
            answer = self._sfn.describe_execution(executionArn=self.execution_arn(name))
        except (ClientError, BotoCoreError) as exc:
            raise TriageNotStarted(f"could not read execution {name}: {describe(exc)}") from exc
        return {k: str(answer[k]) for k in ("status", "error", "cause") if answer.get(k)}

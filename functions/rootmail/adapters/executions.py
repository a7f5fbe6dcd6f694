"""Starting Step Functions workflows (the triage of one stored mail, an operators' retry) once per name."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.errors import TriageNotStarted


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

"""Starting the triage workflow, once per stored mail."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from botocore.exceptions import ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.errors import TriageNotStarted

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def execution_name(key: str) -> str:
    """A Step Functions execution name derived from the object key (SES's message ID), so a duplicate S3 event
    names the same execution. Names allow 80 characters of [A-Za-z0-9-_]; a digest keeps long or unusual keys
    unique."""
    leaf = _UNSAFE.sub("-", key.rsplit("/", 1)[-1])[:60]
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{leaf}-{digest}"


class TriageStarter:
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
            raise TriageNotStarted(f"could not start triage execution {name}: {describe(exc)}") from exc
        return True

"""The grants serverless.yml gives each function (tests/test_infra.py holds them to EXPECTED_GRANTS) cover what its
code really calls. Every AWS request each function makes while the whole product runs on the emulator (a mail down
every path, an unknown account's refresh, a copy taking over, the digest, the rule modal, a retry, the hourly sync and reconcile,
a bounce) is recorded on the wire and must be one its role allows: a new call without its grant fails here, not in
production. (A path this run does not take is not checked: the grants' literals still say what each role holds.)"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import boto3
import pytest

from rootmail import bootstrap
from rootmail.app.offline import load_accounts
from rootmail.config import parse_organizations
from rootmail_local import moto_lambda
from rootmail_local.slack_requests import modal_values
from samples import sample_pipeline
from test_infra import (
    EXPECTED_GRANTS,
    FUNCTIONS,
    MAIL_BUCKET,
    MAIL_OBJECTS,
    READ_ORGANIZATION,
    STAGE,
    TRIAGE_EXECUTIONS,
)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
RUNNING: ContextVar[str | None] = ContextVar("running_function", default=None)
# A mail down every path of the triage definition: forwarded, ticketed (twice in one case), escalated, restricted,
# quarantined, ignored, queued with urgent words (the signal alert), and an unknown root address (the refresh).
PATHS = (
    "11-health-single-account",
    "01-support-case-new",
    "03-support-case-correspondence",
    "08-abuse-report-ec2",
    "24-credentials-password-reset",
    "31-spoofed-lookalike-abuse",
    "16-billing-statement",
    "34-unclassified-urgent-words",
    "15-health-unknown-recipient",
)
TABLES = {
    "ledger": "LedgerTable",
    "accounts": "AccountsTable",
    "rules": "RulesTable",
    "rules-history": "RulesHistoryTable",
    "deliveries": "DeliveriesTable",
    "suppressions": "SuppressionsTable",
    "slack-requests": "SlackRequestsTable",
}
TRANSACT = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


def _table(name: str, index: str | None = None) -> str:
    logical = TABLES[name.removeprefix("rootmail-local-")]
    return f"{logical}/index/{index}" if index else logical


def requested(service: str, operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The (IAM action, resource) pairs one request needs, resources named as EXPECTED_GRANTS names them."""
    if service == "dynamodb":
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return [(f"dynamodb:{operation}", _table(t)) for t in params["RequestItems"]]
        if operation == "TransactWriteItems":
            return [
                (f"dynamodb:{TRANSACT[kind]}", _table(body["TableName"]))
                for item in params["TransactItems"]
                for kind, body in item.items()
            ]
        return [(f"dynamodb:{operation}", _table(params["TableName"], params.get("IndexName")))]
    if service == "s3" and operation == "GetObject":
        return [("s3:GetObject", MAIL_OBJECTS if params["Key"].startswith("incoming/") else params["Key"])]
    if service == "s3" and operation == "ListObjectsV2":
        return [("s3:ListBucket", MAIL_BUCKET)]
    if service == "ssm" and operation == "GetParameter":
        leaf = params["Name"].rsplit("/", 1)[-1]
        return [("ssm:GetParameter", f"arn:aws:ssm:REGION:ACCOUNT:parameter/rootmail/{STAGE}/{leaf}")]
    if service == "stepfunctions" and operation == "StartExecution":
        machine = (
            "RetryStateMachine" if params["stateMachineArn"].endswith("-retry") else "TriageStateMachine"
        )
        return [("states:StartExecution", machine)]
    if service == "stepfunctions" and operation == "DescribeExecution":
        triage = ":execution:rootmail-local-triage:" in params["executionArn"]
        return [("states:DescribeExecution", TRIAGE_EXECUTIONS if triage else params["executionArn"])]
    if service == "sesv2" and operation == "SendEmail":
        return [("ses:SendEmail", "*identity")]
    if service in ("organizations", "account"):
        return []  # made with the management role's credentials (the emulator configures one), not the function's
    if service == "sts" and operation == "AssumeRole":
        return [("sts:AssumeRole", params["RoleArn"])]
    return [(f"{service}:{operation}", "not mapped: say above which grant it needs")]


def granted(function: str, action: str, resource: str) -> bool:
    grants = EXPECTED_GRANTS[function]
    if function in (
        "sync",
        "refresh",
    ):  # with a management role, as test_infra.py shows the template grants it
        # The roles the emulator configures, as the template grants exactly the configured ones.
        roles = {o.role_arn for o in parse_organizations(os.environ["ROOTMAIL_ORGANIZATIONS"])}
        grants = (grants - READ_ORGANIZATION) | {("sts:AssumeRole", str(role)) for role in roles}
    if resource == "*identity":  # SES checks the sender identity and the configuration set
        return any(a == action for a, _ in grants)
    return (action, resource) in grants


@pytest.fixture
def calls(monkeypatch) -> Iterator[tuple[dict[str, set[tuple[str, str]]], Any]]:
    """Every request each function makes, by function: the function in process is known from the handler the
    emulator resolved for it; the request from botocore's before-parameter-build event on the default session."""
    seen: dict[str, set[tuple[str, str]]] = {}
    resolve = moto_lambda.resolve_handler

    def resolve_handler(handler: str) -> Any:
        function = resolve(handler)
        name = handler.removeprefix("rootmail.entrypoints.handlers.").removesuffix(".handler")

        def running(event: Any, context: Any) -> Any:
            token = RUNNING.set(name)
            try:
                return function(event, context)
            finally:
                RUNNING.reset(token)

        return running

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        function = RUNNING.get()
        if function is not None:
            service = model.service_model.service_name
            for need in requested(service, model.name, params):
                seen.setdefault(function, set()).add(need)

    monkeypatch.setattr(moto_lambda, "resolve_handler", resolve_handler)
    with sample_pipeline() as pipeline:
        session = boto3.DEFAULT_SESSION
        assert session is not None
        session.events.register("before-parameter-build", record, unique_id="least-privilege")
        bootstrap.reset()
        try:
            yield seen, pipeline
        finally:
            session.events.unregister("before-parameter-build", unique_id="least-privilege")
            bootstrap.reset()


def test_every_request_of_every_function_is_one_its_role_allows(calls):
    seen, pipeline = calls
    pipeline.seed_organization(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
    for name in PATHS:
        pipeline.store_mail(name, (CORPUS / f"{name}.eml").read_bytes())
    pipeline.wait()
    # A copy of a queued mail stored under another key takes over from it (the deliveries table's identity claim).
    pipeline.store_mail("copy-of-15", (CORPUS / "15-health-unknown-recipient.eml").read_bytes())
    pipeline.wait()
    pipeline.invoke("digest", {})
    create, retry = next(b for b in pipeline.slack.messages[-1]["blocks"] if b["type"] == "actions")[
        "elements"
    ]
    pipeline.slack_command("list")
    pipeline.slack_click(create["action_id"], create["value"])
    view = pipeline.slack.views[-1]["view"]
    pipeline.slack_submit(
        view, modal_values(view, category="account-lifecycle", action="ignore", rule_id="seen")
    )
    pipeline.slack_click(retry["action_id"], retry["value"])
    pipeline.wait()
    pipeline.invoke("reconcile", {})
    bounce = {
        "eventType": "Bounce",
        "mail": {"messageId": "m"},
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "gone@acme.example"}]},
    }
    pipeline.invoke(
        "bounces", {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(bounce)}}]}
    )
    pipeline.sync_accounts()

    assert sorted(set(FUNCTIONS) - set(seen)) == []  # every function ran, and its requests were seen
    refused = {
        function: sorted(need for need in needs if not granted(function, *need))
        for function, needs in seen.items()
    }
    assert {f: n for f, n in refused.items() if n} == {}

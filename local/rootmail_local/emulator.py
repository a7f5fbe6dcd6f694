"""The whole pipeline on one machine: moto for AWS (with its Step Functions interpreter running the real
definition), the real handlers in process, and local Zendesk and Slack stand-ins for the real clients.

Only endpoints and credentials differ from AWS: the handlers read the same ROOTMAIL_* settings, the tokens come
from (moto's) SSM, zenpy is pointed at the stand-in with ZENPY_FORCE_NETLOC, slack_sdk with its base URL.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import boto3
from botocore.exceptions import ClientError
from moto import mock_aws

from rootmail import bootstrap
from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.dynamodb.ledger import Ledger
from rootmail.adapters.dynamodb.rules import RulesTable
from rootmail.config import Settings
from rootmail.domain.accounts import Account
from rootmail.domain.rules.model import Rule
from rootmail_local.moto_lambda import atomic_dynamodb, check_function, lambdas_in_process
from rootmail_local.organization import LocalOrganization, seed_of
from rootmail_local.slack_requests import (
    COMMANDS_PATH,
    INTERACTIONS_PATH,
    button_click,
    command_body,
    http_api_event,
    interaction_body,
    signed,
    view_submission,
)
from rootmail_local.standins import SlackStandIn, ZendeskStandIn

ROOT = Path(__file__).resolve().parents[2]
DEFINITION = ROOT / "statemachine" / "triage.asl.json"
RETRY_DEFINITION = ROOT / "statemachine" / "retry.asl.json"
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# The local organisation's management account (the sample organisation's, tests/corpus/accounts.json). The sync
# reaches it as on AWS from a stack outside it: through a role assumed there (moto's STS gives credentials for that
# account; moto does not check that the role exists).
MANAGEMENT_ACCOUNT = "998877665544"
PREFIX = "incoming/"
# moto's interpreter logs an error each time a Choice's `IsPresent` finds its path absent, which is the rule's
# answer, not a failure (AWS logs nothing): those lines are dropped, every other error of moto's is kept.
_MOTO_EVAL_LOGGER = "moto.stepfunctions.parser.asl.component.eval_component"


class _AbsentPathIsAnAnswer(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Exception=NoSuchJsonPathError")


# The Lambda functions of serverless.yml, by key, with the same handler strings (tests/test_infra.py checks it).
FUNCTIONS: dict[str, str] = {
    name: f"rootmail.entrypoints.handlers.{name}.handler"
    for name in (
        "ingest",
        "parse",
        "resolve",
        "refresh",
        "classify",
        "forward",
        "ticket",
        "escalate",
        "alert",
        "record",
        "bounces",
        "sync",
        "slack",
        "digest",
        "retry_select",
        "retriage",
        "retry_report",
        "reconcile",
    )
}
# Timeouts that differ from the default, as in serverless.yml (the handlers plan their work by the time left).
TIMEOUTS: dict[str, int] = {"sync": 900, "refresh": 300, "slack": 10, "reconcile": 300}


def resolve_resources(node: Any, arns: dict[str, str]) -> Any:
    """Replace `{"Fn::GetAtt": [function, "Arn"]}` in the definition with the local function's ARN."""
    if isinstance(node, dict):
        if set(node) == {"Fn::GetAtt"}:
            target, attribute = node["Fn::GetAtt"]
            if attribute != "Arn" or target not in arns:
                raise ValueError(f"the state machine names an unknown function {target!r}")
            return arns[target]
        return {key: resolve_resources(value, arns) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve_resources(value, arns) for value in node]
    return node


def create_tables(dynamodb: Any, tables: dict[str, str]) -> None:
    """The tables serverless.yml declares, with their keys and indexes, named as `tables` says."""

    def create(name: str, key: str, indexes: dict[str, tuple[str, str | None]] | None = None) -> None:
        attributes = {key}
        spec: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if indexes:
            spec["GlobalSecondaryIndexes"] = []
            for index, (hash_key, range_key) in indexes.items():
                schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
                attributes.add(hash_key)
                if range_key:
                    schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
                    attributes.add(range_key)
                spec["GlobalSecondaryIndexes"].append(
                    {"IndexName": index, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}}
                )
        spec["AttributeDefinitions"] = [
            {"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)
        ]
        dynamodb.create_table(**spec)

    create(tables["ledger"], "mail_id", {"by-state": ("state", "updated_at")})
    create(tables["accounts"], "account_id", {"by-email": ("email", None)})
    create(tables["rules"], "rule_id")
    create(tables["deliveries"], "delivery_id")
    create(tables["suppressions"], "address")
    create(tables["slack_requests"], "signature")
    dynamodb.create_table(
        TableName=tables["rules_history"],
        KeySchema=[
            {"AttributeName": "rule_id", "KeyType": "HASH"},
            {"AttributeName": "version", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "rule_id", "AttributeType": "S"},
            {"AttributeName": "version", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class LocalPipeline:
    """Context manager: everything up on enter, everything down (and the environment restored) on exit."""

    stage: str = "local"
    sender: str = "no-reply@notices.cloudprovider.example"
    reply_to: str = "support@cloudprovider.example"
    slack_channel: str = "#rootmail-ops"
    zendesk: ZendeskStandIn = field(default_factory=ZendeskStandIn)
    slack: SlackStandIn = field(default_factory=SlackStandIn)
    management_account: str = MANAGEMENT_ACCOUNT
    # The organisations the functions sync, by name → management account (moto keeps one organisation per account);
    # unset: one, "main", of `management_account`.
    organizations: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # more ROOTMAIL_* values for the functions
    # The local Slack workspace: who may use /rootmail, where, and the app's signing secret (kept in moto's SSM).
    operator_ids: tuple[str, ...] = ("U0LOCALOPS",)
    channel_ids: tuple[str, ...] = ("C0LOCALOPS",)
    signing_secret: str = "local-signing-secret"

    def __post_init__(self) -> None:
        self.organizations = dict(self.organizations) or {"main": self.management_account}
        name = f"rootmail-{self.stage}"
        self.bucket = f"{name}-mail"
        self.tables = {
            "ledger": f"{name}-ledger",
            "accounts": f"{name}-accounts",
            "rules": f"{name}-rules",
            "deliveries": f"{name}-deliveries",
            "suppressions": f"{name}-suppressions",
            "rules_history": f"{name}-rules-history",
            "slack_requests": f"{name}-slack-requests",
        }
        self.state_machine_name = f"{name}-triage"
        self.retry_state_machine_name = f"{name}-retry"
        self._saved_env: dict[str, str | None] = {}

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> LocalPipeline:
        self._set_env(
            {
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_SESSION_TOKEN": "local",
            }
        )
        for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            self._set_env({variable: None})
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        self._absent_paths = _AbsentPathIsAnAnswer()
        logging.getLogger(_MOTO_EVAL_LOGGER).addFilter(self._absent_paths)
        self._in_process = lambdas_in_process()
        self._in_process.__enter__()
        self._atomic = atomic_dynamodb()
        self._atomic.__enter__()
        self.zendesk.start()
        self.slack.start()
        self.environment = self._environment()
        self._set_env(self.environment)
        bootstrap.reset()
        self._create_resources()
        return self

    def __exit__(self, *exc: object) -> None:
        bootstrap.reset()
        self.slack.stop()
        self.zendesk.stop()
        self._atomic.__exit__(None, None, None)
        self._in_process.__exit__(None, None, None)
        logging.getLogger(_MOTO_EVAL_LOGGER).removeFilter(self._absent_paths)
        self._mock.stop()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def _set_env(self, values: dict[str, str | None]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _environment(self) -> dict[str, str | None]:
        return {
            "ROOTMAIL_MAIL_BUCKET": self.bucket,
            "ROOTMAIL_LEDGER_TABLE": self.tables["ledger"],
            "ROOTMAIL_ACCOUNTS_TABLE": self.tables["accounts"],
            "ROOTMAIL_RULES_TABLE": self.tables["rules"],
            "ROOTMAIL_DELIVERIES_TABLE": self.tables["deliveries"],
            "ROOTMAIL_SUPPRESSIONS_TABLE": self.tables["suppressions"],
            "ROOTMAIL_RULES_HISTORY_TABLE": self.tables["rules_history"],
            "ROOTMAIL_SLACK_REQUESTS_TABLE": self.tables["slack_requests"],
            "ROOTMAIL_RETRY_STATE_MACHINE_ARN": (
                f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.retry_state_machine_name}"
            ),
            "ROOTMAIL_SLACK_SIGNING_SECRET_PARAMETER": f"/rootmail/{self.stage}/slack-signing-secret",
            "ROOTMAIL_SLACK_OPERATOR_IDS": ",".join(self.operator_ids),
            "ROOTMAIL_SLACK_CHANNEL_IDS": ",".join(self.channel_ids),
            "ROOTMAIL_SLACK_RESPONSE_URL_PREFIX": self.slack.response_url_prefix,
            "ROOTMAIL_RETRY_POLL_SECONDS": "1",
            "ROOTMAIL_SES_CONFIGURATION_SET": f"rootmail-{self.stage}",
            "ROOTMAIL_STATE_MACHINE_ARN": (
                f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{self.state_machine_name}"
            ),
            "ROOTMAIL_SENDER_ADDRESS": self.sender,
            "ROOTMAIL_REPLY_TO_ADDRESS": self.reply_to,
            "ROOTMAIL_ZENDESK_SUBDOMAIN": "cloudprovider",
            "ROOTMAIL_ZENDESK_EMAIL": "rootmail@cloudprovider.example",
            "ROOTMAIL_ZENDESK_TOKEN_PARAMETER": f"/rootmail/{self.stage}/zendesk-api-token",
            "ROOTMAIL_SLACK_TOKEN_PARAMETER": f"/rootmail/{self.stage}/slack-bot-token",
            "ROOTMAIL_SLACK_CHANNEL": self.slack_channel,
            "ROOTMAIL_SLACK_API_URL": self.slack.base_url,
            "ROOTMAIL_RULES_CACHE_SECONDS": "0",
            "ZENPY_FORCE_NETLOC": self.zendesk.netloc,
            "ZENPY_FORCE_SCHEME": "http",
            "ROOTMAIL_ORGANIZATIONS": json.dumps(
                [
                    {
                        "name": name,
                        "roleArn": f"arn:aws:iam::{management}:role/rootmail-{self.stage}-organizations",
                    }
                    for name, management in self.organizations.items()
                ]
            ),
            "POWERTOOLS_SERVICE_NAME": "rootmail",
            "POWERTOOLS_METRICS_NAMESPACE": "rootmail",
            **{f"ROOTMAIL_{name.upper()}": value for name, value in self.settings.items()},
        }

    # ---- resources ----------------------------------------------------------------------------------------

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION)

    def _create_resources(self) -> None:
        s3, dynamodb, ssm = self.client("s3"), self.client("dynamodb"), self.client("ssm")
        s3.create_bucket(Bucket=self.bucket)
        create_tables(dynamodb, self.tables)
        # Stand-in tokens, under serverless.yml's parameter names: the local servers accept any token; the real path
        # still reads them from SSM.
        for service, parameter in (("zendesk", "zendesk-api-token"), ("slack", "slack-bot-token")):
            ssm.put_parameter(
                Name=f"/rootmail/{self.stage}/{parameter}",
                Value=f"local-{service}-token",
                Type="SecureString",
            )
        ssm.put_parameter(
            Name=f"/rootmail/{self.stage}/slack-signing-secret",
            Value=self.signing_secret,
            Type="SecureString",
        )
        self.client("sesv2").create_email_identity(EmailIdentity=self.sender)
        self.client("sesv2").create_configuration_set(ConfigurationSetName=f"rootmail-{self.stage}")

        iam = self.client("iam")
        role = iam.create_role(
            RoleName=f"rootmail-{self.stage}-local",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("README.txt", "the handlers run in process: local/rootmail_local/moto_lambda.py")
        lambda_client = self.client("lambda")
        function_env = {k: v for k, v in self.environment.items() if v is not None}
        arns: dict[str, str] = {}
        for name, handler in FUNCTIONS.items():
            arns[name] = lambda_client.create_function(
                FunctionName=f"rootmail-{self.stage}-{name}",
                Runtime="python3.12",
                Role=role,
                Handler=handler,
                Code={"ZipFile": code.getvalue()},
                Timeout=TIMEOUTS.get(name, 60),
                MemorySize=512,
                Environment={"Variables": function_env},
            )["FunctionArn"]
        from moto.awslambda.utils import get_backend

        check_function(get_backend(ACCOUNT, REGION).get_function(arns["parse"]))

        sfn = self.client("stepfunctions")
        definition = resolve_resources(json.loads(DEFINITION.read_text(encoding="utf-8")), arns)
        self.state_machine_arn = sfn.create_state_machine(
            name=self.state_machine_name, definition=json.dumps(definition), roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        retry = resolve_resources(json.loads(RETRY_DEFINITION.read_text(encoding="utf-8")), arns)
        self.retry_state_machine_arn = sfn.create_state_machine(
            name=self.retry_state_machine_name, definition=json.dumps(retry), roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "LambdaFunctionArn": arns["ingest"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
                    }
                ]
            },
        )

    # ---- use ----------------------------------------------------------------------------------------------

    def seed_accounts(self, accounts: Iterable[Account]) -> int:
        return AccountsTable(self.client("dynamodb"), self.tables["accounts"]).put_all(accounts)

    def organization(self, name: str | None = None) -> LocalOrganization:
        """The named organisation (the first one unless told)."""
        management = self.organizations[name] if name else next(iter(self.organizations.values()))
        return LocalOrganization(management, REGION)

    def seed_organization(self, accounts: Iterable[Account], name: str | None = None) -> int:
        """The accounts as the named local organisation's (the first one unless told; the management account's entry
        updates it): contacts as tags or alternate contacts, languages as tags, under the configured tag keys."""
        defaults = Settings.model_fields
        contacts_tag = self.settings.get("contacts_tag", defaults["contacts_tag"].default)
        language_tag = self.settings.get("language_tag", defaults["language_tag"].default)
        seeds = [seed_of(a, contacts_tag=contacts_tag, language_tag=language_tag) for a in accounts]
        organization = self.organization(name)
        management = next((s for s in seeds if s.account_id == organization.management_account), None)
        organization.create(
            email=management.email if management else None, name=management.name if management else None
        )
        return organization.add(seeds)

    def sync_accounts(self) -> dict[str, Any]:
        """Invoke the deployed `sync` function (what its hourly schedule does); its report."""
        return self.invoke("sync", {})

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke a deployed function synchronously; its answer (a function error raises, with its type)."""
        answer = self.client("lambda").invoke(
            FunctionName=f"rootmail-{self.stage}-{function}", Payload=json.dumps(event).encode()
        )
        result: dict[str, Any] = json.loads(answer["Payload"].read())
        if answer.get("FunctionError"):
            raise RuntimeError(
                f"the {function} function failed: {result.get('errorType')}: {result.get('errorMessage')}"
            )
        return result

    def slack_request(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A request to the Slack endpoint as API Gateway delivers it to the `slack` function: signed with the
        local signing secret unless `headers` are given. The function's HTTP answer (statusCode, body)."""
        return self.invoke("slack", http_api_event(path, headers or signed(self.signing_secret, body), body))

    def slack_command(
        self, text: str, *, user: str | None = None, channel: str | None = None, response_url: str = "command"
    ) -> dict[str, Any]:
        """`/rootmail TEXT` typed by an operator (the first configured one, in the first channel)."""
        body = command_body(
            text,
            user=user or self.operator_ids[0],
            channel=channel or self.channel_ids[0],
            response_url=self.slack.response_url(response_url),
        )
        return self.slack_request(COMMANDS_PATH, body)

    def slack_click(
        self, action_id: str, value: str, *, user: str | None = None, channel: str | None = None
    ) -> dict[str, Any]:
        """An operator clicks a button (the first configured operator, in the first channel)."""
        payload = button_click(
            action_id,
            value,
            user=user or self.operator_ids[0],
            channel=channel or self.channel_ids[0],
            response_url=self.slack.response_url("button"),
        )
        return self.slack_request(INTERACTIONS_PATH, interaction_body(payload))

    def slack_submit(
        self, view: dict[str, Any], values: dict[str, Any], *, user: str | None = None
    ) -> dict[str, Any]:
        """An operator submits a modal the stand-in opened."""
        payload = view_submission(view, values, user=user or self.operator_ids[0])
        return self.slack_request(INTERACTIONS_PATH, interaction_body(payload))

    def seed_rules(self, rules: Iterable[Rule]) -> int:
        """The rules as `rootmail rules push` puts them: each a new version with its history record."""
        table = self.rules_table()
        live = table.live(with_removed=True)
        count = 0
        for rule in rules:
            entry = live.get(rule.id)
            file = (
                Path(rule.source.split(":")[0]).name
                if rule.source.endswith(".toml") or ".toml:" in rule.source
                else None
            )
            table.change(
                rule.id,
                rule.to_item(),
                expected_version=entry.version if entry else 0,
                by="local emulator",
                why="seeded",
                file=file,
            )
            count += 1
        return count

    @contextmanager
    def aws_fault(
        self,
        service: str,
        operation: str,
        *,
        error: str | type[Exception] = "InternalFailure",
        times: int = 1,
        when: Callable[[dict[str, Any]], bool] = lambda params: True,
    ) -> Iterator[list[dict[str, Any]]]:
        """Make the functions' calls of one AWS operation fail: with an AWS error code (a ClientError, as the
        service would answer) or an exception class (a crash), `times` times, for the calls `when` picks. Yields
        the parameters of the calls it failed. Through botocore's public event hooks on the default session, which
        the functions' clients are made from (they are made anew on entering and leaving)."""
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None
        failed: list[dict[str, Any]] = []
        event = f"before-parameter-build.{service}.{operation}"
        unique = f"rootmail-fault-{id(failed)}"

        def fail(params: dict[str, Any], **_: Any) -> None:
            if len(failed) >= times or not when(params):
                return
            failed.append(dict(params))
            if isinstance(error, str):
                raise ClientError(
                    {"Error": {"Code": error, "Message": "injected by the emulator"}, "ResponseMetadata": {}},
                    operation,
                )
            raise error(f"injected by the emulator in {service}.{operation}")

        session.events.register(event, fail, unique_id=unique)
        bootstrap.reset()
        try:
            yield failed
        finally:
            session.events.unregister(event, unique_id=unique)
            bootstrap.reset()

    def s3_event(self, *keys: str) -> dict[str, Any]:
        """The ObjectCreated event S3 sends for stored mail (keys URL-encoded, as S3 does)."""
        return {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": self.bucket}, "object": {"key": quote_plus(key, safe="/")}},
                }
                for key in keys
            ]
        }

    def store_mail(self, key: str, raw: bytes) -> str:
        """What SES's S3 action does: write the raw mail under the prefix; the bucket event starts the rest."""
        full_key = key if key.startswith(PREFIX) else PREFIX + key
        self.client("s3").put_object(Bucket=self.bucket, Key=full_key, Body=raw)
        return full_key

    def executions(self, state_machine_arn: str | None = None) -> list[dict[str, Any]]:
        """The triage workflow's executions (or another state machine's)."""
        sfn = self.client("stepfunctions")
        pages = sfn.get_paginator("list_executions").paginate(
            stateMachineArn=state_machine_arn or self.state_machine_arn
        )
        return [e for page in pages for e in page["executions"]]

    def retry_executions(self) -> list[dict[str, Any]]:
        return self.executions(self.retry_state_machine_arn)

    def wait(self, timeout: float = 120.0) -> list[dict[str, Any]]:
        """Wait until no execution of either workflow is running; return every triage execution's description
        (the retry workflow's come from `retry_executions`). Polls the listings (which carry each status) rather
        than describing every execution each time: a burst of thousands stays cheap to watch."""
        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            # The retry workflow first: while one runs it may still start triage executions.
            retrying = [e for e in self.retry_executions() if e["status"] == "RUNNING"]
            running = [e for e in self.executions() if e["status"] == "RUNNING"]
            if not retrying and not running:
                return [sfn.describe_execution(executionArn=e["executionArn"]) for e in self.executions()]
            if time.monotonic() > deadline:
                names = [e["name"] for e in [*running, *retrying]]
                raise TimeoutError(
                    f"{len(names)} execution(s) still running after {timeout:.0f} s: {names[:5]}"
                )
            time.sleep(0.05 if len(running) < 50 else 0.5)

    def rules_table(self) -> RulesTable:
        return RulesTable(self.client("dynamodb"), self.tables["rules"], self.tables["rules_history"])

    def ledger(self) -> Ledger:
        return Ledger(self.client("dynamodb"), self.tables["ledger"])

    def sent_mail(self) -> list[dict[str, Any]]:
        """What SES sent (moto keeps every message): source, destinations and the raw data."""
        from moto.ses.models import ses_backends

        backend = ses_backends[ACCOUNT][REGION]
        return [
            {"source": m.source, "destinations": list(m.destinations), "raw": m.raw_data}
            for m in backend.sent_messages
        ]

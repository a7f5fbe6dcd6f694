"""The deployable infrastructure: serverless.yml itself (fast) and what osls generates from it (marked infra).

The infra tests run scripts/check_infra.py once (osls package, asl-validator, cfn-lint) and then read the generated
CloudFormation template and the one zip every function runs from. ROOTMAIL_INFRA_SKIP_REQUIREMENTS=1 packages without the Python
requirements (seconds instead of minutes); the tests about the bundled dependencies are then skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from samples import emf_records

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "scripts" / "check_infra.py"
SERVERLESS_DIR = ROOT / ".serverless"
TEMPLATE = SERVERLESS_DIR / "cloudformation-template-update-stack.json"
SKIP_REQUIREMENTS = os.environ.get("ROOTMAIL_INFRA_SKIP_REQUIREMENTS") == "1"

FUNCTIONS = (
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
    "sync",
    "bounces",
    "slack",
    "digest",
    "retry_select",
    "retriage",
    "retry_report",
    "reconcile",
)
# The tasks of each state machine (ingest starts the triage, the schedules run sync, digest and reconcile, SES's
# events reach bounces, Slack's requests reach slack; the retry workflow's tasks and reconcile start triage
# executions themselves).
STATE_MACHINES = {
    "TriageStateMachine": (
        "triage",
        {"parse", "resolve", "refresh", "classify", "forward", "ticket", "escalate", "alert", "record"},
    ),
    "RetryStateMachine": ("retry", {"retry_select", "retriage", "retry_report"}),
}
STAGE = "ci"

# What the ci stage's names render to once the pseudo parameters are replaced by placeholders (see _target).
MAIL_OBJECTS = f"arn:aws:s3:::rootmail-ACCOUNT-REGION-{STAGE}-mail/incoming/*"
MAIL_BUCKET = MAIL_OBJECTS.removesuffix("/incoming/*")
ZENDESK_TOKEN = f"arn:aws:ssm:REGION:ACCOUNT:parameter/rootmail/{STAGE}/zendesk-api-token"
SLACK_TOKEN = f"arn:aws:ssm:REGION:ACCOUNT:parameter/rootmail/{STAGE}/slack-bot-token"
SLACK_SIGNING_SECRET = f"arn:aws:ssm:REGION:ACCOUNT:parameter/rootmail/{STAGE}/slack-signing-secret"
# The triage state machine's executions, which the retry workflow starts and watches.
TRIAGE_EXECUTIONS = f"arn:aws:states:REGION:ACCOUNT:execution:rootmail-triage-{STAGE}:*"
ANY_KMS_KEY = "arn:aws:kms:REGION:ACCOUNT:key/*"
CONFIGURATION_SET = "arn:aws:ses:REGION:ACCOUNT:configuration-set/SesConfigurationSet"
SENDER_IDENTITIES = {
    "arn:aws:ses:REGION:ACCOUNT:identity/no-reply@example.com",
    "arn:aws:ses:REGION:ACCOUNT:identity/example.com",
}

ORGANIZATION_ACCOUNTS = "arn:aws:organizations::ACCOUNT:account/o-*/*"
ALTERNATE_CONTACTS = {"arn:aws:account::ACCOUNT:account/o-*/*", "arn:aws:account::ACCOUNT:account"}

LOGS = ("logs:CreateLogStream", "logs:PutLogEvents")
LEDGER_WRITE = ("dynamodb:UpdateItem",)
DELIVERY_GUARD = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
QUEUED_MAIL = ("dynamodb:Query", "LedgerTable/index/by-state")  # the ledger's records in one state
LEDGER_RECORD = ("dynamodb:GetItem", "LedgerTable")
ACCOUNT_BY_ID = ("dynamodb:GetItem", "AccountsTable")  # the delivery steps read the accounts they deliver to


def _grants(*pairs: tuple[tuple[str, ...] | str, set[str] | str]) -> set[tuple[str, str]]:
    result = set()
    for actions, targets in pairs:
        for action in (actions,) if isinstance(actions, str) else actions:
            for target in (targets,) if isinstance(targets, str) else targets:
                result.add((action, target))
    return result


def _logical(name: str) -> str:
    """The framework's logical-ID prefix of a function (`retry_select` -> RetryUnderscoreselectLambdaFunction,
    RetryUnderscoreselectLogGroup)."""
    name = name.replace("-", "Dash").replace("_", "Underscore")
    return name[0].upper() + name[1:]


def _role(name: str) -> str:
    """The function's own role, named by us (`retry_select` -> RetrySelectRole)."""
    return "".join(part[0].upper() + part[1:] for part in name.split("_")) + "Role"


def _log_group(name: str) -> str:
    return f"{_logical(name)}LogGroup"


# Reading the organisation from the management account (the ci stage gives no organizationsRoleArn).
READ_ORGANIZATION = _grants(
    ("organizations:ListAccounts", "*"),
    ("organizations:ListTagsForResource", ORGANIZATION_ACCOUNTS),
    ("account:GetAlternateContact", ALTERNATE_CONTACTS),
)

# Every (action, resource) each function's role allows, and nothing more. Resources are logical IDs of the stack's
# own resources, or ARNs with REGION/ACCOUNT for the pseudo parameters.
EXPECTED_GRANTS = {
    "ingest": _grants(
        (LOGS, "IngestLogGroup"),
        ("states:StartExecution", "TriageStateMachine"),
        ("sqs:SendMessage", "IngestFailuresQueue"),  # its on-failure destination, sent as its role
    ),
    "parse": _grants(
        (LOGS, "ParseLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        (LEDGER_WRITE, "LedgerTable"),
        # A mail stored twice: its first copy (and taking over from one not delivered), and that copy's state.
        (("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), "DeliveriesTable"),
        ("dynamodb:GetItem", "LedgerTable"),
    ),
    "resolve": _grants(
        (LOGS, "ResolveLogGroup"),
        (("dynamodb:GetItem", "dynamodb:Query"), {"AccountsTable", "AccountsTable/index/by-email"}),
    ),
    "classify": _grants(
        (LOGS, "ClassifyLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        ("dynamodb:Scan", "RulesTable"),
    ),
    "forward": _grants(
        (LOGS, "ForwardLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        (DELIVERY_GUARD, "DeliveriesTable"),
        ACCOUNT_BY_ID,
        ("ses:SendEmail", SENDER_IDENTITIES | {CONFIGURATION_SET}),
        ("dynamodb:BatchGetItem", "SuppressionsTable"),
    ),
    "bounces": _grants(
        (LOGS, "BouncesLogGroup"),
        ("dynamodb:PutItem", "SuppressionsTable"),
        ("ssm:GetParameter", SLACK_TOKEN),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "ticket": _grants(
        (LOGS, "TicketLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        (DELIVERY_GUARD, "DeliveriesTable"),
        ACCOUNT_BY_ID,
        ("ssm:GetParameter", ZENDESK_TOKEN),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "escalate": _grants(
        (LOGS, "EscalateLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        (DELIVERY_GUARD, "DeliveriesTable"),
        ACCOUNT_BY_ID,
        ("ssm:GetParameter", {ZENDESK_TOKEN, SLACK_TOKEN}),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "alert": _grants(
        (LOGS, "AlertLogGroup"),
        ("s3:GetObject", MAIL_OBJECTS),
        (DELIVERY_GUARD, "DeliveriesTable"),
        ("ssm:GetParameter", SLACK_TOKEN),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "record": _grants((LOGS, "RecordLogGroup"), (LEDGER_WRITE, "LedgerTable")),
    "sync": _grants((LOGS, "SyncLogGroup"), (("dynamodb:Scan", "dynamodb:BatchWriteItem"), "AccountsTable"))
    | READ_ORGANIZATION,
    "refresh": _grants(
        (LOGS, "RefreshLogGroup"),
        (
            (
                "dynamodb:Scan",
                "dynamodb:BatchWriteItem",
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
            ),
            "AccountsTable",
        ),
    )
    | READ_ORGANIZATION,
    "slack": _grants(
        (LOGS, _log_group("slack")),
        QUEUED_MAIL,
        LEDGER_RECORD,
        # A new rule and its history record: one TransactWriteItems, authorised per Put.
        ("dynamodb:PutItem", {"RulesTable", "RulesHistoryTable"}),
        # The rule modal's preview: the rules in force, the pattern's stored mail and its accounts.
        (("dynamodb:GetItem", "dynamodb:Scan"), "RulesTable"),
        ("s3:GetObject", MAIL_OBJECTS),
        (("dynamodb:GetItem", "dynamodb:Query"), {"AccountsTable", "AccountsTable/index/by-email"}),
        ("dynamodb:PutItem", "SlackRequestsTable"),
        ("states:StartExecution", "RetryStateMachine"),
        ("ssm:GetParameter", {SLACK_SIGNING_SECRET, SLACK_TOKEN}),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "digest": _grants(
        (LOGS, _log_group("digest")),
        QUEUED_MAIL,
        ("ssm:GetParameter", SLACK_TOKEN),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    "retry_select": _grants((LOGS, _log_group("retry_select")), QUEUED_MAIL, LEDGER_RECORD),
    "retriage": _grants(
        (LOGS, _log_group("retriage")),
        ("states:StartExecution", "TriageStateMachine"),
        ("states:DescribeExecution", TRIAGE_EXECUTIONS),
    ),
    "retry_report": _grants(
        (LOGS, _log_group("retry_report")),
        LEDGER_RECORD,
        (DELIVERY_GUARD, "DeliveriesTable"),
        ("ssm:GetParameter", SLACK_TOKEN),
        ("kms:Decrypt", ANY_KMS_KEY),
    ),
    # Every stored mail's key (only under incoming/, see test_reconcile_lists_only_incoming_and_scans_the_overview),
    # the ledger's records, and the triage of what it finds again.
    "reconcile": _grants(
        (LOGS, "ReconcileLogGroup"),
        ("s3:ListBucket", MAIL_BUCKET),
        ("dynamodb:Query", "LedgerTable/index/by-state"),
        ("dynamodb:BatchGetItem", "LedgerTable"),
        # Each mail's re-drive count, and the queueing of one re-driven often enough.
        ("dynamodb:UpdateItem", "LedgerTable"),
        ("states:StartExecution", "TriageStateMachine"),
        ("states:DescribeExecution", TRIAGE_EXECUTIONS),
    ),
}
ACCOUNTS_ENV = {
    "ROOTMAIL_ACCOUNTS_TABLE",
    "ROOTMAIL_ORGANIZATIONS",
    "ROOTMAIL_CONTACTS_TAG",
    "ROOTMAIL_LANGUAGE_TAG",
}

# The ROOTMAIL_* variables each function gets (the contract's names; only what its code reads).
EXPECTED_ENV = {
    "ingest": {"ROOTMAIL_STATE_MACHINE_ARN"},
    "parse": {"ROOTMAIL_MAIL_BUCKET", "ROOTMAIL_LEDGER_TABLE", "ROOTMAIL_DELIVERIES_TABLE"},
    "resolve": {"ROOTMAIL_ACCOUNTS_TABLE", "ROOTMAIL_ROOT_ADDRESS_TAG_SEPARATOR"},
    "classify": {"ROOTMAIL_MAIL_BUCKET", "ROOTMAIL_RULES_TABLE"},
    "forward": {
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_DELIVERIES_TABLE",
        "ROOTMAIL_ACCOUNTS_TABLE",
        "ROOTMAIL_SENDER_ADDRESS",
        "ROOTMAIL_REPLY_TO_ADDRESS",
        "ROOTMAIL_CONTACT_KINDS",
        "ROOTMAIL_SUPPRESSIONS_TABLE",
        "ROOTMAIL_SES_CONFIGURATION_SET",
        "ROOTMAIL_SES_SEND_RATE",
    },
    "bounces": {"ROOTMAIL_SUPPRESSIONS_TABLE", "ROOTMAIL_SLACK_TOKEN_PARAMETER", "ROOTMAIL_SLACK_CHANNEL"},
    "ticket": {
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_DELIVERIES_TABLE",
        "ROOTMAIL_ACCOUNTS_TABLE",
        "ROOTMAIL_ZENDESK_SUBDOMAIN",
        "ROOTMAIL_ZENDESK_EMAIL",
        "ROOTMAIL_ZENDESK_TOKEN_PARAMETER",
        "ROOTMAIL_ZENDESK_REQUESTS_PER_MINUTE",
        "ROOTMAIL_CONTACT_KINDS",
    },
    "escalate": {
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_DELIVERIES_TABLE",
        "ROOTMAIL_ACCOUNTS_TABLE",
        "ROOTMAIL_ZENDESK_SUBDOMAIN",
        "ROOTMAIL_ZENDESK_EMAIL",
        "ROOTMAIL_ZENDESK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_CHANNEL",
        "ROOTMAIL_ZENDESK_REQUESTS_PER_MINUTE",
        "ROOTMAIL_CONTACT_KINDS",
    },
    "alert": {
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_DELIVERIES_TABLE",
        "ROOTMAIL_SLACK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_CHANNEL",
    },
    "record": {"ROOTMAIL_LEDGER_TABLE"},
    "sync": ACCOUNTS_ENV,
    "refresh": ACCOUNTS_ENV,
    "slack": {
        "ROOTMAIL_LEDGER_TABLE",
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_ACCOUNTS_TABLE",
        "ROOTMAIL_RULES_TABLE",
        "ROOTMAIL_RULES_HISTORY_TABLE",
        "ROOTMAIL_SLACK_REQUESTS_TABLE",
        "ROOTMAIL_RETRY_STATE_MACHINE_ARN",
        "ROOTMAIL_SLACK_SIGNING_SECRET_PARAMETER",
        "ROOTMAIL_SLACK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_CHANNEL",
        "ROOTMAIL_SLACK_OPERATOR_IDS",
        "ROOTMAIL_SLACK_CHANNEL_IDS",
        "ROOTMAIL_OPERATOR_LANGUAGE",
        "ROOTMAIL_ROOT_ADDRESS_TAG_SEPARATOR",
    },
    "digest": {
        "ROOTMAIL_LEDGER_TABLE",
        "ROOTMAIL_SLACK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_CHANNEL",
        "ROOTMAIL_OPERATOR_LANGUAGE",
    },
    "retry_select": {"ROOTMAIL_LEDGER_TABLE"},
    "retriage": {"ROOTMAIL_STATE_MACHINE_ARN"},
    "retry_report": {
        "ROOTMAIL_LEDGER_TABLE",
        "ROOTMAIL_DELIVERIES_TABLE",
        "ROOTMAIL_SLACK_TOKEN_PARAMETER",
        "ROOTMAIL_SLACK_CHANNEL",
        "ROOTMAIL_OPERATOR_LANGUAGE",
    },
    "reconcile": {
        "ROOTMAIL_MAIL_BUCKET",
        "ROOTMAIL_LEDGER_TABLE",
        "ROOTMAIL_STATE_MACHINE_ARN",
        "ROOTMAIL_RECONCILE_GRACE_MINUTES",
        "ROOTMAIL_RECONCILE_STUCK_MINUTES",
        "ROOTMAIL_RECONCILE_MAX_ATTEMPTS",
    },
}

TABLE_ENV = {
    "ROOTMAIL_LEDGER_TABLE": "LedgerTable",
    "ROOTMAIL_ACCOUNTS_TABLE": "AccountsTable",
    "ROOTMAIL_RULES_TABLE": "RulesTable",
    "ROOTMAIL_DELIVERIES_TABLE": "DeliveriesTable",
    "ROOTMAIL_SUPPRESSIONS_TABLE": "SuppressionsTable",
    "ROOTMAIL_RULES_HISTORY_TABLE": "RulesHistoryTable",
    "ROOTMAIL_SLACK_REQUESTS_TABLE": "SlackRequestsTable",
}

# table: (name after rootmail-<stage>-, key schema [(attribute, type), sort key if any],
#         {index: (partition key, sort key or None)}); index keys are strings
EXPECTED_TABLES = {
    "LedgerTable": ("ledger", [("mail_id", "S")], {"by-state": ("state", "updated_at")}),
    "AccountsTable": ("accounts", [("account_id", "S")], {"by-email": ("email", None)}),
    "RulesTable": ("rules", [("rule_id", "S")], {}),
    "RulesHistoryTable": ("rules-history", [("rule_id", "S"), ("version", "N")], {}),
    "DeliveriesTable": ("deliveries", [("delivery_id", "S")], {}),
    "SuppressionsTable": ("suppressions", [("address", "S")], {}),
    "SlackRequestsTable": ("slack-requests", [("signature", "S")], {}),
}
# Tables whose items expire (table: TTL attribute): nothing in them is worth a point-in-time restore.
EXPIRING_TABLES = {"SlackRequestsTable": "expires_at"}

# The reconcile function's metrics (rootmail/entrypoints/handlers/reconcile.py writes them as EMF records): the namespace and
# the dimensions Powertools' single_metric gives them (service=POWERTOOLS_SERVICE_NAME).
RECONCILE_METRICS_NAMESPACE = "rootmail"
RECONCILE_METRIC_DIMENSIONS = {"service": "rootmail"}
# alarm: (namespace, metric, {dimension: value}, statistic, period in seconds, threshold). Each fires once its
# statistic over one period is above the threshold, and tells the AlarmsTopic.
EXPECTED_ALARMS: dict[str, tuple[str, str, dict[str, Any], str, int, int]] = {
    "TriageExecutionsFailedAlarm": (
        "AWS/States",
        "ExecutionsFailed",
        {"StateMachineArn": {"Ref": "TriageStateMachine"}},
        "Sum",
        300,
        0,
    ),
    "RetryExecutionsFailedAlarm": (
        "AWS/States",
        "ExecutionsFailed",
        {"StateMachineArn": {"Ref": "RetryStateMachine"}},
        "Sum",
        300,
        0,
    ),
    "IngestFailuresAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["IngestFailuresQueue", "QueueName"]}},
        "Maximum",
        300,
        0,
    ),
    "ReconcileErrorsAlarm": (
        "AWS/Lambda",
        "Errors",
        {"FunctionName": {"Ref": "ReconcileLambdaFunction"}},
        "Sum",
        3600,
        0,
    ),
    "MailNotTriagedAlarm": (
        RECONCILE_METRICS_NAMESPACE,
        "MailNotTriaged",
        RECONCILE_METRIC_DIMENSIONS,
        "Maximum",
        3600,
        0,
    ),
    "MailStuckInFlightAlarm": (
        RECONCILE_METRICS_NAMESPACE,
        "MailStuckInFlight",
        RECONCILE_METRIC_DIMENSIONS,
        "Maximum",
        3600,
        0,
    ),
    "MailGivenUpAlarm": (
        RECONCILE_METRICS_NAMESPACE,
        "MailGivenUp",
        RECONCILE_METRIC_DIMENSIONS,
        "Maximum",
        3600,
        0,
    ),
    "OldestQueuedMailAlarm": (
        RECONCILE_METRICS_NAMESPACE,
        "OldestQueuedMailAge",
        RECONCILE_METRIC_DIMENSIONS,
        "Maximum",
        3600,
        24 * 3600,  # queuedAlarmSeconds
    ),
}


# ---- serverless.yml itself (no packaging) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def serverless_yml() -> dict[str, Any]:
    # safe_load also proves the file uses no YAML tags (!Ref, !GetAtt), which plain YAML tools cannot read.
    return yaml.safe_load((ROOT / "serverless.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("architecture", "machine"), [("arm64", "aarch64"), ("x86_64", "x86_64")])
def test_pip_takes_wheels_for_glibc_2_17_and_2_28_on_either_architecture(
    serverless_yml: dict[str, Any], architecture: str, machine: str
) -> None:
    """The python3.12 runtime has glibc 2.34: wheels tagged manylinux2014 (2.17) and manylinux_2_28 both run there,
    and google-re2's come only as manylinux_2_28; pip takes exactly the tags it is given."""
    custom = serverless_yml["custom"]
    platforms = [
        re.sub(
            r"\$\{self:custom\.(\w+)\.\$\{param:architecture\}\}",
            lambda found: custom[found[1]][architecture],
            argument.split(" ", 1)[1],
        )
        for argument in custom["pythonRequirements"]["pipCmdExtraArgs"]
        if argument.startswith("--platform ")
    ]
    assert platforms == [f"manylinux2014_{machine}", f"manylinux_2_28_{machine}"]


def test_serverless_yml_declares_exactly_the_contract_functions(serverless_yml: dict[str, Any]) -> None:
    assert sorted(serverless_yml["functions"]) == sorted(FUNCTIONS)


def test_the_local_pipeline_runs_the_functions_serverless_yml_deploys(serverless_yml: dict[str, Any]) -> None:
    from rootmail_local.emulator import FUNCTIONS as LOCAL_FUNCTIONS

    deployed = {name: spec["handler"] for name, spec in serverless_yml["functions"].items()}
    assert deployed == LOCAL_FUNCTIONS


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_has_its_handler_module_and_own_role(serverless_yml: dict[str, Any], name: str) -> None:
    function = serverless_yml["functions"][name]
    assert function["handler"] == f"rootmail.entrypoints.handlers.{name}.handler"
    assert function["description"]
    assert function["role"] == _role(name)
    assert serverless_yml["resources"]["Resources"][function["role"]]["Type"] == "AWS::IAM::Role"
    handler_source = ROOT / "functions" / "rootmail" / "entrypoints" / "handlers" / f"{name}.py"
    assert re.search(r"^def handler\(", handler_source.read_text(encoding="utf-8"), re.MULTILINE), (
        handler_source
    )


def test_every_function_is_packaged_in_one_artifact(serverless_yml: dict[str, Any]) -> None:
    """osls zips the service once; scripts/osls-package-root.js makes functions/ the zip's root (the generated
    artifact itself is checked below)."""
    assert serverless_yml["package"]["individually"] is False
    assert serverless_yml["custom"]["packageRoot"] == "functions"
    assert "./scripts/osls-package-root.js" in serverless_yml["plugins"]
    assert (ROOT / "scripts" / "osls-package-root.js").is_file()
    assert serverless_yml["custom"]["pythonRequirements"]["fileName"].endswith(
        "'functions/requirements.txt'}"
    )
    for name, function in serverless_yml["functions"].items():
        # A function's own `package` or serverless-python-requirements' `module` would give it a zip of its own.
        assert not {"package", "module"} & set(function), name
    assert "layer" not in serverless_yml["custom"]["pythonRequirements"]


def _requirement_pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"not pinned with ==: {line}"
        pins[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip()
    return pins


def test_lambda_requirements_carry_the_pyproject_pins() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lambda_lines = (ROOT / "functions" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert _requirement_pins(lambda_lines) == _requirement_pins(pyproject["project"]["dependencies"])


def test_secret_parameters_are_ssm_names_not_values(serverless_yml: dict[str, Any]) -> None:
    defaults = serverless_yml["params"]["default"]
    for key in ("zendeskTokenParameter", "slackTokenParameter", "slackSigningSecretParameter"):
        assert defaults[key].startswith("/rootmail/"), key
    for stage, values in serverless_yml["params"].items():
        for key, value in values.items():
            if key.endswith("Parameter"):  # the name of an SSM parameter that holds the secret
                assert str(value).startswith("/"), f"{stage}.{key} is not an SSM parameter name"
            else:
                assert not re.search(r"token$|secret|password", key, re.IGNORECASE), (
                    f"{stage}.{key} holds a secret"
                )
            assert not _looks_like_secret(str(value)), f"{stage}.{key}"


def test_the_operators_and_their_channels_must_be_given_for_real_stages(
    serverless_yml: dict[str, Any],
) -> None:
    params = serverless_yml["params"]
    for key in ("slackChannel", "slackOperatorIds", "slackChannelIds"):
        assert key not in params["default"], key  # no guessing who may retry mail
    assert re.fullmatch(r"[UW][A-Z0-9]+(,[UW][A-Z0-9]+)*", params[STAGE]["slackOperatorIds"])
    assert re.fullmatch(r"[CG][A-Z0-9]+(,[CG][A-Z0-9]+)*", params[STAGE]["slackChannelIds"])
    assert params["default"]["operatorLanguage"] in ("en", "ja")


# ---- the generated template (osls package) ------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    command = [sys.executable, str(CHECK)] + (["--skip-requirements"] if SKIP_REQUIREMENTS else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/check_infra.py failed:\n{done.stdout}{done.stderr}", pytrace=False)
    return json.loads(TEMPLATE.read_text(encoding="utf-8"))


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == kind}


def _function(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][f"{_logical(name)}LambdaFunction"]


PSEUDO_PARAMETERS = {"AWS::Partition": "aws", "AWS::Region": "REGION", "AWS::AccountId": "ACCOUNT"}


def _sub(text: str) -> str:
    """A Fn::Sub string with the pseudo parameters and ${Resource.Arn} replaced by readable placeholders."""
    text = text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "REGION")
    text = text.replace("${AWS::AccountId}", "ACCOUNT")
    text = re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)
    return re.sub(r"\$\{(\w+)\}", r"\1", text)  # ${Resource}: its Ref


def _target(value: Any) -> str:
    """Render a Resource value (string or intrinsic) as a logical ID or an ARN with placeholders."""
    if isinstance(value, str):
        return value
    (function, argument), *rest = value.items()
    assert not rest, value
    if function == "Ref":
        return PSEUDO_PARAMETERS.get(argument, argument)
    if function == "Fn::GetAtt":
        assert argument[1] == "Arn", value
        return argument[0]
    if function == "Fn::Sub":
        if isinstance(argument, str):
            return _sub(argument)
        text, variables = argument
        return _sub(re.sub(r"\$\{(\w+)\}", lambda m: _target(variables[m.group(1)]), text))
    if function == "Fn::Join":
        return argument[0].join(_target(part) for part in argument[1])
    if function == "Fn::Select":
        return _split(argument[1])[argument[0]]
    raise AssertionError(f"unexpected intrinsic in a policy: {value}")


def _split(value: dict[str, Any]) -> list[str]:
    separator, text = value["Fn::Split"]
    return _target(text).split(separator)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _conditions(template: dict[str, Any], parameters: dict[str, str] | None = None) -> dict[str, bool]:
    """The template's conditions, for its parameters' defaults or the values given."""
    values = {name: p.get("Default", "") for name, p in template.get("Parameters", {}).items()}
    values.update(parameters or {})

    def evaluate(node: Any) -> Any:
        if isinstance(node, dict):
            (function, argument), *rest = node.items()
            assert not rest, node
            if function == "Ref":
                return values[argument]
            if function == "Fn::Equals":
                return evaluate(argument[0]) == evaluate(argument[1])
            if function == "Fn::Not":
                return not evaluate(argument[0])
            raise AssertionError(f"unexpected intrinsic in a condition: {node}")
        return node

    return {name: bool(evaluate(body)) for name, body in template.get("Conditions", {}).items()}


def _statements(statements: list[Any], conditions: dict[str, bool]) -> Iterator[dict[str, Any]]:
    """Statements with `Fn::If` taken the way the conditions go (`AWS::NoValue` drops the statement)."""
    for statement in statements:
        while set(statement) == {"Fn::If"}:
            condition, when_true, when_false = statement["Fn::If"]
            statement = when_true if conditions[condition] else when_false
        if statement != {"Ref": "AWS::NoValue"}:
            yield statement


def _policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every statement of every permission policy in the stack (not trust policies), with its resource's ID, for
    either value of every condition (a statement that only one branch grants is still checked)."""
    conditions = _conditions(template)
    variants = [conditions, {name: not value for name, value in conditions.items()}]
    for key, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        documents = []
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy"):
            documents = [properties["PolicyDocument"]]
        for document in documents:
            seen = []
            for variant in variants:
                for statement in _statements(document["Statement"], variant):
                    if statement not in seen:
                        seen.append(statement)
                        yield key, statement


def _role_grants(
    template: dict[str, Any], role: str, parameters: dict[str, str] | None = None
) -> set[tuple[str, str]]:
    properties = template["Resources"][role]["Properties"]
    conditions = _conditions(template, parameters)
    grants = set()
    for policy in properties.get("Policies", []):
        for statement in _statements(policy["PolicyDocument"]["Statement"], conditions):
            assert statement["Effect"] == "Allow", statement
            for action in _as_list(statement["Action"]):
                for resource in _resources_of(statement["Resource"], parameters or {}):
                    grants.add((action, resource))
    return grants


def _resources_of(value: Any, parameters: dict[str, str]) -> list[str]:
    """A statement's resources; a list split out of a parameter's value is that value's items."""
    if isinstance(value, dict) and set(value) == {"Fn::Split"}:
        separator, text = value["Fn::Split"]
        if isinstance(text, dict) and text.get("Ref") in parameters:
            return parameters[text["Ref"]].split(separator)
        return _split(value)
    return [_target(resource) for resource in _as_list(value)]


@pytest.mark.infra
@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_is_deployed_with_its_handler_and_runtime(template: dict[str, Any], name: str) -> None:
    properties = _function(template, name)["Properties"]
    assert properties["Handler"] == f"rootmail.entrypoints.handlers.{name}.handler"
    assert properties["Runtime"] == "python3.12"
    assert properties["Architectures"] == ["arm64"]
    assert properties["FunctionName"] == f"rootmail-{STAGE}-{name}"
    assert properties["Role"] == {"Fn::GetAtt": [_role(name), "Arn"]}


@pytest.mark.infra
def test_the_stack_has_no_other_functions(template: dict[str, Any]) -> None:
    expected = {f"{_logical(name)}LambdaFunction" for name in FUNCTIONS}
    assert set(_resources(template, "AWS::Lambda::Function")) == expected


def _task_states(states: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every Task state of a definition's States, including those inside Map and Parallel states, by path."""
    for name, state in states.items():
        path = f"{prefix}{name}"
        if state["Type"] == "Task":
            yield path, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _task_states(state[key]["States"], f"{path}/")
        for number, branch in enumerate(state.get("Branches", [])):
            yield from _task_states(branch["States"], f"{path}/{number}/")


@pytest.mark.infra
@pytest.mark.parametrize("machine_id", sorted(STATE_MACHINES))
def test_every_state_machine_task_invokes_the_function_its_definition_names(
    template: dict[str, Any], machine_id: str
) -> None:
    name, tasks = STATE_MACHINES[machine_id]
    machine = template["Resources"][machine_id]["Properties"]
    assert machine["StateMachineName"] == f"rootmail-{name}-{STAGE}"
    assert machine.get("StateMachineType", "STANDARD") == "STANDARD"
    body, substitutions = machine["DefinitionString"]["Fn::Sub"]
    rendered = dict(_task_states(json.loads(body)["States"]))
    source = json.loads((ROOT / "statemachine" / f"{name}.asl.json").read_text(encoding="utf-8"))["States"]
    used = set()
    for path, state in _task_states(source):
        function = state["Resource"]["Fn::GetAtt"][0]
        placeholder = re.fullmatch(r"\$\{(\w+)\}", rendered[path]["Resource"])
        assert placeholder, f"{path}: Resource not resolved to a function ARN"
        assert substitutions[placeholder.group(1)] == {
            "Fn::GetAtt": [f"{_logical(function)}LambdaFunction", "Arn"]
        }
        used.add(function)
    assert used == tasks
    # Nothing else is substituted into the definition: it references its task functions and no other resource.
    assert {json.dumps(value, sort_keys=True) for value in substitutions.values()} == {
        json.dumps({"Fn::GetAtt": [f"{_logical(task)}LambdaFunction", "Arn"]}, sort_keys=True)
        for task in tasks
    }


@pytest.mark.infra
@pytest.mark.parametrize("machine_id", sorted(STATE_MACHINES))
def test_the_state_machine_may_only_invoke_its_task_functions(
    template: dict[str, Any], machine_id: str
) -> None:
    role = template["Resources"][machine_id]["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    grants = _role_grants(template, role)
    assert {action for action, _ in grants} == {"lambda:InvokeFunction"}
    tasks = {f"{_logical(name)}LambdaFunction" for name in STATE_MACHINES[machine_id][1]}
    # The function and its versions (`:*`), which the plugin adds for tasks that name a version.
    assert {target for _, target in grants} == tasks | {f"{task}:*" for task in tasks}


@pytest.mark.infra
def test_the_retry_workflow_references_only_the_three_retry_functions(template: dict[str, Any]) -> None:
    body, substitutions = template["Resources"]["RetryStateMachine"]["Properties"]["DefinitionString"][
        "Fn::Sub"
    ]
    referenced = {value["Fn::GetAtt"][0] for value in substitutions.values()}
    assert referenced == {
        "RetryUnderscoreselectLambdaFunction",
        "RetriageLambdaFunction",
        "RetryUnderscorereportLambdaFunction",
    }
    # Every ${...} in the body is one of those substitutions (no stray reference to another resource).
    assert set(re.findall(r"\$\{([^}]+)\}", body)) == set(substitutions)


@pytest.mark.infra
def test_no_policy_allows_wildcard_actions_or_wildcard_data_resources(template: dict[str, Any]) -> None:
    for key, statement in _policy_statements(template):
        if statement["Effect"] != "Allow":
            continue  # a Deny with s3:* (TLS only) is a restriction, not a grant
        actions = _as_list(statement["Action"])
        for action in actions:
            assert action != "*" and not action.endswith(":*"), f"{key}: {action}"
        services = {action.split(":", 1)[0] for action in actions}
        if services & {"dynamodb", "s3", "ssm", "states"}:
            for resource in _as_list(statement["Resource"]):
                target = _target(resource)
                # The mail under incoming/, and the executions of the triage state machine (one ARN each).
                allowed_wildcard = (services == {"s3"} and target.endswith("/incoming/*")) or (
                    actions == ["states:DescribeExecution"] and target == TRIAGE_EXECUTIONS
                )
                assert "*" not in target or allowed_wildcard, f"{key}: {actions} on {target}"


@pytest.mark.infra
@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_role_grants_exactly_its_own_needs(template: dict[str, Any], name: str) -> None:
    role = template["Resources"][_role(name)]["Properties"]
    assert "ManagedPolicyArns" not in role  # e.g. AWSLambdaBasicExecutionRole writes to every log group
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "lambda.amazonaws.com"}
    assert _role_grants(template, _role(name)) == EXPECTED_GRANTS[name]


@pytest.mark.infra
@pytest.mark.parametrize(
    ("name", "forbidden"),
    [
        ("ingest", ("dynamodb:GetItem", "LedgerTable")),
        ("ingest", ("s3:GetObject", MAIL_OBJECTS)),
        ("parse", ("ses:SendEmail", "arn:aws:ses:REGION:ACCOUNT:identity/example.com")),
        ("classify", ("dynamodb:PutItem", "RulesTable")),
        ("forward", ("ssm:GetParameter", ZENDESK_TOKEN)),
        ("ticket", ("ssm:GetParameter", SLACK_TOKEN)),
        ("alert", ("ssm:GetParameter", ZENDESK_TOKEN)),
        ("record", ("states:StartExecution", "TriageStateMachine")),
        ("resolve", ("organizations:ListAccounts", "*")),
        ("resolve", ("dynamodb:PutItem", "AccountsTable")),
        ("sync", ("dynamodb:PutItem", "AccountsTable")),
        ("forward", ("dynamodb:Scan", "AccountsTable")),
        ("slack", ("states:StartExecution", "TriageStateMachine")),  # operators retry through the workflow
        ("slack", ("dynamodb:UpdateItem", "LedgerTable")),
        ("slack", ("dynamodb:UpdateItem", "RulesHistoryTable")),  # history is appended, never rewritten
        ("digest", ("states:StartExecution", "RetryStateMachine")),
        ("digest", ("ssm:GetParameter", SLACK_SIGNING_SECRET)),
        ("retry_select", ("states:StartExecution", "TriageStateMachine")),
        ("retriage", ("dynamodb:GetItem", "LedgerTable")),
        ("retry_report", ("ssm:GetParameter", SLACK_SIGNING_SECRET)),
        ("record", ("dynamodb:Query", "LedgerTable/index/by-state")),
        ("ingest", ("s3:ListBucket", MAIL_BUCKET)),
        ("reconcile", ("s3:GetObject", MAIL_OBJECTS)),  # the keys and dates only, never the mail
        ("reconcile", ("states:StartExecution", "RetryStateMachine")),
    ],
)
def test_a_function_cannot_do_what_another_needs(
    template: dict[str, Any], name: str, forbidden: tuple[str, str]
) -> None:
    assert forbidden not in _role_grants(template, _role(name))


@pytest.mark.infra
def test_sending_mail_is_pinned_to_the_sender_address(template: dict[str, Any]) -> None:
    for key, statement in _policy_statements(template):
        if any(action.startswith("ses:") for action in _as_list(statement["Action"])):
            assert key == "ForwardRole"
            assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": "no-reply@example.com"}}


@pytest.mark.infra
def test_kms_decrypt_is_only_for_ssm_reading_the_functions_own_parameters(template: dict[str, Any]) -> None:
    for key, statement in _policy_statements(template):
        if "kms:Decrypt" not in _as_list(statement["Action"]):
            continue
        parameters = {
            target for action, target in _role_grants(template, key) if action == "ssm:GetParameter"
        }
        condition = statement["Condition"]["StringEquals"]
        assert _target(condition["kms:ViaService"]) == "ssm.REGION.amazonaws.com"
        assert {_target(arn) for arn in condition["kms:EncryptionContext:PARAMETER_ARN"]} == parameters


@pytest.mark.infra
@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_function_gets_only_its_configuration(template: dict[str, Any], name: str) -> None:
    variables = _function(template, name)["Properties"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "rootmail"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "rootmail"
    assert variables["LOG_LEVEL"] == "INFO"
    # Every function's logs follow one redaction switch (provider-wide), off unless the stage's parameter says so.
    assert variables["ROOTMAIL_REDACT_ADDRESSES"] == "false"
    assert {key for key in variables if key.startswith("ROOTMAIL_")} - {
        "ROOTMAIL_REDACT_ADDRESSES"
    } == EXPECTED_ENV[name]
    bucket_name = template["Resources"]["MailBucket"]["Properties"]["BucketName"]
    for key, value in variables.items():
        if key in TABLE_ENV:
            assert value == {"Ref": TABLE_ENV[key]}, key
        elif key == "ROOTMAIL_MAIL_BUCKET":
            assert value == bucket_name
        elif key == "ROOTMAIL_SES_CONFIGURATION_SET":
            assert value == {"Ref": "SesConfigurationSet"}
        elif key == "ROOTMAIL_STATE_MACHINE_ARN":
            assert value == {"Ref": "TriageStateMachine"}
        elif key == "ROOTMAIL_RETRY_STATE_MACHINE_ARN":
            assert value == {"Ref": "RetryStateMachine"}
        elif key == "ROOTMAIL_ORGANIZATIONS":
            assert value == ""  # the ci stage runs in its management account
        elif key.endswith("_PARAMETER"):
            assert value.startswith(f"/rootmail/{STAGE}/"), key
        elif key == "ROOTMAIL_SLACK_OPERATOR_IDS":
            assert value == "U0CIOPS1"
        elif key == "ROOTMAIL_SLACK_CHANNEL_IDS":
            assert value == "C0CIOPS1"
        elif key == "ROOTMAIL_OPERATOR_LANGUAGE":
            assert value == "en"
        elif key == "ROOTMAIL_ROOT_ADDRESS_TAG_SEPARATOR":
            assert value == ""  # a +tag is part of a root address unless the provider says otherwise
            from rootmail.config import Settings

            assert Settings(root_address_tag_separator=value).root_address_tag_separator is None
        elif key in (
            "ROOTMAIL_RECONCILE_GRACE_MINUTES",
            "ROOTMAIL_RECONCILE_STUCK_MINUTES",
            "ROOTMAIL_RECONCILE_MAX_ATTEMPTS",
        ):
            from rootmail.config import Settings  # the deployed default is the code's

            assert value == str(Settings.model_fields[key.removeprefix("ROOTMAIL_").lower()].default), key


@pytest.mark.infra
def test_with_management_roles_the_accounts_functions_may_only_assume_exactly_those(
    template: dict[str, Any],
) -> None:
    roles = [
        "arn:aws:iam::111122223333:role/rootmail-organizations-reader",
        "arn:aws:iam::444455556666:role/readers/rootmail",
    ]
    for given in (roles[:1], roles):
        for name in ("sync", "refresh"):
            grants = _role_grants(template, _role(name), {"OrganizationsRoleArns": ",".join(given)})
            assert grants == (EXPECTED_GRANTS[name] - READ_ORGANIZATION) | {
                ("sts:AssumeRole", r) for r in given
            }
    parameter = template["Parameters"]["OrganizationsRoleArns"]
    assert parameter["Default"] == ""
    for good in ("", roles[0], ",".join(roles)):
        assert re.fullmatch(parameter["AllowedPattern"], good), good
    for bad in ("rootmail-organizations-reader", roles[0] + ",", f"{roles[0]},,{roles[1]}"):
        assert not re.fullmatch(parameter["AllowedPattern"], bad), bad


@pytest.mark.infra
def test_the_accounts_sync_the_digest_and_the_reconcile_run_every_hour(template: dict[str, Any]) -> None:
    schedules = {}
    for rule in _resources(template, "AWS::Events::Rule").values():
        assert rule["Properties"]["State"] == "ENABLED"
        (target,) = rule["Properties"]["Targets"]
        schedules[_target(target["Arn"])] = rule["Properties"]["ScheduleExpression"]
    assert schedules == {
        "SyncLambdaFunction": "rate(1 hour)",
        "DigestLambdaFunction": "rate(1 hour)",
        "ReconcileLambdaFunction": "rate(1 hour)",
    }
    assert _function(template, "sync")["Properties"]["Timeout"] == 900  # accounts_sync plans by the time left
    # The whole mail store and the ledger in one run (the same timeout as in local/rootmail_local/emulator.py).
    assert _function(template, "reconcile")["Properties"]["Timeout"] == 300


def _statements_granting(template: dict[str, Any], role: str, action: str) -> list[dict[str, Any]]:
    return [
        statement
        for key, statement in _policy_statements(template)
        if key == role and action in _as_list(statement["Action"])
    ]


@pytest.mark.infra
def test_reconcile_lists_only_incoming_and_scans_only_the_overview(template: dict[str, Any]) -> None:
    from rootmail.app.ports import LEDGER_OVERVIEW

    (listing,) = _statements_granting(template, "ReconcileRole", "s3:ListBucket")
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["incoming/*"]}}
    # The projection audit.py scans with (LEDGER_OVERVIEW): a field added there must be allowed here too, or the
    # hourly scan is refused.
    (read,) = _statements_granting(template, "ReconcileRole", "dynamodb:BatchGetItem")
    assert read["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": list(LEDGER_OVERVIEW)},
        "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    }
    audit_source = (ROOT / "functions" / "rootmail" / "app" / "audit.py").read_text(encoding="utf-8")
    assert "fields=LEDGER_OVERVIEW" in audit_source
    assert not _statements_granting(template, "ReconcileRole", "dynamodb:Scan")  # never the whole ledger


@pytest.mark.infra
def test_reconcile_writes_only_a_records_re_drive_fields(template: dict[str, Any]) -> None:
    """The re-driven triage writes the ledger; reconcile itself only counts re-drives and queues a mail it gives
    up on: its grant names those attributes (Ledger.REDRIVE_FIELDS), and its writes use no other."""
    from rootmail.adapters.dynamodb.ledger import Ledger

    (write,) = _statements_granting(template, "ReconcileRole", "dynamodb:UpdateItem")
    assert write["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": list(Ledger.REDRIVE_FIELDS)},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": "NONE"},
    }

    class Recording:
        def __init__(self) -> None:
            self.calls: list[dict[str, Any]] = []

        def update_item(self, **call: Any) -> dict[str, Any]:
            self.calls.append(call)
            return {}

    client = Recording()
    ledger = Ledger(client, "ledger")
    ledger.count_redrive(
        "m", execution="e", bucket="b", key="incoming/m", received_at="2024-05-01T10:00:00.000Z"
    )
    ledger.give_up("m", reason="given up after 3 re-drives", bucket="b", key="incoming/m")
    for call in client.calls:
        assert {"mail_id", *call["ExpressionAttributeNames"].values()} <= set(Ledger.REDRIVE_FIELDS)
        assert call.get("ReturnValues", "NONE") == "NONE"


@pytest.mark.infra
def test_ingest_keeps_the_events_it_failed_in_an_encrypted_queue(template: dict[str, Any]) -> None:
    (config,) = [
        c["Properties"]
        for c in _resources(template, "AWS::Lambda::EventInvokeConfig").values()
        if c["Properties"]["FunctionName"] == {"Ref": "IngestLambdaFunction"}
    ]
    assert config["Qualifier"] == "$LATEST"
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["IngestFailuresQueue", "Arn"]}}
    }
    queue = template["Resources"]["IngestFailuresQueue"]
    assert queue["Type"] == "AWS::SQS::Queue"
    assert queue["Properties"] == {
        "QueueName": f"rootmail-{STAGE}-ingest-failures",
        "MessageRetentionPeriod": 14 * 24 * 3600,
        "SqsManagedSseEnabled": True,
    }
    # Only ingest may send there (Lambda sends the failed invocation with the function's role).
    senders = {key for key, statement in _policy_statements(template) if "sqs:" in str(statement["Action"])}
    assert senders == {"IngestRole"}
    assert template["Outputs"]["IngestFailuresQueueUrl"]["Value"] == {"Ref": "IngestFailuresQueue"}


@pytest.mark.infra
def test_every_alarm_watches_its_metric_and_tells_the_alarms_topic(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert set(alarms) == set(EXPECTED_ALARMS)
    key_policy = template["Resources"]["AlarmsKey"]["Properties"]["KeyPolicy"]["Statement"]
    (cloudwatch,) = [s for s in key_policy if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    alarm_arns = _target(cloudwatch["Condition"]["ArnLike"]["aws:SourceArn"])
    assert alarm_arns == f"arn:aws:cloudwatch:REGION:ACCOUNT:alarm:rootmail-{STAGE}-*"
    for alarm_id, (namespace, metric, dimensions, statistic, period, threshold) in EXPECTED_ALARMS.items():
        properties = alarms[alarm_id]["Properties"]
        assert properties["Namespace"] == namespace, alarm_id
        assert properties["MetricName"] == metric, alarm_id
        # CloudWatch matches a metric by its exact dimension set: one more or one less and the alarm sees nothing.
        assert properties["Dimensions"] == [{"Name": n, "Value": v} for n, v in dimensions.items()], alarm_id
        assert properties["Statistic"] == statistic, alarm_id
        assert properties["Period"] == period, alarm_id
        assert properties["EvaluationPeriods"] == 1, alarm_id
        assert float(properties["Threshold"]) == threshold, alarm_id
        assert properties["ComparisonOperator"] == "GreaterThanThreshold", alarm_id
        assert properties["TreatMissingData"] == "notBreaching", alarm_id  # no data: nothing happened
        assert properties["AlarmActions"] == [{"Ref": "AlarmsTopic"}], alarm_id
        assert "rootmail audit" in properties["AlarmDescription"], alarm_id  # what the operator does next
        # CloudWatch may use the topic's key only for alarms named like these; another name's notice is dropped.
        assert properties["AlarmName"].startswith(alarm_arns.rsplit(":", 1)[1].removesuffix("*")), alarm_id
    topic = template["Resources"]["AlarmsTopic"]["Properties"]
    assert topic["TopicName"] == f"rootmail-{STAGE}-alarms"
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmsKey"}
    assert _target(cloudwatch["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]) == (
        f"arn:aws:sns:REGION:ACCOUNT:{topic['TopicName']}"
    )
    assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert template["Resources"]["AlarmsKey"]["Properties"]["EnableKeyRotation"] is True
    assert template["Outputs"]["AlarmsTopicArn"]["Value"] == {"Ref": "AlarmsTopic"}


@pytest.mark.infra
def test_ses_can_publish_its_events_to_their_encrypted_topic(template: dict[str, Any]) -> None:
    # SES cannot use the AWS-managed SNS key (its policy cannot let SES in): the topic needs a key that does.
    topic = template["Resources"]["SesEventsTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "SesEventsKey"}
    statements = template["Resources"]["SesEventsKey"]["Properties"]["KeyPolicy"]["Statement"]
    (ses,) = [s for s in statements if s["Principal"] == {"Service": "ses.amazonaws.com"}]
    assert set(ses["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert _target(ses["Condition"]["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"]) == (
        f"arn:aws:sns:REGION:ACCOUNT:{topic['TopicName']}"
    )
    assert template["Resources"]["SesEventsKey"]["Properties"]["EnableKeyRotation"] is True


@pytest.mark.infra
def test_the_reconcile_alarms_watch_exactly_the_metrics_its_handler_writes(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import timedelta

    import fakes
    from rootmail.adapters.metrics import EmfMetrics
    from rootmail.domain.moments import now_iso
    from rootmail.entrypoints.handlers import reconcile

    # The handler as deployed (its Powertools variables from the template), its use case on in-memory ports but
    # for the metrics, which go through the real adapter: a mail stored two hours ago and never triaged.
    variables = _function(template, "reconcile")["Properties"]["Environment"]["Variables"]
    for name in ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE"):
        monkeypatch.setenv(name, variables[name])
    services = fakes.Services()
    services.metrics = EmfMetrics()  # type: ignore[assignment]
    services.mail_store.put("incoming/m", b"Subject: x\r\n\r\nx\r\n", stored_at=now_iso(timedelta(hours=-2)))
    monkeypatch.setattr(reconcile, "runtime", lambda: services)
    context: Any = SimpleNamespace(  # what Powertools' Logger reads of a LambdaContext
        function_name=f"rootmail-{STAGE}-reconcile",
        memory_limit_in_mb=512,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:rootmail-{STAGE}-reconcile",
        aws_request_id="test",
    )
    capsys.readouterr()
    reconcile.handler({}, context)
    written = {}
    for record in emf_records(capsys.readouterr().out):
        for directive in record["_aws"]["CloudWatchMetrics"]:
            (dimension_set,) = directive["Dimensions"]
            for metric in directive["Metrics"]:
                written[metric["Name"]] = (
                    directive["Namespace"],
                    {name: record[name] for name in dimension_set},
                )
    assert written.keys() == {"MailNotTriaged", "MailStuckInFlight", "MailGivenUp", "OldestQueuedMailAge"}
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    watched = {
        alarm["Properties"]["MetricName"]: (
            alarm["Properties"]["Namespace"],
            {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]},
        )
        for alarm in alarms.values()
        if not alarm["Properties"]["Namespace"].startswith("AWS/")
    }
    assert watched == written
    assert written["MailNotTriaged"] == (RECONCILE_METRICS_NAMESPACE, RECONCILE_METRIC_DIMENSIONS)


@pytest.mark.infra
def test_slack_reaches_only_the_slack_function_on_its_two_routes(template: dict[str, Any]) -> None:
    (api_id,) = _resources(template, "AWS::ApiGatewayV2::Api")
    assert api_id == "HttpApi"
    assert template["Resources"][api_id]["Properties"]["ProtocolType"] == "HTTP"
    integrations = _resources(template, "AWS::ApiGatewayV2::Integration")
    assert {_target(i["Properties"]["IntegrationUri"]) for i in integrations.values()} == {
        "SlackLambdaFunction"
    }
    routes = {}
    for route in _resources(template, "AWS::ApiGatewayV2::Route").values():
        properties = route["Properties"]
        assert "AuthorizationType" not in properties or properties["AuthorizationType"] == "NONE"
        separator, (prefix, integration) = properties["Target"]["Fn::Join"]
        assert (separator, prefix) == ("/", "integrations")
        routes[properties["RouteKey"]] = integration["Ref"]
    # Slack signs every request; the function verifies the signature (no API Gateway authorizer can).
    (integration_id,) = integrations
    assert routes == {
        "POST /slack/commands": integration_id,
        "POST /slack/interactions": integration_id,
    }
    (permission,) = [
        p["Properties"]
        for p in _resources(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]
    assert _target(permission["FunctionName"]) == "SlackLambdaFunction"
    assert _target(permission["SourceArn"]) == "arn:aws:execute-api:REGION:ACCOUNT:HttpApi/*"
    assert _function(template, "slack")["Properties"]["Timeout"] == 10
    outputs = template["Outputs"]
    for output, path in (
        ("SlackCommandsUrl", "/slack/commands"),
        ("SlackInteractionsUrl", "/slack/interactions"),
    ):
        assert outputs[output]["Value"] == {
            "Fn::Sub": f"https://${{HttpApi}}.execute-api.${{AWS::Region}}.${{AWS::URLSuffix}}{path}"
        }
    assert outputs["RetryStateMachineArn"]["Value"] == {"Ref": "RetryStateMachine"}
    assert outputs["RulesHistoryTableName"]["Value"] == {"Ref": "RulesHistoryTable"}


@pytest.mark.infra
def test_the_mail_bucket_is_private_encrypted_and_triggers_ingest(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["MailBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    encryption = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert bucket["NotificationConfiguration"] == {
        "LambdaConfigurations": [
            {
                "Event": "s3:ObjectCreated:*",
                "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}},
                "Function": {"Fn::GetAtt": ["IngestLambdaFunction", "Arn"]},
            }
        ]
    }
    permission = template["Resources"]["IngestMailBucketPermission"]["Properties"]
    assert permission["Principal"] == "s3.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert _target(permission["SourceArn"]) == MAIL_OBJECTS.removesuffix("/incoming/*")


@pytest.mark.infra
def test_only_ses_of_this_account_may_store_mail_and_only_under_incoming(template: dict[str, Any]) -> None:
    policy = template["Resources"]["MailBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "MailBucket"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    (ses,) = allows
    assert ses["Principal"] == {"Service": "ses.amazonaws.com"}
    assert ses["Action"] == "s3:PutObject"
    assert _target(ses["Resource"]) == "MailBucket/incoming/*"
    assert ses["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    rule = template["Resources"]["MailReceiptRule"]["Properties"]["Rule"]
    assert _target(ses["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(
        f":receipt-rule-set/rootmail-{STAGE}:receipt-rule/{rule['Name']}"
    )


@pytest.mark.infra
def test_ses_stores_every_scanned_mail_under_incoming(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    properties = resources["MailReceiptRule"]["Properties"]
    assert properties["RuleSetName"] == {"Ref": "MailReceiptRuleSet"}
    rule = properties["Rule"]
    assert rule["Enabled"] is True
    assert rule["ScanEnabled"] is True
    assert _split(rule["Recipients"]) == ["root.example.com"]
    assert rule["Actions"] == [
        {"S3Action": {"BucketName": {"Ref": "MailBucket"}, "ObjectKeyPrefix": "incoming/"}}
    ]


@pytest.mark.infra
@pytest.mark.parametrize("table", sorted(EXPECTED_TABLES))
def test_tables_have_the_contract_keys_and_indexes(template: dict[str, Any], table: str) -> None:
    properties = template["Resources"][table]["Properties"]
    name, key_schema, indexes = EXPECTED_TABLES[table]
    assert properties["TableName"] == f"rootmail-{STAGE}-{name}"
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [
        {"AttributeName": attribute, "KeyType": kind}
        for (attribute, _), kind in zip(key_schema, ("HASH", "RANGE"), strict=False)
    ]
    found = {}
    for index in properties.get("GlobalSecondaryIndexes", []):
        keys = {key["KeyType"]: key["AttributeName"] for key in index["KeySchema"]}
        found[index["IndexName"]] = (keys["HASH"], keys.get("RANGE"))
    assert found == indexes
    index_keys = {(key, "S") for keys in indexes.values() for key in keys if key}
    defined = {(d["AttributeName"], d["AttributeType"]) for d in properties["AttributeDefinitions"]}
    assert defined == set(key_schema) | index_keys
    if table in EXPIRING_TABLES:
        assert properties["TimeToLiveSpecification"] == {
            "AttributeName": EXPIRING_TABLES[table],
            "Enabled": True,
        }
        assert "PointInTimeRecoverySpecification" not in properties
    else:
        assert "TimeToLiveSpecification" not in properties
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"] == {"SSEEnabled": True}


def _looks_like_secret(text: str) -> bool:
    known = (
        r"xox[abposr]-|xapp-|(?:AKIA|ASIA)[0-9A-Z]{16}|-----BEGIN|\{\{resolve:(?:ssm-secure|secretsmanager)"
    )
    if re.search(known, text):
        return True
    # API tokens (Zendesk's are 40 characters) mix cases and digits; the template's hashes and IDs are lowercase hex.
    for run in re.findall(r"[A-Za-z0-9]{32,}", text):
        if re.search(r"[a-z]", run) and re.search(r"[A-Z]", run) and re.search(r"[0-9]", run):
            return True
    return False


@pytest.mark.infra
def test_no_secret_value_reaches_the_template(template: dict[str, Any]) -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    # Generated logical IDs (SyncLambdaPermissionEventsRuleSchedule1) are names, not tokens.
    for logical_id in sorted(template["Resources"], key=len, reverse=True):
        text = text.replace(f'"{logical_id}"', '""')
    assert not _looks_like_secret(text)
    kinds = {resource["Type"] for resource in template["Resources"].values()}
    assert not kinds & {"AWS::SSM::Parameter", "AWS::SecretsManager::Secret"}
    for name in FUNCTIONS:
        for key in _function(template, name)["Properties"]["Environment"]["Variables"]:
            if re.search(r"TOKEN|SECRET|PASSWORD|KEY", key):
                assert key.endswith("_PARAMETER"), f"{name}: {key} looks like it carries a secret"


# ---- the deployment artifact --------------------------------------------------------------------------------

# Lambda's quotas: 250 MB unzipped (function and layers together); 50 MB zipped is the limit of a direct upload
# (osls goes through S3, which allows more, but a zip past it is a sign that something does not belong there).
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
DIRECT_UPLOAD_LIMIT = 50 * 1024 * 1024


def _artifact(template: dict[str, Any], name: str) -> Path:
    key = _function(template, name)["Properties"]["Code"]["S3Key"]
    return SERVERLESS_DIR / key.rsplit("/", 1)[1]


@pytest.mark.infra
def test_every_function_runs_from_the_one_artifact(template: dict[str, Any]) -> None:
    codes = {
        json.dumps(_function(template, name)["Properties"]["Code"], sort_keys=True) for name in FUNCTIONS
    }
    assert len(codes) == 1, codes
    artifact = _artifact(template, FUNCTIONS[0])
    assert sorted(SERVERLESS_DIR.glob("*.zip")) == [artifact]  # no other zip is packaged, so none is uploaded
    assert not _resources(template, "AWS::Lambda::LayerVersion")
    for name in FUNCTIONS:
        assert "Layers" not in _function(template, name)["Properties"], name
    with zipfile.ZipFile(artifact) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    assert unzipped < LAMBDA_UNZIPPED_LIMIT
    assert artifact.stat().st_size < DIRECT_UPLOAD_LIMIT


@pytest.mark.infra
def test_the_package_has_rootmail_at_its_root_without_the_local_emulator(template: dict[str, Any]) -> None:
    with zipfile.ZipFile(_artifact(template, "parse")) as archive:
        names = set(archive.namelist())
    source = ROOT / "functions"
    expected = {
        path.relative_to(source).as_posix()
        for path in (source / "rootmail").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    }
    assert {f"rootmail/entrypoints/handlers/{name}.py" for name in FUNCTIONS} <= expected
    assert {name for name in names if name.startswith("rootmail/")} == expected
    assert not [
        n
        for n in names
        if n.startswith(("functions/", "local/", "rootmail_local/", "tests/", "scripts/", "node_modules/"))
    ]
    assert not [n for n in names if "local" in n.split("/")[:-1] or n.endswith(".pyc") or "__pycache__" in n]


needs_requirements = pytest.mark.skipif(SKIP_REQUIREMENTS, reason="packaged without the Python requirements")


@pytest.mark.infra
@needs_requirements
def test_the_package_bundles_the_requirements_built_for_lambda(template: dict[str, Any]) -> None:
    with zipfile.ZipFile(_artifact(template, "parse")) as archive:
        names = set(archive.namelist())
    for package in (
        "boto3",
        "botocore",
        "aws_lambda_powertools",
        "pydantic",
        "pydantic_settings",
        "zenpy",
        "slack_sdk",
        "flask",
        "publicsuffixlist",
    ):
        assert f"{package}/__init__.py" in names, package
    assert "publicsuffixlist/public_suffix_list.dat" in names  # read from the package, never fetched
    assert "serverless_wsgi.py" in names  # its handle_request runs the Slack endpoint's Flask app
    # The compiled dependencies the domain needs must be the builds for the Lambda runtime, not for this machine:
    # pydantic_core, and google-re2, whose python3.12 wheels are tagged manylinux_2_28 only (serverless.yml asks pip
    # for that tag too).
    binaries = sorted(n for n in names if n.startswith(("pydantic_core/", "re2/")) and n.endswith(".so"))
    assert binaries == [
        "pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so",
        "re2/_re2.cpython-312-aarch64-linux-gnu.so",
    ]


@pytest.mark.infra
@needs_requirements
def test_the_unzipped_package_imports_from_its_root(template: dict[str, Any], tmp_path: Path) -> None:
    with zipfile.ZipFile(_artifact(template, "parse")) as archive:
        archive.extractall(tmp_path)
    # Only pure-Python modules: the compiled wheels are built for Lambda's arm64, not for this machine.
    # -S keeps this interpreter's site-packages out, so every import must come from the package.
    modules = [
        "rootmail.errors",
        "rootmail.domain.vocabulary",
        "rootmail.entrypoints.handlers",
        "rootmail.domain.suffixes",
        "zenpy",
        "slack_sdk",
        "requests",
    ]
    script = (
        "import importlib, sys; sys.path.insert(0, sys.argv[1])\n"
        "for name in sys.argv[2:]: print(importlib.import_module(name).__file__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-S", "-c", script, str(tmp_path), *modules],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    files = done.stdout.split()
    assert len(files) == len(modules)
    assert all(Path(f).is_relative_to(tmp_path) for f in files), files


ORGANIZATIONS_VALUES = (
    "",
    "arn:aws:iam::111122223333:role/rootmail-reader",
    " arn:aws:iam::111122223333:role/a , arn:aws:iam::444455556666:role/path/b ",
    '[{"name": "emea", "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": "f00-bar"}]',
    '[{"roleArn": "arn:aws:iam::111122223333:role/r"}, {"name": "apac", "roleArn": "arn:aws:iam::444455556666:role/r"}]',
    "rootmail-reader",
    "arn:aws:iam::111122223333:user/someone",
    "arn:aws:iam::111122223333:role/a,arn:aws:iam::111122223333:role/a",
    '[{"name": "imported", "roleArn": "arn:aws:iam::111122223333:role/r"}]',
    '[{"name": "x", "roleArn": "arn:aws:iam::111122223333:role/r", "region": "eu-west-1"}]',
    '[{"name": "a", "roleArn": "arn:aws:iam::111122223333:role/r"}, {"name": "a", "roleArn": "arn:aws:iam::444455556666:role/r"}]',
    '[{"name": "x", "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": "a"}]',
    "[not json",
    "\ufeffarn:aws:iam::111122223333:role/r",
    "arn:aws:iam::111122223333:role/r\n",
    '[{"name": "emea\\n", "roleArn": "arn:aws:iam::111122223333:role/r"}]',
    '[{"name": "x", "roleArn": "arn:aws:iam::111122223333:role/r", "externalId": "\u00e91234"}]',
    "arn:aws:iam::111122223333:role/r\u00f4le",
    '[{"roleArn": "arn:aws:iam::111122223333:role/a,b"}]',
    "arn:aws:iam::111122223333:role/r,arn:aws:iam::111122223333:role/R",
    '[{"name": true, "roleArn": "arn:aws:iam::111122223333:role/r"}]',
)


def test_the_template_grants_the_roles_the_functions_will_assume():
    """serverless.yml's `organizations` parameter is read twice: by scripts/organizations.js for the IAM grant, by
    rootmail.config for the functions. Both accept the same values and find the same roles, or both refuse."""
    from rootmail.config import OWN_ORGANIZATION, parse_organizations

    script = (
        "const {parse} = require('./scripts/organizations.js');"
        "const out = JSON.parse(process.argv[1]).map((v) => {"
        "  try { return parse(v).map((o) => [o.name, o.roleArn]); } catch (e) { return null; } });"
        "console.log(JSON.stringify(out));"
    )
    answer = subprocess.run(
        ["node", "-e", script, json.dumps(ORGANIZATIONS_VALUES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    from_js = json.loads(answer.stdout)
    refused = 0
    for value, js in zip(ORGANIZATIONS_VALUES, from_js, strict=True):
        try:
            python = [
                [o.name, o.role_arn]
                for o in parse_organizations(value)
                if o.name != OWN_ORGANIZATION or o.role_arn
            ]
        except ValueError:
            python = None
            refused += 1
        assert js == python, value
    assert refused == 14

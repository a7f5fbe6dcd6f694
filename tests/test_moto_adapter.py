"""The moto adapters (Lambda in process, DynamoDB requests one at a time). If a moto upgrade breaks them, these
tests fail loudly."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import zipfile
from collections.abc import Callable

import boto3
import pytest
from moto import mock_aws
from moto.awslambda.models import LambdaFunction
from moto.dynamodb.responses import DynamoHandler

import lambda_probe
from rootmail_local import moto_lambda


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    lambda_probe.calls.clear()
    with (
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
        moto_lambda.lambdas_in_process(),
    ):
        yield


def make_function(name: str, handler: str) -> str:
    role = boto3.client("iam").create_role(RoleName=f"r-{name}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("x.txt", "x")
    return boto3.client("lambda").create_function(
        FunctionName=name, Runtime="python3.12", Role=role, Handler=handler, Code={"ZipFile": code.getvalue()}
    )["FunctionArn"]


def test_moto_still_has_the_method_the_adapter_replaces():
    assert callable(LambdaFunction.__dict__.get("_invoke_lambda")), "moto moved LambdaFunction._invoke_lambda"


def test_patch_is_removed_after_the_block():
    original = LambdaFunction.__dict__["_invoke_lambda"]
    with moto_lambda.lambdas_in_process():
        assert LambdaFunction.__dict__["_invoke_lambda"] is moto_lambda.invoke_in_process
    assert LambdaFunction.__dict__["_invoke_lambda"] is original


def test_invoke_runs_the_real_handler_in_process(aws):
    arn = make_function("probe", "lambda_probe.echo")
    answer = boto3.client("lambda").invoke(FunctionName="probe", Payload=json.dumps({"hello": "world"}))
    assert json.loads(answer["Payload"].read()) == {"echo": {"hello": "world"}, "function": "probe"}
    assert lambda_probe.calls == [{"event": {"hello": "world"}, "function": "probe", "arn": arn}]


def test_slash_form_handler_resolves_like_lambda():
    assert (
        moto_lambda.resolve_handler("rootmail/entrypoints/handlers/parse.handler").__module__
        == "rootmail.entrypoints.handlers.parse"
    )


def test_errors_come_back_as_lambda_reports_them(aws):
    make_function("probe", "lambda_probe.flaky")
    answer = boto3.client("lambda").invoke(FunctionName="probe", Payload=json.dumps({"fail_times": 5}))
    assert answer.get("FunctionError")
    error = json.loads(answer["Payload"].read())
    assert error["errorType"] == "ProbeTransient" and error["errorMessage"] == "not yet"


def run(definition: dict, payload: dict) -> dict:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="probe", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name="run-1", input=json.dumps(payload))[
        "executionArn"
    ]
    for _ in range(400):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise AssertionError("execution did not finish")


def probe_machine(function_arn: str) -> dict:
    return {
        "StartAt": "Probe",
        "States": {
            "Probe": {
                "Type": "Task",
                "Resource": function_arn,
                "Retry": [{"ErrorEquals": ["ProbeTransient"], "IntervalSeconds": 1, "MaxAttempts": 3}],
                "Catch": [{"ErrorEquals": ["ProbePermanent"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }


def test_state_machine_retry_matches_the_exception_class_name(aws, no_retry_sleep):
    arn = make_function("probe", "lambda_probe.flaky")
    result = run(probe_machine(arn), {"fail_times": 2})
    assert result["status"] == "SUCCEEDED"
    assert json.loads(result["output"])["ok"] is True
    assert len(lambda_probe.calls) == 3  # two failures retried, then success


def test_state_machine_catch_matches_the_exception_class_name(aws, no_retry_sleep):
    arn = make_function("probe", "lambda_probe.flaky")
    result = run(probe_machine(arn), {"permanent": True})
    assert result["status"] == "SUCCEEDED"
    error = json.loads(result["output"])["error"]
    assert error["Error"] == "ProbePermanent"
    assert json.loads(error["Cause"])["errorMessage"] == "never"


def test_retries_exhausted_fail_the_execution(aws, no_retry_sleep):
    arn = make_function("probe", "lambda_probe.flaky")
    result = run(probe_machine(arn), {"fail_times": 10})
    assert result["status"] == "FAILED"
    assert len(lambda_probe.calls) == 4  # the first call and three retries


@pytest.fixture
def busy_threads():
    """Threads switched as often as the interpreter can, so moto's races show in a few requests, not thousands."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def _hot_table() -> None:
    boto3.client("dynamodb").create_table(
        TableName="hot",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _at_once(work: Callable[[int], None], threads: int = 6) -> list[str]:
    errors: list[str] = []

    def run(number: int) -> None:
        try:
            work(number)
        except Exception as error:  # every failure is the finding, whatever moto raised
            errors.append(repr(error))

    workers = [threading.Thread(target=run, args=(number,)) for number in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return errors


def test_dynamodb_requests_on_one_item_at_once_all_succeed_as_on_aws(aws, busy_threads):
    with moto_lambda.atomic_dynamodb():
        _hot_table()
        boto3.client("dynamodb").put_item(TableName="hot", Item={"pk": {"S": "alert"}})

        def count(number: int) -> None:
            client = boto3.client("dynamodb")
            for turn in range(12):
                # Each update adds an attribute (the item's size changes) while the others copy and read it.
                client.update_item(
                    TableName="hot",
                    Key={"pk": {"S": "alert"}},
                    UpdateExpression=f"SET m{number}_{turn} = :one ADD shown :one",
                    ExpressionAttributeValues={":one": {"N": "1"}},
                )
                client.get_item(TableName="hot", Key={"pk": {"S": "alert"}})
                client.scan(TableName="hot")

        assert _at_once(count) == []
        item = boto3.client("dynamodb").get_item(TableName="hot", Key={"pk": {"S": "alert"}})["Item"]
        assert item["shown"] == {"N": str(6 * 12)}


def test_a_conditional_write_raced_by_many_is_won_by_one(aws, busy_threads):
    with moto_lambda.atomic_dynamodb():
        _hot_table()
        winners: list[int] = []

        def claim(number: int) -> None:
            client = boto3.client("dynamodb")
            for turn in range(24):
                try:
                    client.put_item(
                        TableName="hot",
                        Item={"pk": {"S": f"delivery-{turn}"}, "by": {"N": str(number)}},
                        ConditionExpression="attribute_not_exists(pk)",
                    )
                    winners.append(turn)
                except client.exceptions.ConditionalCheckFailedException:
                    pass

        assert _at_once(claim, threads=8) == []
        assert sorted(winners) == list(range(24))


def test_dynamodb_is_unlocked_after_the_block():
    original = DynamoHandler.__dict__["call_action"]
    with moto_lambda.atomic_dynamodb():
        assert DynamoHandler.__dict__["call_action"] is not original
    assert DynamoHandler.__dict__["call_action"] is original

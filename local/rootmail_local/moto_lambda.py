"""The moto adapters, in one place: run Lambda functions in this process instead of in Docker, and make moto's
DynamoDB writes atomic as DynamoDB's are.

moto's Lambda backend invokes functions through `LambdaFunction._invoke_lambda(self, event) -> (payload, errored,
logs)`, which needs a Docker engine. Replacing that one private method with an in-process call is what lets the
real state machine definition (moto's ASL interpreter) and the S3 → Lambda notification run the real handlers.
Errors come back as Lambda reports them, `{"errorMessage", "errorType", "stackTrace"}`, so the state machine's
Retry and Catch match on the exception's class name as they do on AWS. `tests/test_moto_adapter.py` fails loudly
if a moto upgrade moves any of this.

moto's DynamoDB has no locks: two threads (two executions of the local state machine) can both pass a write's
`attribute_not_exists(...)`, and a request that copies or lists items (UpdateItem copies the item it updates, Query
and Scan walk the table) fails with "dictionary changed size during iteration" when another thread's write changes
them at that moment. DynamoDB allows neither, and the delivery guard, the identity records, the rules' versions and
the alert counts rely on it; `atomic_dynamodb` serialises moto's DynamoDB requests, each whole.
"""

from __future__ import annotations

import functools
import importlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from moto.awslambda.models import LambdaFunction
from moto.dynamodb.responses import DynamoHandler

# What the adapter relies on in moto's LambdaFunction; checked at install time.
REQUIRED_ATTRIBUTES = ("handler", "function_name", "function_arn", "memory_size", "timeout")


@dataclass
class InProcessContext:
    """What a Lambda handler reads from its context object (Powertools reads these)."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_seconds: int = 60

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_seconds * 1000


def resolve_handler(handler: str) -> Callable[[Any, Any], Any]:
    """`rootmail/entrypoints/handlers/parse.handler` or `rootmail.entrypoints.handlers.parse.handler` → the function, as Lambda finds it."""
    module_path, _, function_name = handler.rpartition(".")
    if not module_path:
        raise ValueError(f"handler {handler!r} is not of the form module.function")
    module = importlib.import_module(module_path.replace("/", "."))
    function: Callable[[Any, Any], Any] = getattr(module, function_name)
    return function


def invoke_in_process(function: LambdaFunction, event: Any = None) -> tuple[str, bool, str]:
    """Stand-in for `LambdaFunction._invoke_lambda`: call the real handler with the event and a context."""
    if isinstance(event, (str, bytes)):
        event = json.loads(event or "{}")
    context = InProcessContext(
        function_name=function.function_name,
        invoked_function_arn=function.function_arn,
        memory_limit_in_mb=int(function.memory_size),
        aws_request_id=str(uuid.uuid4()),
        timeout_seconds=int(function.timeout),
    )
    try:
        result = resolve_handler(str(function.handler))(event if event is not None else {}, context)
    except Exception as exc:
        error = {
            "errorMessage": str(exc),
            "errorType": type(exc).__name__,
            "stackTrace": traceback.format_tb(exc.__traceback__),
        }
        return json.dumps(error), True, ""
    return json.dumps(result), False, ""


@contextmanager
def lambdas_in_process() -> Iterator[None]:
    """Patch moto's Lambda invoke for the duration of the block, and put it back afterwards."""
    original = LambdaFunction.__dict__.get("_invoke_lambda")
    if original is None:
        raise RuntimeError(
            "moto.awslambda.models.LambdaFunction._invoke_lambda no longer exists: "
            "the in-process Lambda adapter (local/rootmail_local/moto_lambda.py) must follow moto's change"
        )
    LambdaFunction._invoke_lambda = invoke_in_process  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]


def check_function(function: LambdaFunction) -> None:
    missing = [name for name in REQUIRED_ATTRIBUTES if not hasattr(function, name)]
    if missing:
        raise RuntimeError(
            f"moto's LambdaFunction lacks {missing}: update local/rootmail_local/moto_lambda.py"
        )


_DYNAMODB_LOCK = threading.RLock()


@contextmanager
def atomic_dynamodb() -> Iterator[None]:
    """Serialise moto's DynamoDB requests for the duration of the block: each request, from reading its condition to
    writing its response, runs alone, as every DynamoDB item operation is atomic on AWS."""
    original = DynamoHandler.__dict__.get("call_action")
    if original is None:
        raise RuntimeError(
            "moto's DynamoHandler no longer defines call_action: update local/rootmail_local/moto_lambda.py"
        )

    @functools.wraps(original)
    def one_at_a_time(self: DynamoHandler) -> Any:
        with _DYNAMODB_LOCK:
            return original(self)

    DynamoHandler.call_action = one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        DynamoHandler.call_action = original  # type: ignore[method-assign]

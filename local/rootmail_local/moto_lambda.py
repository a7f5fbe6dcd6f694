"""The moto adapters, in one place: run Lambda functions in this process instead of in Docker, and make moto's
DynamoDB writes atomic as DynamoDB's are.

moto's Lambda backend invokes functions through `LambdaFunction._invoke_lambda(self, event) -> (payload, errored,
logs)`, which needs a Docker engine. Replacing that one private method with an in-process call is what lets the
real state machine definition (moto's ASL interpreter) and the S3 → Lambda notification run the real handlers.
Errors come back as Lambda reports them, `{"errorMessage", "errorType", "stackTrace"}`, so the state machine's
Retry and Catch match on the exception's class name as they do on AWS. `tests/test_moto_adapter.py` fails loudly
if a moto upgrade moves any of this.

moto's DynamoDB backend checks a write's condition and then writes, with no lock: two threads (two executions of
the local state machine) can both pass `attribute_not_exists(...)`. DynamoDB never allows that, and the delivery
guard, the identity records and the rules' versions rely on it; `atomic_dynamodb_writes` serialises the backend's
write operations.
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
from moto.dynamodb.models import DynamoDBBackend

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


# The backend's operations that check a condition and write.
DYNAMODB_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_WRITE_LOCK = threading.RLock()


@contextmanager
def atomic_dynamodb_writes() -> Iterator[None]:
    """Serialise moto's DynamoDB writes for the duration of the block (each condition and its write as one)."""
    originals = {name: DynamoDBBackend.__dict__.get(name) for name in DYNAMODB_WRITES}
    missing = [name for name, method in originals.items() if method is None]
    if missing:
        raise RuntimeError(
            f"moto's DynamoDBBackend lacks {missing}: update local/rootmail_local/moto_lambda.py"
        )

    def atomic(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return method(*args, **kwargs)

        return locked

    for name, method in originals.items():
        setattr(DynamoDBBackend, name, atomic(method))  # type: ignore[arg-type]
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(DynamoDBBackend, name, method)

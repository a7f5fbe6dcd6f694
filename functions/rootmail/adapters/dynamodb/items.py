"""DynamoDB items: (de)serialising with the low-level client's types (thread-safe, unlike boto3 resources),
timestamps as stored, and update expressions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code
from rootmail.errors import RootmailError

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def serialize(value: Any) -> dict[str, Any]:
    return dict(_serializer.serialize(value))


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in data.items() if v is not None}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _plain(value: Any) -> Any:
    # DynamoDB numbers come back as Decimal; the ledger only holds whole numbers.
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, set):
        return sorted(value)
    return value


def update_assignments(fields: dict[str, Any]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """`#fN = :vN` for each field: attribute names go through placeholders (`state`, `bucket` are reserved words)."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    values = {f":v{i}": value for i, value in enumerate(fields.values())}
    return [f"#f{i} = :v{i}" for i in range(len(fields))], names, values


@contextmanager
def unavailable(error: type[RootmailError], what: str) -> Iterator[None]:
    """DynamoDB failing (an error answer, or none) as the table's typed error, which the state machine retries."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise error(f"{what}: {describe(exc)}") from None


def conditional_write(
    write: Callable[..., Any], error: type[RootmailError], what: str, **request: Any
) -> bool:
    """One conditional write (`write` is the client's put_item or update_item): False when its condition did not
    hold; DynamoDB failing otherwise is `error`, the table's typed error, which the state machine retries."""
    with unavailable(error, what):
        try:
            write(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
    return True

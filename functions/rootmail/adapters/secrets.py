"""Secrets come from SSM Parameter Store (SecureString), read once per container, never logged."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe
from rootmail.errors import ConfigurationError


def read_secret(ssm: Any, name: str) -> str:
    try:
        return str(ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])
    except (ClientError, BotoCoreError) as exc:
        raise ConfigurationError(f"secret parameter {name} cannot be read: {describe(exc)}") from None

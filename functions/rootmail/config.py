"""Configuration: read once from the environment, validated; a missing value fails loudly with its variable name."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rootmail.domain.accounts import DEFAULT_MULTI_ACCOUNT_SENDERS
from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS
from rootmail.errors import ConfigurationError


class Settings(BaseSettings):
    """Every ROOTMAIL_* variable. Each function needs only some: `require` names what is missing and who needs it."""

    model_config = SettingsConfigDict(env_prefix="ROOTMAIL_", extra="ignore", frozen=True)

    mail_bucket: str | None = None
    ledger_table: str | None = None
    accounts_table: str | None = None
    rules_table: str | None = None
    deliveries_table: str | None = None
    state_machine_arn: str | None = None
    sender_address: str | None = None
    reply_to_address: str | None = None
    zendesk_subdomain: str | None = None
    zendesk_email: str | None = None
    zendesk_token_parameter: str | None = None
    slack_token_parameter: str | None = None
    slack_channel: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    aws_sender_domains: Annotated[tuple[str, ...], NoDecode] = DEFAULT_AWS_SENDER_DOMAINS
    multi_account_senders: Annotated[tuple[str, ...], NoDecode] = DEFAULT_MULTI_ACCOUNT_SENDERS
    rules_cache_seconds: int = Field(default=60, ge=0, le=3600)

    @field_validator("aws_sender_domains", "multi_account_senders", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            items = tuple(d.strip().lower().lstrip(".") for d in value.split(",") if d.strip())
            if not items:
                raise ValueError("must name at least one entry")
            return items
        return value

    def require(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"ROOTMAIL_{name.upper()} is not set; this function needs it")
        return str(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(f"invalid rootmail configuration: {exc}") from None

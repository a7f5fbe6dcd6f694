"""Configuration: read once from the environment, validated; a missing value fails loudly with its variable name."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rootmail.domain.accounts import DEFAULT_CONTACT_KINDS, IMPORTED, parse_contact_kinds
from rootmail.domain.authenticity import DEFAULT_AWS_SENDER_DOMAINS
from rootmail.domain.routing import DEFAULT_MULTI_ACCOUNT_SENDERS, DEFAULT_THIRD_PARTY_SENDERS, RoutingPolicy
from rootmail.domain.suffixes import shared_suffix_reason
from rootmail.errors import ConfigurationError

# The organisation read with the functions' own role when no organisation is configured (the stack is deployed in
# its management account).
OWN_ORGANIZATION = "management"
# ASCII only and matched whole, as scripts/organizations.js matches them. A comma, legal in a role's name, is
# refused: the template splits the role ARNs on commas for the grant.
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::([0-9]{12}):role/[\w+=.@/-]{1,512}", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
_EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]{2,1224}", re.ASCII)


@dataclass(frozen=True)
class OrganizationConfig:
    """One organisation to sync: a name for people and the accounts table, the role to assume in its management
    account (None: our own credentials), and the external ID that role's trust policy may ask for."""

    name: str
    role_arn: str | None = None
    external_id: str | None = None


def parse_organizations(text: str) -> tuple[OrganizationConfig, ...]:
    """`[{"name": "emea", "roleArn": "arn:aws:iam::111122223333:role/rootmail-reader", "externalId": "..."}]`,
    or role ARNs separated by commas (each organisation then named by its management account's ID); empty: the
    organisation of this account, with our own role. Names and roles must be unique."""
    text = text.strip().lstrip("\ufeff").strip()
    if not text:
        return (OrganizationConfig(OWN_ORGANIZATION),)
    if text.startswith("["):
        try:
            entries = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"organizations: not valid JSON ({exc})") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ValueError("organizations: expected a JSON list of {name, roleArn, externalId} objects")
    else:
        entries = [{"roleArn": arn.strip()} for arn in text.split(",") if arn.strip()]
    found: list[OrganizationConfig] = []
    for number, entry in enumerate(entries, 1):
        unknown = set(entry) - {"name", "roleArn", "externalId"}
        if unknown:
            raise ValueError(
                f"organization {number}: unknown key(s) {sorted(unknown)}: expected name, roleArn, externalId"
            )
        wrong = [k for k, v in entry.items() if not isinstance(v, str)]
        if wrong:
            raise ValueError(f"organization {number}: {', '.join(sorted(wrong))} must be text")
        role = str(entry.get("roleArn") or "")
        matched = _ROLE_ARN.fullmatch(role)
        if not matched:
            raise ValueError(
                f"organization {number}: {role!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        name = str(entry.get("name") or matched.group(1))
        if not _NAME.fullmatch(name) or name == IMPORTED:
            raise ValueError(
                f"organization {number}: name {name!r}: letters, digits, '.', '_', '-', at most 64, not {IMPORTED!r}"
            )
        external = entry.get("externalId")
        if external is not None and not _EXTERNAL_ID.fullmatch(str(external)):
            raise ValueError(f"organization {name}: the external ID must be 2 to 1224 of [\\w+=,.@:/-]")
        found.append(OrganizationConfig(name, role, str(external) if external is not None else None))
    # One management account runs one organisation: two roles there (IAM role names ignore case) would sync it twice.
    accounts = [str(o.role_arn).split(":")[4] for o in found]
    for label, values in (("name", [o.name for o in found]), ("management account", accounts)):
        repeated = sorted({v for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"organizations: the same {label} twice: {', '.join(repeated)}")
    if not found:
        raise ValueError("organizations: no role ARN given")
    return tuple(found)


class Settings(BaseSettings):
    """Every ROOTMAIL_* variable. Each function needs only some: `require` names what is missing and who needs it."""

    model_config = SettingsConfigDict(env_prefix="ROOTMAIL_", extra="ignore", frozen=True)

    mail_bucket: str | None = None
    ledger_table: str | None = None
    accounts_table: str | None = None
    rules_table: str | None = None
    deliveries_table: str | None = None
    suppressions_table: str | None = None
    ses_configuration_set: str | None = None
    state_machine_arn: str | None = None
    sender_address: str | None = None
    reply_to_address: str | None = None
    zendesk_subdomain: str | None = None
    zendesk_email: str | None = None
    zendesk_token_parameter: str | None = None
    slack_token_parameter: str | None = None
    slack_channel: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    # The exact domains AWS sends from (an entry allows that domain only); checked, the default too, at load.
    aws_sender_domains: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_AWS_SENDER_DOMAINS, validate_default=True
    )
    # Who may write about several accounts in one mail, and whose mail carries text any AWS customer can set
    # (addresses or exact domains): see domain/routing.py.
    multi_account_senders: Annotated[tuple[str, ...], NoDecode] = DEFAULT_MULTI_ACCOUNT_SENDERS
    third_party_senders: Annotated[tuple[str, ...], NoDecode] = DEFAULT_THIRD_PARTY_SENDERS
    # Set to "+" when the provider's root addresses carry no tags: root+anything@ then reaches root@'s account.
    # Unset, a tag is part of the address (root+acme@ and root+globex@ are two accounts).
    root_address_tag_separator: Literal["+", "-", "_"] | None = None
    rules_cache_seconds: int = Field(default=60, ge=0, le=3600)
    # Accounts and contacts from AWS Organizations (the hourly sync and the pipeline's refresh): the organisations to
    # sync, each through a role in its management account (see `parse_organizations`); unset or empty: the one
    # organisation this stack's account manages, with our own role.
    organizations: Annotated[tuple[OrganizationConfig, ...], NoDecode] = Field(
        default=(), validate_default=True
    )
    # The one role of earlier versions: refused rather than ignored (the stack would read its own account instead).
    organizations_role_arn: str | None = None
    contacts_tag: str = Field(default="rootmail:contacts", min_length=1, max_length=120)
    language_tag: str = Field(default="rootmail:language", min_length=1, max_length=128)
    # Read the AWS alternate contacts for the kinds no tag names.
    alternate_contacts: bool = True
    # category → kind of contact (operations, security, billing): `category=kind,...` over the defaults.
    contact_kinds: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_CONTACT_KINDS)
    )
    # Per-account calls in flight; every account's contacts re-read once per this many hours; at most this many
    # accounts' contacts read in one run (0: no limit).
    sync_concurrency: int = Field(default=4, ge=1, le=16)
    sync_refresh_hours: int = Field(default=24, ge=1, le=24 * 7)
    sync_detail_budget: int = Field(default=2500, ge=0)
    # The pipeline's refresh for an unknown root address: one per window; a mail finding one running waits this long.
    accounts_refresh_seconds: int = Field(default=300, ge=0, le=86400)
    accounts_refresh_wait_seconds: int = Field(default=30, ge=1, le=600)
    # The rates the deliveries share (domain/pacing.py): SES's maximum send rate for the account (14 a second on a
    # new production account: set it to what the SES console shows after a raise) and the Zendesk plan's API limit.
    ses_send_rate: float = Field(default=14.0, gt=0, le=100_000)
    zendesk_requests_per_minute: int = Field(default=200, ge=10, le=100_000)
    # Log lines show e-mail addresses as ***@domain (customer contacts are personal data in many jurisdictions).
    redact_addresses: bool = False
    # Operators in Slack: the digest, the /rootmail command, the rule modal and the retry workflow.
    retry_state_machine_arn: str | None = None
    rules_history_table: str | None = None
    slack_requests_table: str | None = None
    slack_signing_secret_parameter: str | None = None
    # Who may use /rootmail and its buttons, and where: Slack user IDs (U…/W…) and channel IDs (C…/G…).
    slack_operator_ids: Annotated[tuple[str, ...], NoDecode] = ()
    slack_channel_ids: Annotated[tuple[str, ...], NoDecode] = ()
    slack_response_url_prefix: str = "https://hooks.slack.com/"
    operator_language: Literal["en", "ja"] = "en"
    # A retry takes at most this many queued mails per run, the longest-waiting first (the rest wait for the next
    # run); each re-run triage is checked after poll_seconds, then at doubling intervals up to a minute, at most
    # max_polls times. The limits keep one retry execution inside Step Functions' 25,000 history events
    # (120 mails x (8 + 9 x 20 polls) events) and its state far below 256 KB.
    retry_batch_limit: int = Field(default=100, ge=1, le=120)
    retry_poll_seconds: int = Field(default=5, ge=1, le=60)
    retry_max_polls: int = Field(default=15, ge=1, le=20)
    queue_page_size: int = Field(default=10, ge=1, le=50)
    # The hourly reconciliation: a stored mail with no ledger record after grace minutes was never triaged (a lost
    # event); one in flight for stuck minutes stopped half-way (a Step Functions execution lasts minutes at most).
    reconcile_grace_minutes: int = Field(default=15, ge=0, le=1440)
    reconcile_stuck_minutes: int = Field(default=60, ge=5, le=10080)
    # How far back the hourly run looks for stored mail without a record (`rootmail audit --all`: all of it).
    reconcile_lookback_hours: int = Field(default=48, ge=1, le=24 * 90)
    # How often the reconciler re-drives one mail: one still not terminal after that many is queued for the
    # operators (an execution that fails in a way no Catch handles would fail every time).
    reconcile_max_attempts: int = Field(default=3, ge=1, le=24)

    @field_validator("aws_sender_domains", "multi_account_senders", "third_party_senders", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            items = tuple(d.strip().lower().lstrip(".") for d in value.split(",") if d.strip())
            if not items:
                raise ValueError("must name at least one entry")
            return items
        return value

    @field_validator("organizations", mode="before")
    @classmethod
    def _organizations(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_organizations(value)
        return value or (OrganizationConfig(OWN_ORGANIZATION),)

    @field_validator("organizations_role_arn")
    @classmethod
    def _replaced(cls, value: str | None) -> None:
        if value:
            raise ValueError(
                "ROOTMAIL_ORGANIZATIONS_ROLE_ARN is replaced by ROOTMAIL_ORGANIZATIONS (the serverless parameter "
                f"organizations): give it {value!r}"
            )
        return None

    @field_validator("root_address_tag_separator", mode="before")
    @classmethod
    def _no_separator(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("aws_sender_domains")
    @classmethod
    def _domains_of_their_own(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # A name others hand out (an EC2 host under compute-1.amazonaws.com, x.github.io) would let its owner's
        # mail pass as AWS's.
        bad = [f"{domain} {why}" for domain in value if (why := shared_suffix_reason(domain))]
        if bad:
            raise ValueError(
                f"ROOTMAIL_AWS_SENDER_DOMAINS: {'; '.join(bad)} (Public Suffix List); "
                "list only the exact domains AWS sends from"
            )
        return value

    @field_validator("slack_operator_ids", "slack_channel_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            items = tuple(i.strip() for i in value.split(",") if i.strip())
            bad = [i for i in items if not i.isalnum() or not i.isupper()]
            if bad:
                raise ValueError(
                    f"Slack IDs are upper-case letters and digits (U0123ABCD, C0123ABCD), not {bad}"
                )
            return items
        return value

    @field_validator("contact_kinds", mode="before")
    @classmethod
    def _contact_kinds(cls, value: object) -> object:
        return parse_contact_kinds(value) if isinstance(value, str) else value

    @property
    def routing(self) -> RoutingPolicy:
        return RoutingPolicy(
            multi_account_senders=self.multi_account_senders,
            third_party_senders=self.third_party_senders,
            address_tag_separator=self.root_address_tag_separator,
        )

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

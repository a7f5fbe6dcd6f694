"""The adapters a Lambda container uses, built once from the settings on first use (never at import)."""

from __future__ import annotations

import threading
import time
from functools import cached_property, lru_cache, partial
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe
from rootmail.adapters.clock import SystemClock
from rootmail.adapters.dynamodb.accounts import AccountsTable
from rootmail.adapters.dynamodb.alert_batches import AlertBatches
from rootmail.adapters.dynamodb.deliveries import DeliveryGuard
from rootmail.adapters.dynamodb.ledger import Ledger
from rootmail.adapters.dynamodb.pacing import Pacer
from rootmail.adapters.dynamodb.rules import RulesTable
from rootmail.adapters.dynamodb.slack_requests import SlackRequests
from rootmail.adapters.executions import Workflow
from rootmail.adapters.mailer import SesMailer
from rootmail.adapters.mailstore import MailStore
from rootmail.adapters.metrics import EmfMetrics
from rootmail.adapters.secrets import read_secret
from rootmail.adapters.suppressions import SuppressionList
from rootmail.app.ports import ManagedOrganization
from rootmail.config import OrganizationConfig, Settings, get_settings
from rootmail.domain.rules.index import RuleSet
from rootmail.domain.rules.sets import usable_rules
from rootmail.errors import OrganizationsUnavailable, RulesUnavailable
from rootmail.observability import logger, redact_addresses

if TYPE_CHECKING:
    from rootmail.adapters.organizations import Organization
    from rootmail.adapters.slack import SlackNotifier
    from rootmail.adapters.zendesk import ZendeskDesk

# Few SDK retries: retrying with backoff is the state machine's job, where it is visible and bounded.
# (botocore's `max_attempts` counts the retries, not the first attempt.)
SDK_RETRIES = 2
_SDK_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": SDK_RETRIES}, connect_timeout=5, read_timeout=30
)
# A mail's execution is started by ingest, outside any state machine: a throttled StartExecution (its token bucket
# empties in a burst) is retried here with the SDK's backoff (up to about 30 s, within ingest's timeout); one still
# refused fails the invocation, which Lambda retries twice and then keeps in the ingest failures queue, and the
# hourly reconcile re-drives the mail.
START_RETRIES = 5
_START_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": START_RETRIES}, connect_timeout=5, read_timeout=30
)
# Organizations and the Account API throttle large organisations, and the sync makes thousands of calls in one run:
# adaptive mode backs off and paces the client's calls (shared by the sync's threads) to what the API accepts.
_ORGANIZATIONS_MAX_ATTEMPTS = 10


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        redact_addresses(settings.redact_addresses)
        self._rules: tuple[float, RuleSet] | None = None
        self._rules_lock = threading.Lock()

    def client(self, service: str) -> Any:
        return boto3.client(service, config=_SDK_CONFIG)

    @cached_property
    def suppressions(self) -> SuppressionList:
        name = self.settings.require("suppressions_table")
        return SuppressionList(self.dynamodb, name)

    @cached_property
    def mail_store(self) -> MailStore:
        name = self.settings.require("mail_bucket")
        return MailStore(self.client("s3"), name)

    @cached_property
    def dynamodb(self) -> Any:
        return self.client("dynamodb")

    @cached_property
    def ledger(self) -> Ledger:
        name = self.settings.require("ledger_table")
        return Ledger(self.dynamodb, name)

    @cached_property
    def accounts(self) -> AccountsTable:
        name = self.settings.require("accounts_table")
        return AccountsTable(self.dynamodb, name)

    @cached_property
    def rules_table(self) -> RulesTable:
        name = self.settings.require("rules_table")
        return RulesTable(self.dynamodb, name, self.settings.rules_history_table)

    @cached_property
    def slack_requests(self) -> SlackRequests:
        name = self.settings.require("slack_requests_table")
        return SlackRequests(self.dynamodb, name)

    @cached_property
    def signing_secret(self) -> str:
        """Slack's signing secret, for verifying every request to the /rootmail endpoint."""
        return read_secret(self.client("ssm"), self.settings.require("slack_signing_secret_parameter"))

    @cached_property
    def guard(self) -> DeliveryGuard:
        name = self.settings.require("deliveries_table")
        return DeliveryGuard(self.dynamodb, name)

    @cached_property
    def pacer(self) -> Pacer:
        name = self.settings.require("deliveries_table")
        return Pacer(self.dynamodb, name)

    @cached_property
    def alert_batches(self) -> AlertBatches:
        name = self.settings.require("deliveries_table")
        return AlertBatches(self.dynamodb, name)

    @cached_property
    def clock(self) -> SystemClock:
        return SystemClock()

    @cached_property
    def mailer(self) -> SesMailer:
        name = self.settings.require("sender_address")
        # Through the configuration set whose event destination reports bounces and complaints.
        configuration_set = self.settings.require("ses_configuration_set")
        return SesMailer(self.client("sesv2"), name, configuration_set)

    @cached_property
    def metrics(self) -> EmfMetrics:
        return EmfMetrics()

    @cached_property
    def starter(self) -> Workflow:
        """The triage workflow."""
        name = self.settings.require("state_machine_arn")
        return Workflow(boto3.client("stepfunctions", config=_START_CONFIG), name)

    @cached_property
    def retries(self) -> Workflow:
        """The operators' retry workflow over queued mail."""
        name = self.settings.require("retry_state_machine_arn")
        return Workflow(self.client("stepfunctions"), name)

    def organizations(self) -> list[ManagedOrganization]:
        """Every configured organisation, each reached through the role in its management account when it is
        used. Built anew for each run: an assumed role's credentials expire, and a warm container outlives them."""
        # One STS client, made here: the organisations are reached from a pool of threads, and boto3's default
        # session must not make clients from several threads at once.
        sts = self.client("sts") if any(c.role_arn for c in self.settings.organizations) else None
        return [
            ManagedOrganization(config.name, partial(self._organization, config, sts))
            for config in self.settings.organizations
        ]

    def _organization(self, config: OrganizationConfig, sts: Any) -> Organization:
        from rootmail.adapters.organizations import Organization

        session = self._management_session(config, sts)
        options = Config(
            retries={"mode": "adaptive", "max_attempts": _ORGANIZATIONS_MAX_ATTEMPTS},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=max(10, self.settings.sync_concurrency + 2),
        )
        return Organization(
            session.client("organizations", config=options),
            session.client("account", config=options),
            contacts_tag=self.settings.contacts_tag,
            language_tag=self.settings.language_tag,
            alternate_contacts=self.settings.alternate_contacts,
            concurrency=self.settings.sync_concurrency,
        )

    def _management_session(self, config: OrganizationConfig, sts: Any) -> boto3.session.Session:
        if not config.role_arn:
            return boto3.session.Session()
        extra = {"ExternalId": config.external_id} if config.external_id else {}
        try:
            credentials = sts.assume_role(
                RoleArn=config.role_arn,
                RoleSessionName="rootmail-accounts-sync",
                DurationSeconds=3600,
                **extra,
            )["Credentials"]
        except (ClientError, BotoCoreError) as exc:
            raise OrganizationsUnavailable(
                f"cannot assume {config.role_arn} for organization {config.name}: {describe(exc)}"
            ) from None
        return boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=boto3.session.Session().region_name,
        )

    @cached_property
    def desk(self) -> ZendeskDesk:
        from rootmail.adapters.zendesk import ZendeskDesk

        subdomain, agent = self.settings.require("zendesk_subdomain"), self.settings.require("zendesk_email")
        token = read_secret(self.client("ssm"), self.settings.require("zendesk_token_parameter"))
        return ZendeskDesk.connect(subdomain, agent, token)

    @cached_property
    def slack(self) -> SlackNotifier:
        from rootmail.adapters.slack import SlackNotifier

        channel = self.settings.require("slack_channel")
        token = read_secret(self.client("ssm"), self.settings.require("slack_token_parameter"))
        return SlackNotifier.connect(
            token,
            channel,
            self.settings.slack_api_url,
            response_url_prefix=self.settings.slack_response_url_prefix,
        )

    def rules(self, *, fresh: bool = False) -> RuleSet:
        """The live rules, cached for a short while so edits reach the pipeline within a minute; `fresh` reads
        them now (an operator's retry runs with the rules as they are)."""
        with self._rules_lock:
            now = time.monotonic()
            if fresh or self._rules is None or now - self._rules[0] > self.settings.rules_cache_seconds:
                items = self.rules_table.load()
                if not items:
                    raise RulesUnavailable(
                        f"the rules table {self.rules_table.table} is empty: push the rules"
                    )
                rules, problems = usable_rules((item, "table") for item in items)
                if problems:
                    # Triage goes on with the valid rules; operators see why in the logs (and `rules validate`).
                    logger.warning("live rules have problems", extra={"problems": problems[:20]})
                if not rules:
                    raise RulesUnavailable(
                        f"no valid rule in {self.rules_table.table}: {'; '.join(problems[:3])}"
                    )
                self._rules = (now, RuleSet(rules))  # indexed once, used for every mail until the next read
            return self._rules[1]


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return Runtime(get_settings())


def reset() -> None:
    """Forget the container's settings and adapters (a new container), e.g. after the environment changed."""
    runtime.cache_clear()
    get_settings.cache_clear()

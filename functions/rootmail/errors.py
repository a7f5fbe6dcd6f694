"""Typed errors. Their class names are what the state machine's Retry and Catch match (`errorType`)."""

from __future__ import annotations

from rootmail.domain.mail.model import fit


class RootmailError(Exception):
    """Base of every error rootmail raises on purpose. Its message is bounded: a Catch puts it into Step Functions
    state, whose 256 KB limit AWS enforces with an error no Catch can handle."""

    MAX_MESSAGE_BYTES = 8 * 1024  # of the message as JSON

    def __init__(self, *args: object) -> None:
        super().__init__(*(fit(a, self.MAX_MESSAGE_BYTES) if isinstance(a, str) else a for a in args))


class ConfigurationError(RootmailError):
    """Configuration is missing or invalid: fail loudly, never guess."""


class MailNotFound(RootmailError):
    """The stored mail named by the event does not exist (permanent)."""


class MailStoreUnavailable(RootmailError):
    """S3 could not be read right now (transient: retried)."""


class LedgerUnavailable(RootmailError):
    """DynamoDB refused or throttled a ledger or delivery write (transient: retried)."""


class AccountsUnavailable(RootmailError):
    """The accounts table could not be read (transient: retried)."""


class RulesUnavailable(RootmailError):
    """The live rules could not be read, or the table is empty (retried, then the mail is queued)."""


class RuleError(RootmailError):
    """A rule file or rule item is invalid. The message names the file and the rule."""


class RuleConflict(RootmailError):
    """A live rule changed since the version an edit was made from: nothing was written (optimistic locking)."""


class DeliveryRejected(RootmailError):
    """A delivery failed for good: the mail ends queued with this reason."""


class DeliveryUnconfirmed(RootmailError):
    """A delivery was made but its record could not be written: never retried automatically (that could deliver
    twice); the mail ends queued with what was sent, for an operator to check."""


class DeliveryInProgress(RootmailError):
    """Another execution holds this delivery's claim and has not settled it yet (transient: retried)."""


class SesThrottled(RootmailError):
    """SES throttled the send (transient: retried with backoff)."""


class SesUnavailable(RootmailError):
    """SES failed with a server-side error (transient: retried)."""


class SesRejected(DeliveryRejected):
    """SES rejected the message (permanent)."""


class ZendeskUnavailable(RootmailError):
    """Zendesk answered 5xx, timed out, or rate-limited past the budget (transient: retried)."""


class ZendeskRejected(DeliveryRejected):
    """Zendesk refused the request (4xx other than 429; permanent)."""


class SlackUnavailable(RootmailError):
    """Slack could not be reached or rate-limited us (transient: retried)."""


class SlackRejected(DeliveryRejected):
    """Slack refused the message (bad channel, revoked token; permanent)."""


class SlackMessageGone(SlackRejected):
    """The message to update is no longer in the channel (deleted): a new one must be posted."""


class TriageNotStarted(RootmailError):
    """The triage execution could not be started (the S3 event is retried by Lambda's async retries)."""


class OrganizationsUnavailable(RootmailError):
    """AWS Organizations could not be used at all (the management role could not be assumed): nothing synced."""


class CommandError(RootmailError):
    """An operator's slash command could not be understood; the message says what to type instead."""

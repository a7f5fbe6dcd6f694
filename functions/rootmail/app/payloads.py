"""What the state machines hand their steps, as typed models: a triage execution's state as it grows (the stored
mail, then its summary, resolution, classification and deliveries, or the error a Catch put there), and the retry
workflow's. Validated once, in the handler; a state Step Functions could not have built is a clear error there, not a
KeyError three calls down."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rootmail.domain.routing import Resolution


class Payload(BaseModel):
    # Steps read what they need; what a later version of the definition adds passes through unread.
    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    def as_state(self) -> dict[str, Any]:
        """As a step hands it to the state machine: JSON, and only the fields the step set (an optional field it
        never set adds nothing to a state Step Functions caps at 256 KB)."""
        return self.model_dump(mode="json", exclude_unset=True)


class StepError(Payload):
    """What a Catch puts in the state: the error's type name and its cause (a Lambda's JSON error, or text)."""

    error: str = Field(default="Error", alias="Error")
    cause: str = Field(default="", alias="Cause")

    def text(self) -> str:
        try:
            message = json.loads(self.cause).get("errorMessage", self.cause)
        except (ValueError, AttributeError):
            message = self.cause
        return f"{self.error}: {message}"[:1000]


class MailSummary(Payload):
    """Parse's output: the bounded summary of the parsed mail (domain/mail/model.py) and what Parse found about its
    copies. The fields the steps read are typed; `fields` keeps the whole summary for ParsedMail.from_summary."""

    model_config = ConfigDict(extra="allow", frozen=True)

    message_id: str | None = None
    subject: str = ""
    sender: str | None = None
    case_id: str | None = None
    problems: list[str] = Field(default_factory=list)
    authentic: bool | None = None
    duplicate_of: str | None = None  # a copy of this mail ID, which delivers it
    duplicate_state: str | None = None
    copy_of: str | None = None  # this copy took over from that mail ID, which did not deliver it

    @property
    def fields(self) -> dict[str, Any]:
        return self.model_dump()


class Classification(Payload):
    """Classify's output: the decision (domain/triage.py's Decision.to_dict)."""

    category: str
    action: str
    rule_id: str | None = None
    reason: str = ""
    authentic: bool | None = None
    private: bool = False
    withhold_text: bool = False
    signals: list[str] = Field(default_factory=list)
    alert: bool = False
    suggestion: dict[str, str] | None = None


class Undelivered(Payload):
    account_id: str
    reason: str


class DeliveryOutcome(Payload):
    """A delivery step's output: what was delivered (each with its proof) and for which accounts it could not be."""

    deliveries: list[dict[str, Any]] = Field(default_factory=list)
    undelivered: list[Undelivered] = Field(default_factory=list)
    # Nothing delivered yet: the step holds a slot of a shared rate (domain/pacing.py) that starts then, and the
    # state machine waits for it (a Wait's TimestampPath) before running the step again.
    paced_until: str | None = None
    # Joined the batch of its kind (domain/alerts.py) but not yet counted by its message: the state machine waits
    # until then and runs the step again, which only makes the message show it.
    settle_at: str | None = None


class RefreshOutcome(Payload):
    """RefreshAccounts' output (`wait_seconds` feeds the WaitForRefresh state)."""

    status: str
    at: str | None = None
    detail: str | None = None
    added: int | None = None
    wait_seconds: int = 0


class RetryMark(Payload):
    run: str


class TriageState(Payload):
    """A triage execution's state: ingest's input, and each state's result under its ResultPath."""

    bucket: str
    key: str
    mail_id: str
    execution: str
    retry: RetryMark | None = None  # started by an operators' retry run: the rules are read fresh
    mail: MailSummary | None = None
    resolution: Resolution | None = None
    refresh: RefreshOutcome | None = None
    refresh_error: StepError | None = None
    classification: Classification | None = None
    delivery: DeliveryOutcome | None = None
    error: StepError | None = None

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution(cls, value: Any) -> Any:
        return Resolution.from_dict(value) if isinstance(value, dict) else value

    def summary(self) -> MailSummary:
        if self.mail is None:
            raise ValueError("the state has no mail summary: Parse has not run")
        return self.mail

    def resolved(self) -> Resolution:
        if self.resolution is None:
            raise ValueError("the state has no resolution: Resolve has not run")
        return self.resolution

    def holds_slot(self) -> bool:
        """This run of a delivery step follows the wait for a slot it reserved: it delivers without asking again."""
        return self.delivery is not None and self.delivery.paced_until is not None

    def decision(self) -> Classification:
        if self.classification is None:
            raise ValueError("the state has no classification: Classify has not run")
        return self.classification


class FinalState(TriageState):
    """What Record reads: whatever state an execution ended in, even one started by hand without all of its
    fields, so that every path still ends with the mail's terminal state in the ledger."""

    bucket: str | None = None  # type: ignore[assignment]
    key: str | None = None  # type: ignore[assignment]
    execution: str | None = None  # type: ignore[assignment]


class RetrySelection(Payload):
    pattern: str | None = None
    mail_ids: list[str] = Field(default_factory=list)


class RetryItem(Payload):
    mail_id: str
    bucket: str
    key: str


class RetrySelected(Payload):
    items: list[RetryItem] = Field(default_factory=list)
    count: int = 0
    remaining: int = 0
    skipped: list[str] = Field(default_factory=list)
    poll_seconds: int | None = None


class RetriedMail(Payload):
    mail_id: str
    status: str | None = None


class RetryRun(Payload):
    """The retry workflow's state: the operator's request, then what SelectQueued chose and how each re-run ended."""

    run: str
    selection: RetrySelection = Field(default_factory=RetrySelection)
    requested_by: str | None = None
    channel: str | None = None
    response_url: str | None = None
    selected: RetrySelected = Field(default_factory=RetrySelected)
    retried: list[RetriedMail] = Field(default_factory=list)


class Retriaged(Payload):
    """Retriage's output: the mail's new execution, its status, and how long WaitForTriage waits before asking
    again (when `waiting`)."""

    execution: str
    status: str
    polls: int
    waiting: bool
    wait_seconds: int


class RetriageItem(Payload):
    """One queued mail in the retry workflow's Map: started again under the run's name, and polled."""

    run: str
    mail_id: str
    bucket: str
    key: str
    poll_seconds: int | None = None
    triage: Retriaged | None = None  # the last poll's, when WaitForTriage looped back

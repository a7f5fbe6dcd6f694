"""The triage steps, one per state of the state machine. Each takes the execution's state (typed, validated by
its handler) and the container's services, does one thing, and returns what the next state needs (keys and
summaries, never whole mails). What is decided, the domain decides (triage, routing, outcome)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.app.accounts_sync import deadline_for, options_from_settings, sync_accounts
from rootmail.app.payloads import (
    Classification,
    DeliveryOutcome,
    FinalState,
    MailSummary,
    RefreshOutcome,
    TriageState,
    Undelivered,
)
from rootmail.app.ports import Services
from rootmail.domain.accounts import Account, contact_kind
from rootmail.domain.authenticity import assess
from rootmail.domain.executions import SES_SETUP_NOTIFICATION, execution_name, mail_id_for
from rootmail.domain.mail.model import ParsedMail, fit
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.outcome import ACCOUNT_GONE, all_suppressed, copy_takes_over, no_contact, terminal_state
from rootmail.domain.routing import Resolution, resolve
from rootmail.domain.triage import decide
from rootmail.domain.vocabulary import IN_FLIGHT, Action
from rootmail.errors import DeliveryRejected, DeliveryUnconfirmed
from rootmail.messages.operators import rule_prompt
from rootmail.messages.render import (
    alert_headline,
    operator_alert,
    render_forward,
    ticket_comment,
    ticket_subject,
    urgent_comment,
)
from rootmail.observability import logger

# Step Functions refuses a state over 256 KB (and that error cannot be caught): every step's output is bounded
# (tests/test_state_limits.py adds the bounds up).
MAX_REASONS = 10
MAX_REASON_BYTES = 320
MAX_DELIVERY_FIELD_BYTES = 512
# ---- ingest -------------------------------------------------------------------------------------------------


def start_triage(objects: Iterable[tuple[str, str]], rt: Services) -> dict[str, Any]:
    """Start one execution per stored mail; a duplicate event finds its execution already there."""
    started: list[str] = []
    duplicates: list[str] = []
    skipped: list[str] = []
    for bucket, key in objects:
        if mail_id_for(key) == SES_SETUP_NOTIFICATION:
            skipped.append(key)
            continue
        name = execution_name(key)
        payload = {"bucket": bucket, "key": key, "mail_id": mail_id_for(key), "execution": name}
        (started if rt.starter.start(name, payload) else duplicates).append(name)
    result = {"started": started, "duplicates": duplicates, "skipped": skipped}
    logger.info("triage started", extra=result)
    return result


# ---- parse, resolve, classify ---------------------------------------------------------------------------------


def load_mail(rt: Services, key: str) -> tuple[bytes, ParsedMail]:
    raw = rt.mail_store.get(key)
    return raw, parse_mail(raw)


def parse_step(event: TriageState, rt: Services) -> MailSummary:
    _, mail = load_mail(rt, event.key)
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    summary = mail.to_summary()  # bounded: see MAX_SUMMARY_BYTES
    summary["authentic"] = authenticity.authentic
    summary["authenticity_reasons"] = [fit(r, MAX_REASON_BYTES) for r in authenticity.reasons[:MAX_REASONS]]
    identity = mail.identity() if authenticity.authentic else None
    if identity is not None:
        # The same (authentic) mail stored again under another key is recorded, and delivered only through its
        # first copy, unless that copy's triage did not deliver it (queued, quarantined): then this copy does.
        first = rt.guard.first_copy(identity, event.mail_id)
        if first != event.mail_id:
            held = (rt.ledger.get(first) or {}).get("state")
            if copy_takes_over(held) and rt.guard.take_over(identity, first, event.mail_id):
                summary["copy_of"] = first
            else:
                summary["duplicate_of"] = first
                summary["duplicate_state"] = held or IN_FLIGHT
    rt.ledger.open(
        event.mail_id, bucket=event.bucket, key=event.key, execution=event.execution, summary=summary
    )
    return MailSummary.model_validate(summary)


def resolve_step(event: TriageState, rt: Services) -> dict[str, Any]:
    refreshed = event.refresh is not None or event.refresh_error is not None
    resolution = resolve(
        ParsedMail.from_summary(event.summary().fields),
        rt.accounts,
        rt.settings.routing,
        # Once per execution: after RefreshAccounts (or its failure) this state runs again as ResolveAgain.
        may_refresh=not refreshed,
    )
    if refreshed and not resolution.envelope_known:
        resolution = resolution.with_note(_refresh_note(event))
    return resolution.to_dict()


def _refresh_note(event: TriageState) -> str:
    """What the accounts refresh did, for the operators reading why a mail is queued."""
    if event.refresh_error is not None or event.refresh is None:
        failure = event.refresh_error.text() if event.refresh_error else "no outcome"
        return f"the accounts refresh failed ({failure})"
    status, at = event.refresh.status, event.refresh.at
    if status == "refreshed":
        return f"still unknown after refreshing the accounts from Organizations at {at}"
    if status == "recent":
        return f"the accounts were refreshed at {at} (one refresh per window)"
    if status == "in-progress":
        return f"an accounts refresh was still running (since {at})"
    return f"the accounts refresh did not complete: {event.refresh.detail}"


def refresh_step(
    event: TriageState, rt: Services, *, remaining_seconds: float | None = None
) -> RefreshOutcome:
    """RefreshAccounts: the envelope's root address is unknown (an account created since the last sync). One
    listing per window for the whole pipeline: the first mail claims it and syncs the new accounts; a mail that
    finds it running waits `wait_seconds` (a Wait state) and resolves again; one that finds it done resolves again
    at once. The refresh adds and updates accounts but re-reads no rotating slice of contacts."""
    now = datetime.now(UTC)
    claim = rt.accounts.claim_refresh(now, timedelta(seconds=rt.settings.accounts_refresh_seconds))
    if not claim.claimed:
        if claim.state == "running":
            return RefreshOutcome(
                status="in-progress",
                at=claim.started_at,
                wait_seconds=rt.settings.accounts_refresh_wait_seconds,
            )
        return RefreshOutcome(status="recent", at=claim.finished_at or claim.started_at, wait_seconds=0)
    try:
        report = sync_accounts(
            rt.organization(),
            rt.accounts,
            options_from_settings(rt.settings, rotate=False),
            now=now,
            deadline=deadline_for(remaining_seconds),
        )
    except Exception as exc:
        rt.accounts.finish_refresh(claim, datetime.now(UTC), {"error": f"{type(exc).__name__}: {exc}"})
        raise
    summary = report.to_dict(limit=10)
    rt.accounts.finish_refresh(claim, datetime.now(UTC), summary)
    logger.info("accounts refreshed for an unknown root address", extra=summary)
    return RefreshOutcome(
        status="refreshed" if report.listing_complete else "incomplete",
        at=claim.started_at,
        detail=report.listing_error or f"{len(report.added)} account(s) added",
        added=len(report.added),
        wait_seconds=0,
    )


def classify_step(event: TriageState, rt: Services) -> Classification:
    _, mail = load_mail(rt, event.key)
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    # A retry an operator asked for runs with the rules as they are now, not as a warm container cached them.
    decision = decide(mail, authenticity, event.resolved(), rt.rules(fresh=event.retry is not None))
    summary = event.summary()
    if summary.duplicate_of:
        decision = decision.as_copy_of(summary.duplicate_of, summary.duplicate_state or IN_FLIGHT)
    logger.info("classified", extra=decision.to_dict())
    return Classification.model_validate(decision.to_dict())


# ---- deliveries -------------------------------------------------------------------------------------------------


def _guarded(rt: Services, delivery_id: str, owner: str, send: Any, base: dict[str, Any]) -> dict[str, Any]:
    """Run one side effect at most once per delivery key; settle the key with what proves it was done."""
    # Zendesk recognises a repeat (external_id, the idempotency key, the mail's marker); SES and Slack do not.
    if not rt.guard.claim(delivery_id, owner, resend_safe="#zendesk#" in delivery_id):
        # Delivered by an earlier execution: keep its proof (message ID, ticket) in this record too.
        earlier = (rt.guard.get(delivery_id) or {}).get("detail", {})
        return {**base, **earlier, "status": "already-delivered"}
    rt.guard.sending(delivery_id, owner)
    try:
        proof = send()
    except Exception as exc:
        logger.warning("delivery failed", extra={"delivery": delivery_id, "error": type(exc).__name__})
        rt.guard.settle(delivery_id, "failed", {"error": f"{type(exc).__name__}: {exc}"})
        raise
    try:
        rt.guard.settle(delivery_id, "sent", proof)
    except Exception as exc:
        # Sent, but not recorded: a retry of this step would send again. Stop here, visibly.
        logger.error("delivery sent but not recorded", extra={"delivery": delivery_id, "proof": proof})
        raise DeliveryUnconfirmed(
            f"{delivery_id} was sent ({json.dumps(proof)}) but could not be recorded ({type(exc).__name__}): check "
            f"that it arrived, then `rootmail deliveries confirm {delivery_id}` (or `resend`), and retry this mail"
        ) from None
    return {**base, **proof, "status": "sent"}


def _delivered_accounts(rt: Services, resolution: Resolution) -> tuple[list[Account], list[Undelivered]]:
    """The accounts a mail is delivered for, read now (contacts and language as they are at delivery); an account
    gone from the table since Resolve is undelivered, with its reason."""
    accounts, missing = [], []
    for account_id in resolution.account_ids:
        account = rt.accounts.by_id(account_id)
        if account is None:
            missing.append(Undelivered(account_id=account_id, reason=ACCOUNT_GONE))
        else:
            accounts.append(account)
    return accounts, missing


def forward_step(event: TriageState, rt: Services) -> DeliveryOutcome:
    raw, mail = load_mail(rt, event.key)
    resolution = event.resolved()
    category = event.decision().category
    kind = contact_kind(category, rt.settings.contact_kinds)
    deliveries: list[dict[str, Any]] = []
    accounts, undelivered = _delivered_accounts(rt, resolution)
    # Every account the notice lists or is delivered for: each customer sees only its own part of a shared notice.
    named = dict.fromkeys([*resolution.account_ids, *mail.listed_account_ids])
    suppressed = rt.suppressions.suppressed(c for a in accounts for c in a.contacts.of(kind))
    for account in accounts:
        rendered = render_forward(
            mail,
            raw,
            account,
            sender=rt.mailer.sender,
            reply_to=rt.settings.require("reply_to_address"),
            mail_id=event.mail_id,
            other_account_ids=[a for a in named if a != account.account_id],
            kind=kind,
            suppressed=suppressed,
        )
        held = [c for c in account.contacts.of(kind) if c.lower() in suppressed]
        if not rendered.to:
            reason = all_suppressed(kind, held) if held else no_contact(kind, category)
            undelivered.append(
                Undelivered(account_id=account.account_id, reason=fit(reason, MAX_DELIVERY_FIELD_BYTES))
            )
            continue
        recipient = fit(", ".join(rendered.to), MAX_DELIVERY_FIELD_BYTES)
        deliveries.append(
            _guarded(
                rt,
                f"{event.mail_id}#ses#{account.account_id}",
                event.execution,
                lambda r=rendered: {"message_id": rt.mailer.send(r.data, r.to)},
                {
                    "channel": "ses",
                    "recipient": recipient,
                    "account_id": account.account_id,
                    "language": account.language,
                    "subject": fit(rendered.subject, MAX_DELIVERY_FIELD_BYTES),
                },
            )
        )
    return DeliveryOutcome(deliveries=deliveries, undelivered=undelivered)


def _ticket_content(
    mail: ParsedMail, raw: bytes, resolution: Resolution, decision: Classification, mail_id: str
) -> tuple[str, tuple[str, bytes] | None]:
    """An internal ticket's text and attachment: the facts and the mail, or (credentials) the facts only."""
    withheld = decision.reason if decision.withhold_text else None
    body = ticket_comment(mail, resolution.account_ids, mail_id=mail_id, withheld=withheld)
    return body, None if withheld else ("original.eml", raw)


def ticket_step(event: TriageState, rt: Services) -> DeliveryOutcome:
    raw, mail = load_mail(rt, event.key)
    resolution, decision = event.resolved(), event.decision()
    if not mail.case_id:
        raise DeliveryRejected("a support-case mail without an AWS case ID: no ticket to thread it into")
    kind = contact_kind(decision.category, rt.settings.contact_kinds)
    accounts, _ = _delivered_accounts(rt, resolution)
    # Zendesk tells the requester of a new ticket: a private ticket has none.
    _, requester = (None, None) if decision.private else _requester(accounts, kind)
    case_id = mail.case_id
    body, attachment = _ticket_content(mail, raw, resolution, decision, event.mail_id)

    def open_ticket() -> dict[str, Any]:
        # Two mails of one case at once would each find no ticket and create one: the case's thread is held
        # while its ticket is looked up and written.
        with rt.guard.holding(f"case#{case_id}", event.execution):
            ref = rt.desk.case_ticket(
                case_id=case_id,
                message_key=event.mail_id,
                subject=ticket_subject(mail, urgent=False),
                body=body,
                requester_email=requester,
                tags=["rootmail", "aws-support-case", *(f"aws-{a}" for a in resolution.account_ids)],
                attachment=attachment,
            )
        return {"ticket": ref.ticket_id, "created": ref.created, "url": ref.url, "note": ref.note}

    delivery = _guarded(
        rt,
        f"{event.mail_id}#zendesk#case-{case_id}",
        event.execution,
        open_ticket,
        {"channel": "zendesk", "case_id": case_id},
    )
    return DeliveryOutcome(deliveries=[delivery], undelivered=[])


def escalate_step(event: TriageState, rt: Services) -> DeliveryOutcome:
    raw, mail = load_mail(rt, event.key)
    resolution, decision = event.resolved(), event.decision()
    kind = contact_kind(decision.category, rt.settings.contact_kinds)
    accounts, _ = _delivered_accounts(rt, resolution)
    # The public comment is written to the requester's account, in its language; a private ticket has neither.
    account, requester = (None, None) if decision.private else _requester(accounts, kind)
    if account is not None:
        others = [
            a
            for a in dict.fromkeys([*resolution.account_ids, *mail.listed_account_ids])
            if a != account.account_id
        ]
        body = urgent_comment(mail, account, others)
        attachment = None if others else ("original.eml", raw)  # the original would show the others' part
    else:
        body, attachment = _ticket_content(mail, raw, resolution, decision, event.mail_id)

    def open_ticket() -> dict[str, Any]:
        ref = rt.desk.urgent_ticket(
            message_key=event.mail_id,
            subject=ticket_subject(mail, urgent=True),
            body=body,
            public=account is not None,  # nobody to notify: an internal note for the support team
            requester_email=requester,
            requester_name=account.name if account else None,
            tags=["rootmail", "urgent", decision.category, *(f"aws-{a}" for a in resolution.account_ids)],
            attachment=attachment,
        )
        return {"ticket": ref.ticket_id, "created": ref.created, "url": ref.url, "note": ref.note}

    ticket = _guarded(
        rt, f"{event.mail_id}#zendesk#urgent", event.execution, open_ticket, {"channel": "zendesk"}
    )
    link = ticket.get("url")
    if link is None:
        settled = rt.guard.get(f"{event.mail_id}#zendesk#urgent") or {}
        link = settled.get("detail", {}).get("url")
    alert = _alert(rt, event, mail, resolution, decision, headline="Urgent AWS notice", link=link)
    return DeliveryOutcome(deliveries=[ticket, alert], undelivered=[])


def alert_step(event: TriageState, rt: Services) -> DeliveryOutcome:
    _, mail = load_mail(rt, event.key)
    resolution, decision = event.resolved(), event.decision()
    signal = decision.alert and decision.action == Action.QUEUE
    extra: list[dict[str, Any]] = []
    # Mail no rule knows gets the button that makes a rule of its pattern; mail a rule took (held for its urgent
    # words) is no such pattern: the operators act on the mail itself.
    if signal and not decision.rule_id:
        summary = event.summary()
        extra = rule_prompt(
            subject=summary.subject or mail.subject,
            sender=summary.sender or mail.sender,
            signals=decision.signals,
            suggestion=decision.suggestion,
            language=rt.settings.operator_language,
        )
    delivery = _alert(
        rt,
        event,
        mail,
        resolution,
        decision,
        headline=alert_headline(decision.action, decision.category, signal=signal, rule_id=decision.rule_id),
        extra=extra,
        # Its own delivery: a rule that later restricts or quarantines the mail still tells the operators.
        key="signal" if signal else "alert",
    )
    return DeliveryOutcome(deliveries=[delivery], undelivered=[])


def _alert(
    rt: Services,
    event: TriageState,
    mail: ParsedMail,
    resolution: Resolution,
    decision: Classification,
    *,
    headline: str,
    link: str | None = None,
    extra: list[dict[str, Any]] | None = None,
    key: str = "alert",
) -> dict[str, Any]:
    text, blocks = operator_alert(
        headline=headline,
        mail=mail,
        account_ids=resolution.account_ids,
        category=decision.category,
        action=decision.action,
        mail_id=event.mail_id,
        reason=decision.reason,
        link=link,
    )
    blocks += extra or []
    return _guarded(
        rt,
        f"{event.mail_id}#slack#{key}",
        event.execution,
        lambda: {"ts": rt.slack.post(text, blocks)},
        {"channel": "slack", "recipient": rt.slack.channel},
    )


def _requester(accounts: Iterable[Account], kind: str) -> tuple[Account | None, str | None]:
    """A ticket's requester, and its account: the first contact of the mail's kind (Zendesk notifies it)."""
    return next(((a, c) for a in accounts for c in a.contacts.of(kind)), (None, None))


# ---- record -------------------------------------------------------------------------------------------------


def outcome(event: FinalState) -> dict[str, Any]:
    """The terminal ledger fields for one execution's final state (the domain decides the state and its reason)."""
    mail = event.mail or MailSummary()
    decision = event.classification
    delivery = event.delivery or DeliveryOutcome()
    state, queue_reason = terminal_state(
        decision.action if decision else None,
        decision.reason if decision else None,
        error=event.error.text() if event.error else None,
        undelivered=[(u.account_id, u.reason) for u in delivery.undelivered],
    )
    fields: dict[str, Any] = {
        "message_id": mail.message_id,
        "subject": mail.subject if event.mail else None,
        "sender": mail.sender,
        "case_id": mail.case_id,
        "problems": mail.problems,
        "account_ids": list(event.resolution.account_ids) if event.resolution else [],
        "category": decision.category if decision else None,
        "rule_id": decision.rule_id if decision else None,
        "action": decision.action if decision else None,
        "reason": decision.reason if decision else None,
        "authentic": decision.authentic if decision else mail.authentic,
        "deliveries": delivery.deliveries,
        # Written every time, so a retry that no longer alerts does not keep an earlier run's alert.
        "alert": bool(decision and decision.alert),
        "signals": list(decision.signals) if decision else [],
        "state": state.value,
    }
    if decision and decision.suggestion:
        fields["suggestion"] = decision.suggestion
    if queue_reason is not None:
        fields["queue_reason"] = queue_reason
    return fields


def record_step(event: FinalState, rt: Services) -> dict[str, Any]:
    fields = outcome(event)
    where = {"execution": event.execution, "bucket": event.bucket, "object_key": event.key}
    rt.ledger.record(event.mail_id, {**fields, **where})
    # One figure per mail, by category, action and terminal state.
    rt.metrics.put(
        "MailTriaged",
        1,
        category=str(fields["category"] or "none"),
        action=str(fields["action"] or "none"),
        state=str(fields["state"]),
    )
    logger.info("mail recorded", extra={"state": fields["state"], "rule_id": fields["rule_id"]})
    return {"mail_id": event.mail_id, **fields}


__all__ = [
    "alert_step",
    "classify_step",
    "escalate_step",
    "forward_step",
    "mail_id_for",
    "outcome",
    "parse_step",
    "record_step",
    "refresh_step",
    "resolve_step",
    "start_triage",
    "ticket_step",
]

"""The triage steps, one per state of the state machine. Each takes the state's input and the container's
runtime, does one thing, and returns what the next state needs (keys and summaries, never whole mails)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from rootmail.adapters.executions import execution_name
from rootmail.app.accounts_sync import deadline_for, options_from_settings, sync_accounts
from rootmail.bootstrap import Runtime
from rootmail.domain.accounts import Account, contact_kind
from rootmail.domain.authenticity import assess
from rootmail.domain.mail.model import ParsedMail, fit
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.routing import Resolution, resolve
from rootmail.domain.triage import Decision, decide
from rootmail.domain.vocabulary import IN_FLIGHT, STATE_FOR_ACTION, Action, State
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
# The object SES writes when a receipt rule is set up: not a mail.
SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"


def mail_id_for(key: str) -> str:
    """The ledger's key for a stored mail: the object key's last part, which is SES's message ID."""
    return key.rsplit("/", 1)[-1]


# ---- ingest -------------------------------------------------------------------------------------------------


def start_triage(objects: Iterable[tuple[str, str]], rt: Runtime) -> dict[str, Any]:
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
    return {"started": started, "duplicates": duplicates, "skipped": skipped}


# ---- parse, resolve, classify ---------------------------------------------------------------------------------


def load_mail(rt: Runtime, key: str) -> tuple[bytes, ParsedMail]:
    raw = rt.mail_store.get(key)
    return raw, parse_mail(raw)


def parse_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    _, mail = load_mail(rt, event["key"])
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    summary = mail.to_summary()  # bounded: see MAX_SUMMARY_BYTES
    summary["authentic"] = authenticity.authentic
    summary["authenticity_reasons"] = [fit(r, MAX_REASON_BYTES) for r in authenticity.reasons[:MAX_REASONS]]
    identity = mail.identity() if authenticity.authentic else None
    if identity is not None:
        # The same (authentic) mail stored again under another key is recorded, and delivered only through its
        # first copy, unless that copy's triage did not deliver it (queued, quarantined): then this copy does.
        first = rt.guard.first_copy(identity, event["mail_id"])
        if first != event["mail_id"]:
            held = (rt.ledger.get(first) or {}).get("state")
            if held in (State.QUEUED, State.QUARANTINED) and rt.guard.take_over(
                identity, first, event["mail_id"]
            ):
                summary["copy_of"] = first
            else:
                summary["duplicate_of"] = first
                summary["duplicate_state"] = held or IN_FLIGHT
    rt.ledger.open(
        event["mail_id"],
        bucket=event["bucket"],
        key=event["key"],
        execution=event["execution"],
        summary=summary,
    )
    return summary


def resolve_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    refreshed = "refresh" in event or "refresh_error" in event
    resolution = resolve(
        ParsedMail.from_summary(event["mail"]),
        rt.accounts,
        rt.settings.routing,
        # Once per execution: after RefreshAccounts (or its failure) this state runs again as ResolveAgain.
        may_refresh=not refreshed,
    )
    if refreshed and not resolution.envelope_known:
        resolution = resolution.with_note(_refresh_note(event))
    return resolution.to_dict()


def _refresh_note(event: dict[str, Any]) -> str:
    """What the accounts refresh did, for the operators reading why a mail is queued."""
    if "refresh_error" in event:
        return f"the accounts refresh failed ({_error_text(event['refresh_error'])})"
    refresh = event["refresh"]
    status, at = refresh.get("status"), refresh.get("at")
    if status == "refreshed":
        return f"still unknown after refreshing the accounts from Organizations at {at}"
    if status == "recent":
        return f"the accounts were refreshed at {at} (one refresh per window)"
    if status == "in-progress":
        return f"an accounts refresh was still running (since {at})"
    return f"the accounts refresh did not complete: {refresh.get('detail')}"


def refresh_step(
    event: dict[str, Any], rt: Runtime, *, remaining_seconds: float | None = None
) -> dict[str, Any]:
    """RefreshAccounts: the envelope's root address is unknown (an account created since the last sync). One
    listing per window for the whole pipeline: the first mail claims it and syncs the new accounts; a mail that
    finds it running waits `wait_seconds` (a Wait state) and resolves again; one that finds it done resolves again
    at once. The refresh adds and updates accounts but re-reads no rotating slice of contacts."""
    now = datetime.now(UTC)
    claim = rt.accounts.claim_refresh(now, timedelta(seconds=rt.settings.accounts_refresh_seconds))
    if not claim.claimed:
        if claim.state == "running":
            return {
                "status": "in-progress",
                "at": claim.started_at,
                "wait_seconds": rt.settings.accounts_refresh_wait_seconds,
            }
        return {"status": "recent", "at": claim.finished_at or claim.started_at, "wait_seconds": 0}
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
    return {
        "status": "refreshed" if report.listing_complete else "incomplete",
        "at": claim.started_at,
        "detail": report.listing_error or f"{len(report.added)} account(s) added",
        "added": len(report.added),
        "wait_seconds": 0,
    }


def classify_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    _, mail = load_mail(rt, event["key"])
    resolution = Resolution.from_dict(event["resolution"])
    authenticity = assess(mail, rt.settings.aws_sender_domains)
    # A retry an operator asked for runs with the rules as they are now, not as a warm container cached them.
    decision = decide(mail, authenticity, resolution, rt.rules(fresh="retry" in event)).to_dict()
    duplicate_of = (event.get("mail") or {}).get("duplicate_of")
    if duplicate_of:
        decision["action"] = str(Action.IGNORE)
        decision["alert"] = False
        state = (event.get("mail") or {}).get("duplicate_state")
        decision["reason"] = (
            f"a copy of {duplicate_of} (the same Message-ID and content; that one is {state}): one mail is "
            "triaged once"
        )
    logger.info("classified", extra=decision)
    return decision


# ---- deliveries -------------------------------------------------------------------------------------------------


def _guarded(rt: Runtime, delivery_id: str, owner: str, send: Any, base: dict[str, Any]) -> dict[str, Any]:
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


def _delivered_accounts(rt: Runtime, resolution: Resolution) -> tuple[list[Account], list[dict[str, str]]]:
    """The accounts a mail is delivered for, read now (contacts and language as they are at delivery); an account
    gone from the table since Resolve is undelivered, with its reason."""
    accounts, missing = [], []
    for account_id in resolution.account_ids:
        account = rt.accounts.by_id(account_id)
        if account is None:
            missing.append(
                {"account_id": account_id, "reason": "the account is no longer in the accounts table"}
            )
        else:
            accounts.append(account)
    return accounts, missing


def forward_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    raw, mail = load_mail(rt, event["key"])
    resolution = Resolution.from_dict(event["resolution"])
    category = event["classification"]["category"]
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
            mail_id=event["mail_id"],
            other_account_ids=[a for a in named if a != account.account_id],
            kind=kind,
            suppressed=suppressed,
        )
        held = [c for c in account.contacts.of(kind) if c.lower() in suppressed]
        if not rendered.to and held:
            reason = f"every {kind} contact is suppressed after bounces or complaints: {', '.join(held)}"
            undelivered.append(
                {"account_id": account.account_id, "reason": fit(reason, MAX_DELIVERY_FIELD_BYTES)}
            )
            continue
        if not rendered.to:
            reason = f"the account has no customer contact for {kind} notices ({category})"
            undelivered.append({"account_id": account.account_id, "reason": reason})
            continue
        recipient = fit(", ".join(rendered.to), MAX_DELIVERY_FIELD_BYTES)
        deliveries.append(
            _guarded(
                rt,
                f"{event['mail_id']}#ses#{account.account_id}",
                event["execution"],
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
    return {"deliveries": deliveries, "undelivered": undelivered}


def _ticket_content(
    mail: ParsedMail, raw: bytes, resolution: Resolution, decision: dict[str, Any], mail_id: str
) -> tuple[str, tuple[str, bytes] | None]:
    """An internal ticket's text and attachment: the facts and the mail, or (credentials) the facts only."""
    withheld = decision["reason"] if decision.get("withhold_text") else None
    body = ticket_comment(mail, resolution.account_ids, mail_id=mail_id, withheld=withheld)
    return body, None if withheld else ("original.eml", raw)


def ticket_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    raw, mail = load_mail(rt, event["key"])
    resolution = Resolution.from_dict(event["resolution"])
    decision = event["classification"]
    if not mail.case_id:
        raise DeliveryRejected("a support-case mail without an AWS case ID: no ticket to thread it into")
    kind = contact_kind(decision["category"], rt.settings.contact_kinds)
    accounts, _ = _delivered_accounts(rt, resolution)
    # Zendesk tells the requester of a new ticket: a private ticket has none.
    _, requester = (None, None) if decision.get("private") else _requester(accounts, kind)
    case_id = mail.case_id
    body, attachment = _ticket_content(mail, raw, resolution, decision, event["mail_id"])

    def open_ticket() -> dict[str, Any]:
        # Two mails of one case at once would each find no ticket and create one: the case's thread is held
        # while its ticket is looked up and written.
        with rt.guard.holding(f"case#{case_id}", event["execution"]):
            ref = rt.desk.case_ticket(
                case_id=case_id,
                message_key=event["mail_id"],
                subject=ticket_subject(mail, urgent=False),
                body=body,
                requester_email=requester,
                tags=["rootmail", "aws-support-case", *(f"aws-{a}" for a in resolution.account_ids)],
                attachment=attachment,
            )
        return {"ticket": ref.ticket_id, "created": ref.created, "url": ref.url, "note": ref.note}

    delivery = _guarded(
        rt,
        f"{event['mail_id']}#zendesk#case-{case_id}",
        event["execution"],
        open_ticket,
        {"channel": "zendesk", "case_id": case_id},
    )
    return {"deliveries": [delivery], "undelivered": []}


def escalate_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    raw, mail = load_mail(rt, event["key"])
    resolution = Resolution.from_dict(event["resolution"])
    decision = event["classification"]
    kind = contact_kind(decision["category"], rt.settings.contact_kinds)
    accounts, _ = _delivered_accounts(rt, resolution)
    # The public comment is written to the requester's account, in its language; a private ticket has neither.
    account, requester = (None, None) if decision.get("private") else _requester(accounts, kind)
    if account is not None:
        others = [
            a
            for a in dict.fromkeys([*resolution.account_ids, *mail.listed_account_ids])
            if a != account.account_id
        ]
        body = urgent_comment(mail, account, others)
        attachment = None if others else ("original.eml", raw)  # the original would show the others' part
    else:
        body, attachment = _ticket_content(mail, raw, resolution, decision, event["mail_id"])

    def open_ticket() -> dict[str, Any]:
        ref = rt.desk.urgent_ticket(
            message_key=event["mail_id"],
            subject=ticket_subject(mail, urgent=True),
            body=body,
            public=account is not None,  # nobody to notify: an internal note for the support team
            requester_email=requester,
            requester_name=account.name if account else None,
            tags=["rootmail", "urgent", decision["category"], *(f"aws-{a}" for a in resolution.account_ids)],
            attachment=attachment,
        )
        return {"ticket": ref.ticket_id, "created": ref.created, "url": ref.url, "note": ref.note}

    ticket = _guarded(
        rt, f"{event['mail_id']}#zendesk#urgent", event["execution"], open_ticket, {"channel": "zendesk"}
    )
    link = ticket.get("url")
    if link is None:
        settled = rt.guard.get(f"{event['mail_id']}#zendesk#urgent") or {}
        link = settled.get("detail", {}).get("url")
    alert = _alert(rt, event, mail, resolution, decision, headline="Urgent AWS notice", link=link)
    return {"deliveries": [ticket, alert], "undelivered": []}


def alert_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    _, mail = load_mail(rt, event["key"])
    resolution = Resolution.from_dict(event["resolution"])
    decision = event["classification"]
    signal = bool(decision.get("alert")) and decision["action"] == Action.QUEUE
    extra: list[dict[str, Any]] = []
    # Mail no rule knows gets the button that makes a rule of its pattern; mail a rule took (held for its urgent
    # words) is no such pattern: the operators act on the mail itself.
    if signal and not decision.get("rule_id"):
        summary = event.get("mail") or {}
        extra = rule_prompt(
            subject=str(summary.get("subject") or mail.subject),
            sender=summary.get("sender") or mail.sender,
            signals=decision.get("signals") or [],
            suggestion=decision.get("suggestion"),
            language=rt.settings.operator_language,
        )
    delivery = _alert(
        rt,
        event,
        mail,
        resolution,
        decision,
        headline=alert_headline(
            decision["action"], decision["category"], signal=signal, rule_id=decision.get("rule_id")
        ),
        extra=extra,
        # Its own delivery: a rule that later restricts or quarantines the mail still tells the operators.
        key="signal" if signal else "alert",
    )
    return {"deliveries": [delivery], "undelivered": []}


def _alert(
    rt: Runtime,
    event: dict[str, Any],
    mail: ParsedMail,
    resolution: Resolution,
    decision: dict[str, Any],
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
        category=decision["category"],
        action=decision["action"],
        mail_id=event["mail_id"],
        reason=decision["reason"],
        link=link,
    )
    blocks += extra or []
    return _guarded(
        rt,
        f"{event['mail_id']}#slack#{key}",
        event["execution"],
        lambda: {"ts": rt.slack.post(text, blocks)},
        {"channel": "slack", "recipient": rt.slack.channel},
    )


def _requester(accounts: Iterable[Account], kind: str) -> tuple[Account | None, str | None]:
    """A ticket's requester, and its account: the first contact of the mail's kind (Zendesk notifies it)."""
    return next(((a, c) for a in accounts for c in a.contacts.of(kind)), (None, None))


# ---- record -------------------------------------------------------------------------------------------------


def _error_text(error: dict[str, Any]) -> str:
    """Step Functions' Catch gives {"Error": type, "Cause": the Lambda's JSON error or text}."""
    cause = error.get("Cause", "")
    try:
        message = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        message = cause
    return f"{error.get('Error', 'Error')}: {message}"[:1000]


def outcome(event: dict[str, Any]) -> dict[str, Any]:
    """The terminal ledger fields for one execution's final state. Pure: the rule for every path in one place."""
    mail = event.get("mail") or {}
    decision = event.get("classification") or {}
    resolution = event.get("resolution") or {}
    delivery = event.get("delivery") or {}
    fields: dict[str, Any] = {
        "message_id": mail.get("message_id"),
        "subject": mail.get("subject"),
        "sender": mail.get("sender"),
        "case_id": mail.get("case_id"),
        "problems": mail.get("problems", []),
        "account_ids": resolution.get("account_ids", []),
        "category": decision.get("category"),
        "rule_id": decision.get("rule_id"),
        "action": decision.get("action"),
        "reason": decision.get("reason"),
        "authentic": decision.get("authentic", mail.get("authentic")),
        "deliveries": delivery.get("deliveries", []),
    }
    if decision.get("suggestion"):
        fields["suggestion"] = decision["suggestion"]
    # Written every time, so a retry that no longer alerts does not keep an earlier run's alert.
    fields["alert"] = bool(decision.get("alert"))
    fields["signals"] = list(decision.get("signals") or [])
    if "error" in event:
        fields["state"] = State.QUEUED.value
        fields["queue_reason"] = _error_text(event["error"])
    elif delivery.get("undelivered"):
        fields["state"] = State.QUEUED.value
        fields["queue_reason"] = "; ".join(
            f"{u['account_id']}: {u['reason']}" for u in delivery["undelivered"]
        )
    elif decision.get("action") in {a.value for a in Action}:
        fields["state"] = STATE_FOR_ACTION[Action(decision["action"])].value
        if fields["state"] == State.QUEUED:
            fields["queue_reason"] = decision.get("reason")
    else:
        fields["state"] = State.QUEUED.value
        fields["queue_reason"] = "no decision was made"
    return fields


def record_step(event: dict[str, Any], rt: Runtime) -> dict[str, Any]:
    fields = outcome(event)
    where = {
        "execution": event.get("execution"),
        "bucket": event.get("bucket"),
        "object_key": event.get("key"),
    }
    rt.ledger.record(event["mail_id"], {**fields, **where})
    return {"mail_id": event["mail_id"], **fields}


__all__ = [
    "Decision",
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

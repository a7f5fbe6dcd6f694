"""The delivery steps: the forward to each account's customer, the support-case ticket, the urgent ticket and
the operators' alerts. Each side effect is made at most once per delivery key, however often a step runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rootmail.app.payloads import (
    Classification,
    DeliveryOutcome,
    TriageState,
    Undelivered,
)
from rootmail.app.ports import PostedMessage, Services
from rootmail.app.triage.intake import load_mail
from rootmail.domain.accounts import Account, contact_kind
from rootmail.domain.alerts import (
    SHOW_WITHIN_MS,
    UPDATE_EVERY_MS,
    AlertBatch,
    Membership,
    batch_id,
    batch_kind,
    window_start,
)
from rootmail.domain.mail.model import ParsedMail, fit
from rootmail.domain.outcome import ACCOUNT_GONE, all_suppressed, no_contact
from rootmail.domain.pacing import SES, ZENDESK, ZENDESK_REQUESTS_PER_TICKET, Slot
from rootmail.domain.routing import Resolution
from rootmail.domain.vocabulary import Action
from rootmail.errors import (
    DeliveryInProgress,
    DeliveryRejected,
    DeliveryUnconfirmed,
    SlackMessageGone,
    SlackUnavailable,
)
from rootmail.messages.operators import rule_prompt
from rootmail.messages.render import (
    alert_headline,
    batched_alert,
    operator_alert,
    render_forward,
    ticket_comment,
    ticket_subject,
    urgent_comment,
)
from rootmail.observability import logger

# Step Functions refuses a state over 256 KB (and that error cannot be caught): every step's output is bounded
# (tests/test_state_limits.py adds the bounds up).
MAX_DELIVERY_FIELD_BYTES = 512


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
    accounts, undelivered = _delivered_accounts(rt, resolution)
    # Every account the notice lists or is delivered for: each customer sees only its own part of a shared notice.
    named = dict.fromkeys([*resolution.account_ids, *mail.listed_account_ids])
    suppressed = rt.suppressions.suppressed(c for a in accounts for c in a.contacts.of(kind))
    sends = []
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
        sends.append((account, rendered))
    # SES's send rate is the account's, shared by every forward running: each recipient's slot is reserved, in
    # order, and a slot further off is waited for in the state machine (which then runs this step again, with the
    # slot it holds).
    recipients = sum(len(rendered.to) for _, rendered in sends)
    if recipients and not event.holds_slot():
        slot = rt.pacer.reserve(SES, recipients, rt.settings.ses_send_rate, now_ms=rt.clock.now_ms())
        if not slot.due:
            return DeliveryOutcome(paced_until=slot.timestamp())
    deliveries = [
        _guarded(
            rt,
            f"{event.mail_id}#ses#{account.account_id}",
            event.execution,
            lambda r=rendered: {"message_id": rt.mailer.send(r.data, r.to)},
            {
                "channel": "ses",
                "recipient": fit(", ".join(rendered.to), MAX_DELIVERY_FIELD_BYTES),
                "account_id": account.account_id,
                "language": account.language,
                "subject": fit(rendered.subject, MAX_DELIVERY_FIELD_BYTES),
            },
        )
        for account, rendered in sends
    ]
    return DeliveryOutcome(deliveries=deliveries, undelivered=undelivered)


def _zendesk_slot(event: TriageState, rt: Services) -> DeliveryOutcome | None:
    """The Zendesk plan's API limit is shared by every ticket and urgent step running: a ticket's requests get a
    slot, and one further off is waited for in the state machine (None: go on now)."""
    if event.holds_slot():
        return None
    slot = rt.pacer.reserve(
        ZENDESK,
        ZENDESK_REQUESTS_PER_TICKET,
        rt.settings.zendesk_requests_per_minute / 60,
        now_ms=rt.clock.now_ms(),
    )
    return None if slot.due else DeliveryOutcome(paced_until=slot.timestamp())


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
    paced = _zendesk_slot(event, rt)
    if paced is not None:
        return paced
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
    paced = _zendesk_slot(event, rt)
    if paced is not None:
        return paced
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
    alert = _urgent_alert(rt, event, mail, resolution, decision, link=link)
    return DeliveryOutcome(deliveries=[ticket, alert], undelivered=[])


def alert_step(event: TriageState, rt: Services) -> DeliveryOutcome:
    resolution, decision, summary = event.resolved(), event.decision(), event.summary()
    signal = decision.alert and decision.action == Action.QUEUE
    headline = alert_headline(decision.action, decision.category, signal=signal, rule_id=decision.rule_id)
    # Its own alert: a rule that later restricts or quarantines the mail still tells the operators.
    key = "signal" if signal else "alert"
    now = rt.clock.now_ms()
    kind = batch_kind(headline, summary.sender, summary.subject)
    # Once per mail and alert, whatever re-runs it: a later run finds the batch it joined first.
    member = rt.alert_batches.join(
        batch_id(kind, now),
        f"{event.mail_id}#{key}",
        resolution.account_ids,
        poster=event.mail_id,
        now_ms=now,
    )
    delivery = {"channel": "slack", "recipient": rt.slack.channel, "batch": member.batch_id}
    settle_at, posted = _show_batch(rt, event, member, headline=headline, key=key, listing=signal)
    if settle_at is not None:
        return DeliveryOutcome(
            deliveries=[{**delivery, "status": "joined"}], undelivered=[], settle_at=settle_at
        )
    # Counted (and no settle_at at all: the Choice after the step asks whether it is present). The mail that posted
    # the message has it as its delivery; the others are counted in it.
    status = {"status": "sent", "ts": posted} if posted else {"status": "counted"}
    return DeliveryOutcome(deliveries=[{**delivery, **status}], undelivered=[])


def _show_batch(
    rt: Services, event: TriageState, member: Membership, *, headline: str, key: str, listing: bool
) -> tuple[str | None, str | None]:
    """Make the batch's message count this mail: post it, or update it, when it is this mail's turn. Returns the
    moment to look again (the state machine waits until then; None: counted) and the ts of the message this run
    posted, if it did."""
    now = rt.clock.now_ms()
    batch = rt.alert_batches.get(member.batch_id)
    if batch is None:
        raise DeliveryRejected(f"alert batch {member.batch_id} is gone")
    if batch.shows(member.position):
        return None, None
    if now - member.joined_ms > SHOW_WITHIN_MS:
        raise SlackUnavailable(
            f"the operators' message for '{headline}' does not count this mail {SHOW_WITHIN_MS // 60_000} minutes "
            "after it joined it: Slack refused or failed every post and update meanwhile"
        )
    if batch.ts is None:
        if rt.alert_batches.claim_post(batch.batch_id, event.mail_id, now_ms=now):
            posted = _post_batch(rt, event, batch, headline=headline, key=key, listing=listing)
            if posted:
                return None, posted  # posted with the count read after this mail joined
        return _moment(now + UPDATE_EVERY_MS), None
    if not rt.alert_batches.take_turn(batch.batch_id, event.mail_id, now_ms=now):
        return _moment(max(batch.next_update_ms, now + 1_000)), None
    batch = rt.alert_batches.get(batch.batch_id) or batch  # the count as it is now, read in its turn
    assert batch.ts is not None and batch.channel is not None
    text, blocks = _batch_message(rt, batch, headline=headline, listing=listing)
    try:
        rt.slack.update(PostedMessage(channel=batch.channel, ts=batch.ts), text, blocks)
    except SlackMessageGone:
        # Deleted in Slack: this mail posts a new message, with the count so far, on its next run.
        rt.alert_batches.message_gone(batch.batch_id, batch.ts, event.mail_id, now_ms=now)
        return _moment(now + 1_000), None
    except Exception:
        rt.alert_batches.end_turn(batch.batch_id, event.mail_id, shown=None, next_ms=now)
        raise
    rt.alert_batches.end_turn(
        batch.batch_id, event.mail_id, shown=batch.count, next_ms=rt.clock.now_ms() + UPDATE_EVERY_MS
    )
    return None, None  # the count read in this turn holds every mail that joined before it


def _post_batch(
    rt: Services, event: TriageState, batch: AlertBatch, *, headline: str, key: str, listing: bool
) -> str | None:
    """Post the batch's message: its base is the first poster's own alert (this mail's, if it has none yet). The
    message's ts; None: not posted now (another run of this mail holds the post), or another message was recorded
    first."""
    if rt.alert_batches.message(batch.batch_id) is None:
        rt.alert_batches.save_message(batch.batch_id, *_own_alert(rt, event, headline=headline, key=key))
    text, blocks = _batch_message(rt, batch, headline=headline, listing=listing)

    def post() -> dict[str, Any]:
        message = rt.slack.post_message(text, blocks)
        return {"channel_id": message.channel, "ts": message.ts}

    try:
        # Each poster posts each of the batch's messages (a deleted one's successor is the next generation) once: a
        # post that stopped between posting and recording it is recorded by its retry, never posted again.
        proof = _guarded(
            rt,
            f"{batch.batch_id}#post{batch.generation}#{event.mail_id}",
            event.execution,
            post,
            {"channel": "slack"},
        )
    except DeliveryInProgress:
        return None
    if rt.alert_batches.posted(
        batch.batch_id, event.mail_id, channel=proof["channel_id"], ts=proof["ts"], shown=batch.count
    ):
        return str(proof["ts"])
    logger.warning("alert batch posted twice", extra={"batch": batch.batch_id, "ts": proof["ts"]})
    return None


def _own_alert(
    rt: Services, event: TriageState, *, headline: str, key: str
) -> tuple[str, list[dict[str, Any]]]:
    _, mail = load_mail(rt, event.key)
    resolution, decision, summary = event.resolved(), event.decision(), event.summary()
    extra: list[dict[str, Any]] = []
    # Mail no rule knows gets the button that makes a rule of its pattern; mail a rule took (held for its urgent
    # words) is no such pattern: the operators act on the mail itself.
    if key == "signal" and not decision.rule_id:
        extra = rule_prompt(
            subject=summary.subject or mail.subject,
            sender=summary.sender or mail.sender,
            signals=decision.signals,
            suggestion=decision.suggestion,
            language=rt.settings.operator_language,
        )
    text, blocks = _operator_alert(event, mail, resolution, decision, headline=headline)
    return text, blocks + extra


def _batch_message(
    rt: Services, batch: AlertBatch, *, headline: str, listing: bool
) -> tuple[str, list[dict[str, Any]]]:
    """The batch's message: its first mail's alert, and once others joined, the count and the accounts above it."""
    text, blocks = rt.alert_batches.message(batch.batch_id) or (headline, [])
    if batch.count <= 1 and blocks:
        return text, blocks
    return batched_alert(
        text,
        blocks,
        count=batch.count,
        accounts=batch.accounts,
        since=window_start(batch.opened_ms),
        listing=listing,
    )


def _moment(moment_ms: int) -> str:
    return Slot(moment_ms, moment_ms).timestamp()


def _urgent_alert(
    rt: Services,
    event: TriageState,
    mail: ParsedMail,
    resolution: Resolution,
    decision: Classification,
    *,
    link: str | None,
) -> dict[str, Any]:
    """An urgent mail's alert: a message of its own, with its ticket's link, posted once."""
    text, blocks = _operator_alert(event, mail, resolution, decision, headline="Urgent AWS notice", link=link)
    return _guarded(
        rt,
        f"{event.mail_id}#slack#alert",
        event.execution,
        lambda: {"ts": rt.slack.post(text, blocks)},
        {"channel": "slack", "recipient": rt.slack.channel},
    )


def _operator_alert(
    event: TriageState,
    mail: ParsedMail,
    resolution: Resolution,
    decision: Classification,
    *,
    headline: str,
    link: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    return operator_alert(
        headline=headline,
        mail=mail,
        account_ids=resolution.account_ids,
        category=decision.category,
        action=decision.action,
        mail_id=event.mail_id,
        reason=decision.reason,
        link=link,
    )


def _requester(accounts: Iterable[Account], kind: str) -> tuple[Account | None, str | None]:
    """A ticket's requester, and its account: the first contact of the mail's kind (Zendesk notifies it)."""
    return next(((a, c) for a in accounts for c in a.contacts.of(kind)), (None, None))

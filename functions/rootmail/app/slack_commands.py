"""What the operators do in Slack: read the hourly digest, ask `/rootmail` about the queue, create a rule from a
pattern, and retry queued mail through the retry workflow. Each function takes the container's runtime and a
request already verified and authorised by the web layer (rootmail/entrypoints/slack_app.py)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rootmail.app.payloads import (
    Retriaged,
    RetriageItem,
    RetryItem,
    RetryMark,
    RetryRun,
    RetrySelected,
    TriageState,
)
from rootmail.app.ports import Services
from rootmail.domain.commands import Command, parse_command
from rootmail.domain.digest import Pattern, find_pattern, group_queue, mask
from rootmail.domain.executions import execution_name
from rootmail.domain.moments import now_iso
from rootmail.domain.rules.model import compile_rule
from rootmail.domain.rules.sets import compile_rules
from rootmail.domain.vocabulary import IN_FLIGHT, State
from rootmail.errors import CommandError, RootmailError, RuleError, SlackRejected, SlackUnavailable
from rootmail.messages.blocks import CREATE_RULE, RETRY_PATTERN, RULE_MODAL
from rootmail.messages.operator_texts import texts
from rootmail.messages.operators import (
    digest_message,
    help_reply,
    mail_detail,
    queue_page,
    refusal,
    retry_outcome,
    retry_started,
)
from rootmail.messages.rule_modal import rule_from_modal, rule_modal, rule_saved
from rootmail.observability import logger


@dataclass(frozen=True)
class SlackRequest:
    """Who asked, where, and how to answer: from a request whose signature was verified."""

    user_id: str
    channel_id: str
    signature: str
    response_url: str | None = None
    trigger_id: str | None = None

    @property
    def who(self) -> str:
        return f"<@{self.user_id}>"


def queued_mail(rt: Services) -> list[dict[str, Any]]:
    """Every queued ledger record, the most recently updated first."""
    return list(rt.ledger.in_state(State.QUEUED))


def current_patterns(rt: Services) -> list[Pattern]:
    return group_queue(queued_mail(rt))


# ---- the hourly digest --------------------------------------------------------------------------------------------


def digest(rt: Services, *, post: bool) -> dict[str, Any]:
    """Group the queue into patterns and (when `post`) post the digest to the operators' channel."""
    patterns = current_patterns(rt)
    now = now_iso()
    text, blocks = digest_message(patterns, language=rt.settings.operator_language, now=now)
    result: dict[str, Any] = {
        "at": now,
        "queued": sum(p.count for p in patterns),
        "patterns": [p.to_dict() for p in patterns],
        "text": text,
        "blocks": blocks,
    }
    if post:
        result["ts"] = rt.slack.post(text, blocks)
    return result


def hourly_digest(rt: Services) -> dict[str, Any]:
    """The scheduled digest: posted, and answered with counts (the blocks are in the channel)."""
    result = digest(rt, post=True)
    logger.info("digest posted", extra={"queued": result["queued"], "patterns": len(result["patterns"])})
    return {
        "at": result["at"],
        "queued": result["queued"],
        "patterns": len(result["patterns"]),
        "ts": result["ts"],
    }


# ---- /rootmail ----------------------------------------------------------------------------------------------------


def answer_command(rt: Services, text: str, request: SlackRequest) -> dict[str, Any]:
    language = rt.settings.operator_language
    try:
        command = parse_command(text)
    except CommandError as exc:
        return refusal(f"{exc}. `/rootmail help` lists what I understand.", language)
    if command.changes_something and not _first_time(rt, request, f"/rootmail {text}"):
        return refusal("this request was already handled (a replayed request changes nothing)", language)
    logger.info("slash command", extra={"command": command.name, "user": request.user_id})
    if command.name == "help":
        return help_reply(language)
    if command.name == "list":
        return _list(rt, command, language)
    if command.name == "show":
        return mail_detail(rt.ledger.get(command.mail_ids[0]), command.mail_ids[0], language)
    selection: dict[str, Any] = {}
    if command.pattern:
        selection["pattern"] = command.pattern
    elif command.mail_ids:
        selection["mail_ids"] = list(command.mail_ids)
    start_retry(rt, selection, request)
    return retry_started(selection, request.who, language)


def _first_time(rt: Services, request: SlackRequest, what: str) -> bool:
    """A request that changes something is done once: its signature is remembered past Slack's window."""
    if rt.slack_requests.first_time(request.signature, what[:200]):
        return True
    logger.warning("replayed Slack request refused", extra={"user": request.user_id, "what": what[:200]})
    return False


def _list(rt: Services, command: Command, language: str) -> dict[str, Any]:
    records = queued_mail(rt)
    if command.pattern:
        found = find_pattern(group_queue(records), command.pattern)
        wanted = set(found.mail_ids) if found else set()
        records = [r for r in records if r["mail_id"] in wanted]
    size = rt.settings.queue_page_size
    pages = max(1, -(-len(records) // size))
    page = min(command.page, pages)
    return queue_page(
        records[(page - 1) * size : page * size],
        page=page,
        per_page=size,
        total=len(records),
        language=language,
        pattern=command.pattern,
    )


def start_retry(rt: Services, selection: dict[str, Any], request: SlackRequest) -> str:
    """Start the retry workflow; its name comes from the request, so the same request never starts two."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    run = f"retry-{stamp}-{hashlib.sha256(request.signature.encode()).hexdigest()[:16]}"
    payload = {
        "run": run,
        "selection": selection,
        "requested_by": request.user_id,
        "channel": request.channel_id,
        "response_url": request.response_url,
    }
    rt.retries.start(run, payload)
    logger.info("retry started", extra={"run": run, "selection": selection, "user": request.user_id})
    return run


# ---- buttons and the rule modal ---------------------------------------------------------------------------------


def answer_interaction(rt: Services, payload: dict[str, Any], request: SlackRequest) -> dict[str, Any] | None:
    """A digest button or the rule modal's submission. None: an empty 200 (Slack closes the modal)."""
    language = rt.settings.operator_language
    kind = payload.get("type")
    if kind == "block_actions":
        action = (payload.get("actions") or [{}])[0]
        if action.get("action_id") == CREATE_RULE:
            reference = json.loads(action.get("value") or "{}")
            view = rule_modal(reference, channel=request.channel_id, language=language)
            rt.slack.open_view(str(payload.get("trigger_id")), view)
            return None
        if action.get("action_id") == RETRY_PATTERN:
            pattern = str(action.get("value") or "")
            if not _first_time(rt, request, f"retry pattern {pattern}"):
                tell_refusal(
                    rt, request, "this request was already handled (a replayed request changes nothing)"
                )
                return None
            selection = {"pattern": pattern}
            start_retry(rt, selection, request)
            _tell(rt, request, retry_started(selection, request.who, language)["text"])
            return None
        return None
    if kind == "view_submission" and (payload.get("view") or {}).get("callback_id") == RULE_MODAL:
        return _save_rule(rt, payload, request, language)
    return None


def _save_rule(
    rt: Services, payload: dict[str, Any], request: SlackRequest, language: str
) -> dict[str, Any] | None:
    view = payload["view"]
    metadata = json.loads(view.get("private_metadata") or "{}")
    data = rule_from_modal((view.get("state") or {}).get("values") or {})
    try:
        rule = compile_rule(data, "slack").to_item()
        # With the live rules, as a set: no tie with a rule that can take the same mail, no twin.
        live = [(r, "live") for r in rt.rules_table.load() if r.get("id") != rule["id"]]
        compile_rules([*live, (rule, "this rule")])
    except RuleError as exc:
        return {"response_action": "errors", "errors": {_field_of(str(exc)): str(exc)[:150]}}
    if not _first_time(rt, request, f"rule {rule['id']}"):
        return None
    pattern = str(metadata.get("pattern") or "")
    why = f"{data.get('description')} (from digest pattern {pattern}, in Slack)"
    if not rt.rules_table.create(rule, by=request.user_id, why=why):
        return {"response_action": "errors", "errors": {"rule_id": texts(language)["rule_exists"]}}
    logger.info("rule created in Slack", extra={"rule": rule["id"], "user": request.user_id})
    found = find_pattern(current_patterns(rt), pattern) if pattern else None
    try:
        effect = _preview_pattern(rt, found, rule) if found else None
    except RootmailError as exc:  # the rule is saved: say so without the preview rather than fail
        logger.warning("rule preview failed", extra={"rule": rule["id"], "error": str(exc)})
        effect = None
    text, blocks = rule_saved(
        rule,
        who=request.who,
        pattern=pattern,
        count=found.count if found else 0,
        language=language,
        effect=effect,
    )
    rt.slack.post(text, blocks, channel=metadata.get("channel") or None)
    return None


PREVIEW_MAILS = 20  # a modal's submission is answered within 3 seconds: a sample of the pattern's mail


def _preview_pattern(rt: Services, pattern: Pattern, rule: dict[str, Any]) -> dict[str, Any]:
    """What the rules now in force (the new rule included) do to the pattern's queued mail: the preview engine of
    `rootmail rules test`, on up to PREVIEW_MAILS of them."""
    from rootmail.app import rules_preview
    from rootmail.domain.preview import preview

    rules = rt.rules(fresh=True)
    sample = pattern.mail_ids[:PREVIEW_MAILS]
    result = preview(rules_preview.queued(rt, sample), rules, rules, rt.settings.aws_sender_domains)
    actions = Counter(str(d.action) for d in result.outcomes.values())
    return {"sampled": result.mails, "taken": result.taken.get(rule["id"], 0), "actions": dict(actions)}


def _field_of(message: str) -> str:
    """The modal field a rule error is about (the error names it), so Slack shows it under that field."""
    for needle, block in (
        ("`id`", "rule_id"),
        ("category", "category"),
        ("action", "action"),
        ("priority", "priority"),
        ("senders", "sender"),
    ):
        if needle in message:
            return block
    return "subject"


def _answer_where_asked(
    rt: Services,
    response_url: str | None,
    channel: str | None,
    text: str,
    blocks: list[dict[str, Any]] | None = None,
    *,
    ephemeral: bool = False,
) -> str | None:
    """Through the request's response_url; once that is refused (expired after 30 minutes or 5 uses, or not
    Slack's), in the channel, unless the answer is for the operator alone. Where it went; Slack errors raise."""
    if response_url:
        try:
            rt.slack.respond(response_url, text, blocks, ephemeral=ephemeral)
            return "response_url"
        except SlackRejected as exc:
            logger.warning("response_url refused", extra={"error": str(exc)})
    if ephemeral:
        return None
    return rt.slack.post(text, blocks, channel=channel or None)


def _tell(rt: Services, request: SlackRequest, text: str, *, ephemeral: bool = False) -> None:
    """Answer where the operator asked. Never raises: what it says has already happened (a retry started), and a
    failure to say it must not make the operator try again."""
    try:
        _answer_where_asked(rt, request.response_url, request.channel_id, text, ephemeral=ephemeral)
    except (SlackRejected, SlackUnavailable) as exc:
        logger.warning("could not tell the operator", extra={"error": str(exc)})


def tell_refusal(rt: Services, request: SlackRequest, reason: str) -> None:
    """A refused button click: Slack shows nothing of the acknowledgement, so say it to the operator alone."""
    _tell(rt, request, texts(rt.settings.operator_language)["refused"].format(reason=reason), ephemeral=True)


# ---- the retry workflow's steps ----------------------------------------------------------------------------------


def select_step(event: RetryRun, rt: Services) -> RetrySelected:
    """SelectQueued: the queued mails the operator asked for, at most `retry_batch_limit` of them."""
    selection = event.selection
    skipped: list[str] = []
    if selection.mail_ids:
        records = []
        for mail_id in selection.mail_ids:
            record = rt.ledger.get(mail_id)
            if record is None:
                skipped.append(f"{mail_id} (not in the ledger)")
            elif record.get("state") != State.QUEUED:
                skipped.append(f"{mail_id} ({record.get('state')})")
            else:
                records.append(record)
    elif selection.pattern:
        queue = list(rt.ledger.in_state(State.QUEUED, oldest_first=True))
        found = find_pattern(group_queue(queue), selection.pattern)
        if found is None:
            skipped.append(f"pattern {selection.pattern} (no queued mail has it now)")
        wanted = set(found.mail_ids) if found else set()
        records = [r for r in queue if r["mail_id"] in wanted]
    else:
        # The longest-waiting first: a mail retried and still queued is updated, so it goes to the back.
        records = list(rt.ledger.in_state(State.QUEUED, oldest_first=True))
    limit = rt.settings.retry_batch_limit
    items = []
    for record in records[:limit]:
        if not record.get("object_key") or not record.get("bucket"):
            skipped.append(f"{record['mail_id']} (no stored mail recorded)")
            continue
        items.append(RetryItem(mail_id=record["mail_id"], bucket=record["bucket"], key=record["object_key"]))
    return RetrySelected(
        items=items,
        count=len(items),
        remaining=max(0, len(records) - limit),
        skipped=skipped[:20],
        poll_seconds=rt.settings.retry_poll_seconds,
    )


def retriage_step(event: RetriageItem, rt: Services) -> Retriaged:
    """Retriage (one queued mail): start its triage again under this run's name (a no-op when started) and say
    whether to keep waiting for it."""
    name = execution_name(event.key, event.run)
    started = TriageState(
        bucket=event.bucket,
        key=event.key,
        mail_id=event.mail_id,
        execution=name,
        retry=RetryMark(run=event.run),
    )
    rt.starter.start(name, started.model_dump(mode="json", exclude_none=True))
    status = rt.starter.status(name)
    polls = (event.triage.polls if event.triage else 0) + 1
    first = event.poll_seconds or rt.settings.retry_poll_seconds
    return Retriaged(
        execution=name,
        status=status,
        polls=polls,
        waiting=status == "RUNNING" and polls < rt.settings.retry_max_polls,
        # The WaitForTriage state's wait: doubling from poll_seconds to a minute (a triage waiting for an
        # accounts refresh takes minutes; most take seconds).
        wait_seconds=min(60, first * 2 ** min(polls - 1, 6)),
    )


def report_step(event: RetryRun, rt: Services) -> dict[str, Any]:
    """ReportRetry: what became of each retried mail, posted where the operator asked (once per run)."""
    selected = event.selected
    # A mail whose re-run did not finish (not started, failed, still running when the waiting stopped) is counted
    # apart: its ledger record still says what the earlier run left.
    finished = {r.mail_id for r in event.retried if r.status == "SUCCEEDED"}
    records = [rt.ledger.get(i.mail_id) for i in selected.items if i.mail_id in finished]
    done = [r for r in records if r and r.get("state") not in (None, IN_FLIGHT)]
    states = Counter(str(r["state"]) for r in done)
    reasons = Counter(mask(str(r.get("queue_reason") or "")) for r in done if r["state"] == State.QUEUED)
    language = rt.settings.operator_language
    text, blocks = retry_outcome(
        selection=event.selection.model_dump(exclude_defaults=True),
        who=f"<@{event.requested_by}>",
        states=dict(states),
        reasons=reasons.most_common(),
        unfinished=len(selected.items) - len(done),
        skipped=selected.skipped,
        remaining=selected.remaining,
        language=language,
    )
    outcome = {"run": event.run, "states": dict(states), "unfinished": len(selected.items) - len(done)}
    delivery = f"{event.run}#slack#report"
    if rt.guard.claim(delivery, event.run, resend_safe=True):  # a report posted twice is harmless
        rt.guard.sending(delivery, event.run)
        try:
            where = _answer_where_asked(rt, event.response_url, event.channel, text, blocks)
        except Exception as exc:
            rt.guard.settle(delivery, "failed", {"error": f"{type(exc).__name__}: {exc}"})
            raise
        rt.guard.settle(delivery, "sent", {"where": where})
    logger.info("retry done", extra=outcome)
    return {**outcome, "text": text}

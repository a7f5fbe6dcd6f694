"""What the operators read in Slack (and in the terminal): the hourly digest, the slash command's replies and the
retry outcome, in the operators' language (English or Japanese; the words are in operator_texts.py, the rule modal in
rule_modal.py).

Pure: Block Kit as plain dicts. Every piece of mail text is escaped (`<!channel>` stays inert) and shortened so a
message reads on a phone and stays inside Slack's limits (50 blocks, 3,000 characters a text).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rootmail.domain.digest import Pattern, mask, pattern_id
from rootmail.domain.mail.model import subject_may_be_cut
from rootmail.messages.blocks import (
    CREATE_RULE,
    MAX_TEXT,
    RETRY_PATTERN,
    button,
    context,
    inline,
    section,
    short,
    when,
)
from rootmail.messages.operator_texts import texts
from rootmail.messages.render import mrkdwn

PATTERNS_SHOWN = 7  # per section, more when the other has fewer; `rootmail digest` prints them all

MAX_REFERENCE_TEXT = 300


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """Text shortened at a word boundary (never inside a placeholder); whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit].rsplit(" ", 1)[0], True


def pattern_reference(pattern: Pattern) -> str:
    """What a digest button carries back (Slack signs it; at most 2,000 characters): enough to prefill the rule
    modal without a lookup. Each field is capped, never the JSON itself."""
    text, cut = _cut(pattern.pattern, MAX_REFERENCE_TEXT)
    # The ledger keeps a start of a subject too long for its budget, and "…": the rule is then for that start.
    ledger_cut = pattern.kind == "unclassified" and subject_may_be_cut(pattern.sample_subject)
    if ledger_cut:
        text = text.removesuffix("…")
    return json.dumps(
        {
            "id": pattern.id,
            "kind": pattern.kind,
            "sender": (pattern.sender or "")[:254] or None,
            "pattern": text,
            # The subject regex takes the whole subject unless the pattern (or the ledger's subject) was cut.
            "whole": not cut and not ledger_cut,
            "count": pattern.count,
            "sample": _cut(pattern.sample_subject, MAX_REFERENCE_TEXT)[0],
            "suggested": (pattern.suggestion or {}).get("category"),
            "why": _cut((pattern.suggestion or {}).get("why") or "", MAX_REFERENCE_TEXT)[0],
        },
        ensure_ascii=False,
    )


# ---- the digest -------------------------------------------------------------------------------------------------


def digest_message(
    patterns: Sequence[Pattern], *, language: str, now: str, limit: int = PATTERNS_SHOWN
) -> tuple[str, list[dict[str, Any]]]:
    """The hourly digest as (fallback text, blocks): unclassified patterns with their buttons, then the reasons
    deliveries failed; a short "all processed" when nothing is queued."""
    t = texts(language)
    unclassified = [p for p in patterns if p.kind == "unclassified"]
    failed = [p for p in patterns if p.kind == "failed"]
    title = t["digest_title"].format(now=when(now))
    if not patterns:
        return f"{title}: {t['all_processed']}", [section(f"*{title}*\n{t['all_processed']}")]
    shown = _share(limit, len(unclassified), len(failed))
    summary = t["digest_summary"].format(
        queued=sum(p.count for p in patterns),
        unclassified=sum(p.count for p in unclassified),
        patterns=len(unclassified),
        failed=sum(p.count for p in failed),
        reasons=len(failed),
    )
    alerted = sum(p.alerted for p in patterns)
    if alerted:
        summary += " " + t["digest_alerted"].format(count=alerted)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        section(summary),
    ]
    for (heading, none, group), count in zip(
        (
            ("unclassified_heading", "unclassified_none", unclassified),
            ("failed_heading", "failed_none", failed),
        ),
        shown,
        strict=True,
    ):
        blocks.append({"type": "divider"})
        if not group:
            blocks.append(context(t[none]))
            continue
        blocks.append(section(t[heading]))
        for pattern in group[:count]:
            blocks.extend(_pattern_blocks(pattern, t))
        if len(group) > count:
            blocks.append(context(t["more_patterns"].format(more=len(group) - count)))
    return f"{title}: {summary}", blocks


def _share(limit: int, unclassified: int, failed: int) -> tuple[int, int]:
    """How many patterns of each kind a message shows: 3 blocks each, 14 in all (a header, a summary and each
    section's divider, heading and "more" line leave 36 of Slack's 50 blocks), what one kind leaves to the other."""
    budget = min(2 * limit, 14)
    first = min(unclassified, max(budget // 2, budget - failed))
    return first, min(failed, budget - first)


def _pattern_blocks(pattern: Pattern, t: dict[str, str]) -> list[dict[str, Any]]:
    if pattern.kind == "unclassified":
        head = t["pattern_line"].format(
            count=pattern.count,
            accounts=len(pattern.accounts),
            sender=inline(pattern.sender or t["no_sender"], 80),
        )
    else:
        head = t["reason_line"].format(count=pattern.count, accounts=len(pattern.accounts))
    lines = [
        head,
        f"`{inline(pattern.pattern, 200)}`",
        t["sample"].format(subject=inline(pattern.sample_subject, 120)),
        *_suggestion_lines(pattern, t),
    ]
    reference = pattern_reference(pattern)
    buttons = [button(t["retry_these"], RETRY_PATTERN, pattern.id)]
    if pattern.kind == "unclassified":
        buttons.insert(0, button(t["create_rule"], CREATE_RULE, reference, primary=True))
    return [
        section("\n".join(lines)),
        context(
            t["seen"].format(first=when(pattern.first_seen), last=when(pattern.last_seen))
            + " · "
            + t["see_mails"].format(id=pattern.id)
        ),
        {"type": "actions", "block_id": f"pattern-{pattern.id}", "elements": buttons},
    ]


def _suggestion_lines(pattern: Pattern, t: dict[str, str]) -> list[str]:
    lines = []
    if pattern.kind == "unclassified" and pattern.suggestion:
        lines.append(
            t["suggested_short"].format(
                category=mrkdwn(pattern.suggestion["category"]), why=inline(pattern.suggestion["why"], 120)
            )
        )
    if pattern.alerted:
        lines.append(t["alerted"].format(count=pattern.alerted, words=inline(", ".join(pattern.signals), 80)))
    return lines


def rule_prompt(
    *,
    subject: str,
    sender: str | None,
    signals: Sequence[str],
    suggestion: dict[str, str] | None,
    language: str,
) -> list[dict[str, Any]]:
    """The blocks an alert about queued mail with urgent words ends with: the words, the suggested category, and a
    button that opens the rule modal for the mail's digest pattern, filled in."""
    t = texts(language)
    masked = mask(subject)
    pattern = Pattern(
        pattern_id("unclassified", sender or "", masked),
        "unclassified",
        sender,
        masked,
        count=1,
        sample_subject=subject,
        suggestion=suggestion,
    )
    lines = [t["signal_words"].format(words=inline(", ".join(signals), 120))]
    if suggestion:
        lines.append(
            t["suggested"].format(
                category=mrkdwn(suggestion["category"]), why=inline(suggestion.get("why") or "", 150)
            )
        )
    create = button(t["create_rule"], CREATE_RULE, pattern_reference(pattern), primary=True)
    return [
        section("\n".join(lines)),
        {"type": "actions", "block_id": f"signal-{pattern.id}", "elements": [create]},
    ]


def digest_text(patterns: Sequence[Pattern], *, language: str, now: str) -> str:
    """The same digest for a terminal: every pattern, with its mail IDs."""
    t = texts(language)
    title = t["digest_title"].format(now=when(now))
    if not patterns:
        return f"{title}\n{t['all_processed']}"
    unclassified = [p for p in patterns if p.kind == "unclassified"]
    failed = [p for p in patterns if p.kind == "failed"]
    lines = [
        title,
        t["digest_summary"].format(
            queued=sum(p.count for p in patterns),
            unclassified=sum(p.count for p in unclassified),
            patterns=len(unclassified),
            failed=sum(p.count for p in failed),
            reasons=len(failed),
        ),
    ]
    for heading, none, group in (
        ("unclassified_heading", "unclassified_none", unclassified),
        ("failed_heading", "failed_none", failed),
    ):
        lines.append("")
        lines.append(t[heading].replace("*", "") if group else t[none])
        for p in group:
            lines.append(
                f"  [{p.id}] {p.count} · {len(p.accounts)} acct · {p.sender or '-'} · {short(p.pattern, 200)}"
            )
            lines.append(
                f"      {t['seen'].format(first=when(p.first_seen), last=when(p.last_seen))}"
                f" · {t['sample'].format(subject=short(p.sample_subject, 120))}"
            )
            lines.extend(f"      {line.replace('*', '')}" for line in _suggestion_lines(p, t))
            ids = ", ".join(p.mail_ids[:5]) + (f" (+{len(p.mail_ids) - 5})" if len(p.mail_ids) > 5 else "")
            lines.append(f"      {ids}")
    return "\n".join(lines)


# ---- slash command replies ------------------------------------------------------------------------------------


def reply(text: str, *, public: bool = False, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A slash command's immediate answer: ephemeral (only the operator sees it) unless public."""
    answer: dict[str, Any] = {"response_type": "in_channel" if public else "ephemeral", "text": text}
    if blocks:
        answer["blocks"] = blocks
    return answer


def help_reply(language: str) -> dict[str, Any]:
    return reply(texts(language)["help"])


def refusal(reason: str, language: str) -> dict[str, Any]:
    return reply(texts(language)["refused"].format(reason=reason))


def queue_page(
    records: Sequence[dict[str, Any]],
    *,
    page: int,
    per_page: int,
    total: int,
    language: str,
    pattern: str | None = None,
) -> dict[str, Any]:
    t = texts(language)
    scope = t["list_scope"].format(pattern=pattern) if pattern else ""
    if not total:
        return reply(t["list_empty"].format(scope=scope))
    pages = max(1, -(-total // per_page))
    lines = [f"*{t['list_title'].format(scope=scope, page=page, pages=pages, total=total)}*"]
    for record in records:
        lines.append(
            t["list_line"].format(
                id=record["mail_id"],
                at=when(record.get("received_at")),
                sender=inline(record.get("sender") or t["no_sender"], 80),
                subject=inline(record.get("subject") or "", 120),
                reason=inline(record.get("queue_reason") or "", 160),
            )
        )
    if page < pages:
        lines.append(t["list_next"].format(args=" ".join(filter(None, (pattern, str(page + 1))))))
    blocks, chunk = [], ""
    for line in lines:  # one section per ~3,000 characters
        if len(chunk) + len(line) + 2 > MAX_TEXT:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n\n{line}" if chunk else line
    blocks.append(section(chunk))
    return reply(lines[0].strip("*"), blocks=blocks)


def mail_detail(record: dict[str, Any] | None, mail_id: str, language: str) -> dict[str, Any]:
    t = texts(language)
    if record is None:
        return reply(t["show_missing"].format(id=inline(mail_id, 200)))
    reason = record.get("queue_reason") if record.get("state") == "queued" else record.get("reason")
    text = t["show"].format(
        subject=inline(record.get("subject") or "", 200),
        sender=inline(record.get("sender") or t["no_sender"], 120),
        at=when(record.get("received_at")),
        state=record.get("state", "-"),
        reason=t["show_reason"].format(reason=inline(reason, 500)) if reason else "",
        category=record.get("category") or "-",
        action=record.get("action") or "-",
        accounts=", ".join(record.get("account_ids") or []) or "-",
        id=record["mail_id"],
        attempts=record.get("attempts", 1),
    )
    return reply(text.splitlines()[0].strip("*"), blocks=[section(text)])


# ---- retries ------------------------------------------------------------------------------------------------------


def retry_scope(selection: dict[str, Any], language: str) -> str:
    t = texts(language)
    if selection.get("pattern"):
        return t["retry_pattern"].format(pattern=selection["pattern"])
    if selection.get("mail_ids"):
        return t["retry_ids"].format(count=len(selection["mail_ids"]))
    return t["retry_all"]


def retry_started(selection: dict[str, Any], who: str, language: str) -> dict[str, Any]:
    text = texts(language)["retry_started"].format(who=who, what=retry_scope(selection, language))
    return reply(text, public=True)


def retry_outcome(
    *,
    selection: dict[str, Any],
    who: str,
    states: dict[str, int],
    reasons: Sequence[tuple[str, int]],
    unfinished: int,
    skipped: Sequence[str],
    remaining: int,
    language: str,
) -> tuple[str, list[dict[str, Any]]]:
    """The message posted when a retry is done: how many now forwarded, ticketed, ignored, still queued, and why."""
    t = texts(language)
    what = retry_scope(selection, language)
    total = sum(states.values()) + unfinished
    skipped_text = t["retry_skipped"].format(skipped=inline(", ".join(skipped), 500)) if skipped else ""
    if not total:
        text = t["retry_nothing"].format(what=what, who=who, skipped=" " + skipped_text if skipped else "")
        return text, [section(text)]
    head = t["retry_outcome"].format(what=what, who=who, total=total)
    counts = t["retry_counts"].format(
        **{s: states.get(s, 0) for s in ("forwarded", "ticketed", "escalated", "restricted", "quarantined")},
        ignored=states.get("ignored", 0),
        queued=states.get("queued", 0),
    )
    blocks = [section(f"{head}\n{counts}")]
    if reasons:
        why = "\n".join(f"• {count} × {inline(reason, 200)}" for reason, count in reasons[:10])
        blocks.append(section(f"{t['retry_why']}\n{why}"))
    extra = [
        t["retry_unfinished"].format(count=unfinished) if unfinished else "",
        skipped_text,
        t["retry_remaining"].format(count=remaining) if remaining else "",
    ]
    if any(extra):
        blocks.append(context(" ".join(e for e in extra if e)))
    return f"{head} {counts}".replace("*", ""), blocks

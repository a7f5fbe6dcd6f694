"""What the operators read in Slack (and in the terminal): the hourly digest, the slash command's replies, the rule
modal and the retry outcome, in the operators' language (English or Japanese).

Pure: Block Kit as plain dicts. Every piece of mail text is escaped (`<!channel>` stays inert) and shortened so a
message reads on a phone and stays inside Slack's limits (50 blocks, 3,000 characters a text).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from rootmail.domain.digest import Pattern, mask, pattern_id, subject_regex
from rootmail.domain.signals import SUGGESTED_ACTION
from rootmail.domain.vocabulary import Action, Category
from rootmail.messages.render import mrkdwn

PATTERNS_SHOWN = 7  # per section, more when the other has fewer; `rootmail digest` prints them all
MAX_TEXT = 2900
# Interactivity: what the digest's buttons and the rule modal are called.
CREATE_RULE = "rule_from_pattern"
RETRY_PATTERN = "retry_pattern"
RULE_MODAL = "rule_from_pattern"

_TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "digest_title": "rootmail digest · {now}",
        "digest_summary": "{queued} mail(s) queued: {unclassified} unclassified in {patterns} pattern(s), "
        "{failed} for another reason in {reasons} reason(s).",
        "all_processed": "All processed: no mail is queued.",
        "unclassified_heading": "*Unclassified mail* (no rule knows these)",
        "failed_heading": "*Queued for another reason* (a delivery failed, no known account, a queue rule)",
        "unclassified_none": "Unclassified mail: all processed.",
        "failed_none": "Queued for another reason: all processed.",
        "pattern_line": "*{count} mail(s)* · {accounts} account(s) · {sender}",
        "reason_line": "*{count} mail(s)* · {accounts} account(s)",
        "seen": "first {first} · last {last}",
        "sample": "e.g. “{subject}”",
        "see_mails": "Pattern `{id}` · see the mails: `/rootmail list {id}`",
        "more_patterns": "…and {more} more pattern(s): `rootmail digest` prints them all.",
        "create_rule": "Create a rule",
        "retry_these": "Retry these",
        "no_sender": "(no sender)",
        "help": "*/rootmail* — the queue of mail waiting for a retry\n"
        "• `/rootmail list [PATTERN] [PAGE]` — queued mail, newest first\n"
        "• `/rootmail show ID` — one mail: sender, accounts, why it is queued\n"
        "• `/rootmail retry` — re-run every queued mail with the current rules\n"
        "• `/rootmail retry ID…` — re-run these mails\n"
        "• `/rootmail retry pattern P` — re-run one digest pattern\n"
        "The outcome of a retry is posted here when it is done.",
        "list_title": "Queued mail{scope}, page {page} of {pages} ({total} in all)",
        "list_scope": " of pattern `{pattern}`",
        "list_empty": "No mail is queued{scope}.",
        "list_next": "Next page: `/rootmail list {args}`",
        "list_line": "`{id}` · {at} · {sender}\n{subject}\n_{reason}_",
        "show_missing": "No mail `{id}` in the ledger.",
        "show": "*{subject}*\nFrom {sender} · received {at}\nState *{state}*{reason}\n"
        "Category {category} · action {action} · accounts {accounts}\nID `{id}` · attempts {attempts}",
        "show_reason": " — {reason}",
        "retry_started": "{who} asked for a retry of {what}. Re-running with the current rules; "
        "the outcome follows here.",
        "retry_all": "every queued mail",
        "retry_ids": "{count} mail(s)",
        "retry_pattern": "pattern `{pattern}`",
        "retry_outcome": "*Retry of {what} done* ({who}): {total} mail(s) re-run.",
        "retry_nothing": "*Retry of {what}* ({who}): nothing to retry.{skipped}",
        "retry_counts": "{forwarded} forwarded · {ticketed} ticketed · {escalated} escalated · "
        "{restricted} restricted · {quarantined} quarantined · {ignored} ignored · *{queued} still queued*",
        "retry_unfinished": "{count} still running when the retry stopped waiting: `/rootmail show ID` later.",
        "retry_why": "Still queued because:",
        "retry_skipped": "Skipped: {skipped}.",
        "retry_remaining": "{count} more queued mail(s) wait: run the retry again.",
        "refused": "Refused: {reason}",
        "modal_title": "Rule from a pattern",
        "modal_submit": "Save rule",
        "modal_close": "Cancel",
        "modal_intro": "{count} queued mail(s) of pattern `{id}`, e.g. “{subject}”.",
        "field_id": "Rule ID",
        "field_description": "Description (why this rule exists)",
        "field_category": "Category",
        "field_action": "Action",
        "field_sender": "Sender address",
        "field_subject": "Subject pattern (regular expression)",
        "field_priority": "Priority (0–1000, higher wins among equals)",
        "rule_saved": "Rule `{rule}` saved by {who}: {category} → {action}. {count} queued mail(s) of pattern "
        "`{pattern}` can be re-run with it.",
        "rule_exists": "A rule with this ID already exists: choose another.",
        "rule_preview": "Preview: it takes {taken} of {sampled} queued mail(s) checked; a retry would give {actions}.",
        "suggested": "Suggested category: *{category}* ({why}). A person decides: nothing is applied by itself.",
        "suggested_short": "suggested: *{category}* ({why})",
        "signal_words": "Urgent words: {words}. No rule knows this mail: it waits in the queue for one.",
        "alerted": "{count} alerted at once for urgent words ({words})",
        "digest_alerted": "{count} of them alerted the operators at once for urgent words.",
    },
    "ja": {
        "digest_title": "rootmail ダイジェスト · {now}",
        "digest_summary": "キュー内のメール {queued} 件: 未分類 {unclassified} 件（{patterns} パターン）、"
        "その他の理由 {failed} 件（{reasons} 種類の理由）。",
        "all_processed": "すべて処理済みです。キューにメールはありません。",
        "unclassified_heading": "*未分類のメール*（どのルールにも一致しません）",
        "failed_heading": "*その他の理由でキューに入ったメール*（配信失敗、不明なアカウント、キュー行きのルール）",
        "unclassified_none": "未分類のメール: すべて処理済みです。",
        "failed_none": "その他の理由: すべて処理済みです。",
        "pattern_line": "*{count} 件* · {accounts} アカウント · {sender}",
        "reason_line": "*{count} 件* · {accounts} アカウント",
        "seen": "最初 {first} · 最後 {last}",
        "sample": "例:「{subject}」",
        "see_mails": "パターン `{id}` · メール一覧: `/rootmail list {id}`",
        "more_patterns": "ほか {more} パターン: `rootmail digest` ですべて表示します。",
        "create_rule": "ルールを作成",
        "retry_these": "再実行",
        "no_sender": "（送信者なし）",
        "help": "*/rootmail* — 再実行を待つメールのキュー\n"
        "• `/rootmail list [PATTERN] [PAGE]` — キュー内のメール（新しい順）\n"
        "• `/rootmail show ID` — 1 件のメール: 送信者、アカウント、キューに入った理由\n"
        "• `/rootmail retry` — キュー内のすべてのメールを現在のルールで再実行\n"
        "• `/rootmail retry ID…` — 指定したメールを再実行\n"
        "• `/rootmail retry pattern P` — ダイジェストの 1 パターンを再実行\n"
        "再実行の結果は完了後にここへ投稿します。",
        "list_title": "キュー内のメール{scope}（{page}/{pages} ページ、全 {total} 件）",
        "list_scope": "（パターン `{pattern}`）",
        "list_empty": "キューにメールはありません{scope}。",
        "list_next": "次のページ: `/rootmail list {args}`",
        "list_line": "`{id}` · {at} · {sender}\n{subject}\n_{reason}_",
        "show_missing": "台帳にメール `{id}` はありません。",
        "show": "*{subject}*\n送信者 {sender} · 受信 {at}\n状態 *{state}*{reason}\n"
        "カテゴリ {category} · アクション {action} · アカウント {accounts}\nID `{id}` · 試行 {attempts} 回",
        "show_reason": " — {reason}",
        "retry_started": "{who} が {what} の再実行を依頼しました。現在のルールで再実行中です。結果はここに投稿します。",
        "retry_all": "キュー内のすべてのメール",
        "retry_ids": "{count} 件のメール",
        "retry_pattern": "パターン `{pattern}`",
        "retry_outcome": "*{what} の再実行が完了しました*（{who}）: {total} 件を再実行。",
        "retry_nothing": "*{what} の再実行*（{who}）: 再実行するメールはありません。{skipped}",
        "retry_counts": "転送 {forwarded} · チケット {ticketed} · 緊急 {escalated} · 制限 {restricted} · "
        "隔離 {quarantined} · 無視 {ignored} · *キューに残り {queued}*",
        "retry_unfinished": "{count} 件は待機終了時にまだ実行中でした: 後で `/rootmail show ID` で確認してください。",
        "retry_why": "キューに残った理由:",
        "retry_skipped": "スキップ: {skipped}。",
        "retry_remaining": "キューにあと {count} 件あります: もう一度再実行してください。",
        "refused": "拒否しました: {reason}",
        "modal_title": "パターンからルール作成",
        "modal_submit": "保存",
        "modal_close": "キャンセル",
        "modal_intro": "パターン `{id}` のキュー内メール {count} 件。例:「{subject}」",
        "field_id": "ルール ID",
        "field_description": "説明（このルールの目的）",
        "field_category": "カテゴリ",
        "field_action": "アクション",
        "field_sender": "送信者アドレス",
        "field_subject": "件名のパターン（正規表現）",
        "field_priority": "優先度（0〜1000、同順位なら大きい方が優先）",
        "rule_saved": "{who} がルール `{rule}` を保存しました: {category} → {action}。パターン `{pattern}` の"
        "キュー内メール {count} 件をこのルールで再実行できます。",
        "rule_exists": "この ID のルールはすでにあります。別の ID を指定してください。",
        "rule_preview": "プレビュー: 確認した {sampled} 件のうち {taken} 件に一致し、再実行すると {actions} になります。",
        "suggested": "推奨カテゴリ: *{category}*（{why}）。判断するのは人です。自動では適用しません。",
        "suggested_short": "推奨: *{category}*（{why}）",
        "signal_words": "緊急の語: {words}。このメールに一致するルールはありません。ルールができるまでキューで待ちます。",
        "alerted": "{count} 件は緊急の語のため即時に通知済み（{words}）",
        "digest_alerted": "うち {count} 件は緊急の語のため運用者に即時通知しました。",
    },
}


def texts(language: str) -> dict[str, str]:
    return _TEXTS.get(language, _TEXTS["en"])


def _short(text: str, limit: int = 150) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def inline(text: str, limit: int = 150) -> str:
    """Mail text for mrkdwn: shortened, escaped, and unable to close a code span or start a quote."""
    return mrkdwn(_short(text, limit)).replace("`", "ˋ")


def when(stamp: str | None) -> str:
    """An ISO timestamp as operators read it: `2026-11-20 10:00 UTC`."""
    if not stamp:
        return "-"
    return stamp[:16].replace("T", " ") + " UTC"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_TEXT]}]}


def _button(text: str, action_id: str, value: str, *, primary: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": value,
    }
    if primary:
        button["style"] = "primary"
    return button


MAX_REFERENCE_TEXT = 300
LEDGER_SUBJECT = 500  # the ledger keeps a subject's first 500 characters (pipeline.MAX_SUBJECT_IN_STATE)


def _cut(text: str, limit: int) -> tuple[str, bool]:
    """Text shortened at a word boundary (never inside a placeholder); whether it was cut."""
    if len(text) <= limit:
        return text, False
    return text[:limit].rsplit(" ", 1)[0], True


def pattern_reference(pattern: Pattern) -> str:
    """What a digest button carries back (Slack signs it; at most 2,000 characters): enough to prefill the rule
    modal without a lookup. Each field is capped, never the JSON itself."""
    text, cut = _cut(pattern.pattern, MAX_REFERENCE_TEXT)
    return json.dumps(
        {
            "id": pattern.id,
            "kind": pattern.kind,
            "sender": (pattern.sender or "")[:254] or None,
            "pattern": text,
            # The subject regex takes the whole subject unless the pattern (or the ledger's subject) was cut.
            "whole": not cut and len(pattern.sample_subject) < LEDGER_SUBJECT,
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
        return f"{title}: {t['all_processed']}", [_section(f"*{title}*\n{t['all_processed']}")]
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
        _section(summary),
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
            blocks.append(_context(t[none]))
            continue
        blocks.append(_section(t[heading]))
        for pattern in group[:count]:
            blocks.extend(_pattern_blocks(pattern, t))
        if len(group) > count:
            blocks.append(_context(t["more_patterns"].format(more=len(group) - count)))
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
    buttons = [_button(t["retry_these"], RETRY_PATTERN, pattern.id)]
    if pattern.kind == "unclassified":
        buttons.insert(0, _button(t["create_rule"], CREATE_RULE, reference, primary=True))
    return [
        _section("\n".join(lines)),
        _context(
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
    button = _button(t["create_rule"], CREATE_RULE, pattern_reference(pattern), primary=True)
    return [
        _section("\n".join(lines)),
        {"type": "actions", "block_id": f"signal-{pattern.id}", "elements": [button]},
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
                f"  [{p.id}] {p.count} · {len(p.accounts)} acct · {p.sender or '-'} · {_short(p.pattern, 200)}"
            )
            lines.append(
                f"      {t['seen'].format(first=when(p.first_seen), last=when(p.last_seen))}"
                f" · {t['sample'].format(subject=_short(p.sample_subject, 120))}"
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
            blocks.append(_section(chunk))
            chunk = ""
        chunk = f"{chunk}\n\n{line}" if chunk else line
    blocks.append(_section(chunk))
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
    return reply(text.splitlines()[0].strip("*"), blocks=[_section(text)])


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
        return text, [_section(text)]
    head = t["retry_outcome"].format(what=what, who=who, total=total)
    counts = t["retry_counts"].format(
        **{s: states.get(s, 0) for s in ("forwarded", "ticketed", "escalated", "restricted", "quarantined")},
        ignored=states.get("ignored", 0),
        queued=states.get("queued", 0),
    )
    blocks = [_section(f"{head}\n{counts}")]
    if reasons:
        why = "\n".join(f"• {count} × {inline(reason, 200)}" for reason, count in reasons[:10])
        blocks.append(_section(f"{t['retry_why']}\n{why}"))
    extra = [
        t["retry_unfinished"].format(count=unfinished) if unfinished else "",
        skipped_text,
        t["retry_remaining"].format(count=remaining) if remaining else "",
    ]
    if any(extra):
        blocks.append(_context(" ".join(e for e in extra if e)))
    return f"{head} {counts}".replace("*", ""), blocks


# ---- the rule modal -------------------------------------------------------------------------------------------


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {**element, "action_id": "value"},
        "optional": optional,
    }


def _text_input(initial: str | None = None, *, multiline: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    return element


def _select(options: Iterable[str], initial: str | None) -> dict[str, Any]:
    choices = [{"text": {"type": "plain_text", "text": o}, "value": o} for o in options]
    element: dict[str, Any] = {"type": "static_select", "options": choices}
    chosen = next((c for c in choices if c["value"] == initial), None)
    if chosen:
        element["initial_option"] = chosen
    return element


def rule_modal(reference: dict[str, Any], *, channel: str, language: str) -> dict[str, Any]:
    """A modal prefilled from a digest pattern: the sender and a subject pattern that takes every mail of it."""
    t = texts(language)
    pattern_id = str(reference.get("id", ""))
    categories = [str(c) for c in Category if c != Category.UNCLASSIFIED]
    actions = [str(a) for a in Action if a != Action.QUEUE]
    suggested = str(reference.get("suggested") or "")
    suggested = suggested if suggested in categories else ""
    action = SUGGESTED_ACTION.get(Category(suggested), Action.FORWARD) if suggested else Action.FORWARD
    intro = t["modal_intro"].format(
        id=pattern_id,
        count=reference.get("count", 0),
        subject=inline(str(reference.get("sample") or ""), 150),
    )
    if suggested:
        intro += "\n" + t["suggested"].format(
            category=suggested, why=inline(str(reference.get("why") or ""), 150)
        )
    return {
        "type": "modal",
        "callback_id": RULE_MODAL,
        "private_metadata": json.dumps({"pattern": pattern_id, "channel": channel}),
        "title": {"type": "plain_text", "text": t["modal_title"][:24]},
        "submit": {"type": "plain_text", "text": t["modal_submit"]},
        "close": {"type": "plain_text", "text": t["modal_close"]},
        "blocks": [
            _context(intro),
            _input("rule_id", t["field_id"], _text_input(f"queued-{pattern_id}")),
            _input("description", t["field_description"], _text_input(), optional=True),
            _input("category", t["field_category"], _select(categories, suggested or None)),
            _input("action", t["field_action"], _select(actions, str(action))),
            _input("sender", t["field_sender"], _text_input(reference.get("sender")), optional=True),
            _input(
                "subject",
                t["field_subject"],
                _text_input(
                    subject_regex(
                        str(reference.get("pattern") or ""), whole=bool(reference.get("whole", True))
                    )
                ),
            ),
            _input("priority", t["field_priority"], _text_input("100")),
        ],
    }


def rule_from_modal(values: dict[str, Any]) -> dict[str, Any]:
    """The rule data an operator submitted in the modal (validated by the rules engine afterwards)."""

    def value(block: str) -> str:
        element = values.get(block, {}).get("value", {})
        if element.get("type") == "static_select":
            return str((element.get("selected_option") or {}).get("value") or "")
        return str(element.get("value") or "").strip()

    match: dict[str, Any] = {}
    if value("sender"):
        match["senders"] = [value("sender").lower()]
    if value("subject"):
        match["subject"] = value("subject")
    priority_text = value("priority") or "100"
    return {
        "id": value("rule_id"),
        "description": value("description") or "created in Slack from a digest pattern",
        "priority": int(priority_text) if priority_text.isdigit() else priority_text,
        "category": value("category"),
        "action": value("action"),
        "match": match,
    }


def rule_saved(
    rule: dict[str, Any],
    *,
    who: str,
    pattern: str,
    count: int,
    language: str,
    effect: dict[str, Any] | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    t = texts(language)
    text = t["rule_saved"].format(
        rule=rule["id"],
        who=who,
        category=rule["category"],
        action=rule["action"],
        count=count,
        pattern=pattern,
    )
    if effect is not None:
        actions = ", ".join(f"{n} {a}" for a, n in sorted(effect["actions"].items())) or "-"
        text += " " + t["rule_preview"].format(
            taken=effect["taken"], sampled=effect["sampled"], actions=actions
        )
    blocks = [_section(text)]
    if count:
        blocks.append(
            {
                "type": "actions",
                "block_id": f"saved-{pattern}",
                "elements": [_button(t["retry_these"], RETRY_PATTERN, pattern, primary=True)],
            }
        )
    return text, blocks

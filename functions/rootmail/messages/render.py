"""What people read: the mail forwarded to a customer, the Zendesk ticket text, the operators' Slack alert.

Every header of an outgoing message is built from parsed, sanitised values: nothing is copied from the original's
header block (its DKIM-Signature, Return-Path and Sender never travel), and no value can add a header line.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, make_msgid
from typing import Any

from rootmail.domain.accounts import OPERATIONS, Account, valid_address
from rootmail.domain.alerts import MAX_NAMED_ACCOUNTS
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.notice import notice_facts
from rootmail.domain.vocabulary import Action, Category

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
MAX_SUBJECT = 200
# SES v2 takes messages up to 40 MB; an original larger than this (with room for our own part) is not attached.
# SES sends at most 40 MB, and the original goes base64-encoded (4/3 of its size, plus line breaks).
MAX_ATTACHED_ORIGINAL = 28 * 1024 * 1024


def header_text(value: str, limit: int = MAX_SUBJECT) -> str:
    """One line of header text: CR, LF and other controls become spaces (no header injection), length bounded."""
    # "=?" starts an RFC 2047 encoded word that the email package would decode again, newlines included
    # (CVE-2024-6923): our values are already decoded, so a literal one is broken up.
    text = " ".join(_CONTROL.sub(" ", value).split()).replace("=?", "= ?")
    return text if len(text) <= limit else text[: limit - 1] + "…"


_TEXTS = {
    "en": {
        "subject": "[AWS notice] {subject}",
        "intro": "Amazon Web Services sent this notice about your AWS account {account_id}{name}.",
        "says": "AWS says: {subject}",
        "asks": "AWS asks: {ask}",
        "asks_more": "          {ask}",
        "deadline": "Deadline or date: {deadline}",
        "too_large": " The original ({size} MB) is too large to attach: ask us for it if you need it.",
        "unread": " The original ({size} MB) is not attached: it is too large to be read whole. Ask us for it if you need it.",
        "meta": "Sent by {sender} on {date}.",
        "attached": " The original message is attached.",
        "reply": "Reply to this mail to reach our support team; AWS's own sender does not receive replies.",
        "ticket": "Our support team follows this up with you in this ticket: reply to it with any question.",
        "original": "---- Original message ----",
        "unknown_date": "an unknown date",
        "shared": "This notice also concerns other accounts: their lines are left out and the original is not attached.",
        "omitted": "[… {count} line(s) about other accounts left out]",
    },
    "ja": {
        "subject": "【AWS通知】{subject}",
        "intro": "お客様の AWS アカウント {account_id}{name} について、Amazon Web Services から以下の通知が届きました。",
        "says": "通知の内容: {subject}",
        "asks": "AWS からの依頼: {ask}",
        "asks_more": "                {ask}",
        "deadline": "期限・日時: {deadline}",
        "too_large": "原文 ({size} MB) は大きすぎるため添付していません。必要な場合はお問い合わせください。",
        "unread": "原文 ({size} MB) は大きすぎて全体を確認できないため添付していません。必要な場合はお問い合わせください。",
        "meta": "送信元: {sender} / 日時: {date}。",
        "attached": "原文を添付しています。",
        "reply": "ご不明な点はこのメールへの返信でサポート窓口までお問い合わせください。",
        "ticket": "このチケットでサポートチームが対応いたします。ご質問はこのチケットへの返信でお知らせください。",
        "original": "---- 原文 ----",
        "unknown_date": "不明",
        "shared": "この通知は他のアカウントにも関係するため、該当する行を省略し、原文は添付していません。",
        "omitted": "[… 他のアカウントに関する {count} 行を省略]",
    },
}


def texts_for(language: str) -> dict[str, str]:
    return _TEXTS.get(language, _TEXTS["en"])


@dataclass(frozen=True)
class ForwardedMail:
    to: tuple[str, ...]
    subject: str
    data: bytes  # the whole MIME message, CRLF line endings, ready for SES raw sending


def render_forward(
    mail: ParsedMail,
    raw: bytes,
    account: Account,
    *,
    sender: str,
    reply_to: str,
    mail_id: str,
    other_account_ids: Sequence[str] = (),
    kind: str = OPERATIONS,
    suppressed: Collection[str] = (),
) -> ForwardedMail:
    """One customer mail for one account, to its contacts of `kind` (the kind the mail's category goes to): a
    short header in the account's language, the original's text, and the original itself attached. When the
    notice names other accounts delivered separately, this customer sees only the lines about its own account and
    no attachment."""
    # Suppressed contacts (a permanent bounce or a complaint) are left out until an operator clears them.
    to = tuple(c for c in account.contacts.of(kind) if valid_address(c) and c.lower() not in suppressed)
    t = texts_for(account.language)
    subject = header_text(t["subject"].format(subject=mail.subject or "(no subject)"))
    text = mail.text.strip()
    meta = t["meta"].format(sender=mail.sender or "?", date=mail.date or t["unknown_date"])
    # A mail not read whole (past the parser's bounds) may hold what the credential guard never saw: its original
    # stays with the operators.
    attach = not other_account_ids and not mail.truncated and len(raw) <= MAX_ATTACHED_ORIGINAL
    if other_account_ids:
        text = _without_other_accounts(text, account.account_id, other_account_ids, t["omitted"])
        meta += " " + t["shared"]
    elif mail.truncated:
        meta += t["unread"].format(size=round(len(raw) / 1024 / 1024, 1))
    elif not attach:
        meta += t["too_large"].format(size=round(len(raw) / 1024 / 1024, 1))
    else:
        meta += t["attached"]
    body = "\n".join(
        [*_notice_lines(mail, account, text), "", meta, t["reply"], "", t["original"], "", text, ""]
    )
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Reply-To"] = reply_to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["X-Rootmail-Mail-Id"] = header_text(mail_id, 120)
    message["X-Rootmail-Account"] = account.account_id
    message.set_content(body, subtype="plain", charset="utf-8", cte="base64")
    if attach:
        _attach_original(message, raw)
    # After the attachment: making the message multipart moves Content-* headers into the first part.
    message["Content-Language"] = account.language
    data = message.as_bytes(policy=SMTP)
    return ForwardedMail(to=to, subject=subject, data=data)


def _notice_lines(mail: ParsedMail, account: Account, text: str) -> list[str]:
    """The customer's summary: which account, what AWS says, what it asks and by when."""
    t = texts_for(account.language)
    name = f" ({header_text(account.name, 80)})" if account.name else ""
    facts = notice_facts(mail.subject, text)
    lines = [
        t["intro"].format(account_id=account.account_id, name=name),
        "",
        t["says"].format(subject=header_text(mail.subject or "-")),
    ]
    for number, ask in enumerate(facts.asks):
        lines.append(t["asks" if number == 0 else "asks_more"].format(ask=ask))
    if facts.deadline:
        lines.append(t["deadline"].format(deadline=facts.deadline))
    return lines


def urgent_comment(mail: ParsedMail, account: Account, other_account_ids: Sequence[str] = ()) -> str:
    """The public comment of an urgent ticket: Zendesk mails it to the customer (the requester) from the support
    address, so it is written to them, in their language, with AWS's text below (less what is about the
    `other_account_ids`; the caller then attaches no original)."""
    t = texts_for(account.language)
    text = mail.text.strip()
    if other_account_ids:
        text = _without_other_accounts(text, account.account_id, other_account_ids, t["omitted"])
    return "\n".join([*_notice_lines(mail, account, text), "", t["ticket"], "", t["original"], "", text])


# A notice's field line (`Region: us-east-1`, `Affected resources: i-0abc…`, `リージョン: …`): a short label and a colon.
_FIELD = re.compile(r"[ \t]*[^\s:：<>/][^:：<>/\n]{0,40}[:：][ \t]*\S")


def _without_other_accounts(text: str, own: str, other_account_ids: Sequence[str], omitted: str) -> str:
    """The text less everything about another account. An aggregated notice gives each account its lines: its ID,
    then its fields (Region, start time, affected resources), in one paragraph (plain text) or a paragraph each
    (HTML turned into text). So a paragraph about another account goes whole, and so do the field lines that follow
    another account's line, blank lines or not, up to the next line that is not a field. In a paragraph that
    names this account (`own`) too, only the lines naming another go."""
    lines: list[tuple[str, bool]] = []  # each line, and whether its whole paragraph is another account's
    for paragraph in re.split(r"\n[ \t]*\n", text):
        flat = paragraph.replace("-", "")
        whole = any(a in flat for a in other_account_ids) and own not in flat
        if lines:
            lines.append(("", False))
        lines.extend((line, whole) for line in paragraph.split("\n"))
    kept: list[str] = []
    dropped = 0
    others_fields = False  # inside the field lines of another account
    for line, whole in lines:
        flat = line.replace("-", "")
        if whole or any(a in flat for a in other_account_ids):
            others_fields = whole or own not in flat
            dropped += bool(line.strip())
        elif not line.strip():
            kept.append(line)
        elif others_fields and _FIELD.match(line):
            dropped += 1
        else:
            others_fields = False
            kept.append(line)
    if not dropped:
        return text
    return "\n".join([*_tidy_blank_lines(kept), "", omitted.format(count=dropped)])


def _tidy_blank_lines(lines: list[str]) -> list[str]:
    """At most one blank line in a row, none at either end."""
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    while out and not out[-1].strip():
        out.pop()
    return out


def _attach_original(message: EmailMessage, raw: bytes) -> None:
    canonical = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if _seven_bit(canonical):
        # message/rfc822 may only be 7bit or 8bit, never base64: an original that is valid 7-bit data (in CRLF
        # form) travels as it is, and mail clients show it as the message it is.
        part = EmailMessage(policy=SMTP)
        part["Content-Type"] = "message/rfc822"
        part["Content-Disposition"] = 'attachment; filename="original.eml"'
        part.set_payload(canonical.decode("ascii"))
        message.make_mixed()
        message.attach(part)
    else:
        # Any other original (raw Shift_JIS, a line over 998 octets, bare CR, NUL, binary junk) is sent base64,
        # byte for byte: sent as message/rfc822 it would make the whole forward invalid MIME, which a hop may
        # reject or mangle.
        message.add_attachment(raw, maintype="application", subtype="octet-stream", filename="original.eml")


MAX_LINE = 998  # RFC 5322 2.1.1: octets per line, CRLF excluded


def _seven_bit(data: bytes) -> bool:
    """RFC 2045's 7bit data: US-ASCII without NUL, CR and LF only together, no line over MAX_LINE octets. Counted
    with bytes methods: a regular expression would backtrack over every long line of a 28 MB original."""
    crlf = data.count(b"\r\n")
    return (
        data.isascii()
        and b"\0" not in data
        and data.count(b"\r") == crlf
        and data.count(b"\n") == crlf
        and max(map(len, data.split(b"\r\n"))) <= MAX_LINE
    )


def ticket_comment(
    mail: ParsedMail, account_ids: Sequence[str], *, mail_id: str, withheld: str | None = None
) -> str:
    """Ticket text for Zendesk: a short facts block, then the mail's text (unless `withheld`, which says why: a
    mail carrying credentials is read from the mail store, never copied). Plain text, no markup interpreted."""
    lines = [
        f"From: {mail.sender or '?'}",
        f"Date: {mail.date or '?'}",
        f"Subject: {header_text(mail.subject)}",
        f"Account(s): {', '.join(account_ids) or 'unknown'}",
    ]
    if mail.case_id:
        lines.append(f"AWS support case: {mail.case_id}")
    lines.append(f"rootmail mail: {mail_id}")
    if withheld:
        return "\n".join([*lines, "", f"The mail's text and original are not copied here: {withheld}."])
    return "\n".join([*lines, "", mail.text.strip()])


def ticket_subject(mail: ParsedMail, *, urgent: bool) -> str:
    subject = header_text(mail.subject or "(no subject)")
    if urgent:
        return header_text(f"[URGENT] {subject}")
    if mail.case_id and mail.case_id not in subject:
        return header_text(f"[AWS case {mail.case_id}] {subject}")
    return subject


def mrkdwn(text: str) -> str:
    """Escape text for Slack mrkdwn: `<!channel>`, links and mentions become inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def alert_headline(action: str, category: str, *, signal: bool = False, rule_id: str | None = None) -> str:
    """What an operators' alert is about, in its header."""
    if action == Action.QUARANTINE:
        return "Quarantined mail"
    if signal and rule_id:
        return f"Urgent words in mail rule {rule_id} took (held for an operator)"
    if signal:
        return "Unknown mail with urgent words (queued for a rule)"
    if category == Category.BILLING:
        return "Payment trouble (billing, operators only)"
    return "Restricted mail (operators only)"


def batched_alert(
    first_text: str,
    first_blocks: Sequence[dict[str, Any]],
    *,
    count: int,
    accounts: Sequence[str],
    since: datetime,
    listing: bool,
) -> tuple[str, list[dict[str, Any]]]:
    """A batch's message as it is updated: the alert of its first mail, under a line that counts the mails of its
    kind since the window opened and names their accounts."""
    named = ", ".join(mrkdwn(a) for a in accounts[:MAX_NAMED_ACCOUNTS]) or "no known account"
    if len(accounts) >= MAX_NAMED_ACCOUNTS:  # a batch keeps its first accounts only
        named += f" (the first {MAX_NAMED_ACCOUNTS}; the {count:,} mails may concern more)"
    line = f"*{count:,} mails* of this kind since {since:%H:%M} UTC, the first shown here. Accounts: {named}."
    if listing:
        line += " They are queued: `/rootmail list` shows them, the digest groups them by pattern."
    else:
        line += " `/rootmail show MAIL-ID` shows one; the ledger holds each with its state."
    header = list(first_blocks[:1]) or [
        {"type": "header", "text": {"type": "plain_text", "text": header_text(first_text, 150)}}
    ]
    text = f"{count:,} × {first_text}"
    return text, [*header, {"type": "section", "text": {"type": "mrkdwn", "text": line}}, *first_blocks[1:]]


def operator_alert(
    *,
    headline: str,
    mail: ParsedMail,
    account_ids: Sequence[str],
    category: str,
    action: str,
    mail_id: str,
    reason: str,
    link: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """A Slack message for the operators' channel: fallback text and Block Kit blocks, readable on a phone."""
    accounts = ", ".join(account_ids) or "unknown account"
    text = mrkdwn(f"{headline}: {header_text(mail.subject or '(no subject)')} ({accounts})")
    fields = [
        f"*Category*\n{mrkdwn(category)}",
        f"*Action*\n{mrkdwn(action)}",
        f"*Account(s)*\n{mrkdwn(accounts)}",
        f"*Sender*\n{mrkdwn(mail.sender or '?')}",
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header_text(headline, 150)}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{mrkdwn(header_text(mail.subject or '-'))}*"},
        },
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
    ]
    context = f"mail `{mrkdwn(mail_id)}` · {mrkdwn(reason)}"
    if link:
        context += f" · <{link}|ticket>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return text, blocks

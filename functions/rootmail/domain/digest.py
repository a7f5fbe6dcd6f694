"""The operators' hourly digest: queued mail grouped into patterns a person can name and write a rule for.

Unclassified mail is grouped by sender and subject pattern (the variable parts masked); mail queued after a
failed delivery is grouped by its reason, masked the same way. Plain Python over ledger records.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rootmail.domain.signals import suggest

_PLACEHOLDER = re.compile(r"<(?:address|arn|resource|id|date|case|account|name|n)>")
# Order matters: the most specific shapes are masked first.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<address>"),
    (re.compile(r"\barn:[\w-]+:[^\s\]\)]+"), "<arn>"),
    (
        re.compile(r"\b(?:i|vol|snap|sg|subnet|vpc|eni|ami|igw|nat|rtb|acl|db|eipalloc)-[0-9a-f]{6,}\b"),
        "<resource>",
    ),
    # Request IDs, message IDs, tokens: a UUID, or a long run of hex (a Lambda timeout names its request).
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"
            r"|\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{16,}\b"
        ),
        "<id>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:\s*UTC|Z|[+-]\d{2}:?\d{2})?)?(?!\w)"
        ),
        "<date>",
    ),
    (re.compile(r"\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日"), "<date>"),
    (
        re.compile(
            r"\b(?:\d{1,2} )?(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? \d{1,2}(?:, \d{4}| \d{4})?\b",
            re.IGNORECASE,
        ),
        "<date>",
    ),
    (re.compile(r"(?<!\d)\d{15}(?!\d)|(?<!\d)\d{10}(?!\d)"), "<case>"),
    (re.compile(r"(?<!\d)\d{4}-?\d{4}-?\d{4}(?!\d)"), "<account>"),
    (re.compile(r"\"[^\"]{1,80}\"|“[^”]{1,80}”|「[^」]{1,80}」|'[^'\s][^']{0,78}'"), "<name>"),
    (re.compile(r"\b\d+(?:[.,]\d+)*%?"), "<n>"),  # a number on its own, not the 2 of "EC2"
)


def mask(text: str) -> str:
    """A subject or reason with its variable parts replaced by placeholders, whitespace folded. Text that looks
    like a placeholder already is kept apart (in full-width brackets), so a pattern means one thing."""
    text = _PLACEHOLDER.sub(lambda found: "＜" + found.group()[1:-1] + "＞", text)
    for pattern, placeholder in _MASKS:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def pattern_id(kind: str, *parts: str) -> str:
    """A short stable name for a pattern, for `retry pattern P` and the rule modal."""
    return hashlib.sha256("\x1f".join((kind, *parts)).encode("utf-8")).hexdigest()[:8]


@dataclass
class Pattern:
    id: str
    kind: str  # "unclassified" or "failed"
    sender: str | None
    pattern: str  # the masked subject (unclassified) or reason (failed)
    count: int = 0
    accounts: set[str] = field(default_factory=set)
    first_seen: str = ""
    last_seen: str = ""
    sample_subject: str = ""
    mail_ids: list[str] = field(default_factory=list)
    # Unclassified patterns: the category the newest mail's sender and words suggest ({"category", "why"}), and
    # how many of its mails alerted the operators at once for their urgent words (and which words).
    suggestion: dict[str, str] | None = None
    alerted: int = 0
    signals: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "sender": self.sender,
            "pattern": self.pattern,
            "count": self.count,
            "accounts": len(self.accounts),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "sample_subject": self.sample_subject,
            "mail_ids": list(self.mail_ids),
            "suggestion": self.suggestion,
            "alerted": self.alerted,
            "signals": list(self.signals),
        }


def _key(record: dict[str, Any]) -> tuple[str, str | None, str]:
    """Unclassified mail by sender and subject pattern; everything else queued by its (masked) reason."""
    if record.get("category") in (None, "unclassified") and not _failed(record):
        return "unclassified", record.get("sender"), mask(record.get("subject") or "")
    return "failed", None, mask(record.get("queue_reason") or "no reason recorded")


def _failed(record: dict[str, Any]) -> bool:
    # Queued for another reason than "no rule knew the mail": a delivery failed, no known account, a queue rule.
    return (record.get("queue_reason") or "no rule matched") != "no rule matched"


def _suggestion(record: dict[str, Any]) -> dict[str, str] | None:
    """What the pipeline suggested for the mail (from its sender and text), else what its sender and subject do."""
    recorded = record.get("suggestion")
    if isinstance(recorded, dict) and recorded.get("category"):
        return {"category": str(recorded["category"]), "why": str(recorded.get("why") or "")}
    found = suggest(record.get("sender"), str(record.get("subject") or ""))
    return found.to_dict() if found else None


def group_queue(records: Iterable[dict[str, Any]]) -> list[Pattern]:
    """Patterns of queued ledger records, the largest first (then the most recent)."""
    patterns: dict[tuple[str, str | None, str], Pattern] = {}
    for record in records:
        if record.get("state") != "queued":
            continue
        key = _key(record)
        kind, sender, text = key
        found = patterns.get(key)
        if found is None:
            found = patterns[key] = Pattern(pattern_id(kind, sender or "", text), kind, sender, text)
        seen = str(record.get("received_at") or record.get("updated_at") or "")
        found.count += 1
        found.accounts.update(record.get("account_ids") or [])
        found.mail_ids.append(str(record["mail_id"]))
        if record.get("alert"):
            found.alerted += 1
            found.signals = list(dict.fromkeys([*found.signals, *(record.get("signals") or [])]))[:6]
        if not found.first_seen or (seen and seen < found.first_seen):
            found.first_seen = seen
        if seen >= found.last_seen:
            found.last_seen = seen
            found.sample_subject = str(record.get("subject") or "")
            if kind == "unclassified":
                found.suggestion = _suggestion(record)
    newest_first = sorted(patterns.values(), key=lambda p: (p.last_seen, p.id), reverse=True)
    return sorted(newest_first, key=lambda p: -p.count)


# What each placeholder stands for in a subject pattern a rule can use (the rest of the text is literal).
_PLACEHOLDER_REGEX = {
    "<address>": r"\S+@\S+",
    "<id>": r"[0-9a-fA-F-]+",
    "<account>": r"\d{4}-?\d{4}-?\d{4}",
    "<case>": r"\d{10,15}",
    "<n>": r"\d+(?:[.,]\d+)*%?",
}


def subject_regex(pattern: str, *, whole: bool = True) -> str:
    """A regular expression for a rule's `match.subject` that matches every subject of a masked pattern:
    literal text escaped, whitespace flexible, each placeholder replaced by what it masked; the whole subject unless
    the pattern was cut short (`whole=False`: a prefix)."""
    parts: list[str] = []
    position = 0
    for found in _PLACEHOLDER.finditer(pattern):
        parts.append(_literal(pattern[position : found.start()]))
        parts.append(_PLACEHOLDER_REGEX.get(found.group(), r".+?"))
        position = found.end()
    parts.append(_literal(pattern[position:]))
    return "^" + "".join(parts) + (r"\s*$" if whole else "")


def _literal(text: str) -> str:
    if not text:
        return ""
    escaped = r"\s+".join(re.escape(word) for word in text.split(" "))
    return escaped.replace("＜", "[<＜]").replace("＞", "[>＞]")  # see mask()


def find_pattern(patterns: Iterable[Pattern], pattern_id: str) -> Pattern | None:
    return next((p for p in patterns if p.id == pattern_id), None)

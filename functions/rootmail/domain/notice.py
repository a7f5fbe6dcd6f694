"""What a notice asks of the customer and by when: the lines a person would underline, found without AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Lines that ask the reader to do something, in AWS's English and Japanese wording.
_ASK = re.compile(
    r"(action required|you must|you need to|we recommend|we strongly recommend|please (?:take|update|migrate|review|"
    r"contact|respond|reply|stop|replace|upgrade|remove|rotate|delete|ensure|reduce)|required to|to avoid|"
    r"no later than|必要があります|してください|お願いします|ご対応|対応が必要)",
    re.IGNORECASE,
)
# Lines that read like an ask but are boilerplate.
_NOT_AN_ASK = re.compile(
    r"(cannot accept incoming|no further action|ignore this (?:e-?)?mail|無視してください)", re.IGNORECASE
)
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MONTHS_SHORT = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_DATE = re.compile(
    rf"(\d{{4}}-\d{{2}}-\d{{2}}(?:[ T]\d{{2}}:\d{{2}}(?::\d{{2}})?\s*(?:UTC|GMT|Z)?)?"
    rf"|(?:{_MONTHS}|{_MONTHS_SHORT})\.? \d{{1,2}},? \d{{4}}"
    rf"|\d{{1,2}} (?:{_MONTHS}|{_MONTHS_SHORT})\.? \d{{4}}"
    rf"|\d{{4}}\s*年\s*\d{{1,2}}\s*月\s*\d{{1,2}}\s*日)",
    re.IGNORECASE,
)
_DEADLINE_WORD = re.compile(
    r"(deadline|due|by|before|after|no later than|until|on or after|starting|beginning|scheduled for|期限|まで|以降|予定)",
    re.IGNORECASE,
)
MAX_ASKS = 3
MAX_LINE = 200


@dataclass(frozen=True)
class NoticeFacts:
    asks: tuple[str, ...]
    deadline: str | None


def _short(line: str) -> str:
    line = " ".join(line.split())
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def notice_facts(subject: str, text: str) -> NoticeFacts:
    """The first lines that ask for action, and the first date that reads as a deadline or a scheduled time."""
    asks: list[str] = []
    deadline: str | None = None
    for line in [subject, *text.splitlines()]:
        stripped = line.strip()
        if not stripped or stripped.startswith((">", "http")):
            continue
        if (
            len(asks) < MAX_ASKS
            and line is not subject
            and _ASK.search(stripped)
            and not _NOT_AN_ASK.search(stripped)
        ):
            short = _short(stripped)
            if short not in asks:
                asks.append(short)
        if deadline is None:
            date = _DATE.search(stripped)
            if date and _DEADLINE_WORD.search(stripped):
                deadline = date.group(0).strip()
        if len(asks) >= MAX_ASKS and deadline is not None:
            break
    return NoticeFacts(tuple(asks), deadline)

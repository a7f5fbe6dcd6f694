"""The `/rootmail` slash command's text, parsed into what the operator asked for. Pure: no Slack, no AWS."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rootmail.errors import CommandError

# A ledger key is SES's message ID (or, locally, a file's stem): letters, digits, dots, dashes, underscores.
_MAIL_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_PATTERN_ID = re.compile(r"^[0-9a-f]{8}$")
MAX_IDS = 100


@dataclass(frozen=True)
class Command:
    name: str  # help, list, show, retry
    mail_ids: tuple[str, ...] = ()
    pattern: str | None = None
    page: int = 1

    @property
    def changes_something(self) -> bool:
        """Only retry changes anything; a replayed retry must be refused, a replayed `list` is harmless."""
        return self.name == "retry"


def parse_command(text: str) -> Command:
    """`help`, `list [PATTERN] [PAGE]`, `show ID`, `retry`, `retry ID…`, `retry pattern P`. Errors say what to
    type instead."""
    words = text.split()
    if not words or words[0].lower() in {"help", "-h", "--help", "?"}:
        return Command("help")
    name, rest = words[0].lower(), words[1:]
    if name == "list":
        pattern, page = None, 1
        for word in rest:
            if word.isdigit() and 0 < int(word) < 10_000:
                page = int(word)
            elif _PATTERN_ID.match(word.lower()) and pattern is None:
                pattern = word.lower()
            else:
                raise CommandError(f"`list` takes an optional pattern ID and a page number, not `{word}`")
        return Command("list", pattern=pattern, page=page)
    if name == "show":
        if len(rest) != 1 or not _MAIL_ID.match(rest[0]):
            raise CommandError("`show` takes one mail ID, as `/rootmail list` prints it")
        return Command("show", mail_ids=(rest[0],))
    if name == "retry":
        if not rest:
            return Command("retry")
        if rest[0].lower() == "pattern":
            if len(rest) != 2 or not _PATTERN_ID.match(rest[1].lower()):
                raise CommandError("`retry pattern` takes one pattern ID (8 characters) from the digest")
            return Command("retry", pattern=rest[1].lower())
        bad = [w for w in rest if not _MAIL_ID.match(w)]
        if bad:
            raise CommandError(f"not a mail ID: `{bad[0]}`")
        if len(rest) > MAX_IDS:
            raise CommandError(f"at most {MAX_IDS} mail IDs at once; `retry pattern P` or `retry` for more")
        return Command("retry", mail_ids=tuple(dict.fromkeys(rest)))
    raise CommandError(f"unknown subcommand `{name}`")

"""How the stdlib MIME parser is run: a policy that reads well-formed MIME headers raw (policy.default's
reading only for malformed ones, on a budget), and the bounds within which hostile mail is given to it.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Iterator
from email.headerregistry import HeaderRegistry
from email.parser import BytesParser
from email.policy import Compat32
from typing import Any

# The parser asks the Message for Content-Type (type, boundary) and Content-Transfer-Encoding while it splits the
# MIME structure (and get_payload asks for the latter). policy.default answers from its header classes, compat32
# from the raw value; both agree on a well-formed value, and policy.default's classes cost most of a parse. So the
# raw value answers when it is well-formed, and policy.default's reading (its header class, as str) when it is
# not: the same MIME structure as parsing with policy.default, at compat32's cost.
# An RFC 2045 token less `'` and `*`, which policy.default reads as RFC 2231 syntax.
_TOKEN = r"[!#$%&+.^_`|~0-9A-Za-z-]+"
_FWS = r"[ \t]*(?:\r?\n[ \t]+)?"
# Printable ASCII, no quote or backslash inside, nor `=?`: policy.default decodes encoded words there.
_QUOTED = r'"(?:[ !#-<>-\[\]-~]|=(?!\?))*"'
_WELL_FORMED = {
    "content-type": re.compile(f"{_TOKEN}/{_TOKEN}(?:{_FWS};{_FWS}{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*{_FWS}"),
    "content-transfer-encoding": re.compile(f"{_TOKEN}{_FWS}"),
}
_LINE_BREAKS = re.compile(r"[\r\n]")
_DEFAULT_HEADERS = HeaderRegistry()
# policy.default's header classes take time quadratic in a value's length (a kilobyte of `;` costs 25 ms, four
# 330 ms) and recurse once per nested comment. A MIME header the parser asks for is cut to this length first (a
# real one holds a type and a few parameters), and each parse gives those classes this many characters of
# malformed values, none longer than the last: past them, a value is read as compat32 reads it (as written).
MAX_MIME_HEADER_CHARS = 4096
_MALFORMED_MIME_BUDGET = 8192
_MALFORMED_MIME_VALUE = 1024


class _MimeHeaderBudget:
    """What one parse's malformed MIME headers may still cost; each value is read once (the parser asks again)."""

    def __init__(self) -> None:
        self.left = _MALFORMED_MIME_BUDGET
        self.refused = 0  # malformed values read as written, past the budget
        self.read: dict[tuple[str, str], str] = {}

    def parse(self, name: str, value: str) -> str:
        key = (name, value)
        if key in self.read:
            return self.read[key]
        if len(value) > min(self.left, _MALFORMED_MIME_VALUE):
            self.refused += 1
            return value
        self.left -= len(value)
        try:
            parsed = str(_DEFAULT_HEADERS(name, _LINE_BREAKS.sub("", value)))  # as policy.default does
        except Exception:  # RecursionError (nested comments), and whatever else its parser trips on
            parsed = value
        self.read[key] = parsed
        return parsed


class _Policy(Compat32):
    budget: _MimeHeaderBudget

    def __init__(self, budget: _MimeHeaderBudget) -> None:
        super().__init__()
        object.__setattr__(self, "budget", budget)  # one per parse (see mime_parser); policies are read-only

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if len(value) > MAX_MIME_HEADER_CHARS:
            # Whole parameters only; compat32 reads parameters in time quadratic in their number too.
            cut = value.rfind(";", 0, MAX_MIME_HEADER_CHARS)
            value = value[: cut if cut > 0 else MAX_MIME_HEADER_CHARS]
        pattern = _WELL_FORMED.get(name.lower())
        if pattern is not None and pattern.fullmatch(value):
            return value
        return self.budget.parse(name, value)


def mime_parser() -> tuple[BytesParser, _MimeHeaderBudget]:
    budget = _MimeHeaderBudget()
    return BytesParser(policy=_Policy(budget=budget)), budget


_MAX_PARTS = 500  # a mail with more MIME parts than this is hostile; stop walking
# SES stores mail of up to 40 MB; parsing costs several times a mail's size in memory. What triage needs (the
# headers, the text parts) comes first in every notice AWS sends: past this, only attachments follow.
MAX_PARSED_BYTES = 8 * 1024 * 1024
# Characters of each header field read: what a header holds (an address list, a subject, SES's verdicts) is far
# shorter; a longer one is hostile, and parsing it (addresses: about 6 µs a character) must stay cheap.
MAX_HEADER_CHARS = 16 * 1024
# The stdlib's MIME parser costs about two microseconds a line whatever its length, plus a third of one for each
# multipart around the line (it checks each line against every boundary), about 50 microseconds a part, ten times
# a line's cost a header field (and each lookup of a header, a dozen a part, reads all the part's fields), and it
# recurses once per nested multipart or attached message. So within MAX_PARSED_BYTES it is given lines up to these
# bounds (see parser_prefix), on hostile mail only: lines, each counted once more per multipart or message declared
# above it (8 MB of base64 in an attachment two multiparts deep is 330,000); lines starting with `--` or a
# Content-Type; declarations of multipart or message parts; lines that look like a header field.
MAX_LINE_VISITS = 500_000
MAX_MIME_LINES = 2000
MAX_CONTAINERS = 100
MAX_HEADER_FIELDS = 10_000
# ----------------------------------------------------------------------------------------------------
# What the MIME parser reads

# A line that starts a header field (a name, then `:`), as the stdlib's parser splits lines (CRLF, CR or LF); the
# rest of a header, folded lines and all; the types that nest (the parser recurses into them).
_FIELD_LINE = re.compile(rb"[\r\n][!-9;-~]++:")
_FIELD_FIRST = re.compile(rb"[!-9;-~]++:")
_HEADER_REST = re.compile(rb"[^\r\n]*(?:(?:\r\n|\r|\n)[ \t][^\r\n]*)*")
_NESTING_TYPE = re.compile(rb"multipart|message", re.IGNORECASE)


def _lines_between(raw: bytes, start: int, end: int) -> int:
    return raw.count(b"\n", start, end) + raw.count(b"\r", start, end) - raw.count(b"\r\n", start, end)


def _after_lines(raw: bytes, start: int, count: int) -> int:
    """The position right after the `count`-th line break from `start`, about: counted block by block (a CRLF
    split by two blocks counts twice), then by a binary search in the block where it is."""
    block = start
    while block < len(raw) and (lines := _lines_between(raw, block, block + 65536)) < count:
        block, count = block + 65536, count - lines
    low, high = block, min(block + 65536, len(raw))
    while low < high:
        middle = (low + high) // 2
        if _lines_between(raw, block, middle) < count:
            low = middle + 1
        else:
            high = middle
    return min(low + 1 if low > start and raw[low - 1 : low + 1] == b"\r\n" else low, len(raw))


def _line_starts(data: bytes, prefix: bytes, end: int) -> Iterator[int]:
    """Where the lines of data[:end] that start with `prefix` start, in order, by C searches."""
    if data.startswith(prefix):
        yield 0
    found = [data.find(b"\n" + prefix, 0, end), data.find(b"\r" + prefix, 0, end)]
    while (at := min((f for f in found if f >= 0), default=-1)) >= 0:
        yield at + 1
        kind = found.index(at)
        found[kind] = data.find(data[at : at + 1] + prefix, at + 1, end)


def _mime_lines(raw: bytes, lowered: bytes, end: int) -> Iterator[tuple[int, bool]]:
    """(start, whether it is a Content-Type line) of each line of raw[:end] that starts with `--` (a boundary, maybe)
    or a Content-Type header, in order. `lowered` is `raw.lower()`."""
    return heapq.merge(
        ((at, False) for at in _line_starts(raw, b"--", end)),
        ((at, True) for at in _line_starts(lowered, b"content-type:", end)),
    )


def _surely_within_bounds(raw: bytes, types: int) -> bool:
    """Whether no bound of parser_prefix can be reached, given how many `content-type:` the mail holds (at most as
    many parts declared, nesting or not): by counts, a pass over the mail each, or by the size alone where that
    tells (a line takes a byte at least, one starting with `--` or a header field three)."""
    size = len(raw)
    if types > MAX_CONTAINERS:
        return False
    lines = size if size * (types + 1) <= MAX_LINE_VISITS else _lines_between(raw, 0, size)
    if lines * (types + 1) > MAX_LINE_VISITS:
        return False
    dashes = size // 3 if size // 3 + types <= MAX_MIME_LINES else raw.count(b"\n--") + raw.count(b"\r--") + 1
    if dashes + types > MAX_MIME_LINES:
        return False
    return size // 3 <= MAX_HEADER_FIELDS or raw.count(b":") <= MAX_HEADER_FIELDS


def parser_prefix(raw: bytes) -> tuple[int, str | None]:
    """How much of `raw` the MIME parser reads: all (None), or up to the line where one of its bounds is reached
    (and what bound). C searches and counts over the bytes, a Python step per MIME line only."""
    lowered = raw.lower()
    if _surely_within_bounds(raw, lowered.count(b"content-type:")):  # nearly every mail
        return len(raw), None
    return _bounded_prefix(raw, lowered)


def _bounded_prefix(raw: bytes, lowered: bytes) -> tuple[int, str | None]:
    """parser_prefix, the long way: line by line where it matters. `lowered` is `raw.lower()`."""
    end, why = len(raw), None
    if raw.count(b":") > MAX_HEADER_FIELDS:  # else there are not that many header fields: no need to look
        fields = _FIELD_LINE.finditer(raw)
        beyond = next(itertools.islice(fields, MAX_HEADER_FIELDS - bool(_FIELD_FIRST.match(raw)), None), None)
        if beyond is not None:
            end, why = beyond.start() + 1, f"more than {MAX_HEADER_FIELDS:,} header fields"
    visits = nesting = 0
    at = 0  # where the lines counted so far end
    for count, (start, content_type) in enumerate(_mime_lines(raw, lowered, end), 1):
        lines = _lines_between(raw, at, start)
        if visits + lines * (nesting + 1) > MAX_LINE_VISITS:
            break
        visits += lines * (nesting + 1)
        at = start
        if count > MAX_MIME_LINES:
            return at, f"more than {MAX_MIME_LINES:,} MIME boundary and Content-Type lines"
        rest = _HEADER_REST.match(raw, start + 13) if content_type else None  # 13: len("content-type:")
        if rest is not None and _NESTING_TYPE.search(rest.group()):
            nesting += 1
            if nesting > MAX_CONTAINERS:
                return at, f"more than {MAX_CONTAINERS} multipart parts or attached messages"
    allowed = (MAX_LINE_VISITS - visits) // (nesting + 1)
    if _lines_between(raw, at, end) <= allowed:
        return end, why
    why = f"more than {MAX_LINE_VISITS:,} lines to split, each counted once more per multipart around it"
    return _after_lines(raw, at, allowed), why

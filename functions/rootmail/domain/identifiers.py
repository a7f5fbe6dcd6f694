"""AWS account IDs and support case IDs named in a mail's subject and body.

Only labelled numbers count: a bare 12-digit number can be an order, invoice or report number, and a
support case ID is 10 or 15 digits. Full-width digits, colons and brackets (Japanese mail) are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_DIGIT = "[0-9０-９]"
_HYPHEN = "[-－‐]"
_NOT_DIGIT_AFTER = f"(?!{_DIGIT}|{_HYPHEN}{_DIGIT})"
# 123456789012 or 1234-5678-9012 (as the console shows it), never a piece of a longer number.
_ACCOUNT = f"(?<!{_DIGIT}){_DIGIT}{{4}}{_HYPHEN}?{_DIGIT}{{4}}{_HYPHEN}?{_DIGIT}{{4}}{_NOT_DIGIT_AFTER}"
_OPEN = "[\\[<(（［「【]"
_CLOSE = "[\\]>)）］」】]"

_ACCOUNT_LABEL = r"""
(?:
    \bAWS\s+ID                                   # [AWS ID 123456789012]
  | \bcompte                                     # [Compte: 123456789012]
  | \b(?:affected\s+)?(?:AWS\s+)?accounts?       # Account: / AWS account / Affected accounts: / Account(s):
    (?:\s*\(s\))?
    (?:\s*(?:IDs?|numbers?|no\.?)(?:\s*\(s\))?)?
  | (?:AWS\s*)?アカウント(?:\s*(?:ID|ＩＤ|番号))?  # アカウント: / アカウント ID： / AWS アカウント
)
"""
# Between a label and its first ID: a colon (half or full width), spaces, a bullet, an opening bracket.
_LABEL_SEP = f"\\s*(?:[:：#]\\s*)?(?:[-*•・]\\s*)?{_OPEN}?\\s*"
# Between IDs of one labelled list: an annotation like "(prod)", commas, "and", line breaks, bullets.
_LIST_SEP = (
    f"{_CLOSE}?(?:[ \\t]*\\([^()\\n]{{1,60}}\\))?"
    f"(?:\\s*[,;、，&]\\s*|\\s*\\band\\s+|\\s+)(?:[-*•・]\\s*)?{_OPEN}?"
)

_ACCOUNT_RE = re.compile(
    f"{_ACCOUNT_LABEL}{_LABEL_SEP}(?P<ids>{_ACCOUNT}(?:{_LIST_SEP}{_ACCOUNT})*)",
    re.IGNORECASE | re.VERBOSE,
)
_ACCOUNT_ONLY_RE = re.compile(_ACCOUNT)

_CASE = f"(?<!{_DIGIT})(?P<case>{_DIGIT}{{15}}|{_DIGIT}{{10}})(?!{_DIGIT})"
_CASE_RE = re.compile(
    rf"""
    (?:
        \bcase(?:\s*(?:ID|number|no\.?))?\s*[:：#]?\s*  # Support case: N, [CASE N], Case ID: N, case N on
      | \bdisplayId=                                     # .../support/home#/case/?displayId=N
      | ケース\s*(?:ID|ＩＤ|番号)?\s*[:：]?\s*              # ケース ID: N
    )
    {_CASE}
    """,
    re.IGNORECASE | re.VERBOSE,
)

_TO_ASCII = str.maketrans("０１２３４５６７８９", "0123456789", "-－‐")

# The patterns above are slow to try at every position of a text (case-insensitive alternatives), and each match
# is a label right before a number: so they are only tried in the run of label characters before a number of a
# plausible length, which one fast pass over the text finds (starting with the digit class lets the regex
# engine skip ahead to each digit). The label classes below are supersets, case-insensitive like the patterns.
_NUMBER = re.compile(f"{_DIGIT}(?<!{_DIGIT}{_DIGIT}){_DIGIT}{{3,}}")  # a run of 4 or more digits
_ASCII_DIGITS = bytes(0x30 if b in b"0123456789" else 0x20 for b in range(256))  # digits 0, all else space
_HYPHENS = frozenset("-－‐")
# What a label and its separator can be made of, up to the first number.
_LABEL_RUN = re.compile(r"[a-z\s().:：#=*•・\-\[<（［「【アカウントケースＩＤ番号]*", re.IGNORECASE)
_ACCOUNT_FIRST = re.compile("[acア]", re.IGNORECASE)  # AWS, account, affected, compte, アカウント
_CASE_FIRST = re.compile("[cdケ]", re.IGNORECASE)  # case, displayId, ケース
# In ASCII text, only the labels that start at a word boundary can be there (the others are Japanese), and a run
# of label characters is mostly words of other kinds: these skip the letters inside words.
_ACCOUNT_FIRST_ASCII = re.compile(r"\b[ac]", re.IGNORECASE)
_CASE_FIRST_ASCII = re.compile(r"\b[cd]", re.IGNORECASE)


def _labelled(
    source: str, pattern: re.Pattern[str], first: re.Pattern[str], pos: int, at: int
) -> re.Match[str] | None:
    """The first match of `pattern` in `source` from `pos` whose label ends right before the number at `at`.

    Only letters, spaces and a few signs can separate a match's start from its first number: the match can only
    start in that run before `at`, and only where a label can begin."""
    width = 64
    while True:  # the run of label characters that ends at `at`
        start = max(pos, at - width)
        run = _LABEL_RUN.match(source[start:at][::-1])
        length = run.end() if run else 0
        if length < at - start or start == pos:
            break
        width *= 4
    for head in first.finditer(source, at - length, at):
        match = pattern.match(source, head.start())
        if match:
            return match
    return None


def _numbers(source: str) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of 4 or more digits, as `_NUMBER` finds them."""
    if not source.isascii():
        for number in _NUMBER.finditer(source):
            yield number.span()
        return
    # Most mail is ASCII: bytes.translate and find scan it many times faster than the regex engine.
    digits = source.encode("ascii").translate(_ASCII_DIGITS)
    end = 0
    while (start := digits.find(b"0000", end)) >= 0:
        end = digits.find(b" ", start)
        end = len(digits) if end < 0 else end
        yield start, end


def find_identifiers(subject: str, text: str) -> tuple[list[str], str | None]:
    """`find_account_ids` and `find_case_id` at once: one pass over each text finds the numbers for both."""
    accounts: dict[str, None] = {}
    case: str | None = None
    for source in (subject, text):
        if not source:
            continue
        end = 0  # where the last account match ended: the next one starts after it, as with finditer
        ascii_only = source.isascii()
        account_first = _ACCOUNT_FIRST_ASCII if ascii_only else _ACCOUNT_FIRST
        case_first = _CASE_FIRST_ASCII if ascii_only else _CASE_FIRST
        for at, after in _numbers(source):
            length = after - at
            if at >= end and (length == 12 or (length in (4, 8) and source[after : after + 1] in _HYPHENS)):
                match = _labelled(source, _ACCOUNT_RE, account_first, end, at)
                if match:
                    for account in _ACCOUNT_ONLY_RE.findall(match.group("ids")):
                        accounts.setdefault(account.translate(_TO_ASCII), None)
                    end = match.end()
            if case is None and length in (10, 15):
                match = _labelled(source, _CASE_RE, case_first, 0, at)
                if match:
                    case = match.group("case").translate(_TO_ASCII)
    return list(accounts), case


def find_account_ids(subject: str, text: str) -> list[str]:
    """Unique 12-digit account IDs in order of first appearance, the subject's first."""
    return find_identifiers(subject, text)[0]


def find_case_id(subject: str, text: str) -> str | None:
    """The first AWS support case ID (10 or 15 digits), looking in the subject before the body."""
    return find_identifiers(subject, text)[1]

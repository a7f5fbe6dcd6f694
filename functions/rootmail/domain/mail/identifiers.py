"""AWS account IDs and support case IDs named in a mail's subject and body.

Only labelled numbers count: a bare 12-digit number can be an order, invoice or report number, and a
support case ID is 10 or 15 digits. Full-width digits, colons and brackets (Japanese mail) are accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

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
  | (?:影響を受ける\s*)?(?:AWS\s*)?アカウント(?:\s*(?:ID|ＩＤ|番号))?  # アカウント ID： / 影響を受けるアカウント
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
_LABEL_RUN = re.compile(
    r"[a-z\s().:：#=*•・\-\[<（［「【アカウントケースＩＤ番号影響を受ける]*", re.IGNORECASE
)
_ACCOUNT_FIRST = re.compile(
    "[acア影]", re.IGNORECASE
)  # AWS, account, affected, compte, アカウント, 影響を受ける
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


@dataclass(frozen=True)
class Identifiers:
    """The identifiers a mail names. `account_ids`: every labelled account ID (subject first, then body).
    `listed_account_ids`: those of them standing where AWS lists the accounts a notice concerns - a line of the
    body that begins with an account label and holds nothing but the label and its IDs (`Account: 123456789012`,
    `Affected accounts: 111111111111, 222222222222`, a label alone with its IDs on the lines below, the rows of a
    table whose first column is the account). An ID inside a sentence, which may be customer-written text (a budget's name, a resource's description), is never listed.
    `resource_account_ids`: the accounts of ARNs in the text (`arn:aws:sns:us-east-1:123456789012:topic`)."""

    account_ids: tuple[str, ...] = ()
    listed_account_ids: tuple[str, ...] = ()
    resource_account_ids: tuple[str, ...] = ()
    case_id: str | None = None


# What may stand before a listing label on its line (indentation, a bullet) and after its last ID (a closing
# bracket, a short annotation like "(production)", a final comma or full stop).
_LINE_HEAD = re.compile(r"[ \t]*(?:[-*•・][ \t]*)?")
_LINE_TAIL = re.compile(rf"[ \t]*{_CLOSE}?[ \t]*(?:\([^()\n]{{1,60}}\)[ \t]*)?[.,;]?[ \t]*(?:\n|$)")
_ARN_ACCOUNT = re.compile(r"\barn:aws(?:-[a-z]+)*:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):", re.IGNORECASE)


def _listing(source: str, match: re.Match[str]) -> bool:
    """Whether an account label's match is a listing: alone on its line but for its IDs."""
    line_start = source.rfind("\n", 0, match.start()) + 1
    head = _LINE_HEAD.match(source, line_start)
    return head is not None and head.end() == match.start() and bool(_LINE_TAIL.match(source, match.end()))


# AWS's subject tag naming the account a notice is about: `[AWS Account: 123456789012]` (and its Japanese form).
_SUBJECT_TAG = re.compile(
    f"[\\[［【]\\s*AWS\\s*(?:account|アカウント)(?:\\s*(?:ID|ＩＤ))?\\s*[:：]?\\s*"
    f"(?P<ids>{_ACCOUNT}(?:\\s*[,、，]\\s*{_ACCOUNT})*)\\s*[\\]］】]",
    re.IGNORECASE,
)


def subject_tags(subject: str) -> list[tuple[str, ...]]:
    """The account IDs of each of AWS's account tags in a subject, in order."""
    return [
        tuple(a.translate(_TO_ASCII) for a in _ACCOUNT_ONLY_RE.findall(m.group("ids")))
        for m in _SUBJECT_TAG.finditer(subject)
    ]


# A table of affected resources: a header row whose first column is the account, its cells apart by tabs (as an
# HTML table reads in text: "Account ID<tab>Resource<tab>Region"), then rows that each begin with an ID. The rows
# are a listing too.
_TABLE_HEADER = re.compile(
    r"[ \t]*(?:affected\s+)?(?:aws\s+)?account(?:\s*(?:ids?|numbers?))?(?:\s*\(s\))?[ ]*\t"
    r"|[ \t]*(?:影響を受ける\s*)?(?:AWS\s*)?アカウント(?:\s*(?:ID|ＩＤ|番号))?[ ]*\t",
    re.IGNORECASE,
)
_TABLE_ROW = re.compile(rf"[ \t]*({_ACCOUNT})[ ]*(?:\t|$)")


def _table_rows(text: str) -> list[str]:
    """Account IDs that begin the rows under a header row whose first column is the account."""
    if "account" not in text.lower() and "アカウント" not in text:
        return []
    found: list[str] = []
    lines = text.splitlines()
    for number, line in enumerate(lines):
        if "\t" not in line or _TABLE_HEADER.match(line) is None or _ACCOUNT_ONLY_RE.search(line):
            continue  # a label with its IDs on its line is the labelled listing's to read
        for row in lines[number + 1 :]:
            cell = _TABLE_ROW.match(row)
            if cell is None:
                break
            found.append(cell.group(1).translate(_TO_ASCII))
    return found


def find_identifiers(subject: str, text: str) -> Identifiers:
    """Account IDs (named and listed), the accounts of ARNs, and the support case ID: one pass over each text finds
    the numbers for all of them."""
    accounts: dict[str, None] = {}
    listed: dict[str, None] = {}
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
                    found = [a.translate(_TO_ASCII) for a in _ACCOUNT_ONLY_RE.findall(match.group("ids"))]
                    accounts.update(dict.fromkeys(found))
                    if source is text and _listing(source, match):
                        listed.update(dict.fromkeys(found))
                    end = match.end()
            if case is None and length in (10, 15):
                match = _labelled(source, _CASE_RE, case_first, 0, at)
                if match:
                    case = match.group("case").translate(_TO_ASCII)
    table = _table_rows(text)
    accounts.update(dict.fromkeys(table))
    listed.update(dict.fromkeys(table))
    resources = dict.fromkeys(_ARN_ACCOUNT.findall(text)) if "arn:" in text.lower() else {}
    return Identifiers(tuple(accounts), tuple(listed), tuple(resources), case)


def find_account_ids(subject: str, text: str) -> list[str]:
    """Unique 12-digit account IDs in order of first appearance, the subject's first."""
    return list(find_identifiers(subject, text).account_ids)


def find_case_id(subject: str, text: str) -> str | None:
    """The first AWS support case ID (10 or 15 digits), looking in the subject before the body."""
    return find_identifiers(subject, text).case_id

"""AWS account IDs and support case IDs named in a mail's subject and body.

Only labelled numbers count: a bare 12-digit number can be an order, invoice or report number, and a
support case ID is 10 or 15 digits. Full-width digits, colons and brackets (Japanese mail) are accepted.
"""

from __future__ import annotations

import re

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


def find_account_ids(subject: str, text: str) -> list[str]:
    """Unique 12-digit account IDs in order of first appearance, the subject's first."""
    found: dict[str, None] = {}
    for source in (subject, text):
        if not source:
            continue
        for match in _ACCOUNT_RE.finditer(source):
            for account in _ACCOUNT_ONLY_RE.findall(match.group("ids")):
                found.setdefault(account.translate(_TO_ASCII), None)
    return list(found)


def find_case_id(subject: str, text: str) -> str | None:
    """The first AWS support case ID (10 or 15 digits), looking in the subject before the body."""
    for source in (subject, text):
        if source:
            match = _CASE_RE.search(source)
            if match:
                return match.group("case").translate(_TO_ASCII)
    return None

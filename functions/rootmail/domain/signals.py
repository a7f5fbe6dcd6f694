"""What the words of a mail no rule knows suggest, for the operators to judge.

Two readings of the same lexicon: the urgent signals (words that mean someone must look now: compromised,
exposed, abuse, suspended, paused, 侵害, 停止…) that make the pipeline alert the operators at once while the mail
waits in the queue; and a suggested category for each unknown pattern of the digest, with the words or sender that
suggest it. Both are shown to a person and never decide anything by themselves: the mail stays queued until a rule
takes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2

from rootmail.domain.vocabulary import Action, Category, urgency

# Each entry: a category, whether its words are urgent, English words (a regular expression of fixed alternations,
# matched as whole words, case-insensitive: linear over any text) and Japanese words (found as substrings: Japanese
# sets no spaces between words).
_LEXICON: tuple[tuple[Category, bool, str, tuple[str, ...]], ...] = (
    (
        Category.ACCOUNT_COMPROMISE,
        True,
        r"compromised?|exposed|unauthori[sz]ed|inappropriately accessed|suspicious activity|unusual activity"
        r"|(?:unusual|suspicious) sign-ins?(?: activity)?",
        ("侵害", "不正アクセス", "不審な", "漏洩", "流出"),
    ),
    (
        Category.ABUSE_REPORT,
        True,
        r"abuse|abusive|phishing|malware|port scan\w*|denial of service|unsolicited",
        ("不正使用", "不正利用"),
    ),
    (
        Category.SES_SENDING_STATUS,
        True,
        r"sending (?:paused|status|review)|paused|under review|probation|bounce rate|complaint rate",
        ("送信停止", "一時停止", "審査中"),
    ),
    (
        Category.BILLING,
        True,
        r"past due|overdue|payment (?:failed|declined|failure|was declined|method (?:has )?(?:error|declined|expired))"
        r"|card (?:has )?(?:expired|been declined|was declined)|unable to (?:charge|process your payment|collect)"
        r"|unpaid|non-payment|suspended|suspension",
        (
            "未払い",
            "支払い期限",
            "お支払いが失敗",
            "お支払いができ",
            "支払いに失敗",
            "決済ができ",
            "決済に失敗",
            "停止",
        ),
    ),
    (
        Category.BILLING,
        False,
        r"invoice|billing|payment|statement|charges?|tax",
        ("請求", "支払", "お支払い"),
    ),
    (
        Category.CREDENTIALS,
        False,
        r"verification code|one-time (?:password|code)|password|sign-in code",
        ("確認コード", "検証コード", "認証コード", "パスワード"),
    ),
    (
        Category.SUPPORT_CASE,
        False,
        r"support case|case id|limit increase|service quota|production access",
        ("サポートケース", "ケース"),
    ),
    (
        Category.COST_ALERT,
        False,
        r"budgets?|free tier|cost anomaly|forecasted",
        ("予算", "無料利用枠", "コスト異常"),
    ),
    (
        Category.HEALTH,
        False,
        r"scheduled (?:maintenance|change|event)|maintenance|retirement|retiring|end of (?:life|support)"
        r"|deprecat\w*|discontinu\w*|degraded|certificate|upgrade|action required",
        ("メンテナンス", "廃止", "サポート終了", "リタイア", "証明書"),
    ),
    (
        Category.ACCOUNT_LIFECYCLE,
        False,
        r"welcome|account (?:closed|closure|reopened|created)|root user|contact information|email address"
        r"|organizations? invitation",
        ("ルートユーザー", "ようこそ", "解約"),
    ),
    (
        Category.MARKETPLACE,
        False,
        r"marketplace|private offer|subscription",
        ("マーケットプレイス",),
    ),
)
_SEARCH = tuple(
    (category, urgent, re.compile(rf"(?<![^\W_])(?:{words})(?![^\W_])", re.IGNORECASE), japanese)
    for category, urgent, words, japanese in _LEXICON
)
_URGENT_SEARCH = tuple(entry for entry in _SEARCH if entry[1])
# Whether a text may hold an urgent word at all, found in one linear pass by RE2 (Python's re reads the text once
# per category, trying the word boundary at every character): any urgent English word, boundaries left out (which
# finds more, never less), or any urgent Japanese word. RE2's (?i) reads as an ASCII letter every character Python's
# re does, except the Turkish dotted and dotless I (İ, ı), which Python's re reads as i: a text holding either is
# always scanned. No hit means no urgent word, and the categories' scans are skipped.
_ANY_URGENT = re2.compile(
    "(?i)(?:"
    + "|".join(
        [f"(?:{words})" for _, urgent, words, _ in _LEXICON if urgent]
        + [re.escape(word) for _, urgent, _, japanese in _LEXICON if urgent for word in japanese]
    )
    + ")"
)
_ONLY_PYTHON_FOLDS = ("\u0130", "\u0131")  # İ and ı

# Senders whose mail is all of one kind, by address or by domain.
_SENDERS: tuple[tuple[str, Category], ...] = (
    ("signin.aws", Category.CREDENTIALS),
    ("costalerts.amazonaws.com", Category.COST_ALERT),
    ("marketplace.aws", Category.MARKETPLACE),
    ("health@aws.com", Category.HEALTH),
    ("ec2-abuse@amazon.com", Category.ABUSE_REPORT),
    ("trustandsafety@support.aws.com", Category.ABUSE_REPORT),
    ("invoicing@aws.com", Category.BILLING),
)
# The action a suggested category usually takes under the default policy (README's table): what the rule modal
# proposes alongside it.
SUGGESTED_ACTION: dict[Category, Action] = {
    Category.ABUSE_REPORT: Action.URGENT,
    Category.ACCOUNT_COMPROMISE: Action.URGENT,
    Category.SES_SENDING_STATUS: Action.URGENT,
    Category.SUPPORT_CASE: Action.TICKET,
    Category.CREDENTIALS: Action.RESTRICTED,
    Category.BILLING: Action.RESTRICTED,
    Category.HEALTH: Action.FORWARD,
    Category.COST_ALERT: Action.FORWARD,
    Category.ACCOUNT_LIFECYCLE: Action.FORWARD,
    Category.MARKETPLACE: Action.FORWARD,
}
MAX_SIGNALS = 6  # words named in an alert or a suggestion: enough to judge, short enough for a Slack line
SCANNED = 20_000  # characters of the text read for words: the part of a notice a person reads first


@dataclass(frozen=True)
class Suggestion:
    category: Category
    why: str  # the sender or words that suggest it, for the operator to judge

    def to_dict(self) -> dict[str, str]:
        return {"category": str(self.category), "why": self.why}


def _found(pattern: re.Pattern[str], japanese: tuple[str, ...], text: str) -> list[str]:
    words: dict[str, None] = {}
    for match in pattern.finditer(text):
        words[" ".join(match.group().lower().split())] = None
        if len(words) >= MAX_SIGNALS:
            return list(words)
    words.update((word, None) for word in japanese if word in text)
    return list(words)[:MAX_SIGNALS]


def _may_be_urgent(reading: str) -> bool:
    if not reading.isascii() and any(letter in reading for letter in _ONLY_PYTHON_FOLDS):
        return True
    try:
        return _ANY_URGENT.search(reading) is not None
    except UnicodeEncodeError:
        return True  # a lone surrogate (a UTF-7 body can decode to one) is not UTF-8 for RE2: scanned in full


def _scan(subject: str, text: str, *, urgent_only: bool = False) -> list[tuple[Category, bool, list[str]]]:
    # One space for every run of whitespace: a phrase wrapped over a line or spaced twice is still a phrase.
    reading = " ".join(f"{subject}\n{text[:SCANNED]}".split())
    if urgent_only and not _may_be_urgent(reading):
        return []
    hits = []
    for category, urgent, pattern, japanese in _URGENT_SEARCH if urgent_only else _SEARCH:
        found = _found(pattern, japanese, reading)
        if found:
            hits.append((category, urgent, found))
    return hits


def urgent_signals(subject: str, text: str) -> tuple[str, ...]:
    """The urgent words in a mail's subject and text (the first MAX_SIGNALS, each once)."""
    return _urgent(subject, text, frozenset())


def _urgent(subject: str, text: str, leave_out: frozenset[str]) -> tuple[str, ...]:
    # Words are left out before the cap, so words left out never crowd out the others.
    words: dict[str, None] = {}
    # Every mail a rule forwards or ignores is read for them: only the urgent categories' words are looked for.
    for _, urgent, found in _scan(subject, text, urgent_only=True):
        if urgent:
            words.update(dict.fromkeys(w for w in found if w.casefold() not in leave_out))
    return tuple(words)[:MAX_SIGNALS]


# Urgent words that ordinary notices use too: a suspension notice says "suspended", a Japanese maintenance notice
# 停止 (an instance is stopped), a database notice "paused". They alert on mail no rule knows, but do not stop a
# rule's forward or ignore.
# So do AWS's security advice ("to prevent unauthorized access, turn on MFA") and its anti-phishing footers.
_ALSO_ORDINARY = frozenset(
    {"suspended", "suspension", "paused", "停止", "一時停止", "unauthorized", "unauthorised", "phishing"}
)


def alarming_words(subject: str, text: str) -> tuple[str, ...]:
    """The urgent words that a mail a forward or ignore rule took must not carry (see `_ALSO_ORDINARY`)."""
    return _urgent(subject, text, _ALSO_ORDINARY)


def _sender_category(sender: str) -> Category | None:
    sender = sender.lower()
    domain = sender.rpartition("@")[2]
    for known, category in _SENDERS:
        if sender == known or domain == known or domain.endswith("." + known):
            return category
    return None


def suggest(sender: str | None, subject: str, text: str = "") -> Suggestion | None:
    """The category a mail's sender and words point to, and why; None when nothing does. A sender whose mail is
    all of one kind counts for two words; among equals the more urgent category wins."""
    scores: dict[Category, int] = {}
    reasons: dict[Category, list[str]] = {}
    for category, _, found in _scan(subject, text):
        scores[category] = scores.get(category, 0) + len(found)
        reasons.setdefault(category, []).extend(found)
    by_sender = _sender_category(sender or "")
    if by_sender is not None:
        scores[by_sender] = scores.get(by_sender, 0) + 2
    if not scores:
        return None
    best = min(scores, key=lambda c: (-scores[c], urgency(c), str(c)))
    why = []
    if best == by_sender:
        why.append(f"sender {sender}")
    words = list(dict.fromkeys(reasons.get(best, [])))[:MAX_SIGNALS]
    if words:
        why.append("words: " + ", ".join(words))
    return Suggestion(best, "; ".join(why))

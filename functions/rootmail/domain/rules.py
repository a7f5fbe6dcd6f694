"""Rules: named, prioritised matches on sender, subject and body markers that give a mail its category and action.

Rules are data (reviewed TOML files under rules/, and the live rules table); this module validates and compiles them
once, then matches parsed mail with no I/O.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# re's own parser (re._parser since 3.11), for the subject screen only: the literal text a pattern requires, read
# from its parse tree. Matching is RE2's.
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parser  # type: ignore[attr-defined]
from typing import Any

import re2

from rootmail.domain.vocabulary import Action, Category, urgency
from rootmail.errors import RuleError

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_MATCH_KEYS = {"senders", "sender_domains", "subject", "body_any", "body_all"}
_RULE_KEYS = {"id", "description", "priority", "category", "action", "match", "force"}
MAX_PATTERN = 1000
MAX_CLASSIFIED_SUBJECT = 1000  # characters: AWS's subjects are a few hundred at most
# Subjects any rule that "matches every mail" would take: a rule with no sender and no body marker whose subject
# pattern takes all of these is refused unless `force = true`.
_PROBE_SUBJECTS = (
    "",
    "x",
    "Hello",
    "Your AWS account 123456789012",
    "[Action Required] Amazon EC2 instance retirement",
    "ご利用のアカウントについて",
    "RE: [CASE 1234567890] question",
)


@dataclass(frozen=True)
class SubjectScreen:
    """Literal text a subject pattern cannot match without: at least one of `needles` is in the subject (in
    `subject.lower()` when `lowered`). A substring test costs a tenth of a regex search, and most mail fails it
    for most rules, so the regex runs only where it might match."""

    needles: tuple[str, ...]
    lowered: bool


# Under re.IGNORECASE a literal matches its case variants. For these characters the variants are exactly what
# `str.lower()` maps onto the literal's lowercase: ASCII (except i, k and s, which also match İ, ı, K (Kelvin) and
# ſ) and uncased letters and digits (kana, kanji, hangul...). A screen is built from these characters only.
_UNCASED = ("Lo", "Lm", "Nd")


def _screenable(char: str) -> bool:
    if char.isascii():
        return char.lower() not in "iks"
    return unicodedata.category(char) in _UNCASED


def subject_screen(pattern: str) -> SubjectScreen | None:
    """The longest literal text a subject pattern requires, read from the parse tree of Python's re; None when it
    requires none, or when Python's parser cannot read the pattern (RE2's own syntax, like `\\p{Han}`): that rule
    is then always tried. The screen reads literals, groups, alternations and repeats, which RE2 and Python spell
    alike, except inside a bracket, where `[[:alpha:]]` is a class of letters to RE2 and `[[:alph]` then `]` to
    Python: a pattern with `[:` gets no screen."""
    if "[:" in pattern:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like: RE2 is the judge of syntax
            tree = _sre_parser.parse(pattern)
    except (re.error, OverflowError, RecursionError):
        return None
    ignorecase = bool(tree.state.flags & re.IGNORECASE)
    needles = _required_text(list(tree), ignorecase)
    if not needles or min(map(len, needles)) < 2:
        return None
    return SubjectScreen(tuple(sorted(needles)), ignorecase)


def _required_text(items: list[tuple[Any, Any]], ignorecase: bool) -> frozenset[str] | None:
    """Alternatives of which one must appear in any text the sequence matches: the best of its literal runs, its
    repeats of at least one and its alternations whose every branch requires some text."""
    found: list[frozenset[str]] = []
    run: list[str] = []

    def end_run() -> None:
        if run:
            found.append(frozenset(["".join(run)]))
            run.clear()

    def walk(sequence: list[tuple[Any, Any]]) -> None:
        for op, av in sequence:
            if op is _sre_constants.LITERAL:
                char = chr(av)
                if ignorecase and not _screenable(char):
                    end_run()
                else:
                    run.append(char.lower() if ignorecase else char)
            elif op is _sre_constants.AT:
                continue  # zero-width: the literals on either side are adjacent in the text
            elif op is _sre_constants.SUBPATTERN and not av[1] and not av[2]:
                walk(list(av[3]))  # a group without flags of its own is part of the sequence
            elif op is _sre_constants.BRANCH:
                end_run()
                branches = [_required_text(list(branch), ignorecase) for branch in av[1]]
                if all(branches):
                    found.append(frozenset().union(*branches))  # type: ignore[arg-type]
            elif op in (_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT) and av[0] >= 1:
                end_run()
                inner = _required_text(list(av[2]), ignorecase)
                if inner:
                    found.append(inner)
            else:
                end_run()

    walk(items)
    end_run()
    if not found:
        return None
    return max(found, key=lambda alternatives: (min(map(len, alternatives)), -len(alternatives)))


@dataclass(frozen=True)
class Rule:
    id: str
    category: Category
    action: Action
    priority: int = 100
    description: str = ""
    senders: frozenset[str] = frozenset()
    sender_domains: tuple[str, ...] = ()
    subject: SubjectPattern | None = None
    body_any: tuple[str, ...] = ()  # as written; matched case-insensitively
    body_all: tuple[str, ...] = ()
    source: str = ""  # where the rule came from: "rules/support.toml:12" or "table"
    forced: bool = False  # takes every mail on purpose (`force = true`)
    folded_any: tuple[str, ...] = field(default=(), repr=False, compare=False)
    folded_all: tuple[str, ...] = field(default=(), repr=False, compare=False)
    domain_set: frozenset[str] = field(default=frozenset(), repr=False, compare=False)
    screen: SubjectScreen | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        # What matching uses, derived from the rule's conditions however the Rule was made.
        object.__setattr__(self, "folded_any", tuple(m.casefold() for m in self.body_any))
        object.__setattr__(self, "folded_all", tuple(m.casefold() for m in self.body_all))
        object.__setattr__(self, "domain_set", frozenset(self.sender_domains))
        if self.subject is not None:
            object.__setattr__(self, "screen", subject_screen(self.subject.pattern))

    def matches(
        self, sender: str, suffixes: frozenset[str], subject: str, lowered: str, folded_body: str
    ) -> bool:
        """The sender's domain comes as all its suffixes (`domain_suffixes`): one set test per rule, in C.
        `lowered` is `subject.lower()`, for the subject screen."""
        if (
            (self.senders or self.domain_set)
            and sender not in self.senders
            and self.domain_set.isdisjoint(suffixes)
        ):
            return False
        if self.subject is not None:
            screen = self.screen
            if screen is not None and not any(
                needle in (lowered if screen.lowered else subject) for needle in screen.needles
            ):
                return False
            if not self.subject.found_in(subject):
                return False
        if self.folded_all and not all(marker in folded_body for marker in self.folded_all):
            return False
        return not self.folded_any or any(marker in folded_body for marker in self.folded_any)

    def to_item(self) -> dict[str, Any]:
        """The rule as plain data, the same shape a rule file holds (without `source`)."""
        match: dict[str, Any] = {}
        if self.senders:
            match["senders"] = sorted(self.senders)
        if self.sender_domains:
            match["sender_domains"] = list(self.sender_domains)
        if self.subject is not None:
            match["subject"] = self.subject.pattern
        if self.body_any:
            match["body_any"] = list(self.body_any)
        if self.body_all:
            match["body_all"] = list(self.body_all)
        item: dict[str, Any] = {
            "id": self.id,
            "description": self.description,
            "priority": self.priority,
            "category": str(self.category),
            "action": str(self.action),
            "match": match,
        }
        if self.forced:
            item["force"] = True
        return item

    def conditions(self) -> tuple[Any, ...]:
        """What the rule matches on, to find two rules that match exactly the same mail."""
        return (
            self.senders,
            frozenset(self.sender_domains),
            self.subject.pattern if self.subject is not None else None,
            frozenset(self.folded_any),
            frozenset(self.folded_all),
        )


@dataclass(frozen=True)
class Classification:
    category: Category
    action: Action
    rule_id: str | None
    reason: str
    candidates: tuple[str, ...] = field(default=())  # every rule that matched, winner first
    matched_categories: frozenset[Category] = field(default=frozenset())

    def to_dict(self) -> dict[str, Any]:
        return {
            "category": str(self.category),
            "action": str(self.action),
            "rule_id": self.rule_id,
            "reason": self.reason,
            "candidates": list(self.candidates),
        }


def domain_suffixes(domain: str) -> frozenset[str]:
    """`mail.aws.com` → {mail.aws.com, aws.com, com}: a rule's domain matches when it is one of these."""
    parts = domain.split(".") if domain else []
    return frozenset(".".join(parts[i:]) for i in range(len(parts)))


def _domain_in(domain: str, domains: Sequence[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def compile_rule(
    data: dict[str, Any], source: str, locate: Callable[[str | None], str] | None = None
) -> Rule:
    """Validate one rule's data and compile it. Errors name the source (the file and line of the field, when
    `locate` can tell it) and the rule."""
    rule_id = data.get("id")
    named = f"rule {rule_id!r}" if isinstance(rule_id, str) and rule_id else "a rule without an id"

    def fail(problem: str, key: str | None = None) -> RuleError:
        return RuleError(f"{locate(key) if locate else source}: {named}: {problem}")

    if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
        raise fail("`id` must be lowercase letters, digits and dashes (2-63 characters)", "id")
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown field(s) {sorted(unknown)}; allowed: {sorted(_RULE_KEYS)}", sorted(unknown)[0])
    try:
        category = Category(str(data.get("category")))
    except ValueError:
        raise fail(
            f"unknown category {data.get('category')!r}; known: {[str(c) for c in Category]}", "category"
        ) from None
    try:
        action = Action(str(data.get("action")))
    except ValueError:
        raise fail(
            f"unknown action {data.get('action')!r}; known: {[str(a) for a in Action]}", "action"
        ) from None
    priority = data.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1000:
        raise fail("`priority` must be a whole number from 0 to 1000", "priority")
    forced = data.get("force", False)
    if not isinstance(forced, bool):
        raise fail("`force` must be true or false", "force")
    match = data.get("match")
    if not isinstance(match, dict) or not match:
        raise fail("`match` must be a table with at least one condition", "match")
    unknown = set(match) - _MATCH_KEYS
    if unknown:
        raise fail(
            f"unknown match condition(s) {sorted(unknown)}; allowed: {sorted(_MATCH_KEYS)}",
            sorted(unknown)[0],
        )

    def strings(key: str) -> tuple[str, ...]:
        value = match.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise fail(f"`match.{key}` must be a list of non-empty strings", key)
        return tuple(value)

    subject = None
    if "subject" in match:
        if not isinstance(match["subject"], str) or not match["subject"]:
            raise fail("`match.subject` must be a non-empty regular expression", "subject")
        try:
            subject = compile_subject(match["subject"])
        except PatternRefused as exc:
            raise fail(f"`match.subject` {exc}", "subject") from None
    body_any, body_all = strings("body_any"), strings("body_all")
    senders, domains = strings("senders"), strings("sender_domains")
    if any("." not in d.strip(".") for d in domains):
        raise fail(
            "`match.sender_domains` holds domains like aws.com, not a top-level name or a dot",
            "sender_domains",
        )
    if any("@" not in s for s in senders):
        raise fail("`match.senders` holds whole addresses (name@domain)", "senders")
    if action == Action.FORWARD and subject is None and not body_any and not body_all:
        # A sender-only forward rule would forward every unknown mail from that sender: never a catch-all.
        raise fail("a forward rule needs a subject pattern or body markers, not only a sender", "match")
    if (
        not senders
        and not domains
        and not body_any
        and not body_all
        and (subject is None or all(subject.found_in(probe) for probe in _PROBE_SUBJECTS if probe))
        and not forced
    ):
        raise fail(
            "matches every mail (no sender, no body marker, a subject pattern that takes anything): "
            "narrow it, or set `force = true` if that is really meant",
            "subject" if subject is not None else "match",
        )
    return Rule(
        id=rule_id,
        category=category,
        action=action,
        priority=priority,
        description=str(data.get("description", "")),
        senders=frozenset(s.lower() for s in senders),
        sender_domains=tuple(d.lower().lstrip(".") for d in domains),
        subject=subject,
        body_any=body_any,
        body_all=body_all,
        source=locate(None) if locate else source,
        forced=forced,
    )


# What Python's re means by \d, \w and \s (and \D, \W, \S) in a str pattern, in RE2's syntax: RE2's own are ASCII
# only, and subjects hold full-width digits and ideographic spaces. tests/test_rule_patterns.py holds these to
# Python's re over every code point. Python's \w and \W ignore (?i); RE2 would case-fold the letters' class, and
# with it U+0345, a combining mark that folds to ι: hence (?-i:...) around them.
_SPACE = (
    r"\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
)
_NOT_SPACE = (
    r"\x00-\x08\x0e-\x1b!-\x{84}\x{86}-\x{9f}\x{a1}-\x{167f}\x{1681}-\x{1fff}\x{200b}-\x{2027}\x{202a}-\x{202e}"
    r"\x{2030}-\x{205e}\x{2060}-\x{2fff}\x{3001}-\x{10ffff}"
)
_WORD = r"\p{L}\p{N}_"
_CLASSES = {  # escape → (outside a bracket, inside one); \W has no form inside a bracket (_in_re2_syntax)
    "d": (r"\p{Nd}", r"\p{Nd}"),
    "D": (r"\P{Nd}", r"\P{Nd}"),
    "w": (f"(?-i:[{_WORD}])", _WORD),
    "W": (f"(?-i:[^{_WORD}])", ""),
    "s": (f"[{_SPACE}]", _SPACE),
    "S": (f"[^{_SPACE}]", _NOT_SPACE),
}
# `{,3}`: a repeat of 0 to 3 to Python's re, the text "{,3}" to RE2.
_OPEN_LOW_REPEAT = re.compile(r"\{,\d*\}")
# Group openings between `\b` and the character it stands before: `\b(?:Re|Fwd)`.
_GROUP_OPENINGS = re.compile(r"(?:\((?:\?(?:P?<[A-Za-z_]\w*>|[imsU-]*:))?)*")
_LOOKAROUND = re.compile(r"\(\?<?[=!]")
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def _re2_options() -> Any:
    options = re2.Options()
    options.never_capture = True  # a rule asks only whether the subject matches, never for a group
    options.log_errors = (
        False  # a refused pattern is the caller's to report (with its file and line), not stderr's
    )
    # The rest as RE2 has them: Perl syntax with its (?i) (?m) (?s) (?U) flags, leftmost-first like Python's re, `.`
    # not matching a newline, UTF-8 text, and 8 MiB of memory per pattern (a larger one is refused).
    return options


_OPTIONS = _re2_options()


class PatternRefused(RuleError):
    """Why a subject pattern cannot be a rule's: the message completes "`match.subject` ..." (compile_rule adds the
    rule's file and line)."""


@dataclass(frozen=True)
class SubjectPattern:
    """A rule's subject pattern: as the operator wrote it, and compiled with RE2, which matches in time linear in the
    subject whatever the pattern (no backtracking: a forged subject cannot make a rule slow)."""

    pattern: str
    regexp: Any = field(compare=False, repr=False)  # re2's compiled pattern

    def found_in(self, text: str) -> bool:
        return self.regexp.search(text) is not None


def compile_subject(pattern: str) -> SubjectPattern:
    r"""Compile a subject pattern with RE2: RE2's syntax, where `\d`, `\w` and `\s` mean what they mean in Python's
    re (Unicode digits, letters and spaces, not RE2's ASCII ones). Raises PatternRefused, saying why, for what RE2
    cannot run (lookarounds, backreferences...) and for what would mean something else than it says."""
    if len(pattern) > MAX_PATTERN:
        raise PatternRefused(f"is longer than {MAX_PATTERN} characters")
    rewritten = _in_re2_syntax(pattern)
    try:
        regexp = re2.compile(rewritten, _OPTIONS)
    except re2.error as exc:
        raise PatternRefused(_why_refused(pattern, exc)) from None
    except UnicodeError:
        raise PatternRefused("is not valid text (it holds a lone surrogate)") from None
    return SubjectPattern(pattern, regexp)


def pattern_problem(pattern: str) -> str | None:
    """Why a subject pattern is refused, if it is (see `compile_subject`)."""
    try:
        compile_subject(pattern)
    except PatternRefused as exc:
        return str(exc)
    return None


def _why_refused(pattern: str, exc: Exception) -> str:
    said = exc.args[0] if exc.args else ""
    error = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
    if _LOOKAROUND.search(pattern):
        return (
            "uses a lookahead or lookbehind ((?=, (?!, (?<=, (?<!), which RE2 does not run: it matches in one "
            "pass over the subject, without looking around"
        )
    if _BACKREFERENCE.search(pattern):
        return (
            r"uses a backreference (\1, (?P=name)), which RE2 does not run: it matches in one pass over the "
            "subject, without referring back to a group"
        )
    if "too large" in error:
        return f"is too large for RE2 ({error}): a wide class repeated many times, like \\w{{1,1000}}, is; use + instead"
    return f"does not compile with RE2: {error}"


def _in_re2_syntax(pattern: str) -> str:
    r"""The pattern for RE2: `\d \D \w \W \s \S` written out with Python's meaning; the rest as written. Raises
    PatternRefused for what RE2 would read otherwise than Python's re did and cannot be written out."""
    out: list[str] = []
    position, end = 0, len(pattern)
    in_bracket = False
    bracket_start = 0  # where a `]` is still a literal one: `[]a]`, `[^]a]`
    while position < end:
        char = pattern[position]
        if char == "\\" and position + 1 < end:
            code = pattern[position + 1]
            step = 2
            if code == "W" and in_bracket:
                # RE2 has no "none of these categories" to put in a bracket beside other characters.
                raise PatternRefused(r"puts \W inside [...]: write it beside the bracket, as (?:\W|[...])")
            if code in _CLASSES:
                out.append(_CLASSES[code][in_bracket])
                position += step
                continue
            if code == "Q" and not in_bracket:  # \Q...\E: literal text, nothing in it to rewrite
                quoted = pattern.find(r"\E", position + 2)
                step = (end if quoted < 0 else quoted + 2) - position
            elif code in "pPx" and pattern.startswith("{", position + 2):  # \p{Han}, \x{3042}
                closing = pattern.find("}", position + 2)
                step = (end if closing < 0 else closing + 1) - position
            elif code == "C":
                raise PatternRefused(r"uses \C (any one byte), which can match half a character")
            elif code in "bB" and not in_bracket:
                _check_boundary(pattern, position)
            out.append(pattern[position : position + step])
            position += step
            continue
        if in_bracket:
            if char == "[" and pattern.startswith("[:", position):  # [:alpha:] inside a bracket
                closing = pattern.find(":]", position + 2)
                if closing >= 0:
                    out.append(pattern[position : closing + 2])
                    position = closing + 2
                    continue
            elif char == "]" and position > bracket_start:
                in_bracket = False
        elif char == "[":
            in_bracket = True
            bracket_start = position + 1 + pattern.startswith("^", position + 1)
            out.append(pattern[position:bracket_start])
            position = bracket_start
            continue
        elif char == "{" and (low := _OPEN_LOW_REPEAT.match(pattern, position)):
            raise PatternRefused(
                f"holds `{low.group()}`, which Python's re read as a repeat from 0 and RE2 reads as text: "
                f"write `{{0{low.group()[1:]}` for the repeat, or `\\{low.group()}` for the text"
            )
        out.append(char)
        position += 1
    return "".join(out)


def _check_boundary(pattern: str, position: int) -> None:
    r"""RE2's `\b` and `\B` know only ASCII letters, digits and _ as word characters (Python's re knew all letters):
    next to what can match 請 a boundary would be found where there is none, and none where there is one (a rule
    that never matches). Refused when the piece of pattern on either side can match a letter beyond ASCII: such a
    letter, a bracket or escape holding one, `\w`, `\d` (Python counts full-width digits as word characters),
    `\W`, `\D`, `\S`, `\p{…}`, `.`."""
    head = pattern[:position].rstrip(")")
    head = re.sub(
        r"(?:[*+?]|\{\d*(?:,\d*)?\})\??$", "", head
    )  # a repeat: the piece repeated is the neighbour
    openings = _GROUP_OPENINGS.match(pattern, position + 2)
    tail = pattern[openings.end() if openings else position + 2 :]
    for piece in (_last_piece(head), _first_piece(tail)):
        if piece and _may_match_a_letter_beyond_ascii(piece):
            raise PatternRefused(
                f"puts {pattern[position : position + 2]} next to '{piece}', which can match a letter beyond ASCII: "
                "RE2 counts only ASCII letters, digits and _ as word characters, so there it would not mean a word "
                "boundary; write the pattern without it"
            )


def _last_piece(head: str) -> str:
    r"""The last atom of a pattern's start: a character, an escape, a bracket, `\x{…}`/`\p{…}`."""
    if not head:
        return ""
    if head.endswith("]"):
        start = head.rfind("[")
        return head[start:] if start >= 0 else head[-1]
    if head.endswith("}"):
        start = max(head.rfind("\\x{"), head.rfind("\\p{"), head.rfind("\\P{"))
        return head[start:] if start >= 0 else head[-1]
    if len(head) >= 2 and head[-2] == "\\":
        return head[-2:]
    return head[-1]


def _first_piece(tail: str) -> str:
    """The first atom of a pattern's end (see `_last_piece`)."""
    if not tail:
        return ""
    if tail.startswith("["):
        end = tail.find("]", 2 if tail.startswith(("[]", "[^]")) else 1)
        return tail[: end + 1] if end >= 0 else tail
    if tail[:2] in ("\\x", "\\p", "\\P") and tail[2:3] == "{":
        return tail[: tail.find("}") + 1 or len(tail)]
    return tail[:2] if tail.startswith("\\") else tail[:1]


def _may_match_a_letter_beyond_ascii(piece: str) -> bool:
    if piece in ("\\w", "\\W", "\\d", "\\D", "\\S", ".") or piece[:2] in ("\\p", "\\P"):
        return True
    if piece.startswith("\\x{"):
        try:
            return int(piece[3:-1], 16) > 0x7F
        except ValueError:
            return True
    if piece.startswith("["):
        inside = piece[1:-1]
        return (
            inside.startswith("^")
            or any(code in inside for code in ("\\w", "\\W", "\\d", "\\D", "\\S", "\\p", "\\P", "\\x", "[:"))
            or any(not c.isascii() and (c.isalnum() or c == "_") for c in inside)
        )
    return any(not c.isascii() and (c.isalnum() or c == "_") for c in piece)


def _compile_each(items: Iterable[tuple[dict[str, Any], str]]) -> tuple[list[Rule], list[str]]:
    """Every rule that compiles, and what is wrong with the others."""
    rules: list[Rule] = []
    problems: list[str] = []
    for data, source in items:
        try:
            rules.append(compile_rule(data, source))
        except RuleError as exc:
            problems.append(str(exc))
    return rules, problems


def compile_rules(items: Iterable[tuple[dict[str, Any], str]]) -> list[Rule]:
    """Compile (data, source) pairs and check them as a set. Returned in matching order."""
    rules, problems = _compile_each(items)
    problems += set_problems(rules)
    if problems:
        raise RuleError("\n".join(problems))
    return sort_rules(rules)


def usable_rules(items: Iterable[tuple[dict[str, Any], str]]) -> tuple[list[Rule], list[str]]:
    """The live rules as the pipeline uses them: a rule invalid on its own is left out (and said), but problems of
    the set (a tie, two rules alike) never stop triage: the order is still deterministic (urgency, priority, ID).
    Writes are validated as a set before they happen (`rootmail rules push`, the Slack modal, rollback)."""
    rules, problems = _compile_each(items)
    ids: set[str] = set()
    unique = []
    for rule in rules:
        if rule.id not in ids:
            ids.add(rule.id)
            unique.append(rule)
    return sort_rules(unique), problems + set_problems(rules)


def set_problems(rules: Sequence[Rule]) -> list[str]:
    """What is wrong with rules together: an ID twice, two rules with the same conditions, and two rules that can
    take the same mail at the same rank (urgency and priority) with different outcomes, where only their IDs would
    decide."""
    problems: list[str] = []
    seen: dict[str, Rule] = {}
    conditions: dict[tuple[Any, ...], Rule] = {}
    for rule in rules:
        if rule.id in seen:
            problems.append(
                f"{rule.source}: rule {rule.id!r} is defined twice (also at {seen[rule.id].source})"
            )
            continue
        seen[rule.id] = rule
        same = conditions.setdefault(rule.conditions(), rule)
        if same is not rule:
            problems.append(
                f"{rule.source}: rule {rule.id!r} matches exactly what rule {same.id!r} ({same.source}) matches: "
                "merge them or make one narrower"
            )
    unique = list(seen.values())
    for index, rule in enumerate(unique):
        for other in unique[index + 1 :]:
            if (
                urgency(rule.category) == urgency(other.category)
                and rule.priority == other.priority
                and (rule.category, rule.action) != (other.category, other.action)
                and _senders_overlap(rule, other)
            ):
                problems.append(
                    f"{rule.source}: rule {rule.id!r} and rule {other.id!r} ({other.source}) can match the same "
                    f"mail with the same priority {rule.priority} but give {rule.category}/{rule.action} and "
                    f"{other.category}/{other.action}: give one a higher priority"
                )
    return problems


def _senders_overlap(one: Rule, other: Rule) -> bool:
    """Could one sender pass both rules' sender conditions? (No sender condition: any sender.)"""
    if not (one.senders or one.sender_domains) or not (other.senders or other.sender_domains):
        return True
    if one.senders & other.senders:
        return True
    for a, b in ((one, other), (other, one)):
        if any(_domain_in(s.rpartition("@")[2], b.sender_domains) for s in a.senders):
            return True
    return any(
        _domain_in(d, other.sender_domains) or _domain_in(e, one.sender_domains)
        for d in one.sender_domains
        for e in other.sender_domains
    )


def sort_rules(rules: Iterable[Rule]) -> list[Rule]:
    # Most urgent category first, then higher priority, then id: the first match wins, deterministically.
    return sorted(rules, key=lambda r: (urgency(r.category), -r.priority, r.id))


def load_rule_files(directory: Path) -> list[Rule]:
    """Read every *.toml under `directory`: each holds `[[rule]]` tables. Every problem in every file is reported
    at once, each with its file and line."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise RuleError(f"{directory}: no rule files (*.toml) found")
    rules: list[Rule] = []
    problems: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            problems.append(f"{path}: not valid TOML: {exc}")
            continue
        entries = document.get("rule", [])
        if not isinstance(entries, list) or set(document) - {"rule"}:
            problems.append(f"{path}:1: a rule file holds only [[rule]] tables")
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"{path}: `rule` entries must be [[rule]] tables, not {type(entry).__name__}")
                continue
            try:
                rules.append(compile_rule(entry, str(path), _locator(path, text, index)))
            except RuleError as exc:
                problems.append(str(exc))
    problems += set_problems(rules)
    if problems:
        raise RuleError("\n".join(problems))
    return sort_rules(rules)


_TABLE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")
_MATCH_HEADER = re.compile(r"^\s*\[\s*rule\.match\s*\]")


def _locator(path: Path, text: str, index: int) -> Callable[[str | None], str]:
    """`file:line` of the index-th [[rule]] table, or of one of its keys (in [rule.match] for match keys)."""
    lines = text.splitlines()
    headers = [number for number, line in enumerate(lines) if _TABLE_HEADER.match(line)]
    start = headers[index] if index < len(headers) else 0
    end = headers[index + 1] if index + 1 < len(headers) else len(lines)

    def locate(key: str | None) -> str:
        if key is not None:
            in_match = False
            for number in range(start, end):
                line = lines[number]
                if _MATCH_HEADER.match(line):
                    in_match = True
                    continue
                if re.match(rf"^\s*{re.escape(key)}\s*=", line) and (in_match or key not in _MATCH_KEYS):
                    return f"{path}:{number + 1}"
        return f"{path}:{start + 1}"

    return locate


class RuleSet(Sequence[Rule]):
    """Rules in matching order, indexed by literal text each one cannot match without (a subject screen's needles,
    else a body marker), so a mail is matched in full only against the rules whose text it holds. Build it once per
    set of rules (the pipeline does, when it loads them) and classify many mails with it."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self._rules = tuple(rules)
        self._always: list[int] = []  # rules with no text to index by: matched in full every time
        self._by_subject: dict[str, list[int]] = {}  # needle (in the subject as it is) → rules
        self._by_lowered: dict[str, list[int]] = {}  # needle (in the lowercased subject) → rules
        self._by_body: dict[str, list[int]] = {}  # casefolded body marker → rules
        for position, rule in enumerate(self._rules):
            if rule.screen is not None:
                index = self._by_lowered if rule.screen.lowered else self._by_subject
                keys: Iterable[str] = rule.screen.needles
            elif rule.folded_all:
                index, keys = self._by_body, rule.folded_all[:1]
            elif rule.folded_any:
                index, keys = self._by_body, rule.folded_any
            else:
                self._always.append(position)
                continue
            for key in keys:
                index.setdefault(key, []).append(position)

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> RuleSet:
        """`rules` indexed, unless they already are."""
        return rules if isinstance(rules, RuleSet) else cls(rules)

    def __len__(self) -> int:
        return len(self._rules)

    def __getitem__(self, index: Any) -> Any:
        return self._rules[index]

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self._rules)} rules)"

    def candidates(self, subject: str, lowered: str, folded_body: str) -> list[Rule]:
        """The rules that may match, in matching order: a superset of those that do."""
        positions = set(self._always)
        for index, text in (
            (self._by_lowered, lowered),
            (self._by_subject, subject),
            (self._by_body, folded_body),
        ):
            for key, found in index.items():
                if key in text:
                    positions.update(found)
        return [self._rules[position] for position in sorted(positions)]


def classify(
    rules: Sequence[Rule], *, sender: str | None, sender_domain: str | None, subject: str, text: str
) -> Classification:
    """The first rule in matching order wins; every match is reported. No match: unclassified, queued. Subject
    patterns see the subject's first MAX_CLASSIFIED_SUBJECT characters: RE2 is linear in the text, but an operator's
    pattern of wide counted repeats costs tens of microseconds a character, and a forged subject can be long."""
    ruleset = RuleSet.of(rules)
    subject = subject[:MAX_CLASSIFIED_SUBJECT]
    folded, lowered = text.casefold(), subject.lower()
    sender, domain = (sender or "").lower(), (sender_domain or "").lower()
    suffixes = domain_suffixes(domain)
    matched = [
        r
        for r in ruleset.candidates(subject, lowered, folded)
        if r.matches(sender, suffixes, subject, lowered, folded)
    ]
    if not matched:
        return Classification(Category.UNCLASSIFIED, Action.QUEUE, None, "no rule matched")
    winner = matched[0]
    reason = f"rule {winner.id}"
    if len(matched) > 1:
        reason += f" (most urgent of {len(matched)} matching rules)"
    return Classification(
        winner.category,
        winner.action,
        winner.id,
        reason,
        tuple(r.id for r in matched),
        frozenset(r.category for r in matched),
    )

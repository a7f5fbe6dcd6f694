"""Subject patterns, matched with RE2 (linear time whatever the pattern): Python's \\d, \\w and \\s written out
for RE2, and what RE2 lacks refused with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import re2

from rootmail.errors import RuleError

MAX_PATTERN = 1000  # characters of a subject pattern


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

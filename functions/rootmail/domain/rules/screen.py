"""The subject screen: the literal text a rule's subject pattern cannot match without, read from re's parse
tree, so that the index tries a rule in full only on subjects that hold it.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from dataclasses import dataclass

# re's own parser (re._parser since 3.11), for the subject screen only: the literal text a pattern requires, read
# from its parse tree. Matching is RE2's.
from re import _constants as _sre_constants  # type: ignore[attr-defined]
from re import _parser as _sre_parser  # type: ignore[attr-defined]
from typing import Any


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

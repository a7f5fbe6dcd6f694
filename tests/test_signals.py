"""Urgent words and suggested categories: what an operator is shown about mail no rule knows."""

from __future__ import annotations

import re
import sys

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from rootmail.domain import signals
from rootmail.domain.signals import suggest, urgent_signals
from rootmail.domain.vocabulary import Category


@pytest.mark.parametrize(
    ("subject", "text", "words"),
    [
        ("Your AWS account may have been compromised", "", {"compromised"}),
        ("Notice", "We found an exposed access key belonging to your account.", {"exposed"}),
        ("Notice", "unauthorized use of your resources", {"unauthorized"}),
        ("Amazon EC2 report", "We have received a report of abuse from your instance.", {"abuse"}),
        ("Your account is about to be suspended", "", {"suspended"}),
        ("Amazon SES", "Your account's ability to send has been paused.", {"paused"}),
        ("Amazon SES", "Your account is under review.", {"under review"}),
        ("お知らせ", "お客様の AWS アカウントが侵害された可能性があります。", {"侵害"}),
        ("お知らせ", "不正利用の報告を受け取りました。", {"不正利用"}),
        ("お知らせ", "アカウントは停止されます。", {"停止"}),
    ],
)
def test_urgent_words_are_found(subject, text, words):
    assert words <= set(urgent_signals(subject, text))


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Join us at AWS re:Invent 2026", "Register now for keynotes, sessions and the expo."),
        ("Amazon Web Services Billing Statement Available", "Your statement for the period is available."),
        ("AWS Summit Tokyo のご案内", "ご登録をお待ちしております。"),
        # Words inside other words are not the word: "abused" is, "disabuse" and "unexposedness" are not read as
        # the marks they contain only as a run of letters.
        ("Disabuse yourself of myths", "nonexposedness"),
    ],
)
def test_ordinary_mail_has_no_urgent_words(subject, text):
    assert urgent_signals(subject, text) == ()


def test_urgent_words_are_named_once_and_bounded():
    text = " ".join(["compromised exposed abuse phishing malware paused suspended unpaid overdue"] * 50)
    words = urgent_signals("", text)
    assert len(words) == len(set(words)) <= 6


def test_a_word_far_down_a_long_text_is_not_read():
    # The alert is about what a person reads first; a word after 20,000 characters of text does not count.
    assert urgent_signals("Newsletter", "x " * 10_001 + "compromised") == ()


@pytest.mark.parametrize(
    ("sender", "subject", "text", "category", "why"),
    [
        (
            "no-reply-aws@amazon.com",
            "[Retirement Notification] Amazon EC2 Instance",
            "",
            Category.HEALTH,
            "retirement",
        ),
        (
            "ec2-abuse@amazon.com",
            "Your Amazon EC2 Abuse Report",
            "",
            Category.ABUSE_REPORT,
            "sender ec2-abuse",
        ),
        ("no-reply@amazonaws.com", "Your payment failed", "", Category.BILLING, "payment failed"),
        (
            "no-reply-aws@amazon.com",
            "RE: Limit Increase: EC2 Instances",
            "",
            Category.SUPPORT_CASE,
            "limit increase",
        ),
        ("budgets@costalerts.amazonaws.com", "Alert", "", Category.COST_ALERT, "sender budgets@"),
        ("no-reply@verify.signin.aws", "Message", "", Category.CREDENTIALS, "sender no-reply@verify"),
        ("no-reply-aws@amazon.com", "お支払いが失敗しました", "", Category.BILLING, "お支払いが失敗"),
        (
            "no-reply-aws@amazon.com",
            "Your AWS account may have been compromised",
            "",
            Category.ACCOUNT_COMPROMISE,
            "compromised",
        ),
    ],
)
def test_the_suggestion_names_a_category_and_why(sender, subject, text, category, why):
    found = suggest(sender, subject, text)
    assert found is not None
    assert found.category == category
    assert why in found.why


def test_among_equals_the_more_urgent_category_is_suggested():
    # One word for billing ("suspended"), one for compromise: compromise is the more urgent.
    found = suggest("no-reply-aws@amazon.com", "Account suspended", "It was compromised.")
    assert found is not None and found.category == Category.ACCOUNT_COMPROMISE


def test_nothing_is_suggested_without_evidence():
    assert suggest("no-reply-aws@amazon.com", "Hello", "A note from us.") is None
    # A look-alike sender domain is not the sender family.
    assert suggest("x@ec2-abuse.amazon.com.example", "Hello", "") is None


def test_every_character_pythons_re_reads_as_an_urgent_words_letter_is_read_so_by_re2_or_always_scanned():
    """The one-pass check before the categories' scans (signals._may_be_urgent) finds with RE2 what Python's re
    finds: over every code point, each character that (?i) makes one of the urgent words' letters in Python's re
    is one in RE2 too, or is one of the few whose texts are always scanned."""
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF)
    letters = {c.lower() for _, urgent, words, _ in signals._LEXICON if urgent for c in words if c.isalpha()}
    assert letters >= set("abcdefilmnoprstuvwxyz")
    python_only = set()
    for letter in sorted(letters):
        in_python = set(re.findall(re.escape(letter), everything, re.IGNORECASE))
        in_re2 = set(re2.findall("(?i)" + re2.escape(letter), everything))
        python_only |= in_python - in_re2
    assert python_only == set(signals._ONLY_PYTHON_FOLDS)


urgent_english = [
    w for _, urgent, words, _ in signals._LEXICON if urgent for w in re.findall(r"[a-z -]{4,}", words)
]
pieces = st.sampled_from(
    [
        *urgent_english,
        "unauthorİzed",
        "phıshing",
        "abuſe",
        "past due",
        "侵害",
        "停止",
        "-",
        "_",
        " ",
        "\n",
        "x",
        "İ",
        "\ud800",  # a lone surrogate, which a UTF-7 body can decode to
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(pieces, max_size=8).map("".join), st.text(max_size=40))
def test_a_text_the_one_pass_check_passes_over_holds_no_urgent_word(words, noise):
    for text in (words, noise + words, words.upper() + noise, noise):
        reading = " ".join(text.split())
        found = [
            w
            for _, urgent, pattern, japanese in signals._SEARCH
            if urgent
            for w in signals._found(pattern, japanese, reading)
        ]
        if found:
            assert signals._may_be_urgent(reading), (reading, found)


def test_words_hidden_behind_a_turkish_i_are_still_found():
    # Python's re reads İ and ı as i, RE2 does not: such a text skips the one-pass check.
    assert urgent_signals("Notice", "phıshing reported") == ("phıshing",)
    assert urgent_signals("Notice", "UNAUTHORİZED use") != ()

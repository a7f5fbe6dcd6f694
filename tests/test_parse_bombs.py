"""parse_mail on hostile mail up to SES's 40 MB (tests/hostile.py): it returns, says what it cut, keeps every field
within its cap, and still reads the text before the hostile part. Time is never asserted here:
`scripts/bench.py --only parse-bombs` reports it, next to a normal mail."""

from __future__ import annotations

import itertools
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostile import CODE, HOSTILE, SES_MAXIMUM
from rootmail.domain.mail import headers, html_text
from rootmail.domain.mail import mime as mime_parser
from rootmail.domain.mail.body import MAX_HTML_CHARS, MAX_OTHER_TEXT_CHARS, MAX_TEXT_CHARS
from rootmail.domain.mail.html_text import html_to_text
from rootmail.domain.mail.mime import (
    MAX_CONTAINERS,
    MAX_HEADER_CHARS,
    MAX_HEADER_FIELDS,
    MAX_LINE_VISITS,
    MAX_MIME_LINES,
)
from rootmail.domain.mail.model import ParsedMail
from rootmail.domain.mail.parse import (
    MAX_ADDRESS_CHARS,
    MAX_PARSED_ACCOUNT_IDS,
    MAX_PARSED_PROBLEMS,
    parse_mail,
)

SEEN = CODE.decode()


def assert_bounded(mail: ParsedMail) -> None:
    """No field of the result beyond its cap, and every one valid text."""
    for name in (
        "message_id",
        "sender",
        "sender_name",
        "sender_domain",
        "subject",
        "date",
        "envelope_recipient",
    ):
        assert len(getattr(mail, name) or "") <= MAX_HEADER_CHARS, name
    for name in ("from_addresses", "recipients", "other_senders"):
        assert sum(map(len, getattr(mail, name))) <= 2 * MAX_ADDRESS_CHARS, name
    assert len(mail.text) <= MAX_TEXT_CHARS and len(mail.other_text) <= MAX_OTHER_TEXT_CHARS
    assert len(mail.account_ids) <= MAX_PARSED_ACCOUNT_IDS
    assert len(mail.problems) <= MAX_PARSED_PROBLEMS and all(len(p) <= 300 for p in mail.problems)
    json.dumps(mail.to_summary(), ensure_ascii=False).encode("utf-8")
    (mail.text + mail.other_text).encode("utf-8")


_CUT = r"[\d,]+ characters cut to " + f"{MAX_HEADER_CHARS:,}"
_READ = r": only the first [\d,]+ bytes were read"
_TEXT = f"more than {MAX_TEXT_CHARS // 1024**2} MB of text: the rest not read"
_HTML = f"more than {MAX_HTML_CHARS // 1024} KB of HTML: the rest not converted to text"
_FIELDS = f"more than {MAX_HEADER_FIELDS:,} header fields" + _READ
# What each hostile mail of 40 MB must say it cut (patterns), besides reading only its first 8 MB.
EXPECTED: dict[str, list[str]] = {
    "from-without-at": ["From header of " + _CUT, "invalid header: From"],
    "from-address-pieces": ["From header of " + _CUT],
    "from-nested-comments": ["From header of " + _CUT],
    "address-headers": ["From header of " + _CUT, "To header of " + _CUT, "Sender header of " + _CUT],
    "many-from": [_FIELDS, f"From headers of more than {MAX_ADDRESS_CHARS:,} characters: the rest not read"],
    "many-recipients": [_FIELDS, "Cc header of " + _CUT, "To and Cc headers of more than"],
    "many-received": [_FIELDS],
    "subject-plain": ["Subject header of " + _CUT],
    "subject-encoded-words": ["Subject header of " + _CUT],
    "subject-8bit-junk": ["Subject header of " + _CUT],
    "content-type-rfc2231": ["Content-Type header of " + _CUT, "malformed MIME headers past the first"],
    "content-type-semicolons": ["Content-Type header of " + _CUT, "malformed MIME headers past the first"],
    "content-type-comments": ["Content-Type header of " + _CUT],
    "multipart-boundary-late": ["Content-Type header of " + _CUT],
    "many-malformed-content-types": [
        f"more than {MAX_MIME_LINES:,} MIME boundary and Content-Type lines" + _READ
    ],
    "many-parts": [f"more than {MAX_MIME_LINES:,} MIME boundary and Content-Type lines" + _READ],
    "many-unknown-charsets": [
        f"more than {MAX_MIME_LINES:,} MIME boundary and Content-Type lines" + _READ,
        r"[\d,]+ more problems",
    ],
    "nested-multiparts": [f"more than {MAX_CONTAINERS} multipart parts or attached messages" + _READ],
    "nested-messages": [f"more than {MAX_CONTAINERS} multipart parts or attached messages" + _READ],
    "unsplit-multiparts": [f"more than {MAX_CONTAINERS} multipart parts or attached messages" + _READ],
    "short-lines": [f"more than {MAX_LINE_VISITS:,} lines to split" + ".*" + _READ],
    "long-line": [_TEXT],
    "text-euc-junk": [_TEXT, "undecodable text in charset: euc-jp", "more than 1 MB of text in attachments"],
    "text-iso2022-junk": [_TEXT, "undecodable text in charset: iso-2022-jp"],
    "text-account-lists": [_TEXT],
    "text-label-runs": [_TEXT],
    "text-attachments": ["more than 1 MB of text in attachments and attached messages: the rest not read"],
    "html-end-tags": [_TEXT, _HTML],
    "html-start-tags": [_TEXT, _HTML],
    "html-comments": [_TEXT, _HTML],
    "html-declarations": [_TEXT, _HTML],
    "html-unquoted-attributes": [_TEXT, _HTML],
    "html-lone-brackets": [_TEXT, _HTML],
    "html-marked-sections": [_TEXT, _HTML, "unparseable HTML body"],
    "html-dense-tags": [_TEXT, _HTML],
    "html-attachments": ["more than 1 MB of text in attachments", _HTML],
}
# The header fields past the bound are the mail's own: its text is not read (and it is queued, see triage.py).
TEXT_NOT_READ = {"many-from", "many-recipients", "many-received"}


def test_every_hostile_mail_has_its_expectations():
    assert set(EXPECTED) == set(HOSTILE)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_mail_of_40_mb_is_read_within_bounds_and_says_what_was_cut(name):
    raw = HOSTILE[name](SES_MAXIMUM)
    assert len(raw) > SES_MAXIMUM - 64 * 1024
    mail = parse_mail(raw)
    assert_bounded(mail)
    assert mail.truncated and "only the first 8 MB were read" in mail.problems[0]
    for pattern in EXPECTED[name]:
        assert any(re.search(pattern, p) for p in mail.problems), (pattern, mail.problems)
    assert not any(p.startswith(("unparseable message", "failed to read")) for p in mail.problems)
    if name in TEXT_NOT_READ:
        assert mail.text == "" and "no text body" in mail.problems
    else:
        assert SEEN in mail.text


# --- the cases found first, at the size they were found at ---------------------------------------------------


def _mail(*headers: bytes, body: bytes = b"\r\n" + CODE + b"\r\n") -> bytes:
    top = (
        b"From: a@example.com\r\nSubject: x\r\nDate: Wed, 10 Jul 2024 11:21:07 +0900\r\nMessage-ID: <m@x>\r\n"
    )
    return top + b"".join(headers) + body


def test_an_80_kb_from_without_at_is_cut_before_it_is_parsed():
    mail = parse_mail(_mail(b"From: " + b"a" * 80_000 + b"\r\n"))
    assert f"From header of 80,000 characters cut to {MAX_HEADER_CHARS:,}" in mail.problems
    assert mail.from_addresses == ["a@example.com"] and SEEN in mail.text


def test_a_120_kb_content_type_of_rfc2231_parameters_is_cut_and_the_text_still_read():
    params = b"".join(b"; p%d*=utf-8''%%41%%42;;;;" % i for i in range(5000))[:120_000]
    mail = parse_mail(_mail(b"MIME-Version: 1.0\r\nContent-Type: text/plain" + params + b"\r\n"))
    assert f"Content-Type header of 120,010 characters cut to {MAX_HEADER_CHARS:,}" in mail.problems
    assert mail.text == SEEN


def test_a_megabyte_of_unclosed_end_tags_keeps_the_text_before_them():
    body = b"\r\n<p>" + CODE + b"</p>" + b"</a" * 350_000 + b"\r\n"
    mail = parse_mail(_mail(b"MIME-Version: 1.0\r\nContent-Type: text/html\r\n", body=body))
    assert mail.text.startswith(SEEN + "\n")
    assert _HTML in mail.problems and len(mail.text) <= MAX_HTML_CHARS


def test_nested_comments_in_a_content_type_no_longer_cost_the_whole_mail():
    mail = parse_mail(
        _mail(b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8 " + b"(" * 3000 + b"\r\n")
    )
    assert mail.text == SEEN and mail.sender == "a@example.com"


def test_multiparts_nested_deeper_than_the_bound_are_cut_and_the_text_above_them_read():
    opening = b"".join(
        b'--%d\r\nContent-Type: multipart/mixed; boundary="%d"\r\n\r\n' % (i, i + 1) for i in range(1500)
    )
    body = (
        b"\r\n--0\r\nContent-Type: text/plain\r\n\r\n" + CODE + b"\r\n" + opening + b"--1500\r\n\r\ndeep\r\n"
    )
    mail = parse_mail(
        _mail(b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="0"\r\n', body=body)
    )
    assert mail.text == SEEN and mail.truncated
    assert any(p.startswith(f"more than {MAX_CONTAINERS} multipart parts") for p in mail.problems)


def test_an_address_list_past_its_bound_keeps_whole_mailboxes_in_order():
    many = ", ".join(f"user{i}@spam.example" for i in range(3000)).encode()
    mail = parse_mail(_mail(b"To: root@example.com\r\nCc: " + many + b"\r\n"))
    kept = len(mail.recipients)
    assert mail.recipients == ["root@example.com", *(f"user{i}@spam.example" for i in range(kept - 1))]
    assert (
        500 < kept < 3000
        and "To and Cc headers of more than 16,384 characters: the rest not read" in mail.problems
    )


def test_a_part_of_more_text_than_the_bound_is_cut_at_a_line_break():
    line = b"x" * 99 + b"\n"
    mail = parse_mail(
        _mail(b"Content-Type: text/plain\r\n", body=b"\r\n" + line * (MAX_TEXT_CHARS // 100 + 10))
    )
    assert _TEXT in mail.problems and mail.truncated
    assert mail.text == ("x" * 99 + "\n") * (MAX_TEXT_CHARS // 100 - 1) + "x" * 99


def test_a_mail_within_every_bound_is_not_cut():
    raw = _mail(b"Content-Type: text/plain\r\n", body=b"\r\n" + b"y" * 70 + b"\r\n" * 100_000)
    mail = parse_mail(raw)
    assert not mail.truncated and mail.text == "y" * 70 and mail.problems == ["no SES receipt block on top"]


# --- fuzzing: hostile pieces anywhere -------------------------------------------------------------------------

_UNITS = [
    b"a",
    b"@",
    b"a@",
    b"(",
    b'"',
    b"<",
    b"</a",
    b"<!--",
    b"<a ",
    b'="',
    b";",
    b"=?utf-8?q?a?=",
    b"=?",
    b"\\",
    b"\xa4\xa2",
    b"\x1b$B",
    b"\x8f",
    b"\r\n",
    b"\r",
    b"\r\n ",
    b"--B\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n\r\n",
    b"Content-Type: message/rfc822\r\n\r\n",
    b"X: y\r\n",
    b"Account: 123456789012, ",
    b"case ",
]
_PLACES = ["From", "To", "Subject", "Message-ID", "Date", "Content-Type", "body", "html", "part"]


def _hostile_mail(place: str, unit: bytes, count: int) -> bytes:
    piece = unit * count
    head = b"From: a@example.com\r\nTo: r@example.com\r\nSubject: s\r\nMessage-ID: <m@x>\r\n"
    if place in ("From", "To", "Subject", "Message-ID", "Date", "Content-Type"):
        return head + place.encode() + b": " + piece + b"\r\n\r\n" + CODE + b"\r\n"
    if place == "body":
        return head + b"\r\n" + CODE + b"\r\n" + piece
    if place == "html":
        return head + b"Content-Type: text/html\r\n\r\n<p>" + CODE + b"</p>" + piece
    return (
        head
        + b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n\r\n'
        + CODE
        + b"\r\n--B\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n"
        + piece
        + b"\r\n--B--\r\n"
    )


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(_PLACES),
    st.lists(st.sampled_from(_UNITS), min_size=1, max_size=3),
    st.integers(1, 20_000),
)
def test_hostile_pieces_anywhere_give_a_bounded_result(place, units, count):
    mail = parse_mail(_hostile_mail(place, b"".join(units), count))
    assert_bounded(mail)
    assert not any(p.startswith(("unparseable message", "failed to read")) for p in mail.problems)


# --- the linear paths read what the paths they replace read ----------------------------------------------------

_OLD_ADDRESS_TOKEN = re.compile(r"[^\s<>\"(),;:@\[\]\\]+@[^\s<>\"(),;:@\[\]\\]+")


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["a", "b.", "@", " ", "<", ">", '"', "(", ")", ",", ";", ":", "[", "\\", "é"])
    ).map("".join)
)
def test_address_tokens_are_what_the_quadratic_findall_found(value):
    assert headers._ADDRESS_TOKEN.findall(value) == _OLD_ADDRESS_TOKEN.findall(value)


_TAGS = ["p", "div", "br", "td", "tr", "a", "b", "span", "script", "style", "title", "li", "table"]


@st.composite
def _documents(draw: st.DrawFn) -> str:
    """Markup whose every tag, comment and declaration is closed: what mail clients write."""
    pieces = []
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["text", "start", "end", "link", "comment", "doctype", "entity", "void"]))
        tag = draw(st.sampled_from(_TAGS))
        text = (
            draw(st.text(alphabet=" \n\tabcxyz0123:;=<>&é", max_size=12))
            .replace("<", "&lt;")
            .replace(">", "&gt;")
        )
        pieces.append(
            {
                "text": text,
                "start": f'<{tag} class="{text.replace(chr(34), "")}">',
                "end": f"</{tag}>",
                "link": f'<a href="https://x.example/{len(text)}">{text}</a>',
                "comment": f"<!-- {text.replace('-', '')} -->",
                "doctype": "<!DOCTYPE html>",
                "entity": draw(st.sampled_from(["&amp;", "&nbsp;", "&#233;", "&#x41;", "&copy"])),
                "void": f"<{tag}/>",
            }[kind]
        )
    return "".join(pieces)


def _html_to_text_closing(html: str) -> str:
    """What html_to_text was: feed, then close()."""
    parser = html_text._HTMLText()
    parser.feed(html)
    parser.close()
    return html_text.tidy("".join(parser.chunks))


@settings(max_examples=1000, deadline=None)
@given(_documents())
def test_html_is_read_as_html_parser_with_close_read_it(html):
    assert html_to_text(html) == _html_to_text_closing(html)


def test_markup_left_unclosed_is_read_as_text_with_the_tags_after_it():
    text = html_to_text(
        '<p>Code: 1</p><!-- never closed <b>2</b><a href="https://x.example/r">reset</a> &amp; 3'
    )
    assert text == "Code: 1\n<!-- never closed 2reset <https://x.example/r> & 3"
    assert html_to_text("<p>a</p><script>never closed <b>x</b>") == "a"


def test_a_crash_of_html_parser_falls_back_to_the_text_between_tags():
    mail = parse_mail(
        _mail(b"Content-Type: text/html\r\n", body=b"\r\n<p>" + CODE + b"</p><![x <b>b</b> <<<")
    )
    assert "unparseable HTML body" in mail.problems and mail.text == SEEN + " b <<<"


# --- what the MIME parser is given -----------------------------------------------------------------------------

_LINES = [
    b"x",
    b"",
    b"--B",
    b"--",
    b"Content-Type: multipart/mixed; boundary=B",
    b"content-TYPE: message/rfc822",
    b"Content-Type: text/plain",
    b"Content-Type:\r\n multipart/alternative",
    b"a: b",
    b" folded",
]


def _visits(raw: bytes) -> tuple[int, int, int, int]:
    """What the bounds count, line by line: (lines each counted once more per nesting type above it, lines
    starting with `--` or a Content-Type, nesting Content-Types, header-field-like lines)."""
    visits = mime = nesting = fields = 0
    lines = re.split(rb"\r\n|\r|\n", raw)
    for number, line in enumerate(lines):
        if number < len(lines) - 1:
            visits += nesting + 1
        if line.startswith(b"--") or line.lower().startswith(b"content-type:"):
            mime += 1
        if line.lower().startswith(b"content-type:"):
            folded = itertools.takewhile(lambda rest: rest[:1] in (b" ", b"\t"), lines[number + 1 :])
            value = b" ".join([line, *folded])
            nesting += bool(re.search(rb"(?i)multipart|message", value))
        fields += bool(re.match(rb"[!-9;-~]+:", line))
    return visits, mime, nesting, fields


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_LINES), max_size=60), st.sampled_from([b"\r\n", b"\n", b"\r"]))
def test_the_parser_is_given_lines_within_every_bound_and_all_of_a_mail_within_them(lines, eol):
    raw = eol.join(lines) + eol
    bounds = {"MAX_LINE_VISITS": 40, "MAX_MIME_LINES": 6, "MAX_CONTAINERS": 2, "MAX_HEADER_FIELDS": 5}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in bounds.items():
            patch.setattr(mime_parser, name, value)
        cut, why = mime_parser._bounded_prefix(raw, raw.lower())
        surely = mime_parser._surely_within_bounds(raw, raw.lower().count(b"content-type:"))
    visits, mime, nesting, fields = _visits(raw[:cut])
    assert visits <= 40 and mime <= 6 and nesting <= 2 and fields <= 5
    assert (cut == len(raw)) == (why is None)
    assert cut == 0 or raw[cut - 1 : cut] in (b"\n", b"\r")  # at a line's start
    if surely:
        assert (cut, why) == (len(raw), None)
    if why is None:
        assert _visits(raw) == (visits, mime, nesting, fields)

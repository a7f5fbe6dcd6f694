"""Hostile mails: shapes of bytes anyone can send to the provider's domain that made parsing slow (time quadratic
in the stdlib or in rootmail, deep recursion) or its result large, each built at any size up to SES's 40 MB.

parse_mail reads the first 8 MB of a mail: the hostile piece of each takes up to HOSTILE_BYTES of those (one
header line, a body's lines), and what is left up to `size` is an attachment, or more body lines. Each mail carries
a sign-in code where a reader can see it, before the hostile piece when the mail's text allows.

Used by tests/test_parse_bombs.py (outcomes: parse_mail returns, says what it cut, its fields stay bounded) and by
scripts/bench.py's parse-bombs benchmark (the time each takes, next to a normal mail)."""

from __future__ import annotations

import base64
from collections.abc import Callable

SES_MAXIMUM = 40 * 1024 * 1024
HOSTILE_BYTES = 7 * 1024 * 1024
CODE = b"Your sign-in code is 482913."

_TOP = (
    b"Return-Path: <0100018f9a@amazonses.com>\r\n"
    b"Received: from a8-30.smtp-out.amazonses.com (a8-30.smtp-out.amazonses.com [54.240.8.30])\r\n"
    b" by inbound-smtp.us-east-1.amazonaws.com with SMTP id 8n1cbnq1s0atk4i1\r\n"
    b" for root+prod@example.com;\r\n Wed, 10 Jul 2024 02:21:09 +0000 (UTC)\r\n"
    b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n"
)
_FROM = b"From: Attacker <someone@attacker.example>\r\n"
_SUBJECT = b"Subject: Hello\r\n"
_OTHERS = (
    b"To: root+prod@example.com\r\nDate: Wed, 10 Jul 2024 11:21:07 +0900\r\n"
    b"Message-ID: <hostile@attacker.example>\r\nMIME-Version: 1.0\r\n"
)
_TEXT_PART = b"--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + CODE + b"\r\n"
_PAD_LINE = base64.b64encode(bytes(range(57))) + b"\r\n"  # 78 bytes, as base64 attachments are written


def _repeat(unit: bytes, size: int) -> bytes:
    return unit * max(1, size // len(unit))


def _hostile(unit: bytes, size: int) -> bytes:
    """`unit` repeated over min(size, HOSTILE_BYTES) bytes: what stays within the part of a mail that is read."""
    return _repeat(unit, min(size, HOSTILE_BYTES))


def _lines(data: bytes, width: int = 76) -> bytes:
    return b"".join(data[i : i + width] + b"\r\n" for i in range(0, len(data), width))


def _multipart(
    size: int,
    *parts: bytes,
    headers: bytes = b"",
    sender: bytes = _FROM,
    subject: bytes = _SUBJECT,
    mixed: bytes = b'Content-Type: multipart/mixed; boundary="B"\r\n',
    text: bytes = _TEXT_PART,
) -> bytes:
    """A multipart/mixed mail of about `size` bytes: its text, `parts`, then an attachment making up the size."""
    head = _TOP + sender + subject + _OTHERS + headers + mixed + b"\r\n" + text + b"".join(parts)
    attachment = b"--B\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    return head + attachment + _repeat(_PAD_LINE, size - len(head)) + b"--B--\r\n"


def _single(size: int, content_type: bytes, body: bytes) -> bytes:
    """A one-part mail of about `size` bytes: `body` (after the code), then lines making up the size."""
    head = _TOP + _FROM + _SUBJECT + _OTHERS + content_type + b"\r\n" + CODE + b"\r\n" + body
    return head + _repeat(_PAD_LINE, size - len(head))


# --- headers -------------------------------------------------------------------------------------------------


def from_without_at(size: int) -> bytes:
    """A From line with no @: each position of it started a scan to its end (a quadratic findall)."""
    return _multipart(size, sender=b"From: " + _hostile(b"a", size) + b"\r\n")


def from_address_pieces(size: int) -> bytes:
    return _multipart(size, sender=b"From: " + _hostile(b"a.b@", size) + b"\r\n")


def from_nested_comments(size: int) -> bytes:
    return _multipart(size, sender=b"From: x@y.example " + _hostile(b"(", size) + b"\r\n")


def address_headers_of_at_signs(size: int) -> bytes:
    """Every kind of address header, each long and made of what the stdlib's address parser finds hardest."""
    third = min(size, HOSTILE_BYTES) // 3
    return _multipart(
        size,
        sender=b"From: " + _repeat(b"@", third) + b"\r\n",
        headers=b"To: " + _repeat(b"<@", third) + b"\r\nSender: " + _repeat(b"a@", third) + b"\r\n",
    )


def many_from_headers(size: int) -> bytes:
    lines = b"".join(b"From: user%d@attacker.example\r\n" % i for i in range(min(size, HOSTILE_BYTES) // 32))
    return _multipart(size, sender=lines)


def many_recipients(size: int) -> bytes:
    """One Cc line of addresses, and as many Cc lines again."""
    value = b", ".join(b"u%d@example.com" % i for i in range(min(size, HOSTILE_BYTES) // 36))
    lines = b"".join(b"Cc: u%d@example.com\r\n" % i for i in range(min(size, HOSTILE_BYTES) // 44))
    return _multipart(size, headers=b"Cc: " + value + b"\r\n" + lines)


def many_received_headers(size: int) -> bytes:
    unit = b"Received: from a.example by b.example with SMTP; Wed, 10 Jul 2024 02:21:09 +0000\r\n"
    return _multipart(size, headers=_hostile(unit, size))


def subject_plain(size: int) -> bytes:
    return _multipart(size, subject=b"Subject: " + _hostile(b"Hello ", size) + b"\r\n")


def subject_encoded_words(size: int) -> bytes:
    """Adjacent encoded words in one charset are joined before decoding: hundreds of thousands of them."""
    return _multipart(size, subject=b"Subject: " + _hostile(b"=?utf-8?q?a=C3=A9?= ", size) + b"\r\n")


def subject_8bit_junk(size: int) -> bytes:
    return _multipart(size, subject=b"Subject: " + _hostile(bytes(range(0x80, 0x100)), size) + b"\r\n")


# --- MIME headers, which the stdlib's MIME parser reads --------------------------------------------------------


def content_type_parameters(size: int) -> bytes:
    """RFC 2231 parameters with empty ones between: the stdlib's parameter parser is quadratic in them."""
    params = _hostile(b";;;;;;;;;; title*0*=us-ascii'en'This%20is%20", size)
    return _single(size, b"Content-Type: text/plain" + params + b"\r\n", b"")


def content_type_semicolons(size: int) -> bytes:
    return _single(size, b"Content-Type: text/plain" + _hostile(b";", size) + b"\r\n", b"")


def content_type_comments(size: int) -> bytes:
    """Nested comments: the stdlib's header parser recursed once per `(` until RecursionError."""
    return _single(size, b"Content-Type: text/plain; charset=utf-8 " + _hostile(b"(", size) + b"\r\n", b"")


def multipart_boundary_late(size: int) -> bytes:
    """A well-formed multipart Content-Type whose boundary comes after a mass of quoted `;`."""
    params = _hostile(b'; a=";;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;;"', size)
    return _multipart(size, mixed=b"Content-Type: multipart/mixed" + params + b'; boundary="B"\r\n')


def many_malformed_content_types(size: int) -> bytes:
    """Parts whose Content-Type is malformed in a way of its own: each read by the stdlib's (slow) header classes."""
    count = min(size, HOSTILE_BYTES) // 960
    return _multipart(
        size,
        *(b"--B\r\nContent-Type: text/plain; a=%d" % i + b";" * 900 + b"\r\n\r\nx\r\n" for i in range(count)),
    )


# --- MIME structure ------------------------------------------------------------------------------------------


def many_parts(size: int) -> bytes:
    return _multipart(size, _hostile(b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n", size))


def many_unknown_charsets(size: int) -> bytes:
    """Text parts, each in a charset of its own that Python does not know: a problem each."""
    count = min(size, HOSTILE_BYTES) // 60
    unit = b"--B\r\nContent-Type: text/plain; charset=x-unknown-%d\r\n\r\ncode %d\r\n"
    return _multipart(size, *(unit % (i, i) for i in range(count)))


def nested_multiparts(size: int) -> bytes:
    """Multiparts in multiparts, then short lines: the stdlib checks each line against every boundary around it."""
    depth = 2000
    opening = b"".join(
        b'--%d\r\nContent-Type: multipart/mixed; boundary="%d"\r\n\r\n' % (i, i + 1) for i in range(depth)
    )
    deepest = b"--%d\r\n\r\n" % depth + _hostile(b"x\r\n", size - len(opening))
    return _multipart(size, b'--B\r\nContent-Type: multipart/mixed; boundary="0"\r\n\r\n' + opening + deepest)


def nested_messages(size: int) -> bytes:
    """Attached messages in attached messages: the stdlib recursed once per level."""
    levels = _hostile(b"Content-Type: message/rfc822\r\n\r\n", min(size, 2 * 1024 * 1024))
    inner = b"Subject: x\r\n\r\n" + CODE + b"\r\n"
    return _multipart(size, b"--B\r\n" + levels + inner)


def unsplit_multiparts(size: int) -> bytes:
    """Multiparts whose boundary is wrong, so that parse_mail finds the boundary used and splits them again."""
    inner = b"--Q\r\nContent-Type: text/plain\r\n\r\n" + CODE + b"\r\n--Q--\r\n"
    return _multipart(
        size, _hostile(b'--B\r\nContent-Type: multipart/alternative; boundary="WRONG"\r\n\r\n' + inner, size)
    )


def short_lines(size: int) -> bytes:
    """Empty lines: the stdlib's MIME parser costs about a microsecond a line, whatever its length."""
    return _single(size, b"Content-Type: text/plain\r\n", _hostile(b"\r\n", size))


def long_line(size: int) -> bytes:
    return _single(size, b"Content-Type: text/plain\r\n", _hostile(b"x", size) + b"\r\n")


# --- text parts ----------------------------------------------------------------------------------------------


def text_euc_junk(size: int) -> bytes:
    """EUC-JP that fails only far into each megabyte, so that each decoder of the fallback chain reads that far,
    the last of them byte by byte in Python."""
    block = _lines(b"\xa4\xa2" * 450_000) + b"\x8f\r\n"
    part = b"--B\r\nContent-Type: text/plain; charset=euc-jp\r\n\r\n" + _hostile(block, size)
    attached = part.replace(b"charset=euc-jp\r\n", b"charset=euc-jp\r\nContent-Disposition: attachment\r\n")
    return _multipart(size, part, attached)


def text_iso2022_junk(size: int) -> bytes:
    """ISO-2022-JP that no codec accepts: the last resort decodes it in Python, byte by byte."""
    part = b"--B\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n\x1b$B" + _lines(
        _hostile(b"\x7f\x21", size)
    )
    attached = part.replace(
        b"charset=iso-2022-jp\r\n", b"charset=iso-2022-jp\r\nContent-Disposition: attachment\r\n"
    )
    return _multipart(size, part, attached)


def text_account_lists(size: int) -> bytes:
    """As many labelled account IDs as the bytes hold."""
    ids = b", ".join(b"%012d" % i for i in range(min(size, HOSTILE_BYTES) // 14))
    return _multipart(size, b"--B\r\nContent-Type: text/plain\r\n\r\nAccount: " + _lines(ids))


def text_label_runs(size: int) -> bytes:
    """Labels and numbers that look like account and case IDs, everywhere."""
    return _multipart(
        size,
        b"--B\r\nContent-Type: text/plain\r\n\r\n" + _lines(_hostile(b"account case AWS ID: 1234 ", size)),
    )


def text_attachments(size: int) -> bytes:
    """Text attachments, a megabyte each: text a reader could open, as much as the mail holds."""
    part = b"--B\r\nContent-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\n" + _lines(
        b"y" * 1_000_000
    )
    return _multipart(size, _hostile(part, size))


# --- HTML ----------------------------------------------------------------------------------------------------


def _html(size: int, unit: bytes, prefix: bytes = b"") -> bytes:
    markup = prefix + _lines(_hostile(unit, size))
    return _multipart(
        size, text=b"--B\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>" + CODE + b"</p>\r\n" + markup
    )


def html_end_tags(size: int) -> bytes:
    """`</a` repeated: html.parser (CVE-2025-6069) searched each for its end from its start to the end."""
    return _html(size, b"</a")


def html_start_tags(size: int) -> bytes:
    return _html(size, b"<a")


def html_comments(size: int) -> bytes:
    return _html(size, b"<!--")


def html_declarations(size: int) -> bytes:
    return _html(size, b"<!x<?")


def html_unquoted_attributes(size: int) -> bytes:
    return _html(size, b'<a b="> x')


def html_lone_brackets(size: int) -> bytes:
    """`<` that starts no markup: html.parser hands each over as text of its own."""
    return _html(size, b"#<")


def html_marked_sections(size: int) -> bytes:
    """`<![x` makes html.parser raise; what reads the markup instead must not be quadratic either."""
    return _html(size, b"<", prefix=b"<![x ")


def html_dense_tags(size: int) -> bytes:
    """Well-formed, but as many tags and links as the bytes hold: the cost of HTML to text itself."""
    return _html(size, b'<a href="https://x.example/">a</a><br>')


def html_attachments(size: int) -> bytes:
    """HTML attachments of `</a`: what other_text converts, as much as the mail holds."""
    part = b"--B\r\nContent-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n" + _lines(
        b"</a" * 300_000
    )
    return _multipart(size, _hostile(part, size))


HOSTILE: dict[str, Callable[[int], bytes]] = {
    "from-without-at": from_without_at,
    "from-address-pieces": from_address_pieces,
    "from-nested-comments": from_nested_comments,
    "address-headers": address_headers_of_at_signs,
    "many-from": many_from_headers,
    "many-recipients": many_recipients,
    "many-received": many_received_headers,
    "subject-plain": subject_plain,
    "subject-encoded-words": subject_encoded_words,
    "subject-8bit-junk": subject_8bit_junk,
    "content-type-rfc2231": content_type_parameters,
    "content-type-semicolons": content_type_semicolons,
    "content-type-comments": content_type_comments,
    "multipart-boundary-late": multipart_boundary_late,
    "many-malformed-content-types": many_malformed_content_types,
    "many-parts": many_parts,
    "many-unknown-charsets": many_unknown_charsets,
    "nested-multiparts": nested_multiparts,
    "nested-messages": nested_messages,
    "unsplit-multiparts": unsplit_multiparts,
    "short-lines": short_lines,
    "long-line": long_line,
    "text-euc-junk": text_euc_junk,
    "text-iso2022-junk": text_iso2022_junk,
    "text-account-lists": text_account_lists,
    "text-label-runs": text_label_runs,
    "text-attachments": text_attachments,
    "html-end-tags": html_end_tags,
    "html-start-tags": html_start_tags,
    "html-comments": html_comments,
    "html-declarations": html_declarations,
    "html-unquoted-attributes": html_unquoted_attributes,
    "html-lone-brackets": html_lone_brackets,
    "html-marked-sections": html_marked_sections,
    "html-dense-tags": html_dense_tags,
    "html-attachments": html_attachments,
}

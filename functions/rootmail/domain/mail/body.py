"""The text a person would read: the inline text parts (and, separately, text attachments and attached
messages), decoded within their budgets.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser

from rootmail.domain.mail.charsets import decode_bytes
from rootmail.domain.mail.headers import unfold
from rootmail.domain.mail.html_text import html_to_text, plain_text, tidy, without_tags
from rootmail.domain.mail.mime import _MAX_PARTS, MAX_HEADER_CHARS

# ----------------------------------------------------------------------------------------------------
# Body text

# A mail's text parts are decoded up to MAX_TEXT_CHARS bytes for `text` (its inline parts) and MAX_OTHER_TEXT_CHARS
# for `other_text` (attachments, attached messages), each part cut at a line break, and HTML is converted to text up
# to MAX_HTML_CHARS in all: html.parser takes up to two microseconds a character on dense markup, the CP932
# fallbacks for broken ISO-2022-JP or EUC-JP about one a byte on the worst junk. No notice comes close to these.
MAX_TEXT_CHARS = 1024 * 1024
MAX_OTHER_TEXT_CHARS = 1024 * 1024
MAX_HTML_CHARS = 512 * 1024

_CHARSET_PARAM = re.compile(r"""(?:^|;)\s*charset\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s;"']+))""", re.IGNORECASE)
_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")
_BOUNDARY_LINE = re.compile(rb"^--([^\s\"]{1,70})[ \t]*\r?$", re.MULTILINE)


@dataclass(eq=False)
class _TextPart:
    html: bool
    inline: bool  # neither an attachment nor in an attached message: what `text` is read from
    text: str


class _TextBudget:
    """What one mail may still decode (bytes, for `text` and for `other_text`) and convert from HTML (characters)."""

    def __init__(self) -> None:
        self.decode = {True: MAX_TEXT_CHARS, False: MAX_OTHER_TEXT_CHARS}
        self.html = MAX_HTML_CHARS
        self.cut = False

    def decoded(self, data: bytes, charset: str | None, inline: bool, problems: list[str]) -> str:
        left = self.decode[inline]
        if len(data) > left:
            self.cut = True
            problems.append(_too_much_text(inline))
            data = data[: data.rfind(b"\n", 0, left) + 1 or left]
        self.decode[inline] -= len(data)
        return decode_bytes(data, charset, problems) if data else ""

    def converted(self, document: str, problems: list[str]) -> str:
        if len(document) > self.html:
            self.cut = True
            problems.append(f"more than {MAX_HTML_CHARS // 1024} KB of HTML: the rest not converted to text")
            document = document[: self.html]
        self.html -= len(document)
        try:
            return html_to_text(document)
        except Exception:  # html.parser has crashed on some malformed markup (e.g. `<![if ...`)
            problems.append("unparseable HTML body")
            return tidy(without_tags(document))


def _too_much_text(inline: bool) -> str:
    if inline:
        return f"more than {MAX_TEXT_CHARS // 1024**2} MB of text: the rest not read"
    where = "in attachments and attached messages"
    return f"more than {MAX_OTHER_TEXT_CHARS // 1024**2} MB of text {where}: the rest not read"


def _mime_headers(part: Message) -> tuple[str | None, str | None]:
    """A part's first Content-Type and Content-Disposition, raw (cut to MAX_HEADER_CHARS); None when missing."""
    ctype = disposition = None
    for key, value in part.raw_items():
        lkey = key.lower()
        if lkey == "content-type" and ctype is None:
            ctype = value[:MAX_HEADER_CHARS]
        elif lkey == "content-disposition" and disposition is None:
            disposition = value[:MAX_HEADER_CHARS]
    return ctype, disposition


@functools.lru_cache(maxsize=256)  # most parts say `text/plain; charset=UTF-8` or the like
def _content_type(value: str | None) -> tuple[str, str | None]:
    """(type/subtype, charset) from the raw header; text/plain when missing or invalid, as RFC 2045 says."""
    if value is None:
        return "text/plain", None
    value = unfold(value)
    ctype = value.split(";", 1)[0].strip().lower()
    match = _CHARSET_PARAM.search(value)
    charset = next((g for g in match.groups() if g is not None), None) if match else None
    return (ctype if _MIME_TYPE.fullmatch(ctype) else "text/plain"), charset


def _is_attachment(disposition: str | None) -> bool:
    return disposition is not None and unfold(disposition).split(";", 1)[0].strip().lower() == "attachment"


def _text_parts(
    msg: Message,
    problems: list[str],
    top: tuple[str | None, str | None],
    parser: BytesParser,
    budget: _TextBudget,
) -> list[_TextPart]:
    """Every text/plain and text/html part, decoded, in document order (attached messages' too). No other part is
    decoded. `top` is `_mime_headers(msg)`, already known from reading the mail's headers."""
    parts: list[_TextPart] = []
    # (part, split again by `_reparse_multipart`, in an attached message)
    stack: list[tuple[Message, bool, bool]] = [(msg, False, False)]
    count = 0
    while stack:
        part, recovered, attached = stack.pop()
        count += 1
        if count > _MAX_PARTS:
            problems.append(f"more than {_MAX_PARTS} MIME parts, the rest ignored")
            break
        raw_type, disposition = top if part is msg else _mime_headers(part)
        ctype, charset = _content_type(raw_type)
        if part.is_multipart():
            children = part.get_payload()
            if isinstance(children, list):
                inside = attached or ctype.startswith("message/")
                stack.extend((c, recovered, inside) for c in reversed(children) if isinstance(c, Message))
            continue
        if ctype.startswith("multipart/"):
            # The parser could not split it (missing or wrong boundary): find the boundary actually used.
            body = part.get_payload(decode=True)
            if isinstance(body, bytes):
                inner = None if recovered else _reparse_multipart(body, parser)
                if inner is not None:
                    stack.append((inner, True, attached))
                else:
                    parts.append(
                        _TextPart(False, not attached, budget.decoded(body, charset, not attached, problems))
                    )
            continue
        if ctype not in ("text/plain", "text/html"):
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            inline = not attached and not _is_attachment(disposition)
            parts.append(
                _TextPart(ctype == "text/html", inline, budget.decoded(data, charset, inline, problems))
            )
    return parts


def _reparse_multipart(body: bytes, parser: BytesParser) -> Message | None:
    match = _BOUNDARY_LINE.search(body)
    if match is None:
        return None
    boundary = match.group(1)
    if boundary.endswith(b"--"):
        boundary = boundary[:-2]
    inner = parser.parsebytes(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n' + body)
    return inner if inner.is_multipart() else None


def body_text(
    msg: Message, problems: list[str], top: tuple[str | None, str | None], parser: BytesParser
) -> tuple[str, str, bool]:
    """(text, other_text, whether a bound cut either): `text` from the inline text/plain parts, else the inline
    HTML converted; `other_text` from every other text part, in document order."""
    budget = _TextBudget()
    parts = _text_parts(msg, problems, top, parser, budget)
    used = [p for p in parts if p.inline and not p.html]
    text = "\n\n".join(plain_text(p.text) for p in used).strip()
    if not text:
        used = [p for p in parts if p.inline and p.html]
        text = "\n\n".join(c for c in (budget.converted(p.text, problems) for p in used) if c)
    others = (
        budget.converted(p.text, problems) if p.html else plain_text(p.text).strip()
        for p in parts
        if p not in used
    )
    other_text = "\n\n".join(o for o in others if o)
    if len(text) > MAX_TEXT_CHARS:
        problems.append(_too_much_text(True))
        text, budget.cut = text[:MAX_TEXT_CHARS], True
    if len(other_text) > MAX_OTHER_TEXT_CHARS:
        problems.append(_too_much_text(False))
        other_text, budget.cut = other_text[:MAX_OTHER_TEXT_CHARS], True
    return text, other_text, budget.cut

"""Raw mail bytes → ParsedMail. Never raises: whatever is wrong with the bytes ends up in `problems`.

The MIME structure comes from the stdlib parser (compat32, splitting parts exactly as policy.default does: see
`_Policy`); header values are then read raw, in order (`raw_items()`), and decoded here. That keeps it fast,
sidesteps header-class bugs (gh-105802: IndexError on odd Message-IDs), keeps the SES block's order visible, and
sends Japanese text through one charset fallback chain, body and subject alike. Only text parts are decoded;
attachments are never touched.
"""

from __future__ import annotations

import binascii
import codecs
import functools
import heapq
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import HeaderRegistry
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

from rootmail.domain.mail.identifiers import find_identifiers
from rootmail.domain.mail.model import ParsedMail, Verdicts
from rootmail.domain.suffixes import aligned

# The parser asks the Message for Content-Type (type, boundary) and Content-Transfer-Encoding while it splits the
# MIME structure (and get_payload asks for the latter). policy.default answers from its header classes, compat32
# from the raw value; both agree on a well-formed value, and policy.default's classes cost most of a parse. So the
# raw value answers when it is well-formed, and policy.default's reading (its header class, as str) when it is
# not: the same MIME structure as parsing with policy.default, at compat32's cost.
# An RFC 2045 token less `'` and `*`, which policy.default reads as RFC 2231 syntax.
_TOKEN = r"[!#$%&+.^_`|~0-9A-Za-z-]+"
_FWS = r"[ \t]*(?:\r?\n[ \t]+)?"
# Printable ASCII, no quote or backslash inside, nor `=?`: policy.default decodes encoded words there.
_QUOTED = r'"(?:[ !#-<>-\[\]-~]|=(?!\?))*"'
_WELL_FORMED = {
    "content-type": re.compile(f"{_TOKEN}/{_TOKEN}(?:{_FWS};{_FWS}{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*{_FWS}"),
    "content-transfer-encoding": re.compile(f"{_TOKEN}{_FWS}"),
}
_LINE_BREAKS = re.compile(r"[\r\n]")
_DEFAULT_HEADERS = HeaderRegistry()
# policy.default's header classes take time quadratic in a value's length (a kilobyte of `;` costs 25 ms, four
# 330 ms) and recurse once per nested comment. A MIME header the parser asks for is cut to this length first (a
# real one holds a type and a few parameters), and each parse gives those classes this many characters of
# malformed values, none longer than the last: past them, a value is read as compat32 reads it (as written).
MAX_MIME_HEADER_CHARS = 4096
_MALFORMED_MIME_BUDGET = 8192
_MALFORMED_MIME_VALUE = 1024


class _MimeHeaderBudget:
    """What one parse's malformed MIME headers may still cost; each value is read once (the parser asks again)."""

    def __init__(self) -> None:
        self.left = _MALFORMED_MIME_BUDGET
        self.refused = 0  # malformed values read as written, past the budget
        self.read: dict[tuple[str, str], str] = {}

    def parse(self, name: str, value: str) -> str:
        key = (name, value)
        if key in self.read:
            return self.read[key]
        if len(value) > min(self.left, _MALFORMED_MIME_VALUE):
            self.refused += 1
            return value
        self.left -= len(value)
        try:
            parsed = str(_DEFAULT_HEADERS(name, _LINE_BREAKS.sub("", value)))  # as policy.default does
        except Exception:  # RecursionError (nested comments), and whatever else its parser trips on
            parsed = value
        self.read[key] = parsed
        return parsed


class _Policy(Compat32):
    budget: _MimeHeaderBudget

    def __init__(self, budget: _MimeHeaderBudget) -> None:
        super().__init__()
        object.__setattr__(self, "budget", budget)  # one per parse (see _parser); policies are read-only

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if len(value) > MAX_MIME_HEADER_CHARS:
            # Whole parameters only; compat32 reads parameters in time quadratic in their number too.
            cut = value.rfind(";", 0, MAX_MIME_HEADER_CHARS)
            value = value[: cut if cut > 0 else MAX_MIME_HEADER_CHARS]
        pattern = _WELL_FORMED.get(name.lower())
        if pattern is not None and pattern.fullmatch(value):
            return value
        return self.budget.parse(name, value)


def _parser() -> tuple[BytesParser, _MimeHeaderBudget]:
    budget = _MimeHeaderBudget()
    return BytesParser(policy=_Policy(budget=budget)), budget


_MAX_PARTS = 500  # a mail with more MIME parts than this is hostile; stop walking
# SES stores mail of up to 40 MB; parsing costs several times a mail's size in memory. What triage needs (the
# headers, the text parts) comes first in every notice AWS sends: past this, only attachments follow.
MAX_PARSED_BYTES = 8 * 1024 * 1024
# The stdlib's MIME parser costs about two microseconds a line whatever its length, plus a third of one for each
# multipart around the line (it checks each line against every boundary), about 50 microseconds a part, ten times
# a line's cost a header field (and each lookup of a header, a dozen a part, reads all the part's fields), and it
# recurses once per nested multipart or attached message. So within MAX_PARSED_BYTES it is given lines up to these
# bounds (see _parser_prefix), on hostile mail only: lines, each counted once more per multipart or message declared
# above it (8 MB of base64 in an attachment two multiparts deep is 330,000); lines starting with `--` or a
# Content-Type; declarations of multipart or message parts; lines that look like a header field.
MAX_LINE_VISITS = 500_000
MAX_MIME_LINES = 2000
MAX_CONTAINERS = 100
MAX_HEADER_FIELDS = 10_000

# ----------------------------------------------------------------------------------------------------
# Charsets


# MIME names Python does not know, mapped to the codec that decodes them best.
_CHARSET_ALIASES = {
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "sjis-open": "cp932",
    "sjis-win": "cp932",
    "cp943c": "cp932",
    "x-euc-jp": "euc_jp",
    "cp51932": "euc_jp",
    "eucjp-ms": "euc_jp",
    "eucjp-win": "euc_jp",
    "euc-jp-ms": "euc_jp",
    "cp50220": "iso2022_jp",
    "cp50221": "iso2022_jp",
    "cp50222": "iso2022_jp",
    "iso-2022-jp-ms": "iso2022_jp",
    "ks_c_5601-1987": "cp949",
}
# Labels that say "unknown": treated like a charset Python does not know.
_UNKNOWN = {"unknown-8bit", "x-unknown", "unknown"}

_JIS = "jis→cp932"  # pseudo-codecs implemented below
_EUC = "euc→cp932"
_ISO2022JP = ("iso2022_jp", _JIS, "iso2022_jp_2004", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3")
_SJIS = ("cp932", "shift_jis", "shift_jis_2004")
_EUCJP = ("euc_jp", "euc_jis_2004", _EUC)
# First codec tried, then fallbacks, by canonical codec name. Japanese NEC/IBM extensions (①, ㈱, 髙) exist
# only in CP932, so every Japanese family ends in a CP932-based decoder rather than producing U+FFFD.
_CHAINS: dict[str, tuple[str, ...]] = {
    **{name: _ISO2022JP for name in ("iso2022_jp", "iso2022_jp_1", "iso2022_jp_2", "iso2022_jp_ext")},
    **{name: ("iso2022_jp_2004", *_ISO2022JP) for name in ("iso2022_jp_2004", "iso2022_jp_3")},
    **{name: _SJIS for name in ("shift_jis", "cp932", "shift_jis_2004", "shift_jisx0213")},
    **{name: _EUCJP for name in ("euc_jp", "euc_jis_2004", "euc_jisx0213")},
    "gb2312": ("gb2312", "gbk", "gb18030"),
    "gbk": ("gbk", "gb18030"),
    "big5": ("big5", "cp950", "big5hkscs"),
    "euc_kr": ("euc_kr", "cp949"),
}
# Bytes with no (or a meaningless) charset: ESC sequences mean ISO-2022-JP; else UTF-8, then Japanese guesses.
_GUESSES = ("utf-8", "euc_jp", "cp932")
# Codecs for which ASCII bytes do not mean ASCII text.
_NOT_ASCII_COMPATIBLE = re.compile(r"utf-(?:16|32|7)|cp(?:037|273|424|500|875|1026|1140)$|hz$")


@functools.lru_cache(maxsize=256)  # a few charsets name nearly every part; codecs.lookup is no dict lookup
def _canonical(charset: str | None) -> str | None:
    """Python's codec name for a MIME charset; "" for undeclared; None when unknown or not a text encoding."""
    name = (charset or "").strip().strip("\"'").lower()
    if name in ("", "us-ascii", "ascii"):
        return ""  # 8-bit bytes under an ASCII label are as good as undeclared
    if name in _UNKNOWN:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # base64, zlib, rot13 ... are codecs but not charsets.
    return info.name if getattr(info, "_is_text_encoding", True) else None


def _try_decode(data: bytes, codec: str) -> str | None:
    try:
        if codec == _JIS:
            return _jis_via_cp932(data, "strict")
        if codec == _EUC:
            return _euc_via_cp932(data)
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):
        return None


def _latin1(data: bytes) -> str:
    """The last resort: latin-1 read as windows-1252, as browsers do (0x80-0x9F are dashes and quotes there)."""
    return _try_decode(data, "cp1252") or data.decode("latin-1")


def decode_bytes(data: bytes, charset: str | None, problems: list[str]) -> str:
    """Decode text bytes in their declared charset, with fallbacks; records a problem when it had to guess."""
    codec = _canonical(charset)
    if codec is None:
        problems.append(f"unknown charset: {charset}")
        return _try_decode(data, "utf-8") or _latin1(data)
    if data.isascii() and b"\x1b" not in data and not _NOT_ASCII_COMPATIBLE.match(codec):
        return data.decode("ascii")  # the common case, whatever the label says
    if codec == "":
        chain: tuple[str, ...] = _ISO2022JP if b"\x1b$" in data or b"\x1b(" in data else _GUESSES
        for candidate in chain:
            text = _try_decode(data, candidate)
            if text is not None:
                if chain is _GUESSES and candidate != "utf-8":
                    problems.append(f"undeclared charset, decoded as {candidate}")
                return text
        problems.append("undeclared charset, decoded as latin-1")
        return _latin1(data)
    chain = _CHAINS.get(codec, (codec,))
    for candidate in chain:
        text = _try_decode(data, candidate)
        if text is not None:
            return text
    problems.append(f"undecodable text in charset: {charset}")
    if chain[0] in _ISO2022JP:
        return _jis_via_cp932(data, "replace")
    return data.decode("cp932" if chain[0] in _SJIS else codec, "replace")


# ISO-2022-JP designations: ASCII / JIS-Roman, JIS X 0201 katakana, JIS X 0208 (1978, 1983, 1990), JIS X 0212
# and JIS X 0213. Everything but JIS X 0212 maps onto CP932 by arithmetic (JIS row/cell → Shift_JIS).
_ISO2022_ESC = re.compile(rb"(\x1b\([BJI]|\x1b\$[@B]|\x1b&@\x1b\$B|\x1b\$\([DOPQ])")


def _jis_pair_to_sjis(j1: int, j2: int) -> bytes:
    s1 = ((j1 + 1) >> 1) + 0x70
    if s1 >= 0xA0:
        s1 += 0x40
    s2 = (j2 + 0x1F + (j2 >= 0x60)) if j1 & 1 else j2 + 0x7E
    return bytes((s1, s2))


# `_jis_pair_to_sjis` as byte tables, for whole runs of pairs: the lead byte's mapping depends on it alone, the
# trail byte's on it and the lead's parity (folded into the trail byte as its high bit: trail bytes are < 0x80).
_JIS_GRAPHIC = bytes(range(0x21, 0x7F))
_SJIS_LEAD = bytes(_jis_pair_to_sjis(j, 0x21)[0] if 0x21 <= j <= 0x7E else 0 for j in range(256))
_SJIS_TRAIL = bytes(
    _jis_pair_to_sjis(0x21 if k & 0x80 else 0x22, k & 0x7F)[1] if 0x21 <= k & 0x7F <= 0x7E else 0
    for k in range(256)
)
_ODD_HIGH_BIT = bytes(0x80 if j & 1 else 0 for j in range(256))


def _jis_pairs_to_sjis(chunk: bytes) -> bytes | None:
    """`_jis_pair_to_sjis` over a run of JIS X 0208 pairs, done by bytes.translate; None if it is not one."""
    if len(chunk) % 2 or chunk.translate(None, _JIS_GRAPHIC):
        return None
    leads, trails = chunk[0::2], chunk[1::2]
    parity = int.from_bytes(leads.translate(_ODD_HIGH_BIT), "big")
    keyed = (int.from_bytes(trails, "big") | parity).to_bytes(len(trails), "big")
    out = bytearray(len(chunk))
    out[0::2] = leads.translate(_SJIS_LEAD)
    out[1::2] = keyed.translate(_SJIS_TRAIL)
    return bytes(out)


class _CP932Builder:
    """Collects Shift_JIS bytes and decodes them through CP932; bytes with no equivalent become U+FFFD."""

    def __init__(self, source: bytes, codec: str, errors: str) -> None:
        self.source, self.codec, self.errors = source, codec, errors
        self.out: list[str] = []
        self.sjis = bytearray()

    def invalid(self, position: int, why: str, count: int = 1) -> None:
        """`count` bytes from `position` with no equivalent."""
        if self.errors == "strict":
            raise UnicodeDecodeError(self.codec, self.source, position, position + 1, why)
        self.flush()
        self.out.append("\ufffd" * count)

    def text(self, value: str) -> None:
        self.flush()
        self.out.append(value)

    def flush(self) -> None:
        if self.sjis:
            self.out.append(self.sjis.decode("cp932", self.errors))
            self.sjis.clear()

    def result(self) -> str:
        self.flush()
        return "".join(self.out)


_KANA_TO_SJIS = bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in range(256))
# In JIS X 0208 mode, byte by byte: a run of pairs of graphic bytes; line breaks (some encoders do not switch back
# to ASCII before one); bytes that are neither (a graphic byte is one when the next is not). One token per run,
# where a loop over bytes took a Python step per byte (a microsecond; a megabyte of junk took seconds).
_JIS_TOKEN = re.compile(
    rb"((?:[\x21-\x7e]{2})+)|([\r\n]+)|((?:[^\x21-\x7e\r\n]|[\x21-\x7e](?![\x21-\x7e]))+)"
)


def _jis_via_cp932(data: bytes, errors: str) -> str:
    """ISO-2022-JP decoded through CP932, which has the NEC and IBM extensions ISO-2022-JP codecs lack."""
    out = _CP932Builder(data, "iso2022_jp", errors)
    mode = b"\x1b(B"
    offset = 0
    for chunk in _ISO2022_ESC.split(data):
        start, offset = offset, offset + len(chunk)
        if chunk[:1] == b"\x1b" and _ISO2022_ESC.fullmatch(chunk):
            mode = chunk
        elif mode in (b"\x1b(B", b"\x1b(J"):
            out.sjis += chunk
        elif mode == b"\x1b(I":  # JIS X 0201 katakana: the same codes with the high bit set in Shift_JIS
            out.sjis += chunk.translate(_KANA_TO_SJIS)
        elif mode == b"\x1b$(D":  # JIS X 0212 has no CP932 equivalent
            out.text((mode + chunk + b"\x1b(B").decode("iso2022_jp_2", errors))
        elif (pairs := _jis_pairs_to_sjis(chunk)) is not None:  # the common case, many times faster
            out.sjis += pairs
        else:
            for token in _JIS_TOKEN.finditer(chunk):
                pairs, breaks, invalid = token.groups()
                if invalid:
                    out.invalid(start + token.start(), "invalid JIS X 0208 byte", len(invalid))
                else:
                    out.sjis += breaks or _jis_pairs_to_sjis(pairs) or b""
    return out.result()


_LESS_0X80 = bytes((b - 0x80) & 0xFF for b in range(256))
# EUC-JP's runs: ASCII; JIS X 0208 pairs (with the high bit set); half-width katakana (0x8E then the code).
_EUC_TOKEN = re.compile(rb"([\x00-\x7f]+)|((?:[\xa1-\xfe]{2})+)|\x8e([\xa1-\xdf])")


def _euc_via_cp932(data: bytes) -> str:
    """EUC-JP decoded through CP932 (like Microsoft's CP51932), for NEC row 13 characters. Strict: JIS X 0212 (0x8F)
    and stray bytes, which have no CP932 equivalent, raise UnicodeDecodeError."""
    sjis = bytearray()
    pos = 0
    while pos < len(data):
        token = _EUC_TOKEN.match(data, pos)
        if token is None:
            raise UnicodeDecodeError("euc_jp", data, pos, pos + 1, "no CP932 equivalent")
        ascii_run, pairs, kana = token.groups()
        sjis += ascii_run or kana or _jis_pairs_to_sjis(pairs.translate(_LESS_0X80)) or b""
        pos = token.end()
    return sjis.decode("cp932")


# ----------------------------------------------------------------------------------------------------
# Headers

_FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n$")
_BARE_NEWLINE = re.compile(r"\n(?![ \t])")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
# A run of address characters with an @ inside, from the start of the run: what a findall of the pattern less its
# lookbehind finds, in linear time (without it, each position of a long run with no @ was tried to the run's end).
_ADDRESS_TOKEN = re.compile(r"(?<![^\s<>\"(),;:@\[\]\\])[^\s<>\"(),;:@\[\]\\]+@[^\s<>\"(),;:@\[\]\\]+")
# Each pattern is written twice: case-insensitive, and as the lowercase pattern less its leading \b that
# `_search_lowered` uses on ASCII values (re can skip ahead to a literal prefix, but not under IGNORECASE or
# after a \b). Their matches are only ever read lowercased.
_SES_RECEIVED = re.compile(r"\bby\s+inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b", re.IGNORECASE)
_SES_RECEIVED_LOWER = re.compile(r"by\s+inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\b")
_ENVELOPE_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*;", re.IGNORECASE)
_ENVELOPE_FOR_LOWER = re.compile(r"for\s+<?([^\s<>;]+@[^\s<>;]+?)>?\s*;")
_COMMENT = re.compile(r"\([^()]*\)")
# A result, `; method=result properties`: from a `;` to the next, which none of its parts can hold.
_RESULT = re.compile(r";\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z_]+)([^;]*)")
_PROPERTY = re.compile(r"([A-Za-z0-9_.-]+)\s*=\s*([^\s;]+)")
_VERDICT = re.compile(r"\s*([A-Za-z_]+)")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")

_SES_VERDICT_HEADERS = ("x-ses-spam-verdict", "x-ses-virus-verdict")
# The envelope sender, whose local part may be quoted (`"a@b c"@example.com`, spaces and `;` included): its domain
# is what follows the quoted string, never an `@` inside it.
_MAILBOX = r'((?:"(?:[^"\\\r\n]|\\.)*"|[^\s<>;"])+)'
_ENVELOPE_FROM = re.compile(rf"\b(?:envelope-from|smtp\.mailfrom)\s*=\s*<?{_MAILBOX}", re.IGNORECASE)
# Written twice, as _SES_RECEIVED is.
_ENVELOPE_FROM_LOWER = re.compile(rf"(?:envelope-from|smtp\.mailfrom)\s*=\s*<?{_MAILBOX}")
# SES refuses to send a From address its account has not verified: mail whose envelope sender is SES's own
# bounce domain passed SPF only if the From identity was verified by its sender, so it counts as aligned.
_SES_SENDING_DOMAINS = ("amazonses.com",)


def _unfold(value: str) -> str:
    if "\n" not in value:
        return value
    if _BARE_NEWLINE.search(value) is None:
        # Every line break is followed by a space or tab, as in any header the parser read: what _FOLD removes
        # is then exactly every line break, and str.replace does that many times faster.
        return value.replace("\r\n", "").replace("\n", "") if "\r" in value else value.replace("\n", "")
    return _FOLD.sub("", value)


def _search_lowered(pattern: re.Pattern[str], lowered: re.Pattern[str], value: str) -> re.Match[str] | None:
    """`pattern.search(value)`, where `pattern` is `lowered` made case-insensitive, after a word boundary.

    On an ASCII value, that is `lowered` searching the value lowercased, where a word boundary before the match's
    first (word) character means no word character before it. The match is then one of the lowercased value."""
    if not value.isascii():
        return pattern.search(value)  # non-ASCII case folding (K and KELVIN SIGN...) is the engine's business
    text = value.lower()
    pos = 0
    while (match := lowered.search(text, pos)) is not None:
        start = match.start()
        if start == 0 or not (text[start - 1].isalnum() or text[start - 1] == "_"):
            return match
        pos = start + 1
    return None


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean(value: str) -> str:
    """Undecoded 8-bit bytes (the parser keeps them as surrogates) as UTF-8 or U+FFFD: always valid text."""
    if value.isascii():  # most text; a flag of the string, where encoding it to look for surrogates copies it
        return value
    if _has_surrogates(value):
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value


def _one_line(value: str) -> str:
    """Header text as one line: decoded values may hold CR/LF or other controls, which never belong there."""
    return _CONTROLS.sub(" ", _clean(value)).strip()


def decode_header_text(value: str, problems: list[str]) -> str:
    """An unstructured header value: raw 8-bit or ISO-2022-JP bytes and RFC 2047 encoded words decoded."""
    value = _unfold(value)
    if not value.isascii() or "\x1b" in value:
        try:
            raw = value.encode("ascii", "surrogateescape")
        except UnicodeEncodeError:
            raw = value.encode("utf-8", "surrogateescape")
        value = decode_bytes(raw, None, problems)
    if "=?" not in value:
        return value
    out: list[str] = []
    # [charset, bytearray] of the encoded word(s) being collected (bytes, made anew by each +=, were quadratic)
    pending: list[Any] = []
    pos = 0

    def flush() -> None:
        if pending:
            out.append(decode_bytes(bytes(pending[1]), pending[0], problems))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset, encoding, data = match.groups()
        charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
        decoded = _decode_encoded_word(encoding, data)
        if decoded is None:  # not really an encoded word: keep it as written
            flush()
            out.append(value[pos : match.end()])
            pos = match.end()
            continue
        if between and not (between.isspace() and pending):
            flush()
            out.append(between)
        # Adjacent words in one charset are joined before decoding: senders split multibyte characters.
        if pending and pending[0].lower() == charset.lower():
            pending[1] += decoded
        else:
            flush()
            pending.extend((charset, bytearray(decoded)))
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)


def _decode_encoded_word(encoding: str, data: str) -> bytes | None:
    try:
        if encoding in "bB":
            data = data.strip()
            return binascii.a2b_base64(data + "=" * (-len(data) % 4))
        return binascii.a2b_qp(data.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return None


def _message_id(value: str, problems: list[str]) -> str | None:
    value = _clean(_unfold(value)).strip()
    match = _ANGLE_ID.search(value)
    if match:
        return match.group(1)
    token = value.strip("<> \t")
    problems.append("invalid header: Message-ID")
    return token if token and " " not in token else None


# The date as nearly every mail writes it: `Mon, 20 Apr 2026 06:12:05 +0000`, maybe a comment after it. For these,
# what parsedate_to_datetime reads is plain to see (anything after the zone is ignored there too); it costs
# more than the rest of the header's handling. Every other form goes to parsedate_to_datetime.
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_PLAIN_DATE = re.compile(
    rf"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{{1,2}}) ({'|'.join(_MONTH_NAMES)}) "
    r"([1-9][0-9]{3}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})(?:[ \t].*)?",
    re.DOTALL,
)


def _parse_date(value: str) -> datetime:
    """parsedate_to_datetime(value), faster for the plain form; raises as it does on invalid fields.

    "-0000" (no zone: a naive datetime from parsedate_to_datetime) comes back as UTC, as `_iso_date` reads it."""
    match = _PLAIN_DATE.fullmatch(value)
    if match is None:
        return parsedate_to_datetime(value)
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = int(zone_hours) * 3600 + int(zone_minutes) * 60
    zone = timezone(timedelta(seconds=-offset if sign == "-" else offset)) if offset else UTC
    return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=zone)


def _iso_date(value: str, problems: list[str]) -> str | None:
    try:
        parsed = _parse_date(_unfold(value).strip())
    except Exception:  # ValueError, TypeError, IndexError ... depending on the garbage and Python version
        parsed = None
    if parsed is None:
        problems.append("invalid header: Date")
        return None
    if parsed.tzinfo is None:  # "-0000" or no zone: RFC 5322 says UTC-ish, which is the best guess there is
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC).isoformat()
    except (ValueError, OverflowError):
        problems.append("invalid header: Date")
        return None


# Mailboxes as nearly every mail writes them: `addr@example.com`, `<addr@example.com>`, `Some Name <addr@...>`,
# `"Some Name" <addr@...>`, comma-separated. For these, what getaddresses returns is plain to see, and it costs
# more than the rest of a header's handling: every other form goes to getaddresses.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_DOT_ATOM = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
_WORD = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+"  # a phrase's atom may hold dots
_PLAIN_MAILBOX = re.compile(
    rf"[ \t]*(?:(?P<addr>{_DOT_ATOM}@{_DOT_ATOM})"
    rf"|(?:(?P<phrase>{_WORD}(?:[ \t]+{_WORD})*)|\"(?P<quoted>[ !#-\[\]-~]*)\")?"
    rf"[ \t]*<(?P<angle>{_DOT_ATOM}@{_DOT_ATOM})>)[ \t]*"
)


def _plain_mailboxes(value: str) -> list[tuple[str, str]] | None:
    """What getaddresses([value]) gives for a list of plain mailboxes; None for any other value."""
    found = []
    pos = 0
    while (match := _PLAIN_MAILBOX.match(value, pos)) is not None:
        addr, phrase, quoted, angle = match.group("addr", "phrase", "quoted", "angle")
        found.append((addr, "") if addr else (angle, " ".join(phrase.split()) if phrase else quoted or ""))
        pos = match.end()
        if pos == len(value):
            return found
        if value[pos] != ",":
            return None
        pos += 1
    return None


def _mailboxes(values: list[str]) -> list[tuple[str, str]]:
    """(addr-spec, raw display name) of every mailbox in the given address header values."""
    unfolded = [_unfold(v) for v in values]
    # getaddresses joins the values with commas: plain lists joined are a plain list.
    plain = [_plain_mailboxes(v) for v in unfolded]
    if all(p is not None for p in plain):
        return [mailbox for p in plain for mailbox in p or ()]
    try:
        return [(addr, name) for name, addr in getaddresses(unfolded)]
    except Exception:  # the address parsers have had crash bugs on hostile input
        return []


def _parse_from(mail: ParsedMail, raw_from: list[str], problems: list[str]) -> None:
    addresses: list[str] = []
    name = ""
    # Each From header line counts on its own: two identical From lines are two From headers, not one.
    for value in raw_from:
        found: dict[str, None] = {}
        unfolded = _unfold(value)
        plain = _plain_mailboxes(unfolded)
        for addr_spec, display in _mailboxes([value]) if plain is None else plain:
            addr = _clean(addr_spec).strip().lower().rstrip(".")
            if "@" in addr:
                found.setdefault(addr, None)
                name = name or display
        # Parsers disagree on malformed From headers (`a@amazon.com)<b@evil.com>` was one address to some Python
        # versions, CVE-2023-27043): every address-like token counts, so such a header yields several addresses.
        # In a list of plain mailboxes, the address-like tokens are its addresses, unless a quoted name holds an @.
        if plain is None or any("@" in display for _, display in plain):
            for token in _ADDRESS_TOKEN.findall(_clean(unfolded)):
                found.setdefault(token.lower().rstrip("."), None)
        addresses.extend(found)
    mail.from_addresses = addresses
    if not mail.from_addresses:
        present = any(v.strip() for v in raw_from)
        problems.append("invalid header: From" if present else "missing header: From")
        return
    if len(mail.from_addresses) > 1:
        problems.append(f"several From addresses: {', '.join(mail.from_addresses)}")
    mail.sender = mail.from_addresses[0]
    mail.sender_domain = mail.sender.rpartition("@")[2] or None
    mail.sender_name = _one_line(decode_header_text(name, problems)) or None


def _recipients(raw_values: list[str]) -> list[str]:
    if not raw_values:  # as for most Sender/Resent-* headers
        return []
    found: dict[str, None] = {}
    for addr_spec, _ in _mailboxes(raw_values):
        addr = _clean(addr_spec).strip().lower()
        if "@" in addr:
            found.setdefault(addr, None)
    return list(found)


# ----------------------------------------------------------------------------------------------------
# The SES receipt block


def _uncommented(value: str) -> str:
    value = _unfold(value)
    for _ in range(3):  # comments may nest, e.g. (spfCheck: (x))
        if "(" not in value:
            break
        value = _COMMENT.sub(" ", value)
    return value


def _authserv_id(uncommented: str) -> str:
    """The authserv-id of an Authentication-Results value (`_uncommented`), lowercased."""
    head = uncommented.split(";", 1)[0].split()
    return head[0].lower() if head else ""


# The methods whose properties say which domain they speak for.
_READ_PROPERTIES = frozenset({"dkim", "dmarc"})


def _auth_results(uncommented: str) -> list[tuple[str, str, dict[str, str]]]:
    """Authentication-Results (`_uncommented`) → [(method, RESULT, properties)]; properties are read for DKIM
    (header.d, header.i) and DMARC (header.from) only."""
    results = []
    for method, result, rest in _RESULT.findall(uncommented):  # the parts after the authserv-id that match
        method = method.lower()
        read = method in _READ_PROPERTIES
        props = {k.lower(): v.lower() for k, v in _PROPERTY.findall(rest)} if read else {}
        results.append((method, result.upper(), props))
    return results


def _dkim_verdict(results: list[tuple[str, str, dict[str, str]]], sender_domain: str | None) -> str | None:
    """One DKIM verdict from one result per signature, of those aligned with the From domain: FAIL if any failed,
    else PASS if any passed."""
    relevant = []
    for method, result, props in results:
        if method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rpartition("@")[2]
            # A signature by another domain proves nothing about the From domain (anyone can sign their own mail).
            if aligned(domain, sender_domain):
                relevant.append(result)
    if not relevant:
        return None
    # A failing signature of the From domain means the mail was changed since it was signed, or the signature was
    # made up: a passing one beside it (which covers only the headers it names) does not undo that.
    if "FAIL" in relevant:
        return "FAIL"
    return "PASS" if "PASS" in relevant else relevant[0]


def _dmarc_verdict(
    results: list[tuple[str, str, dict[str, str]]], sender_domain: str | None, problems: list[str]
) -> str | None:
    """SES's DMARC verdict, if it is about the From domain: a result for another `header.from` is `UNALIGNED`.

    SES names the From domain it read; another one means SES and this parser read the From header differently
    (parsers disagree on malformed ones), and a pass for that domain proves nothing about this one."""
    verdicts = []
    for method, result, props in results:
        if method != "dmarc":
            continue
        header_from = props.get("header.from", "").rstrip(".")
        if header_from and header_from != sender_domain:
            problems.append(
                f"DMARC result for header.from={header_from}, not the From domain {sender_domain or '(none)'}"
            )
            return "UNALIGNED"
        verdicts.append(result)
    if not verdicts:
        return None
    return "FAIL" if "FAIL" in verdicts else verdicts[0]


def _spf_verdict(result: str | None, envelope_from: str | None, sender_domain: str | None) -> str | None:
    """SPF speaks for the envelope sender's domain: a pass for an unrelated domain is `UNALIGNED`, not PASS."""
    if result != "PASS":
        return result
    sender = envelope_from or ""
    if sender.count('"') % 2:
        return "UNALIGNED"  # an unbalanced quote: no domain can be told for sure
    domain = sender.rpartition("@")[2].lower().rstrip(">")
    if aligned(domain, sender_domain) or any(
        domain == d or domain.endswith("." + d) for d in _SES_SENDING_DOMAINS
    ):
        return result
    return "UNALIGNED"


@functools.lru_cache(maxsize=64)  # verdict headers hold a handful of values: PASS, FAIL, GRAY ...
def _first_verdict(value: str | None) -> str | None:
    if value is None:
        return None
    match = _VERDICT.match(_unfold(value))
    return match.group(1).upper() if match else None


# What SES writes on top of a stored mail, in this order, each once: so on every SES-stored mail published that we
# have seen. The spam and virus verdicts are absent when the receipt rule does not scan.
_SES_BLOCK = (
    "return-path",
    "received",
    "x-ses-spam-verdict",
    "x-ses-virus-verdict",
    "received-spf",
    "authentication-results",
    "x-ses-receipt",
    "x-ses-dkim-signature",
)
_SES_BLOCK_RANK = {name: rank for rank, name in enumerate(_SES_BLOCK)}
# Written on every stored mail, with the Received line. Where one is missing, SES's block may have ended right
# there and the sender's own headers begun, its copies of the later SES headers first: so nothing in such a block is
# read as SES's word but its topmost Received line, which no sender can put above it.
_SES_BLOCK_REQUIRED = {
    "received-spf": "Received-SPF",
    "authentication-results": "Authentication-Results",
    "x-ses-receipt": "X-SES-RECEIPT",
    "x-ses-dkim-signature": "X-SES-DKIM-SIGNATURE",
}


def _ses_block_end(headers: list[tuple[str, str, str]]) -> int:
    """Where SES's block ends: at the first header of a kind SES does not write, or of a kind it wrote already or
    writes earlier (a sender's copy right below SES's block: after X-SES-DKIM-SIGNATURE, SES's last, any is)."""
    last = -1
    for index, (lname, _, _) in enumerate(headers):
        rank = _SES_BLOCK_RANK.get(lname, -1)
        if rank <= last:
            return index
        last = rank
    return len(headers)


def _parse_ses_block(mail: ParsedMail, headers: list[tuple[str, str, str]], problems: list[str]) -> None:
    """Envelope recipient and verdicts, read only from the block of headers SES put above the sender's own ones.

    Lower copies of SES headers are the sender's and never count. Without all the headers SES always writes, the
    block's end is uncertain and no verdict is read. `headers` are (lowercased name, name, value).
    """
    end = _ses_block_end(headers)
    block = {lname: value for lname, _, value in headers[:end]}  # each kind once
    received = block.get("received", "")
    mail.ses_received = bool(_search_lowered(_SES_RECEIVED, _SES_RECEIVED_LOWER, received))
    if not mail.ses_received:
        problems.append("no SES receipt block on top")
        return
    match = _search_lowered(_ENVELOPE_FOR, _ENVELOPE_FOR_LOWER, _unfold(received))
    if match:  # the envelope recipient: only from SES's own, topmost Received
        mail.envelope_recipient = _clean(match.group(1)).lower()
    for lname, name, value in headers[end:]:
        if lname in _SES_VERDICT_HEADERS or (
            lname == "authentication-results" and _authserv_id(_uncommented(value)) == "amazonses.com"
        ):
            problems.append(f"SES header below the SES block ignored: {name}")
    missing = [name for lname, name in _SES_BLOCK_REQUIRED.items() if lname not in block]
    if missing:
        problems.append(f"incomplete SES block (no {', '.join(missing)}): its verdicts are not read")
        return
    uncommented = _uncommented(block["authentication-results"])
    # Another server's results in SES's place count for nothing: only SES's are read.
    auth = _auth_results(uncommented) if _authserv_id(uncommented) == "amazonses.com" else []
    received_spf = block["received-spf"]
    spf = next((r for m, r, _ in auth if m == "spf"), None) or _first_verdict(received_spf)
    if spf == "PASS":  # only a pass needs the envelope sender (its alignment)
        envelope_from = _search_lowered(_ENVELOPE_FROM, _ENVELOPE_FROM_LOWER, _unfold(received_spf))
        return_path = block.get("return-path", "")
        spf = _spf_verdict(
            spf,
            envelope_from.group(1) if envelope_from else _unfold(return_path).strip("<> "),
            mail.sender_domain,
        )
    mail.verdicts = Verdicts(
        spam=_first_verdict(block.get("x-ses-spam-verdict")),
        virus=_first_verdict(block.get("x-ses-virus-verdict")),
        spf=spf,
        dkim=_dkim_verdict(auth, mail.sender_domain),
        dmarc=_dmarc_verdict(auth, mail.sender_domain, problems),
    )


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
            return _tidy(_without_tags(document))


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
    value = _unfold(value)
    ctype = value.split(";", 1)[0].strip().lower()
    match = _CHARSET_PARAM.search(value)
    charset = next((g for g in match.groups() if g is not None), None) if match else None
    return (ctype if _MIME_TYPE.fullmatch(ctype) else "text/plain"), charset


def _is_attachment(disposition: str | None) -> bool:
    return disposition is not None and _unfold(disposition).split(";", 1)[0].strip().lower() == "attachment"


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


_BLOCK_TAGS = frozenset(
    {"p", "div", "ul", "ol", "table", "hr", "blockquote", "pre", "section", "article", "header", "footer"}
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
_LINE_TAGS = frozenset(("br", "tr", "li", "dt", "dd"))  # start a new line
_CELL_TAGS = frozenset(("td", "th"))
_SKIP_TAGS = frozenset(("script", "style", "title"))
_SPACES = re.compile(r"[ \t\r\n\f\v\xa0]+")
_INLINE_SPACES = re.compile(r"[ \t\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# A tag with no `<` inside, and its attributes; the href of a link.
_UNCLOSED_REST_TAG = re.compile(r"<(/?)([a-zA-Z][^\s/<>]*)([^<>]*)>")
_HREF = re.compile(r"""(?:^|[\s/])href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>]+))""", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_LONE_LT = re.compile(r"<(?![a-zA-Z/!?])")


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip = 0
        self.href: str | None = None
        self.link_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append("\t")
        elif tag == "a":
            self.href = next((v for k, v in attrs if k == "href" and v), None)
            self.link_start = len(self.chunks)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS or tag in _LINE_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in _CELL_TAGS:
            self.chunks.append("\t")
        elif tag == "a" and self.href:
            # Links carry facts (displayId=..., reset links) that rules and identifiers look for.
            href = self.href.strip()
            label = "".join(self.chunks[self.link_start :])
            if href.lower().startswith(("http:", "https:", "mailto:")) and href not in label:
                self.chunks.append(f" <{href}>")
            self.href = None

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.chunks.append(_SPACES.sub(" ", data))

    def read_unclosed_rest(self) -> None:
        """Read what `feed` left: markup with no end (a tag, comment or declaration never closed) and all after it.

        `close()` would search each `<` after it to the end for the end of its markup: time quadratic in their
        number (CVE-2025-6069, in html.parser before 3.12.11 and 3.13.4). This reads each tag that ends before the
        next `<` as a tag and the rest as text, in one pass. A well-formed document leaves nothing."""
        rest, self.rawdata = self.rawdata, ""
        if self.cdata_elem is not None:  # in a <script> or <style> never closed, which close() does not show
            return
        pos = 0
        for tag in _UNCLOSED_REST_TAG.finditer(rest):
            self.handle_data(unescape(rest[pos : tag.start()]))
            closing, name, attributes = tag.groups()
            if closing:
                self.handle_endtag(name.lower())
            else:
                href = _HREF.search(attributes)
                self.handle_starttag(
                    name.lower(), [("href", next(g for g in href.groups() if g is not None))] if href else []
                )
            pos = tag.end()
        self.handle_data(unescape(rest[pos:]))


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    # A `<` that starts no markup is text to html.parser, handed over a character at a time: as `&lt;`, with the
    # text around it.
    parser.feed(_LONE_LT.sub("&lt;", html))
    parser.read_unclosed_rest()
    return _tidy("".join(parser.chunks))


def _without_tags(document: str) -> str:
    """`_TAG.sub(" ", document)`, in linear time: no tag starts after the last `>`, and trying each `<` there
    would scan to the end."""
    end = document.rfind(">") + 1
    return _TAG.sub(" ", document[:end]) + document[end:]


def _tidy(text: str) -> str:
    """Spaces folded and lines trimmed; a table's cells stay apart by a tab (text keeps no tab of its own), so a
    row reads as its columns."""
    lines = (_INLINE_SPACES.sub(_space_or_tab, line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _space_or_tab(run: re.Match[str]) -> str:
    return "\t" if "\t" in run.group() else " "


def _plain_text(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip("\n")


def _body_text(
    msg: Message, problems: list[str], top: tuple[str | None, str | None], parser: BytesParser
) -> tuple[str, str, bool]:
    """(text, other_text, whether a bound cut either): `text` from the inline text/plain parts, else the inline
    HTML converted; `other_text` from every other text part, in document order."""
    budget = _TextBudget()
    parts = _text_parts(msg, problems, top, parser, budget)
    used = [p for p in parts if p.inline and not p.html]
    text = "\n\n".join(_plain_text(p.text) for p in used).strip()
    if not text:
        used = [p for p in parts if p.inline and p.html]
        text = "\n\n".join(c for c in (budget.converted(p.text, problems) for p in used) if c)
    others = (
        budget.converted(p.text, problems) if p.html else _plain_text(p.text).strip()
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


# ----------------------------------------------------------------------------------------------------
# What the MIME parser reads

# A line that starts a header field (a name, then `:`), as the stdlib's parser splits lines (CRLF, CR or LF); the
# rest of a header, folded lines and all; the types that nest (the parser recurses into them).
_FIELD_LINE = re.compile(rb"[\r\n][!-9;-~]++:")
_FIELD_FIRST = re.compile(rb"[!-9;-~]++:")
_HEADER_REST = re.compile(rb"[^\r\n]*(?:(?:\r\n|\r|\n)[ \t][^\r\n]*)*")
_NESTING_TYPE = re.compile(rb"multipart|message", re.IGNORECASE)


def _lines_between(raw: bytes, start: int, end: int) -> int:
    return raw.count(b"\n", start, end) + raw.count(b"\r", start, end) - raw.count(b"\r\n", start, end)


def _after_lines(raw: bytes, start: int, count: int) -> int:
    """The position right after the `count`-th line break from `start`, about: counted block by block (a CRLF
    split by two blocks counts twice), then by a binary search in the block where it is."""
    block = start
    while block < len(raw) and (lines := _lines_between(raw, block, block + 65536)) < count:
        block, count = block + 65536, count - lines
    low, high = block, min(block + 65536, len(raw))
    while low < high:
        middle = (low + high) // 2
        if _lines_between(raw, block, middle) < count:
            low = middle + 1
        else:
            high = middle
    return min(low + 1 if low > start and raw[low - 1 : low + 1] == b"\r\n" else low, len(raw))


def _line_starts(data: bytes, prefix: bytes, end: int) -> Iterator[int]:
    """Where the lines of data[:end] that start with `prefix` start, in order, by C searches."""
    if data.startswith(prefix):
        yield 0
    found = [data.find(b"\n" + prefix, 0, end), data.find(b"\r" + prefix, 0, end)]
    while (at := min((f for f in found if f >= 0), default=-1)) >= 0:
        yield at + 1
        kind = found.index(at)
        found[kind] = data.find(data[at : at + 1] + prefix, at + 1, end)


def _mime_lines(raw: bytes, lowered: bytes, end: int) -> Iterator[tuple[int, bool]]:
    """(start, whether it is a Content-Type line) of each line of raw[:end] that starts with `--` (a boundary, maybe)
    or a Content-Type header, in order. `lowered` is `raw.lower()`."""
    return heapq.merge(
        ((at, False) for at in _line_starts(raw, b"--", end)),
        ((at, True) for at in _line_starts(lowered, b"content-type:", end)),
    )


def _surely_within_bounds(raw: bytes, types: int) -> bool:
    """Whether no bound of _parser_prefix can be reached, given how many `content-type:` the mail holds (at most as
    many parts declared, nesting or not): by counts, a pass over the mail each, or by the size alone where that
    tells (a line takes a byte at least, one starting with `--` or a header field three)."""
    size = len(raw)
    if types > MAX_CONTAINERS:
        return False
    lines = size if size * (types + 1) <= MAX_LINE_VISITS else _lines_between(raw, 0, size)
    if lines * (types + 1) > MAX_LINE_VISITS:
        return False
    dashes = size // 3 if size // 3 + types <= MAX_MIME_LINES else raw.count(b"\n--") + raw.count(b"\r--") + 1
    if dashes + types > MAX_MIME_LINES:
        return False
    return size // 3 <= MAX_HEADER_FIELDS or raw.count(b":") <= MAX_HEADER_FIELDS


def _parser_prefix(raw: bytes) -> tuple[int, str | None]:
    """How much of `raw` the MIME parser reads: all (None), or up to the line where one of its bounds is reached
    (and what bound). C searches and counts over the bytes, a Python step per MIME line only."""
    lowered = raw.lower()
    if _surely_within_bounds(raw, lowered.count(b"content-type:")):  # nearly every mail
        return len(raw), None
    return _bounded_prefix(raw, lowered)


def _bounded_prefix(raw: bytes, lowered: bytes) -> tuple[int, str | None]:
    """_parser_prefix, the long way: line by line where it matters. `lowered` is `raw.lower()`."""
    end, why = len(raw), None
    if raw.count(b":") > MAX_HEADER_FIELDS:  # else there are not that many header fields: no need to look
        fields = _FIELD_LINE.finditer(raw)
        beyond = next(itertools.islice(fields, MAX_HEADER_FIELDS - bool(_FIELD_FIRST.match(raw)), None), None)
        if beyond is not None:
            end, why = beyond.start() + 1, f"more than {MAX_HEADER_FIELDS:,} header fields"
    visits = nesting = 0
    at = 0  # where the lines counted so far end
    for count, (start, content_type) in enumerate(_mime_lines(raw, lowered, end), 1):
        lines = _lines_between(raw, at, start)
        if visits + lines * (nesting + 1) > MAX_LINE_VISITS:
            break
        visits += lines * (nesting + 1)
        at = start
        if count > MAX_MIME_LINES:
            return at, f"more than {MAX_MIME_LINES:,} MIME boundary and Content-Type lines"
        rest = _HEADER_REST.match(raw, start + 13) if content_type else None  # 13: len("content-type:")
        if rest is not None and _NESTING_TYPE.search(rest.group()):
            nesting += 1
            if nesting > MAX_CONTAINERS:
                return at, f"more than {MAX_CONTAINERS} multipart parts or attached messages"
    allowed = (MAX_LINE_VISITS - visits) // (nesting + 1)
    if _lines_between(raw, at, end) <= allowed:
        return end, why
    why = f"more than {MAX_LINE_VISITS:,} lines to split, each counted once more per multipart around it"
    return _after_lines(raw, at, allowed), why


# ----------------------------------------------------------------------------------------------------
# The whole mail

# Header fields read, and characters of each: what a header holds (an address list, a subject, SES's verdicts)
# is far shorter; a longer one is hostile, and parsing it (addresses: about 6 µs a character) must stay cheap.
MAX_HEADERS = 1000
MAX_HEADER_CHARS = 16 * 1024
# Characters of address headers read, of each kind (From; To and Cc; Sender and Resent-*), in their order.
MAX_ADDRESS_CHARS = 16 * 1024
MAX_ACCOUNT_IDS = 1000
MAX_PROBLEMS = 50


def parse_mail(raw: bytes) -> ParsedMail:
    """Everything rootmail needs from one raw mail as SES stored it. Never raises."""
    mail = ParsedMail(size=len(raw) if isinstance(raw, bytes | bytearray | memoryview) else 0)
    problems = mail.problems
    if not raw:
        problems.append("empty message")
        return mail
    raw = bytes(raw)
    if len(raw) > MAX_PARSED_BYTES:
        cut = raw.rfind(b"\n", 0, MAX_PARSED_BYTES) + 1 or MAX_PARSED_BYTES
        problems.append(
            f"{len(raw):,} bytes: only the first {MAX_PARSED_BYTES // (1024 * 1024)} MB were read "
            "(the rest is attachments, not needed to triage; the stored mail is kept whole)"
        )
        raw = raw[:cut]
        mail.truncated = True
    cut, why = _parser_prefix(raw)
    if why is not None:
        problems.append(f"{why}: only the first {cut:,} bytes were read (the stored mail is kept whole)")
        raw = raw[:cut]
        mail.truncated = True
    parser, mime_budget = _parser()
    try:
        msg: Message = parser.parsebytes(raw)
    except Exception as exc:  # not seen in practice; belt and braces for the "never raises" promise
        problems.append(f"unparseable message: {type(exc).__name__}")
        return mail
    headers = _read_headers(msg, problems)
    if not headers:
        problems.append("no headers")
    first: dict[str, str] = {}  # the first value of each header, by lowercased name
    for lname, _, value in headers:
        first.setdefault(lname, value)
    top = first.get("content-type"), first.get("content-disposition")

    def step(what: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:  # one broken piece must not cost the others
            problems.append(f"failed to read {what}: {type(exc).__name__}")

    def read_body() -> None:
        mail.text, mail.other_text, cut = _body_text(msg, problems, top, parser)
        mail.truncated = mail.truncated or cut

    step("headers", lambda: _parse_headers(mail, headers, first, problems))
    step("SES block", lambda: _parse_ses_block(mail, headers, problems))
    step("body", read_body)
    if not mail.text and headers:
        problems.append("no text body")
    if mime_budget.refused:
        problems.append(
            f"malformed MIME headers past the first {_MALFORMED_MIME_BUDGET:,} characters read as written"
        )
    step("identifiers", lambda: _parse_identifiers(mail, problems))
    step("MIME structure", lambda: _record_defects(msg, problems))
    mail.problems = _listed(problems)
    return mail


def _read_headers(msg: Message, problems: list[str]) -> list[tuple[str, str, str]]:
    """The mail's header fields as (lowercased name, name, value), within MAX_HEADERS and MAX_HEADER_CHARS."""
    items = msg.raw_items()
    if len(msg) > MAX_HEADERS:
        problems.append(f"{len(msg):,} header fields: only the first {MAX_HEADERS:,} read")
        items = itertools.islice(items, MAX_HEADERS)
    headers = []
    for name, value in items:
        if len(value) > MAX_HEADER_CHARS:
            problems.append(f"{name[:40]} header of {len(value):,} characters cut to {MAX_HEADER_CHARS:,}")
            value = value[:MAX_HEADER_CHARS].rstrip("\r\n")
        headers.append((name.lower(), name, value))
    return headers


def _listed(problems: list[str]) -> list[str]:
    """Problems quote bytes from the mail (charset names, addresses): valid, short, once each, and not too many."""
    listed = list(dict.fromkeys(_one_line(p)[:300] for p in problems))
    if len(listed) > MAX_PROBLEMS:
        listed[MAX_PROBLEMS - 1 :] = [f"{len(listed) - MAX_PROBLEMS + 1:,} more problems"]
    return listed


# Address headers, by what they are: From; recipients; other senders.
_ADDRESS_HEADERS = {"from": 0, "to": 1, "cc": 1, "sender": 2, "resent-from": 2, "resent-sender": 2}
_ADDRESS_KINDS = ("From", "To and Cc", "Sender and Resent-*")


def _parse_headers(
    mail: ParsedMail, headers: list[tuple[str, str, str]], first: dict[str, str], problems: list[str]
) -> None:
    raw: tuple[list[str], list[str], list[str]] = ([], [], [])
    read = [0, 0, 0]  # characters, by kind
    for lname, _, value in headers:  # one dict lookup per header: most are none of these
        if (kind := _ADDRESS_HEADERS.get(lname)) is not None:
            left = MAX_ADDRESS_CHARS - read[kind]
            # Past the budget, or cut by _read_headers (maybe in the middle of an address): whole mailboxes only,
            # up to the last comma that fits (a part of an address would be read as an address of its own).
            if len(value) > left or len(value) >= MAX_HEADER_CHARS:
                problems.append(
                    f"{_ADDRESS_KINDS[kind]} headers of more than {MAX_ADDRESS_CHARS:,} characters: the rest not read"
                )
                comma = value.rfind(",", 0, left)
                value = value[:comma] if comma > 0 else "" if raw[kind] else value[:left]
            read[kind] += len(value)
            if value:
                raw[kind].append(value)
    raw_from, raw_recipients, raw_other_senders = raw
    if "message-id" in first:
        mail.message_id = _message_id(first["message-id"], problems)
    else:
        problems.append("missing header: Message-ID")
    if "subject" in first:
        mail.subject = _one_line(decode_header_text(first["subject"], problems))
    else:
        problems.append("missing header: Subject")
    if "date" in first:
        mail.date = _iso_date(first["date"], problems)
    else:
        problems.append("missing header: Date")
    _parse_from(mail, raw_from, problems)
    mail.recipients = _recipients(raw_recipients)
    mail.other_senders = _recipients(raw_other_senders)


def _parse_identifiers(mail: ParsedMail, problems: list[str]) -> None:
    found = find_identifiers(mail.subject, mail.text)
    if len(found.account_ids) > MAX_ACCOUNT_IDS:
        problems.append(f"{len(found.account_ids):,} account IDs: only the first {MAX_ACCOUNT_IDS:,} kept")
    mail.account_ids = list(found.account_ids[:MAX_ACCOUNT_IDS])
    mail.listed_account_ids = list(found.listed_account_ids[:MAX_ACCOUNT_IDS])
    mail.resource_account_ids = list(found.resource_account_ids[:MAX_ACCOUNT_IDS])
    mail.case_id = found.case_id


def _record_defects(msg: Message, problems: list[str]) -> None:
    for part in _walk_limited(msg):
        for defect in part.defects:
            problems.append(f"MIME defect: {type(defect).__name__}")


def _walk_limited(msg: Message) -> Iterator[Message]:
    stack = [msg]
    seen = 0
    while stack and seen < _MAX_PARTS:
        part = stack.pop()
        seen += 1
        yield part
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list):
            stack.extend(child for child in reversed(payload) if isinstance(child, Message))

"""Text bytes to str in their declared charset, with fallbacks: Japanese families end in CP932-based decoders
(ISO-2022-JP and EUC-JP mapped onto CP932 by arithmetic) so NEC and IBM extensions decode instead of becoming U+FFFD.
"""

from __future__ import annotations

import codecs
import functools
import re

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

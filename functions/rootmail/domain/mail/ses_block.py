"""The block SES writes on top of a stored mail: its envelope (recipient, sender) and its verdicts (spam,
virus, SPF, DKIM and DMARC for the From domain), read only in SES's order.
"""

from __future__ import annotations

import functools

from rootmail.domain.mail.headers import (
    _COMMENT,
    _ENVELOPE_FOR,
    _ENVELOPE_FOR_LOWER,
    _ENVELOPE_FROM,
    _ENVELOPE_FROM_LOWER,
    _PROPERTY,
    _RESULT,
    _SES_RECEIVED,
    _SES_RECEIVED_LOWER,
    _SES_SENDING_DOMAINS,
    _SES_VERDICT_HEADERS,
    _VERDICT,
    _clean,
    _search_lowered,
    unfold,
)
from rootmail.domain.mail.model import ParsedMail, Verdicts
from rootmail.domain.suffixes import aligned

# ----------------------------------------------------------------------------------------------------
# The SES receipt block


def _uncommented(value: str) -> str:
    value = unfold(value)
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
    match = _VERDICT.match(unfold(value))
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


def parse_ses_block(mail: ParsedMail, headers: list[tuple[str, str, str]], problems: list[str]) -> None:
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
    match = _search_lowered(_ENVELOPE_FOR, _ENVELOPE_FOR_LOWER, unfold(received))
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
        envelope_from = _search_lowered(_ENVELOPE_FROM, _ENVELOPE_FROM_LOWER, unfold(received_spf))
        return_path = block.get("return-path", "")
        spf = _spf_verdict(
            spf,
            envelope_from.group(1) if envelope_from else unfold(return_path).strip("<> "),
            mail.sender_domain,
        )
    mail.verdicts = Verdicts(
        spam=_first_verdict(block.get("x-ses-spam-verdict")),
        virus=_first_verdict(block.get("x-ses-virus-verdict")),
        spf=spf,
        dkim=_dkim_verdict(auth, mail.sender_domain),
        dmarc=_dmarc_verdict(auth, mail.sender_domain, problems),
    )

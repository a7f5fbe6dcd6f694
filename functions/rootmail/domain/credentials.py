"""Credential mail: what must never reach a customer. Password-reset and MFA-recovery links, sign-in and e-mail
change codes, one-time passwords, invitation and subscription confirmations: whoever holds one can take over or
bind the root address. Looked for in every text a customer could read (subject, text, HTML alternatives, text
attachments, attached messages), by what credentials look like rather than by a fixed list of subjects, in the
languages AWS writes account mail in.

The marks say what was found (a phrase, "a code next to 'code'", a link's host and path), never the credential.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qsl, unquote, urlsplit

from rootmail.domain.mail.model import ParsedMail

# Senders of sign-in mail: root sign-in and recovery (signin.aws, verify.signin.aws), AWS Builder ID and IAM Identity
# Center (login.awsapps.com). A domain or any of its subdomains.
CREDENTIAL_SENDER_DOMAINS = ("signin.aws", "login.awsapps.com")

# Phrases that name a credential being handed over, casefolded; matched on text whose whitespace runs are one space,
# so a phrase broken over a line ("verification\ncode") is still found. Advice such as "reset your password", which
# AWS's own compromise notices give, is not a credential: the reset link is, and the links below find it.
CREDENTIAL_PHRASES = (
    "verification code",
    "security code",
    "sign-in code",
    "signin code",
    "sign in code",
    "one-time password",
    "one time password",
    "one-time passcode",
    "one-time code",
    "passcode",
    "authentication code",
    "confirmation code",
    "activation code",
    "password assistance",
    "resetpassword",
    "verifyemail",
    "確認コード",
    "認証コード",
    "検証コード",
    "セキュリティコード",
    "ワンタイムパスワード",
    "ワンタイムコード",
    "認証番号",
    "確認番号",
    "bestätigungscode",
    "sicherheitscode",
    "einmalpasswort",
    "code de vérification",
    "code de sécurité",
    "mot de passe à usage unique",
    "código de verificación",
    "código de seguridad",
    "contraseña de un solo uso",
    "codice di verifica",
    "código de verificação",
    "인증 코드",
    "확인 코드",
    "일회용 비밀번호",
    "验证码",
    "驗證碼",
    "一次性密码",
    "kode verifikasi",
)
# A word for a code, then (within a few words) a code: 6 to 8 digits (AWS's codes are 6), 3+3 digits, or 6 to 8
# letters and digits with a digit among them (StartPrimaryEmailUpdate's OTP is [a-zA-Z0-9]{6}, a notification
# contact's activation code [a-z0-9]{7}). Years and short numbers ("error code 500") are not codes; a run inside a
# longer token (a hex colour, an ID, a tracking path) is not one either.
_CODE_WORD = (
    r"(?:\bcodes?\b|\bpasscode\b|\botp\b|\bpin\b|コード|暗証番号|인증번호|코드|码|碼|código|codice|\bkode\b)"
)
_CODE = r"(?:\d{3}[ -]\d{3}|(?=[a-z]*\d)[a-z0-9]{6,8})"
_CODE_NEAR_WORD = re.compile(
    rf"{_CODE_WORD}[^\n]{{0,80}}?(?<![\w#/=._-]){_CODE}(?![\w/=_-]|[.:-]\w)", re.IGNORECASE
)
_CODE_HINTS = (
    "code",
    "otp",
    "pin",
    "コード",
    "暗証番号",
    "인증번호",
    "코드",
    "码",
    "碼",
    "código",
    "codice",
    "kode",
)
_OTP = re.compile(r"\botp\b", re.IGNORECASE)

_URL = re.compile(r"https?://[^\s<>\"'(){}\[\]]+", re.IGNORECASE)
# Hosts that sign someone in or verify an address: any link there with a path or a query is a credential.
_SIGN_IN_HOSTS = re.compile(
    r"^(?:signin\.aws\.amazon\.com|(?:[a-z0-9-]+\.)*signin\.aws|login\.awsapps\.com|profile\.aws\.amazon\.com"
    r"|email-verification\.[a-z0-9-]+\.amazonaws\.com)$"
)
# Query parameters that carry a secret whatever the host (SNS's confirmation Token, a pre-signed URL's signature).
_SECRET_PARAMETERS = frozenset(
    {
        "token",
        "otp",
        "x-amz-signature",
        "x-amz-credential",
        "invitation",
        "invitationtoken",
        "verificationcode",
        "resettoken",
        "confirmationcode",
    }
)
# Paths of reset, recovery, verification and confirmation pages: a credential when they carry a query.
_CREDENTIAL_PATH = re.compile(
    r"reset-?password|password-?reset|nomfa|verify-?email|confirm-?subscription|confirmation\.html"
    r"|accept-invitation|signup",
    re.IGNORECASE,
)
MAX_MARKS = 8
# Links read inside links (a tracking link's target, a redirect's) before a link counts as a credential anyway:
# AWS's tracking links hold one, escaped once; a deeper chain is read no further and never reaches a customer.
MAX_NESTED_LINKS = 8


def _link_mark(url: str, depth: int = 0) -> str | None:
    """Why a link is a credential (its host and first path segment: never its query), or None."""
    decoded = unquote(url)
    # Without a %-escape, unquote hands back the link itself, which the first pass has read already.
    for candidate in (url,) if decoded is url else (url, decoded):
        try:
            parts = urlsplit(candidate)
        except ValueError:
            continue
        host = (parts.hostname or "").rstrip(".")
        where = f"{host}{'/' + parts.path.strip('/').split('/')[0] if parts.path.strip('/') else ''}"[:80]
        rest = f"{parts.path}?{parts.query}#{parts.fragment}"
        if _SIGN_IN_HOSTS.match(host) and (parts.path.strip("/") or parts.query):
            return f"a sign-in link ({where})"
        if host.endswith(".awsapps.com") and _CREDENTIAL_PATH.search(rest):
            return f"an invitation link ({where})"
        names = {name.lower() for name, _ in parse_qsl(f"{parts.query}&{parts.fragment.partition('?')[2]}")}
        if names & _SECRET_PARAMETERS:
            return f"a link carrying a token ({where})"
        if parts.query and _CREDENTIAL_PATH.search(parts.path):
            return f"a reset or verification link ({where})"
        # A tracking link can hold the real link in its path, escaped or not.
        nested = _URL.search(candidate, 8)
        if nested is not None:
            if depth >= MAX_NESTED_LINKS:
                return f"a link inside {MAX_NESTED_LINKS} links ({where})"
            inner = _link_mark(nested.group(0), depth + 1)
            if inner:
                return inner
    return None


def credential_marks(mail: ParsedMail) -> list[str]:
    """Why a mail looks like credential mail, if it does: its sender, phrases, codes, links. Empty when none."""
    marks: list[str] = []
    domain = (mail.sender_domain or "").lower()
    for sender_domain in CREDENTIAL_SENDER_DOMAINS:
        if domain == sender_domain or domain.endswith("." + sender_domain):
            marks.append(f"sign-in sender {domain}")
    for source in (mail.subject, mail.text, mail.other_text):
        if not source or len(marks) >= MAX_MARKS:
            continue
        # NFKC: full-width digits and letters (Japanese mail) read as their ASCII selves.
        folded = " ".join(unicodedata.normalize("NFKC", source).casefold().split())
        marks.extend(f"'{phrase}'" for phrase in CREDENTIAL_PHRASES if phrase in folded)
        # Casefolded text holds no letter that (?i) reads as "otp" but "otp" itself: the substring test is exact.
        if "otp" in folded and _OTP.search(folded):
            marks.append("'OTP'")
        code = _CODE_NEAR_WORD.search(folded) if any(h in folded for h in _CODE_HINTS) else None
        if code:
            marks.append(f"a code next to '{code.group(0).split()[0][:20]}'")
        for url in _URL.finditer(source):
            mark = _link_mark(url.group(0).rstrip(".,;:!?"))
            if mark:
                marks.append(mark)
                break
    return list(dict.fromkeys(marks))[:MAX_MARKS]

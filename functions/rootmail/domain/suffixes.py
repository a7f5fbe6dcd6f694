"""Whose is a domain name? Public suffixes and organisational domains, from the Public Suffix List.

The list is the copy bundled with the pinned `publicsuffixlist` package, read from disk once: it is never fetched
at run time (the Lambda functions have no business reaching out for it, and an update arrives with a new pin).
Besides the ICANN suffixes (`com`, `co.uk`), its private section lists names under which companies hand out names
to their customers: `*.compute-1.amazonaws.com` (EC2 hosts), `*.elb.amazonaws.com`, `s3.amazonaws.com`,
`github.io`, `herokuapp.com`... A name under one of those is its customer's, not the company's.
"""

from __future__ import annotations

import functools

from publicsuffixlist import PublicSuffixList


@functools.cache
def _lists() -> tuple[PublicSuffixList, PublicSuffixList]:
    """(the whole list, its ICANN section only); about a tenth of a second to read: only when first needed."""
    return PublicSuffixList(), PublicSuffixList(only_icann=True)


@functools.lru_cache(maxsize=4096)  # a mail names a handful of domains, mostly the same few AWS ones
def organizational_domain(domain: str) -> str | None:
    """The registered domain (RFC 7489 section 3.2): one label more than its public suffix, the private section's
    included, so each EC2 host name is an organisation of its own. None for a public suffix or a malformed name."""
    return _lists()[0].privatesuffix(domain.lower().rstrip(".")) if domain else None


def aligned(domain: str | None, other: str | None) -> bool:
    """DMARC relaxed alignment: both names belong to the same organisational domain."""
    if not domain or not other:
        return False
    organization = organizational_domain(domain)
    return organization is not None and organization == organizational_domain(other)


@functools.lru_cache(maxsize=4096)
def shared_suffix_reason(domain: str) -> str | None:
    """Why `domain` is a name others hand out, so never a domain AWS sends from; None when it is a name of its own.

    That is: a public suffix itself (`aws`, `co.uk`, `x.compute-1.amazonaws.com` under a wildcard), a malformed
    name, or a name whose public suffix by the whole list is longer than by its ICANN section alone (a name under
    a suffix of the private section, such as `x.us-east-1.elb.amazonaws.com` or `x.github.io`)."""
    full, icann = _lists()
    name = domain.lower().rstrip(".")
    suffix = full.publicsuffix(name)
    if suffix is None or not name:
        return "is not a domain name"
    if suffix == name:
        return "is itself a public suffix"
    if suffix != icann.publicsuffix(name):
        return f"lies under {suffix}, a public suffix whose names others hand out"
    return None

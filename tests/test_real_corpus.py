"""The catalogue of real AWS root mail (tests/corpus/real): every mail has a source and says how much of it is
public, and whatever the rules make of a real mail, the promises that protect customers hold on it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rootmail.catalogue import as_stored, catalogue
from rootmail.domain.rules import RuleSet, load_rule_files
from rootmail.offline import AccountDirectory, load_accounts, triage_file

ROOT = Path(__file__).resolve().parents[1]
RULES = RuleSet(load_rule_files(ROOT / "rules"))
CORPUS = ROOT / "tests" / "corpus"
DIRECTORY = AccountDirectory.of(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
REAL = CORPUS / "real"
MAILS = catalogue(REAL)
STATES = {"full", "partial", "subject-only", "documented-wording"}


def test_the_catalogue_is_split_by_source_and_large_enough():
    assert len(MAILS) >= 80
    held = {name for name, _ in MAILS if name.startswith("held-out/")}
    assert len(held) * 3 >= len(MAILS) * 0.9  # about a third set aside
    index = __import__("json").loads((REAL / "index.json").read_text(encoding="utf-8"))
    sides: dict[str, set[str]] = {}
    for entry in index:
        sides.setdefault(entry["source_group"], set()).add(entry["file"].split("/")[0])
    assert all(len(parts) == 1 for parts in sides.values())  # no source on both sides
    assert {e["file"] for e in index} == {name for name, _ in MAILS}


@pytest.mark.parametrize(("name", "mail"), MAILS, ids=[name for name, _ in MAILS])
def test_every_mail_says_where_it_comes_from_and_how_much_is_public(name, mail):
    assert mail["source"].startswith(("http://", "https://", "github:"))
    assert mail["body_state"] in STATES
    assert mail["language"] in {"en", "ja"}
    if mail["body_state"] == "subject-only":
        assert mail["subject"] and not mail["body"].strip()
    elif mail["body_state"] in ("full", "partial"):
        assert mail["body"].strip()
    else:  # what AWS's documentation says of the mail: the page, and what it says, in the notes
        assert mail["notes"].strip()


@pytest.mark.parametrize(("name", "mail"), MAILS, ids=[name for name, _ in MAILS])
def test_no_real_mail_reaches_a_customer_it_must_not(name, mail, tmp_path):
    path = tmp_path / "mail.eml"
    path.write_bytes(as_stored(mail))
    result = triage_file(path, RULES, DIRECTORY)
    category, action = mail["category"], result["action"]
    if category in ("abuse-report", "account-compromise", "ses-sending-status"):
        # Urgent mail is never forwarded as an ordinary notice, nor ignored.
        assert action not in ("forward", "ignore"), result
    if category in ("credentials", "billing", "unclassified"):
        # Codes and resets, the provider's payments, AWS's marketing: never forwarded or escalated to a customer.
        assert action not in ("forward", "urgent"), result

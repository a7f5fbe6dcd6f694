"""Every sample mail, offline: category, action, accounts, case ID and authenticity as the corpus says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rootmail.app.offline import AccountDirectory, load_accounts, triage_file
from rootmail.domain.mail.parse import parse_mail
from rootmail.domain.rules.files import load_rule_files

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))
RULES = load_rule_files(ROOT / "rules")
DIRECTORY = AccountDirectory.of(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))


def test_expected_names_exactly_the_corpus():
    assert set(EXPECTED) == {p.name for p in CORPUS.glob("*.eml")}


def test_corpus_covers_every_category_and_action():
    assert {e["category"] for e in EXPECTED.values()} >= {
        "support-case",
        "abuse-report",
        "account-compromise",
        "ses-sending-status",
        "credentials",
        "health",
        "billing",
        "cost-alert",
        "account-lifecycle",
        "marketplace",
        "unclassified",
    }
    assert {e["action"] for e in EXPECTED.values()} == {
        "forward",
        "ticket",
        "urgent",
        "restricted",
        "quarantine",
        "ignore",
        "queue",
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_mail(name):
    expected = EXPECTED[name]
    result = triage_file(CORPUS / name, RULES, DIRECTORY)
    mail = parse_mail((CORPUS / name).read_bytes())
    assert (result["category"], result["action"]) == (expected["category"], expected["action"]), result[
        "reason"
    ]
    assert result["private"] is expected["private"], result["reason"]
    assert mail.account_ids == expected["account_ids"]
    assert result["case_id"] == expected["case_id"]
    assert result["authentic"] is expected["authentic"], result["authenticity_reasons"]
    if expected["malformed"]:
        assert result["problems"], "a malformed mail must have its problem recorded"

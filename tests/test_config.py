"""Configuration is read once, validated, and fails loudly naming what is missing."""

from __future__ import annotations

import pytest

from rootmail.bootstrap import Runtime
from rootmail.config import Settings
from rootmail.errors import ConfigurationError


def test_a_missing_setting_names_its_variable(monkeypatch):
    monkeypatch.delenv("ROOTMAIL_LEDGER_TABLE", raising=False)
    runtime = Runtime(Settings())
    with pytest.raises(ConfigurationError, match="ROOTMAIL_LEDGER_TABLE is not set"):
        _ = runtime.ledger


def test_sender_domain_allowlist_is_configurable(monkeypatch):
    monkeypatch.setenv("ROOTMAIL_AWS_SENDER_DOMAINS", " Amazon.com, .aws.com ,")
    assert Settings().aws_sender_domains == ("amazon.com", "aws.com")


def test_an_empty_allowlist_is_refused(monkeypatch):
    monkeypatch.setenv("ROOTMAIL_AWS_SENDER_DOMAINS", " , ")
    with pytest.raises(ValueError, match="at least one entry"):
        Settings()


def test_the_default_allowlist_is_the_aws_domains(monkeypatch):
    monkeypatch.delenv("ROOTMAIL_AWS_SENDER_DOMAINS", raising=False)
    assert "signin.aws" in Settings().aws_sender_domains


def test_no_client_is_built_before_it_is_needed(monkeypatch):
    built = []
    monkeypatch.setattr(Runtime, "client", lambda self, service: built.append(service))
    runtime = Runtime(Settings(ledger_table="t"))
    assert built == []
    _ = runtime.ledger
    assert built == ["dynamodb"]


def test_the_reconcile_attempt_limit_defaults_to_three_and_refuses_nonsense(monkeypatch):
    from rootmail.config import get_settings

    monkeypatch.delenv("ROOTMAIL_RECONCILE_MAX_ATTEMPTS", raising=False)
    assert Settings().reconcile_max_attempts == 3
    monkeypatch.setenv("ROOTMAIL_RECONCILE_MAX_ATTEMPTS", "5")
    assert Settings().reconcile_max_attempts == 5
    for wrong in ("0", "-1", "many", "1000"):
        monkeypatch.setenv("ROOTMAIL_RECONCILE_MAX_ATTEMPTS", wrong)
        get_settings.cache_clear()
        with pytest.raises(ConfigurationError, match="reconcile_max_attempts"):
            get_settings()
    get_settings.cache_clear()

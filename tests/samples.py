"""The sample organisation and rules on the local emulator, as most pipeline tests start."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rootmail.domain.rules import load_rule_files
from rootmail.local.emulator import LocalPipeline
from rootmail.offline import load_accounts

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"


@contextmanager
def sample_pipeline(**settings: str) -> Iterator[LocalPipeline]:
    """The local pipeline with the sample accounts (tests/corpus) and the default rules (rules/), and these
    ROOTMAIL_* settings for its functions."""
    with LocalPipeline(settings=dict(settings)) as local:
        local.seed_accounts(load_accounts(CORPUS / "accounts.json", CORPUS / "contacts.json"))
        local.seed_rules(load_rule_files(ROOT / "rules"))
        yield local

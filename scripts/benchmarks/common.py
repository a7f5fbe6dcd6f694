"""What every benchmark shares: the Benchmark record, AWS requests counted on the wire, moto as the
AWS of a run, side-by-side timing, and the realistic corpus (the assumed mix of a year's root mail)."""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "build" / "bench"


@dataclass
class Benchmark:
    name: str
    description: str
    parameters: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # The headline figures, for the report's first table and the README: (what, measured, target or reference).
    summary: list[tuple[str, str, str]] = field(default_factory=list)


class WireCounter:
    """Requests by service and operation, counted as botocore sends them."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-send", self._count)
        return client

    def _count(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.requests[f"{service}:{operation}"] += 1

    def take(self) -> Counter[str]:
        taken, self.requests = self.requests, Counter()
        return taken


@contextmanager
def local_aws(account: str) -> Iterator[None]:
    """moto, with every request pinned to one account (moto otherwise finds a request's account by scanning every
    account's IAM keys, and each account of a large organisation has IAM in moto)."""
    from moto import mock_aws

    saved = {
        k: os.environ.get(k) for k in ("AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    saved.update({k: os.environ.get(k) for k in ("MOTO_ACCOUNT_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL")})
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        MOTO_ACCOUNT_ID=account,
    )
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    try:
        with mock_aws():
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ---- a realistic corpus ---------------------------------------------------------------------------------------

# The assumed share (%) of each kind of mail in a year's root mail, by the corpus file's name: a statement a month
# for every account, Health notices the most, then cost alerts and support; a percent or less of the rarer kinds.
# No public figure exists; this is what a provider's root mailbox looks like, and the report says it is assumed.
MIX = {
    "health": 34.0,
    "billing-statement": 17.0,
    "cost-alert": 13.0,
    "support-case": 10.0,
    "marketplace": 6.0,
    "credentials": 6.0,
    "unclassified": 5.0,
    "account-lifecycle": 3.0,
    "malformed": 2.5,
    "spoofed": 2.0,
    "account-compromise": 0.5,
    "abuse-report": 0.5,
    "ses-sending": 0.5,
}
_ACCOUNT_ID = re.compile(rb"(?<![0-9])[0-9]{12}(?![0-9])")


def mail_kind(name: str) -> str:
    """`11-health-single-account` → `health`."""
    stem = name.split("-", 1)[1]
    return next(kind for kind in MIX if stem.startswith(kind))


def realistic_corpus(count: int, seed: int = 8) -> list[tuple[str, bytes]]:
    """`count` mails in the assumed mix, each a corpus mail of its kind with its own Message-ID and account IDs
    (drawn from the corpus organisation, so they resolve as they would)."""
    rng = random.Random(seed)
    templates: dict[str, list[tuple[str, bytes]]] = {}
    for path in sorted((ROOT / "tests" / "corpus").glob("*.eml")):
        templates.setdefault(mail_kind(path.stem), []).append((path.stem, path.read_bytes()))
    accounts = [
        a["Id"] for a in json.loads((ROOT / "tests/corpus/accounts.json").read_text(encoding="utf-8"))
    ]
    kinds = list(MIX)
    mails = []
    for number, kind in enumerate(rng.choices(kinds, weights=[MIX[k] for k in kinds], k=count)):
        name, raw = rng.choice(templates[kind])
        # In the order found (a set's order changes with the hash seed): the same corpus every run.
        swap = {found: rng.choice(accounts).encode() for found in dict.fromkeys(_ACCOUNT_ID.findall(raw))}
        raw = _ACCOUNT_ID.sub(lambda m, swap=swap: swap[m[0]], raw)
        raw = raw.replace(b"Message-ID: <", f"Message-ID: <r{number}-".encode(), 1)
        mails.append((name, raw))
    return mails


def side_by_side(runs: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """The best of `rounds` timings of each run, the runs taking turns so a noisy moment hits them all alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - started)
    return best


def best_seconds(run: Callable[[], Any], rounds: int, repeat: int = 1) -> float:
    """The best of `rounds` timings of `run`, each the mean of `repeat` calls."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(repeat):
            run()
        best = min(best, (time.perf_counter() - started) / repeat)
    return best


def size_text(count: int) -> str:
    return f"{count / 2**20:.0f} MB" if count >= 2**20 else f"{count / 1024:.0f} KB"

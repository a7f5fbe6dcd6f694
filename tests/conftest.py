from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest


class _NoSleep:
    """Stands in for the `time` module of a library that waits before retrying: the retries still happen."""

    @staticmethod
    def sleep(seconds: float) -> None:
        return None


# The state machines wait between retries (a support case another mail holds is waited out for minutes) and in Wait
# states (an accounts refresh running elsewhere). On the emulator those waits pass this many times faster: every
# retry and wait still happens, in the same order, and a holder still gets time to finish.
TIME_COMPRESSION = 10


class _CompressedSleep:
    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds / TIME_COMPRESSION)


@pytest.fixture(autouse=True)
def compressed_waits(monkeypatch):
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    monkeypatch.setattr(retrier_decl, "time", _CompressedSleep)
    wait = WaitFunction._wait_interval
    monkeypatch.setattr(
        WaitFunction,
        "_wait_interval",
        lambda self, env, wait_seconds: wait(self, env, -(-wait_seconds // TIME_COMPRESSION)),
    )


@pytest.fixture
def no_retry_sleep(monkeypatch):
    """moto's ASL interpreter really sleeps between retries; tests of Retry paths skip the wait."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    monkeypatch.setattr(retrier_decl, "time", _NoSleep)


@pytest.fixture
def no_sdk_retry_sleep(monkeypatch):
    """botocore sleeps (with backoff) before each retry; the retries still happen, the waiting does not."""
    import botocore.endpoint

    monkeypatch.setattr(botocore.endpoint, "time", _NoSleep)


@pytest.fixture
def log():
    """What the service logs while the test runs (the handler's stream, bound when the logger was made)."""
    buffer = io.StringIO()
    handlers = [h for h in logging.getLogger("rootmail").handlers if isinstance(h, logging.StreamHandler)]
    saved = [h.stream for h in handlers]
    for handler in handlers:
        handler.stream = buffer
    yield buffer
    for handler, stream in zip(handlers, saved, strict=True):
        handler.stream = stream


@pytest.fixture
def aws(monkeypatch) -> Iterator[None]:
    """moto for every AWS service, with test credentials and no profile, endpoint or pinned account of the shell."""
    from moto import mock_aws

    for name, value in {
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield

from __future__ import annotations

import pytest


@pytest.fixture
def no_retry_sleep(monkeypatch):
    """moto's ASL interpreter really sleeps between retries; tests of Retry paths skip the wait."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            return None

    monkeypatch.setattr(retrier_decl, "time", _Time)

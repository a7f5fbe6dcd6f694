"""Hourly: every stored mail against the ledger; what was never triaged or stopped half-way is re-driven."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.audit import hourly_reconcile
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return hourly_reconcile(runtime())

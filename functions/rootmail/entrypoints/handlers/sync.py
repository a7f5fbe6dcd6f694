"""Scheduled hourly: accounts, their status and their customer contacts from AWS Organizations into the table."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.accounts_sync import scheduled_sync
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return scheduled_sync(runtime(), remaining_seconds=context.get_remaining_time_in_millis() / 1000)

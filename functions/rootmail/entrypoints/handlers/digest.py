"""Hourly: the patterns of queued mail, posted to the operators' channel."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.slack_commands import hourly_digest
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return hourly_digest(runtime())

"""Retry workflow task: start one queued mail's triage again, and say whether it is still running."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import RetriageItem
from rootmail.app.slack_commands import retriage_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
@event_parser(model=RetriageItem)
def handler(event: RetriageItem, context: LambdaContext) -> dict[str, Any]:
    return retriage_step(event, runtime()).as_state()

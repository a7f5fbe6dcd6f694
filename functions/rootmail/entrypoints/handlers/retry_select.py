"""Retry workflow task: the queued mails an operator asked to retry."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import RetryRun
from rootmail.app.slack_commands import select_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="run", clear_state=True)
@event_parser(model=RetryRun)
def handler(event: RetryRun, context: LambdaContext) -> dict[str, Any]:
    return select_step(event, runtime()).as_state()

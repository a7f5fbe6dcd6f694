"""Retry workflow task: what became of the retried mail, posted where the operator asked."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import RetryRun
from rootmail.app.slack_commands import report_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="run", clear_state=True)
@event_parser(model=RetryRun)
def handler(event: RetryRun, context: LambdaContext) -> dict[str, Any]:
    return report_step(event, runtime())

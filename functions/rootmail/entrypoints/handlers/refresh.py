"""State machine task: the mail's root address is unknown; refresh the accounts from Organizations (rate-limited)."""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.triage_steps import refresh_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return refresh_step(event, runtime(), remaining_seconds=context.get_remaining_time_in_millis() / 1000)

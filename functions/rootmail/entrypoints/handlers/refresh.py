"""State machine task: the mail's root address is unknown; refresh the accounts from Organizations (rate-limited)."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import TriageState
from rootmail.app.triage.intake import refresh_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
@event_parser(model=TriageState)
def handler(event: TriageState, context: LambdaContext) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    return refresh_step(event, runtime(), remaining_seconds=remaining).as_state()

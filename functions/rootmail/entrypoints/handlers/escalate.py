"""State machine task: Urgent ticket for the customer and an alert for the operators."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import TriageState
from rootmail.app.triage.deliveries import escalate_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
@event_parser(model=TriageState)
def handler(event: TriageState, context: LambdaContext) -> dict[str, Any]:
    return escalate_step(event, runtime()).as_state()

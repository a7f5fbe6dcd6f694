"""State machine task: Tell the operators about mail kept from customers."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import TriageState
from rootmail.app.triage.deliveries import alert_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
@event_parser(model=TriageState)
def handler(event: TriageState, context: LambdaContext) -> dict[str, Any]:
    return alert_step(event, runtime()).as_state()

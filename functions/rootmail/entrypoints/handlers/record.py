"""State machine task: write the mail's terminal state to the ledger, and count it."""

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.payloads import FinalState
from rootmail.app.triage.record import record_step
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(correlation_id_path="mail_id", clear_state=True)
@event_parser(model=FinalState)
def handler(event: FinalState, context: LambdaContext) -> dict[str, Any]:
    return record_step(event, runtime())

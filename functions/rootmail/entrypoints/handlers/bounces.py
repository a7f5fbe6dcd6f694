"""SNS (SES event destination) → suppress bouncing and complaining contacts, alert the operators."""

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent
from aws_lambda_powertools.utilities.typing import LambdaContext

from rootmail.app.bounces import record_ses_events
from rootmail.bootstrap import runtime
from rootmail.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return record_ses_events((r.sns.message for r in SNSEvent(event).records), runtime())

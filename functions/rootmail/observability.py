"""One Logger and one Metrics for the service (Powertools): JSON logs with the mail as correlation ID, EMF metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="rootmail")
metrics = Metrics(namespace="rootmail", service="rootmail")

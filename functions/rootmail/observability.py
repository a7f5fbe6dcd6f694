"""Powertools Logger for the service (JSON logs, the mail as correlation ID) and its metrics namespace."""

from __future__ import annotations

from aws_lambda_powertools import Logger

SERVICE = "rootmail"
METRICS_NAMESPACE = "rootmail"

logger = Logger(service=SERVICE)

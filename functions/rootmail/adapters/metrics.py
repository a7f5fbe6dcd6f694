"""CloudWatch metrics as embedded-metric-format log lines (Powertools), one self-contained record per figure."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from rootmail.observability import METRICS_NAMESPACE


class EmfMetrics:
    def put(self, name: str, value: float, unit: str = "Count", **dimensions: str) -> None:
        with single_metric(
            name=name, unit=MetricUnit(unit), value=value, namespace=METRICS_NAMESPACE
        ) as metric:
            for key, dimension in dimensions.items():
                metric.add_dimension(name=key, value=dimension)

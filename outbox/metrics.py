"""The outbox's figures for ``/metrics`` (why they are read from the database: ``core.metrics``).

Is the relay keeping up: how many messages are due and unsent (depth), how long the oldest of
them has waited (lag), how many wait for a retry's backoff, and how many were parked for a
person. The first three read the partial index of unsent rows (``outbox_due``).
"""

from collections.abc import Iterator

from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from outbox.models import OutboxMessage


class OutboxCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = timezone.now()
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True, parked_at__isnull=True)
        due = unsent.filter(available_at__lte=now).aggregate(n=Count("id"), oldest=Min("available_at"))
        oldest = due["oldest"]
        yield GaugeMetricFamily("shop_outbox_depth", "Outbox messages due and not yet published.", value=due["n"])
        yield GaugeMetricFamily(
            "shop_outbox_lag_seconds",
            "How long the oldest due, unpublished outbox message has waited (0 when none waits).",
            value=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "shop_outbox_scheduled",
            "Outbox messages held back until later (a retry's backoff).",
            value=unsent.filter(available_at__gt=now).count(),
        )
        yield GaugeMetricFamily(
            "shop_outbox_parked",
            "Outbox messages that could not be published and wait for staff to re-queue them.",
            value=OutboxMessage.objects.filter(parked_at__isnull=False).count(),
        )

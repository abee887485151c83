"""The inbox's figures for ``/metrics`` (why they are read from the database: ``core.metrics``)."""

from collections.abc import Iterator

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from events.models import InboxEntry
from events.registry import subscriptions


class InboxCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        parked = GaugeMetricFamily(
            "shop_inbox_parked",
            "Events whose handler kept failing, parked until staff re-queue them, by consumer.",
            labels=["consumer"],
        )
        counts = dict.fromkeys(sorted({s.consumer for s in subscriptions()}), 0)
        rows = InboxEntry.objects.filter(parked=True).values_list("consumer").annotate(n=Count("id"))
        counts.update(dict(rows))
        for consumer, n in counts.items():
            parked.add_metric([consumer], n)
        yield parked

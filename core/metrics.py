"""``/metrics``: the shop's figures in Prometheus' text format, read from the database when scraped.

Why from the database, and not from counters kept in memory: the web server (several gunicorn
processes) and the Celery workers (each with its pool, on as many machines as the operator
likes) are separate processes. A registry of counters in each would show a scrape the share of
whichever process answered it, and prometheus_client's multiprocess mode only adds up processes
that share one directory on one host: it cannot reach a worker on another machine, and loses
what a process counted when it restarts. Here the database is the system of record of every
saga (its steps, its journal, the outbox and the inbox), so each app's collector asks it, with
a few grouped queries, whenever Prometheus scrapes, whichever process answers: every figure
is true across processes and survives restarts. Counters are counts of rows that are kept (the
step log, the journal), so they only grow, as Prometheus expects of a counter.

Who may read it: a signed-in user holding ``core.view_metrics`` (``is_staff`` alone grants
nothing, as everywhere: contract §3), or a client whose address (as the trusted proxies report
it, ``core.clients``) is in ``METRICS_ALLOWED_IPS`` (loopback by default).
"""

from collections.abc import Iterable, Iterator

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from core.clients import client_in
from core.selectors import BEAT, heartbeat_ages

# Our own registry: the default one would add this process's own figures (its memory, its
# garbage collector), which say nothing about the shop and differ from one process to the next.
REGISTRY = CollectorRegistry(auto_describe=False)
_registered: set[type[Collector]] = set()


def metrics_register(collector: Collector) -> None:
    """Add an app's collector (from its ``AppConfig.ready``); one of each class per process."""
    if type(collector) not in _registered:
        _registered.add(type(collector))
        REGISTRY.register(collector)


VIEW_METRICS = "core.view_metrics"


def metrics_allowed(request: HttpRequest) -> bool:
    """A session whose user holds ``VIEW_METRICS``, or a scraper at an allowed address."""
    if request.user.has_perm(VIEW_METRICS):  # False for anonymous and inactive users
        return True
    return client_in(request, list(settings.METRICS_ALLOWED_IPS))


def zeroes(*labels: Iterable[str]) -> dict[tuple[str, ...], float]:
    """Every combination of the given label values at 0: a series exists before its first row."""
    combos: list[tuple[str, ...]] = [()]
    for values in labels:
        combos = [(*combo, value) for combo in combos for value in values]
    return dict.fromkeys(combos, 0.0)


class HeartbeatCollector(Collector):
    """How long ago each queue was last served and beat last ticked (``core.selectors``)."""

    def collect(self) -> Iterator[Metric]:
        ages = heartbeat_ages(now=timezone.now())
        served = GaugeMetricFamily(
            "shop_queue_last_served_seconds",
            "Seconds since a worker last took a heartbeat from the queue (+Inf: never).",
            labels=["queue"],
        )
        for queue in settings.SHOP_QUEUES:
            served.add_metric([queue], ages[queue])
        yield served
        yield GaugeMetricFamily(
            "shop_beat_last_tick_seconds",
            "Seconds since beat last sent the heartbeats (+Inf: never).",
            value=ages[BEAT],
        )

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

Figures over the whole history (every step ever run) are running totals in ``MetricTotal``,
which each scrape moves on by the rows that changed since the last one (``totals_fold``): the
scrape's cost follows what happened since, not how much happened before (``orders.metrics``).

Who may read it: a signed-in user holding ``core.view_metrics`` (``is_staff`` alone grants
nothing, as everywhere: contract §3), or a client whose address (as the trusted proxies report
it, ``core.clients``) is in ``METRICS_ALLOWED_IPS`` (loopback by default).
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from core.clients import client_in
from core.models import MetricTotal
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


# A sample of a running total: its name and its label values.
Sample = tuple[str, tuple[str, ...]]
Deltas = defaultdict[Sample, float]
# One batch of a fold: adds what its rows changed to the deltas, marks them counted, and returns
# how many rows it read (a full batch: there may be more).
Fold = Callable[[Deltas], int]
# The PostgreSQL advisory lock that scrapes take turns at (a number of our own: "metr").
FOLD_LOCK = 0x6D657472


def totals_fold(*folds: Fold, batch: int) -> None:
    """Fold the rows that changed since the last scrape into the running totals, ``batch`` rows
    of each kind per transaction, until none is left.

    Scrapes take turns (``FOLD_LOCK``; on SQLite the transaction holds the database's write lock
    from its start, ``transaction_mode`` IMMEDIATE), so a scrape reads the totals with what the
    one before it folded. Each fold locks the rows it reads, skipping those another transaction
    is writing (the next scrape folds them; a step is never waited for), and marks them counted
    in the transaction that moves the totals: each change is added once. An advisory lock, not a
    row's: a scrape with nothing new writes nothing. A batch that commits is kept: a long first
    fold (after the migration, the whole history) cut short goes on at the next scrape.
    """
    more = True
    while more:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [FOLD_LOCK])
            deltas: Deltas = defaultdict(float)
            more = any([fold(deltas) >= batch for fold in folds])
            totals_add(deltas)


def totals_add(deltas: Deltas) -> None:
    """Add ``deltas`` to the running totals (a sample not yet kept starts at 0, so a delta of 0
    brings its series into being). Under the ``FOLD_LOCK``: nothing else writes them meanwhile."""
    if not deltas:
        return
    kept = MetricTotal.objects.filter(metric__in={metric for metric, _ in deltas})
    values = {(metric, labels): value for metric, labels, value in kept.values_list("metric", "labels", "value")}
    changed = []
    for (metric, labels), delta in deltas.items():
        key = (metric, json.dumps(labels))
        changed.append(MetricTotal(metric=metric, labels=key[1], value=values.get(key, 0.0) + delta))
    MetricTotal.objects.bulk_create(
        changed, update_conflicts=True, unique_fields=["metric", "labels"], update_fields=["value"]
    )


def totals(*metrics: str) -> dict[str, dict[tuple[str, ...], float]]:
    """The running totals of ``metrics``: name → {label values: value}."""
    found: dict[str, dict[tuple[str, ...], float]] = {metric: {} for metric in metrics}
    for metric, labels, value in MetricTotal.objects.filter(metric__in=metrics).values_list(
        "metric", "labels", "value"
    ):
        found[metric][tuple(json.loads(labels))] = value
    return found


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

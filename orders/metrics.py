"""The orders' and their sagas' figures for ``/metrics`` (why from the database: ``core.metrics``).

- ``shop_orders{status, coordination}``: orders by status and mode.
- ``shop_saga_step_duration_seconds{step, kind, coordination}``: how long each finished step or
  compensation took (its last attempt: ``started_at`` to ``finished_at`` of the step log).
- ``shop_saga_step_outcomes_total{step, kind, outcome, coordination}``: finished steps and
  compensations (``kind="compensation"``) by outcome: ``succeeded``, ``failed``, ``skipped``.
- ``shop_saga_step_retries_total{step, kind, coordination}``: attempts beyond the first
  (retries after an error, a wait for a call in flight, a take-over after a lease).
- ``shop_saga_redrives_total{coordination}``: sagas the sweeper drove on after they stalled
  (its journal lines, ``orders.services.saga_recover_stalled``).
- ``shop_orders_ledger_mismatch{coordination}``: ended orders that the reconciler found not
  adding up with the providers' ledgers and could not repair (``orders/reconciliation.py``);
  ``shop_reconciler_repairs_total{coordination}``: the repairs it made.

A per-line step (``reserve_stock:<sku>``) counts under its step's name, so the number of
series does not grow with the catalog.

**What a scrape costs does not grow with the history.** The figures over every order ever placed
(orders by status, the step figures, re-drives, repairs) are running totals (``core.metrics``),
and each scrape folds into them only what changed since the last one: each row keeps how it was
last counted (``counted_*``), a partial index holds the orders that differ from it (a changed
status, a repair, or a saga that moved: a changed step sets its order's ``saga_moved``) and
the re-drives not yet counted, and the fold takes back a row's old share of the totals and adds
its new one. A scrape reads those indexes, the changed orders' steps by their key, and the
totals, nothing else of the step log or the journal; the mismatched orders are read through a
partial index of their own. Measured on
PostgreSQL on a busy 2-core machine (``bench/metrics_scrape.py``, bench/improvements.md): a
scrape takes some tens of milliseconds with 1,000,000 steps in the step log, as with 10,000,
where reading the step log whole took seconds.

Why this and not the alternatives:

- A watermark (the last id of the step log folded) misses what matters: a step's row changes in
  place (pending, running, succeeded; a failed step can land late, a settled compensation be
  re-opened), and ids commit out of order, so a row committed late below the watermark would be
  skipped for ever.
- Counters kept by the steps themselves would add a write to every step's transaction, and a row
  that every order's steps update serialises them. Here the saga's statements are the same as
  before (the columns keep their defaults when a row is planned; the runtime's own updates put
  a changed order in the partial index); the scrape does the writing, once per changed row and
  scrape, off the saga's path.
- No index of the step log names a column the runtime moves: PostgreSQL then updates a step's
  row in place (HOT), writing no index entry. A partial index of changed steps (this module's
  first version) took that away from every update of every step, and cost choreography about a
  fifth of its throughput. The orders' index names the status (indexed anyway) and a flag
  that a saga's steps set once and a scrape clears once: an order's moves that change no
  status find it set already, and stay HOT.
- The fold locks the orders it reads (``SKIP LOCKED``: one whose saga is being written is folded
  at the next scrape, and never waited for; a step is written only under its order's lock, so
  the steps it reads hold still), so a step that finishes while it runs is counted once; two
  scrapes take turns (``core.metrics.totals_fold``). It writes in batches of
  ``BATCH``, each committed: after the migration, the first scrape folds the whole history once
  (about two minutes per million steps here, bench/improvements.md); one cut short by a timeout
  is taken up by the next.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, F, OuterRef, Q, Subquery
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.metrics import Deltas, Sample, totals, totals_fold, zeroes
from orders.models import ORDER_UNCOUNTED, REDRIVE_UNCOUNTED, Coordination, Order, OrderEvent, Status
from sagas.models import SagaStep

# Seconds: a local step takes milliseconds, a provider call up to its timeout, a retried one more.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FINISHED = (SagaStep.Status.SUCCEEDED, SagaStep.Status.FAILED, SagaStep.Status.SKIPPED)
MODES = [str(mode) for mode in Coordination.values]
STEP_LABELS = ["step", "kind", "coordination"]
# Orders per transaction of a fold (with their steps: some ten rows each, a line's steps more).
BATCH = 1000
# A step whose status or attempts (and with them its timings) moved since it was last counted.
STEP_CHANGED = ~Q(status=F("counted_status")) | ~Q(attempts=F("counted_attempts"))

# The running totals, by sample name.
ORDERS = "shop_orders"
OUTCOMES = "shop_saga_step_outcomes_total"
RETRIES = "shop_saga_step_retries_total"
DURATION = "shop_saga_step_duration_seconds"
BUCKET, COUNT, SUM = f"{DURATION}_bucket", f"{DURATION}_count", f"{DURATION}_sum"
REDRIVES = "shop_saga_redrives_total"
REPAIRS = "shop_reconciler_repairs_total"


class OrderCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        totals_fold(fold_orders, fold_redrives, batch=BATCH)
        kept = totals(ORDERS, OUTCOMES, RETRIES, BUCKET, COUNT, SUM, REDRIVES, REPAIRS)
        yield self.orders(kept[ORDERS])
        yield self.durations(kept[BUCKET], kept[COUNT], kept[SUM])
        yield self.outcomes(kept[OUTCOMES])
        yield self.retries(kept[RETRIES])
        yield _per_mode(
            CounterMetricFamily(
                "shop_saga_redrives", "Stalled sagas the sweeper drove on again.", labels=["coordination"]
            ),
            kept[REDRIVES].items(),
        )
        yield self.ledger_mismatches()
        yield _per_mode(
            CounterMetricFamily(
                "shop_reconciler_repairs",
                "Orders the reconciler found holding money or a parcel the providers kept, and had undone.",
                labels=["coordination"],
            ),
            kept[REPAIRS].items(),
        )

    def orders(self, kept: dict[tuple[str, ...], float]) -> Metric:
        counts = zeroes([str(s) for s in Status.values], MODES) | kept
        family = GaugeMetricFamily(
            "shop_orders", "Orders by status and coordination mode.", labels=["status", "coordination"]
        )
        for labels, n in counts.items():
            family.add_metric(list(labels), n)
        return family

    def durations(
        self,
        buckets: dict[tuple[str, ...], float],
        counts: dict[tuple[str, ...], float],
        sums: dict[tuple[str, ...], float],
    ) -> Metric:
        family = HistogramMetricFamily(
            "shop_saga_step_duration_seconds",
            "How long finished saga steps and compensations took (their last attempt).",
            labels=STEP_LABELS,
        )
        for labels, timed in sorted(counts.items()):
            cumulative = [(str(b), buckets.get((*labels, str(b)), 0.0)) for b in BUCKETS]
            family.add_metric(list(labels), [*cumulative, ("+Inf", timed)], sum_value=sums.get(labels, 0.0))
        return family

    def outcomes(self, kept: dict[tuple[str, ...], float]) -> Metric:
        family = CounterMetricFamily(
            "shop_saga_step_outcomes",
            "Finished saga steps and compensations (kind) by outcome.",
            labels=["step", "kind", "outcome", "coordination"],
        )
        for labels, n in sorted(kept.items()):
            family.add_metric(list(labels), n)
        return family

    def retries(self, kept: dict[tuple[str, ...], float]) -> Metric:
        family = CounterMetricFamily(
            "shop_saga_step_retries",
            "Attempts of saga steps and compensations beyond their first.",
            labels=STEP_LABELS,
        )
        for labels, n in sorted(kept.items()):
            family.add_metric(list(labels), n)
        return family

    def ledger_mismatches(self) -> Metric:
        rows = Order.objects.exclude(ledger_mismatch="").values_list("coordination").annotate(n=Count("pk"))
        family = GaugeMetricFamily(
            "shop_orders_ledger_mismatch",
            "Orders whose money or shipment does not add up with the providers' ledgers, for staff.",
            labels=["coordination"],
        )
        return _per_mode(family, rows)


def fold_orders(deltas: Deltas) -> int:
    """Orders whose status, repairs or saga changed since they were last counted: the order's
    share moves, and so does that of each of its steps whose status or attempts changed.

    The steps are found through their order, not an index of their own: the runtime moves the
    order's ``saga_moved`` whenever it writes a step, under the order's lock, so an order
    with a changed step is in ``order_to_count``, and holding the order's lock (``SKIP
    LOCKED``: one being written is folded at the next scrape) keeps its steps still while they
    are read. An index naming the step's status or attempts would make every update of a step
    write index entries instead of a HOT update: it cost choreography about a fifth of its
    throughput (bench/improvements.md).
    """
    rows = list(
        Order.objects.filter(ORDER_UNCOUNTED)
        .select_for_update(skip_locked=True)
        .order_by("id")
        .values_list("id", "coordination", "status", "reconcile_repairs", "counted_status", "counted_repairs")[:BATCH]
    )
    for _, mode, status, repairs, counted_status, counted_repairs in rows:
        if counted_status:
            deltas[(ORDERS, (counted_status, mode))] -= 1
        deltas[(ORDERS, (status, mode))] += 1
        deltas[(REPAIRS, (mode,))] += repairs - counted_repairs
    if rows:
        _fold_steps(deltas, {order_id: mode for order_id, mode, *_ in rows})
        Order.objects.filter(pk__in=[row[0] for row in rows]).update(
            counted_status=F("status"), counted_repairs=F("reconcile_repairs"), saga_moved=False
        )
    return len(rows)


def _fold_steps(deltas: Deltas, modes: dict[Any, str]) -> None:
    """The steps of these orders (locked) whose status or attempts changed since they were
    last counted: their old share of the step figures is taken back and their new one added."""
    changed = SagaStep.objects.filter(saga_id__in=list(modes)).filter(STEP_CHANGED)
    rows = list(
        changed.values_list(
            "saga_id",
            "name",
            "kind",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "counted_status",
            "counted_attempts",
            "counted_started_at",
            "counted_finished_at",
        )
    )
    for saga_id, name, kind, status, attempts, started, finished, *was in rows:
        labels = (name.partition(":")[0], kind, modes[saga_id])
        for sample, value in _step_samples(labels, status, attempts, started, finished):
            deltas[sample] += value
        for sample, value in _step_samples(labels, *was):  # type: ignore[arg-type]  # the same four columns
            deltas[sample] -= value
    if rows:
        changed.update(
            counted_status=F("status"),
            counted_attempts=F("attempts"),
            counted_started_at=F("started_at"),
            counted_finished_at=F("finished_at"),
        )


def _step_samples(
    labels: tuple[str, str, str], status: str, attempts: int, started: datetime | None, finished: datetime | None
) -> Iterator[tuple[Sample, float]]:
    """A step row's share of the step figures: its retries, its outcome, its duration."""
    step, kind, mode = labels
    if attempts > 1:
        yield (RETRIES, labels), attempts - 1
    if status not in FINISHED:
        return
    yield (OUTCOMES, (step, kind, status, mode)), 1
    if started is None or finished is None:
        yield (COUNT, labels), 0  # untimed (skipped before it ran): its series exists all the same
        return
    took = (finished - started).total_seconds()
    yield (COUNT, labels), 1
    yield (SUM, labels), took
    for b in BUCKETS:
        yield (BUCKET, (*labels, str(b))), 1 if took <= b else 0


def fold_redrives(deltas: Deltas) -> int:
    """The sweeper's re-drives not yet counted (journal lines are never changed, only added)."""
    mode = Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("coordination")[:1])
    rows = list(
        OrderEvent.objects.filter(REDRIVE_UNCOUNTED)
        .annotate(mode=mode)
        .order_by("id")
        .values_list("id", "mode")[:BATCH]
    )
    for _, mode in rows:
        deltas[(REDRIVES, (mode,))] += 1
    if rows:
        OrderEvent.objects.filter(pk__in=[row[0] for row in rows]).update(counted=True)
    return len(rows)


def _per_mode(family: GaugeMetricFamily | CounterMetricFamily, rows: Iterable[tuple[Any, float]]) -> Metric:
    """``family`` with one sample per coordination mode (0 for a mode with no rows)."""
    counts = zeroes(MODES)
    for mode, n in rows:
        counts[mode if isinstance(mode, tuple) else (mode,)] = n
    for labels, n in counts.items():
        family.add_metric(list(labels), n)
    return family

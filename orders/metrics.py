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
last counted (``counted_*``), a partial index holds the rows that differ from it (a changed step
or order, a re-drive not yet counted), and the fold takes back the row's old share of the totals
and adds its new one. A scrape reads that index and the totals, nothing else of the step log or
the journal; the mismatched orders are read through a partial index of their own. Measured on
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
  a changed row in the partial index, an index entry more per update); the scrape does the
  writing, once per changed row and scrape, off the saga's path.
- The fold locks the rows it reads (``SKIP LOCKED``: a step being written is folded at the next
  scrape, and never waited for), so a step that finishes while it runs is counted once; two
  scrapes take turns (``core.metrics.totals_fold``). It writes in batches of
  ``BATCH``, each committed: after the migration, the first scrape folds the whole history once
  (about two minutes per million steps here, bench/improvements.md); one cut short by a timeout
  is taken up by the next.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from django.db.models import Count, F, OuterRef, Subquery
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core.metrics import Deltas, Sample, totals, totals_fold, zeroes
from orders.models import ORDER_UNCOUNTED, REDRIVE_UNCOUNTED, Coordination, Order, OrderEvent, Status
from sagas.models import UNCOUNTED, SagaStep

# Seconds: a local step takes milliseconds, a provider call up to its timeout, a retried one more.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
FINISHED = (SagaStep.Status.SUCCEEDED, SagaStep.Status.FAILED, SagaStep.Status.SKIPPED)
MODES = [str(mode) for mode in Coordination.values]
STEP_LABELS = ["step", "kind", "coordination"]
BATCH = 5000

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
        totals_fold(fold_orders, fold_steps, fold_redrives, batch=BATCH)
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
    """Orders whose status or repairs changed since they were last counted: their share moves."""
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
        Order.objects.filter(pk__in=[row[0] for row in rows]).update(
            counted_status=F("status"), counted_repairs=F("reconcile_repairs")
        )
    return len(rows)


def fold_steps(deltas: Deltas) -> int:
    """Steps whose status or attempts changed since they were last counted: their old share of
    the step figures is taken back and their new one added."""
    mode = Subquery(Order.objects.filter(pk=OuterRef("saga_id")).values("coordination")[:1])
    rows = list(
        SagaStep.objects.filter(UNCOUNTED)
        .select_for_update(skip_locked=True)
        .annotate(mode=mode)
        .order_by("id")
        .values_list(
            "id",
            "name",
            "kind",
            "mode",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "counted_status",
            "counted_attempts",
            "counted_started_at",
            "counted_finished_at",
        )[:BATCH]
    )
    for _, name, kind, mode_of, status, attempts, started, finished, *was in rows:
        if mode_of is None:
            continue  # a saga that is no order's
        labels = (name.partition(":")[0], kind, mode_of)
        for sample, value in _step_samples(labels, status, attempts, started, finished):
            deltas[sample] += value
        for sample, value in _step_samples(labels, *was):  # type: ignore[arg-type]  # the same four columns
            deltas[sample] -= value
    if rows:
        SagaStep.objects.filter(pk__in=[row[0] for row in rows]).update(
            counted_status=F("status"),
            counted_attempts=F("attempts"),
            counted_started_at=F("started_at"),
            counted_finished_at=F("finished_at"),
        )
    return len(rows)


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

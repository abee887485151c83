"""The step figures of ``/metrics`` follow the runtime's own writes, on the real worker.

A scrape finds a changed step through its order (``orders.metrics``): the runtime moves the
order's ``progressed_at`` in every transaction that writes a step (a write that forgot would
leave its step uncounted until the order's next move). Here sagas with every kind of write (a
claim, a retry, a refusal, a compensation, a success) are scraped while they run and after,
and the figures are compared with a count of the step log itself. On PostgreSQL, the step log
and the orders have no index that names a column the runtime moves, so a step's updates and
its order's record of progress stay HOT.
"""

from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from orders.metrics import FINISHED
from orders.models import Order
from sagas.ledger import get_ledger
from sagas.models import SagaStep
from tests import provider
from tests.core.test_metrics import scrape
from tests.factories import ProductFactory, order_body, place, post_order
from tests.worker import wait_for_terminal, wait_until_settled

pytestmark = pytest.mark.saga


Figures = tuple["Counter[tuple[str, ...]]", "Counter[tuple[str, ...]]"]


def recount(coordination: str) -> Figures:
    """Outcomes and retries of the step log itself, as the figures label them."""
    outcomes: Counter[tuple[str, ...]] = Counter()
    retries: Counter[tuple[str, ...]] = Counter()
    for name, kind, status, attempts in SagaStep.objects.filter(
        saga_id__in=Order.objects.filter(coordination=coordination).values("pk")
    ).values_list("name", "kind", "status", "attempts"):
        step = name.partition(":")[0]
        if status in FINISHED:
            outcomes[(step, kind, status)] += 1
        retries[(step, kind)] += max(attempts - 1, 0)
    return outcomes, retries


def figures(samples: dict[str, Any], coordination: str) -> Figures:
    outcomes: Counter[tuple[str, ...]] = Counter()
    retries: Counter[tuple[str, ...]] = Counter()
    for labels, n in samples.get("shop_saga_step_outcomes_total", {}).items():
        got = dict(labels)
        if got["coordination"] == coordination and n:
            outcomes[(got["step"], got["kind"], got["outcome"])] += int(n)
    for labels, n in samples.get("shop_saga_step_retries_total", {}).items():
        got = dict(labels)
        if got["coordination"] == coordination and n:
            retries[(got["step"], got["kind"])] += int(n)
    return outcomes, +retries


@provider.FLAKY
def test_every_write_of_a_running_saga_is_counted_once(saga, api, coordination):
    # given orders that succeed, are declined (compensated), are retried, and fail to ship
    # (refunded), scraped while their sagas run
    product = ProductFactory(stock=50)
    bodies = [
        order_body(product),
        order_body(product, token="tok_decline"),
        order_body(product, token="tok_flaky"),
        order_body(product, postal_code="00000"),
        order_body(product, token="tok_flaky", postal_code="00000"),
        order_body(product, postal_code="99999"),
    ]
    ids = [post_order(api, body) for body in bodies]
    scraper = Client()
    scrape(scraper)

    # when they end, with a scrape now and then meanwhile
    orders = wait_for_terminal(ids, timeout=90)
    scrape(scraper)
    wait_until_settled()
    samples = scrape(scraper)

    # then the figures are the step log's own, counted once, with every kind of outcome in them
    assert {o.status for o in orders.values()} == {"completed", "cancelled"}
    outcomes, retries = recount(coordination)
    assert figures(samples, coordination) == (outcomes, +retries)
    assert ("charge_payment", "forward", "failed") in outcomes
    assert ("refund_payment", "compensation", "succeeded") in outcomes
    assert retries[("charge_payment", "forward")] >= 2 * 2


def updates(table: str) -> tuple[int, int]:
    """This transaction's updates of ``table`` so far: all, and the HOT ones."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s", [table])
        row = cursor.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


MOVED = {
    SagaStep._meta.db_table: ("status", "attempts", "started_at", "finished_at", "error"),
    Order._meta.db_table: ("progressed_at",),
}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_step_and_its_order_s_record_of_progress_write_no_index_entry(customer):
    # given the indexes of the step log and of the orders
    with connection.cursor() as cursor:
        cursor.execute("SELECT tablename, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [list(MOVED)])
        definitions = cursor.fetchall()
    # then none names a column that the runtime moves on every step (which would take HOT
    # away from every such update)
    assert [d for table, d in definitions if any(f'"{c}"' in d or f" {c}" in d for c in MOVED[table])] == []
    # and the updates a step makes are HOT ones (given room on the rows' pages, which a vacuum
    # makes: what earlier tests rolled back takes none)
    order = place(customer, ProductFactory())
    with connection.cursor() as cursor:
        for table in MOVED:
            cursor.execute(f"VACUUM {table}")
    with transaction.atomic():
        step = SagaStep.objects.get(saga_id=order.pk, name="charge_payment")  # planned with the order
        saga = get_ledger().lock(str(order.pk))
        saga.touch()  # the saga's first move since it was counted sets its flag: no HOT update
        steps, orders = updates(SagaStep._meta.db_table), updates(Order._meta.db_table)
        SagaStep.objects.filter(pk=step.pk).update(status="running", attempts=1)
        saga.touch()
        assert updates(SagaStep._meta.db_table) == (steps[0] + 1, steps[1] + 1)
        assert updates(Order._meta.db_table) == (orders[0] + 1, orders[1] + 1)

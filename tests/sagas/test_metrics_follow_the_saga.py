"""The step figures of ``/metrics`` follow the runtime's own writes, on the real worker.

A scrape finds a changed step through its order (``orders.metrics``): the runtime moves the
order's ``progressed_at`` in every transaction that writes a step (a write that forgot would
leave its step uncounted until the order's next move). Here sagas with every kind of write (a
claim, a retry, a refusal, a compensation, a success) are scraped while they run and after,
and the figures are compared with a count of the step log itself. On PostgreSQL, the step log
has no index that names a column the runtime moves, so its updates stay HOT.
"""

from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client

from orders.metrics import FINISHED
from orders.models import Order
from sagas.models import SagaStep
from tests.core.test_metrics import scrape
from tests.factories import ProductFactory, order_body, post_order
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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="HOT updates are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_step_update_writes_no_index_entry():
    # given a step row, and the indexes of the step log
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [SagaStep._meta.db_table])
        definitions = [row[0] for row in cursor.fetchall()]
    moved = ("status", "attempts", "started_at", "finished_at", "error")
    # then none names a column the runtime moves (which would take HOT away from every update)
    assert [d for d in definitions if any(f'"{c}"' in d or f" {c}" in d for c in moved)] == []
    # and an update of the kind the runtime makes is a HOT one (given room on the row's page,
    # which a vacuum makes: what earlier tests rolled back takes none)
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM {SagaStep._meta.db_table}")
    order_id = "00000000-0000-4000-8000-000000000001"
    with transaction.atomic(), connection.cursor() as cursor:
        step = SagaStep.objects.create(saga_id=order_id, name="charge_payment", position=1)
        SagaStep.objects.filter(pk=step.pk).update(status="running", attempts=1)
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [SagaStep._meta.db_table],
        )
        assert cursor.fetchone() == (1, 1)

"""Scaling out as docs/operations.md's "Scaling out" runs it: one worker per queue, each service's tasks
and event handlers on its own service's worker, in both coordination modes."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from notifications.models import Notification
from orders.models import Status
from tests import provider
from tests.factories import ProductFactory, order_body, post_order
from tests.worker import SagaWorker, assert_invariants, wait_for_terminal, wait_until

pytestmark = pytest.mark.saga

# (payment_token, postal_code) → how the order ends: every service acts, and every compensation
# runs (under Stripe, which never fails a refund, all but the refund that fails).
OUTCOMES = {
    ("tok_visa", "N1 9GU"): (Status.COMPLETED, None),
    ("tok_decline", "N1 9GU"): (Status.CANCELLED, "payment_declined"),
    ("tok_visa", "00000"): (Status.CANCELLED, "shipping_failed"),
    ("tok_refund_fails", "00000"): (Status.NEEDS_ATTENTION, "shipping_failed"),
}
OUTCOMES = {(token, postal_code): end for (token, postal_code), end in OUTCOMES.items() if provider.has_token(token)}


def tasks_received(log: Path) -> set[str]:
    """The names of the tasks a worker took from its queues (Celery's "Task … received" line)."""
    return set(re.findall(r"Task ([\w.]+)\[[0-9a-f-]+\] received", log.read_text()))


@pytest.fixture
def worker_per_queue(saga: SagaWorker, tmp_path: Path) -> Iterator[dict[str, SagaWorker]]:
    """One worker for each queue, in place of the session's (which the next test gets back)."""
    saga.stop()
    workers = {queue: SagaWorker(tmp_path / f"{queue}.log", 1, queues=[queue]) for queue in settings.SHOP_QUEUES}
    for worker in workers.values():  # side by side: each takes a few seconds to start
        worker.launch()
    try:
        for worker in workers.values():
            worker.wait_ready()
        yield workers
    finally:
        SagaWorker.stop_all(workers.values())


def test_one_worker_per_queue_ends_every_saga_each_service_on_its_own_worker(worker_per_queue, api):
    # given one worker per queue, as an operator scaling out runs them
    workers = worker_per_queue
    mug, tee = ProductFactory(stock=10), ProductFactory(stock=10)
    initial = {mug.sku: 10, tee.sku: 10}

    # when orders of every outcome are placed
    placed = {
        post_order(api, order_body(mug, tee, token=token, postal_code=postal_code)): outcome
        for (token, postal_code), outcome in OUTCOMES.items()
    }
    orders = wait_for_terminal(placed)

    # then each ends as its test values say, money and stock add up, and its customer gets both
    # emails: the order placed, and how it ended
    assert {order_id: (o.status, o.cancellation_reason) for order_id, o in orders.items()} == placed
    assert_invariants(orders.values(), initial)
    emails = Notification.objects.filter(order_id__in=placed)
    wait_until(lambda: emails.count() == 2 * len(placed), what="the customers' emails")

    # and every worker ran tasks, each only those of its own queue's service
    for queue, worker in workers.items():
        names = tasks_received(worker.log_path)
        assert names, f"the {queue} worker ran nothing"
        assert all(name.startswith(f"{queue}.") for name in names), f"the {queue} worker ran {sorted(names)}"

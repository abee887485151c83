"""Fault injection: a batch of orders mixing every provider test value, one fault, contract §6.

`make test` runs a small batch of each fault; `make chaos` runs at least 200 orders per fault
on PostgreSQL + Redis and writes the table to docs/reliability.md (CHAOS_REPORT).
"""

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.services import user_token
from orders.models import TERMINAL_STATUSES, Order, SagaStep, Status
from orders.services import saga_recover_stalled
from payments.models import ProviderTransaction
from shop.models import Product
from tests.factories import ProductFactory, UserFactory, order_body
from tests.sagas import (
    WORKER_APPLICATION_NAME,
    SagaWorker,
    assert_invariants,
    purge_broker,
    recover_until_terminal,
    wait_for_terminal,
)

pytestmark = [pytest.mark.saga, pytest.mark.chaos, pytest.mark.timeout(1200)]

ORDERS = int(os.environ.get("CHAOS_ORDERS", "16"))
FULL = os.environ.get("CHAOS_FULL") == "1"
MIX = [
    ("tok_visa", "12345"),
    ("tok_flaky", "12345"),
    ("tok_timeout", "12345"),
    ("tok_decline", "12345"),
    ("tok_down", "12345"),
    ("tok_visa", "00000"),
    ("tok_visa", "99999"),
    ("tok_refund_fails", "00000"),
    ("tok_refund_fails", "12345"),
]
ON_POSTGRES = connection.vendor == "postgresql"


@dataclass
class Row:
    fault: str
    placed: int
    completed: int
    cancelled: int
    needs_attention: int
    lost: int
    double_charges: int
    oversold: int
    seconds: float


ROWS: list[Row] = []


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    target = os.environ.get("CHAOS_REPORT")
    if target and ROWS:
        write_report(Path(target), ROWS)


@pytest.fixture
def special_worker(saga, tmp_path) -> Iterator[Callable[[str], SagaWorker]]:
    """Swaps the session's worker for one running another Celery app; the next test gets it back."""
    started: list[SagaWorker] = []

    def start(app: str) -> SagaWorker:
        saga.stop()
        worker = SagaWorker(tmp_path / f"worker-{app}.log", app=app)
        worker.start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class Batch:
    """Orders from several customers over two products, the scarcer one running out."""

    def __init__(self, size: int) -> None:
        purge_broker()  # the previous fault's leftovers must not delay this one
        self.plenty = ProductFactory.create(stock=size)
        self.scarce = ProductFactory.create(stock=int(size * 0.8))
        self.initial = {self.plenty.sku: self.plenty.stock, self.scarce.sku: self.scarce.stock}
        self.clients = []
        for _ in range(4):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Token {user_token(user=UserFactory.create())}")
            self.clients.append(client)
        self.ids: list[str] = []
        self.started = time.monotonic()

    def body(self, i: int) -> dict[str, Any]:
        token, postal_code = MIX[i % len(MIX)]
        return order_body(self.plenty, self.scarce, token=token, postal_code=postal_code)

    def place(self, count: int) -> list[str]:
        for i in range(count):
            response = self.clients[i % len(self.clients)].post("/api/orders/", self.body(i), format="json")
            assert response.status_code == 201, response.content
            self.ids.append(response.json()["id"])
        return self.ids

    def check(self, fault: str, recover: bool = True) -> None:
        """Wait for every order to end (running the sweeper when asked), then check §6."""
        try:
            if recover:
                orders = recover_until_terminal(self.ids, timeout=600)
            else:
                orders = wait_for_terminal(self.ids, timeout=600)
        except AssertionError:
            orders = {str(o.pk): o for o in Order.objects.filter(pk__in=self.ids)}
        row = self.row(fault, orders)
        ROWS.append(row)
        stuck = [o for o in orders.values() if o.status not in TERMINAL_STATUSES]
        assert (row.lost, row.double_charges, row.oversold) == (0, 0, 0), (row, describe(stuck[:3]))
        assert_invariants(orders.values(), self.initial)

    def row(self, fault: str, orders: dict[str, Order]) -> Row:
        statuses = [o.status for o in orders.values()]
        charges = ProviderTransaction.objects.filter(order_ref__in=self.ids, kind="charge", status="succeeded")
        per_order: dict[str, int] = {}
        for ref in charges.values_list("order_ref", flat=True):
            per_order[ref] = per_order.get(ref, 0) + 1
        oversold = 0
        for sku, initial in self.initial.items():
            sold = sum(
                line.quantity for o in orders.values() if o.status == Status.COMPLETED for line in o.lines.all()
                if line.sku == sku
            )  # fmt: skip
            oversold += max(0, sold - initial) + max(0, -Product.objects.get(sku=sku).stock)
        return Row(
            fault=fault,
            placed=len(self.ids),
            completed=statuses.count(Status.COMPLETED),
            cancelled=statuses.count(Status.CANCELLED),
            needs_attention=statuses.count(Status.NEEDS_ATTENTION),
            lost=sum(1 for s in statuses if s not in TERMINAL_STATUSES) + len(self.ids) - len(orders),
            double_charges=sum(1 for n in per_order.values() if n > 1),
            oversold=oversold,
            seconds=round(time.monotonic() - self.started, 1),
        )


def describe(orders: list[Order]) -> list[object]:
    return [
        (o.status, o.cancellation_reason, list(o.steps.values_list("name", "status", "attempts", "error")))
        for o in orders
    ]


def wait_for_running(ids: list[str], step: str, timeout: float = 120) -> None:
    """Until the worker is in the middle of ``step``: a remote step is seen running; a local one
    (reserving a line runs in one transaction, never seen running) has some runs done, some not."""
    steps = SagaStep.objects.filter(order_id__in=ids, name__startswith=step)
    running, done, waiting = (steps.filter(status=s) for s in ("running", "succeeded", "pending"))
    deadline = time.monotonic() + timeout
    while not (running.exists() or (done.exists() and waiting.exists())):
        assert time.monotonic() < deadline, f"no {step} step ran"
        time.sleep(0.005)


KILL_POINTS = [
    "reserve_stock",
    "charge_payment",
    "create_shipment",
    "cancel_shipment",
    "refund_payment",
    "release_stock",
]


@pytest.mark.parametrize(
    "step", KILL_POINTS if FULL else ["charge_payment", "refund_payment"], ids=lambda step: f"sigkill-{step}"
)
def test_sigkill_of_the_worker_during_a_step(saga, settings, step):
    settings.SAGA_STALL_SECONDS = 2
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    wait_for_running(batch.ids, step)
    saga.kill()
    saga.start()
    batch.check(f"SIGKILL of the worker during {step}")


def test_every_task_delivered_twice(special_worker, settings):
    from celery.signals import after_task_publish

    from tests.chaos.apps import duplicate

    settings.SAGA_STALL_SECONDS = 2
    special_worker("tests.chaos.apps.duplicate")
    try:
        batch = Batch(ORDERS)
        batch.place(ORDERS)
        batch.check("every task delivered twice")
    finally:
        after_task_publish.disconnect(duplicate.publish_again)


def test_broker_restarted_with_every_message_gone(saga, settings):
    settings.SAGA_STALL_SECONDS = 2
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    wait_for_running(batch.ids, "charge_payment")
    if settings.CELERY_BROKER_URL.startswith("redis"):
        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()  # a restart with no persistence
    else:
        purge_broker()
    batch.check("broker restarted, all its messages gone")


@pytest.mark.skipif(not ON_POSTGRES, reason="dropping a server-side connection needs PostgreSQL")
def test_database_connection_dropped_inside_steps(saga, settings):
    settings.SAGA_STALL_SECONDS = 2
    batch = Batch(ORDERS)
    stop = threading.Event()
    killed: list[int] = []

    def drop_worker_connections() -> None:
        try:
            with connections["default"].cursor() as cursor:
                while not stop.is_set():
                    cursor.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                        [WORKER_APPLICATION_NAME],
                    )
                    killed.extend(row[0] for row in cursor.fetchall() if row[0])
                    time.sleep(0.05)
        finally:
            connections.close_all()

    killer = threading.Thread(target=drop_worker_connections)
    killer.start()
    try:
        batch.place(ORDERS)
        time.sleep(3)
    finally:
        stop.set()
        killer.join()
    assert killed, "no connection was dropped"
    batch.check("database connection dropped inside steps")


def test_error_callback_never_called(special_worker, settings):
    settings.SAGA_STALL_SECONDS = 2
    special_worker("tests.chaos.apps.no_errback")
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    batch.check("error callback never called")


def test_two_sweepers_at_once(saga, settings):
    # given sagas whose messages were all lost
    saga.stop()
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    purge_broker()
    saga.start()
    settings.SAGA_STALL_SECONDS = 1
    done = threading.Event()

    def sweep() -> None:
        try:
            while not done.is_set():
                saga_recover_stalled()
                time.sleep(0.2)
        finally:
            connections.close_all()

    # when two sweepers run side by side until every order has ended
    sweepers = [threading.Thread(target=sweep) for _ in range(2)]
    for sweeper in sweepers:
        sweeper.start()
    try:
        batch.check("two sweepers at once", recover=False)
    finally:
        done.set()
        for sweeper in sweepers:
            sweeper.join()


def test_the_same_idempotency_key_posted_concurrently(saga):
    batch = Batch(ORDERS)
    answers: list[tuple[int, str | None]] = []

    def post(client: APIClient, body: dict[str, Any], key: str, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            response = client.post("/api/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            answers.append((response.status_code, response.get("Idempotent-Replayed")))
            if response.status_code == 201 and not response.get("Idempotent-Replayed"):
                batch.ids.append(response.json()["id"])
        finally:
            connections.close_all()

    for i in range(ORDERS):
        barrier = threading.Barrier(2)
        client = batch.clients[i % len(batch.clients)]
        threads = [threading.Thread(target=post, args=(client, batch.body(i), f"key-{i}", barrier)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # exactly one order per key; the other request got the replay or a 409
    assert len(batch.ids) == ORDERS
    assert Order.objects.filter(pk__in=batch.ids).count() == ORDERS
    assert all(status in (201, 409) for status, _ in answers)
    batch.check("the same Idempotency-Key posted concurrently", recover=False)


def write_report(path: Path, rows: list[Row]) -> None:
    db = "PostgreSQL" if ON_POSTGRES else "SQLite"
    broker = settings.CELERY_BROKER_URL.split(":", 1)[0]
    lines = [
        "# Reliability under faults",
        "",
        f"Generated by `make chaos` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {db}, {broker} broker, "
        f"{ORDERS} orders per fault mixing every provider test value (`tests/chaos/test_faults.py`).",
        "Each row: orders placed, how they ended, and the contract §6 checks once all had ended.",
        'Running some faults again (`make chaos CHAOS_ARGS="-k name"`) replaces their rows.',
        "",
        "| fault | orders placed | completed | cancelled | needs_attention | lost | double charges "
        "| oversold units | seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    # A run of some faults only (pytest -k) updates their rows and keeps the others still defined.
    table = {fault: line for line in _table_rows(path) if (fault := line.split("|")[1].strip()) in FAULT_ORDER}
    for r in rows:
        table[r.fault] = (
            f"| {r.fault} | {r.placed} | {r.completed} | {r.cancelled} | {r.needs_attention} | {r.lost} "
            f"| {r.double_charges} | {r.oversold} | {r.seconds} |"
        )
    lines += [table[fault] for fault in sorted(table, key=_fault_order)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


FAULT_ORDER = [*(f"SIGKILL of the worker during {step}" for step in KILL_POINTS), "every task delivered twice",
               "broker restarted, all its messages gone", "database connection dropped inside steps",
               "error callback never called", "two sweepers at once",
               "the same Idempotency-Key posted concurrently"]  # fmt: skip


def _fault_order(fault: str) -> int:
    return FAULT_ORDER.index(fault) if fault in FAULT_ORDER else len(FAULT_ORDER)


def _table_rows(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith("| ") and not line.startswith("| fault")]

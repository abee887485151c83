"""Fault injection: a batch of orders mixing every provider test value, one fault, contract §6.

`make test` runs a small batch of each fault; `make chaos` runs at least 200 orders per fault
on PostgreSQL + Redis and writes the table to docs/reliability.md (CHAOS_REPORT). `make
chaos-stripe` runs the provider's rows (slow calls, a request held up, duplicates, a takeover)
charging through Stripe (localstripe), its calls held up by a proxy in front of it.
"""

import contextlib
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from rest_framework.test import APIClient

from accounts.services import user_token
from orders.models import TERMINAL_STATUSES, Order, OrderEvent, Status
from orders.services import order_cancel, order_retry_compensation, order_retry_saga, saga_recover_stalled
from outbox.models import OutboxMessage
from outbox.relay import relay_due
from risk.services import review_decide
from sagas.models import SagaStep
from sagas.runtime import NotHeld
from shipping.models import CarrierShipment
from shop.models import Product
from tests import provider
from tests.admin.test_product_admin import save_stock_from_list
from tests.chaos.proxy import BrokerProxy, HoldingProxy
from tests.factories import ProductFactory, UserFactory, order_body
from tests.worker import (
    ROOT,
    WORKER_APPLICATION_NAME,
    WORKER_ENV,
    assert_invariants,
    charges_per_order,
    database_url,
    money_moved,
    purge_broker,
    recover_until_terminal,
    wait_for_terminal,
)

pytestmark = [pytest.mark.saga, pytest.mark.chaos, pytest.mark.timeout(1200)]

ORDERS = int(os.environ.get("CHAOS_ORDERS", "16"))
FULL = os.environ.get("CHAOS_FULL") == "1"
# Under Stripe, the tokens it has (tests/provider.py) with the carrier's and the screening's values.
MIX = provider.provider_mix([
    ("tok_visa", "N1 9GU"),
    ("tok_flaky", "N1 9GU"),
    ("tok_timeout", "N1 9GU"),
    ("tok_decline", "N1 9GU"),
    ("tok_down", "N1 9GU"),
    ("tok_visa", "00000"),
    ("tok_visa", "99999"),
    ("tok_refund_fails", "00000"),
    ("tok_refund_fails", "N1 9GU"),
    ("tok_visa", "66666"),  # the risk screening rejects it
])  # fmt: skip
HELD = "77777"  # the risk screening holds it for a person (test_staff_reviewing_at_random)
ON_POSTGRES = connection.vendor == "postgresql"
PROVIDER = "stripe (localstripe)" if provider.STRIPE else "simulated"
BROKER = settings.CELERY_BROKER_URL.split(":", 1)[0]
# How the workers' hops travel (their environment is this process's: OUTBOX_LOCAL_HOPS).
HOPS = "in process" if settings.OUTBOX_LOCAL_HOPS else "broker"
NETWORKED_BROKER = BROKER in ("redis", "amqp", "pyamqp")
needs_networked_broker = pytest.mark.skipif(
    not NETWORKED_BROKER, reason="the embedded broker is a local folder: it has no network to lose"
)
# Every remote call slower than the lease the saga sets for it.
SLOW_CALLS = {"SIMULATED_LATENCY_SECONDS": "0.6", "SAGA_STEP_LEASE_SECONDS": "0.5"}


@pytest.fixture
def stripe_proxy() -> Iterator[HoldingProxy | None]:
    """Under Stripe, a proxy in front of the session's localstripe that can hold the worker's
    calls up (``held_up_at_stripe``); ``None`` with the simulated provider."""
    server = provider.localstripe_server
    if server is None:
        yield None
        return
    proxy = HoldingProxy(server.url)
    proxy.start()
    yield proxy
    proxy.stop()


def held_up_at_stripe(
    proxy: HoldingProxy | None, env: dict[str, str], *, delay: float, only: str = ""
) -> dict[str, str]:
    """``env`` for a worker whose calls to Stripe reach it ``delay`` s late (those whose request
    line contains ``only``; all when empty); unchanged with the simulated provider, which
    ``env`` slows by itself. The worker's calls time out after 1 s (``LocalStripe.worker_env``):
    one held up longer is a lost reply, the server acting on it later."""
    if proxy is None:
        return env
    proxy.delay, proxy.only = delay, only.encode()
    return env | {"STRIPE_API_BASE": proxy.url}


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
    cancelled_but_charged_or_shipped: int
    seconds: float
    late_successes_undone: int = 0
    broker: str = ""
    mode: str = ""
    provider: str = PROVIDER
    hops: str = HOPS
    ran: str = field(default_factory=lambda: f"{datetime.now(UTC):%Y-%m-%d}")


ROWS: list[Row] = []


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    target = os.environ.get("CHAOS_REPORT")
    if target and ROWS:
        write_report(Path(target), ROWS)


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
        self.owner: dict[str, APIClient] = {}
        self.started = time.monotonic()

    def body(self, i: int) -> dict[str, Any]:
        token, postal_code = MIX[i % len(MIX)]
        body = order_body(self.plenty, self.scarce, token=token, postal_code=postal_code)
        return body | {"coordination": settings.ORDER_COORDINATION}  # the test's mode (tests/worker.py)

    def place(self, count: int) -> list[str]:
        for i in range(count):
            response = self.clients[i % len(self.clients)].post("/api/orders/", self.body(i), format="json")
            assert response.status_code == 201, response.content
            self.ids.append(response.json()["id"])
            self.owner[self.ids[-1]] = self.clients[i % len(self.clients)]
        return self.ids

    def place_alike(self, count: int, token: str) -> list[str]:
        """``count`` orders of the plentiful product, all paid with ``token``."""
        for i in range(count):
            client = self.clients[i % len(self.clients)]
            body = order_body(self.plenty, token=token) | {"coordination": settings.ORDER_COORDINATION}
            response = client.post("/api/orders/", body, format="json")
            assert response.status_code == 201, response.content
            self.ids.append(response.json()["id"])
            self.owner[self.ids[-1]] = client
        return self.ids

    def cancel_some_at_random(self, share: float, within: float) -> threading.Thread:
        """A thread that cancels ``share`` of the orders, each at a random moment in ``within`` s."""
        rng = random.Random(len(self.ids))
        chosen = rng.sample(self.ids, int(len(self.ids) * share))
        moments = sorted((rng.uniform(0, within), order_id) for order_id in chosen)

        def cancel() -> None:
            try:
                start = time.monotonic()
                for moment, order_id in moments:
                    time.sleep(max(0.0, start + moment - time.monotonic()))
                    response = self.owner[order_id].post(f"/api/orders/{order_id}/cancel/")
                    assert response.status_code in (202, 409), response.content
            finally:
                connections.close_all()

        thread = threading.Thread(target=cancel)
        thread.start()
        return thread

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
        losses = (row.lost, row.double_charges, row.oversold, row.cancelled_but_charged_or_shipped)
        assert losses == (0, 0, 0, 0), (row, describe(stuck[:3]))
        assert_invariants(orders.values(), self.initial)

    def row(self, fault: str, orders: dict[str, Order]) -> Row:
        statuses = [o.status for o in orders.values()]
        per_order = charges_per_order(self.ids)
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
            cancelled_but_charged_or_shipped=sum(1 for o in orders.values() if kept_something(o)),
            seconds=round(time.monotonic() - self.started, 1),
            late_successes_undone=sum(1 for o in orders.values() if late_success_undone(o)),
            broker=BROKER,
            mode=settings.ORDER_COORDINATION,
        )


def kept_something(order: Order) -> bool:
    """A cancelled order whose customer is still charged, or whose parcel is still live."""
    if order.status != Status.CANCELLED:
        return False
    charges, refunded = money_moved(order)
    live = CarrierShipment.objects.filter(idempotency_key=f"order:{order.pk}:shipment").exclude(status="cancelled")
    return sum(charges, Decimal("0")) != refunded or live.exists()


def late_success_undone(order: Order) -> bool:
    """A charge or parcel that landed after its step was given up, and was taken back."""
    landed = OrderEvent.objects.filter(order=order, message__contains="landed after the order turned back")
    return order.status == Status.CANCELLED and landed.exists() and not kept_something(order)


def describe(orders: list[Order]) -> list[object]:
    return [
        (o.status, o.cancellation_reason, [(s.name, s.status, s.attempts, s.error) for s in o.saga_steps])
        for o in orders
    ]


def wait_for_running(ids: list[str], step: str, timeout: float = 120) -> None:
    """Until the worker is in the middle of ``step``: a remote step is seen running; a local one
    (reserving a line runs in one transaction, never seen running) has some runs done, some not."""
    steps = SagaStep.objects.filter(saga_id__in=ids, name__startswith=step)
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
                        # this test's database only: the other xdist process's worker is not ours
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = %s AND datname = current_database()",
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


def test_compensations_never_sent(special_worker, settings):
    settings.SAGA_STALL_SECONDS = 2
    special_worker("tests.chaos.apps.no_undo_chain")
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    batch.check("compensations never sent by the failing step")


def test_two_sweepers_at_once(saga, settings):
    # given sagas whose messages were all lost
    saga.stop()
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    relay_due()
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


def test_slow_calls_and_customers_cancelling_at_random(special_worker, settings, stripe_proxy):
    settings.SAGA_STALL_SECONDS = 5
    special_worker(env=held_up_at_stripe(stripe_proxy, SLOW_CALLS, delay=0.6), concurrency=8)
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    batch.cancel_some_at_random(share=0.5, within=max(5.0, ORDERS * 0.05)).join()
    batch.check("every call slower than its lease, customers cancelling at random")


def test_every_message_twice_with_calls_slower_than_the_lease(special_worker, settings, stripe_proxy):
    from celery.signals import after_task_publish

    from tests.chaos.apps import duplicate

    settings.SAGA_STALL_SECONDS = 5
    env = held_up_at_stripe(stripe_proxy, SLOW_CALLS, delay=0.6)
    special_worker("tests.chaos.apps.duplicate", env=env, concurrency=8)
    try:
        batch = Batch(ORDERS)
        batch.place(ORDERS)
        batch.cancel_some_at_random(share=0.3, within=max(5.0, ORDERS * 0.05)).join()
        batch.check("every message twice, every call slower than its lease")
    finally:
        after_task_publish.disconnect(duplicate.publish_again)


@needs_networked_broker
def test_broker_stopped_while_orders_are_placed_and_replayed(special_worker, settings):
    # given the worker's broker behind a connection that is cut
    settings.SAGA_STALL_SECONDS = 5
    proxy = BrokerProxy(settings.CELERY_BROKER_URL)
    proxy.start()
    special_worker(env={"CELERY_BROKER_URL": proxy.url})
    proxy.stop()
    try:
        # when clients place orders with Idempotency-Keys, and send each again
        batch = Batch(ORDERS)
        for i in range(ORDERS):
            client = batch.clients[i % len(batch.clients)]
            answers = [
                client.post("/api/orders/", batch.body(i), format="json", HTTP_IDEMPOTENCY_KEY=f"outage-{i}")
                for _ in range(2)
            ]
            assert [a.status_code for a in answers] == [201, 201], answers[0].content
            assert answers[1]["Idempotent-Replayed"] == "true"
            assert answers[0].json()["id"] == answers[1].json()["id"]
            batch.ids.append(answers[0].json()["id"])
        time.sleep(2)
    finally:
        proxy.start()  # the broker is back

    # then each key made one order, and every saga runs to its end
    assert Order.objects.filter(pk__in=batch.ids).count() == ORDERS
    batch.check("broker stopped while orders are placed and replayed")
    proxy.stop()


class SupervisedShop:
    """``make run``'s processes (config/supervise.py: web, worker, beat under supervisord) on the
    test database, with the broker behind a proxy that the test can cut."""

    def __init__(self, tmp_path: Path, broker_url: str) -> None:
        probe = __import__("socket").socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.log = tmp_path / "make-run.log"
        env = (
            os.environ
            | WORKER_ENV
            | {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": database_url(),
                "CELERY_BROKER_URL": broker_url,
                "PORT": str(self.port),
                "RUN_DIR": str(tmp_path),
                "SAGA_SWEEP_INTERVAL_SECONDS": "2",
                "SAGA_STALL_SECONDS": "5",
                "RATE_LIMITS": "off",
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "config/supervise.py"], cwd=ROOT, env=env, stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while b"success: worker entered RUNNING" not in self.log.read_bytes() or not self.answers():
            assert self.process.poll() is None and time.monotonic() < deadline, self.log.read_text()[-3000:]
            time.sleep(0.2)

    def answers(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/products/", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)


def post_json(port: int, path: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


@needs_networked_broker
@pytest.mark.parametrize("seconds", [3, 30, 300] if FULL else [3], ids=lambda s: f"down-{s}s")
def test_broker_down_under_make_run(saga, tmp_path, seconds):
    # given the shop as `make run` runs it, its broker behind a proxy, and orders in flight
    saga.stop()
    proxy = BrokerProxy(settings.CELERY_BROKER_URL)
    proxy.start()
    shop = SupervisedShop(tmp_path, proxy.url)
    try:
        batch = Batch(ORDERS)
        token = user_token(user=UserFactory.create())
        half = ORDERS // 2
        batch.ids += [post_json(shop.port, "/api/orders/", token, batch.body(i))["id"] for i in range(half)]

        # when the broker goes down for a while, orders keep coming, and it comes back
        proxy.stop()
        batch.ids += [post_json(shop.port, "/api/orders/", token, batch.body(i))["id"] for i in range(half, ORDERS)]
        time.sleep(seconds)
        proxy.start()

        # then every process is up again and every order ends as the contract says
        batch.check(f"broker down {seconds} s under make run", recover=False)
        assert shop.answers()
        assert shop.process.poll() is None
    finally:
        shop.stop()
        proxy.stop()


def test_staff_editing_products_retrying_and_cancelling_at_random(saga, settings, staff_api, staff):
    settings.SAGA_STALL_SECONDS = 2
    batch = Batch(ORDERS)
    stop = threading.Event()
    added: dict[str, int] = dict.fromkeys(batch.initial, 0)
    rng = random.Random(7)

    def staff_at_work() -> None:
        try:
            while not stop.is_set():
                product = rng.choice([batch.plenty, batch.scarce])
                if rng.random() < 0.3:  # one more unit, from the admin's list as it was drawn
                    seen = Product.objects.get(pk=product.pk)
                    response = save_stock_from_list(admin, seen, str(seen.stock + 1), seen=seen.stock)
                    assert response.status_code == 302, response.content
                    added[product.sku] += 1
                else:
                    body = rng.choice([{"price": f"{rng.randint(100, 5000) / 100:.2f}"}, {"description": "new"}])
                    response = staff_api.patch(f"/api/products/{product.sku}/", body, format="json")
                    assert response.status_code == 200, response.content
                if batch.ids and rng.random() < 0.5:
                    order_id = rng.choice(batch.ids)
                    action = rng.choice([order_retry_saga, order_cancel])
                    with contextlib.suppress(Exception):  # a state the action does not apply to
                        action(order_id=order_id, actor="staff")
                time.sleep(rng.uniform(0, 0.05))
        finally:
            connections.close_all()

    admin = Client()
    admin.force_login(staff)
    editor = threading.Thread(target=staff_at_work)
    editor.start()
    try:
        batch.place(ORDERS)
        time.sleep(2)
    finally:
        stop.set()
        editor.join()
    batch.initial = {sku: batch.initial[sku] + added[sku] for sku in batch.initial}
    batch.check("staff editing products, retrying and cancelling at random")


def test_staff_reviewing_at_random_while_the_worker_is_killed_and_customers_cancel(saga, settings):
    # given a batch in which every third order is held for review
    settings.SAGA_STALL_SECONDS = 2
    batch = Batch(ORDERS)
    held: list[str] = []
    for i in range(ORDERS):
        client = batch.clients[i % len(batch.clients)]
        body = batch.body(i)
        if i % 3 == 0:
            body["shipping_address"]["postal_code"] = HELD
        response = client.post("/api/orders/", body, format="json")
        assert response.status_code == 201, response.content
        batch.ids.append(response.json()["id"])
        batch.owner[batch.ids[-1]] = client
        if i % 3 == 0:
            held.append(batch.ids[-1])
    stop = threading.Event()
    rng = random.Random(35)
    decided: list[str] = []

    def reviewers_at_work() -> None:
        # two staff members deciding the same queue at random, racing each other and the cancels
        try:
            while not stop.is_set():
                order_id = rng.choice(held)
                with contextlib.suppress(NotHeld):
                    review_decide(order_id=order_id, decision=rng.choice(["approve", "reject"]), actor="reviewer")
                    decided.append(order_id)
                time.sleep(rng.uniform(0, 0.02))
        finally:
            connections.close_all()

    # (the reviewers stay at work until every order has ended: an order whose screening the
    # killed worker left half done is held only once the sweeper has run it again)
    reviewers = [threading.Thread(target=reviewers_at_work) for _ in range(2)]
    for thread in reviewers:
        thread.start()
    cancels = batch.cancel_some_at_random(0.2, within=3)
    try:
        # when the worker is killed in the middle of it all, and started again
        time.sleep(1)
        saga.kill()
        saga.start()
        cancels.join()
        # then every order ends, and nothing is lost or kept
        batch.check("staff reviewing at random while the worker is killed and customers cancel")
    finally:
        stop.set()
        for thread in reviewers:
            thread.join()
    # and each review was applied at most once
    assert len(decided) == len(set(decided))


def test_worker_killed_while_the_relay_publishes(saga, settings):
    # given orders whose messages wait in the outbox (no worker, so no relay)
    settings.SAGA_STALL_SECONDS = 2
    saga.stop()
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    waiting = OutboxMessage.objects.filter(shard__in=batch.ids, sent_at__isnull=True)
    unsent = waiting.count()  # each order's saga, and its customer's "order placed" email

    # when a worker starts relaying them and is killed part way
    saga.start()
    deadline = time.monotonic() + 30
    while waiting.count() == unsent:
        assert time.monotonic() < deadline, "the relay published nothing"
        time.sleep(0.001)
    saga.kill()
    saga.start()
    batch.check("worker killed while the relay publishes")


# A request held up on its way (before the provider or carrier sees it) for longer than its lease:
# the compensation asks, finds nothing, and settles the step as never done; then it lands.
HELD_UP = {"SIMULATED_NETWORK_DELAY_SECONDS": "2", "SAGA_STEP_LEASE_SECONDS": "0.5"}


def held_up(*services: str, **env: str) -> dict[str, str]:
    return HELD_UP | {"SIMULATED_NETWORK_DELAY_SERVICES": ",".join(services)} | env


HELD_UP_CALLS = {"charge": "payments.charge", "refund": "payments.refund", "shipment": "shipping.create"}
# The same requests at Stripe, by their request line: a charge's confirmation, a refund.
HELD_UP_AT_STRIPE = {"charge": "/confirm ", "refund": "POST /v1/refunds "}


@pytest.mark.parametrize("what", list(HELD_UP_CALLS) if FULL else ["charge"], ids=lambda what: f"held-up-{what}")
def test_a_request_held_up_past_its_lease_with_customers_cancelling(special_worker, settings, stripe_proxy, what):
    settings.SAGA_STALL_SECONDS = 3
    env = held_up(HELD_UP_CALLS[what])
    if what in HELD_UP_AT_STRIPE:
        env = held_up_at_stripe(stripe_proxy, env, delay=2, only=HELD_UP_AT_STRIPE[what])
    special_worker(env=env, concurrency=8)
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    batch.cancel_some_at_random(share=0.5, within=max(3.0, ORDERS * 0.03)).join()
    batch.check(f"a {what} request held up past its lease, customers cancelling")


@provider.HELD_UP
def test_sigkill_while_the_worker_undoes_a_late_charge(special_worker, settings):
    # given every charge and every refund held up on its way, and every order cancelled at once
    settings.SAGA_STALL_SECONDS = 2
    worker = special_worker(env=held_up("payments.charge", "payments.refund"), concurrency=8)
    batch = Batch(ORDERS)
    batch.place(ORDERS)
    cancel_while_charging(batch)
    # when the worker is killed while it refunds a charge that landed after its order was cancelled
    undoing = SagaStep.objects.filter(saga_id__in=batch.ids, name="refund_payment", status="running", attempts__gte=2)
    deadline = time.monotonic() + 120
    while not undoing.exists():
        assert time.monotonic() < deadline, "no late charge was being refunded"
        time.sleep(0.01)
    worker.kill()
    worker.start()
    batch.check("SIGKILL of the worker while it undoes a late charge")


def cancel_while_charging(batch: Batch) -> None:
    """Each order's customer cancels it while its charge request is on its way (held up), for
    as long as some order has yet to reach its charge (bounded: a batch of 200 takes minutes)."""
    charging = SagaStep.objects.filter(saga_id__in=batch.ids, name="charge_payment", status="running")
    before_charge = Order.objects.filter(pk__in=batch.ids, status__in=[Status.PENDING, Status.RESERVED])
    cancelled: set[str] = set()
    deadline = time.monotonic() + max(10.0, len(batch.ids) * 1.5)
    while time.monotonic() < deadline and (before_charge.exists() or charging.exists()):
        for order_id in {str(i) for i in charging.values_list("saga_id", flat=True)} - cancelled:
            with contextlib.suppress(Exception):  # a declined card: turned back already
                order_cancel(order_id=order_id, actor="customer")
            cancelled.add(order_id)
        time.sleep(0.01)


@provider.FLAKY
def test_a_late_charge_on_a_step_waiting_after_a_redrive(special_worker, settings):
    # given tok_flaky charges whose first request is held up, and the sweeper re-driving at once:
    # the re-driven attempts reach the provider first, fail, and leave the step waiting
    settings.SAGA_STALL_SECONDS = 0.5
    special_worker(env=held_up("payments.charge", SAGA_RETRY_BASE_SECONDS="2", SAGA_RETRY_MAX_SECONDS="4"))
    batch = Batch(ORDERS)
    batch.place_alike(ORDERS, "tok_flaky")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        saga_recover_stalled()
        time.sleep(0.1)
    # when customers cancel while their step waits and the first request has not landed
    batch.cancel_some_at_random(share=0.5, within=0.5).join()
    batch.check("a late charge on a step waiting after a re-drive")


@provider.REFUND_FAILS
def test_staff_retrying_the_compensation_of_a_late_charge_whose_refund_failed(special_worker, settings):
    # given charges held up past their lease whose refunds always fail, every order cancelled
    settings.SAGA_STALL_SECONDS = 3
    special_worker(env=held_up("payments.charge"), concurrency=8)
    batch = Batch(ORDERS)
    batch.place_alike(ORDERS, "tok_refund_fails")
    cancel_while_charging(batch)
    # when staff retry the compensation of each order that waits for them, more than once
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        waiting = Order.objects.filter(pk__in=batch.ids, status=Status.NEEDS_ATTENTION).values_list("pk", flat=True)
        for order_id in waiting:
            with contextlib.suppress(Exception):
                order_retry_compensation(order_id=order_id, actor="staff")
        time.sleep(0.5)
    # then no order that still holds money was closed as cancelled (kept_something counts them)
    batch.check("staff retrying the compensation of a late charge whose refund failed")


def write_report(path: Path, rows: list[Row]) -> None:
    db = "PostgreSQL" if ON_POSTGRES else "SQLite"
    lines = [
        "# Reliability under faults",
        "",
        f"Last written by `make chaos` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {db}: each fault a batch of",
        "orders mixing every provider test value (`tests/chaos/test_faults.py`; `make chaos` places 200),",
        "once per coordination mode (orchestrated by the canvas, choreographed by events).",
        "Each row: orders placed, how they ended, and the contract §6 checks once all had ended.",
        "Each row names its broker, how the hops between steps travelled (`in process` where the",
        "worker that commits a step also serves the next one, the default; `broker` with",
        "`OUTBOX_LOCAL_HOPS=false`), the payment provider and the day it ran: rows run at different",
        "times, on the code of their day. The provider's rows also run charging through Stripe",
        "(`make chaos-stripe`, provider `stripe (localstripe)`): localstripe as its own process, the",
        "worker's calls to it held up by a proxy (`tests/chaos/proxy.py`), the tokens `pm_card_visa` and",
        "`pm_card_chargeCustomerFail` with the carrier's and the screening's postal codes; double charges",
        "are counted over every PaymentIntent Stripe holds for the order, not only the one the shop",
        "recorded. The row of the key in use cannot run against localstripe, which ignores idempotency",
        "keys: `tests/payments/test_stripe_http_fake.py::test_a_key_in_use_means_unknown_yet` shows it.",
        "The last four counts must be 0: orders that never ended, customers charged twice, units sold",
        "beyond the stock, and cancelled orders whose customer is still charged or whose parcel is live.",
        'Running some faults again (`make chaos CHAOS_ARGS="-k name"`) replaces their rows.',
        "",
        "| fault | mode | broker | hops | provider | ran | orders placed | completed | cancelled | needs_attention "
        "| lost | double charges | oversold units | cancelled but charged or shipped | late successes undone "
        "| seconds |",
        "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    # A run of some faults only (pytest -k) updates their rows and keeps the others still defined.
    table = {}
    for line in _table_rows(path):
        cells = [c.strip() for c in line.split("|")]
        if cells[1] in FAULT_ORDER:
            table[tuple(cells[1:6])] = line
    for r in rows:
        table[(r.fault, r.mode, r.broker, r.hops, r.provider)] = (
            f"| {r.fault} | {r.mode} | {r.broker} | {r.hops} | {r.provider} | {r.ran} | {r.placed} | {r.completed} "
            f"| {r.cancelled} | {r.needs_attention} | {r.lost} | {r.double_charges} | {r.oversold} "
            f"| {r.cancelled_but_charged_or_shipped} | {r.late_successes_undone} | {r.seconds} |"
        )
    lines += [table[key] for key in sorted(table, key=lambda key: (_fault_order(key[0]), key[4] != "simulated", *key))]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


FAULT_ORDER = [
    *(f"SIGKILL of the worker during {step}" for step in KILL_POINTS),
    "every task delivered twice",
    "broker restarted, all its messages gone",
    "database connection dropped inside steps",
    "compensations never sent by the failing step",
    "two sweepers at once",
    "the same Idempotency-Key posted concurrently",
    "every call slower than its lease, customers cancelling at random",
    "every message twice, every call slower than its lease",
    "broker stopped while orders are placed and replayed",
    *(f"broker down {seconds} s under make run" for seconds in (3, 30, 300)),
    "staff editing products, retrying and cancelling at random",
    "worker killed while the relay publishes",
    *(f"a {what} request held up past its lease, customers cancelling" for what in ("charge", "refund", "shipment")),
    "SIGKILL of the worker while it undoes a late charge",
    "a late charge on a step waiting after a re-drive",
    "staff retrying the compensation of a late charge whose refund failed",
    "staff reviewing at random while the worker is killed and customers cancel",
]


def _fault_order(fault: str) -> int:
    return FAULT_ORDER.index(fault) if fault in FAULT_ORDER else len(FAULT_ORDER)


def _table_rows(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if line.startswith("| ") and not line.startswith("| fault")]

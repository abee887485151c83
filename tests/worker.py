"""Saga test support: a real Celery worker process on the configured broker and test database."""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Q

from orders.models import TERMINAL_STATUSES, Order, Status
from payments.models import ProviderTransaction
from payments.providers import get_payment_provider
from risk.models import Screening
from sagas.models import SagaStep
from shipping.models import CarrierShipment
from shop.models import Product
from tests import provider

ROOT = Path(__file__).resolve().parents[1]

# Fast retries so that every provider test value settles in about a second.
WORKER_ENV = {
    "SAGA_RETRY_BASE_SECONDS": "0.05",
    "SAGA_RETRY_MAX_SECONDS": "0.2",
    "SAGA_STEP_LEASE_SECONDS": "3",
    "CELERY_VISIBILITY_TIMEOUT": "5",
    "CELERY_PREFETCH_MULTIPLIER": "2",
    # Remote calls take a little time, as real ones do, so that a crash can land inside one.
    "SIMULATED_LATENCY_SECONDS": "0.01",
    # tok_slow and postal code 88888: longer than the lease, as the contract says.
    "SIMULATED_SLOW_SECONDS": "4",
    "OUTBOX_POLL_SECONDS": "0.02",
    # Longer than the slowest call a test makes (a request held up for 6 s): a hop run in process
    # is sent again by the relay only when its worker died.
    "OUTBOX_LOCAL_LEASE_SECONDS": "10",
    "EVENTS_RETRY_MAX_SECONDS": "0.5",
}


WORKER_APPLICATION_NAME = "saga-test-worker"


def database_url() -> str:
    """The test database, for the worker; on PostgreSQL its connections carry a name."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{credentials}@{host}/{db['NAME']}?application_name={WORKER_APPLICATION_NAME}"


# Messages handed to the broker before this moment may have been lost on purpose (a purge, a
# killed worker's prefetched messages): the teardown does not wait for their handlers.
_lost_before: float = 0.0


def _messages_lost_until_now() -> None:
    global _lost_before
    _lost_before = time.time()


def purge_broker() -> None:
    """Start from empty queues: messages of an earlier run must not leak into this one."""
    from config.celery import app

    _messages_lost_until_now()

    with app.connection_for_write() as conn:
        for queue in settings.SHOP_QUEUES:
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]
    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        # A message that a worker took but never acknowledged (a killed worker's, or one it held
        # when it was stopped) waits in kombu's ``unacked`` set, which a queue purge does not
        # touch, and comes back after the visibility timeout: to another test's worker, about
        # an order its database no longer has (parked after its retries, an ERROR in its log).
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            options.get("unacked_key", "unacked"),
            options.get("unacked_index_key", "unacked_index"),
            options.get("unacked_mutex_key", "unacked_mutex"),
        )
    if settings.CELERY_RESULT_BACKEND.startswith("redis"):
        import redis

        redis.Redis.from_url(settings.CELERY_RESULT_BACKEND).flushdb()


def _die_with_parent() -> None:
    """A worker left behind by a killed test run would take the next run's messages."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class SagaWorker:
    """A ``celery worker`` process consuming every queue (or ``queues``); it can be killed and
    started again."""

    running: "set[SagaWorker]" = set()  # every worker of this test process

    def __init__(
        self,
        log_path: Path,
        concurrency: int = 3,
        app: str = "config",
        env: dict[str, str] | None = None,
        queues: Iterable[str] = settings.SHOP_QUEUES,
    ) -> None:
        self.log_path = log_path
        self.concurrency = concurrency
        self.app = app
        self.env = env or {}
        self.queues = list(queues)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_offset = 0  # where this start's lines begin in the log

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process; ``wait_ready`` waits for it (launch several, then wait for each)."""
        # Traces only where a test asks for them (tests/telemetry): a developer's own OTEL_*
        # variables must not send the test worker's spans to their collector, or anywhere.
        untraced = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
        env = (
            untraced
            | WORKER_ENV
            | {"DJANGO_SETTINGS_MODULE": "config.settings.test", "DATABASE_URL": database_url()}
            | self.env
        )
        log = self.log_path.open("ab")
        self.log_offset = log.tell()
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", self.app, "worker",
                "-Q", ",".join(self.queues), "--concurrency", str(self.concurrency),
                "--loglevel", "INFO", "--without-mingle", "--without-gossip", "--without-heartbeat",
                "--hostname", f"saga-test-{settings.TEST_WORKER}-{uuid.uuid4().hex[:8]}@%h",
            ],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_die_with_parent,
        )  # fmt: skip
        SagaWorker.running.add(self)

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 60
        while b" ready." not in self.log_path.read_bytes()[self.log_offset :]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the Celery worker did not start; see {self.log_path}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a crash would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None
        SagaWorker.running.discard(self)
        _messages_lost_until_now()

    def stop(self) -> None:
        SagaWorker.stop_all([self])

    @staticmethod
    def stop_all(workers: Iterable["SagaWorker"]) -> None:
        """A warm shutdown of each (the worker stops its own pool), side by side; what has not
        ended within 5 s is killed."""
        stopping = [(worker, worker.process) for worker in workers if worker.process is not None]
        for _, process in stopping:
            process.terminate()
        deadline = time.monotonic() + 5
        for worker, process in stopping:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            worker.process = None
            SagaWorker.running.discard(worker)


@pytest.fixture(scope="session")
def saga_worker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[SagaWorker]:
    with django_db_blocker.unblock():
        purge_broker()
    log_dir = Path(os.environ.get("SAGA_LOG_DIR", tmp_path_factory.mktemp("saga")))
    log_dir.mkdir(parents=True, exist_ok=True)
    worker = SagaWorker(log_dir / f"worker-{settings.TEST_WORKER}.log")
    worker.start()
    yield worker
    worker.stop()


@pytest.fixture
def no_saga_worker() -> None:
    """For a test that runs saga steps itself on committed data: the workers an earlier test of
    this process started (``saga_worker`` lives for the session, on this database) are stopped,
    or they would take the test's messages and run its sagas under it (seen in CI). The next
    saga test starts its worker again (``running``)."""
    SagaWorker.stop_all(list(SagaWorker.running))


COORDINATION_MODES = ["orchestration", "choreography"]


@pytest.fixture(params=COORDINATION_MODES)
def coordination(request: pytest.FixtureRequest, settings: Any) -> str:
    """Each saga test runs once per coordination mode: the orders it places record the mode."""
    settings.ORDER_COORDINATION = request.param
    return str(request.param)


@pytest.fixture
def saga(transactional_db: None, saga_worker: SagaWorker, coordination: str) -> Iterator[SagaWorker]:
    """Orders placed in this test run their saga on a real worker, in both coordination modes;
    data is committed for real. Afterwards, the worker finishes what it was handed (the
    customer's last email, say) before the test database is emptied under it. It starts from
    an empty broker: what an earlier test left there (a killed worker's messages) is not its own."""
    with running(saga_worker):
        yield saga_worker


@contextlib.contextmanager
def running(worker: SagaWorker) -> Iterator[None]:
    """``worker`` running from an empty broker; afterwards, until the workers are done."""
    purge_broker()
    if worker.process is None:
        worker.start()
    yield
    if SagaWorker.running:
        wait_until_settled()
        wait_until_quiet()


def wait_until_settled(timeout: float = 15) -> None:
    """Until nothing is due in the outbox and every event handed to a handler that records its
    inbox entry whatever it decides has been handled (the step handlers' no-ops leave none),
    except those handed before the test lost messages on purpose."""
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    from events.models import InboxEntry
    from events.registry import subscriptions
    from outbox.models import OutboxMessage

    recorded = {s.consumer for s in subscriptions() if not s.step}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        soon = timezone.now() + timedelta(seconds=1)
        # A row the worker runs in process is held back for a lease, but it is being run now.
        due = OutboxMessage.objects.filter(sent_at__isnull=True, parked_at__isnull=True).filter(
            Q(available_at__lte=soon) | Q(in_process=True)
        )
        handed = {
            (message["args"][0], str(message["args"][1]["id"]))
            for message in OutboxMessage.objects.filter(
                name__endswith=".handle_event", sent_at__gt=datetime.fromtimestamp(_lost_before, UTC)
            ).values_list("message", flat=True)
            if message["args"][0] in recorded
        }
        handled = {(consumer, str(event)) for consumer, event in InboxEntry.objects.values_list("consumer", "event_id")}
        if not due.exists() and handed <= handled:
            return
        time.sleep(0.05)


def wait_until_quiet(timeout: float = 10) -> None:
    """Until no step has a call in flight and, on PostgreSQL, no connection of the worker is
    inside a transaction: a late outcome written while the test database is emptied can
    deadlock with the TRUNCATE (seen in CI), and its rows would leak into the next test."""
    deadline = time.monotonic() + timeout
    while SagaStep.objects.filter(status=SagaStep.Status.RUNNING).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if connection.vendor != "postgresql":
        return
    quiet_polls = 0
    while quiet_polls < 3 and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = %s AND state <> 'idle' AND datname = current_database()",
                [WORKER_APPLICATION_NAME],
            )
            busy = cursor.fetchone()[0]
        quiet_polls = 0 if busy else quiet_polls + 1
        time.sleep(0.02)


@pytest.fixture(autouse=True, scope="session")
def _flush_survives_a_deadlock() -> Iterator[None]:
    """A transactional test empties the database with TRUNCATE. Should a worker's write still
    meet it, PostgreSQL aborts one side of the deadlock; if that is the TRUNCATE, try again."""
    from django.core.management.base import CommandError
    from django.core.management.commands import flush

    handle = flush.Command.handle

    def handle_again_after_a_deadlock(self: flush.Command, **options: Any) -> None:
        for attempt in range(3):
            try:
                return handle(self, **options)
            except CommandError:
                if attempt == 2:
                    raise
                time.sleep(0.5)

    flush.Command.handle = handle_again_after_a_deadlock  # type: ignore[method-assign]
    yield
    flush.Command.handle = handle  # type: ignore[method-assign]


@pytest.fixture
def no_relay() -> None:
    """For tests that look at outbox rows: no worker of the session may relay them meanwhile
    (the next saga test starts the session's worker again)."""
    for worker in list(SagaWorker.running):
        worker.stop()


@pytest.fixture
def special_worker(saga: SagaWorker, tmp_path: Path) -> Iterator[Callable[..., SagaWorker]]:
    """Swaps the session's worker for one with other settings or another Celery app; the next
    test gets the session's worker back."""
    started: list[SagaWorker] = []

    def start(app: str = "config", env: dict[str, str] | None = None, concurrency: int = 3) -> SagaWorker:
        saga.stop()
        worker = SagaWorker(tmp_path / f"worker-{app}-{len(started)}.log", concurrency, app=app, env=env)
        worker.start()
        started.append(worker)
        return worker

    yield start
    SagaWorker.stop_all(started)


def wait_until(condition: Callable[[], object], timeout: float = 30, what: str = "the condition") -> None:
    """Until ``condition()`` is true; the test fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def wait_for_step(order_id: str, name: str, status: str, timeout: float = 30) -> None:
    """Until the order's step ``name`` has ``status`` (``running``: a call is in flight)."""
    step = SagaStep.objects.filter(saga_id=order_id, name=name, status=status)
    wait_until(step.exists, timeout, what=f"{name} of {order_id} to become {status}")


def wait_for_terminal(order_ids: Iterable[object], timeout: float = 60) -> dict[str, Order]:
    pending = {str(i) for i in order_ids}
    deadline = time.monotonic() + timeout
    while True:
        orders = {str(o.pk): o for o in Order.objects.filter(pk__in=pending)}
        if all(o.status in TERMINAL_STATUSES for o in orders.values()) and len(orders) == len(pending):
            return orders
        if time.monotonic() > deadline:
            stuck = {k: o.status for k, o in orders.items() if o.status not in TERMINAL_STATUSES}
            raise AssertionError(f"orders did not reach a terminal status in {timeout}s: {stuck}")
        time.sleep(0.1)


def recover_until_terminal(ids: Iterable[object], timeout: float = 120) -> dict[str, Order]:
    """Run the sweeper and the reconciler (what beat runs) until every order has ended and the
    providers' ledgers agree with each: a charge that reached the provider while the worker
    that made it died is the reconciler's to find (contract §6)."""
    from orders.reconciliation import orders_reconcile
    from orders.services import saga_recover_stalled

    ids = list(ids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        saga_recover_stalled()
        try:
            orders = wait_for_terminal(ids, timeout=1.5)
        except AssertionError:
            continue
        report = orders_reconcile(limit=len(ids) + 100)
        if not (report.repaired or report.unknown):
            return orders
    return wait_for_terminal(ids, timeout=1)


def money_moved(order: Order) -> tuple[list[Decimal], Decimal]:
    """The provider's succeeded charges for the order, and the sum of its succeeded refunds, as
    its own ledger holds them (the simulated provider's table, or Stripe's)."""
    ledger = [e for e in get_payment_provider().transactions(order_ref=str(order.pk)) if e.status == "succeeded"]
    charges = [e.amount for e in ledger if e.kind == "charge"]
    return charges, sum((e.amount for e in ledger if e.kind == "refund"), Decimal("0"))


def charges_per_order(order_ids: Iterable[object]) -> dict[str, int]:
    """How many succeeded charges the provider holds for each order: every one, not only the one
    the shop recorded (under Stripe, every PaymentIntent whose metadata names the order)."""
    ids = [str(i) for i in order_ids]
    if provider.localstripe_server is not None:
        held = provider.localstripe_server.ledger()
        return {i: len(held[i][0]) if i in held else 0 for i in ids}
    counted = dict.fromkeys(ids, 0)
    succeeded = ProviderTransaction.objects.filter(order_ref__in=ids, kind="charge", status="succeeded")
    for ref in succeeded.values_list("order_ref", flat=True):
        counted[ref] += 1
    return counted


def assert_invariants(orders: Iterable[Order], initial_stock: dict[str, int]) -> None:
    """Contract §6, once every order is terminal: stock adds up, money adds up, nobody charged twice,
    nobody charged unscreened."""
    orders = list(orders)
    assert all(o.status in TERMINAL_STATUSES for o in orders)
    sold: dict[str, int] = dict.fromkeys(initial_stock, 0)
    charged = charges_per_order(o.pk for o in orders)
    for order in orders:
        charges, refunded = money_moved(order)
        assert charged[str(order.pk)] <= 1, f"{order.pk} was charged {charged[str(order.pk)]} times"
        if charges:  # never charged before its screening approved it (§4c)
            screening = Screening.objects.filter(order_id=order.pk).first()
            assert screening is not None and Screening.Decision.APPROVED in (screening.outcome, screening.decision), (
                f"{order.pk} was charged without an approved screening ({screening})"
            )
        if order.status == Status.COMPLETED:
            assert charges == [order.total], f"{order.pk}: completed with charges {charges}"
            assert refunded == 0
            for line in order.lines.all():
                sold[line.sku] = sold.get(line.sku, 0) + line.quantity
        elif order.status == Status.CANCELLED:
            assert sum(charges, Decimal("0")) - refunded == 0, f"{order.pk}: cancelled but not refunded"
            live = CarrierShipment.objects.filter(idempotency_key=f"order:{order.pk}:shipment").exclude(
                status=CarrierShipment.Status.CANCELLED
            )
            assert not live.exists(), f"{order.pk}: cancelled with a live shipment at the carrier"
    for sku, initial in initial_stock.items():
        assert Product.objects.get(sku=sku).stock == initial - sold[sku], f"stock of {sku} does not add up"

"""Every measurement on one configuration (PostgreSQL + Redis, or the embedded default).

``python -m bench`` runs this module once per configuration, in a process of its own whose
environment points the shop at that configuration's private database and broker; the results
go to ``var/bench/results-<config>.json``.
"""

import contextlib
import json
import logging
import os
import random
import shutil
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.services import user_token  # noqa: E402
from bench import bare, floor, metrics_scrape  # noqa: E402
from bench.load import build_request, percentile_ms, request_once, run_load, run_paced  # noqa: E402
from bench.procs import RssSampler, SupervisedWorker, gunicorn  # noqa: E402
from bench.settings import BENCH_DIR  # noqa: E402
from orders.models import TERMINAL_STATUSES, Order, OrderEvent, Reason, Status  # noqa: E402
from sagas.models import SagaStep  # noqa: E402
from shop.models import Product  # noqa: E402

# Every queue the shop serves (the settings' list, which a system check holds to the saga's plan).
SHOP_QUEUES = ",".join(settings.SHOP_QUEUES)
CONFIG = os.environ["BENCH_CONFIG"]
PORT = int(os.environ["BENCH_PORT"])
LOG_DIR = BENCH_DIR / "logs"
PROFILE_DIR = BENCH_DIR / "profiles"


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


SIZES: dict[str, Any] = {
    "throughput_orders": _int("BENCH_ORDERS", 300),
    "growth_orders": _int("BENCH_GROWTH_ORDERS", 100),
    "burst_orders": _int("BENCH_BURST", 2000),
    "idle_orders": _int("BENCH_IDLE", 40),
    "products": _int("BENCH_PRODUCTS", 10_000),
    "load_seconds": _float("BENCH_LOAD_SECONDS", 4.0),
    "load_levels": [int(c) for c in os.environ.get("BENCH_LOAD_LEVELS", "1,2,4,8,16").split(",")],
    "recovery_orders": _int("BENCH_RECOVERY", 100),
    "saturation_clients": _int("BENCH_SATURATION", 8),  # gunicorn's 4 workers x 2 threads
    "paced_seconds": _float("BENCH_PACED_SECONDS", 10.0),
}
POOL = 100  # products that orders buy from (stock never runs out)
# Every saga figure is measured once per coordination mode, named in each order's POST body, on
# the same gunicorn and the same kind of worker (contract §7).
MODES = ("orchestration", "choreography")
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{CONFIG:8} {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def base_env() -> dict[str, str]:
    # The customer's emails are rendered and handed to Django's dummy backend: no SMTP server.
    env = {"EMAIL_URL": "dummymail://"} | dict(os.environ)
    return env | {"DJANGO_SETTINGS_MODULE": "bench.settings", "RATE_LIMITS": "off"}


def peer_env() -> dict[str, str]:
    # Nothing of the shop's configuration: no Django, no CELERY_* (e.g. the django-db backend).
    return {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE" and not k.startswith("CELERY_")}


def floor_env() -> dict[str, str]:
    env = peer_env()
    return env | {"BENCH_FLOOR_BROKER": settings.CELERY_BROKER_URL, "BENCH_FLOOR_DB": os.environ["DATABASE_URL"]}


def dbos_peer(orders: int) -> dict[str, Any]:
    """The same saga on DBOS Transact (``bench/peers/``), PostgreSQL only: through its queue, and
    through HTTP, with as many worker processes as the shop's throughput run."""
    if not os.environ.get("BENCH_DBOS_DB") or connection.vendor != "postgresql":
        return {"note": "n/a: DBOS's queue and datasource transactions run on PostgreSQL here"}
    from bench.peers import run as peer

    result: dict[str, Any] = {"compensation": peer.compensation_check(peer_env(), LOG_DIR)}
    progress(f"dbos peer: declined orders {result['compensation']}")
    for driver in ("queue", "http"):
        figure = peer.throughput(orders, 2, driver, peer_env(), LOG_DIR)
        result[f"{driver}_x2"] = figure
        progress(
            f"dbos peer x2 ({driver}): {figure['orders_per_s']} orders/s ({figure['completed']}/{figure['accepted']}); "
            f"per order {json.dumps({k: v for k, v in figure['per_order'].items() if not k.endswith('_table')})}"
        )
    return result


def check_floor_config() -> None:
    if floor.BROKER != settings.CELERY_BROKER_URL or os.environ["DATABASE_URL"] != floor.DB_URL:
        raise RuntimeError("run through `python -m bench`: the floor must use the shop's broker and database")


# --- setup -----------------------------------------------------------------------------------


def setup() -> str:
    check_floor_config()
    logging.getLogger("celery").setLevel(logging.WARNING)  # the profiles run tasks in this process
    (BENCH_DIR / "static").mkdir(parents=True, exist_ok=True)
    progress("migrating the benchmark database")
    call_command("migrate", verbosity=0)
    bare.create_table()
    floor.create_table()
    if os.environ.get("BENCH_DBOS_DB") and connection.vendor == "postgresql":
        from bench.peers import dbos_saga

        dbos_saga.create_schema()
    user = get_user_model().objects.create_user(
        username="bench", email="bench@example.com", password="bench-password-2026"
    )
    token = user_token(user=user)
    rng = random.Random(5)
    Product.objects.bulk_create(
        Product(sku=f"BENCH-P{i:04d}", name=f"Pool product {i:04d}", price=rng.randint(100, 9999) / 100, stock=10**9)
        for i in range(POOL)
    )
    purge_shop_queues()
    floor.purge()
    return token


def seed_catalog() -> None:
    rng = random.Random(10)
    words = ["mug", "tee", "cap", "tote", "notebook", "pen", "bottle", "socks", "poster", "lamp", "candle"]
    missing = SIZES["products"] - Product.objects.count()
    Product.objects.bulk_create(
        (
            Product(
                sku=f"BENCH-C{i:05d}",
                name=f"{rng.choice(words).title()} {rng.choice(words)} {i:05d}",
                description=f"Catalog filler number {i} for the benchmark.",
                price=rng.randint(100, 50000) / 100,
                stock=rng.choice([0, 5, 50, 500]),
            )
            for i in range(max(0, missing))
        ),
        batch_size=1000,
    )


def set_aside_unstarted_orders() -> None:
    """The orders of the latency runs and the profiles were placed with no worker running: their
    sagas wait in the outbox, which a worker's relay would publish. Drop those messages and set
    the orders aside (``cancelled``, so that no sweeper re-drives them) before a saga figure."""
    from outbox.models import OutboxMessage

    OutboxMessage.objects.filter(sent_at__isnull=True).delete()
    Order.objects.filter(status=Status.PENDING).update(status=Status.CANCELLED, cancellation_reason=Reason.EXPIRED)
    purge_shop_queues()


def purge_shop_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in settings.SHOP_QUEUES:
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


# --- orders ----------------------------------------------------------------------------------

ADDRESS = {"name": "Bench Buyer", "line1": "1 Loop Road", "city": "Localhost", "postal_code": "12345", "country": "DE"}


def order_body(rng: random.Random, lines: int, mode: str | None = None) -> dict[str, Any]:
    skus = rng.sample([f"BENCH-P{i:04d}" for i in range(POOL)], lines)
    body: dict[str, Any] = {
        "items": [{"sku": s, "quantity": 1} for s in skus],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
    }
    if mode is not None:
        body["coordination"] = mode
    return body


def order_requests(token: str, lines: int = 1, variants: int = 200, mode: str | None = None) -> list[bytes]:
    """POST /api/orders/ requests; without ``mode`` the web's ORDER_COORDINATION decides."""
    rng = random.Random(lines)
    auth = {"Authorization": f"Token {token}"}
    return [build_request("POST", "/api/orders/", PORT, order_body(rng, lines, mode), auth) for _ in range(variants)]


def bare_write_requests(token: str) -> list[bytes]:
    rng = random.Random(1)
    auth = {"Authorization": f"Token {token}"}
    return [build_request("POST", "/bench/bare/write/", PORT, order_body(rng, 1), auth) for _ in range(200)]


STALL_SECONDS = 20.0


def wait_for_orders(
    since: datetime, expected: int, worker: SupervisedWorker, timeout: float, label: str
) -> tuple[float, dict[str, int], float]:
    """Wait until ``expected`` orders created since ``since`` are terminal.

    Restarts the worker if it dies, and gives up once no order has finished for
    ``STALL_SECONDS`` (a lost message strands its saga until the sweeper, which is not run
    here). Returns (when the last order finished, statuses, when the wait ended).
    """
    deadline = time.monotonic() + timeout
    last_report = last_progress = time.monotonic()
    best = -1
    while True:
        worker.check()
        rows = Order.objects.filter(created_at__gte=since).values_list("status", flat=True)
        statuses: dict[str, int] = {}
        for status in rows:
            statuses[status] = statuses.get(status, 0) + 1
        done = sum(n for s, n in statuses.items() if s in TERMINAL_STATUSES)
        now = time.monotonic()
        if done > best:
            best, last_progress = done, now
        if done >= expected:
            return now, statuses, now
        if now > deadline or now - last_progress > STALL_SECONDS:
            progress(f"{label}: gave up with {done}/{expected} terminal: {statuses} (worker crashes: {worker.crashes})")
            return last_progress, statuses, now
        if now - last_report > 5:
            progress(f"{label}: {done}/{expected} orders terminal")
            last_report = now
        time.sleep(0.1 if expected < 50 else 0.25)


def statuses_since(since: datetime) -> dict[str, int]:
    statuses: dict[str, int] = {}
    for status in Order.objects.filter(created_at__gte=since).values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


def settle(since: datetime, timeout: float = 60.0) -> float | None:
    """Wait until what the orders set off after their saga is done too: nothing due left in the
    outbox, and both emails of every terminal order (placed, and how it ended) recorded.
    Returns the seconds it took, None on timeout."""
    from notifications.models import Notification
    from outbox.models import OutboxMessage

    started = time.monotonic()
    run = Order.objects.filter(created_at__gte=since)
    while time.monotonic() < started + timeout:
        due = OutboxMessage.objects.filter(
            sent_at__isnull=True, parked_at__isnull=True, available_at__lte=timezone.now()
        ).exists()
        terminal = run.filter(status__in=TERMINAL_STATUSES).count()
        emails = Notification.objects.filter(order_id__in=run.values("pk")).count()
        if not due and emails >= 2 * terminal:
            return round(time.monotonic() - started, 2)
        time.sleep(0.1)
    progress(f"settle: after {timeout:.0f}s, {emails}/{2 * terminal} emails, messages still due: {due}")
    return None


class OwnQueries:
    """Counts this process's own statements outside transactions (each one a commit in
    ``pg_stat_database``): the bench's polling is subtracted from the shop's commits."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if not connection.in_atomic_block:
            self.count += 1
        return execute(sql, params, many, context)


def pg_stats() -> dict[str, Any] | None:
    """The database's commit and row counters (PostgreSQL), and rows written per table."""
    if connection.vendor != "postgresql":
        return None
    connection.close()  # this process's own counts reach the statistics as its backend exits
    time.sleep(0.5)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
            " WHERE datname = current_database()"
        )
        commits, inserted, updated, deleted = cursor.fetchone()
        cursor.execute("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables")
        tables = {name: int(n) for name, n in cursor.fetchall()}
    return {
        "at": time.monotonic(),
        "commits": int(commits),
        "inserted": int(inserted),
        "updated": int(updated),
        "deleted": int(deleted),
        "tables": tables,
    }


IDLE_WORKER_SECONDS = 3.0


def idle_commit_rate(own: OwnQueries) -> float | None:
    """Commits per second of the shop while nothing happens (the worker's outbox relay polls)."""
    first = pg_stats()
    if first is None:
        return None
    own.count = 0
    time.sleep(IDLE_WORKER_SECONDS)
    last = pg_stats()
    assert last is not None
    commits: int = last["commits"] - first["commits"] - own.count
    seconds: float = last["at"] - first["at"]
    return round(commits / seconds, 1)


def per_order_figures(
    since: datetime, before: dict[str, Any] | None, own: OwnQueries, idle_rate: float | None
) -> dict[str, Any]:
    """Outbox messages, journal lines and database writes per order of the run that began at ``since``."""
    from outbox.models import OutboxMessage

    ids = [str(pk) for pk in Order.objects.filter(created_at__gte=since).values_list("pk", flat=True)]
    n = len(ids) or 1
    outbox: dict[str, int] = {}
    in_process = 0
    for name, here in OutboxMessage.objects.filter(shard__in=ids).values_list("name", "in_process"):
        outbox[name] = outbox.get(name, 0) + 1
        in_process += here
    journal: dict[str, int] = {}
    for kind in OrderEvent.objects.filter(order__created_at__gte=since).values_list("kind", flat=True):
        journal[kind] = journal.get(kind, 0) + 1
    result: dict[str, Any] = {
        "orders": len(ids),
        "outbox_messages": round(sum(outbox.values()) / n, 2),
        # what crossed the broker: the rest ran in the worker that wrote it (outbox/nearby.py)
        "broker_messages": round((sum(outbox.values()) - in_process) / n, 2),
        "outbox_by_task": {k: round(v / n, 2) for k, v in sorted(outbox.items(), key=lambda kv: -kv[1])},
        "journal_lines": round(sum(journal.values()) / n, 2),
        "journal_by_kind": {k: round(v / n, 2) for k, v in sorted(journal.items(), key=lambda kv: -kv[1])},
    }
    after = pg_stats() if before is not None else None
    if before is None or after is None:
        return result | {"database": "n/a (SQLite keeps no such counters)"}
    commits = after["commits"] - before["commits"] - own.count
    seconds = after["at"] - before["at"]
    writes = {k: after[k] - before[k] for k in ("inserted", "updated", "deleted")}
    tables = {t: after["tables"].get(t, 0) - before["tables"].get(t, 0) for t in after["tables"]}
    result["database"] = {
        "rows_written": round(sum(writes.values()) / n, 2),
        **{f"rows_{k}": round(v / n, 2) for k, v in writes.items()},
        "commits": round(commits / n, 2),
        "commits_net_of_idle_polling": round((commits - (idle_rate or 0) * seconds) / n, 2),
        "idle_commits_per_s": idle_rate,
        "window_s": round(seconds, 1),
        "rows_written_by_table": {
            t: round(v / n, 2) for t, v in sorted(tables.items(), key=lambda kv: -kv[1]) if v / n >= 0.05
        },
    }
    return result


def saga_throughput(
    token: str,
    orders: int,
    lines: int,
    workers: int,
    label: str,
    mode: str,
    per_order: bool = False,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Orders placed through the API (8 clients) per second until every one is ``completed``.

    With ``per_order``, also what each order cost: outbox messages, journal lines and (on
    PostgreSQL) rows written and commits, counted once the run has settled (emails included).
    ``env`` is the worker's, on top of the run's (a setting turned off).
    """
    worker_env = base_env() | (env or {})
    worker = SupervisedWorker("config", SHOP_QUEUES, workers, worker_env, LOG_DIR / f"{CONFIG}-worker.log")
    own = OwnQueries()
    before: dict[str, Any] | None = None
    idle_rate: float | None = None
    figures: dict[str, Any] = {}
    try:
        with connection.execute_wrapper(own):
            if per_order:
                idle_rate = idle_commit_rate(own)
                before = pg_stats()
                own.count = 0
            since = timezone.now()
            started = time.monotonic()
            cpu_before = worker.cpu_seconds(), WEB.cpu_seconds()
            posted, _ = run_load(
                PORT,
                order_requests(token, lines, mode=mode),
                concurrency=SIZES["saturation_clients"],
                count=orders,
                duration=600,
            )
            accepted = posted.statuses.get(201, 0)
            post = posted.summary()
            progress(
                f"{label}: {accepted} orders accepted in {posted.elapsed:.1f}s"
                f" (POST p50 {post['p50_ms']} ms, p99 {post['p99_ms']} ms), waiting for their sagas"
            )
            done, statuses, _ = wait_for_orders(
                since, accepted, worker, timeout=max(120.0, orders * lines * 0.5), label=label
            )
            settled = settle(since)
            cpu = worker.cpu_seconds() - cpu_before[0], WEB.cpu_seconds() - cpu_before[1]
            worker.stop()
            if per_order:
                time.sleep(1.0)  # the web's backends report their counters once idle
                figures = per_order_figures(since, before, own, idle_rate)
    finally:
        worker.stop()
    elapsed = done - started
    completed = statuses.get(Status.COMPLETED, 0)
    result = {
        "mode": mode,
        "orders": orders,
        "accepted": accepted,
        "lines": lines,
        "workers": workers,
        "completed": completed,
        "statuses": statuses,
        "worker_crashes": worker.crashes,
        "elapsed_s": round(elapsed, 2),
        "settled_after_s": settled,
        "orders_per_s": round(completed / elapsed, 2),
        "lines_per_s": round(completed * lines / elapsed, 2),
        # CPU per order, emails included: the worker (main process and pool), and gunicorn
        "worker_cpu_ms_per_order": round(1000 * cpu[0] / max(completed, 1), 2),
        "web_cpu_ms_per_order": round(1000 * cpu[1] / max(completed, 1), 2),
        # the POSTs themselves: 8 clients while the workers run the sagas (the setting)
        "post": post,
    }
    if per_order:
        result["per_order"] = figures
        progress(f"{label}: per order {json.dumps({k: v for k, v in figures.items() if not k.endswith('_by_task')})}")
    progress(
        f"{label}: {result['orders_per_s']} orders/s ({completed} completed in {elapsed:.1f}s); CPU per order: "
        f"worker {result['worker_cpu_ms_per_order']} ms, web {result['web_cpu_ms_per_order']} ms"
    )
    return result


def post_at_saturation(token: str, rate: float, mode: str) -> dict[str, Any]:
    """``POST /api/orders/`` while the shop runs at its capacity: the two worker processes have a
    backlog the whole time, and orders arrive at ``rate``, the saga throughput just measured, as
    customers would (open loop). Unlike the 8 clients above, which post several times faster
    than the sagas finish, this is a load the shop can sustain.

    The backlog: as many orders as the paced window brings, placed first as fast as 8 clients
    can (not measured). Whether it lasted is measured: the orders not yet finished when the
    window ended.
    """
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, base_env(), LOG_DIR / f"{CONFIG}-worker.log")
    requests = order_requests(token, mode=mode)
    seconds = SIZES["paced_seconds"]
    try:
        since = timezone.now()
        backlog, _ = run_load(PORT, requests, concurrency=SIZES["saturation_clients"], count=int(rate * seconds))
        posted = run_paced(PORT, requests, rate=rate, duration=seconds)
        unfinished = Order.objects.filter(created_at__gte=since).exclude(status__in=TERMINAL_STATUSES).count()
        accepted = backlog.statuses.get(201, 0) + posted.statuses.get(201, 0)
        _, statuses, _ = wait_for_orders(since, accepted, worker, timeout=180.0, label=f"paced {mode}")
        settle(since)
    finally:
        worker.stop()
    result = {
        "mode": mode,
        "rate_per_s": round(rate, 2),
        "seconds": seconds,
        "post": posted.summary(),
        "backlog_orders": backlog.statuses.get(201, 0),
        "unfinished_when_window_ended": unfinished,
        "accepted": accepted,
        "completed": statuses.get(Status.COMPLETED, 0),
        "worker_crashes": worker.crashes,
    }
    post = result["post"]
    progress(
        f"paced {mode} at {result['rate_per_s']} orders/s behind a backlog of {result['backlog_orders']}: "
        f"POST p50 {post['p50_ms']} ms, p99 {post['p99_ms']} ms; {unfinished} orders unfinished when the window "
        f"ended; {result['completed']}/{accepted} completed"
    )
    return result


def floor_throughput(chains: int, workers: int) -> dict[str, Any]:
    """Bare Celery: ``chains`` chains of four one-insert tasks, sent and run to their last step."""
    worker = SupervisedWorker("bench.floor", floor.QUEUE, workers, floor_env(), LOG_DIR / f"{CONFIG}-floor-worker.log")
    run = uuid.uuid4().hex
    try:
        started = time.monotonic()
        cpu_before = worker.cpu_seconds()
        for n in range(chains):
            floor.send_chain(run, n)
        deadline = started + max(120.0, chains * 0.5)
        while (finished := floor.finished(run)) < chains and time.monotonic() < deadline:
            worker.check()
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        cpu = worker.cpu_seconds() - cpu_before
    finally:
        worker.stop()
    result = {
        "chains": chains,
        "workers": workers,
        "finished": finished,
        "elapsed_s": round(elapsed, 2),
        "chains_per_s": round(finished / elapsed, 2),
        "worker_cpu_ms_per_chain": round(1000 * cpu / max(finished, 1), 2),
    }
    progress(f"floor x{workers}: {result['chains_per_s']} chains/s ({finished} in {elapsed:.1f}s)")
    return result


# How often an idle run looks whether the saga (or the chain) has finished. It takes the finish
# time from the server's own record (the journal's line for ``completed``, the chain's fourth
# insert), so the look only has to notice the end; looking every 2 ms, as this bench once did,
# was 500 queries a second from the bench itself, on the same 2 cores as what it measured.
IDLE_LOOK_SECONDS = 0.02


def floor_idle(count: int) -> dict[str, Any]:
    """One bare chain at a time, from sending it until its fourth insert."""
    worker = SupervisedWorker("bench.floor", floor.QUEUE, 2, floor_env(), LOG_DIR / f"{CONFIG}-floor-worker.log")
    run = uuid.uuid4().hex
    took: list[float] = []
    try:
        for n in range(count):
            time.sleep(0.05)
            started = time.time()
            floor.send_chain(run, n)
            while floor.finished(run) <= n and time.time() < started + 10 and worker.service.alive():
                time.sleep(IDLE_LOOK_SECONDS)
            if floor.finished(run) > n:
                took.append(floor.finished_at(run, n) - started)
            else:
                worker.check()  # it died (and its message with it): start another, count the crash
    finally:
        worker.stop()
    result = {
        "chains": count,
        "finished": len(took),
        "worker_crashes": worker.crashes,
        "p50_ms": percentile_ms(took, 50),
        "p99_ms": percentile_ms(took, 99),
    }
    progress(f"idle floor chain: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
    return result


def idle_latency(
    token: str, count: int, lines: int = 1, mode: str = MODES[0], env: dict[str, str] | None = None
) -> dict[str, Any]:
    """One order at a time: POST, then watch the database until it is ``completed``. ``env`` is
    the worker's, on top of the run's."""
    worker_env = base_env() | (env or {})
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, worker_env, LOG_DIR / f"{CONFIG}-worker.log")
    requests = order_requests(token, lines, variants=count, mode=mode)
    e2e: list[float] = []
    post: list[float] = []
    order_ids: list[str] = []
    since = timezone.now()
    try:
        for n in range(count):
            worker.check()
            time.sleep(0.05)  # let the worker go idle
            started = time.time()
            code, body = request_once(PORT, requests[n])
            posted = time.time()
            if code != 201:
                progress(f"idle: POST answered {code}: {body[:200]!r}")
                continue
            order_id = json.loads(body)["id"]
            deadline = started + 30
            status = None
            while time.time() < deadline and worker.service.alive():
                status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
                if status in TERMINAL_STATUSES:
                    break
                time.sleep(IDLE_LOOK_SECONDS)
            if status == Status.COMPLETED:
                e2e.append(completed_at([order_id])[order_id].timestamp() - started)
                post.append(posted - started)
                order_ids.append(order_id)
        settle(since)
    finally:
        worker.stop()
    result = {
        "mode": mode,
        "orders": count,
        "lines": lines,
        "completed": len(e2e),
        "e2e_p50_ms": percentile_ms(e2e, 50),
        "e2e_p99_ms": percentile_ms(e2e, 99),
        "post_p50_ms": percentile_ms(post, 50),
        "worker_crashes": worker.crashes,
        "breakdown_ms": saga_breakdown(order_ids),
    }
    progress(f"idle {mode} x{lines} line(s): e2e p50 {result['e2e_p50_ms']} ms, p99 {result['e2e_p99_ms']} ms")
    return result


def completed_at(order_ids: list[str]) -> dict[Any, datetime]:
    """When each order became ``completed``: its journal's first line in that status, written in
    the transaction that completed it (later lines, the customer's email, come after)."""
    lines = OrderEvent.objects.filter(order_id__in=order_ids, to_status=Status.COMPLETED).order_by("created_at")
    first: dict[Any, datetime] = {}
    for order_id, at in lines.values_list("order_id", "created_at"):
        first.setdefault(str(order_id), at)
    return first


def saga_breakdown(order_ids: list[str]) -> dict[str, float]:
    """Where an idle saga's time goes, from the steps' own timestamps and the journal's line
    for ``completed`` (mean ms per segment). The same steps run in both modes; what differs is
    how a step's outcome reaches the next one (a command, or an event)."""
    segments: dict[str, list[float]] = {}
    finished = completed_at(order_ids)

    def add(name: str, start: datetime | None, end: datetime | None) -> None:
        if start and end:
            segments.setdefault(name, []).append((end - start).total_seconds() * 1000)

    for order in Order.objects.filter(pk__in=order_ids).with_saga_steps():
        steps = {s.name.split(":")[0]: s for s in order.saga_steps if s.kind == SagaStep.Kind.FORWARD}
        reserve_start = min(
            (s.started_at for s in order.saga_steps if s.name.startswith("reserve_stock") and s.started_at),
            default=None,
        )
        reserve_end = max(
            (s.finished_at for s in order.saga_steps if s.name.startswith("reserve_stock") and s.finished_at),
            default=None,
        )
        charge, ship = steps.get("charge_payment"), steps.get("create_shipment")
        done = finished.get(str(order.pk))
        add("placed -> first reserve starts (commit, relay, delivery)", order.created_at, reserve_start)
        add("reserve lines (in step)", reserve_start, reserve_end)
        if charge:
            add("reserved -> charge starts (1 hop)", reserve_end, charge.started_at)
            add("charge (in step)", charge.started_at, charge.finished_at)
        if charge and ship:
            add("charged -> ship starts (1 hop)", charge.finished_at, ship.started_at)
            add("ship (in step)", ship.started_at, ship.finished_at)
        if ship and done:
            add("shipped -> order completed", ship.finished_at, done)
        if done:
            add("total: placed -> completed (server side)", order.created_at, done)
    return {name: round(statistics.fmean(values), 2) for name, values in segments.items()}


# --- statements per order --------------------------------------------------------------------


def query_counts(token: str, orders: int, mode: str) -> dict[str, Any]:
    """SQL statements per order, by verb: the POST's (in process, ``CaptureQueriesContext``) and
    the worker's (its main process and pool, ``bench/querycount.py``), net of what the idle
    worker sends on its own (the outbox relay's sweeps). Not timed: counting costs a little."""
    from django.test.utils import CaptureQueriesContext
    from rest_framework.test import APIClient

    from bench import querycount

    folder = BENCH_DIR / "queries" / mode
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = base_env() | {"BENCH_COUNT_QUERIES": str(folder)}
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, env, LOG_DIR / f"{CONFIG}-worker.log")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    rng = random.Random(3)
    web: Counter[str] = Counter()
    own = OwnQueries()
    try:
        with connection.execute_wrapper(own):
            time.sleep(1.0)
            idle_start, idle_first = time.monotonic(), querycount.totals(folder)
            idle_commits = idle_commit_rate(own)
            if idle_commits is None:  # SQLite keeps no counters: idle_commit_rate did not wait
                time.sleep(IDLE_WORKER_SECONDS)
            idle_last = querycount.totals(folder)
            idle_rate = (sum(idle_last.values()) - sum(idle_first.values())) / (time.monotonic() - idle_start)
            before = pg_stats()
            own.count = 0
            since, started, first = timezone.now(), time.monotonic(), querycount.totals(folder)
            for _ in range(orders):
                with CaptureQueriesContext(connection) as ctx:
                    response = client.post("/api/orders/", order_body(rng, 1, mode), format="json")
                if response.status_code != 201:
                    raise RuntimeError(f"POST answered {response.status_code}: {response.content[:200]!r}")
                web.update(q["sql"].lstrip().split(" ", 1)[0].upper() for q in ctx.captured_queries)
            wait_for_orders(since, orders, worker, timeout=120, label=f"queries {mode}")
            settle(since)
            time.sleep(1.0)  # the processes write their counts every quarter second; the stats each second
            last, window = querycount.totals(folder), time.monotonic() - started
            worker.stop()  # its backends report their counters as they exit
            time.sleep(1.0)
            figures = per_order_figures(since, before, own, idle_commits)
    finally:
        worker.stop()
    for pseudo in ("BEGIN", "COMMIT"):  # Django's own markers, not statements sent
        web.pop(pseudo, None)
    worker_counts = last - first
    by_task = {k: v for k, v in worker_counts.items() if " | " in k}
    worker_counts = Counter({k: v for k, v in worker_counts.items() if " | " not in k})
    worker_commits = worker_counts.pop("COMMIT", 0)
    worker_total = sum(worker_counts.values())
    post = round(sum(web.values()) / orders, 2)
    worker_net = round((worker_total - idle_rate * window) / orders, 2)
    result: dict[str, Any] = {
        "mode": mode,
        "orders": orders,
        "post": post,
        "post_by_kind": {k: round(v / orders, 2) for k, v in web.most_common()},
        "worker": round(worker_total / orders, 2),
        "worker_net_of_idle_polling": worker_net,
        "worker_by_kind": {k: round(v / orders, 2) for k, v in worker_counts.most_common()},
        "worker_commits": round(worker_commits / orders, 2),
        "worker_by_task": {k: round(v / orders, 2) for k, v in sorted(by_task.items())},
        "idle_worker_queries_per_s": round(idle_rate, 1),
        "per_order": figures,
    }
    result["total_net"] = round(post + worker_net, 2)
    progress(f"queries per order, {mode}: {json.dumps({k: v for k, v in result.items() if k != 'per_order'})}")
    progress(f"per order, {mode}: {json.dumps(figures)}")
    return result


# --- web latency -----------------------------------------------------------------------------


WARM_UP_SECONDS = 2.0


def warm_up(requests: list[bytes]) -> None:
    """Unmeasured load first, so that every gunicorn thread has opened its database and broker
    connections: the figures are the steady state, not the first request of each thread."""
    run_load(PORT, requests, concurrency=max(SIZES["load_levels"]), duration=WARM_UP_SECONDS)


def load_sweep(requests: list[bytes], label: str) -> list[dict[str, Any]]:
    results = []
    warm_up(requests)
    for clients in SIZES["load_levels"]:
        result, _ = run_load(PORT, requests, concurrency=clients, duration=SIZES["load_seconds"])
        summary = {"clients": clients, **result.summary()}
        results.append(summary)
        progress(
            f"{label} x{clients} clients: {summary['rate_per_s']} req/s, "
            f"p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, errors {summary['errors']}"
        )
    return results


def web_latency(token: str) -> dict[str, Any]:
    return {
        "orders": load_sweep(order_requests(token), "POST /api/orders/"),
        "bare": load_sweep(bare_write_requests(token), "POST bare insert"),
    }


def catalog(token: str) -> dict[str, Any]:
    """Query counts in process (small and full catalog) and HTTP latency through gunicorn."""
    result: dict[str, Any] = {"queries": {}}
    paths = {
        "/api/products/": "/api/products/",
        "/api/products/ (page 50)": "/api/products/?page=50",
        "/api/products/ (search)": "/api/products/?search=lamp",
        "/api/products/ (in stock, by price)": "/api/products/?in_stock=true&ordering=-price",
        "/ (storefront)": "/",
        "/ (storefront, page 2)": "/?page=2",
    }
    result["queries"]["small"] = {"products": Product.objects.count(), **count_queries(paths)}
    progress(f"seeding {SIZES['products']} products")
    seed_catalog()
    result["queries"]["full"] = {"products": Product.objects.count(), **count_queries(paths)}
    progress(f"queries per request: {result['queries']}")
    storefront = result["queries"]["full"].get("/ (storefront)")
    http: dict[str, Any] = {}
    targets = {"/api/products/": "/api/products/", "bare read": "/bench/bare/read/"}
    if isinstance(storefront, int):
        targets["/ (storefront)"] = "/"
    else:
        result["storefront_note"] = f"/ answered {storefront}: the storefront page is not there yet; skipped"
        progress(result["storefront_note"])
    for label, path in targets.items():
        request = [build_request("GET", path, PORT)]
        warm_up(request)
        for clients in (1, SIZES["saturation_clients"]):
            res, _ = run_load(PORT, request, concurrency=clients, duration=min(SIZES["load_seconds"], 4.0))
            http[f"{label} x{clients}"] = {"path": path, "clients": clients, **res.summary()}
            s = http[f"{label} x{clients}"]
            progress(f"GET {label} x{clients}: {s['rate_per_s']} req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    result["http"] = http
    return result


def count_queries(paths: dict[str, str]) -> dict[str, int | str]:
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    counts: dict[str, int | str] = {}
    for label, path in paths.items():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        counts[label] = len(ctx.captured_queries) if response.status_code == 200 else f"HTTP {response.status_code}"
    return counts


# --- burst -----------------------------------------------------------------------------------


def burst(token: str, orders: int, mode: str) -> dict[str, Any]:
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, base_env(), LOG_DIR / f"{CONFIG}-worker.log")
    try:
        with RssSampler(worker, interval=1.0) as sampler:
            since = timezone.now()
            started = time.monotonic()
            posted, _ = run_load(
                PORT,
                order_requests(token, mode=mode),
                concurrency=SIZES["saturation_clients"],
                count=orders,
                duration=900,
            )
            accepted = posted.statuses.get(201, 0)
            progress(f"burst {mode}: {accepted}/{orders} accepted in {posted.elapsed:.1f}s")
            done, statuses, _ = wait_for_orders(
                since, accepted, worker, timeout=max(300.0, orders * 0.5), label=f"burst {mode}"
            )
        settled = settle(since, timeout=120)
    finally:
        worker.stop()
    samples = sampler.samples
    mb = [rss / 2**20 for _, rss in samples]
    tenth = max(1, len(mb) // 10)
    terminal = sum(n for s, n in statuses.items() if s in TERMINAL_STATUSES)
    result = {
        "mode": mode,
        "orders": orders,
        "accepted": accepted,
        "terminal": terminal,
        "lost": accepted - terminal,
        "statuses": statuses,
        "worker_crashes": worker.crashes,
        "elapsed_s": round(done - started, 1),
        "settled_after_s": settled,
        "orders_per_s": round(terminal / (done - started), 2),
        "post": posted.summary(),
        "rss_mb_first_10pct": round(statistics.median(mb[tenth : 2 * tenth] or mb[:tenth]), 1),
        "rss_mb_last_10pct": round(statistics.median(mb[-tenth:]), 1),
        "rss_mb_peak": round(max(mb), 1),
        "rss_samples": [(round(t, 1), round(rss / 2**20, 1)) for t, rss in samples],
    }
    progress(
        f"burst {mode}: {terminal}/{accepted} terminal in {result['elapsed_s']}s; worker RSS "
        f"{result['rss_mb_first_10pct']} -> {result['rss_mb_last_10pct']} MB (peak {result['rss_mb_peak']})"
    )
    return result


# --- recovery --------------------------------------------------------------------------------

# As the saga tests run it: a step presumed dead after 3 s, a Redis message handed out again
# after 5 s, a saga re-driven after 2 s without progress. What beat runs (the sweeper, and the
# redelivery of events that were delivered but never handled) runs every half second, with an
# event counted lost after 5 s instead of EVENTS_REDELIVER_AFTER_SECONDS.
RECOVERY_WORKER_ENV = {"SAGA_STEP_LEASE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "5"}
RECOVERY_STALL_SECONDS = 2.0
RECOVERY_REDELIVER_SECONDS = 5.0
RECOVERY_SWEEP_SECONDS = 0.5
RECOVERY_TIMEOUT = 120.0


def recovery(token: str, orders: int, mode: str) -> dict[str, Any]:
    """Orders in flight, the worker SIGKILLed (main process and pool), a new one started at
    once: seconds from the kill until every order is terminal, and until every email of theirs
    is recorded, with what beat runs (``sweep_like_beat``) running every half second."""
    from notifications.models import Notification

    env = base_env() | RECOVERY_WORKER_ENV
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, env, LOG_DIR / f"{CONFIG}-worker.log")
    redriven = redelivered = 0
    recovered_after = emails_after = None
    try:
        since = timezone.now()
        posted, _ = run_load(
            PORT, order_requests(token, mode=mode), concurrency=SIZES["saturation_clients"], count=orders, duration=120
        )
        accepted = posted.statuses.get(201, 0)
        at_kill = statuses_since(since)
        in_flight = accepted - sum(n for s, n in at_kill.items() if s in TERMINAL_STATUSES)
        killed = worker.kill_and_restart()
        restarted_after = time.monotonic() - killed
        progress(f"recovery {mode}: killed the worker with {in_flight}/{accepted} orders in flight")
        last_sweep = 0.0
        run = Order.objects.filter(created_at__gte=since)
        while time.monotonic() < killed + RECOVERY_TIMEOUT:
            worker.check()
            statuses = statuses_since(since)
            terminal = sum(n for s, n in statuses.items() if s in TERMINAL_STATUSES)
            if recovered_after is None and terminal >= accepted:
                recovered_after = time.monotonic() - killed
            if recovered_after is not None:
                emails = Notification.objects.filter(order_id__in=run.values("pk")).count()
                if emails >= 2 * accepted:
                    emails_after = time.monotonic() - killed
                    break
            if time.monotonic() - last_sweep >= RECOVERY_SWEEP_SECONDS:
                swept = sweep_like_beat()
                redriven, redelivered = redriven + swept[0], redelivered + swept[1]
                last_sweep = time.monotonic()
            time.sleep(0.05)
        settle(since)
    finally:
        worker.stop()
    result = {
        "mode": mode,
        "orders": orders,
        "accepted": accepted,
        "in_flight_at_kill": in_flight,
        "terminal": terminal,
        "statuses": statuses,
        "worker_restarted_after_s": round(restarted_after, 2),
        "recovered_after_s": round(recovered_after, 2) if recovered_after is not None else None,
        "emails_after_s": round(emails_after, 2) if emails_after is not None else None,
        "timeout_s": RECOVERY_TIMEOUT,
        "sagas_redriven": redriven,
        "events_redelivered": redelivered,
        "worker_crashes": worker.crashes,
    }
    progress(
        f"recovery {mode}: {terminal}/{accepted} terminal {result['recovered_after_s']}s after the kill, every "
        f"email recorded after {result['emails_after_s']}s ({redriven} sagas re-driven, {redelivered} events "
        f"redelivered; statuses {statuses})"
    )
    return result


def sweep_like_beat() -> tuple[int, int]:
    """What beat runs to recover from a crash, with the short delays above: the sweeper, and the
    redelivery of events delivered but never handled. Returns (sagas re-driven, events sent again)."""
    from django.test.utils import override_settings

    from events.services import events_redeliver_unhandled
    from orders.services import saga_recover_stalled

    with override_settings(SAGA_STALL_SECONDS=RECOVERY_STALL_SECONDS):
        redriven = len(saga_recover_stalled().redriven)
    redelivered = events_redeliver_unhandled(
        after=timedelta(seconds=RECOVERY_REDELIVER_SECONDS), within=timedelta(hours=1)
    )
    return redriven, redelivered


# --- profiles --------------------------------------------------------------------------------


def profiles(token: str) -> dict[str, Any]:
    from bench import profile

    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    result = profile.run(token=token, config=CONFIG, out_dir=PROFILE_DIR)
    set_aside_unstarted_orders()  # the profiled POSTs sent sagas that no worker runs
    progress(f"profiles written to {PROFILE_DIR}")
    return result


# --- main ------------------------------------------------------------------------------------


ONLY = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}
WEB: Any = None  # the shop's gunicorn, started by main()


def throughput(token: str, orders: int, mode: str) -> dict[str, Any]:
    shop_x2 = saga_throughput(token, orders, 1, 2, f"saga {mode} x2", mode, per_order=True)
    return {
        "shop_x2": shop_x2,
        "shop_x1": saga_throughput(token, orders, 1, 1, f"saga {mode} x1", mode),
        # every hop through the broker (OUTBOX_LOCAL_HOPS=false), beside the default (hops in process)
        "through_broker_x2": saga_throughput(
            token,
            orders,
            1,
            2,
            f"saga {mode} x2, every hop through the broker",
            mode,
            per_order=True,
            env={"OUTBOX_LOCAL_HOPS": "false"},
        ),
        "paced_x2": post_at_saturation(token, shop_x2["orders_per_s"], mode),
    }


def main() -> None:
    # BENCH_ONLY=throughput,idle runs some figures (for profiling); the report keeps the full run.
    out = BENCH_DIR / (f"results-{CONFIG}-partial.json" if ONLY else f"results-{CONFIG}.json")
    results: dict[str, Any] = {"config": CONFIG, "sizes": SIZES, "started": timezone.now().isoformat()}
    results["database"] = connection.vendor
    results["broker"] = settings.CELERY_BROKER_URL.split("://")[0]
    results["result_backend"] = settings.CELERY_RESULT_BACKEND.split("://")[0]
    global WEB
    token = setup()
    web = WEB = gunicorn(PORT, base_env(), LOG_DIR / f"{CONFIG}-gunicorn.log")

    def step(name: str, fn: Callable[[], Any]) -> None:
        if ONLY and name not in ONLY:
            return
        progress(f"== {name}")
        t0 = time.monotonic()
        try:
            results[name] = fn()
        except Exception as exc:  # one broken figure must not lose the others
            progress(f"{name} failed: {exc!r}")
            results[name] = {"error": repr(exc)}
        results.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t0, 1)
        out.write_text(json.dumps(results, indent=2, default=str))

    try:
        n = SIZES["throughput_orders"]
        step("catalog", lambda: catalog(token))
        step("web_latency", lambda: web_latency(token))
        set_aside_unstarted_orders()  # the orders of the latency runs: no worker ran
        step(
            "idle",
            lambda: {
                "modes": {mode: idle_latency(token, SIZES["idle_orders"], mode=mode) for mode in MODES},
                # every hop through the broker (OUTBOX_LOCAL_HOPS=false), beside the default
                "through_broker": {
                    mode: idle_latency(token, SIZES["idle_orders"], mode=mode, env={"OUTBOX_LOCAL_HOPS": "false"})
                    for mode in MODES
                },
                "floor": floor_idle(SIZES["idle_orders"]),
            },
        )
        step(
            "throughput",
            lambda: {
                "modes": {mode: throughput(token, n, mode) for mode in MODES},
                "floor_x2": floor_throughput(n, 2),
                "floor_x1": floor_throughput(n, 1),
                "dbos": dbos_peer(n),
            },
        )
        step("queries", lambda: {mode: query_counts(token, 50, mode) for mode in MODES})
        step(
            "lines",
            lambda: {
                mode: {
                    str(lines): {
                        "throughput": saga_throughput(
                            token, SIZES["growth_orders"], lines, 2, f"{mode} {lines} lines", mode
                        ),
                        "idle": idle_latency(token, 10, lines, mode),
                    }
                    for lines in (1, 5, 20)
                }
                for mode in MODES
            },
        )
        step("burst", lambda: {mode: burst(token, SIZES["burst_orders"], mode) for mode in MODES})
        step("recovery", lambda: {mode: recovery(token, SIZES["recovery_orders"], mode) for mode in MODES})
        step("profiles", lambda: profiles(token))
        step("metrics_scrape", metrics_scrape.figure)  # last: it leaves a million generated steps behind
    finally:
        web.stop()
    results["total_seconds"] = round(time.monotonic() - STARTED, 1)
    out.write_text(json.dumps(results, indent=2, default=str))
    progress(f"done in {results['total_seconds']}s: {out}")


if __name__ == "__main__":
    main()

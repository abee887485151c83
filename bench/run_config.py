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
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime
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
from bench import bare, floor  # noqa: E402
from bench.load import build_request, percentile_ms, request_once, run_load  # noqa: E402
from bench.procs import SHOP_QUEUES, RssSampler, SupervisedWorker, gunicorn  # noqa: E402
from bench.settings import BENCH_DIR  # noqa: E402
from orders.models import TERMINAL_STATUSES, Order, Status  # noqa: E402
from sagas.models import SagaStep  # noqa: E402
from shop.models import Product  # noqa: E402

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
    "saturation_clients": _int("BENCH_SATURATION", 8),  # gunicorn's 4 workers x 2 threads
}
POOL = 100  # products that orders buy from (stock never runs out)
STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{CONFIG:8} {time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


def base_env() -> dict[str, str]:
    return dict(os.environ) | {"DJANGO_SETTINGS_MODULE": "bench.settings", "RATE_LIMITS": "off"}


def floor_env() -> dict[str, str]:
    # Nothing of the shop's configuration: no Django, no CELERY_* (e.g. the django-db backend).
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE" and not k.startswith("CELERY_")}
    return env | {"BENCH_FLOOR_BROKER": settings.CELERY_BROKER_URL, "BENCH_FLOOR_DB": os.environ["DATABASE_URL"]}


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
    user = get_user_model().objects.create_user(username="bench", password="bench-password-2026")
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


def purge_shop_queues() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        for queue in settings.SHOP_QUEUES:
            with contextlib.suppress(Exception):  # the queue may not exist yet
                conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


# --- orders ----------------------------------------------------------------------------------

ADDRESS = {"name": "Bench Buyer", "line1": "1 Loop Road", "city": "Localhost", "postal_code": "12345", "country": "DE"}


def order_body(rng: random.Random, lines: int) -> dict[str, Any]:
    skus = rng.sample([f"BENCH-P{i:04d}" for i in range(POOL)], lines)
    return {
        "items": [{"sku": s, "quantity": 1} for s in skus],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
    }


def order_requests(token: str, lines: int = 1, variants: int = 200) -> list[bytes]:
    rng = random.Random(lines)
    auth = {"Authorization": f"Token {token}"}
    return [build_request("POST", "/api/orders/", PORT, order_body(rng, lines), auth) for _ in range(variants)]


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


def saga_throughput(token: str, orders: int, lines: int, workers: int, label: str) -> dict[str, Any]:
    """Orders placed through the API (8 clients) per second until every one is ``completed``."""
    worker = SupervisedWorker("config", SHOP_QUEUES, workers, base_env(), LOG_DIR / f"{CONFIG}-worker.log")
    try:
        since = timezone.now()
        started = time.monotonic()
        posted, _ = run_load(
            PORT, order_requests(token, lines), concurrency=SIZES["saturation_clients"], count=orders, duration=600
        )
        accepted = posted.statuses.get(201, 0)
        progress(f"{label}: {accepted} orders accepted in {posted.elapsed:.1f}s, waiting for their sagas")
        done, statuses, _ = wait_for_orders(
            since, accepted, worker, timeout=max(120.0, orders * lines * 0.5), label=label
        )
    finally:
        worker.stop()
    elapsed = done - started
    completed = statuses.get(Status.COMPLETED, 0)
    result = {
        "orders": orders,
        "accepted": accepted,
        "lines": lines,
        "workers": workers,
        "completed": completed,
        "statuses": statuses,
        "worker_crashes": worker.crashes,
        "elapsed_s": round(elapsed, 2),
        "orders_per_s": round(completed / elapsed, 2),
        "lines_per_s": round(completed * lines / elapsed, 2),
    }
    progress(f"{label}: {result['orders_per_s']} orders/s ({completed} completed in {elapsed:.1f}s)")
    return result


def floor_throughput(chains: int, workers: int) -> dict[str, Any]:
    """Bare Celery: ``chains`` chains of four one-insert tasks, sent and run to their last step."""
    worker = SupervisedWorker("bench.floor", floor.QUEUE, workers, floor_env(), LOG_DIR / f"{CONFIG}-floor-worker.log")
    run = uuid.uuid4().hex
    try:
        started = time.monotonic()
        for n in range(chains):
            floor.send_chain(run, n)
        deadline = started + max(120.0, chains * 0.5)
        while (finished := floor.finished(run)) < chains and time.monotonic() < deadline:
            worker.check()
            time.sleep(0.1)
        elapsed = time.monotonic() - started
    finally:
        worker.stop()
    result = {
        "chains": chains,
        "workers": workers,
        "finished": finished,
        "elapsed_s": round(elapsed, 2),
        "chains_per_s": round(finished / elapsed, 2),
    }
    progress(f"floor x{workers}: {result['chains_per_s']} chains/s ({finished} in {elapsed:.1f}s)")
    return result


def floor_idle(count: int) -> dict[str, Any]:
    """One bare chain at a time, from sending it until its fourth insert is visible."""
    worker = SupervisedWorker("bench.floor", floor.QUEUE, 2, floor_env(), LOG_DIR / f"{CONFIG}-floor-worker.log")
    run = uuid.uuid4().hex
    took: list[float] = []
    try:
        for n in range(count):
            time.sleep(0.05)
            started = time.perf_counter()
            floor.send_chain(run, n)
            while floor.finished(run) <= n and time.perf_counter() < started + 10 and worker.service.alive():
                time.sleep(0.002)
            if floor.finished(run) > n:
                took.append(time.perf_counter() - started)
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


def idle_latency(token: str, count: int, lines: int = 1) -> dict[str, Any]:
    """One order at a time: POST, then watch the database until it is ``completed``."""
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, base_env(), LOG_DIR / f"{CONFIG}-worker.log")
    requests = order_requests(token, lines, variants=count)
    e2e: list[float] = []
    post: list[float] = []
    order_ids: list[str] = []
    try:
        for n in range(count):
            worker.check()
            time.sleep(0.05)  # let the worker go idle
            started = time.perf_counter()
            code, body = request_once(PORT, requests[n])
            posted = time.perf_counter()
            if code != 201:
                progress(f"idle: POST answered {code}: {body[:200]!r}")
                continue
            order_id = json.loads(body)["id"]
            deadline = started + 30
            status = None
            while time.perf_counter() < deadline and worker.service.alive():
                status = Order.objects.filter(pk=order_id).values_list("status", flat=True).first()
                if status in TERMINAL_STATUSES:
                    break
                time.sleep(0.002)
            if status == Status.COMPLETED:
                e2e.append(time.perf_counter() - started)
                post.append(posted - started)
                order_ids.append(order_id)
    finally:
        worker.stop()
    result = {
        "orders": count,
        "lines": lines,
        "completed": len(e2e),
        "e2e_p50_ms": percentile_ms(e2e, 50),
        "e2e_p99_ms": percentile_ms(e2e, 99),
        "post_p50_ms": percentile_ms(post, 50),
        "worker_crashes": worker.crashes,
        "breakdown_ms": saga_breakdown(order_ids),
    }
    progress(f"idle x{lines} line(s): e2e p50 {result['e2e_p50_ms']} ms, p99 {result['e2e_p99_ms']} ms")
    return result


def saga_breakdown(order_ids: list[str]) -> dict[str, float]:
    """Where an idle saga's time goes, from the steps' own timestamps (mean ms per segment)."""
    segments: dict[str, list[float]] = {}

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
        add("placed -> first reserve starts (commit, publish, delivery)", order.created_at, reserve_start)
        add("reserve lines (in task)", reserve_start, reserve_end)
        if charge:
            add("reserved -> charge starts (chord join or chain: 1 hop)", reserve_end, charge.started_at)
            add("charge (in task)", charge.started_at, charge.finished_at)
        if charge and ship:
            add("charged -> ship starts (1 hop)", charge.finished_at, ship.started_at)
            add("ship (in task)", ship.started_at, ship.finished_at)
        if ship and order.status == Status.COMPLETED:
            add("total: placed -> completed (server side)", order.created_at, ship.finished_at)
    return {name: round(statistics.fmean(values), 2) for name, values in segments.items()}


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


def burst(token: str, orders: int) -> dict[str, Any]:
    worker = SupervisedWorker("config", SHOP_QUEUES, 2, base_env(), LOG_DIR / f"{CONFIG}-worker.log")
    try:
        with RssSampler(worker, interval=1.0) as sampler:
            since = timezone.now()
            started = time.monotonic()
            posted, _ = run_load(
                PORT, order_requests(token), concurrency=SIZES["saturation_clients"], count=orders, duration=900
            )
            accepted = posted.statuses.get(201, 0)
            progress(f"burst: {accepted}/{orders} accepted in {posted.elapsed:.1f}s")
            done, statuses, _ = wait_for_orders(
                since, accepted, worker, timeout=max(300.0, orders * 0.5), label="burst"
            )
    finally:
        worker.stop()
    samples = sampler.samples
    mb = [rss / 2**20 for _, rss in samples]
    tenth = max(1, len(mb) // 10)
    terminal = sum(n for s, n in statuses.items() if s in TERMINAL_STATUSES)
    result = {
        "orders": orders,
        "accepted": accepted,
        "terminal": terminal,
        "lost": accepted - terminal,
        "statuses": statuses,
        "worker_crashes": worker.crashes,
        "elapsed_s": round(done - started, 1),
        "orders_per_s": round(terminal / (done - started), 2),
        "rss_mb_first_10pct": round(statistics.median(mb[tenth : 2 * tenth] or mb[:tenth]), 1),
        "rss_mb_last_10pct": round(statistics.median(mb[-tenth:]), 1),
        "rss_mb_peak": round(max(mb), 1),
        "rss_samples": [(round(t, 1), round(rss / 2**20, 1)) for t, rss in samples],
    }
    progress(
        f"burst: {terminal}/{accepted} terminal in {result['elapsed_s']}s; worker RSS "
        f"{result['rss_mb_first_10pct']} -> {result['rss_mb_last_10pct']} MB (peak {result['rss_mb_peak']})"
    )
    return result


# --- profiles --------------------------------------------------------------------------------


def profiles(token: str) -> dict[str, Any]:
    from bench import profile

    PROFILE_DIR.mkdir(parents=True, exist_ok=True)
    result = profile.run(token=token, config=CONFIG, out_dir=PROFILE_DIR)
    purge_shop_queues()  # the profiled POSTs sent sagas that no worker runs
    progress(f"profiles written to {PROFILE_DIR}")
    return result


# --- main ------------------------------------------------------------------------------------


ONLY = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}


def main() -> None:
    # BENCH_ONLY=throughput,idle runs some figures (for profiling); the report keeps the full run.
    out = BENCH_DIR / (f"results-{CONFIG}-partial.json" if ONLY else f"results-{CONFIG}.json")
    results: dict[str, Any] = {"config": CONFIG, "sizes": SIZES, "started": timezone.now().isoformat()}
    results["database"] = connection.vendor
    results["broker"] = settings.CELERY_BROKER_URL.split("://")[0]
    results["result_backend"] = settings.CELERY_RESULT_BACKEND.split("://")[0]
    token = setup()
    web = gunicorn(PORT, base_env(), LOG_DIR / f"{CONFIG}-gunicorn.log")

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
        purge_shop_queues()  # the orders of the latency runs are left pending: no worker ran
        step("idle", lambda: idle_latency(token, SIZES["idle_orders"]) | {"floor": floor_idle(SIZES["idle_orders"])})
        step(
            "throughput",
            lambda: {
                "shop_x2": saga_throughput(token, n, 1, 2, "saga x2"),
                "floor_x2": floor_throughput(n, 2),
                "shop_x1": saga_throughput(token, n, 1, 1, "saga x1"),
                "floor_x1": floor_throughput(n, 1),
            },
        )
        step(
            "lines",
            lambda: {
                str(lines): {
                    "throughput": saga_throughput(token, SIZES["growth_orders"], lines, 2, f"{lines} lines"),
                    "idle": idle_latency(token, 10, lines),
                }
                for lines in (1, 5, 20)
            },
        )
        step("burst", lambda: burst(token, SIZES["burst_orders"]))
        step("profiles", lambda: profiles(token))
    finally:
        web.stop()
    results["total_seconds"] = round(time.monotonic() - STARTED, 1)
    out.write_text(json.dumps(results, indent=2, default=str))
    progress(f"done in {results['total_seconds']}s: {out}")


if __name__ == "__main__":
    main()

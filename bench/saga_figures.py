"""The saga's figures, in each coordination mode: throughput (and its cost per order), latency of
one order at a time, a paced load at capacity, a burst, and recovery from a killed worker.
"""

import json
import statistics
import time
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from bench import systems
from bench.configuration import CONFIG, IDLE_LOOK_SECONDS, LOG_DIR, MODES, PORT, SHOP_QUEUES, SIZES, base_env, progress
from bench.counts import OwnQueries, completed_at, idle_commit_rate, per_order_figures, pg_stats, saga_breakdown
from bench.load import percentile_ms, request_once, run_load, run_paced
from bench.procs import RssSampler, SupervisedWorker
from bench.systems import settle, statuses_since, wait_for_orders
from bench.workload import order_requests
from orders.models import TERMINAL_STATUSES, Order, Status


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
            cpu_before = worker.cpu_seconds(), systems.WEB.cpu_seconds()
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
            cpu = worker.cpu_seconds() - cpu_before[0], systems.WEB.cpu_seconds() - cpu_before[1]
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
# event counted lost after 5 s instead of EVENTS_REDELIVER_AFTER_SECONDS, once its queue has
# moved past it: the heartbeats beat sends (every 15 s, good for 60 s) are sent every half second
# too, good for 2 s (HEALTH_WORKER_STALE_SECONDS, core.selectors.queues_moved_past).
RECOVERY_WORKER_ENV = {"SAGA_STEP_LEASE_SECONDS": "3", "CELERY_VISIBILITY_TIMEOUT": "5"}

RECOVERY_STALL_SECONDS = 2.0

RECOVERY_REDELIVER_SECONDS = 5.0

RECOVERY_SWEEP_SECONDS = 0.5

RECOVERY_HEARTBEAT_EXPIRY = 2.0

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
    """What beat runs to recover from a crash, with the short delays above: the sweeper, the
    queues' heartbeats, and the redelivery of events delivered but never handled (those their
    queue has moved past). Returns (sagas re-driven, events sent again)."""
    from django.test.utils import override_settings

    from core.tasks import heartbeats_send
    from events.services import events_redeliver_unhandled
    from orders.services import saga_recover_stalled

    with override_settings(SAGA_STALL_SECONDS=RECOVERY_STALL_SECONDS):
        redriven = len(saga_recover_stalled().redriven)
    heartbeats_send(expires=RECOVERY_HEARTBEAT_EXPIRY)
    with override_settings(HEALTH_WORKER_STALE_SECONDS=RECOVERY_HEARTBEAT_EXPIRY):
        redelivered = events_redeliver_unhandled(
            after=timedelta(seconds=RECOVERY_REDELIVER_SECONDS), within=timedelta(hours=1)
        )
    return redriven, redelivered


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

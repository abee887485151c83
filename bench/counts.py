"""Counting what the shop did: the database's own counters (commits, rows written per table), SQL
statements per order (the POST's and the worker's), outbox messages and journal lines per
order, queries per page, and where an idle saga's time goes.
"""

import json
import random
import shutil
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from bench.configuration import CONFIG, LOG_DIR, SHOP_QUEUES, base_env, progress
from bench.procs import SupervisedWorker
from bench.settings import BENCH_DIR
from bench.systems import settle, wait_for_orders
from bench.workload import order_body
from orders.models import Order, OrderEvent, Status
from outbox.models import OutboxMessage
from sagas.models import SagaStep


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
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del, n_tup_upd - n_tup_hot_upd FROM pg_stat_user_tables"
        )
        rows = cursor.fetchall()
    tables = {name: int(n) for name, n, _ in rows}
    # Updates that wrote index entries (not HOT: an indexed column moved, or no room on the page).
    indexed = {name: int(n) for name, _, n in rows}
    return {
        "at": time.monotonic(),
        "commits": int(commits),
        "inserted": int(inserted),
        "updated": int(updated),
        "deleted": int(deleted),
        "tables": tables,
        "indexed_updates": indexed,
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
        "indexed_updates_by_table": {
            t: round((v - before["indexed_updates"].get(t, 0)) / n, 2)
            for t, v in sorted(after["indexed_updates"].items())
            if (v - before["indexed_updates"].get(t, 0)) / n >= 0.05
        },
    }
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

    first_messages: dict[str, tuple[datetime, datetime | None]] = {}
    sent = OutboxMessage.objects.filter(shard__in=[str(pk) for pk in order_ids]).order_by("created_at", "id")
    for shard, written_at, sent_at in sent.values_list("shard", "created_at", "sent_at"):
        first_messages.setdefault(shard, (written_at, sent_at))
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
        first = first_messages.get(str(order.pk))
        if first:
            add("  placed -> first message written (the rest of the POST's transaction)", order.created_at, first[0])
            add("  written -> published (commit, the relay's wake and round)", first[0], first[1])
            add("  published -> first reserve starts (delivery, the task's claim)", first[1], reserve_start)
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

"""Measures the DBOS peer (``bench.peers.dbos_saga``) inside ``make bench``'s PostgreSQL run.

Same shape as the shop's throughput figure: ``orders`` one-line orders placed by 8 concurrent
clients while ``workers`` worker processes run them; the clock runs from the first placement
until every order is terminal. ``driver="queue"`` places them from 8 threads of this process
(order row + queue entry in one transaction, no HTTP); ``driver="http"`` sends them through
``POST /orders/`` to gunicorn (``config/gunicorn.py``: 4 x 2, as the shop) on ``PORT``.
The database's own counters give the commits and rows written per order.
"""

import os
import random
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

from bench.load import build_request, run_load
from bench.peers import dbos_saga
from bench.procs import Service, gunicorn

PORT = 8102
CLIENTS = 8
STALL_SECONDS = 20.0


def _stats(url: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        commits, ins, upd, dele = conn.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database"
            " WHERE datname = current_database()"
        ).fetchone()  # type: ignore[misc]
        tables = {
            f"{schema}.{name}": int(n)
            for schema, name, n in conn.execute(
                "SELECT schemaname, relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
            ).fetchall()
        }
    return {"at": time.monotonic(), "commits": int(commits), "rows": int(ins) + int(upd) + int(dele),
            "inserted": int(ins), "updated": int(upd), "deleted": int(dele), "tables": tables}  # fmt: skip


def _settled_stats(url: str) -> dict[str, Any]:
    time.sleep(1.5)  # backends report their counters at most once a second (PGSTAT_MIN_INTERVAL)
    return _stats(url)


def start_workers(workers: int, env: dict[str, str], log_path: Path) -> list[Service]:
    services = []
    for n in range(workers):
        argv = [sys.executable, "-m", "bench.peers.dbos_saga"]
        worker_env = env | {"BENCH_DBOS_EXECUTOR": f"bench-{n}-{uuid.uuid4().hex[:8]}"}
        services.append(Service(f"dbos worker {n}", argv, worker_env, log_path).start())
    for service in services:
        service.wait_for_log(" ready.")
    return services


def start_web(env: dict[str, str], log_path: Path) -> Service:
    return gunicorn(PORT, env, log_path, app="bench.peers.dbos_saga:app")


def throughput(orders: int, workers: int, driver: str, env: dict[str, str], log_dir: Path) -> dict[str, Any]:
    url = env["BENCH_DBOS_DB"]
    services = start_workers(workers, env, log_dir / "dbos-worker.log")
    web = start_web(env, log_dir / "dbos-gunicorn.log") if driver == "http" else None
    run = uuid.uuid4().hex
    rng = random.Random(7)
    products = [rng.randrange(dbos_saga.PRODUCTS) for _ in range(orders)]
    own = 0  # this process's own statements in the window (each one a commit)
    try:
        time.sleep(1.0)
        idle_before = _settled_stats(url)
        time.sleep(3.0)
        idle_after = _settled_stats(url)
        idle_rate = (idle_after["commits"] - idle_before["commits"] - 1) / (idle_after["at"] - idle_before["at"])
        before = _stats(url)
        cpu_before = sum(service.cpu_seconds() for service in [*services, *([web] if web else [])])
        started = time.monotonic()
        if driver == "http":
            requests = [
                build_request("POST", "/orders/", PORT, {"run": run, "product": p, "token": "tok_visa"})
                for p in products[:200]
            ]
            posted, _ = run_load(PORT, requests, concurrency=CLIENTS, count=orders, duration=600)
            accepted = posted.statuses.get(201, 0)
        else:
            placer = dbos_saga.Placer()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(lambda p: placer.place(run, str(uuid.uuid4()), p, "tok_visa"), products))
            placer.close()
            accepted = orders
        placed_after = time.monotonic() - started
        last, best, statuses = time.monotonic(), -1, {}
        while True:
            statuses = dbos_saga.finished(run)
            own += 1
            done = statuses.get("completed", 0) + statuses.get("cancelled", 0)
            now = time.monotonic()
            if done > best:
                best, last = done, now
            if done >= accepted or now - last > STALL_SECONDS:
                break
            time.sleep(0.05)
        elapsed = last - started
        cpu = sum(service.cpu_seconds() for service in [*services, *([web] if web else [])]) - cpu_before
        after = _settled_stats(url)
    finally:
        if web is not None:
            web.stop()
        for service in services:
            service.stop()
    n = accepted or 1
    commits = after["commits"] - before["commits"] - own - 1
    window = after["at"] - before["at"]
    tables = {t: after["tables"].get(t, 0) - before["tables"].get(t, 0) for t in after["tables"]}
    completed = statuses.get("completed", 0)
    return {
        "dbos_version": metadata.version("dbos"),
        "driver": driver,
        "orders": orders,
        "accepted": accepted,
        "workers": workers,
        "worker_concurrency": dbos_saga.WORKER_CONCURRENCY,
        "polling_interval_s": dbos_saga.POLLING_SEC,
        "isolation": dbos_saga.ISOLATION,
        "completed": completed,
        "statuses": statuses,
        "placed_after_s": round(placed_after, 2),
        "elapsed_s": round(elapsed, 2),
        "orders_per_s": round(completed / elapsed, 2) if elapsed else None,
        "cpu_ms_per_order": round(1000 * cpu / max(completed, 1), 2),  # workers (+ gunicorn over HTTP)
        "per_order": {
            "commits": round(commits / n, 2),
            "commits_net_of_idle_polling": round((commits - idle_rate * window) / n, 2),
            "idle_commits_per_s": round(idle_rate, 1),
            "rows_written": round((after["rows"] - before["rows"]) / n, 2),
            "rows_inserted": round((after["inserted"] - before["inserted"]) / n, 2),
            "rows_updated": round((after["updated"] - before["updated"]) / n, 2),
            "rows_deleted": round((after["deleted"] - before["deleted"]) / n, 2),
            "rows_written_by_table": {
                t: round(v / n, 2) for t, v in sorted(tables.items(), key=lambda kv: -kv[1]) if v / n >= 0.05
            },
        },
    }


def compensation_check(env: dict[str, str], log_dir: Path) -> dict[str, Any]:
    """A few declined orders: each must end ``cancelled`` with its stock given back."""
    services = start_workers(1, env, log_dir / "dbos-worker.log")
    run = uuid.uuid4().hex
    try:
        stock_before = dbos_saga.product_stock([0, 1])
        placer = dbos_saga.Placer()
        for n in range(6):
            placer.place(run, str(uuid.uuid4()), n % 2, "tok_decline" if n % 2 else "tok_visa")
        placer.close()
        deadline = time.monotonic() + 30
        statuses: dict[str, int] = {}
        while sum(statuses.values()) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
            statuses = {k: v for k, v in dbos_saga.finished(run).items() if k in ("completed", "cancelled")}
        stock_after = dbos_saga.product_stock([0, 1])
    finally:
        for service in services:
            service.stop()
    ok = statuses == {"completed": 3, "cancelled": 3} and stock_after[1] == stock_before[1]
    return {"statuses": statuses, "declined_stock_given_back": stock_after[1] == stock_before[1], "ok": ok}


def reset(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {database}")


def drop(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


if __name__ == "__main__":  # a quick look outside `make bench`: python -m bench.peers.run [orders] [driver]
    os.environ.setdefault("BENCH_DBOS_DB", "postgres://postgres@127.0.0.1:5432/bench_dbos")
    dbos_saga.DB_URL = os.environ["BENCH_DBOS_DB"]
    dbos_saga.create_schema()
    import json

    print(json.dumps(compensation_check(dict(os.environ), Path("var/bench/logs")), indent=2))
    orders = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    driver = sys.argv[2] if len(sys.argv) > 2 else "queue"
    result = throughput(orders, 2, driver, dict(os.environ), Path("var/bench/logs"))
    print(json.dumps(result, indent=2))

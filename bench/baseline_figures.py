"""The baselines each saga figure stands beside: bare Celery chains (``bench/floor.py``) and the
same saga on DBOS Transact (``bench/peers/``).
"""

import json
import os
import time
import uuid
from typing import Any

from django.db import connection

from bench import floor
from bench.configuration import CONFIG, IDLE_LOOK_SECONDS, LOG_DIR, floor_env, peer_env, progress
from bench.load import percentile_ms
from bench.procs import SupervisedWorker


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

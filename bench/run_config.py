"""Every measurement on one configuration (PostgreSQL + Redis, or the embedded default).

``python -m bench`` runs this module once per configuration, in a process of its own whose
environment points the shop at that configuration's private database and broker; the results
go to ``var/bench/results-<config>.json``. This module runs the figures in turn; what each
measures is in its own module:

- ``bench/configuration.py``: which configuration, its sizes and modes, the processes' environments;
- ``bench/systems.py``: the database, catalog and queues set up, and waiting for the orders to finish;
- ``bench/workload.py``: the orders the bench posts;
- ``bench/saga_figures.py``, ``bench/web_figures.py``, ``bench/baseline_figures.py``: the figures;
- ``bench/counts.py``: statements, rows, commits and journal lines per order.

They use the shop's models, so they are imported here, once Django is set up.
"""

import json
import os
import time
from collections.abc import Callable
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import metrics_scrape, systems  # noqa: E402
from bench.baseline_figures import dbos_peer, floor_idle, floor_throughput  # noqa: E402
from bench.configuration import CONFIG, LOG_DIR, MODES, ONLY, PORT, SIZES, STARTED, base_env, progress  # noqa: E402
from bench.counts import query_counts  # noqa: E402
from bench.procs import gunicorn  # noqa: E402
from bench.saga_figures import burst, idle_latency, recovery, saga_throughput, throughput  # noqa: E402
from bench.settings import BENCH_DIR  # noqa: E402
from bench.systems import set_aside_unstarted_orders, setup  # noqa: E402
from bench.web_figures import catalog, profiles, web_latency  # noqa: E402


def main() -> None:
    # BENCH_ONLY=throughput,idle runs some figures (for profiling); the report keeps the full run.
    out = BENCH_DIR / (f"results-{CONFIG}-partial.json" if ONLY else f"results-{CONFIG}.json")
    results: dict[str, Any] = {"config": CONFIG, "sizes": SIZES, "started": timezone.now().isoformat()}
    results["database"] = connection.vendor
    results["broker"] = settings.CELERY_BROKER_URL.split("://")[0]
    results["result_backend"] = settings.CELERY_RESULT_BACKEND.split("://")[0]
    token = setup()
    web = systems.WEB = gunicorn(PORT, base_env(), LOG_DIR / f"{CONFIG}-gunicorn.log")

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

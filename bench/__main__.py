"""``python -m bench`` (what ``make bench`` runs): every figure on both configurations, then the report.

    python -m bench                      # PostgreSQL + Redis, then the embedded default
    python -m bench --config embedded    # one configuration only
    python -m bench --report-only        # rewrite docs/ from the last results

Sizes come from the environment (defaults in brackets): BENCH_ORDERS [300] orders per throughput
run, BENCH_GROWTH_ORDERS [100] per order-size run, BENCH_BURST [2000] orders in the burst,
BENCH_IDLE [40] idle orders, BENCH_PRODUCTS [10000], BENCH_LOAD_SECONDS [4] per load level,
BENCH_LOAD_LEVELS [1,2,4,8,16] concurrent clients, BENCH_RECOVERY [100] orders in flight when the
worker is killed. Every saga figure (idle, throughput, lines, burst, recovery) runs once per
coordination mode, orchestration then choreography. BENCH_ONLY=throughput,idle runs only those
figures (catalog, web_latency, idle, throughput, lines, burst, recovery, profiles, metrics_scrape) into
results-*-partial.json, for profiling; the report is written from full runs only.

Everything it touches is its own: the PostgreSQL databases ``bench_shop`` and ``bench_dbos`` (the
DBOS peer's, ``bench/peers/``; both dropped and created), Redis DBs 12 and 13 (broker, results),
files under ``var/bench/``, ports 8100, 8101 and 8102 (the peer's HTTP front).
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "var" / "bench"
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/bench_shop")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
# The broker's and the result backend's databases, flushed by each run: BENCH_REDIS_DBS=2,3 keeps a
# bench apart from a test run that uses 12 and 13 (SHOP_TEST_REDIS_BASE).
REDIS_DBS = tuple(int(db) for db in os.environ.get("BENCH_REDIS_DBS", "12,13").split(","))
PG_DATABASE = "bench_shop"
DBOS_DATABASE = "bench_dbos"
DBOS_URL = os.environ.get("BENCH_DBOS_DB", f"postgres://postgres@127.0.0.1:5432/{DBOS_DATABASE}")


def postgres_env() -> dict[str, str]:
    return {
        "DATABASE_URL": PG_URL,
        "CELERY_BROKER_URL": f"{REDIS}/{REDIS_DBS[0]}",
        "CELERY_RESULT_BACKEND": f"{REDIS}/{REDIS_DBS[1]}",
        "BENCH_PORT": "8100",
        "BENCH_DBOS_DB": DBOS_URL,
    }


def embedded_env() -> dict[str, str]:
    folder = BENCH_DIR / "embedded"
    return {
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "CELERY_BROKER_URL": f"filesystem://{folder / 'broker'}",
        "CELERY_RESULT_BACKEND": "django-db",
        "BENCH_PORT": "8101",
    }


def reset_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for database in (PG_DATABASE, DBOS_DATABASE):
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {database}")


def drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        for database in (PG_DATABASE, DBOS_DATABASE):
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def reset_redis() -> None:
    import redis

    for db in REDIS_DBS:
        redis.Redis.from_url(f"{REDIS}/{db}").flushdb()


def reset_postgres_and_redis() -> None:
    reset_postgres()
    reset_redis()


def reset_embedded() -> None:
    shutil.rmtree(BENCH_DIR / "embedded", ignore_errors=True)
    (BENCH_DIR / "embedded").mkdir(parents=True)


CONFIGS = {
    "postgres": ("PostgreSQL + Redis", postgres_env, reset_postgres_and_redis),
    "embedded": ("SQLite + kombu filesystem broker + django-db results", embedded_env, reset_embedded),
}


def run_config(name: str) -> int:
    title, make_env, reset = CONFIGS[name]
    print(f"\n=== {title} ===", flush=True)
    reset()
    env = os.environ | make_env() | {"BENCH_CONFIG": name, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    env["RATE_LIMITS"] = "off"
    env["BENCH_FLOOR_BROKER"] = env["CELERY_BROKER_URL"]
    env["BENCH_FLOOR_DB"] = env["DATABASE_URL"]
    # The benchmark's own process also serves as the load generator: keep it out of the way.
    completed = subprocess.run([sys.executable, "-m", "bench.run_config"], cwd=ROOT, env=env, check=False)
    if name == "postgres" and not os.environ.get("BENCH_KEEP_DB"):
        drop_postgres()
        reset_redis()
    return completed.returncode


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=["all", *CONFIGS], default="all")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    names = list(CONFIGS) if args.config == "all" else [args.config]
    failures = 0
    if not args.report_only:
        for name in names:
            failures += run_config(name) != 0
    wall = time.monotonic() - started
    if os.environ.get("BENCH_ONLY"):
        print(f"\npartial run: results in {BENCH_DIR}/results-*-partial.json; docs/ left as they are", flush=True)
        return 1 if failures else 0
    results: dict[str, Any] = {}
    for name in CONFIGS:
        path = BENCH_DIR / f"results-{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    if not results:
        print("no results to report", file=sys.stderr)
        return 1
    from bench import report

    command = "make bench" if os.environ.get("BENCH_VIA_MAKE") else shlex.join(["python", "-m", "bench", *sys.argv[1:]])
    sizes_env = {k: v for k, v in os.environ.items() if k.startswith("BENCH_") and k != "BENCH_VIA_MAKE"}
    report.write(results, command=command, env=sizes_env, wall_seconds=None if args.report_only else wall)
    print(f"\nwrote docs/benchmarks.md and docs/benchmarks.png; wall time {wall:.0f}s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

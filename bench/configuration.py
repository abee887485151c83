"""What a run on one configuration is: which one, its sizes, the coordination modes, and the
environments of the processes it starts (the shop's, the floor's, the peers').

``python -m bench`` starts ``bench.run_config`` once per configuration with ``BENCH_CONFIG`` and
``BENCH_PORT`` set and the shop's settings pointed at that configuration's database and broker.
"""

import os
import time
from typing import Any

from django.conf import settings

from bench import floor
from bench.settings import BENCH_DIR

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
# BENCH_ONLY=throughput,idle runs only those figures (for profiling), into results-<config>-partial.json.
ONLY = {name for name in os.environ.get("BENCH_ONLY", "").split(",") if name}


# How often an idle run looks whether the saga (or the chain) has finished. It takes the finish
# time from the server's own record (the journal's line for ``completed``, the chain's fourth
# insert), so the look only has to notice the end; looking every 2 ms, as this bench once did,
# was 500 queries a second from the bench itself, on the same 2 cores as what it measured.
IDLE_LOOK_SECONDS = 0.02


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


def check_floor_config() -> None:
    if floor.BROKER != settings.CELERY_BROKER_URL or os.environ["DATABASE_URL"] != floor.DB_URL:
        raise RuntimeError("run through `python -m bench`: the floor must use the shop's broker and database")

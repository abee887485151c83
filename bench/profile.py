"""Where the hot path spends its time: ``POST /api/orders/`` and one saga's steps, in process.

pyinstrument samples the request (through Django's full handler and middleware, including the
publish of the saga's first messages to the real broker) and each step of a saga (run eagerly
with ``Task.apply``: the task bodies, without the broker). Query counts per request and per
step come from ``CaptureQueriesContext``. Full call trees go to ``var/bench/profiles/``.
"""

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from pyinstrument import Profiler  # type: ignore[import-not-found,unused-ignore]
from rest_framework.test import APIClient

from config.celery import app
from orders.events import order_context
from orders.models import Order
from orders.plan import ORDER_SAGA

ROOT = Path(__file__).resolve().parents[1]
APPS = ("accounts", "core", "orders", "payments", "shipping", "shop", "config", "bench")

ADDRESS = {
    "name": "Profile Buyer",
    "line1": "1 Loop Road",
    "city": "Localhost",
    "postal_code": "12345",
    "country": "DE",
}


def _body(rng: random.Random, lines: int) -> dict[str, Any]:
    skus = rng.sample([f"BENCH-P{i:04d}" for i in range(100)], lines)
    return {
        "items": [{"sku": s, "quantity": 1} for s in skus],
        "shipping_address": ADDRESS,
        "payment_token": "tok_visa",
    }


def category(path: str) -> str:
    """Which layer a frame belongs to, from its file."""
    if "site-packages/" in path:
        package = path.split("site-packages/", 1)[1].split("/", 1)[0]
        if package.startswith("psycopg") or "django/db/backends" in path:
            return "database driver + round trips"
        if "django/db/models" in path:
            return "ORM (query building, model instances)"
        if package in ("kombu", "celery", "redis", "amqp", "billiard", "vine", "django_celery_results"):
            return "Celery / broker / result backend"
        if package in ("rest_framework", "drf_spectacular", "django_filters", "django_countries"):
            return "DRF (parsing, validation, serialization)"
        if package == "django":
            return "Django (handler, middleware, transactions, other)"
        return f"other library ({package})"
    if path.startswith(str(ROOT)):
        first = Path(path).relative_to(ROOT).parts[0]
        return f"shop code ({first})" if first in APPS else "other"
    if "sqlite3" in path:
        return "database driver + round trips"
    if "/json/" in path:
        return "DRF (parsing, validation, serialization)"
    return "Python standard library"


def self_time_by_category(profiler: Profiler) -> dict[str, float]:
    """Self time of every sampled frame, added up per layer, as a share of the total."""
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    totals: dict[str, float] = defaultdict(float)
    stack = [root] if root else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        if frame.is_synthetic:
            continue  # a "[self]" or "[await]" leaf: counted by its parent's total_self_time
        own = frame.total_self_time
        if own > 0:
            totals[category(frame.file_path or "")] += own
    whole = sum(totals.values()) or 1.0
    return {k: round(100 * v / whole, 1) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])}


def _queries_summary(captured: list[dict[str, Any]]) -> dict[str, int]:
    kinds: dict[str, int] = defaultdict(int)
    for query in captured:
        sql = query["sql"].lstrip().upper()
        verb = sql.split(" ", 1)[0]
        kinds[verb] += 1
    return dict(kinds)


def run(*, token: str, config: str, out_dir: Path) -> dict[str, Any]:
    rng = random.Random(99)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    result: dict[str, Any] = {"post_queries": {}, "step_queries": {}}

    # Queries of one POST, by order size.
    for lines in (1, 5, 20):
        with CaptureQueriesContext(connection) as ctx:
            response = client.post("/api/orders/", _body(rng, lines), format="json")
        assert response.status_code == 201, response.content
        result["post_queries"][str(lines)] = {
            "total": len(ctx.captured_queries),
            **_queries_summary(ctx.captured_queries),
        }

    # pyinstrument over many POSTs of one line.
    profiler = Profiler(interval=0.0005)
    profiler.start()
    order_ids = []
    for _ in range(60):
        response = client.post("/api/orders/", _body(rng, 1), format="json")
        order_ids.append(response.json()["id"])
    profiler.stop()
    (out_dir / f"{config}-post.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    result["post_self_time_pct"] = self_time_by_category(profiler)

    # One saga, step by step, eagerly: the task bodies without the broker (every app's tasks
    # imported, as a worker does at its start).
    app.loader.import_default_modules()

    def saga_steps(order_id: str, capture: bool) -> None:
        order = Order.objects.get(pk=order_id)
        lines = list(order.lines.order_by("id"))
        context = order_context(order, lines)
        steps: list[tuple[str, Any, tuple[Any, ...]]] = []
        for step in ORDER_SAGA.steps:  # the saga's plan: a step added there is profiled here too
            task = app.tasks[step.task]
            if step.per_line:
                steps += [
                    (f"{step.name} ({line.pk})", task, (order_id, context | {"lines": context["lines"][i : i + 1]}))
                    for i, line in enumerate(lines)
                ]
            else:
                steps.append((step.name, task, (order_id, context)))
        for name, task, args in steps:
            if capture:
                with CaptureQueriesContext(connection) as ctx:
                    task.apply(args=args, throw=True)
                key = f"{name.partition(' (')[0]} (per line)" if " (" in name else name
                result["step_queries"][key] = {
                    "total": len(ctx.captured_queries),
                    **_queries_summary(ctx.captured_queries),
                }
            else:
                task.apply(args=args, throw=True)

    saga_steps(order_ids[0], capture=True)
    result["step_queries"]["saga total (1 line)"] = {"total": sum(v["total"] for v in result["step_queries"].values())}
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for order_id in order_ids[1:41]:
        saga_steps(order_id, capture=False)
    profiler.stop()
    (out_dir / f"{config}-saga.txt").write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    result["saga_self_time_pct"] = self_time_by_category(profiler)
    (out_dir / f"{config}-summary.json").write_text(json.dumps(result, indent=2))
    return result

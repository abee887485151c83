"""The peer: the shop's saga (reserve stock, screen the order's risk, charge, ship; release the
stock when the screening rejects it or the charge is declined) on DBOS Transact, written the way
DBOS's docs recommend for throughput.

- One workflow per order, enqueued on a DBOS queue (``DBOS.register_queue``) with a per-process
  limit (``worker_concurrency``, which the docs recommend over a global limit) and a unique
  ``executor_id`` per process, as that limit requires.
- Each step is a datasource transaction (``SQLAlchemyDatasource.run_tx_step``): its effect and
  DBOS's checkpoint of its output commit in the same transaction, so a step runs exactly once.
  Isolation ``READ COMMITTED`` (the datasource's default is ``SERIALIZABLE``): every step is a
  conditional UPDATE or an INSERT keyed by the order, which needs no snapshot, and serializable
  transactions on the 100 hot product rows would fail and be retried under load.
- The queue is polled every ``POLLING_SEC`` (DBOS's default is 1 s; at 1 s a process can start at
  most ``worker_concurrency`` workflows a second).
- An order is placed the way DBOS's client does it from outside the application: the order row
  and the workflow's queue entry in one transaction (``DBOSClient.enqueue_in_transaction``), as
  the shop's POST writes the order and its outbox message together. ``place_orders`` does that
  from the benchmark's process (the queue-driven figure); ``app`` does it behind HTTP (the
  HTTP-driven figure, served by gunicorn like the shop).

Configured from the environment: ``BENCH_DBOS_DB`` (``postgres://…/bench_dbos``: application
tables and DBOS's system tables, in schema ``dbos``), ``BENCH_DBOS_EXECUTOR`` (a worker's id).
Run a worker with ``python -m bench.peers.dbos_saga``.
"""

import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa

APP = "bench_dbos"
QUEUE = "bench_orders"
WORKFLOW = "bench_order_saga"
WORKER_CONCURRENCY = int(os.environ.get("BENCH_DBOS_WORKER_CONCURRENCY", "32"))
POLLING_SEC = float(os.environ.get("BENCH_DBOS_POLLING_SEC", "0.02"))
ISOLATION = "READ COMMITTED"
DB_URL = os.environ.get("BENCH_DBOS_DB", "")
DECLINED_TOKEN = "tok_decline"  # the shop's simulated provider declines this token (payments/providers.py)
PRODUCTS = 100  # as the shop's pool: stock never runs out

SCHEMA = """
CREATE TABLE IF NOT EXISTS peer_product (id integer PRIMARY KEY, stock integer NOT NULL CHECK (stock >= 0));
CREATE TABLE IF NOT EXISTS peer_order (
    id text PRIMARY KEY, run text NOT NULL, product_id integer NOT NULL, token text NOT NULL,
    status text NOT NULL, created_at double precision NOT NULL, finished_at double precision);
CREATE INDEX IF NOT EXISTS peer_order_run ON peer_order (run, status);
CREATE TABLE IF NOT EXISTS peer_screening (order_id text PRIMARY KEY, outcome text NOT NULL);
CREATE TABLE IF NOT EXISTS peer_payment (order_id text PRIMARY KEY, status text NOT NULL);
CREATE TABLE IF NOT EXISTS peer_shipment (order_id text PRIMARY KEY, carrier_ref text NOT NULL);
"""


def sqlalchemy_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1]


# --- the saga (worker side) ------------------------------------------------------------------

_ds: Any = None


def _session() -> Any:
    return _ds.sql_session()


def _tx(name: str, func: Callable[..., Any], *args: Any) -> Any:
    return _ds.run_tx_step({"name": name, "isolation_level": ISOLATION}, func, *args)


def _reserve(order_id: str, product_id: int) -> bool:
    session = _session()
    taken = session.execute(
        sa.text("UPDATE peer_product SET stock = stock - 1 WHERE id = :p AND stock >= 1 RETURNING id"),
        {"p": product_id},
    ).first()
    session.execute(
        sa.text("UPDATE peer_order SET status = :s WHERE id = :o"),
        {"s": "reserved" if taken else "cancelled", "o": order_id},
    )
    return taken is not None


def _screen(order_id: str) -> bool:
    """The shop's risk step: the screening's outcome written with the order's progress (the
    benchmark's orders are all approved at once, as the shop's simulated screener approves them)."""
    session = _session()
    session.execute(sa.text("INSERT INTO peer_screening (order_id, outcome) VALUES (:o, 'approved')"), {"o": order_id})
    session.execute(sa.text("UPDATE peer_order SET status = 'screened' WHERE id = :o"), {"o": order_id})
    return True


def _charge(order_id: str, token: str) -> bool:
    charged = token != DECLINED_TOKEN
    session = _session()
    session.execute(
        sa.text("INSERT INTO peer_payment (order_id, status) VALUES (:o, :s)"),
        {"o": order_id, "s": "captured" if charged else "declined"},
    )
    session.execute(
        sa.text("UPDATE peer_order SET status = :s WHERE id = :o"),
        {"s": "charged" if charged else "charge_declined", "o": order_id},
    )
    return charged


def _release(order_id: str, product_id: int) -> None:
    session = _session()
    session.execute(sa.text("UPDATE peer_product SET stock = stock + 1 WHERE id = :p"), {"p": product_id})
    session.execute(
        sa.text("UPDATE peer_order SET status = 'cancelled', finished_at = :t WHERE id = :o"),
        {"o": order_id, "t": time.time()},
    )


def _ship(order_id: str) -> None:
    session = _session()
    session.execute(
        sa.text("INSERT INTO peer_shipment (order_id, carrier_ref) VALUES (:o, :r)"),
        {"o": order_id, "r": f"CARRIER-{order_id[:12]}"},
    )
    session.execute(
        sa.text("UPDATE peer_order SET status = 'completed', finished_at = :t WHERE id = :o"),
        {"o": order_id, "t": time.time()},
    )


def order_saga(order_id: str, product_id: int, token: str) -> str:
    if not _tx("reserve_stock", _reserve, order_id, product_id):
        return "cancelled"
    if not _tx("screen_order", _screen, order_id) or not _tx("charge_payment", _charge, order_id, token):
        _tx("release_stock", _release, order_id, product_id)
        return "cancelled"
    _tx("create_shipment", _ship, order_id)
    return "completed"


def worker() -> None:
    """A DBOS process that runs the queue's workflows until it is stopped."""
    global _ds
    from dbos import DBOS, DBOSConfig, SQLAlchemyDatasource

    executor = os.environ.get("BENCH_DBOS_EXECUTOR", f"bench-{os.getpid()}")
    config: DBOSConfig = {
        "name": APP,
        "system_database_url": DB_URL,
        "executor_id": executor,
        "application_version": "bench",
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.workflow(name=WORKFLOW)(order_saga)
    _ds = SQLAlchemyDatasource.create(sqlalchemy_url(DB_URL))
    DBOS.launch()
    DBOS.register_queue(
        QUEUE, worker_concurrency=WORKER_CONCURRENCY, polling_interval_sec=POLLING_SEC, on_conflict="always_update"
    )
    print(f"dbos worker {executor} ready.", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    DBOS.destroy(destroy_registry=True)


# --- placing orders (outside the application, as DBOS's client does) ------------------------


class Placer:
    """Writes an order row and its workflow's queue entry in one transaction."""

    def __init__(self) -> None:
        from dbos import DBOSClient

        self.engine = sa.create_engine(sqlalchemy_url(DB_URL), pool_size=8, pool_pre_ping=False)
        self.client = DBOSClient(system_database_engine=self.engine, application_name=APP)

    def place(self, run: str, order_id: str, product_id: int, token: str) -> None:
        options: Any = {
            "queue_name": QUEUE,
            "workflow_name": WORKFLOW,
            "workflow_id": order_id,
            "app_version": "bench",
            "application_name": APP,
        }
        with self.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO peer_order (id, run, product_id, token, status, created_at)"
                    " VALUES (:o, :r, :p, :t, 'pending', :c)"
                ),
                {"o": order_id, "r": run, "p": product_id, "t": token, "c": time.time()},
            )
            self.client.enqueue_in_transaction(conn, options, order_id, product_id, token)

    def close(self) -> None:
        self.client.destroy()
        self.engine.dispose()


def create_schema() -> None:
    """The application's tables and DBOS's own (its migrations), and the product pool."""
    from dbos import DBOSClient, SQLAlchemyDatasource

    engine = sa.create_engine(sqlalchemy_url(DB_URL))
    with engine.begin() as conn:
        for statement in filter(str.strip, SCHEMA.split(";")):
            conn.execute(sa.text(statement))
        conn.execute(
            sa.text("INSERT INTO peer_product (id, stock) SELECT g, 1000000000 FROM generate_series(0, :n) g"
                    " ON CONFLICT DO NOTHING"),
            {"n": PRODUCTS - 1},
        )  # fmt: skip
    engine.dispose()
    DBOSClient(system_database_url=DB_URL, application_name=APP).destroy()  # creates DBOS's system tables
    SQLAlchemyDatasource.migrate(sqlalchemy_url(DB_URL))


def finished(run: str) -> dict[str, int]:
    engine = _read_engine()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, count(*) FROM peer_order WHERE run = :r GROUP BY status"), {"r": run}
        ).all()
    return {status: int(n) for status, n in rows}


_engine: Any = None


def _read_engine() -> Any:
    global _engine
    if _engine is None:
        _engine = sa.create_engine(sqlalchemy_url(DB_URL), pool_size=2)
    return _engine


def product_stock(product_ids: Iterable[int]) -> dict[int, int]:
    with _read_engine().connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, stock FROM peer_product WHERE id = ANY(:ids)"), {"ids": list(product_ids)}
        ).all()
    return {int(i): int(s) for i, s in rows}


# --- HTTP (gunicorn serves ``bench.peers.dbos_saga:app``) -------------------------------------

_placer: Placer | None = None
_placer_lock = threading.Lock()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``POST /orders/`` with ``{"run", "product", "token"}``: places the order, answers 201."""
    global _placer
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]
    if environ.get("REQUEST_METHOD") != "POST":
        start_response("405 Method Not Allowed", [("Content-Length", "0")])
        return []
    with _placer_lock:
        if _placer is None:
            _placer = Placer()
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        body = json.loads(environ["wsgi.input"].read(length))
        run, product, token = str(body["run"]), int(body["product"]), str(body["token"])
    except (ValueError, KeyError, TypeError):
        start_response("400 Bad Request", [("Content-Length", "0")])
        return []
    order_id = str(uuid.uuid4())
    _placer.place(run, order_id, product % PRODUCTS, token)
    answer = json.dumps({"id": order_id, "status": "pending"}).encode()
    start_response("201 Created", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]


if __name__ == "__main__":
    if not DB_URL:
        sys.exit("set BENCH_DBOS_DB to the peer's database URL")
    worker()

"""The Celery application. Its settings live in Django settings under ``CELERY_``."""

import os
from typing import Any

from celery import Celery, signals
from celery.app.defaults import DEFAULTS

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
@signals.task_postrun.connect
def close_old_database_connections(task: Any = None, **kwargs: Any) -> None:
    """Treat each task like a web request: keep the connection for ``CONN_MAX_AGE``.

    Celery's Django fixup would close it before and after every task (``CELERY_DB_REUSE_MAX``
    turns that off), and a new PostgreSQL connection per task was a sixth of a worker's time.
    Django closes a connection that is broken, too old or left inside a transaction, and
    ``CONN_HEALTH_CHECKS`` tests a kept one before a task uses it, without a round trip while
    the server has said nothing on it (``core.connections``). A hop run in process
    (``outbox.nearby``) follows a task that has just used the connection, and is spared even
    that unless that task met a database error.
    """
    from django.db import close_old_connections, connections

    from core.connections import quiet_connections_trusted
    from outbox import nearby

    if task is None or task.request.is_eager:  # eager: inside the caller's transaction
        return
    if nearby.running() and not any(c.errors_occurred for c in connections.all(initialized_only=True)):
        return
    close_old_connections()
    quiet_connections_trusted()


@signals.task_prerun.connect
@signals.task_postrun.connect
def forget_the_last_tasks_log_fields(**kwargs: Any) -> None:
    """A pool process runs one task after another: the fields the last one bound for its log
    lines (``telemetry.context``) are not about the next one."""
    from telemetry.context import fields_clear

    fields_clear()


@signals.worker_init.connect
def publish_outbox_right_after_commit(**kwargs: Any) -> None:
    """Worker processes (the pool's children inherit this) publish what they commit at once."""
    from outbox.relay import publish_on_commit

    publish_on_commit(True)


@signals.worker_init.connect
def refuse_a_payment_provider_that_cannot_work(**kwargs: Any) -> None:
    """Celery runs Django's system checks at start-up but starts whatever they say: a worker
    that could charge nobody (``stripe`` without its key) stops here instead, with the check's
    message, rather than parking every order it is handed."""
    from django.core import checks

    from payments.checks import payment_provider_check

    errors = [m for m in payment_provider_check() if m.level >= checks.ERROR]
    if errors:
        # SystemExit: Celery's signals log an ordinary exception and carry on.
        raise SystemExit("; ".join(f"{m.id}: {m.msg}" for m in errors))


@signals.worker_init.connect
def read_the_celery_settings_once(**kwargs: Any) -> None:
    """Celery reads its settings at every publish and every task; each read tries the names
    under ``CELERY_`` in Django's settings first, and a setting left at its default answers
    with an ``AttributeError``, caught, several times over (9 µs a read, a fifth of a publish's
    CPU, measured; see bench/improvements.md). A worker's settings do not change while it
    runs: its processes (the pool's children inherit it) keep each value in Celery's own map.
    """
    keep_settings(app)


def keep_settings(celery_app: Celery) -> None:
    conf = celery_app.conf
    conf.update({key: conf[key] for key in DEFAULTS})  # every setting Celery knows


@signals.worker_ready.connect
def start_outbox_relay(**kwargs: Any) -> None:
    from outbox.relay import start_relay_thread

    start_relay_thread()


@signals.worker_shutdown.connect
def stop_outbox_relay(**kwargs: Any) -> None:
    from outbox.relay import stop_relay_thread

    stop_relay_thread()


@signals.setup_logging.connect
def configure_logging(**kwargs: Any) -> None:
    """Worker and beat log through Django's ``LOGGING`` (``telemetry.logs``): the fields of
    each line, and JSON with ``LOG_FORMAT=json``. Answering this signal keeps Celery from
    replacing the root logger's handlers with its own, and from logging stdout as warnings."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@signals.worker_init.connect
def trace_the_worker(**kwargs: Any) -> None:
    """In the main process, before the pool forks: its relay thread publishes too, and the
    pool's processes inherit the SDK (telemetry/tracing.py)."""
    from telemetry.tracing import tracing_setup

    tracing_setup(service_name="shop-worker")


@signals.beat_init.connect
def trace_beat(**kwargs: Any) -> None:
    from telemetry.tracing import tracing_setup

    tracing_setup(service_name="shop-beat")


@signals.worker_process_shutdown.connect
def export_the_last_spans(**kwargs: Any) -> None:
    """A pool process exits without running ``atexit``: what it batched would be lost."""
    from telemetry.tracing import tracing_flush

    tracing_flush()


@signals.before_task_publish.connect
def beat_ticks(sender: str | None = None, **kwargs: Any) -> None:
    """Only beat sends ``core.heartbeat`` (CELERY_BEAT_SCHEDULE): its sending is beat's tick,
    stamped in the database where ``/readyz`` reads it, whether or not a worker ever takes it."""
    if sender != "core.heartbeat":
        return
    from django.db import close_old_connections, connection

    from core.services import heartbeat_record

    if not connection.in_atomic_block:  # beat runs for months: a connection the database dropped is renewed
        close_old_connections()
    heartbeat_record(name="beat")


@signals.worker_init.connect
def run_hops_in_process(sender: Any = None, **kwargs: Any) -> None:
    """A message for a queue this worker consumes is run by the process that commits it, after
    the task that wrote it (``outbox.nearby``). Connected here, after the tracing's own
    receivers, so that a task has ended in every respect before the next one runs."""
    from outbox import nearby

    queues = sender.app.amqp.queues
    nearby.serve((queues.consume_from or queues).keys())
    signals.task_postrun.connect(nearby.run_waiting, weak=False)

"""Hops that stay in the process: a message whose queue this worker consumes is run here.

A saga's hop through the broker costs a publish, a delivery and a task's start, a few
milliseconds each, for a message that the very worker which wrote it would take. So a worker
process that commits a message for a queue it consumes runs it itself, right after the task
that wrote it (the default layout, one worker on every queue, runs a whole order this way; in
the scale-out layout, one worker per queue, only what stays on one queue does).

The row stays the durable record of the hop. It is written as every outbox row is, in the
transaction of the change it announces, but held back for a lease (``available_at`` is
``OUTBOX_LOCAL_LEASE_SECONDS`` ahead), and marked sent once it has run here: the rows one run of
the loop below ran are marked together when it ends (a whole order, in the default layout: one
statement and one commit instead of one per hop), or sooner once the first of them has waited a
quarter of the lease. A process that dies between the commit and the mark leaves it unsent: the
relay publishes it when the lease runs out, as it publishes any row, and the step it carries
finds in its rows what was already done (every step is idempotent). A hop delayed for a retry,
or a canvas (a chain, a group), goes through the broker as before. ``OUTBOX_LOCAL_HOPS=false``
sends every hop there.

Every message a transaction writes for a queue served here runs here, in two lines: the saga's
next hops (``next_hop``: a command to a saga's next step, an event to the step that hears it)
before the rest (an event's other subscribers: the owner's bookkeeping, the emails). So a saga
goes from step to step without waiting behind its side interactions, which run once its steps
in this process are done, in the order they were committed (the owner hears its events in
order). Sending the rest to the other processes instead, through the broker, cost a publish and
a delivery each, two per choreographed order (bench/improvements.md).

Messages that wait in the second line may go together: a task that takes several of its
messages at once (``run_together``: the events that one bookkeeping handler hears, such as the
orders service's moves of an order, each a transaction of its own otherwise) is handed all of
its messages waiting there, in order, and handles them in one transaction, or declines and has
them run one by one. Their rows are marked as any row run here.

Why not Celery's own ``apply()``: it runs a task eagerly, with no chain on its request and with
Celery's eager semantics; a hop here must look to the task exactly as its message would (its
chain, its retries, its queue), which ``build_tracer`` with the message's own request gives.
"""

import json
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from celery import current_app, signature, states, uuid
from celery.app.trace import build_tracer
from celery.canvas import Signature
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from outbox.models import mark_sent
from telemetry.context import continuing, fields_clear

logger = logging.getLogger(__name__)

CANVAS = frozenset({"celery.chain", "celery.group", "celery.chord", "celery.chord_unlock"})

_served: frozenset[str] = frozenset()  # the queues this worker consumes (none: not a worker)
_queue_of: dict[str, str] = {}  # task name → queue, as the router says
Waiting = deque[tuple[int, dict[str, Any], dict[str, Any], dict[str, Any]]]
_next_hops: Waiting = deque()  # commands to a saga's next step, events to the step that hears them
_the_rest: Waiting = deque()  # the others: an event's other subscribers (bookkeeping, emails)
_running = False
# task name → what takes several of its messages at once; it says whether it took them all
_together: dict[str, Callable[[list[dict[str, Any]]], bool]] = {}
_ran: list[int] = []  # rows run here and not marked sent yet
_ran_since = 0.0  # when the first of them ran (time.monotonic())


def serve(queues: Iterable[str]) -> None:
    """This process (and the pool's children it forks) consumes ``queues``."""
    global _served
    _served = frozenset(queues) if settings.OUTBOX_LOCAL_HOPS else frozenset()


def run_together(task: str, runner: Callable[[list[dict[str, Any]]], bool]) -> None:
    """``runner`` takes messages of ``task`` waiting in the second line several at once (in
    one transaction), or none of them: it returns whether it took them (``False``: each runs
    on its own, as it would have)."""
    _together[task] = runner


def runs_here(message: Signature[Any]) -> bool:
    """Whether ``message`` is a single task for a queue this worker consumes."""
    if not _served:
        return False
    task = message.get("task")
    if not task or task in CANVAS:
        return False
    queue = _queue_of.get(task)
    if queue is None:
        route = current_app.amqp.router.route({}, task)
        queue = _queue_of[task] = route["queue"].name
    return queue in _served


def run_after_task(
    pk: int, message: dict[str, Any], options: dict[str, Any], trace: dict[str, Any], *, next_hop: bool
) -> None:
    """Run the committed row ``pk`` here once the current task has ended (now, if none runs);
    a saga's ``next_hop`` before the rest."""
    # As the relay would send it: through JSON (a UUID or a Decimal arrives as a string).
    message, options = json.loads(json.dumps([message, options], cls=DjangoJSONEncoder))
    (_next_hops if next_hop else _the_rest).append((pk, message, options, trace))
    if current_app.current_worker_task is None:
        run_waiting()


def running() -> bool:
    """Whether this process is running hops in process now (their tasks' connection is warm)."""
    return _running


def run_waiting(**_: Any) -> None:
    """Run the rows waiting in this process, including the ones that they commit in turn
    (``task_postrun``: after the task that wrote them): the next hops first, in the order they
    were committed, then the rest, in that order too."""
    global _running
    if _running:
        return  # the loop below is already running them: this is one of its own tasks ending
    _running = True
    try:
        while _next_hops or _the_rest:
            if _next_hops:
                _run(*_next_hops.popleft())
            elif not _run_together():
                _run(*_the_rest.popleft())
            if _ran and time.monotonic() - _ran_since >= settings.OUTBOX_LOCAL_LEASE_SECONDS / 4:
                _mark_ran()
    finally:
        _running = False
        _mark_ran()


def _run_together() -> bool:
    """Hand the messages of the second line's first task to its ``run_together`` runner, when it
    has one and more than one message of it waits; whether they ran (together, or, declined,
    one by one, in their order: another task's messages between them belong to other services)."""
    task = str(_the_rest[0][1].get("task"))
    runner = _together.get(task)
    if runner is None:
        return False
    waiting = [item for item in _the_rest if item[1].get("task") == task]
    if len(waiting) < 2:
        return False
    for item in waiting:
        _the_rest.remove(item)
    try:
        with continuing(waiting[0][3]):
            taken = runner([message for _, message, _, _ in waiting])
    except Exception:
        logger.exception("Messages of %s could not be run together; each runs on its own", task)
        taken = False
    finally:
        fields_clear()  # as a task's end would: the next log line is not theirs
    if not taken:
        for item in waiting:
            _run(*item)
        return True
    _ran_here([pk for pk, _, _, _ in waiting])
    return True


def _mark_ran() -> None:
    """Mark the rows run here sent, in one statement, in autocommit: their hops have been taken."""
    ran = _ran[:]
    _ran.clear()
    mark_sent(ran)


def _run(pk: int, message: dict[str, Any], options: dict[str, Any], trace: dict[str, Any]) -> None:
    name = str(message.get("task"))
    try:
        outcome = _trace(pk, name, message, options, trace)
    except Exception:
        logger.exception("Outbox message %s (%s) could not be run in process", pk, name)
        outcome = None
    if outcome is None or (outcome.info is not None and outcome.info.state == states.FAILURE):
        # Not marked: the relay sends it through the broker once its lease is over.
        logger.warning("Outbox message %s (%s) failed in process; the relay sends it after its lease", pk, name)
        return
    _ran_here([pk])


def _ran_here(pks: list[int]) -> None:
    """Rows run here, to be marked sent (``_mark_ran``)."""
    global _ran_since
    if not _ran:
        _ran_since = time.monotonic()
    _ran.extend(pks)


def _trace(pk: int, name: str, message: dict[str, Any], options: dict[str, Any], trace: dict[str, Any]) -> Any:
    """Run the task as a worker runs a message: Celery's tracer (signals, the log line of its
    outcome), with the request the message would carry."""
    sig = signature(message, app=current_app)
    task, queue = current_app.tasks[name], _queue_of[name]
    execution = {**sig.options, **options}
    task_id = execution.get("task_id") or uuid()
    request = {
        "id": task_id,
        "task": name,
        "retries": execution.get("retries", 0),
        "chain": execution.get("chain"),
        "chord": execution.get("chord"),
        "headers": {},
        "ignore_result": True,
        # As the broker delivers it: published to the default exchange, routed by the queue's
        # name. A retry is addressed from this (``signature_from_request``): named after the
        # queue's own exchange instead, it would need that exchange's bindings, which a Redis
        # restarted without persistence no longer has (the retry would be dropped).
        "delivery_info": {"exchange": "", "routing_key": queue, "priority": None, "redelivered": False},
        "argsrepr": f"(outbox message {pk}, run in process)",
        "kwargsrepr": "{}",
    }
    tracer = build_tracer(name, task, eager=True, propagate=False, app=current_app)
    with continuing(trace):
        return tracer(task_id, list(sig.args), dict(sig.kwargs), request)

"""Writing to the outbox: the only way this project sends a Celery message.

A message is a row written in the caller's transaction, so it exists exactly when the state
change that sends it committed: no message for a rolled-back change, and no lost message when
the broker is down at commit time (the relay sends it once the broker is back).

Why not a package: the maintained Django outbox packages (django-outbox-pattern and its kin)
publish over STOMP to their own consumers; none carries Celery signatures (a chain with its
error callbacks) to kombu, which is what both coordination modes here need.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from celery.canvas import Signature
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.together import insert
from outbox import nearby, relay
from outbox.models import OutboxMessage
from telemetry.context import trace_carrier


def outbox_send(
    *,
    message: Signature[Any],
    shard: str,
    delay: float = 0.0,
    options: dict[str, Any] | None = None,
    next_hop: bool = False,
) -> OutboxMessage:
    """Queue ``message`` (a task signature, or a whole canvas) for the broker.

    Call it inside the transaction that makes the change the message announces; it refuses
    to run outside one. ``shard`` names the aggregate (an order id): one shard's messages are
    published in the order they became due. ``delay`` holds the message back (a retry's
    backoff). ``next_hop``: the message carries a saga on (a command to its next step, an event
    to the step that hears it); a worker that runs it in process runs it before the rest it has
    waiting (``outbox.nearby``). Side effect: after commit, a worker process publishes it at
    once; a web process never talks to the broker and leaves it to the relay. The row keeps the
    trace in progress, which the message continues when it is published.
    """
    return outbox_send_many(messages=[message], shard=shard, delay=delay, options=options, next_hops=[next_hop])[0]


def outbox_send_many(
    *,
    messages: Sequence[Signature[Any]],
    shard: str,
    delay: float = 0.0,
    options: dict[str, Any] | None = None,
    next_hops: Sequence[bool] | None = None,
) -> list[OutboxMessage]:
    """``outbox_send`` for several messages of one shard, in one ``INSERT`` (an event delivered
    to each of its subscribers): published in the order given. ``next_hops`` says, message by
    message, which carry a saga on (none, when not given). Their ids are set once they are
    written (at the end of a ``core.together`` block around the caller)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_send() belongs inside the transaction of the change it announces")
    now = timezone.now()
    available_at = now + timedelta(seconds=delay) if delay else now
    # A message this worker runs itself is held back for a lease: the relay's, should it die first.
    here = [not delay and nearby.runs_here(message) for message in messages]
    leased = now + timedelta(seconds=settings.OUTBOX_LOCAL_LEASE_SECONDS)
    trace_context = trace_carrier()
    rows = [
        OutboxMessage(
            shard=shard,
            name=_describe(message),
            message=dict(message),
            options=options or {},
            created_at=now,
            available_at=leased if runs_here else available_at,
            in_process=runs_here,
            trace_context=trace_context,
        )
        for message, runs_here in zip(messages, here, strict=True)
    ]
    insert(*rows)  # with the transaction's other rows, inside ``core.together``
    written = relay.written()
    for row, runs_here, next_hop in zip(rows, here, next_hops or [False] * len(rows), strict=True):
        written.add(row, here=runs_here, next_hop=next_hop)
    return rows


def _describe(message: Signature[Any]) -> str:
    task = message.get("task", "")
    if task == "celery.chain":
        return " → ".join(str(t.get("task", "")) for t in message["kwargs"]["tasks"])[:200]
    return str(task)[:200]

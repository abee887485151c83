"""How one saga step runs: its preconditions, its record in the database and its retries.

Every participant task (inventory, payments, shipping, orders) runs through ``run_step`` or
``run_compensation``. The database row of the step, read under the order's row lock, decides
whether the work is still to be done, so a message delivered twice, a retry and a re-drive by
the sweeper all have the effect of one run.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.retry import backoff_seconds
from orders.models import FORWARD_STATUSES, Order, Reason, SagaStep, Status
from orders.transitions import order_transition

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ForwardStep:
    name: str
    runs_in: Status  # the order status in which the step may run; in any other it is a no-op
    advances_to: Status | None = None
    gives_up_as: Reason | None = None  # the reason when transient errors outlast the retries
    # Its work only writes our own database: it commits with the step's record, all or nothing,
    # so no attempt is recorded before it runs (a remote call needs that record; see run_step).
    local: bool = False


@dataclass(frozen=True)
class Compensation:
    name: str
    undoes: ForwardStep


# Run once per line (``reserve_stock:<sku>``); the last line reserved moves the order on.
RESERVE_STOCK = ForwardStep("reserve_stock", runs_in=Status.PENDING, advances_to=Status.RESERVED, local=True)
CHARGE_PAYMENT = ForwardStep(
    "charge_payment", runs_in=Status.RESERVED, advances_to=Status.PAID, gives_up_as=Reason.PAYMENT_FAILED
)
# A shipment handed to the carrier completes the order (contract: ``completed``).
CREATE_SHIPMENT = ForwardStep(
    "create_shipment", runs_in=Status.PAID, advances_to=Status.COMPLETED, gives_up_as=Reason.SHIPPING_FAILED
)

RELEASE_STOCK = Compensation("release_stock", undoes=RESERVE_STOCK)
REFUND_PAYMENT = Compensation("refund_payment", undoes=CHARGE_PAYMENT)
CANCEL_SHIPMENT = Compensation("cancel_shipment", undoes=CREATE_SHIPMENT)


def line_step_name(step: ForwardStep, sku: str) -> str:
    return f"{step.name}:{sku}"


class StepFailed(Exception):
    """A step failed for good; raising it from the task fires the saga's error callback."""


class NotYetDone(Exception):
    """Something this step waits for is still running; retried shortly."""


# --- forward steps ---------------------------------------------------------------------------


def run_step(
    task: Task[Any, Any],
    *,
    order_id: str,
    step: ForwardStep,
    action: Callable[[Order], object],
    step_name: str | None = None,
    permanent: Mapping[type[Exception], Reason] | None = None,
) -> None:
    """Run ``action`` as ``step`` of the order's saga, at most once to success.

    A remote call commits the attempt before it runs, so a crash mid-call is seen (and the call
    repeated with its idempotency key, or compensated); a ``local`` step runs inside the
    transaction that records it. Exceptions listed in ``permanent`` fail the step at once and
    start compensation with their reason; any other exception is transient and retried with
    backoff, and fails the step with ``step.gives_up_as`` when the retries run out.
    """
    name = step_name or step.name
    try:
        if step.local:
            with transaction.atomic():
                order = _claim(order_id=order_id, name=name, runs_in=step.runs_in)
                if order is not None:
                    action(order)
                    _succeed(order, name=name, runs_in=step.runs_in, advances_to=step.advances_to)
            return
        order = _step_begin(order_id=order_id, name=name, runs_in=step.runs_in)
        if order is None:
            return
        action(order)
    except tuple(permanent or ()) as exc:
        reason = next(r for kind, r in (permanent or {}).items() if isinstance(exc, kind))
        _step_fail(order_id=order_id, name=name, error=str(exc), reason=reason)
        raise StepFailed(f"{name}: {exc}") from exc
    except Exception as exc:
        _retry_or_give_up(task, order_id=order_id, name=name, exc=exc, reason=step.gives_up_as)
    else:
        _step_succeed(order_id=order_id, name=name, runs_in=step.runs_in, advances_to=step.advances_to)


def _retry_or_give_up(task: Task[Any, Any], *, order_id: str, name: str, exc: Exception, reason: Reason | None) -> None:
    retries = task.request.retries
    if retries < settings.SAGA_MAX_RETRIES:
        _step_note_error(order_id=order_id, name=name, error=_describe(exc))
        raise task.retry(exc=exc, countdown=backoff_seconds(retries), max_retries=settings.SAGA_MAX_RETRIES)
    _step_fail(order_id=order_id, name=name, error=_describe(exc), reason=reason)
    raise StepFailed(f"{name} gave up after {retries + 1} attempts: {exc}") from exc


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _lock(order_id: str) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def _step_begin(*, order_id: str, name: str, runs_in: Status) -> Order | None:
    with transaction.atomic():
        order = _claim(order_id=order_id, name=name, runs_in=runs_in)
        if order is not None:
            _touch(order, timezone.now())
    return order


def _step_succeed(*, order_id: str, name: str, runs_in: Status, advances_to: Status | None) -> None:
    with transaction.atomic():
        _succeed(_lock(order_id), name=name, runs_in=runs_in, advances_to=advances_to)


def _claim(*, order_id: str, name: str, runs_in: Status) -> Order | None:
    """Lock the order and mark the step running; ``None`` when it must not run now."""
    order = _lock(order_id)
    if order.status != runs_in:
        return None  # done already, or the saga is compensating: nothing to do
    started = (
        SagaStep.objects.filter(order=order, name=name)
        .exclude(status=SagaStep.Status.SUCCEEDED)
        .update(status=SagaStep.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(), finished_at=None)
    )
    return order if started else None  # not started: a copy of this message already did it


def _succeed(order: Order, *, name: str, runs_in: Status, advances_to: Status | None) -> None:
    _finish(order, name, SagaStep.Status.SUCCEEDED, error="")
    step, per_line, _ = name.partition(":")
    if advances_to is None or order.status != runs_in or (per_line and _lines_left(order, step)):
        _touch(order, timezone.now())
    else:
        message = f"{step} succeeded for every line" if per_line else f"{step} succeeded"
        order_transition(order=order, to=advances_to, message=message)


def _lines_left(order: Order, step: str) -> bool:
    """Whether a line's run of ``step`` has yet to succeed (the lines run in parallel; the
    order's lock makes them take turns here, so exactly one of them sees none left)."""
    return order.steps.filter(name__startswith=f"{step}:").exclude(status=SagaStep.Status.SUCCEEDED).exists()


def _step_fail(*, order_id: str, name: str, error: str, reason: Reason | None) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        _finish(order, name, SagaStep.Status.FAILED, error=error)
        if reason is not None and order.status in FORWARD_STATUSES:
            order_transition(order=order, to=Status.COMPENSATING, reason=reason, message=f"{name} failed: {error}")
        else:
            _touch(order, timezone.now())


def _step_note_error(*, order_id: str, name: str, error: str) -> None:
    SagaStep.objects.filter(order_id=order_id, name=name).update(error=error)
    Order.objects.filter(pk=order_id).update(progressed_at=timezone.now())


def _finish(order: Order, name: str, status: SagaStep.Status, error: str) -> None:
    SagaStep.objects.filter(order=order, name=name).update(status=status, finished_at=timezone.now(), error=error)


def _touch(order: Order, now: datetime) -> None:
    """Record progress: the sweeper leaves sagas alone while they move."""
    order.progressed_at = now
    Order.objects.filter(pk=order.pk).update(progressed_at=now)


# --- compensations ---------------------------------------------------------------------------


def run_compensation(
    task: Task[Any, Any], *, order_id: str, compensation: Compensation, undo: Callable[[Order], object]
) -> None:
    """Undo ``compensation.undoes`` for an order that is compensating.

    Waits while the step it undoes is still running (a charge in flight is refunded only
    once it has landed). Skips steps that never started. Transient errors are retried; when
    the retries run out the compensation is marked failed and the task returns normally, so
    the remaining compensations still run and the order ends ``needs_attention``.
    """
    try:
        order = _compensation_begin(order_id=order_id, compensation=compensation)
    except NotYetDone as exc:
        raise task.retry(exc=exc, countdown=backoff_seconds(0), max_retries=None) from exc
    if order is None:
        return
    try:
        undo(order)
    except Exception as exc:
        retries = task.request.retries
        if retries < settings.SAGA_MAX_RETRIES:
            _step_note_error(order_id=order_id, name=compensation.name, error=_describe(exc))
            raise task.retry(exc=exc, countdown=backoff_seconds(retries), max_retries=None) from exc
        logger.warning("Compensation %s of order %s gave up: %s", compensation.name, order_id, exc)
        _finish_compensation(order_id, compensation.name, SagaStep.Status.FAILED, error=_describe(exc))
        return
    _finish_compensation(order_id, compensation.name, SagaStep.Status.SUCCEEDED, error="")


def _finish_compensation(order_id: str, name: str, status: SagaStep.Status, error: str) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        _finish(order, name, status, error=error)
        _touch(order, timezone.now())


def _compensation_begin(*, order_id: str, compensation: Compensation) -> Order | None:
    now = timezone.now()
    lease = now - timedelta(seconds=settings.SAGA_STEP_LEASE_SECONDS)
    with transaction.atomic():
        order = _lock(order_id)
        if order.status != Status.COMPENSATING:
            return None
        step = SagaStep.objects.get(order=order, name=compensation.name)
        if step.status in (SagaStep.Status.SUCCEEDED, SagaStep.Status.SKIPPED):
            return None
        undone = [
            s
            for s in SagaStep.objects.filter(order=order, kind=SagaStep.Kind.FORWARD)
            if s.name == compensation.undoes.name or s.name.startswith(f"{compensation.undoes.name}:")
        ]
        if any(s.status == SagaStep.Status.RUNNING and s.started_at and s.started_at > lease for s in undone):
            raise NotYetDone(f"{compensation.undoes.name} is still running")
        if all(s.attempts == 0 for s in undone):
            step.status = SagaStep.Status.SKIPPED
            step.finished_at = now
            step.save(update_fields=["status", "finished_at"])
            return None
        step.status = SagaStep.Status.RUNNING
        step.attempts += 1
        step.started_at = now
        step.save(update_fields=["status", "attempts", "started_at"])
        _touch(order, now)
    return order

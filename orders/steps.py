"""How one saga step runs: its preconditions, its attempts, its record and its retries.

Every participant task (inventory, payments, shipping, orders) runs through ``run_step`` or
``run_compensation``. The database row of the step, read under the order's row lock, decides
whether the work is still to be done, so a message delivered twice, a retry and a re-drive by
the sweeper all have the effect of one run.

**One owner per attempt.** A remote step records a new attempt (``attempts`` is its number)
before it calls out, and only that attempt may record the outcome: a result that comes back
after another attempt took over, or after the order turned to compensation, is never simply
recorded or dropped (see ``_late_success``). A lease only tells that an attempt *may* be dead;
whether its call happened is asked of the provider by the step's idempotency key, and a
provider still working on that key ("in flight") means "unknown yet": the compensation waits.
Between attempts a step is ``waiting``, not ``running``, so a cancel never waits for a retry.

**Every message through the outbox.** The canvas of ``orders/saga.py`` is the plan; a step takes
what comes after it (the rest of the chain, the chord's body, the error callbacks) off its
Celery request and writes it to the outbox in the transaction that records its outcome, so the
next hop exists exactly when the outcome committed. Retries and waits are outbox messages too.
"""

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import Task, signature
from celery.canvas import Signature
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.remote import RequestInFlight
from core.retry import backoff_seconds
from orders.models import FORWARD_STATUSES, Order, Reason, SagaStep, Status
from orders.transitions import order_record_action, order_transition
from outbox.services import outbox_send

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
UNDONE_BY = {c.undoes.name: c for c in (RELEASE_STOCK, REFUND_PAYMENT, CANCEL_SHIPMENT)}


def line_step_name(step: ForwardStep, sku: str) -> str:
    return f"{step.name}:{sku}"


class NotYetDone(Exception):
    """Something this step waits for is still in flight; asked again shortly, at no retry's cost."""


# --- the canvas around a step ----------------------------------------------------------------


@dataclass
class Hops:
    """What Celery would send after this task, taken off its request so that only the outbox
    sends it: the next step (or the chord's body), the error callbacks, and the task itself
    again (a retry or a wait)."""

    shard: str
    again: Signature[Any]
    chain: list[dict[str, Any]] = field(default_factory=list)
    chord: dict[str, Any] | None = None
    errbacks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def take(cls, task: Task[Any, Any], shard: str) -> "Hops":
        request: Any = task.request
        hops = cls(
            shard=shard,
            again=task.signature_from_request(),
            chain=list(request.chain or []),
            chord=request.chord,
            errbacks=list(request.errbacks or []),
        )
        request.chain = request.chord = request.errbacks = request.callbacks = None
        return hops

    def send_next(self) -> None:
        """The next step: the rest of the chain, or the body of the chord this task joins."""
        if self.chord is not None:
            outbox_send(message=signature(self.chord), shard=self.shard)
        elif self.chain:
            rest = self.chain[:-1]
            outbox_send(message=signature(self.chain[-1]), shard=self.shard, options={"chain": rest} if rest else None)

    def send_errbacks(self) -> None:
        for errback in self.errbacks:
            outbox_send(message=signature(errback), shard=self.shard)

    def send_again(self, *, delay: float, retries: int) -> None:
        again = self.again.clone()
        again.options["retries"] = retries  # the request's chain, chord and errbacks come along
        outbox_send(message=again, shard=self.shard, delay=delay)


# --- forward steps ---------------------------------------------------------------------------


def run_step(
    task: Task[Any, Any],
    *,
    order_id: str,
    step: ForwardStep,
    action: Callable[[Order], object],
    undo: Callable[[Order], object] | None = None,
    step_name: str | None = None,
    permanent: Mapping[type[Exception], Reason] | None = None,
) -> None:
    """Run ``action`` as ``step`` of the order's saga, at most once to success.

    A remote call commits its attempt before it runs, so a crash mid-call is seen (and the call
    repeated with its idempotency key, or compensated); a ``local`` step runs inside the
    transaction that records it. Exceptions listed in ``permanent`` fail the step at once and
    start compensation with their reason; a ``RequestInFlight`` answer waits; any other
    exception is transient and retried with backoff, and fails the step with
    ``step.gives_up_as`` when the retries run out. ``undo`` takes back a success that lands
    after the compensation already settled this step (see ``_late_success``).
    """
    name = step_name or step.name
    hops = Hops.take(task, shard=order_id)
    retries = task.request.retries
    if step.local:
        try:
            with transaction.atomic():
                order = _claim(order_id=order_id, name=name, step=step, fresh=True)
                if order is None:
                    return
                action(order)
                _succeed(order, name=name, step=step, hops=hops)
        except Exception as exc:
            _record_failure(
                order_id=order_id,
                name=name,
                step=step,
                attempt=None,
                exc=exc,
                permanent=permanent,
                hops=hops,
                retries=retries,
            )
        return

    with transaction.atomic():
        order = _claim(order_id=order_id, name=name, step=step, fresh=False)
    if order is None:
        return
    attempt = order.claimed_attempt  # type: ignore[attr-defined]
    try:
        action(order)
    except Exception as exc:
        _record_failure(
            order_id=order_id,
            name=name,
            step=step,
            attempt=attempt,
            exc=exc,
            permanent=permanent,
            hops=hops,
            retries=retries,
        )
        return
    late = False
    with transaction.atomic():
        order = _lock(order_id)
        current = SagaStep.objects.get(order=order, name=name)
        if current.status == SagaStep.Status.RUNNING and current.attempts == attempt:
            if order.status == step.runs_in:
                _succeed(order, name=name, step=step, hops=hops)
            else:  # the saga turned back mid-call: the compensation, waiting on us, undoes it
                _finish(order, name, SagaStep.Status.SUCCEEDED, error="")
                order_record_action(
                    order=order, actor="system", message=f"{name} landed after compensation began; it will be undone"
                )
        elif current.status in (SagaStep.Status.RUNNING, SagaStep.Status.WAITING, SagaStep.Status.SUCCEEDED):
            # Another attempt owns the step: it finds this result under the same idempotency key.
            logger.info(
                "%s of order %s: attempt %s superseded by attempt %s", name, order_id, attempt, current.attempts
            )
        elif not _handed_to_compensation(order, name):
            late = True  # the compensation settled the step as never done: take it back ourselves
    if late:
        _late_success(order_id=order_id, name=name, attempt=attempt, undo=undo)


def _claim(*, order_id: str, name: str, step: ForwardStep, fresh: bool) -> Order | None:
    """Lock the order and start an attempt of the step; ``None`` when it must not run now.

    Not now: the order is past the step or compensating, the step succeeded, or an attempt
    still holds its lease (a copy of this message, or a slow call). An attempt whose lease ran
    out is taken over: the new attempt repeats the call with the same idempotency key, which
    the provider answers with the first call's outcome, or with "in flight".
    """
    order = _lock(order_id)
    if order.status != step.runs_in:
        return None
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.SAGA_STEP_LEASE_SECONDS)
    claimable = SagaStep.objects.filter(order=order, name=name).exclude(status=SagaStep.Status.SUCCEEDED)
    if not fresh:
        claimable = claimable.exclude(status=SagaStep.Status.RUNNING, started_at__gte=lease_start)
    started = claimable.update(
        status=SagaStep.Status.RUNNING, attempts=F("attempts") + 1, started_at=now, finished_at=None
    )
    if not started:
        return None
    order.claimed_attempt = SagaStep.objects.values_list("attempts", flat=True).get(order=order, name=name)  # type: ignore[attr-defined]
    if not fresh:
        _touch(order)
    return order


def _succeed(order: Order, *, name: str, step: ForwardStep, hops: Hops) -> None:
    _finish(order, name, SagaStep.Status.SUCCEEDED, error="")
    base, per_line, _ = name.partition(":")
    if per_line and _lines_left(order, base):
        _touch(order)
        return  # the chord joins in the database: the last line reserved sends its body
    if step.advances_to is not None:
        message = f"{base} succeeded for every line" if per_line else f"{base} succeeded"
        order_transition(order=order, to=step.advances_to, message=message)
    hops.send_next()


def _lines_left(order: Order, step: str) -> bool:
    """Whether a line's run of ``step`` has yet to succeed (the lines run in parallel; the
    order's lock makes them take turns here, so exactly one of them sees none left)."""
    return order.steps.filter(name__startswith=f"{step}:").exclude(status=SagaStep.Status.SUCCEEDED).exists()


def _record_failure(
    *,
    order_id: str,
    name: str,
    step: ForwardStep,
    attempt: int | None,
    exc: Exception,
    permanent: Mapping[type[Exception], Reason] | None,
    hops: Hops,
    retries: int,
) -> None:
    """The attempt failed: wait, retry, or fail the step and start compensation."""
    reason = next((r for kind, r in (permanent or {}).items() if isinstance(exc, kind)), None)
    error = _describe(exc)
    with transaction.atomic():
        order = _lock(order_id)
        current = SagaStep.objects.get(order=order, name=name)
        owner = current.status == SagaStep.Status.RUNNING and current.attempts == attempt
        if attempt is not None and not owner:
            logger.info("%s of order %s: attempt %s failed after losing the step: %s", name, order_id, attempt, error)
            return
        if reason is None and order.status == step.runs_in and isinstance(exc, RequestInFlight):
            _wait(order, name, error, hops, delay=wait_seconds(), retries=retries)
        elif reason is None and order.status == step.runs_in and retries < settings.SAGA_MAX_RETRIES:
            _wait(order, name, error, hops, delay=backoff_seconds(retries), retries=retries + 1)
        else:
            _finish(order, name, SagaStep.Status.FAILED, error=error)
            if order.status in FORWARD_STATUSES:
                reason = reason or step.gives_up_as or Reason.OUT_OF_STOCK
                order_transition(order=order, to=Status.COMPENSATING, reason=reason, message=f"{name} failed: {error}")
                hops.send_errbacks()
            else:
                _touch(order)
    if reason is not None:
        logger.info("%s of order %s failed for good: %s", name, order_id, error)


def _wait(order: Order, name: str, error: str, hops: Hops, *, delay: float, retries: int) -> None:
    """Between attempts the step is ``waiting``: no call is in flight, and a cancel stops it."""
    SagaStep.objects.filter(order=order, name=name).update(
        status=SagaStep.Status.WAITING, error=error, finished_at=timezone.now()
    )
    _touch(order)
    hops.send_again(delay=delay, retries=retries)


def wait_seconds() -> float:
    """How long to wait for something in flight before asking again."""
    return float(settings.SAGA_RETRY_MAX_SECONDS) / 2


def _late_success(*, order_id: str, name: str, attempt: int, undo: Callable[[Order], object] | None) -> None:
    """An attempt the compensation settled as never done succeeded after all: take it back.

    The compensation settles a step as never done only when its attempt outlived the lease and
    the provider had nothing under the step's key, and it has finished; this is that attempt,
    alive after all, whose call landed later. It undoes its own success (waiting while the
    provider is busy with the key, retrying errors a few times); if it cannot, staff must act.
    """
    order = Order.objects.get(pk=order_id)
    errors = waits = 0
    while undo is not None:
        try:
            undo(order)
            break
        except RequestInFlight:
            waits += 1
            if waits > LATE_UNDO_MAX_WAITS:
                _late_success_stuck(order_id, name, attempt, "the provider kept the key in flight")
                return
            time.sleep(wait_seconds())
        except Exception as exc:
            errors += 1
            if errors > settings.SAGA_MAX_RETRIES:
                _late_success_stuck(order_id, name, attempt, _describe(exc))
                return
            time.sleep(backoff_seconds(errors))
    with transaction.atomic():
        order = _lock(order_id)
        order_record_action(order=order, actor="system", message=f"{name} attempt {attempt} landed late; undone")


LATE_UNDO_MAX_WAITS = 120


def _late_success_stuck(order_id: str, name: str, attempt: int, error: str) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        message = f"{name} attempt {attempt} landed late and could not be undone: {error}"
        if order.status in (Status.COMPENSATING, Status.CANCELLED):
            order_transition(order=order, to=Status.NEEDS_ATTENTION, message=message)
        else:
            order_record_action(order=order, actor="system", message=message)


def _handed_to_compensation(order: Order, name: str) -> bool:
    """Under the order's lock: let the compensation of ``name`` undo a late success, if it can.

    While that compensation has not finished, marking the step succeeded is enough: the
    compensation asks the provider by key, and if it found nothing just before, it runs again
    (``_finish_compensation``). Once it has finished, the late attempt must undo itself.
    """
    compensation = UNDONE_BY.get(name.partition(":")[0])
    if order.status != Status.COMPENSATING or compensation is None:
        return False
    unfinished = (SagaStep.Status.PENDING, SagaStep.Status.RUNNING, SagaStep.Status.WAITING)
    if not SagaStep.objects.filter(order=order, name=compensation.name, status__in=unfinished).exists():
        return False
    _finish(order, name, SagaStep.Status.SUCCEEDED, error="")
    order_record_action(order=order, actor="system", message=f"{name} landed late; {compensation.name} undoes it")
    return True


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _lock(order_id: str) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def _finish(order: Order, name: str, status: SagaStep.Status, error: str) -> None:
    SagaStep.objects.filter(order=order, name=name).update(status=status, finished_at=timezone.now(), error=error)
    _touch(order)


def _touch(order: Order) -> None:
    """Record progress: the sweeper leaves sagas alone while they move."""
    order.progressed_at = timezone.now()
    Order.objects.filter(pk=order.pk).update(progressed_at=order.progressed_at)


# --- compensations ---------------------------------------------------------------------------


def run_compensation(
    task: Task[Any, Any], *, order_id: str, compensation: Compensation, undo: Callable[[Order], bool]
) -> None:
    """Undo ``compensation.undoes`` for an order that is compensating.

    ``undo`` asks the provider, by the step's idempotency key, what the step did, takes it
    back, and returns whether there was anything to take back (``False``: skipped). While an
    attempt of the step is in flight (within its lease, or "in flight" at the provider), it
    waits, at no cost to its retries. Transient errors are retried; when the retries run out
    the compensation is marked failed and the chain goes on, so the order ends
    ``needs_attention``.
    """
    hops = Hops.take(task, shard=order_id)
    retries = task.request.retries
    with transaction.atomic():
        order = _lock(order_id)
        started = _compensation_begin(order, compensation=compensation, hops=hops, retries=retries)
    if not started:
        return
    try:
        did_something = undo(order)
    except (NotYetDone, RequestInFlight) as exc:
        _compensation_wait(order_id, compensation.name, _describe(exc), hops, delay=wait_seconds(), retries=retries)
        return
    except Exception as exc:
        if retries < settings.SAGA_MAX_RETRIES:
            _compensation_wait(
                order_id, compensation.name, _describe(exc), hops, delay=backoff_seconds(retries), retries=retries + 1
            )
            return
        logger.warning("Compensation %s of order %s gave up: %s", compensation.name, order_id, exc)
        _finish_compensation(order_id, compensation, SagaStep.Status.FAILED, error=_describe(exc), hops=hops)
        return
    status = SagaStep.Status.SUCCEEDED if did_something else SagaStep.Status.SKIPPED
    _finish_compensation(
        order_id, compensation, status, error="", hops=hops, did_something=did_something, retries=retries
    )


def _compensation_begin(order: Order, *, compensation: Compensation, hops: Hops, retries: int) -> bool:
    """Under the order's lock: whether to run ``undo`` now; otherwise wait, skip or stop."""
    if order.status != Status.COMPENSATING:
        return False
    step = SagaStep.objects.get(order=order, name=compensation.name)
    if step.status in (SagaStep.Status.SUCCEEDED, SagaStep.Status.SKIPPED):
        hops.send_next()  # a copy already did it; the chain goes on (its later links are no-ops too)
        return False
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.SAGA_STEP_LEASE_SECONDS)
    undone = _undone_steps(order, compensation)
    if all(s.attempts == 0 for s in undone):
        _settle(order, step, SagaStep.Status.SKIPPED, hops)
        return False
    if any(s.status == SagaStep.Status.RUNNING and s.started_at and s.started_at >= lease_start for s in undone):
        step.error = f"waiting: {compensation.undoes.name} is still in flight"
        step.save(update_fields=["error"])
        _touch(order)
        hops.send_again(delay=wait_seconds(), retries=retries)
        return False
    step.status = SagaStep.Status.RUNNING
    step.attempts += 1
    step.started_at = now
    step.save(update_fields=["status", "attempts", "started_at"])
    _touch(order)
    return True


def _settle(order: Order, step: SagaStep, status: SagaStep.Status, hops: Hops) -> None:
    step.status = status
    step.finished_at = timezone.now()
    step.save(update_fields=["status", "finished_at"])
    _touch(order)
    hops.send_next()


def _compensation_wait(order_id: str, name: str, error: str, hops: Hops, *, delay: float, retries: int) -> None:
    with transaction.atomic():
        order = _lock(order_id)
        SagaStep.objects.filter(order=order, name=name).update(status=SagaStep.Status.WAITING, error=error)
        _touch(order)
        hops.send_again(delay=delay, retries=retries)


def _finish_compensation(
    order_id: str,
    compensation: Compensation,
    status: SagaStep.Status,
    error: str,
    hops: Hops,
    *,
    did_something: bool = True,
    retries: int = 0,
) -> None:
    """Record the compensation's outcome and let the chain go on.

    An attempt of the undone step that outlived its lease is presumed dead once ``undo`` has
    asked the provider what it did: it is settled here (``failed``, abandoned), so that if it
    was alive after all it finds its step settled and undoes its own success. An attempt that
    landed while ``undo`` found nothing is undone by running ``undo`` again.
    """
    with transaction.atomic():
        order = _lock(order_id)
        undone = _undone_steps(order, compensation)
        if status != SagaStep.Status.FAILED:
            if not did_something and any(s.status == SagaStep.Status.SUCCEEDED for s in undone):
                SagaStep.objects.filter(order=order, name=compensation.name).update(status=SagaStep.Status.WAITING)
                hops.send_again(delay=0, retries=retries)
                return
            SagaStep.objects.filter(pk__in=[s.pk for s in undone if s.status == SagaStep.Status.RUNNING]).update(
                status=SagaStep.Status.FAILED,
                finished_at=timezone.now(),
                error="abandoned: outlived its lease; the provider was asked what it did",
            )
        _finish(order, compensation.name, status, error=error)
        hops.send_next()


def _undone_steps(order: Order, compensation: Compensation) -> list[SagaStep]:
    """The forward steps ``compensation`` undoes (one per line for the stock)."""
    name = compensation.undoes.name
    return [
        s
        for s in SagaStep.objects.filter(order=order, kind=SagaStep.Kind.FORWARD)
        if s.name == name or s.name.startswith(f"{name}:")
    ]

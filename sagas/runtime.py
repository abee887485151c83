"""How one saga step runs: its preconditions, its attempts, its record and its retries.

Both coordination modes run every step through ``run_step`` or ``run_compensation``; only
what is sent afterwards differs (``sagas.hops``). The step's row, read under the saga's lock
(``sagas.ledger``), decides whether the work is still to be done, so a message delivered
twice, a retry and a re-drive by the sweeper all have the effect of one run.

**One owner per attempt.** A remote step records a new attempt (``attempts`` is its number)
before it calls out, and only that attempt moves the saga on in the ordinary way. A success
that comes back after another attempt took over, or after the saga turned back, is a fact
about the provider all the same: it is written down in the transaction that learns of it, and
what follows is an ordinary step (the saga goes on, or the step's compensation runs again, see
``_landed_late``), never an undo that lives in one worker's memory. A lease only tells that an attempt *may* be dead;
whether its call happened is asked of the provider by the step's idempotency key, and a
provider still working on that key ("in flight") means "unknown yet": the compensation waits.
Between attempts a step is ``waiting``, not ``running``, so a cancel never waits for a retry.

**One span per attempt.** Each run of a step or a compensation is a span named after it,
whose fields (the saga, the step, the attempt, the service, the coordination mode) every log
line written meanwhile carries too (``telemetry``); a refusal is an outcome, not an error.

**Every message through the outbox.** The next hop (a command or an event), a retry and a
wait are written in the transaction that records the outcome, so they exist exactly when it
committed.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.remote import RequestInFlight, remote_calls, remote_calls_taken
from core.retry import backoff_seconds
from core.together import together
from sagas.hops import Hops
from sagas.ledger import Saga, get_ledger
from sagas.models import SagaStep
from sagas.plan import Compensation, ForwardStep, compensation, compensation_of, forward_step
from telemetry.context import Field, annotate, operation, record_error

logger = logging.getLogger(__name__)

Result = dict[str, Any] | None


class NotYetDone(Exception):
    """Something this step waits for is still in flight; asked again shortly, at no retry's cost."""


class AwaitingDecision(Exception):
    """The step's participant waits for a person (a review): the step is ``held``, the saga
    stays where it is (its owner shows ``held_as``), nothing is scheduled, and the decision
    resumes it (``step_decide``)."""


class NotHeld(Exception):
    """A decision for a step that is not waiting for one (decided already, or the saga moved on)."""


# --- forward steps ---------------------------------------------------------------------------


def run_step(
    *,
    saga_id: str,
    step_name: str,
    hops: Hops,
    action: Callable[[], Any],
    refusals: tuple[type[Exception], ...] = (),
    prepare: Callable[[], object] | None = None,
    record: Callable[[Any], Result] | None = None,
) -> bool:
    """Run ``action`` as the step ``step_name`` of the saga, at most once to success.

    A remote call commits its attempt before it runs, so a crash mid-call is seen (and the call
    repeated with its idempotency key, or compensated), together with what ``prepare`` writes
    for it (the participant's row: no row, no call); a ``local`` step runs inside the
    transaction that records it. ``refusals`` are the participant's business decisions: they
    fail the step at once and turn the saga back (``step.refused_as``); a ``RequestInFlight``
    answer waits; any other exception is transient and retried with backoff, and fails the
    step (``step.gives_up_as``) when the retries run out.

    ``action`` returns what the success announces (choreography), or, given ``record``, the
    provider's answer: ``record`` writes it on the participant's row in the transaction that
    records the step's outcome (so the row and the step never disagree, and no commit of its
    own), and returns what the success announces. It runs for a success that lands late too
    (``_landed_late``): the provider holds it either way. Returns whether the step is done.
    """
    step = forward_step(step_name)
    # ``attempt`` is 0 until the step claims an attempt (a copy that finds it done never does).
    fields: dict[str, Field] = {
        "saga_id": saga_id,
        "step": step_name,
        "attempt": 0,
        "service": step.service,
        "mode": hops.mode,
    }
    with operation(step.name, keep=True, kind="step", **fields), remote_calls():
        done = _run_step(saga_id, step_name, step, hops, action, refusals, prepare, record)
        if done:
            annotate(outcome="succeeded")
        return done


def _run_step(
    saga_id: str,
    step_name: str,
    step: ForwardStep,
    hops: Hops,
    action: Callable[[], Any],
    refusals: tuple[type[Exception], ...],
    prepare: Callable[[], object] | None,
    record: Callable[[Any], Result] | None,
) -> bool:
    if step.local:
        try:
            with transaction.atomic(), together():
                # The claim writes the step succeeded: its effect commits with it, or neither does.
                claimed = _claim(saga_id, step_name, step)
                if claimed is None:
                    return SagaStep.objects.filter(
                        saga_id=saga_id, name=step_name, status=SagaStep.Status.SUCCEEDED
                    ).exists()
                annotate(attempt=claimed.attempt)
                answer = action()
                result = record(answer) if record is not None else answer
                _succeed(claimed.saga, step_name, step, hops, result, lines_left=claimed.lines_left)
                return True
        except Exception as exc:
            _record_failure(saga_id, step_name, step, None, exc, refusals, hops)
            return False

    with transaction.atomic(), together():
        claimed = _claim(saga_id, step_name, step)
        if claimed is not None and prepare is not None:
            prepare()
    if claimed is None:
        return False
    attempt = claimed.attempt
    annotate(attempt=attempt)
    try:
        answer = action()
    except Exception as exc:
        _record_failure(saga_id, step_name, step, attempt, exc, refusals, hops)
        return False
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        _record_calls(saga, step.service)
        result = record(answer) if record is not None else answer
        # The claim found every step before this one succeeded, and a step that succeeded stays
        # so while the saga goes forward: the attempt that still owns its step may end it.
        if saga.forward and _end_attempt(saga_id, step_name, attempt):
            _succeed(saga, step_name, step, hops, result)
            return True
        return _landed_late(saga, step_name, step, attempt, hops, result)


@dataclass(frozen=True)
class Claim:
    """An attempt started: the saga (locked), the attempt's number, and for a line's run of a
    per-line step, whether another line's run has yet to succeed."""

    saga: Saga
    attempt: int
    lines_left: bool | None = None


def _claim(saga_id: str, name: str, step: ForwardStep) -> Claim | None:
    """Lock the saga and start an attempt of the step: the claim, or ``None`` when it must not
    run now.

    Not now: the saga is past the step or compensating, the step succeeded, or an attempt
    still holds its lease (a copy of this message, or a slow call). An attempt whose lease ran
    out is taken over: the new attempt repeats the call with the same idempotency key, which
    the provider answers with the first call's outcome, or with "in flight". A local step's
    claim marks it succeeded at once: it runs in the claim's transaction, which commits its
    effect and its row together or neither.
    """
    saga = get_ledger().lock(saga_id)
    if not saga.forward:
        return None
    now = timezone.now()
    # A local step holds no lease: it runs inside this transaction, so no attempt of it can be
    # in flight while the saga's lock is free.
    lease_start = None if step.local else now - timedelta(seconds=settings.SAGA_STEP_LEASE_SECONDS)
    started = _start_attempt(saga_id, name, step, now, lease_start)
    if started is None:
        return None
    if not step.local:
        saga.touch()
    attempt, lines_left = started
    return Claim(saga, attempt, lines_left)


# Every step of every saga claims an attempt: its turn, the claim and its number in one
# statement, which the ORM cannot write (its ``update`` returns a count, not the row). The
# step's turn has come when every forward row before the step's own has succeeded (a per-line
# step's rows follow each other, and run side by side): ``_may_run`` asks the same in Python.
# A local step's claim is its success (``{ends}``); a line's run of a per-line step is told in
# the same statement whether the other lines' runs have all succeeded (``{lines_left}``: the
# saga's lock, held since, keeps them as they are until the step's transaction ends).
TABLE, SAGA_ID = SagaStep._meta.db_table, SagaStep._meta.get_field("saga_id")
START_ATTEMPT = f"""UPDATE {TABLE}
    SET status = %s, attempts = attempts + 1, started_at = %s, {{ends}}
    WHERE {SAGA_ID.column} = %s AND name = %s AND status <> %s {{unleased}}
      AND NOT EXISTS (
        SELECT 1 FROM {TABLE} earlier
        WHERE earlier.{SAGA_ID.column} = %s AND earlier.kind = %s AND earlier.position < {TABLE}.position
          AND earlier.status <> %s AND earlier.name <> %s AND substr(earlier.name, 1, %s) <> %s)
    RETURNING attempts{{lines_left}}"""
UNLEASED = "AND NOT (status = %s AND started_at >= %s)"
RUNNING, ENDED = "finished_at = NULL", "finished_at = %s, error = ''"
OTHER_LINES_LEFT = f""", (
        SELECT COUNT(*) FROM {TABLE} other
        WHERE other.{SAGA_ID.column} = %s AND substr(other.name, 1, %s) = %s AND other.name <> %s
          AND other.status <> %s)"""


def _start_attempt(
    saga_id: str, name: str, step: ForwardStep, now: datetime, lease_start: datetime | None
) -> tuple[int, bool | None] | None:
    """Start an attempt of the step if its turn has come, unless it succeeded (or, given
    ``lease_start``, an attempt started since holds it): the attempt's number and, for a
    per-line step, whether other lines are left."""
    connection = transaction.get_connection()
    adapt, succeeded = connection.ops.adapt_datetimefield_value, SagaStep.Status.SUCCEEDED
    saga = SAGA_ID.get_db_prep_value(saga_id, connection)
    own_lines = f"{step.name}:"
    params: list[Any] = [succeeded if step.local else SagaStep.Status.RUNNING, adapt(now)]
    if step.local:
        params.append(adapt(now))
    params += [saga, name, succeeded]
    if lease_start is not None:
        params += [SagaStep.Status.RUNNING, adapt(lease_start)]
    params += [saga, SagaStep.Kind.FORWARD, succeeded, step.name, len(own_lines), own_lines]
    if step.per_line:
        params += [saga, len(own_lines), own_lines, name, succeeded]
    sql = START_ATTEMPT.format(
        ends=ENDED if step.local else RUNNING,
        unleased=UNLEASED if lease_start is not None else "",
        lines_left=OTHER_LINES_LEFT if step.per_line else "",
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return int(row[0]), (int(row[1]) > 0 if step.per_line else None)


def _may_run(saga: Saga, step: ForwardStep) -> bool:
    """Whether the step's turn has come: the saga goes forward and every step before it has
    succeeded. The step rows say whose turn it is, in both modes (the owner's status is what
    customers see, and in choreography it follows the events, a little behind the steps)."""
    if not saga.forward:
        return False
    forward = SagaStep.objects.filter(saga_id=saga.id, kind=SagaStep.Kind.FORWARD)
    rows = list(forward.values_list("name", "position", "status"))
    mine = [position for row_name, position, _ in rows if row_name.partition(":")[0] == step.name]
    return bool(mine) and all(
        status == SagaStep.Status.SUCCEEDED for _, position, status in rows if position < min(mine)
    )


def _end_attempt(saga_id: str, name: str, attempt: int) -> bool:
    """Under the saga's lock: mark the step succeeded if ``attempt`` still owns it (it is the
    step's latest attempt, still running); whether it did."""
    owned = SagaStep.objects.filter(saga_id=saga_id, name=name, status=SagaStep.Status.RUNNING, attempts=attempt)
    return owned.update(status=SagaStep.Status.SUCCEEDED, finished_at=timezone.now(), error="") == 1


def _succeed(
    saga: Saga, name: str, step: ForwardStep, hops: Hops, result: Result, *, lines_left: bool | None = None
) -> None:
    """The step's row says it succeeded: what comes next (``lines_left``: known already)."""
    if step.per_line and (_lines_left(saga, step) if lines_left is None else lines_left):
        saga.touch()
        return  # the lines join in the database: the last line done moves the saga on
    # The journal reads cause before effect: the participant's success (orchestrated, its line;
    # choreographed, its event), then what its owner does about it.
    hops.record_success(saga, step, detail="succeeded for every line" if step.per_line else "succeeded")
    hops.send_next(saga, result)
    # ``advance`` records the progress (a step with nowhere to go has it recorded all the same)
    saga.advance(step, message=f"{step.name} succeeded ({step.service})")


def _record_calls(saga: Saga, service: str) -> None:
    """The participant's successful remote calls in this run (a Stripe write and its request id:
    ``core.remote.remote_call_done``), each a staff-only ``step`` line named after the call, in
    the transaction that records the run's outcome, before its own line: no write of their own."""
    for name, detail in remote_calls_taken():
        saga.record(service=service, kind="step", name=name, detail=detail)


def _lines_left(saga: Saga, step: ForwardStep) -> bool:
    """Whether a line's run of ``step`` has yet to succeed (the lines may run in parallel; the
    saga's lock makes them take turns here, so exactly one of them sees none left)."""
    return (
        SagaStep.objects.filter(saga_id=saga.id, name__startswith=f"{step.name}:")
        .exclude(status=SagaStep.Status.SUCCEEDED)
        .exists()
    )


def _record_failure(
    saga_id: str,
    name: str,
    step: ForwardStep,
    attempt: int | None,
    exc: Exception,
    refusals: tuple[type[Exception], ...],
    hops: Hops,
) -> None:
    """The attempt failed: wait, retry, or fail the step and turn the saga back."""
    refused = isinstance(exc, refusals)
    error = describe(exc)
    retries = hops.retries
    if not refused and not isinstance(exc, AwaitingDecision):
        record_error(exc)
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        _record_calls(saga, step.service)
        current = SagaStep.objects.get(saga_id=saga_id, name=name)
        owner = current.status == SagaStep.Status.RUNNING and current.attempts == attempt
        if attempt is not None and not owner:
            logger.info("%s of %s: attempt %s failed after losing the step: %s", name, saga_id, attempt, error)
            return
        if isinstance(exc, AwaitingDecision) and _may_run(saga, step):
            outcome = "held"
            _finish(saga, name, SagaStep.Status.HELD, error=error)
            saga.record(service=step.service, kind="step", name=name, detail=str(exc))
            saga.hold(step, message=f"{name}: {exc}")
            hops.send_held(saga)
        elif not refused and _may_run(saga, step) and isinstance(exc, RequestInFlight):
            outcome = "waiting"
            _wait(saga, name, step.service, error, hops, delay=wait_seconds(), retries=retries)
        elif not refused and _may_run(saga, step) and retries < settings.SAGA_MAX_RETRIES:
            outcome = "retrying"
            _wait(saga, name, step.service, error, hops, delay=backoff_seconds(retries), retries=retries + 1)
        else:
            outcome = "refused" if refused else "failed"
            _finish(saga, name, SagaStep.Status.FAILED, error=error)
            # A participant's error may say more to staff (the journal's step lines are theirs)
            # than the step's row, which the customer sees.
            staff_error = getattr(exc, "staff_detail", "") or error
            saga.record(service=step.service, kind="step", name=name, detail=f"failed: {staff_error}")
            if saga.forward:
                # A refusal may carry its own reason (a review that nobody decided in time: expired).
                reason = getattr(exc, "reason", None) or (step.refused_as if refused else step.gives_up_as)
                saga.turn_back(reason=reason or step.refused_as or "", message=f"{name} failed: {error}")
                hops.send_failed(saga, step, refused=refused, error=error)
    # One line per attempt that did not succeed, at the level of what it means: a refusal is the
    # participant's answer and a retry is routine (INFO); only giving up needs a person's eye.
    annotate(outcome=outcome, error=error)
    if outcome == "held":
        logger.info("%s of %s is held for a decision: %s", name, saga_id, error)
    elif outcome == "failed":
        logger.warning("%s of %s failed for good: %s", name, saga_id, error)
    else:
        logger.info("%s of %s %s: %s", name, saga_id, outcome, error)


def _wait(saga: Saga, name: str, service: str, error: str, hops: Hops, *, delay: float, retries: int) -> None:
    """Between attempts the step is ``waiting``: no call is in flight, and a cancel stops it."""
    SagaStep.objects.filter(saga_id=saga.id, name=name).update(
        status=SagaStep.Status.WAITING, error=error, finished_at=timezone.now()
    )
    saga.touch()
    saga.record(service=service, kind="retry", name=name, detail=f"{error}; again in {delay:.2f}s")
    hops.send_again(delay=delay, retries=retries)


def wait_seconds() -> float:
    """How long to wait for something in flight before asking again."""
    return float(settings.SAGA_RETRY_MAX_SECONDS) / 2


def _landed_late(saga: Saga, name: str, step: ForwardStep, attempt: int, hops: Hops, result: Result) -> bool:
    """Under the saga's lock: ``attempt`` succeeded but no longer owns the step (another attempt
    took over or waits for its retry, the step was given up, or the saga turned back).

    The provider holds the effect whatever the row says, so the row says it too, in this
    transaction: from here on it is a fact any worker and the sweeper act on. A saga still
    going forward goes on (the waiting retry finds the step done); a saga that turned back has
    the step's compensation run again (``_undo_again``). Returns whether the saga went on.
    """
    current = SagaStep.objects.get(saga_id=saga.id, name=name)
    if current.status == SagaStep.Status.SUCCEEDED:
        # Another attempt recorded this effect already: the same key, so the same charge or parcel.
        logger.info("%s of %s: attempt %s landed after attempt %s", name, saga.id, attempt, current.attempts)
        return False
    _finish(saga, name, SagaStep.Status.SUCCEEDED)
    if _may_run(saga, step):
        saga.record(service=step.service, kind="step", name=name, detail=f"attempt {attempt} landed after a retry")
        _succeed(saga, name, step, hops, result)
        return True
    _undo_again(saga, name, step, detail=f"attempt {attempt} landed after the order turned back")
    return False


def step_landed(*, saga_id: str, step_name: str, detail: str) -> bool:
    """What a provider holds, written down: the step's effect exists (the reconciler found it),
    whatever its rows said. For a saga that turned back, its compensation runs again, durably,
    even one that succeeded: the provider says it did not take everything back.

    Returns whether anything is to be undone again (``False`` for a saga still going forward,
    or whose compensation is still to run). Side effects, in one transaction: the step's row,
    the compensation's row, the saga re-opened, a journal line.
    """
    step = forward_step(step_name)
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        if saga.forward:
            return False
        SagaStep.objects.filter(saga_id=saga_id, name=step_name).exclude(status=SagaStep.Status.SUCCEEDED).update(
            status=SagaStep.Status.SUCCEEDED, finished_at=timezone.now()
        )
        saga.touch()
        return _undo_again(saga, step_name, step, detail=detail, settled=SETTLED)


def step_decide(*, saga_id: str, step_name: str, decide: Callable[[Saga], None]) -> None:
    """A person decided a held step: ``decide`` writes the decision down (the participant's own
    row, its journal line) and the saga is resumed, in one transaction under the saga's lock.

    Decided once: raises ``NotHeld`` (and writes nothing) unless the saga still goes forward
    and the step is held (not running: an attempt in flight could hold it again after the
    resume came and went); ``decide`` raises it too when the participant has nothing waiting,
    so of two decisions racing (or a decision and a cancel) the first wins. The decided step
    is ``waiting`` to run again: the resumed saga runs it, and it succeeds or refuses as any
    step does. A held saga is no stalled one (the sweeper leaves it be), a decided one is: a
    resume message lost on the way is sent again by the sweeper.
    """
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        held = SagaStep.objects.filter(saga_id=saga_id, name=step_name, status=SagaStep.Status.HELD)
        if not (saga.forward and held.exists()):
            raise NotHeld(f"{step_name} of {saga_id} is not waiting for a decision")
        decide(saga)
        held.update(status=SagaStep.Status.WAITING, error="decided: runs again")
        saga.touch()
        saga.resume()


# A compensation that finished; one that succeeded took back what was under the step's key.
SETTLED = (SagaStep.Status.SUCCEEDED, SagaStep.Status.SKIPPED, SagaStep.Status.FAILED)


def _undo_again(
    saga: Saga, name: str, step: ForwardStep, *, detail: str, settled: tuple[str, ...] = SETTLED[1:]
) -> bool:
    """The step's effect exists and the saga turned back: make sure its compensation takes it back.

    A compensation still to run (or running: it asks the provider again when it found nothing,
    ``_finish_compensation``) has it in hand; one that succeeded took back this very effect
    (one idempotency key, one charge), unless ``settled`` says otherwise (the reconciler found
    the provider holding more). One that was skipped or gave up is re-opened, and the
    saga with it (a cancelled order is compensating again until the undo is done): from then
    on it is an ordinary compensation, with its retries, fencing, parking and journal lines.
    """
    undoing = compensation_of(name)
    saga.record(service=step.service, kind="step", name=name, detail=detail)
    if undoing is None:
        return False  # the plan says the step leaves nothing to undo (a screening)
    reopened = SagaStep.objects.filter(saga_id=saga.id, name=undoing.name, status__in=settled).update(
        status=SagaStep.Status.PENDING, error="", finished_at=None
    )
    if not reopened:
        return False
    saga.touch()
    saga.reopen(message=f"{name} {detail}; {undoing.name} takes it back")
    return True


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _finish(saga: Saga, name: str, status: SagaStep.Status, error: str = "") -> None:
    SagaStep.objects.filter(saga_id=saga.id, name=name).update(status=status, finished_at=timezone.now(), error=error)
    saga.touch()


# --- compensations ---------------------------------------------------------------------------


def run_compensation(
    *, saga_id: str, name: str, hops: Hops, undo: Callable[[], bool], final: tuple[type[Exception], ...] = ()
) -> None:
    """Undo what the compensation ``name`` undoes, for a saga that is compensating.

    ``undo`` asks the provider, by the step's idempotency key, what the step did, takes it
    back, and returns whether there was anything to take back (``False``: skipped). While an
    attempt of the step is in flight (within its lease, or "in flight" at the provider), it
    waits, at no cost to its retries. Transient errors are retried; when the retries run out
    the compensation is marked failed and the saga goes on, so it ends needing attention. A
    ``final`` error (one no retry mends: the provider refuses the shop's own request) fails it
    at once, to the same end.
    """
    comp = compensation(name)
    fields: dict[str, Field] = {
        "saga_id": saga_id,
        "step": comp.name,
        "attempt": 0,
        "service": comp.service,
        "mode": hops.mode,
    }
    with operation(comp.name, keep=True, kind="compensation", **fields), remote_calls():
        _run_compensation(saga_id, comp, hops, undo, final)


def _run_compensation(
    saga_id: str, comp: Compensation, hops: Hops, undo: Callable[[], bool], final: tuple[type[Exception], ...]
) -> None:
    name = comp.name
    retries = hops.retries
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        attempt = _compensation_begin(saga, comp, hops)
    if not attempt:
        return
    annotate(attempt=attempt)
    try:
        did_something = undo()
    except (NotYetDone, RequestInFlight) as exc:
        _compensation_wait(saga_id, comp, describe(exc), hops, delay=wait_seconds(), retries=retries)
        return
    except Exception as exc:
        record_error(exc)
        if retries < settings.SAGA_MAX_RETRIES and not isinstance(exc, final):
            _compensation_wait(saga_id, comp, describe(exc), hops, delay=backoff_seconds(retries), retries=retries + 1)
            return
        logger.warning("Compensation %s of %s gave up: %s", name, saga_id, exc)
        _finish_compensation(saga_id, comp, SagaStep.Status.FAILED, error=describe(exc), hops=hops)
        return
    status = SagaStep.Status.SUCCEEDED if did_something else SagaStep.Status.SKIPPED
    _finish_compensation(saga_id, comp, status, error="", hops=hops, did_something=did_something)


def _compensation_begin(saga: Saga, comp: Compensation, hops: Hops) -> int:
    """Under the saga's lock: the number of the attempt that runs ``undo`` now, or ``0`` (it
    waits, skips or stops instead)."""
    if not saga.compensating:
        return 0
    step = SagaStep.objects.get(saga_id=saga.id, name=comp.name)
    if step.status in (SagaStep.Status.SUCCEEDED, SagaStep.Status.SKIPPED):
        hops.send_next(saga, {"outcome": step.status})  # a copy already did it; the saga goes on
        return 0
    now = timezone.now()
    lease_start = now - timedelta(seconds=settings.SAGA_STEP_LEASE_SECONDS)
    if step.status == SagaStep.Status.RUNNING and step.started_at and step.started_at >= lease_start:
        # Another copy of this message is undoing right now: one owner per attempt here too, or
        # copies would meet at the provider ("key in use"), wait, and come back, for ever.
        return 0
    undone = _undone_steps(saga, comp)
    if all(s.attempts == 0 and s.status != SagaStep.Status.SUCCEEDED for s in undone):
        # never called out, and no provider was found holding its effect (``step_landed``)
        _settle(saga, step, comp, SagaStep.Status.SKIPPED, hops)
        return 0
    if any(s.status == SagaStep.Status.RUNNING and s.started_at and s.started_at >= lease_start for s in undone):
        step.error = f"waiting: {comp.undoes.name} is still in flight"
        step.save(update_fields=["error"])
        saga.touch()
        hops.send_again(delay=wait_seconds(), retries=hops.retries)
        return 0
    step.status = SagaStep.Status.RUNNING
    step.attempts += 1
    step.started_at = now
    step.save(update_fields=["status", "attempts", "started_at"])
    saga.touch()
    return step.attempts


def _settle(saga: Saga, step: SagaStep, comp: Compensation, status: SagaStep.Status, hops: Hops) -> None:
    step.status = status
    step.finished_at = timezone.now()
    step.save(update_fields=["status", "finished_at"])
    saga.touch()
    saga.record(service=comp.service, kind="compensation", name=comp.name, detail=status)
    hops.send_next(saga, {"outcome": status})


def _compensation_wait(saga_id: str, comp: Compensation, error: str, hops: Hops, *, delay: float, retries: int) -> None:
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        _record_calls(saga, comp.service)
        SagaStep.objects.filter(saga_id=saga_id, name=comp.name).update(status=SagaStep.Status.WAITING, error=error)
        saga.touch()
        saga.record(service=comp.service, kind="retry", name=comp.name, detail=f"{error}; again in {delay:.2f}s")
        hops.send_again(delay=delay, retries=retries)


def _finish_compensation(
    saga_id: str,
    comp: Compensation,
    status: SagaStep.Status,
    error: str,
    hops: Hops,
    *,
    did_something: bool = True,
) -> None:
    """Record the compensation's outcome and let the saga go on.

    An attempt of the undone step that outlived its lease is presumed dead once ``undo`` has
    asked the provider what it did: it is settled here (``failed``, abandoned), so that if it
    was alive after all it finds its step settled and re-opens this compensation
    (``_landed_late``). An attempt that landed while ``undo`` found nothing is undone by running
    ``undo`` again.
    """
    with transaction.atomic(), together():
        saga = get_ledger().lock(saga_id)
        _record_calls(saga, comp.service)
        undone = _undone_steps(saga, comp)
        if status != SagaStep.Status.FAILED:
            began = SagaStep.objects.values_list("started_at", flat=True).get(saga_id=saga_id, name=comp.name)
            if not did_something and any(_landed_since(s, began) for s in undone):
                SagaStep.objects.filter(saga_id=saga_id, name=comp.name).update(status=SagaStep.Status.WAITING)
                saga.touch()
                hops.send_again(delay=0, retries=hops.retries)
                return
            SagaStep.objects.filter(pk__in=[s.pk for s in undone if s.status == SagaStep.Status.RUNNING]).update(
                status=SagaStep.Status.FAILED,
                finished_at=timezone.now(),
                error="abandoned: outlived its lease; the provider was asked what it did",
            )
        _finish(saga, comp.name, status, error=error)
        saga.record(service=comp.service, kind="compensation", name=comp.name, detail=error or status)
        hops.send_next(saga, {"outcome": status})


def _landed_since(step: SagaStep, moment: datetime | None) -> bool:
    """Whether ``step`` succeeded after ``moment`` (while its compensation was looking)."""
    if step.status != SagaStep.Status.SUCCEEDED:
        return False
    return moment is None or (step.finished_at is not None and step.finished_at >= moment)


def _undone_steps(saga: Saga, comp: Compensation) -> list[SagaStep]:
    """The forward steps ``comp`` undoes (one per line for the stock)."""
    name = comp.undoes.name
    return [
        s
        for s in SagaStep.objects.filter(saga_id=saga.id, kind=SagaStep.Kind.FORWARD)
        if s.name == name or s.name.startswith(f"{name}:")
    ]

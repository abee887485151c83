"""What a step sends once its outcome is recorded, in the transaction that records it.

The runtime is the same in both coordination modes; only this differs:

- ``CanvasHops`` (orchestration): what Celery would send after the task (the rest of the
  chain, the chord's body), taken off its request so that only the outbox sends it; a step
  that fails for good sends the chain of compensations its saga's plan declares, itself.
- ``EventHops`` (choreography): the participant announces what happened (``payment.charged``,
  ``payment.declined``, ``payment.refunded``) to whoever subscribed; nobody is told what to do.

Both write their messages through the outbox and their journal lines through the saga.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from celery import Task, chain, signature
from celery.canvas import Signature

from events.registry import CHOREOGRAPHY, Subscription, subscriptions_from
from events.services import Delivery, event_publish
from outbox.services import outbox_send
from sagas.ledger import Saga
from sagas.plan import SagaPlan, Step, compensation, forward_step, plan_of_step


class Hops(Protocol):
    @property
    def retries(self) -> int:
        """How many retries came before this run."""

    @property
    def mode(self) -> str:
        """How the saga is coordinated (``orchestration`` or ``choreography``), for traces and logs."""

    def record_success(self, saga: Saga, step: Step, *, detail: str) -> None:
        """The step succeeded (for every line): its participant's line in the journal, in the
        transaction of the outcome and before what comes next, so that the journal names who
        did the work in both modes."""

    def send_next(self, saga: Saga, result: dict[str, Any] | None = None) -> None:
        """The step (or compensation) is done: what comes next."""

    def send_failed(self, saga: Saga, step: Step, *, refused: bool, error: str) -> None:
        """The step failed for good and the saga turned back: start undoing."""

    def send_held(self, saga: Saga) -> None:
        """The step waits for a person's decision: nothing is sent (the decision resumes the saga)."""

    def send_again(self, *, delay: float, retries: int) -> None:
        """Run this step again after ``delay`` (a retry, or a wait for something in flight)."""


@dataclass
class CanvasHops:
    shard: str
    service: str
    again: Signature[Any]
    retries: int = 0
    chain: list[dict[str, Any]] = field(default_factory=list)
    chord: dict[str, Any] | None = None
    mode = "orchestration"

    @classmethod
    def take(cls, task: Task[Any, Any], *, shard: str, service: str) -> "CanvasHops":
        request: Any = task.request
        hops = cls(
            shard=shard,
            service=service,
            again=task.signature_from_request(),
            retries=request.retries or 0,
            chain=list(request.chain or []),
            chord=request.chord,
        )
        request.chain = request.chord = request.errbacks = request.callbacks = None
        return hops

    def record_success(self, saga: Saga, step: Step, *, detail: str) -> None:
        """Nobody announces an orchestrated step's success: the participant writes it down."""
        saga.record(service=step.service, kind="step", name=step.name, detail=detail)

    def send_next(self, saga: Saga, result: dict[str, Any] | None = None) -> None:
        """The next step: the rest of the chain, or the body of the chord this task joins."""
        if self.chord is not None:
            self._command(saga, signature(self.chord))
        elif self.chain:
            rest = self.chain[:-1]
            self._command(saga, signature(self.chain[-1]), options={"chain": rest} if rest else None)

    def send_failed(self, saga: Saga, step: Step, *, refused: bool, error: str) -> None:
        """The compensations, in reverse, sent by the step that failed (no error callback's hop)."""
        self._command(saga, compensation_canvas(plan_of_step(step.name), saga.id))

    def send_held(self, saga: Saga) -> None:
        """The rest of the chain is dropped: the decision sends what is left of the saga."""

    def send_again(self, *, delay: float, retries: int) -> None:
        again = self.again.clone()
        again.options["retries"] = retries  # the request's chain, chord and errbacks come along
        outbox_send(message=again, shard=self.shard, delay=delay)

    def _command(self, saga: Saga, message: Signature[Any], options: dict[str, Any] | None = None) -> None:
        outbox_send(message=message, shard=self.shard, options=options, next_hop=True)
        saga.record(service=saga.owner, kind="command", name=_task_name(message))


def compensation_canvas(plan: SagaPlan, saga_id: str) -> Signature[Any]:
    """Undo in reverse; each compensation does nothing when its step never ran."""
    undo = [signature(c.task, args=(saga_id,)) for c in plan.compensations]
    return chain(*undo, signature(plan.finish_task, args=(saga_id,)))


def _task_name(message: Signature[Any]) -> str:
    if message.get("task") == "celery.chain":
        return " → ".join(str(t.get("task", "")) for t in message["kwargs"]["tasks"])
    return str(message.get("task", ""))


@dataclass
class EventHops:
    """A participant's reaction to an event: it announces its own outcome, and nothing else."""

    delivery: Delivery
    service: str
    succeeded: str  # the event announcing success (``payment.charged``)
    refused: str | None = None  # a business refusal (``payment.declined``)
    failed: str | None = None  # transient errors outlasted the retries (``payment.failed``)

    @classmethod
    def for_step(cls, delivery: Delivery, name: str) -> "EventHops":
        """The hops of the step (or compensation) ``name``: the events its saga's plan declares."""
        try:
            step = forward_step(name)
        except (LookupError, StopIteration):
            undo = compensation(name)
            return cls(delivery, undo.service, succeeded=undo.announces)
        return cls(delivery, step.service, succeeded=step.succeeded, refused=step.refused, failed=step.failed)

    @property
    def retries(self) -> int:
        return self.delivery.attempt

    @property
    def mode(self) -> str:
        return self.delivery.event.mode

    def record_success(self, saga: Saga, step: Step, *, detail: str) -> None:
        """The event the participant announces (``send_next``) is its line in the journal."""

    def send_next(self, saga: Saga, result: dict[str, Any] | None = None) -> None:
        self._announce(saga, self.succeeded, result or {})

    def send_failed(self, saga: Saga, step: Step, *, refused: bool, error: str) -> None:
        name = (self.refused if refused else self.failed) or self.failed or self.refused
        if name:
            self._announce(saga, name, {"error": error})
        else:
            self.delivery.done()

    def send_again(self, *, delay: float, retries: int) -> None:
        self.delivery.again(delay=delay, attempt=retries)

    def send_held(self, saga: Saga) -> None:
        self.delivery.done()

    def _announce(self, saga: Saga, name: str, data: dict[str, Any]) -> None:
        event = self.delivery.event
        event_publish(
            name=name, saga_id=saga.id, mode=event.mode, publisher=self.service, data=data, context=event.context
        )
        saga.record(service=self.service, kind="event", name=name, detail=_summary(data))
        self.delivery.done()


def _summary(data: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in data.items())


# --- choreography's wiring, from the plan ------------------------------------------------------

_step_handlers: list[tuple[str, str, Callable[..., None]]] = []  # (step, service, handler)
F = TypeVar("F", bound=Callable[..., None])


def subscribe_step(name: str, *, service: str) -> Callable[[F], F]:
    """Declare that ``service`` runs the saga step (or compensation) ``name`` when choreographed.

    What it hears and what it may announce follow from the saga's plan (``sagas.plan``): a
    step hears the event of the step before it and the owner's wake-up call; a compensation
    hears every way the saga turns back. So a step added to the plan, or moved, rewires the
    choreography with it. The handler is called as ``handler(event, delivery)``.
    """

    def register(handler: F) -> F:
        _step_handlers.append((name, service, handler))
        subscriptions_from(_step_subscriptions)
        return handler

    return register


def _step_subscriptions() -> list[Subscription]:
    found: list[Subscription] = []
    for name, service, handler in _step_handlers:
        plan = plan_of_step(name)
        if any(step.name == name for step in plan.steps):
            step = forward_step(name)
            heard, reacts = plan.heard_by(step), (step.succeeded, *step.failure_events)
        else:
            heard, reacts = plan.turning_back, (compensation(name).announces,)
        found += [
            Subscription(service, event, handler, frozenset({CHOREOGRAPHY}), step=True, reacts_with=reacts)
            for event in heard
        ]
    return found

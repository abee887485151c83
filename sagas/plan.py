"""A saga, declared once: its steps in order, and everything both modes derive from them.

The saga's owner declares it (the orders app: ``orders/plan.py``) as a ``SagaPlan``: the
ordered ``Step`` s, each with the participant that runs it (orchestrated, its command is
``<participant>.<step>``), the events it announces when it is choreographed, its compensation, and
what it means for the owner (the status customers see once it is done, or while it waits for
a person; the reason when it fails). From that one list follow:

- the orchestrator's canvas, and the chain of compensations (``orders/saga.py``);
- the step rows planned for each saga, and whose turn it is (the claim in ``sagas.runtime``);
- who hears what in choreography: each step hears the event of the step before it (the first
  hears ``starts_with``), every compensation hears every failure (``subscribe_step``);
- the owner's status machine and forward path (``orders/transitions.py``);
- the participants (their queues must be served: a system check, ``sagas/checks.py``).

Adding a step is one ``Step`` here plus the participant's own code (its step function, its
command and its subscription, each of which names the step and nothing more).
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Undo:
    """A compensation: what takes its step's effect back, run by the step's participant."""

    name: str
    announces: str  # the event that says it is undone (choreography)


@dataclass(frozen=True)
class Step:
    name: str  # the step's one name: its row, its journal lines, its span, its command
    service: str  # the participant that runs it (its queue)
    succeeded: str  # the event announcing success (``payment.charged``)
    refused: str | None = None  # the event announcing a business refusal (``payment.declined``)
    failed: str | None = None  # the event announcing that transient errors outlasted the retries
    undo: Undo | None = None
    advances_to: str | None = None  # the status customers see once it succeeded, if any
    held_as: str | None = None  # the status while it waits for a person's decision, if it may
    refused_as: str | None = None  # the reason when the participant refuses (a business decision)
    gives_up_as: str | None = None  # the reason when transient errors outlast the retries
    # Its work only writes our own database: it commits with the step's record, all or nothing,
    # so no attempt is recorded before it runs (a remote call needs that record; see run_step).
    local: bool = False
    per_line: bool = False  # run once per line (``<name>:<sku>``); the last line moves the saga on

    @property
    def task(self) -> str:
        """The participant's Celery command: ``<service>.<step>``, routed to the service's queue."""
        return f"{self.service}.{self.name}"

    @property
    def failure_events(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e for e in (self.refused, self.failed) if e))


# ``ForwardStep`` is the runtime's name for a step; ``Compensation`` pairs an undo with its step.
ForwardStep = Step


@dataclass(frozen=True)
class Compensation:
    name: str
    service: str
    announces: str
    undoes: Step

    @property
    def task(self) -> str:
        return f"{self.service}.{self.name}"


@dataclass(frozen=True)
class SagaPlan:
    owner: str  # the service that owns the saga (and orchestrates it)
    starts_with: str  # the owner's event that starts a choreographed saga
    resumed_by: str  # the owner's event that wakes a stalled (or decided) choreographed saga
    turned_back_by: str  # the owner's event that turns it back for no step's failure (a cancel)
    finish_task: str  # the owner's command that closes the saga once everything is undone
    steps: tuple[Step, ...]
    compensations: tuple[Compensation, ...] = field(init=False)

    def __post_init__(self) -> None:
        undos = [
            Compensation(s.undo.name, s.service, s.undo.announces, s)
            for s in reversed(self.steps)
            if s.undo is not None
        ]
        object.__setattr__(self, "compensations", tuple(undos))

    @property
    def participants(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.service for s in self.steps))

    def step(self, name: str) -> Step:
        base = name.partition(":")[0]
        return next(s for s in self.steps if s.name == base)

    def heard_by(self, step: Step) -> tuple[str, ...]:
        """The events a step's participant reacts to (choreography): the previous step's success
        (or the saga's start), and the owner's wake-up call."""
        index = self.steps.index(step)
        previous = self.steps[index - 1].succeeded if index else self.starts_with
        return (previous, self.resumed_by)

    @property
    def turning_back(self) -> tuple[str, ...]:
        """The events every compensation hears: each step's failure, and the owner's turn back."""
        events = [e for s in self.steps for e in s.failure_events]
        return (*dict.fromkeys(events), self.turned_back_by)

    def step_names(self, lines: list[str]) -> list[str]:
        """The saga's forward rows, in order: a per-line step has one row per line."""
        names: list[str] = []
        for step in self.steps:
            names += [line_step_name(step, line) for line in lines] if step.per_line else [step.name]
        return names


_plans: list[SagaPlan] = []


def declare(plan: SagaPlan) -> SagaPlan:
    _plans.append(plan)
    return plan


def plan_of_step(name: str) -> SagaPlan:
    base = name.partition(":")[0]
    for plan in _plans:
        if any(s.name == base for s in plan.steps) or any(c.name == base for c in plan.compensations):
            return plan
    raise LookupError(f"No saga declares the step {name!r}")


def forward_step(name: str) -> Step:
    return plan_of_step(name).step(name)


def compensation(name: str) -> Compensation:
    return next(c for c in plan_of_step(name).compensations if c.name == name)


def compensation_of(step_name: str) -> Compensation | None:
    base = step_name.partition(":")[0]
    return next((c for c in plan_of_step(base).compensations if c.undoes.name == base), None)


def line_step_name(step: Step, line: str) -> str:
    return f"{step.name}:{line}"

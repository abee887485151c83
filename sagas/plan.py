"""The steps a saga is made of, as the runtime needs to know them: declared by the saga's owner.

A participant names the step it runs (``"charge_payment"``); what the step means for the saga
(the state it runs in, the state it moves to, the reason when it fails) is the owner's
business, declared once with ``declare`` (the orders app does it in ``orders/plan.py``).
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ForwardStep:
    name: str
    service: str  # the participant that runs it
    runs_in: str  # the saga's state in which the step may run; in any other it is a no-op
    advances_to: str | None = None
    refused_as: str | None = None  # the reason when the participant refuses (a business decision)
    gives_up_as: str | None = None  # the reason when transient errors outlast the retries
    # Its work only writes our own database: it commits with the step's record, all or nothing,
    # so no attempt is recorded before it runs (a remote call needs that record; see run_step).
    local: bool = False
    per_line: bool = False  # run once per line (``<name>:<sku>``); the last line moves the saga on


@dataclass(frozen=True)
class Compensation:
    name: str
    service: str
    undoes: ForwardStep


_steps: dict[str, ForwardStep] = {}
_compensations: dict[str, Compensation] = {}


def declare(*items: ForwardStep | Compensation) -> None:
    for item in items:
        if isinstance(item, ForwardStep):
            _steps[item.name] = item
        else:
            _compensations[item.name] = item


def forward_step(name: str) -> ForwardStep:
    return _steps[name.partition(":")[0]]


def compensation(name: str) -> Compensation:
    return _compensations[name]


def compensation_of(step_name: str) -> Compensation | None:
    base = step_name.partition(":")[0]
    return next((c for c in _compensations.values() if c.undoes.name == base), None)


def line_step_name(step: ForwardStep, line: str) -> str:
    return f"{step.name}:{line}"

"""Who reacts to what: every subscription of every service, declared in its ``handlers`` module.

This registry is the whole wiring of the choreography (and of the side interactions, such as
the customer's emails, in both modes): ``manage.py event_map`` draws it.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

ORCHESTRATION = "orchestration"
CHOREOGRAPHY = "choreography"
BOTH_MODES = frozenset({ORCHESTRATION, CHOREOGRAPHY})


@dataclass(frozen=True)
class Event:
    """A fact one service announces: ``<publisher>.<what happened>`` about one saga (an order).

    ``context`` travels from event to event along a saga, so that a service can act on what an
    earlier one announced without asking it (event-carried state: the order as placed).
    """

    id: str
    name: str
    saga_id: str
    mode: str
    publisher: str
    data: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> "Event":
        return cls(**message)


@dataclass(frozen=True)
class Subscription:
    service: str  # the consuming service: its queue runs the handler
    event: str
    handler: Callable[..., None]
    modes: frozenset[str]
    # A step handler runs a saga step: the step runtime makes a repeat a no-op and records
    # the inbox entry with the step's outcome; it is called as ``handler(event, delivery)``.
    # Any other handler runs inside the transaction that records its inbox entry:
    # ``handler(event)``.
    step: bool
    reacts_with: tuple[str, ...]  # the events the handler may publish (for the map)

    @property
    def consumer(self) -> str:
        return f"{self.service}.{self.handler.__name__}"


_subscriptions: list[Subscription] = []

F = TypeVar("F", bound=Callable[..., None])


def subscribe(
    *events: str,
    service: str,
    modes: Iterable[str] = (CHOREOGRAPHY,),
    step: bool = False,
    publishes: Iterable[str] = (),
) -> Callable[[F], F]:
    """Declare that ``service`` handles ``events`` (in the orders of the given modes)."""

    def register(handler: F) -> F:
        for event in events:
            _subscriptions.append(
                Subscription(
                    service=service,
                    event=event,
                    handler=handler,
                    modes=frozenset(modes),
                    step=step,
                    reacts_with=tuple(publishes),
                )
            )
        return handler

    return register


def subscriptions() -> list[Subscription]:
    return list(_subscriptions)


def subscribers(event: str, mode: str) -> list[Subscription]:
    return [s for s in _subscriptions if s.event == event and mode in s.modes]


def subscription(consumer: str, event: str) -> Subscription:
    for s in _subscriptions:
        if s.consumer == consumer and s.event == event:
            return s
    raise LookupError(f"No subscription of {consumer} to {event}")

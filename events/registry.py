"""Who reacts to what: every subscription of every service, declared in its ``handlers`` module.

This registry is the whole wiring of the choreography (and of the side interactions, such as
the customer's emails, in both modes): ``manage.py event_map`` draws it. A handler declares
the events it may publish in reaction (``subscribe(..., publishes=...)``); a service that
announces events on its own, outside any handler (the orders service: ``order.placed``),
declares them with ``publishes``; and the events nobody needs to react to, because the saga
has ended when they are announced, are declared with ``ends``.
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
    # A handler that only writes the database (no email, no call out) may be handed several
    # events of one saga in one transaction, when a worker runs them in process
    # (``events.services.events_handle_together``): nothing it did is left behind by a rollback.
    batch: bool = False

    @property
    def consumer(self) -> str:
        return f"{self.service}.{self.handler.__name__}"


@dataclass(frozen=True)
class Publication:
    """``service`` announces ``event`` on its own (not in reaction to an event) in sagas of ``modes``."""

    service: str
    event: str
    modes: frozenset[str]


_subscriptions: list[Subscription] = []
_providers: list[Callable[[], list[Subscription]]] = []
_expanded: list[Subscription] | None = None
_publications: list[Publication] = []
_ends: set[str] = set()

F = TypeVar("F", bound=Callable[..., None])


def subscribe(
    *events: str,
    service: str,
    modes: Iterable[str] = (CHOREOGRAPHY,),
    step: bool = False,
    publishes: Iterable[str] = (),
    batch: bool = False,
) -> Callable[[F], F]:
    """Declare that ``service`` handles ``events`` (in the orders of the given modes); ``batch``:
    several of them at once, in one transaction, where they wait together (see ``Subscription``)."""

    def register(handler: F) -> F:
        global _expanded
        _expanded = None
        for event in events:
            _subscriptions.append(
                Subscription(
                    service=service,
                    event=event,
                    handler=handler,
                    modes=frozenset(modes),
                    step=step,
                    reacts_with=tuple(publishes),
                    batch=batch,
                )
            )
        return handler

    return register


def subscriptions_from(provider: Callable[[], list[Subscription]]) -> None:
    """Declare subscriptions that another part works out later, once every module is loaded
    (the saga's steps: ``sagas.hops.subscribe_step`` derives them from the saga's plan)."""
    global _expanded
    _expanded = None
    if provider not in _providers:
        _providers.append(provider)


def publishes(service: str, *events: str, modes: Iterable[str] = BOTH_MODES) -> None:
    """Declare that ``service`` announces ``events`` on its own, in sagas of the given modes."""
    for event in events:
        publication = Publication(service=service, event=event, modes=frozenset(modes))
        if publication not in _publications:
            _publications.append(publication)


def ends(*events: str) -> None:
    """Declare that the saga has ended when ``events`` are announced: no service has to react
    to them (some may, such as the customer's emails), so none is an event left unheard."""
    _ends.update(events)


def subscriptions() -> list[Subscription]:
    global _expanded
    if _expanded is None:
        _expanded = _subscriptions + [s for provider in _providers for s in provider()]
    return list(_expanded)


def publications() -> list[Publication]:
    return list(_publications)


def end_events() -> frozenset[str]:
    return frozenset(_ends)


def subscribers(event: str, mode: str) -> list[Subscription]:
    """Who hears ``event``: the saga's next step first, since the relay sends an order's
    messages one after the other, and the side interactions (bookkeeping, emails) can wait."""
    heard = [s for s in subscriptions() if s.event == event and mode in s.modes]
    return sorted(heard, key=lambda s: not s.step)


def subscription(consumer: str, event: str) -> Subscription:
    for s in subscriptions():
        if s.consumer == consumer and s.event == event:
            return s
    raise LookupError(f"No subscription of {consumer} to {event}")

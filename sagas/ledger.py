"""What the runtime needs of a saga's owner: its state, locked, and a journal to write.

The runtime never reads an order: it locks the saga through the ledger that settings name
(``SAGA_LEDGER``), asks it whether the saga still goes forward (whose turn it is, the runtime
reads in its own step rows), and tells it what happened. Whoever owns the saga (the orders
app) decides what each of those means for its aggregate.
"""

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from sagas.plan import ForwardStep


class Saga(Protocol):
    """A saga's state, locked for the caller's transaction."""

    id: str
    owner: str  # the service that owns the saga: its orchestrator, when one orchestrates it

    @property
    def forward(self) -> bool:
        """Still going forward (no step failed for good, nobody cancelled)."""
        ...

    @property
    def compensating(self) -> bool: ...

    def advance(self, step: ForwardStep, *, message: str) -> None:
        """The step succeeded (for every line): move the saga to ``step.advances_to``, or, where
        the owner moves it later (or the step goes nowhere), record the progress (``touch``)."""

    def hold(self, step: ForwardStep, *, message: str) -> None:
        """The step waits for a person's decision: show ``step.held_as``, if it has one."""

    def resume(self) -> None:
        """Send what is left of the saga from its rows (a decision was made), in the caller's
        transaction."""

    def turn_back(self, *, reason: str, message: str) -> None:
        """A step failed for good: compensate what was done, for ``reason``."""

    def reopen(self, *, message: str) -> None:
        """A compensation was re-opened (a late success, or a provider found holding an effect):
        turn back again if the saga had ended, and send its compensations (each finished one is
        a no-op), in the caller's transaction."""

    def record(self, *, service: str, kind: str, name: str, detail: str = "", staff: str = "") -> None:
        """Write a line of the saga's journal (``staff``: the name of the staff member who acted)."""

    def touch(self) -> None:
        """Record progress: the sweeper leaves a saga alone while it moves. The runtime calls it
        (or ``advance``, or another move of the saga) in every transaction that writes a step's
        row: the owner finds its changed steps by it (``orders.metrics``)."""


class Ledger(Protocol):
    def lock(self, saga_id: str) -> Saga: ...

    def note(self, saga_id: str, *, service: str, kind: str, name: str, detail: str = "") -> bool:
        """A line of the saga's journal from a service that reacts beside it (an email went),
        in the caller's transaction and without the saga's lock, so that its steps never wait
        for it; ``False`` (nothing written) when the saga is gone."""
        ...


@cache
def get_ledger() -> Ledger:
    ledger: Ledger = import_string(settings.SAGA_LEDGER)()
    return ledger

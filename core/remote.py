"""What every remote participant (payment provider, carrier) may answer besides yes and no, and
what its successful calls leave for the journal."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class RequestInFlight(Exception):
    """A request with this idempotency key is still being processed by the remote service.

    Stripe answers ``idempotency_key_in_use`` (HTTP 409) to it. It means "unknown yet": the
    first request may still succeed, so the caller neither fails nor assumes nothing happened;
    it asks again later.
    """


# --- what a participant's calls did, for the journal of the step that made them ---------------

_calls: ContextVar[list[tuple[str, str]] | None] = ContextVar("remote_calls", default=None)


@contextmanager
def remote_calls() -> Iterator[None]:
    """Collect what ``remote_call_done`` is told within the block (a step's run: its call, then
    the transaction that records its outcome, which takes the lines with ``remote_calls_taken``)."""
    token = _calls.set([])
    try:
        yield
    finally:
        _calls.reset(token)


def remote_call_done(name: str, detail: str) -> None:
    """A write to a remote service succeeded (``name``: the call, ``detail``: what it made and
    the service's request id; nothing secret). Noted for the step running it, if one is; the
    call's log line says it in any case."""
    noted = _calls.get()
    if noted is not None:
        noted.append((name, detail))


def remote_calls_taken() -> list[tuple[str, str]]:
    """The calls noted so far in this block, oldest first; each is handed out once."""
    noted = _calls.get()
    if not noted:
        return []
    taken = list(noted)
    noted.clear()
    return taken

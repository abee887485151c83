"""The risk service: screening an order before it is charged, and the review a person makes.

The screening is asked of the provider once per order and written down; an order the provider
holds for review waits for a person (``review_decide``) or for the review's time to run out
(``reviews_expire``, ``RISK_REVIEW_HOURS``). Each decision is applied once, under the saga's
lock, and resumes the saga: the step runs again and reads it (``risk/steps.py``).
"""

from contextlib import nullcontext
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from risk.models import Screening
from risk.providers import get_screening_provider
from sagas.ledger import Saga
from sagas.models import SagaStep
from sagas.runtime import AwaitingDecision, NotHeld, step_decide

SERVICE = "risk"
SCREEN_ORDER = "screen_order"


class OrderRejected(Exception):
    """The screening (or a person) rejected the order: the saga turns back (``risk_rejected``)."""


class ReviewExpired(Exception):
    """Nobody decided in time: the saga turns back, for this reason."""

    reason = "expired"


def screening_run(*, order_id: str, total: str, address: dict[str, Any]) -> None:
    """Approve the order, or raise ``OrderRejected``, ``ReviewExpired`` or ``AwaitingDecision``.

    The provider is asked once; its outcome (and, later, a person's decision) is what any
    later run reads. Side effect: the order's ``Screening`` row.
    """
    screening = Screening.objects.filter(order_id=order_id).first()
    if screening is None:
        verdict = get_screening_provider().screen(order_id=order_id, total=total, address=address)
        screening = _first_verdict(Screening(order_id=order_id, outcome=verdict.outcome, reasons=verdict.reasons[:200]))
    if screening.decision == Screening.Decision.APPROVED:
        return
    if screening.decision == Screening.Decision.REJECTED:
        raise OrderRejected(f"rejected on review by {screening.decided_by}")
    if screening.decision == Screening.Decision.EXPIRED:
        raise ReviewExpired(f"nobody reviewed it within {settings.RISK_REVIEW_HOURS:g} hours")
    if screening.outcome == Screening.Outcome.REJECTED:
        raise OrderRejected(f"the screening rejected it: {screening.reasons}")
    if screening.outcome == Screening.Outcome.REVIEW:
        raise AwaitingDecision(f"held for review: {screening.reasons}")


def _first_verdict(screening: Screening) -> Screening:
    """Write ``screening``, the provider's verdict, unless a copy of this run wrote one first:
    then that one stands (asked of the provider for the same order). One ``INSERT`` when it is
    ours, a read only when it is not. A step's call runs in autocommit, where the ``INSERT`` is
    its own transaction; inside one (a test's), a savepoint keeps a conflict from breaking it."""
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        with transaction.atomic() if in_transaction else nullcontext():
            screening.save(force_insert=True)
    except IntegrityError:
        return Screening.objects.get(order_id=screening.order_id)
    return screening


DECISIONS = {"approve": Screening.Decision.APPROVED, "reject": Screening.Decision.REJECTED}


def review_decide(*, order_id: Any, decision: str, actor: str, note: str = "", staff: bool = True) -> None:
    """A person approves or rejects an order held for review (``decision``: approve | reject;
    ``expired`` when the time ran out). Raises ``NotHeld`` (and changes nothing) unless the
    order is held and undecided: of two decisions racing, or a decision and a cancel, the
    first wins. Side effects, in one transaction: the decision, a journal line naming who
    decided, and the saga resumed (through the outbox)."""
    value = DECISIONS.get(decision, decision)

    def decide(saga: Saga) -> None:
        undecided = Screening.objects.filter(order_id=order_id, outcome=Screening.Outcome.REVIEW, decision="")
        if not undecided.update(decision=value, decided_by=actor, decided_at=timezone.now(), note=note):
            raise NotHeld(f"the review of {order_id} is decided already")
        detail = f"review {value} by {'staff ' if staff else ''}{actor}" + (f": {note}" if note else "")
        saga.record(service=SERVICE, kind="action", name=SCREEN_ORDER, detail=detail, staff=actor if staff else "")

    step_decide(saga_id=str(order_id), step_name=SCREEN_ORDER, decide=decide)


def reviews_expire(*, limit: int = 200) -> list[str]:
    """Close every review nobody decided within ``RISK_REVIEW_HOURS``: those orders are cancelled
    as ``expired``. Returns their ids."""
    before = timezone.now() - timedelta(hours=settings.RISK_REVIEW_HOURS)
    waiting = Screening.objects.filter(outcome=Screening.Outcome.REVIEW, decision="", screened_at__lt=before)
    expired = []
    for order_id in list(waiting.values_list("order_id", flat=True)[:limit]):
        try:
            review_decide(order_id=order_id, decision=Screening.Decision.EXPIRED, actor="risk", staff=False)
        except NotHeld:
            continue  # decided meanwhile, or the order was cancelled
        expired.append(str(order_id))
    return expired


def screening_of(*, order_id: Any) -> Screening:
    return Screening.objects.get(order_id=order_id)


def order_known(*, order_id: Any) -> bool:
    """Whether the order exists: its saga has rows."""
    return SagaStep.objects.filter(saga_id=order_id).exists()

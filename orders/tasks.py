"""The orders service's own saga tasks (queue ``orders``). Each loads by id and calls a service."""

from typing import Any

from celery import Task, shared_task

from core.retry import backoff_seconds
from orders import saga, services
from orders.models import Order, Status
from orders.steps import NotYetDone

# The joins poll the database for a bounded time; past it, the sweeper takes over.
JOIN_MAX_WAITS = 120


@shared_task(bind=True, name="orders.confirm_reservation", max_retries=JOIN_MAX_WAITS)
def confirm_reservation(self: Task[Any, Any], order_id: str) -> None:
    try:
        services.order_confirm_reservation(order_id=order_id)
    except NotYetDone as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(0)) from exc


@shared_task(name="orders.compensate")
def compensate(order_id: str) -> None:
    """Error callback of the saga: start the compensations of an order that is compensating.

    The failing step has already moved the order to ``compensating`` (with its reason) in the
    database; an error that was not a saga decision leaves the order as it is, for the sweeper.
    """
    if Order.objects.filter(pk=order_id, status=Status.COMPENSATING).exists():
        saga.compensation_start(order_id)


@shared_task(bind=True, name="orders.finish_compensation", max_retries=JOIN_MAX_WAITS)
def finish_compensation(self: Task[Any, Any], order_id: str) -> None:
    try:
        services.order_finish_compensation(order_id=order_id)
    except NotYetDone as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(0)) from exc


@shared_task(name="orders.recover_stalled_sagas")
def recover_stalled_sagas() -> dict[str, int]:
    report = services.saga_recover_stalled()
    return {"redriven": len(report.redriven), "expired": len(report.expired)}

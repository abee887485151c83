"""The risk service's commands from the orchestrator, and its own clock (queue ``risk``)."""

from typing import Any

from celery import Task, shared_task

from risk import services, steps
from sagas.hops import CanvasHops


@shared_task(bind=True, name="risk.screen_order")
def screen_order(self: Task[Any, Any], order_id: str, context: dict[str, Any]) -> None:
    steps.screen(order_id=order_id, context=context, hops=CanvasHops.take(self, shard=order_id, service="risk"))


@shared_task(name="risk.expire_reviews")
def expire_reviews() -> int:
    return len(services.reviews_expire())

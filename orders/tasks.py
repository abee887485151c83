"""The orders service's own saga tasks (queue ``orders``). Each loads by id and calls a service."""

from typing import Any

from celery import Task, shared_task
from django.db import transaction

from orders import services
from orders.reconciliation import orders_reconcile
from sagas.hops import CanvasHops
from sagas.runtime import NotYetDone, wait_seconds


@shared_task(bind=True, name="orders.finish_compensation")
def finish_compensation(self: Task[Any, Any], order_id: str) -> None:
    hops = CanvasHops.take(self, shard=order_id, service="orders")
    try:
        services.order_finish_compensation(order_id=order_id)
    except NotYetDone:  # a compensation still runs: look again shortly
        with transaction.atomic():
            hops.send_again(delay=wait_seconds(), retries=hops.retries)


@shared_task(name="orders.recover_stalled_sagas")
def recover_stalled_sagas() -> dict[str, int]:
    report = services.saga_recover_stalled()
    return {"redriven": len(report.redriven), "expired": len(report.expired)}


@shared_task(name="orders.reconcile")
def reconcile() -> dict[str, int]:
    report = orders_reconcile()
    return {"checked": report.checked, "repaired": len(report.repaired), "mismatched": len(report.mismatched)}

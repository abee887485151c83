"""Inventory's part of the order saga, as steps of the runtime.

The orchestrator's commands (``shop/tasks.py``) and the choreography's subscriptions
(``shop/handlers.py``) both call these: the rule lives once, the wiring differs.
"""

from functools import partial
from typing import Any

from sagas.hops import Hops
from sagas.runtime import run_compensation, run_step
from shop import services

RESERVE_STOCK = "reserve_stock"
RELEASE_STOCK = "release_stock"


def reserve_lines(*, order_id: str, context: dict[str, Any], hops: Hops) -> None:
    """Reserve each of the order's lines (``context["lines"]``: ``{line_id, sku, quantity}``;
    one line when orchestrated, each its own command); stop at the first that is not done."""
    for line in context["lines"]:
        done = run_step(
            saga_id=order_id,
            step_name=f"{RESERVE_STOCK}:{line['sku']}",
            hops=hops,
            action=partial(_reserved, order_id, line),
            refusals=(services.OutOfStock,),
        )
        if not done:
            return


def _reserved(order_id: str, line: dict[str, Any]) -> dict[str, Any]:
    services.stock_reserve(order_id=order_id, line_id=line["line_id"], sku=line["sku"], quantity=line["quantity"])
    return {}


def release(*, order_id: str, hops: Hops) -> None:
    run_compensation(
        saga_id=order_id, name=RELEASE_STOCK, hops=hops, undo=lambda: services.stock_release(order_id=order_id)
    )

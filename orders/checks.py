"""System checks of the orders app's settings (``manage.py check``, and before ``migrate``/``runserver``)."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from core.bounds import decimal_column_max
from orders.models import Order


@checks.register(checks.Tags.compatibility)
def order_max_total_check(
    *, app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``ORDER_MAX_TOTAL`` is an amount in cents that ``Order.total`` can hold: a larger one would
    let an order through the shop's own bound and fail at the database."""
    limit = settings.ORDER_MAX_TOTAL
    column_max = decimal_column_max(Order, "total")
    if not limit.is_finite() or limit <= 0 or limit.as_tuple().exponent < -2:  # type: ignore[operator]
        return [
            checks.Error(
                f"ORDER_MAX_TOTAL is {limit}: it must be a positive amount with at most two decimal places.",
                id="orders.E001",
            )
        ]
    if limit > column_max:
        return [
            checks.Error(
                f"ORDER_MAX_TOTAL is {limit}, more than an order's total can hold ({column_max}).",
                hint=f"Set ORDER_MAX_TOTAL to at most {column_max}.",
                id="orders.E002",
            )
        ]
    return []


@checks.register(checks.Tags.compatibility)
def saga_queues_check(
    *, app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Every service of the order saga's plan has its queue in ``SHOP_QUEUES`` (which ``make run``,
    the health checks, the scale-out layout and the benchmark serve): a step whose queue nobody
    consumes would wait for ever."""
    from orders.plan import ORDER_SAGA

    wanted = (ORDER_SAGA.owner, *ORDER_SAGA.participants)
    missing = [queue for queue in wanted if queue not in settings.SHOP_QUEUES]
    if missing:
        return [
            checks.Error(
                f"SHOP_QUEUES lacks the queue of {', '.join(missing)}: a step of the order saga runs there.",
                id="orders.E003",
            )
        ]
    return []
